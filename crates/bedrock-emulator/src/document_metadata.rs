//! Metadata given with a directly ingested document (IngestKnowledgeBaseDocuments `metadata`):
//! an S3 object holding the attributes (`S3_LOCATION`, Bedrock's `X.metadata.json` convention) or
//! the attributes themselves (`IN_LINE_ATTRIBUTE`). Checked against the botocore model's
//! constraints, because a request Bedrock rejects must not pass here.

use serde::Serialize;

/// What the request asked to attach.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DocumentMetadata {
    S3Location {
        uri: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        bucket_owner_account_id: Option<String>,
    },
    InLineAttribute {
        attributes: Vec<MetadataAttribute>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetadataAttribute {
    pub key: String,
    pub value: MetadataValue,
}

/// A MetadataAttributeValue, serialized with Bedrock's wire names.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MetadataValue {
    String {
        #[serde(rename = "stringValue")]
        string_value: String,
    },
    Number {
        #[serde(rename = "numberValue")]
        number_value: f64,
    },
    Boolean {
        #[serde(rename = "booleanValue")]
        boolean_value: bool,
    },
    StringList {
        #[serde(rename = "stringListValue")]
        string_list_value: Vec<String>,
    },
}

/// Metadata as recorded on an indexed document: the request's metadata, plus the ETag of the
/// metadata object that was read for `S3_LOCATION`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttachedMetadata {
    #[serde(flatten)]
    pub source: DocumentMetadata,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

/// A metadata attribute value as the wire carries it: a type and the field for that type.
#[derive(Debug, Clone, Default)]
pub struct RawMetadataValue {
    pub value_type: String,
    pub number_value: Option<f64>,
    pub boolean_value: Option<bool>,
    pub string_value: Option<String>,
    pub string_list_value: Option<Vec<String>>,
}

/// The model's limits (DocumentMetadataInlineAttributesList, Key, StringValue,
/// MetadataAttributeValueStringListValueList, S3ObjectUri).
const MAX_INLINE_ATTRIBUTES: usize = 50;
const MAX_KEY_CHARS: usize = 200;
const MAX_STRING_VALUE_CHARS: usize = 2048;
const MAX_STRING_LIST_ITEMS: usize = 10;
const MAX_OBJECT_URI_CHARS: usize = 1024;

impl DocumentMetadata {
    /// `S3_LOCATION`: `uri` must match the model's S3ObjectUri
    /// (`s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.{1,1024}`), the owner account 12 digits.
    pub fn s3_location(
        uri: String,
        bucket_owner_account_id: Option<String>,
    ) -> Result<Self, String> {
        if !is_object_uri(&uri) {
            return Err(format!(
                "Value '{uri}' at 'metadata.s3Location.uri' failed to satisfy constraint: \
                 Member must match pattern s3://[a-z0-9][a-z0-9.-]{{1,61}}[a-z0-9]/.{{1,1024}}"
            ));
        }
        if let Some(account) = &bucket_owner_account_id {
            if account.len() != 12 || !account.chars().all(|c| c.is_ascii_digit()) {
                return Err(format!(
                    "Value '{account}' at 'metadata.s3Location.bucketOwnerAccountId' failed to satisfy constraint: \
                     Member must match pattern [0-9]{{12}}"
                ));
            }
        }
        Ok(Self::S3Location {
            uri,
            bucket_owner_account_id,
        })
    }

    /// `IN_LINE_ATTRIBUTE`: 1 to 50 attributes, keys 1-200 characters.
    pub fn in_line(attributes: Vec<(String, RawMetadataValue)>) -> Result<Self, String> {
        if !(1..=MAX_INLINE_ATTRIBUTES).contains(&attributes.len()) {
            return Err(format!(
                "'metadata.inlineAttributes' has {} attributes; member must have between 1 and {MAX_INLINE_ATTRIBUTES} items",
                attributes.len()
            ));
        }
        let attributes = attributes
            .into_iter()
            .map(|(key, value)| {
                if !(1..=MAX_KEY_CHARS).contains(&key.chars().count()) {
                    return Err(format!(
                        "metadata attribute key '{key}' must have between 1 and {MAX_KEY_CHARS} characters"
                    ));
                }
                let value = MetadataValue::parse(&key, value)?;
                Ok(MetadataAttribute { key, value })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self::InLineAttribute { attributes })
    }

    /// The `s3://bucket/key` of an `S3_LOCATION` metadata object.
    pub fn s3_uri(&self) -> Option<&str> {
        match self {
            Self::S3Location { uri, .. } => Some(uri),
            Self::InLineAttribute { .. } => None,
        }
    }
}

impl MetadataValue {
    /// "Choose a type and include the field that corresponds to it": the field of the type must be
    /// there, and no field of another type.
    fn parse(key: &str, raw: RawMetadataValue) -> Result<Self, String> {
        let fields_given = usize::from(raw.number_value.is_some())
            + usize::from(raw.boolean_value.is_some())
            + usize::from(raw.string_value.is_some())
            + usize::from(raw.string_list_value.is_some());
        let mismatch = || {
            format!(
                "metadata attribute '{key}' of type {} must carry exactly the value field of that type",
                raw.value_type
            )
        };
        if fields_given != 1 {
            return Err(mismatch());
        }
        let check_string = |value: &str| {
            if (1..=MAX_STRING_VALUE_CHARS).contains(&value.chars().count()) {
                Ok(())
            } else {
                Err(format!(
                    "metadata attribute '{key}': string values must have between 1 and {MAX_STRING_VALUE_CHARS} characters"
                ))
            }
        };
        match raw.value_type.as_str() {
            "STRING" => {
                let string_value = raw.string_value.clone().ok_or_else(mismatch)?;
                check_string(&string_value)?;
                Ok(Self::String { string_value })
            }
            "NUMBER" => Ok(Self::Number {
                number_value: raw.number_value.ok_or_else(mismatch)?,
            }),
            "BOOLEAN" => Ok(Self::Boolean {
                boolean_value: raw.boolean_value.ok_or_else(mismatch)?,
            }),
            "STRING_LIST" => {
                let string_list_value = raw.string_list_value.clone().ok_or_else(mismatch)?;
                if !(1..=MAX_STRING_LIST_ITEMS).contains(&string_list_value.len()) {
                    return Err(format!(
                        "metadata attribute '{key}': stringListValue must have between 1 and {MAX_STRING_LIST_ITEMS} items"
                    ));
                }
                for value in &string_list_value {
                    check_string(value)?;
                }
                Ok(Self::StringList { string_list_value })
            }
            other => Err(format!(
                "Value '{other}' at 'metadata.inlineAttributes.value.type' failed to satisfy constraint: \
                 Member must satisfy enum value set: [BOOLEAN, NUMBER, STRING, STRING_LIST]"
            )),
        }
    }
}

/// The model's S3ObjectUri pattern, written out: a DNS-style bucket name and a non-empty key.
fn is_object_uri(uri: &str) -> bool {
    if uri.chars().count() > MAX_OBJECT_URI_CHARS {
        return false;
    }
    let Some((bucket, key)) = uri
        .strip_prefix("s3://")
        .and_then(|rest| rest.split_once('/'))
    else {
        return false;
    };
    let bucket_characters = bucket
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    (3..=63).contains(&bucket.len())
        && bucket_characters
        && edge(bucket.chars().next())
        && edge(bucket.chars().last())
        && !key.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(value: &str) -> RawMetadataValue {
        RawMetadataValue {
            value_type: "STRING".to_string(),
            string_value: Some(value.to_string()),
            ..RawMetadataValue::default()
        }
    }

    #[test]
    fn s3_locations_follow_the_object_uri_pattern() {
        assert!(
            DocumentMetadata::s3_location("s3://docs-bucket/a.txt.metadata.json".into(), None)
                .is_ok()
        );
        assert!(DocumentMetadata::s3_location("s3://Docs/a".into(), None).is_err());
        assert!(DocumentMetadata::s3_location("s3://docs-bucket/".into(), None).is_err());
        assert!(DocumentMetadata::s3_location("s3://ab/x".into(), None).is_err());
        assert!(DocumentMetadata::s3_location("s3://docs/x".into(), Some("12".into())).is_err());
        assert!(
            DocumentMetadata::s3_location("s3://docs/x".into(), Some("123456789012".into()))
                .is_ok()
        );
    }

    #[test]
    fn inline_attributes_need_the_value_field_of_their_type() {
        let metadata = DocumentMetadata::in_line(vec![("team".into(), string("search"))]).unwrap();
        assert_eq!(
            serde_json::to_value(&metadata).unwrap(),
            serde_json::json!({"type": "IN_LINE_ATTRIBUTE", "attributes": [
                {"key": "team", "value": {"type": "STRING", "stringValue": "search"}}]})
        );
        let wrong_field = RawMetadataValue {
            value_type: "NUMBER".to_string(),
            string_value: Some("1".to_string()),
            ..RawMetadataValue::default()
        };
        assert!(DocumentMetadata::in_line(vec![("n".into(), wrong_field)]).is_err());
        assert!(DocumentMetadata::in_line(Vec::new()).is_err());
        assert!(DocumentMetadata::in_line(vec![(String::new(), string("x"))]).is_err());
        let too_many = (0..51)
            .map(|index| (format!("k{index}"), string("v")))
            .collect();
        assert!(DocumentMetadata::in_line(too_many).is_err());
    }
}

//! Checks the document operations make on the documents a call names: how many, which S3 object,
//! inside the data source or not, named twice or not.

use std::collections::HashSet;

use crate::catalog::DataSource;
use crate::document_detail::DocumentIdentifier;
use crate::errors::ApiError;
use crate::s3_scope::parse_s3_uri;

/// Bedrock's model: each document operation takes 1 to 10 documents per call.
pub(super) const MAX_DOCUMENTS_PER_CALL: usize = 10;

pub(super) fn require_document_count(count: usize) -> Result<(), ApiError> {
    if !(1..=MAX_DOCUMENTS_PER_CALL).contains(&count) {
        return Err(ApiError::Validation(format!(
            "1 validation error detected: {count} documents given; member must have between 1 and {MAX_DOCUMENTS_PER_CALL} items"
        )));
    }
    Ok(())
}

/// The object key an identifier names, or None when it is in another bucket (so: NOT_FOUND).
pub(super) fn object_key_in_bucket(
    data_source: &DataSource,
    identifier: &DocumentIdentifier,
) -> Result<Option<String>, ApiError> {
    match identifier {
        DocumentIdentifier::Custom { .. } => Err(ApiError::Validation(format!(
            "Data source {} is an S3 data source: its documents have dataSourceType S3, not CUSTOM.",
            data_source.id
        ))),
        DocumentIdentifier::S3 { uri } => {
            let (bucket, object_key) = parse_s3_uri(uri).ok_or_else(|| {
                ApiError::Validation(format!("Invalid S3 URI {uri:?}; expected s3://bucket/key."))
            })?;
            Ok((bucket == data_source.scope.bucket).then(|| object_key.to_string()))
        }
    }
}

/// Like `object_key_in_bucket`, but a document outside the data source's scope (another bucket,
/// or a key under none of its inclusion prefixes) is an error: it cannot be ingested into it or
/// deleted from it.
pub(super) fn object_key_in_scope(
    data_source: &DataSource,
    identifier: &DocumentIdentifier,
) -> Result<String, ApiError> {
    let uri = match identifier {
        DocumentIdentifier::S3 { uri } => uri.as_str(),
        DocumentIdentifier::Custom { .. } => "",
    };
    match object_key_in_bucket(data_source, identifier)? {
        Some(object_key)
            if data_source
                .scope
                .contains(&data_source.scope.bucket, &object_key) =>
        {
            Ok(object_key)
        }
        _ => Err(ApiError::Validation(format!(
            "Document {uri} is outside the scope of data source {} (s3://{}/ with prefixes {:?}).",
            data_source.id, data_source.scope.bucket, data_source.scope.inclusion_prefixes
        ))),
    }
}

/// A write naming a document twice has no single meaning (which metadata wins?). Bedrock does not
/// document what it does; the emulator refuses it, so a service never relies on either reading.
pub(super) fn reject_duplicates(uris_and_keys: &[(String, String)]) -> Result<(), ApiError> {
    let mut seen = HashSet::new();
    for (uri, object_key) in uris_and_keys {
        if !seen.insert(object_key.as_str()) {
            return Err(ApiError::Validation(format!(
                "Document {uri} appears more than once in the request; name each document once per call."
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_outside_one_to_ten_are_rejected() {
        assert!(require_document_count(0).is_err());
        assert!(require_document_count(1).is_ok());
        assert!(require_document_count(10).is_ok());
        assert!(require_document_count(11).is_err());
    }

    #[test]
    fn duplicates_are_rejected() {
        let twice = [
            ("s3://b/a".to_string(), "a".to_string()),
            ("s3://b/a".to_string(), "a".to_string()),
        ];
        assert!(reject_duplicates(&twice).is_err());
        assert!(reject_duplicates(&twice[..1]).is_ok());
    }
}

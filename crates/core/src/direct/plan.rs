//! The documents a direct batch brings in line with S3, from the changes it covers.
//!
//! Changes are collapsed per document: however many uploads, overwrites and deletes a key saw,
//! its document gets one action, decided by what S3 holds when the batch runs (HeadObject). That
//! is "the latest change wins" without trusting delivery order, and it settles the key's form
//! at the same time: an EventBridge key with `+` or `%` may name the object in either form, so
//! every form the changes carried is looked up, and each is indexed if it exists and removed if
//! it does not. Either way the index ends up equal to S3 for every form.

use std::collections::BTreeMap;

use crate::change::ChangeRecord;

use super::choice::{JobReason, DIRECT_MAX_OBJECT_BYTES};

/// A document's metadata lives next to it as `KEY.metadata.json` (Bedrock's convention).
pub const METADATA_SUFFIX: &str = ".metadata.json";

/// The document a key belongs to: `X` for `X.metadata.json`, the key itself otherwise.
pub fn document_key(key: &str) -> &str {
    key.strip_suffix(METADATA_SUFFIX)
        .filter(|document| !document.is_empty())
        .unwrap_or(key)
}

/// For a metadata file `X.metadata.json`: `X`.
pub fn metadata_of(key: &str) -> Option<String> {
    let document = document_key(key);
    (document != key).then(|| document.to_string())
}

pub fn metadata_key(document_key: &str) -> String {
    format!("{document_key}{METADATA_SUFFIX}")
}

pub fn s3_uri(bucket: &str, key: &str) -> String {
    format!("s3://{bucket}/{key}")
}

/// The changes of one document and the key forms to look up in S3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentChanges {
    pub bucket: String,
    /// The decoded key first, then any other form an event carried.
    pub keys: Vec<String>,
    pub change_ids: Vec<String>,
}

/// What S3 holds under one key form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// The object exists; `metadata`: its `KEY.metadata.json` exists too.
    Exists {
        size: i64,
        metadata: bool,
    },
    Missing,
}

/// One document call entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentAction {
    Ingest {
        uri: String,
        metadata_uri: Option<String>,
    },
    Delete {
        uri: String,
    },
}

impl DocumentAction {
    pub fn uri(&self) -> &str {
        match self {
            Self::Ingest { uri, .. } | Self::Delete { uri } => uri,
        }
    }

    pub fn is_delete(&self) -> bool {
        matches!(self, Self::Delete { .. })
    }

    /// Everything the call carries for this document (for client tokens).
    pub fn fingerprint(&self) -> String {
        match self {
            Self::Ingest { uri, metadata_uri } => {
                format!("ingest {uri} {}", metadata_uri.as_deref().unwrap_or(""))
            }
            Self::Delete { uri } => format!("delete {uri}"),
        }
    }
}

/// A document action and the changes it settles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedDocument {
    pub action: DocumentAction,
    pub change_ids: Vec<String>,
}

/// Collapses changes per document (bucket + document key), in key order.
pub fn collapse(changes: &[ChangeRecord]) -> Vec<DocumentChanges> {
    let mut documents: BTreeMap<(String, String), DocumentChanges> = BTreeMap::new();
    for change in changes {
        let decoded = document_key(&change.key).to_string();
        let entry = documents
            .entry((change.bucket.clone(), decoded.clone()))
            .or_insert_with(|| DocumentChanges {
                bucket: change.bucket.clone(),
                keys: vec![decoded],
                change_ids: Vec::new(),
            });
        if let Some(raw) = &change.key_as_received {
            let raw = document_key(raw).to_string();
            if !entry.keys.contains(&raw) {
                entry.keys.push(raw);
            }
        }
        entry.change_ids.push(change.change_id.clone());
    }
    documents.into_values().collect()
}

impl DocumentChanges {
    /// The actions for this document given what S3 holds under each of its key forms (in the
    /// order of `keys`).
    pub fn actions(&self, presence: &[Presence]) -> Result<Vec<PlannedDocument>, JobReason> {
        self.keys
            .iter()
            .zip(presence)
            .map(|(key, presence)| {
                let uri = s3_uri(&self.bucket, key);
                let action = match *presence {
                    Presence::Exists { size, .. } if size > DIRECT_MAX_OBJECT_BYTES => {
                        return Err(JobReason::ObjectTooLarge {
                            bucket: self.bucket.clone(),
                            key: key.clone(),
                            size,
                        })
                    }
                    Presence::Exists { metadata, .. } => DocumentAction::Ingest {
                        metadata_uri: metadata.then(|| s3_uri(&self.bucket, &metadata_key(key))),
                        uri,
                    },
                    Presence::Missing => DocumentAction::Delete { uri },
                };
                Ok(PlannedDocument {
                    action,
                    change_ids: self.change_ids.clone(),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::ChangeRecord;

    fn change(id: &str, key: &str, raw: Option<&str>) -> ChangeRecord {
        serde_json::from_value(serde_json::json!({
            "change_id": id, "knowledge_base_id": "KB", "data_source_id": "DS",
            "change_type": "create", "bucket": "b", "key": key, "key_as_received": raw,
            "timestamp": "2026-01-01T00:00:00Z", "event_name": "Object Created",
            "status": "PENDING", "processed": false, "source_seq": 1, "expires_at": 0
        }))
        .unwrap()
    }

    #[test]
    fn a_metadata_file_belongs_to_its_document() {
        assert_eq!(document_key("docs/a.pdf.metadata.json"), "docs/a.pdf");
        assert_eq!(document_key("docs/a.pdf"), "docs/a.pdf");
        assert_eq!(document_key(".metadata.json"), ".metadata.json");
        assert_eq!(metadata_key("docs/a.pdf"), "docs/a.pdf.metadata.json");
        assert_eq!(
            metadata_of("docs/a.pdf.metadata.json").as_deref(),
            Some("docs/a.pdf")
        );
        assert_eq!(metadata_of("docs/a.pdf"), None);
    }

    #[test]
    fn changes_of_one_document_and_its_metadata_collapse_into_one_entry() {
        let documents = collapse(&[
            change("1", "a.txt", None),
            change("2", "b.txt", None),
            change("3", "a.txt", None),
            change("4", "a.txt.metadata.json", None),
        ]);
        assert_eq!(documents.len(), 2);
        assert_eq!(documents[0].keys, vec!["a.txt"]);
        assert_eq!(documents[0].change_ids, vec!["1", "3", "4"]);
        assert_eq!(documents[1].change_ids, vec!["2"]);
    }

    #[test]
    fn every_form_an_event_carried_is_looked_up() {
        let documents = collapse(&[
            change("1", "a b+c.txt", Some("a+b%2Bc.txt")),
            change("2", "a b+c.txt", None),
        ]);
        assert_eq!(documents.len(), 1);
        assert_eq!(documents[0].keys, vec!["a b+c.txt", "a+b%2Bc.txt"]);
    }

    #[test]
    fn s3_decides_each_form_indexed_with_its_metadata_or_removed() {
        let document = &collapse(&[change("1", "a b.txt", Some("a+b.txt"))])[0];
        let planned = document
            .actions(&[
                Presence::Exists {
                    size: 10,
                    metadata: true,
                },
                Presence::Missing,
            ])
            .unwrap();
        assert_eq!(
            planned[0].action,
            DocumentAction::Ingest {
                uri: "s3://b/a b.txt".into(),
                metadata_uri: Some("s3://b/a b.txt.metadata.json".into())
            }
        );
        assert_eq!(
            planned[1].action,
            DocumentAction::Delete {
                uri: "s3://b/a+b.txt".into()
            }
        );
        assert!(planned.iter().all(|p| p.change_ids == vec!["1"]));
    }

    #[test]
    fn an_object_over_the_document_limit_is_left_to_a_job() {
        let document = &collapse(&[change("1", "big.pdf", None)])[0];
        let err = document
            .actions(&[Presence::Exists {
                size: DIRECT_MAX_OBJECT_BYTES + 1,
                metadata: false,
            }])
            .unwrap_err();
        assert!(matches!(err, JobReason::ObjectTooLarge { .. }), "{err}");
    }
}

//! Drift: where a data source's index and its S3 scope disagree. Pure: the caller lists S3 (the
//! data source's bucket and inclusion prefixes) and the knowledge base's documents
//! (ListKnowledgeBaseDocuments); this module says which objects are missing, stale, orphaned or
//! failed.
//!
//! - **missing**: in S3, no document (never ingested, or removed).
//! - **stale**: the object, or its `KEY.metadata.json`, changed after the document's last update.
//! - **orphaned**: a document whose object is gone from S3.
//! - **failed**: a document Bedrock could not index (FAILED, IGNORED, METADATA_UPDATE_FAILED),
//!   with its reason.
//!
//! Documents being processed (STARTING, IN_PROGRESS, PENDING) count as present; documents being
//! deleted (DELETING, DELETE_IN_PROGRESS, NOT_FOUND) as absent. Folder placeholders (keys ending
//! in `/`) and metadata files are not documents.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::direct::plan::{document_key, metadata_of};

/// One object of the S3 scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeObject {
    pub key: String,
    pub last_modified: DateTime<Utc>,
}

/// One document of the data source, as ListKnowledgeBaseDocuments reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedDocument {
    pub key: String,
    pub status: String,
    pub reason: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FailedDocument {
    pub key: String,
    pub status: String,
    pub reason: String,
}

/// The disagreements of one data source, each list in key order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Drift {
    pub missing: Vec<String>,
    pub stale: Vec<String>,
    pub orphaned: Vec<String>,
    pub failed: Vec<FailedDocument>,
}

impl Drift {
    pub fn is_clean(&self) -> bool {
        self.total() == 0
    }

    pub fn total(&self) -> usize {
        self.missing.len() + self.stale.len() + self.orphaned.len() + self.failed.len()
    }
}

/// How a status counts.
fn presence(status: &str) -> Option<bool> {
    match status {
        "DELETING" | "DELETE_IN_PROGRESS" | "NOT_FOUND" => None,
        "FAILED" | "IGNORED" | "METADATA_UPDATE_FAILED" => Some(false),
        _ => Some(true),
    }
}

/// Each document of the scope (an object that is neither a folder placeholder nor a metadata
/// file) with its version: the newest modification of the object and of its metadata file.
pub fn document_versions(objects: &[ScopeObject]) -> BTreeMap<String, DateTime<Utc>> {
    let mut metadata_changed: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    let mut versions: BTreeMap<String, DateTime<Utc>> = BTreeMap::new();
    for object in objects.iter().filter(|o| !o.key.ends_with('/')) {
        match metadata_of(&object.key) {
            Some(document) => {
                metadata_changed.insert(document, object.last_modified);
            }
            None => {
                versions.insert(object.key.clone(), object.last_modified);
            }
        }
    }
    for (key, version) in versions.iter_mut() {
        if let Some(metadata) = metadata_changed.get(key) {
            *version = (*version).max(*metadata);
        }
    }
    versions
}

pub fn compare(objects: &[ScopeObject], documents: &[IndexedDocument]) -> Drift {
    let in_s3 = document_versions(objects);
    let indexed: BTreeMap<&str, &IndexedDocument> = documents
        .iter()
        .filter(|d| presence(&d.status).is_some())
        .map(|d| (d.key.as_str(), d))
        .collect();
    let mut drift = Drift::default();
    for (key, changed) in &in_s3 {
        let Some(document) = indexed.get(key.as_str()) else {
            drift.missing.push(key.to_string());
            continue;
        };
        if presence(&document.status) == Some(false) {
            drift.failed.push(FailedDocument {
                key: key.to_string(),
                status: document.status.clone(),
                reason: document.reason.clone().unwrap_or_default(),
            });
        } else if document
            .updated_at
            .is_some_and(|updated| *changed > updated)
        {
            drift.stale.push(key.to_string());
        }
    }
    for key in indexed.keys() {
        if !in_s3.contains_key(*key) && document_key(key) == *key {
            drift.orphaned.push(key.to_string());
        }
    }
    drift
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
    }

    fn object(key: &str, modified: i64) -> ScopeObject {
        ScopeObject {
            key: key.into(),
            last_modified: at(modified),
        }
    }

    fn document(key: &str, status: &str, updated: i64) -> IndexedDocument {
        IndexedDocument {
            key: key.into(),
            status: status.into(),
            reason: (status == "FAILED").then(|| "unsupported".into()),
            updated_at: Some(at(updated)),
        }
    }

    #[test]
    fn every_category_is_found_and_nothing_else() {
        let objects = [
            object("docs/", 0),
            object("docs/in-sync.txt", 10),
            object("docs/never-indexed.txt", 10),
            object("docs/overwritten.txt", 50),
            object("docs/new-metadata.txt", 10),
            object("docs/new-metadata.txt.metadata.json", 60),
            object("docs/broken.pdf", 10),
            object("docs/indexing.txt", 70),
        ];
        let documents = [
            document("docs/in-sync.txt", "INDEXED", 20),
            document("docs/overwritten.txt", "INDEXED", 20),
            document("docs/new-metadata.txt", "INDEXED", 20),
            document("docs/broken.pdf", "FAILED", 20),
            document("docs/indexing.txt", "IN_PROGRESS", 20),
            document("docs/gone.txt", "INDEXED", 20),
            document("docs/being-deleted.txt", "DELETING", 20),
        ];
        let drift = compare(&objects, &documents);
        assert_eq!(drift.missing, vec!["docs/never-indexed.txt"]);
        assert_eq!(
            drift.stale,
            vec![
                "docs/indexing.txt",
                "docs/new-metadata.txt",
                "docs/overwritten.txt"
            ]
        );
        assert_eq!(drift.orphaned, vec!["docs/gone.txt"]);
        assert_eq!(
            drift.failed,
            vec![FailedDocument {
                key: "docs/broken.pdf".into(),
                status: "FAILED".into(),
                reason: "unsupported".into()
            }]
        );
        assert_eq!(drift.total(), 6);
    }

    #[test]
    fn an_index_equal_to_s3_is_clean() {
        let drift = compare(
            &[object("a.txt", 1), object("a.txt.metadata.json", 1)],
            &[document("a.txt", "PARTIALLY_INDEXED", 2)],
        );
        assert!(drift.is_clean(), "{drift:?}");
        assert!(compare(&[], &[]).is_clean());
        assert!(compare(&[], &[document("x.txt", "NOT_FOUND", 2)]).is_clean());
    }
}

//! The diff a job computes when it starts: its S3 snapshot against the data source's index.
//!
//! Everything a job will report and change is decided here, at start, so changes made to S3 after
//! StartIngestionJob returned can never leak into that job. The plan is applied to the index only
//! when the job completes.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::DocumentRulesConfig;
use crate::document_index::{DocumentIndex, DocumentOrigin, IndexedDocument, IndexedStatus};
use crate::document_rules::{classify, ObjectKind};
use crate::s3_scope::ListedObject;

/// Bedrock's IngestionJobStatistics, with its wire names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestionStatistics {
    pub number_of_documents_scanned: i64,
    pub number_of_metadata_documents_scanned: i64,
    pub number_of_new_documents_indexed: i64,
    pub number_of_modified_documents_indexed: i64,
    pub number_of_metadata_documents_modified: i64,
    pub number_of_documents_deleted: i64,
    pub number_of_documents_failed: i64,
}

impl IngestionStatistics {
    /// What is known once the scan is done but nothing is indexed yet.
    pub fn scanned_only(&self) -> Self {
        Self {
            number_of_documents_scanned: self.number_of_documents_scanned,
            number_of_metadata_documents_scanned: self.number_of_metadata_documents_scanned,
            ..Self::default()
        }
    }
}

/// What the job will do to one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DocumentChange {
    /// Not indexed before (or only failed before).
    New {
        etag: String,
        size_bytes: u64,
    },
    /// Indexed before at another ETag.
    Modified {
        etag: String,
        size_bytes: u64,
    },
    Failed {
        etag: String,
        size_bytes: u64,
        reason: String,
    },
    Deleted,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncPlan {
    pub statistics: IngestionStatistics,
    /// Only documents the job does something to; unchanged INDEXED documents are absent.
    pub changes: BTreeMap<String, DocumentChange>,
    /// The metadata sidecars of the snapshot (key -> ETag); they replace the index's on completion.
    #[serde(skip)]
    pub metadata_snapshot: BTreeMap<String, String>,
}

impl SyncPlan {
    /// Documents the job has work for; drives the per-document part of the job duration.
    pub fn work_items(&self) -> u64 {
        self.changes.len() as u64
            + self.statistics.number_of_metadata_documents_modified.max(0) as u64
    }

    /// Applies the plan to the index at the job's completion time.
    pub fn apply(&self, index: &mut DocumentIndex, completed_at: DateTime<Utc>) {
        for (key, change) in &self.changes {
            match change {
                DocumentChange::New { etag, size_bytes }
                | DocumentChange::Modified { etag, size_bytes } => {
                    index.documents.insert(
                        key.clone(),
                        IndexedDocument {
                            etag: etag.clone(),
                            size_bytes: *size_bytes,
                            status: IndexedStatus::Indexed,
                            status_reason: None,
                            updated_at: completed_at,
                            origin: DocumentOrigin::Job,
                            metadata: None,
                        },
                    );
                }
                DocumentChange::Failed {
                    etag,
                    size_bytes,
                    reason,
                } => {
                    index.documents.insert(
                        key.clone(),
                        IndexedDocument {
                            etag: etag.clone(),
                            size_bytes: *size_bytes,
                            status: IndexedStatus::Failed,
                            status_reason: Some(reason.clone()),
                            updated_at: completed_at,
                            origin: DocumentOrigin::Job,
                            metadata: None,
                        },
                    );
                }
                DocumentChange::Deleted => {
                    index.documents.remove(key);
                }
            }
        }
        index.metadata = self.metadata_snapshot.clone();
    }
}

/// Diffs `snapshot` against `index`.
///
/// Rules (the emulator's reading of Bedrock's incremental sync):
/// - every non-metadata object scanned counts in numberOfDocumentsScanned, failed ones included;
/// - a document INDEXED at the same ETag is left alone, even if a failure rule now matches it;
/// - a document never indexed, or FAILED (IGNORED) before, is (re)processed: new, or failed again;
/// - an INDEXED document at another ETag is modified (or failed, if it now fails);
/// - an INDEXED document missing from the snapshot is deleted; a FAILED one just disappears;
/// - a directly ingested document whose metadata update failed (METADATA_UPDATE_FAILED) has its
///   content indexed: it counts as INDEXED for "modified" and "deleted", but is reprocessed even
///   at the same ETag, since the job re-reads its metadata;
/// - a metadata sidecar counts as modified when it is new, has another ETag, or was removed while
///   its document is still there.
pub fn plan_sync(
    snapshot: &BTreeMap<String, ListedObject>,
    index: &DocumentIndex,
    rules: &DocumentRulesConfig,
    injected_failure: impl Fn(&str) -> Option<String>,
) -> SyncPlan {
    let mut plan = SyncPlan::default();
    let statistics = &mut plan.statistics;
    for (key, object) in snapshot {
        let failure = match classify(rules, key, object.size_bytes) {
            ObjectKind::Metadata { .. } => {
                statistics.number_of_metadata_documents_scanned += 1;
                if index.metadata.get(key) != Some(&object.etag) {
                    statistics.number_of_metadata_documents_modified += 1;
                }
                plan.metadata_snapshot
                    .insert(key.clone(), object.etag.clone());
                continue;
            }
            ObjectKind::Unindexable { reason, .. } => Some(reason),
            ObjectKind::Document => None,
        };
        statistics.number_of_documents_scanned += 1;
        let previous = index.documents.get(key);
        let unchanged_and_indexed = previous.is_some_and(|document| {
            document.status == IndexedStatus::Indexed && document.etag == object.etag
        });
        if unchanged_and_indexed {
            continue;
        }
        let (etag, size_bytes) = (object.etag.clone(), object.size_bytes);
        let change = match failure.or_else(|| injected_failure(key)) {
            Some(reason) => {
                statistics.number_of_documents_failed += 1;
                DocumentChange::Failed {
                    etag,
                    size_bytes,
                    reason,
                }
            }
            None if previous.is_some_and(|document| document.status.has_indexed_content()) => {
                statistics.number_of_modified_documents_indexed += 1;
                DocumentChange::Modified { etag, size_bytes }
            }
            None => {
                statistics.number_of_new_documents_indexed += 1;
                DocumentChange::New { etag, size_bytes }
            }
        };
        plan.changes.insert(key.clone(), change);
    }
    for (key, document) in &index.documents {
        if !snapshot.contains_key(key) {
            if document.status.has_indexed_content() {
                statistics.number_of_documents_deleted += 1;
            }
            plan.changes.insert(key.clone(), DocumentChange::Deleted);
        }
    }
    for metadata_key in index.metadata.keys() {
        let document_key = metadata_key.strip_suffix(crate::document_rules::METADATA_SUFFIX);
        let document_still_there = document_key.is_some_and(|key| snapshot.contains_key(key));
        if !snapshot.contains_key(metadata_key) && document_still_there {
            statistics.number_of_metadata_documents_modified += 1;
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(key: &str, etag: &str, size_bytes: u64) -> (String, ListedObject) {
        (
            key.to_string(),
            ListedObject {
                key: key.to_string(),
                etag: etag.to_string(),
                size_bytes,
            },
        )
    }

    fn no_faults(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn first_sync_indexes_everything_and_fails_unsupported_or_oversized() {
        let rules = DocumentRulesConfig::default();
        let snapshot = BTreeMap::from([
            object("a.txt", "1", 10),
            object("b.pdf", "1", 10),
            object("c.exe", "1", 10),
            object("d.pdf", "1", rules.max_document_bytes + 1),
            object("a.txt.metadata.json", "m", 10),
        ]);
        let plan = plan_sync(&snapshot, &DocumentIndex::default(), &rules, no_faults);
        assert_eq!(
            plan.statistics,
            IngestionStatistics {
                number_of_documents_scanned: 4,
                number_of_metadata_documents_scanned: 1,
                number_of_new_documents_indexed: 2,
                number_of_metadata_documents_modified: 1,
                number_of_documents_failed: 2,
                ..IngestionStatistics::default()
            }
        );
        assert_eq!(plan.work_items(), 5);
    }

    #[test]
    fn second_sync_reports_modified_deleted_and_leaves_unchanged_alone() {
        let rules = DocumentRulesConfig::default();
        let first = BTreeMap::from([
            object("a.txt", "1", 10),
            object("b.txt", "1", 10),
            object("c.txt", "1", 10),
            object("a.txt.metadata.json", "m1", 1),
        ]);
        let mut index = DocumentIndex::default();
        plan_sync(&first, &index, &rules, no_faults).apply(&mut index, Utc::now());
        assert_eq!(index.documents.len(), 3);

        let second = BTreeMap::from([
            object("a.txt", "1", 10),
            object("b.txt", "2", 10),
            object("d.txt", "1", 10),
            object("a.txt.metadata.json", "m2", 1),
        ]);
        let plan = plan_sync(&second, &index, &rules, |key| {
            // A rule added later must not touch a document that is not reprocessed.
            (key == "a.txt").then(|| "late rule".to_string())
        });
        assert_eq!(plan.statistics.number_of_documents_scanned, 3);
        assert_eq!(plan.statistics.number_of_new_documents_indexed, 1);
        assert_eq!(plan.statistics.number_of_modified_documents_indexed, 1);
        assert_eq!(plan.statistics.number_of_documents_deleted, 1);
        assert_eq!(plan.statistics.number_of_metadata_documents_modified, 1);
        assert_eq!(plan.statistics.number_of_documents_failed, 0);
        plan.apply(&mut index, Utc::now());
        assert_eq!(
            index.documents.keys().collect::<Vec<_>>(),
            vec!["a.txt", "b.txt", "d.txt"]
        );
        assert_eq!(index.documents["b.txt"].etag, "2");
    }

    #[test]
    fn failed_documents_are_retried_and_vanish_without_counting_as_deleted() {
        let rules = DocumentRulesConfig::default();
        let snapshot = BTreeMap::from([object("bad.txt", "1", 1), object("gone.txt", "1", 1)]);
        let mut index = DocumentIndex::default();
        plan_sync(&snapshot, &index, &rules, |_| Some("broken".to_string()))
            .apply(&mut index, Utc::now());
        assert_eq!(index.documents["bad.txt"].status, IndexedStatus::Failed);
        assert_eq!(
            index.documents["bad.txt"].status_reason.as_deref(),
            Some("broken")
        );

        let snapshot = BTreeMap::from([object("bad.txt", "1", 1)]);
        let plan = plan_sync(&snapshot, &index, &rules, no_faults);
        assert_eq!(plan.statistics.number_of_new_documents_indexed, 1);
        assert_eq!(plan.statistics.number_of_documents_deleted, 0);
        plan.apply(&mut index, Utc::now());
        assert_eq!(index.documents.keys().collect::<Vec<_>>(), vec!["bad.txt"]);
        assert_eq!(index.documents["bad.txt"].status, IndexedStatus::Indexed);
    }

    #[test]
    fn removed_metadata_counts_only_while_its_document_exists() {
        let rules = DocumentRulesConfig::default();
        let mut index = DocumentIndex::default();
        let first = BTreeMap::from([
            object("a.txt", "1", 1),
            object("a.txt.metadata.json", "m", 1),
            object("b.txt", "1", 1),
            object("b.txt.metadata.json", "m", 1),
        ]);
        plan_sync(&first, &index, &rules, no_faults).apply(&mut index, Utc::now());
        let second = BTreeMap::from([object("a.txt", "1", 1)]);
        let plan = plan_sync(&second, &index, &rules, no_faults);
        assert_eq!(plan.statistics.number_of_metadata_documents_modified, 1);
        assert_eq!(plan.statistics.number_of_documents_deleted, 1);
    }
}

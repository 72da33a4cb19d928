//! What Bedrock's per-document statuses (GetKnowledgeBaseDocuments) mean for a direct batch.
//!
//! - INDEXED: the document is searchable as it is in S3.
//! - PARTIALLY_INDEXED: Bedrock indexed the document but skipped parts it could not parse (a page
//!   or an element); the document is searchable, and a job would do no better.
//! - METADATA_PARTIALLY_INDEXED: the content is indexed; some metadata attributes were not. The
//!   change reached the index, so it counts as synced.
//! - FAILED, METADATA_UPDATE_FAILED, IGNORED: the change did not reach the index: FAILED with
//!   Bedrock's reason.
//! - NOT_FOUND: for a removal, done. For an ingestion, not visible yet: keep waiting.
//! - STARTING, IN_PROGRESS, PENDING, DELETING, DELETE_IN_PROGRESS, and any status this code does
//!   not know: keep waiting, up to the batch's bound.

use std::collections::HashMap;

use super::{DocumentAction, PlannedDocument};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentOutcome {
    /// In the index as S3 has it (the status says which way).
    Indexed(String),
    /// Gone from the index, as it is gone from S3.
    Removed,
    /// Bedrock could not index it: the reason to record.
    Failed(String),
    /// Not terminal yet (the last status read).
    Waiting(String),
}

impl DocumentOutcome {
    pub fn is_terminal(&self) -> bool {
        !matches!(self, Self::Waiting(_))
    }
}

pub fn outcome(action: &DocumentAction, status: &str, reason: Option<&str>) -> DocumentOutcome {
    let failed = || {
        DocumentOutcome::Failed(match reason.filter(|r| !r.trim().is_empty()) {
            Some(reason) => format!("{status}: {reason}"),
            None => format!("Bedrock reported the document {status} without a reason"),
        })
    };
    match (action.is_delete(), status) {
        (true, "NOT_FOUND") => DocumentOutcome::Removed,
        (false, "INDEXED" | "PARTIALLY_INDEXED" | "METADATA_PARTIALLY_INDEXED") => {
            DocumentOutcome::Indexed(status.to_string())
        }
        (_, "FAILED" | "METADATA_UPDATE_FAILED" | "IGNORED") => failed(),
        (_, other) => DocumentOutcome::Waiting(other.to_string()),
    }
}

/// Each change's outcome from its documents' outcomes (by URI): FAILED if one of them failed,
/// waiting while one of them waits, synced once all are indexed or removed. A document without
/// a status read yet is waiting.
pub fn change_outcomes(
    planned: &[PlannedDocument],
    documents: &HashMap<String, DocumentOutcome>,
) -> HashMap<String, DocumentOutcome> {
    let mut changes: HashMap<String, DocumentOutcome> = HashMap::new();
    for document in planned {
        let outcome = documents
            .get(document.action.uri())
            .cloned()
            .unwrap_or_else(|| DocumentOutcome::Waiting("not read yet".into()));
        for change_id in &document.change_ids {
            let merged = match (changes.remove(change_id), &outcome) {
                (Some(failed @ DocumentOutcome::Failed(_)), _) => failed,
                (_, DocumentOutcome::Failed(_)) => outcome.clone(),
                (Some(waiting @ DocumentOutcome::Waiting(_)), _) => waiting,
                (_, DocumentOutcome::Waiting(_)) => outcome.clone(),
                (_, terminal) => terminal.clone(),
            };
            changes.insert(change_id.clone(), merged);
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ingest() -> DocumentAction {
        DocumentAction::Ingest {
            uri: "s3://b/a".into(),
            metadata_uri: None,
        }
    }

    fn delete() -> DocumentAction {
        DocumentAction::Delete {
            uri: "s3://b/x".into(),
        }
    }

    #[test]
    fn indexed_statuses_count_as_synced_and_failures_carry_the_reason() {
        for status in ["INDEXED", "PARTIALLY_INDEXED", "METADATA_PARTIALLY_INDEXED"] {
            assert_eq!(
                outcome(&ingest(), status, None),
                DocumentOutcome::Indexed(status.into())
            );
        }
        for status in ["FAILED", "METADATA_UPDATE_FAILED", "IGNORED"] {
            let DocumentOutcome::Failed(reason) = outcome(&ingest(), status, Some("bad pdf"))
            else {
                panic!("{status} is a failure");
            };
            assert_eq!(reason, format!("{status}: bad pdf"));
        }
        let DocumentOutcome::Failed(reason) = outcome(&ingest(), "IGNORED", Some(" ")) else {
            panic!()
        };
        assert!(reason.contains("without a reason"), "{reason}");
    }

    #[test]
    fn not_found_ends_a_removal_but_not_an_ingestion() {
        assert_eq!(
            outcome(&delete(), "NOT_FOUND", None),
            DocumentOutcome::Removed
        );
        assert!(!outcome(&ingest(), "NOT_FOUND", None).is_terminal());
        for status in [
            "STARTING",
            "IN_PROGRESS",
            "PENDING",
            "DELETING",
            "DELETE_IN_PROGRESS",
            "NEW_STATUS",
        ] {
            assert!(!outcome(&ingest(), status, None).is_terminal(), "{status}");
        }
        assert!(!outcome(&delete(), "INDEXED", None).is_terminal());
    }

    #[test]
    fn a_change_is_synced_only_when_all_its_documents_are() {
        let planned = vec![
            PlannedDocument {
                action: ingest(),
                change_ids: vec!["c1".into(), "c2".into()],
            },
            PlannedDocument {
                action: delete(),
                change_ids: vec!["c2".into()],
            },
        ];
        let mut documents = HashMap::from([(
            "s3://b/a".to_string(),
            DocumentOutcome::Indexed("INDEXED".into()),
        )]);
        let changes = change_outcomes(&planned, &documents);
        assert_eq!(changes["c1"], DocumentOutcome::Indexed("INDEXED".into()));
        assert!(!changes["c2"].is_terminal(), "c2 waits for its removal");
        documents.insert(
            "s3://b/x".into(),
            DocumentOutcome::Failed("FAILED: no".into()),
        );
        let changes = change_outcomes(&planned, &documents);
        assert_eq!(changes["c2"], DocumentOutcome::Failed("FAILED: no".into()));
    }
}

//! Documents ingested or deleted directly (IngestKnowledgeBaseDocuments,
//! DeleteKnowledgeBaseDocuments) and their lifecycle.
//!
//! Like a job, a direct operation's whole future is fixed when the call is accepted: the S3 objects
//! are looked up then, the outcome (INDEXED, FAILED, IGNORED, METADATA_UPDATE_FAILED, or gone) is
//! decided then, and so are the times of its transitions. Its status is read off those times, and
//! the outcome reaches the index when the state is next brought up to date after its end, so
//! nothing runs in the background and a document never goes back to an earlier status.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::clock::TimeScale;
use crate::config::DocumentRulesConfig;
use crate::document_index::{DocumentIndex, DocumentOrigin, IndexedDocument, IndexedStatus};
use crate::document_metadata::{AttachedMetadata, DocumentMetadata};
use crate::document_rules::{classify, ObjectKind, UnindexableCause, METADATA_SUFFIX};
use crate::s3_scope::ListedObject;

/// What the operation does to its document when its lifecycle ends.
#[derive(Debug, Clone, PartialEq)]
pub enum DirectAction {
    /// The document as the index will hold it (its `updated_at` is the end of the lifecycle).
    Ingest(IngestOutcome),
    /// The document leaves the index (NOT_FOUND afterwards).
    Delete,
}

/// The decided result of ingesting one document.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestOutcome {
    pub etag: String,
    pub size_bytes: u64,
    pub status: IndexedStatus,
    pub status_reason: Option<String>,
    pub origin: DocumentOrigin,
    pub metadata: Option<AttachedMetadata>,
    /// The document's `KEY.metadata.json` sidecar (key, ETag) when it was the metadata given: it is
    /// recorded as applied, so a later job sees that sidecar as unchanged, as after a job.
    pub applied_sidecar: Option<(String, String)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DirectOperation {
    pub action: DirectAction,
    pub client_token: Option<String>,
    pub accepted_at: DateTime<Utc>,
    /// STARTING -> IN_PROGRESS (ingest), DELETING -> DELETE_IN_PROGRESS (delete).
    pub in_progress_at: DateTime<Utc>,
    /// The outcome is in the index from then on.
    pub ends_at: DateTime<Utc>,
}

impl DirectOperation {
    /// Schedules an operation accepted at `accepted_at`: `first_seconds` in the first status (at
    /// most the whole), `total_seconds` in all, in Bedrock seconds.
    pub fn new(
        action: DirectAction,
        client_token: Option<String>,
        accepted_at: DateTime<Utc>,
        first_seconds: f64,
        total_seconds: f64,
        scale: TimeScale,
    ) -> Self {
        Self {
            action,
            client_token,
            accepted_at,
            in_progress_at: accepted_at + scale.real_duration(first_seconds.min(total_seconds)),
            ends_at: accepted_at + scale.real_duration(total_seconds),
        }
    }

    pub fn ingest(
        outcome: IngestOutcome,
        client_token: Option<String>,
        accepted_at: DateTime<Utc>,
        rules: &DocumentRulesConfig,
        scale: TimeScale,
    ) -> Self {
        Self::new(
            DirectAction::Ingest(outcome),
            client_token,
            accepted_at,
            rules.direct_ingest_starting_seconds,
            rules.direct_ingest_seconds,
            scale,
        )
    }

    pub fn delete(
        client_token: Option<String>,
        accepted_at: DateTime<Utc>,
        rules: &DocumentRulesConfig,
        scale: TimeScale,
    ) -> Self {
        Self::new(
            DirectAction::Delete,
            client_token,
            accepted_at,
            rules.direct_delete_deleting_seconds,
            rules.direct_delete_seconds,
            scale,
        )
    }

    pub fn is_due(&self, now: DateTime<Utc>) -> bool {
        now >= self.ends_at
    }

    /// The status the API shows while the operation runs, and since when.
    pub fn status_at(&self, now: DateTime<Utc>) -> (&'static str, DateTime<Utc>) {
        let before_progress = now < self.in_progress_at;
        match (&self.action, before_progress) {
            (DirectAction::Ingest(_), true) => ("STARTING", self.accepted_at),
            (DirectAction::Ingest(_), false) => ("IN_PROGRESS", self.in_progress_at),
            (DirectAction::Delete, true) => ("DELETING", self.accepted_at),
            (DirectAction::Delete, false) => ("DELETE_IN_PROGRESS", self.in_progress_at),
        }
    }

    /// The status the document will have once the operation has ended.
    pub fn planned_status(&self) -> &'static str {
        match &self.action {
            DirectAction::Ingest(outcome) => outcome.status.as_str(),
            DirectAction::Delete => "NOT_FOUND",
        }
    }

    /// Puts the outcome into the index, stamped with the end of the lifecycle.
    pub fn apply(self, index: &mut DocumentIndex, object_key: &str) {
        match self.action {
            DirectAction::Ingest(outcome) => {
                if let Some((sidecar_key, etag)) = outcome.applied_sidecar {
                    index.metadata.insert(sidecar_key, etag);
                }
                index.documents.insert(
                    object_key.to_string(),
                    IndexedDocument {
                        etag: outcome.etag,
                        size_bytes: outcome.size_bytes,
                        status: outcome.status,
                        status_reason: outcome.status_reason,
                        updated_at: self.ends_at,
                        origin: outcome.origin,
                        metadata: outcome.metadata,
                    },
                );
            }
            DirectAction::Delete => {
                index.documents.remove(object_key);
            }
        }
    }
}

/// Everything the outcome of ingesting one document depends on, read when the call is accepted.
#[derive(Debug, Clone)]
pub struct IngestInput<'a> {
    pub bucket: &'a str,
    pub object_key: &'a str,
    /// The content object, None when S3 has no such object.
    pub object: Option<ListedObject>,
    pub metadata: Option<DocumentMetadata>,
    /// For `S3_LOCATION` metadata: the metadata object, None when S3 has no such object.
    pub metadata_object: Option<ListedObject>,
    /// What the index holds for the key now.
    pub existing: Option<&'a IndexedDocument>,
    /// The reason of a fail-documents rule matching the key.
    pub injected_failure: Option<String>,
}

/// Decides what ingesting a document ends as, first cause first:
/// 1. no such object: FAILED, naming the object;
/// 2. a `.metadata.json` file given as a document: IGNORED (Bedrock reads those as metadata);
/// 3. an unsupported file type: IGNORED; over `max_document_bytes`: FAILED (as a job counts it);
/// 4. a fail-documents rule: FAILED with the rule's reason;
/// 5. an `S3_LOCATION` metadata object that does not exist: METADATA_UPDATE_FAILED when the
///    document is already indexed at this very content (Bedrock: "a metadata update for an
///    existing document ... failed"; the content stays indexed with its old metadata), FAILED
///    otherwise;
/// 6. otherwise INDEXED, with the metadata attached.
pub fn decide_ingest(rules: &DocumentRulesConfig, input: IngestInput<'_>) -> IngestOutcome {
    let uri = format!("s3://{}/{}", input.bucket, input.object_key);
    let Some(object) = input.object else {
        return IngestOutcome {
            etag: String::new(),
            size_bytes: 0,
            status: IndexedStatus::Failed,
            status_reason: Some(format!(
                "The document {uri} does not exist in S3 (no object with that key)."
            )),
            origin: DocumentOrigin::Direct,
            metadata: None,
            applied_sidecar: None,
        };
    };
    let ended = |status, reason: String| IngestOutcome {
        etag: object.etag.clone(),
        size_bytes: object.size_bytes,
        status,
        status_reason: Some(reason),
        origin: DocumentOrigin::Direct,
        metadata: None,
        applied_sidecar: None,
    };
    match classify(rules, input.object_key, object.size_bytes) {
        ObjectKind::Metadata { document_key } => {
            return ended(
                IndexedStatus::Ignored,
                format!(
                    "{uri} is a metadata file ({METADATA_SUFFIX}), not a document: it holds the metadata of s3://{}/{document_key}.",
                    input.bucket
                ),
            )
        }
        ObjectKind::Unindexable {
            reason,
            cause: UnindexableCause::UnsupportedType,
        } => return ended(IndexedStatus::Ignored, reason),
        ObjectKind::Unindexable {
            reason,
            cause: UnindexableCause::TooLarge,
        } => return ended(IndexedStatus::Failed, reason),
        ObjectKind::Document => {}
    }
    if let Some(reason) = input.injected_failure {
        return ended(IndexedStatus::Failed, reason);
    }
    let metadata = match input.metadata {
        None => None,
        Some(source) => match (source.s3_uri(), &input.metadata_object) {
            (Some(metadata_uri), None) => {
                let reason = format!(
                    "The metadata file {metadata_uri} does not exist in S3 (no object with that key)."
                );
                let same_content_indexed = input.existing.filter(|existing| {
                    existing.status.has_indexed_content() && existing.etag == object.etag
                });
                return match same_content_indexed {
                    Some(existing) => IngestOutcome {
                        status: IndexedStatus::MetadataUpdateFailed,
                        status_reason: Some(reason),
                        origin: existing.origin,
                        metadata: existing.metadata.clone(),
                        ..ended(IndexedStatus::MetadataUpdateFailed, String::new())
                    },
                    None => ended(IndexedStatus::Failed, reason),
                };
            }
            (_, metadata_object) => Some(AttachedMetadata {
                source,
                etag: metadata_object.as_ref().map(|object| object.etag.clone()),
            }),
        },
    };
    let sidecar_key = format!("{}{METADATA_SUFFIX}", input.object_key);
    let sidecar_uri = format!("s3://{}/{sidecar_key}", input.bucket);
    let applied_sidecar = metadata.as_ref().and_then(|metadata| {
        let is_sidecar = metadata.source.s3_uri() == Some(sidecar_uri.as_str());
        let etag = metadata.etag.clone()?;
        is_sidecar.then(|| (sidecar_key.clone(), etag))
    });
    IngestOutcome {
        etag: object.etag,
        size_bytes: object.size_bytes,
        status: IndexedStatus::Indexed,
        status_reason: None,
        origin: DocumentOrigin::Direct,
        metadata,
        applied_sidecar,
    }
}

/// A running direct operation as the inspection document shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DirectOperationInspection {
    pub key: String,
    /// `INGEST` or `DELETE`.
    pub operation: &'static str,
    /// STARTING / IN_PROGRESS / DELETING / DELETE_IN_PROGRESS.
    pub status: &'static str,
    /// What it ends as: INDEXED / FAILED / IGNORED / METADATA_UPDATE_FAILED, or NOT_FOUND.
    pub planned_status: &'static str,
    pub planned_status_reason: Option<String>,
    pub metadata: Option<AttachedMetadata>,
    pub client_token: Option<String>,
    #[serde(serialize_with = "crate::timestamps::serialize_millis")]
    pub accepted_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::timestamps::serialize_millis")]
    pub scheduled_in_progress_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::timestamps::serialize_millis")]
    pub scheduled_end_at: DateTime<Utc>,
}

impl DirectOperationInspection {
    pub fn of(key: &str, operation: &DirectOperation, now: DateTime<Utc>) -> Self {
        let (kind, reason, metadata) = match &operation.action {
            DirectAction::Ingest(outcome) => (
                "INGEST",
                outcome.status_reason.clone(),
                outcome.metadata.clone(),
            ),
            DirectAction::Delete => ("DELETE", None, None),
        };
        Self {
            key: key.to_string(),
            operation: kind,
            status: operation.status_at(now).0,
            planned_status: operation.planned_status(),
            planned_status_reason: reason,
            metadata,
            client_token: operation.client_token.clone(),
            accepted_at: operation.accepted_at,
            scheduled_in_progress_at: operation.in_progress_at,
            scheduled_end_at: operation.ends_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn object(key: &str, etag: &str) -> ListedObject {
        ListedObject {
            key: key.to_string(),
            etag: etag.to_string(),
            size_bytes: 10,
        }
    }

    fn input<'a>(object_key: &'a str, found: Option<ListedObject>) -> IngestInput<'a> {
        IngestInput {
            bucket: "bkt",
            object_key,
            object: found,
            metadata: None,
            metadata_object: None,
            existing: None,
            injected_failure: None,
        }
    }

    #[test]
    fn lifecycle_walks_starting_in_progress_then_is_due() {
        let start = Utc::now();
        let scale = TimeScale::new(10.0).unwrap();
        let operation = DirectOperation::new(DirectAction::Delete, None, start, 2.0, 10.0, scale);
        assert_eq!(operation.status_at(start), ("DELETING", start));
        let in_progress = start + Duration::milliseconds(200);
        assert_eq!(
            operation.status_at(in_progress),
            ("DELETE_IN_PROGRESS", in_progress)
        );
        assert!(!operation.is_due(start + Duration::milliseconds(999)));
        assert!(operation.is_due(start + Duration::seconds(1)));
        let capped = DirectOperation::new(DirectAction::Delete, None, start, 50.0, 10.0, scale);
        assert_eq!(capped.in_progress_at, capped.ends_at);
    }

    #[test]
    fn missing_unsupported_oversized_and_injected_documents_end_failed_or_ignored() {
        let rules = DocumentRulesConfig::default();
        let missing = decide_ingest(&rules, input("docs/a.txt", None));
        assert_eq!(missing.status, IndexedStatus::Failed);
        assert!(missing
            .status_reason
            .unwrap()
            .contains("s3://bkt/docs/a.txt"));
        let unsupported =
            decide_ingest(&rules, input("docs/a.exe", Some(object("docs/a.exe", "1"))));
        assert_eq!(unsupported.status, IndexedStatus::Ignored);
        let sidecar = decide_ingest(
            &rules,
            input(
                "docs/a.txt.metadata.json",
                Some(object("docs/a.txt.metadata.json", "1")),
            ),
        );
        assert_eq!(sidecar.status, IndexedStatus::Ignored);
        let mut large = object("docs/big.pdf", "1");
        large.size_bytes = rules.max_document_bytes + 1;
        assert_eq!(
            decide_ingest(&rules, input("docs/big.pdf", Some(large))).status,
            IndexedStatus::Failed
        );
        let injected = IngestInput {
            injected_failure: Some("corrupt".to_string()),
            ..input("docs/a.txt", Some(object("docs/a.txt", "1")))
        };
        let injected = decide_ingest(&rules, injected);
        assert_eq!(injected.status, IndexedStatus::Failed);
        assert_eq!(injected.status_reason.as_deref(), Some("corrupt"));
    }

    #[test]
    fn sidecar_metadata_is_attached_and_recorded_as_applied() {
        let rules = DocumentRulesConfig::default();
        let metadata =
            DocumentMetadata::s3_location("s3://bkt/docs/a.txt.metadata.json".to_string(), None)
                .unwrap();
        let outcome = decide_ingest(
            &rules,
            IngestInput {
                metadata: Some(metadata.clone()),
                metadata_object: Some(object("docs/a.txt.metadata.json", "m1")),
                ..input("docs/a.txt", Some(object("docs/a.txt", "1")))
            },
        );
        assert_eq!(outcome.status, IndexedStatus::Indexed);
        assert_eq!(
            outcome.applied_sidecar,
            Some(("docs/a.txt.metadata.json".to_string(), "m1".to_string()))
        );
        assert_eq!(
            outcome.metadata,
            Some(AttachedMetadata {
                source: metadata,
                etag: Some("m1".to_string())
            })
        );
    }

    #[test]
    fn missing_metadata_fails_a_new_document_but_only_the_update_of_an_indexed_one() {
        let rules = DocumentRulesConfig::default();
        let metadata =
            DocumentMetadata::s3_location("s3://bkt/meta/a.json".to_string(), None).unwrap();
        let new_document = decide_ingest(
            &rules,
            IngestInput {
                metadata: Some(metadata.clone()),
                ..input("docs/a.txt", Some(object("docs/a.txt", "1")))
            },
        );
        assert_eq!(new_document.status, IndexedStatus::Failed);
        assert!(new_document
            .status_reason
            .unwrap()
            .contains("s3://bkt/meta/a.json"));

        let indexed = IndexedDocument {
            etag: "1".to_string(),
            size_bytes: 10,
            status: IndexedStatus::Indexed,
            status_reason: None,
            updated_at: Utc::now(),
            origin: DocumentOrigin::Job,
            metadata: None,
        };
        let update = decide_ingest(
            &rules,
            IngestInput {
                metadata: Some(metadata),
                existing: Some(&indexed),
                ..input("docs/a.txt", Some(object("docs/a.txt", "1")))
            },
        );
        assert_eq!(update.status, IndexedStatus::MetadataUpdateFailed);
        assert_eq!(update.origin, DocumentOrigin::Job);
        assert_eq!(update.etag, "1");
    }
}

//! What a data source has indexed: the documents (with the ETag they were indexed at) and the
//! metadata sidecars that were applied. Jobs diff their S3 snapshot against this, and replace parts
//! of it when they complete; directly ingested or deleted documents change it when their own
//! lifecycle ends.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::document_metadata::AttachedMetadata;

/// Final statuses a document can keep in the index (Bedrock DocumentStatus values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IndexedStatus {
    Indexed,
    Failed,
    /// Bedrock skipped it (unsupported file type, a metadata file given as a document); only
    /// direct ingestion reports it, jobs count such objects as failed.
    Ignored,
    /// A metadata update of a document indexed at the same content failed; its content stays
    /// indexed with the metadata it had.
    MetadataUpdateFailed,
}

impl IndexedStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Indexed => "INDEXED",
            Self::Failed => "FAILED",
            Self::Ignored => "IGNORED",
            Self::MetadataUpdateFailed => "METADATA_UPDATE_FAILED",
        }
    }

    /// The document's content is in the vector store: a job finding it at another ETag modifies
    /// it rather than adding it.
    pub fn has_indexed_content(self) -> bool {
        matches!(self, Self::Indexed | Self::MetadataUpdateFailed)
    }
}

/// How a document got into the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DocumentOrigin {
    /// Applied by a completed ingestion job.
    Job,
    /// IngestKnowledgeBaseDocuments.
    Direct,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndexedDocument {
    pub etag: String,
    pub size_bytes: u64,
    pub status: IndexedStatus,
    /// Why a FAILED (IGNORED, METADATA_UPDATE_FAILED) document got there (Bedrock's statusReason).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    #[serde(serialize_with = "crate::timestamps::serialize_millis")]
    pub updated_at: DateTime<Utc>,
    pub origin: DocumentOrigin,
    /// Metadata given with IngestKnowledgeBaseDocuments; null for documents a job indexed (their
    /// sidecars are in the data source's `metadata_documents`).
    pub metadata: Option<AttachedMetadata>,
}

#[derive(Debug, Clone, Default)]
pub struct DocumentIndex {
    /// Object key -> document.
    pub documents: BTreeMap<String, IndexedDocument>,
    /// Metadata sidecar key -> ETag last applied.
    pub metadata: BTreeMap<String, String>,
}

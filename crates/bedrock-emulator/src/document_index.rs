//! What a data source has indexed: the documents (with the ETag they were indexed at) and the
//! metadata sidecars that were applied. Jobs diff their S3 snapshot against this, and replace parts
//! of it when they complete.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IndexedStatus {
    Indexed,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IndexedDocument {
    pub etag: String,
    pub size_bytes: u64,
    pub status: IndexedStatus,
    /// Why a FAILED document failed (Bedrock's statusReason).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    #[serde(serialize_with = "crate::timestamps::serialize_millis")]
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct DocumentIndex {
    /// Object key -> document.
    pub documents: BTreeMap<String, IndexedDocument>,
    /// Metadata sidecar key -> ETag last applied.
    pub metadata: BTreeMap<String, String>,
}

//! What the document operations take and answer per document: its identifier and its status
//! (Bedrock's DocumentIdentifier and KnowledgeBaseDocumentDetail, without the wire names).

use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum DocumentIdentifier {
    S3 { uri: String },
    Custom { id: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct DocumentDetail {
    pub knowledge_base_id: String,
    pub data_source_id: String,
    pub identifier: DocumentIdentifier,
    /// Bedrock DocumentStatus value.
    pub status: &'static str,
    pub status_reason: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
}

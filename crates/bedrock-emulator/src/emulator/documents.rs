//! GetKnowledgeBaseDocuments, ListKnowledgeBaseDocuments, IngestKnowledgeBaseDocuments,
//! DeleteKnowledgeBaseDocuments.
//!
//! A document's status is its index entry (INDEXED / FAILED), overlaid by the running job on its
//! data source: documents the job will (re)index show STARTING / IN_PROGRESS and documents it will
//! delete show DELETING until the job completes. Documents nobody indexed are NOT_FOUND.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::Emulator;
use crate::catalog::{DataSource, DataSourceKey};
use crate::counters::Operation;
use crate::document_index::{IndexedDocument, IndexedStatus};
use crate::document_rules::{classify, ObjectKind};
use crate::errors::ApiError;
use crate::jobs::JobStatus;
use crate::pagination::paginate;
use crate::s3_scope::parse_s3_uri;
use crate::state::EmulatorState;
use crate::sync_plan::DocumentChange;

#[derive(Debug, Clone, PartialEq, Eq)]
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

/// A document's status as the API reports it.
#[derive(Debug, Clone)]
struct DocumentState {
    status: &'static str,
    status_reason: Option<String>,
    updated_at: DateTime<Utc>,
}

impl Emulator {
    pub fn get_knowledge_base_documents(
        &self,
        knowledge_base_id: &str,
        data_source_id: &str,
        identifiers: Vec<DocumentIdentifier>,
    ) -> Result<Vec<DocumentDetail>, ApiError> {
        require_identifiers(&identifiers)?;
        let (mut state, now) = self.lock();
        state.take_read_token(Operation::GetKnowledgeBaseDocuments, now)?;
        let data_source = state
            .catalog
            .data_source(knowledge_base_id, data_source_id)?;
        let keys = identifiers
            .iter()
            .map(|identifier| object_key_in_bucket(data_source, identifier))
            .collect::<Result<Vec<_>, _>>()?;
        let key = data_source.key();
        let statuses = document_states(&state, &key);
        Ok(identifiers
            .into_iter()
            .zip(keys)
            .map(|(identifier, object_key)| {
                let document = object_key.and_then(|object_key| statuses.get(&object_key));
                detail(&key, identifier, document)
            })
            .collect())
    }

    pub fn list_knowledge_base_documents(
        &self,
        knowledge_base_id: &str,
        data_source_id: &str,
        max_results: Option<i64>,
        next_token: Option<&str>,
    ) -> Result<(Vec<DocumentDetail>, Option<String>), ApiError> {
        let (mut state, now) = self.lock();
        state.take_read_token(Operation::ListKnowledgeBaseDocuments, now)?;
        let data_source = state
            .catalog
            .data_source(knowledge_base_id, data_source_id)?;
        let (key, scope) = (data_source.key(), data_source.scope.clone());
        let details = document_states(&state, &key)
            .into_iter()
            .map(|(object_key, document)| {
                let identifier = DocumentIdentifier::S3 {
                    uri: scope.uri(&object_key),
                };
                detail(&key, identifier, Some(&document))
            })
            .collect();
        paginate(details, max_results, next_token)
    }

    /// Indexes the given S3 documents at once (Bedrock does it asynchronously; the response says
    /// STARTING either way). The objects are looked up in S3 to record their ETag, so the next
    /// ingestion job sees them as unchanged.
    pub async fn ingest_knowledge_base_documents(
        &self,
        knowledge_base_id: &str,
        data_source_id: &str,
        identifiers: Vec<DocumentIdentifier>,
    ) -> Result<Vec<DocumentDetail>, ApiError> {
        require_identifiers(&identifiers)?;
        let (data_source, object_keys) = {
            let (state, _) = self.lock();
            let data_source = state
                .catalog
                .data_source(knowledge_base_id, data_source_id)?
                .clone();
            let object_keys = identifiers
                .iter()
                .map(|identifier| object_key_in_scope(&data_source, identifier))
                .collect::<Result<Vec<_>, _>>()?;
            (data_source, object_keys)
        };
        let bucket = data_source.scope.bucket.as_str();
        let mut listed = Vec::with_capacity(object_keys.len());
        for object_key in &object_keys {
            let objects = self
                .shared
                .lister
                .list(bucket, object_key)
                .await
                .map_err(|error| {
                    ApiError::Internal(format!(
                        "Unable to read s3://{bucket}/{object_key}: {error}"
                    ))
                })?;
            listed.push(objects.into_iter().find(|object| &object.key == object_key));
        }
        let (mut state, now) = self.lock();
        let key = data_source.key();
        let rules = &self.config().documents;
        let mut indexed = Vec::with_capacity(object_keys.len());
        for (object_key, object) in object_keys.iter().zip(listed) {
            let document = match object {
                None => failed_document(
                    String::new(),
                    0,
                    format!("Object s3://{bucket}/{object_key} does not exist."),
                    now,
                ),
                Some(object) => {
                    let failure = match classify(rules, object_key, object.size_bytes) {
                        ObjectKind::Document => state.faults.document_failure(
                            knowledge_base_id,
                            data_source_id,
                            object_key,
                        ),
                        ObjectKind::Unindexable { reason } => Some(reason),
                        ObjectKind::Metadata { .. } => {
                            Some("A metadata file is not a document.".to_string())
                        }
                    };
                    match failure {
                        Some(reason) => {
                            failed_document(object.etag, object.size_bytes, reason, now)
                        }
                        None => IndexedDocument {
                            etag: object.etag,
                            size_bytes: object.size_bytes,
                            status: IndexedStatus::Indexed,
                            status_reason: None,
                            updated_at: now,
                        },
                    }
                }
            };
            indexed.push((object_key.clone(), document));
        }
        state
            .indexes
            .entry(key.clone())
            .or_default()
            .documents
            .extend(indexed);
        Ok(identifiers
            .into_iter()
            .map(|identifier| DocumentDetail {
                knowledge_base_id: key.knowledge_base_id.clone(),
                data_source_id: key.data_source_id.clone(),
                identifier,
                status: "STARTING",
                status_reason: None,
                updated_at: Some(now),
            })
            .collect())
    }

    /// Removes the documents from the index at once; the response says DELETING like Bedrock's.
    pub fn delete_knowledge_base_documents(
        &self,
        knowledge_base_id: &str,
        data_source_id: &str,
        identifiers: Vec<DocumentIdentifier>,
    ) -> Result<Vec<DocumentDetail>, ApiError> {
        require_identifiers(&identifiers)?;
        let (mut state, now) = self.lock();
        let data_source = state
            .catalog
            .data_source(knowledge_base_id, data_source_id)?;
        let object_keys = identifiers
            .iter()
            .map(|identifier| object_key_in_bucket(data_source, identifier))
            .collect::<Result<Vec<_>, _>>()?;
        let key = data_source.key();
        if let Some(index) = state.indexes.get_mut(&key) {
            for object_key in object_keys.iter().flatten() {
                index.documents.remove(object_key);
            }
        }
        Ok(identifiers
            .into_iter()
            .map(|identifier| DocumentDetail {
                knowledge_base_id: key.knowledge_base_id.clone(),
                data_source_id: key.data_source_id.clone(),
                identifier,
                status: "DELETING",
                status_reason: None,
                updated_at: Some(now),
            })
            .collect())
    }
}

/// Bedrock's model: each of these operations takes 1 to 10 documents per call.
const MAX_DOCUMENTS_PER_CALL: usize = 10;

fn require_identifiers(identifiers: &[DocumentIdentifier]) -> Result<(), ApiError> {
    if !(1..=MAX_DOCUMENTS_PER_CALL).contains(&identifiers.len()) {
        return Err(ApiError::Validation(format!(
            "1 validation error detected: {} documents given; member must have between 1 and {MAX_DOCUMENTS_PER_CALL} items",
            identifiers.len()
        )));
    }
    Ok(())
}

/// The object key an identifier names, or None when it is in another bucket (so: NOT_FOUND).
fn object_key_in_bucket(
    data_source: &DataSource,
    identifier: &DocumentIdentifier,
) -> Result<Option<String>, ApiError> {
    match identifier {
        DocumentIdentifier::Custom { .. } => Err(ApiError::Validation(format!(
            "Data source {} is an S3 data source; identify its documents with dataSourceType S3.",
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

/// Like `object_key_in_bucket`, but a document outside the data source's scope is an error: it
/// cannot be ingested into it.
fn object_key_in_scope(
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

fn failed_document(
    etag: String,
    size_bytes: u64,
    reason: String,
    at: DateTime<Utc>,
) -> IndexedDocument {
    IndexedDocument {
        etag,
        size_bytes,
        status: IndexedStatus::Failed,
        status_reason: Some(reason),
        updated_at: at,
    }
}

/// Every document the data source knows of, with the status the API reports now.
fn document_states(state: &EmulatorState, key: &DataSourceKey) -> BTreeMap<String, DocumentState> {
    let mut documents: BTreeMap<String, DocumentState> = state
        .indexes
        .get(key)
        .map(|index| {
            index
                .documents
                .iter()
                .map(|(object_key, document)| {
                    let status = match document.status {
                        IndexedStatus::Indexed => "INDEXED",
                        IndexedStatus::Failed => "FAILED",
                    };
                    let document_state = DocumentState {
                        status,
                        status_reason: document.status_reason.clone(),
                        updated_at: document.updated_at,
                    };
                    (object_key.clone(), document_state)
                })
                .collect()
        })
        .unwrap_or_default();
    let running = state.jobs.iter().filter(|job| {
        &job.data_source == key && matches!(job.status, JobStatus::Starting | JobStatus::InProgress)
    });
    for job in running {
        let Some(plan) = &job.plan else { continue };
        for (object_key, change) in &plan.changes {
            let status = match (change, job.status) {
                (DocumentChange::Deleted, _) => "DELETING",
                (_, JobStatus::Starting) => "STARTING",
                _ => "IN_PROGRESS",
            };
            let document_state = DocumentState {
                status,
                status_reason: None,
                updated_at: job.updated_at,
            };
            documents.insert(object_key.clone(), document_state);
        }
    }
    documents
}

fn detail(
    key: &DataSourceKey,
    identifier: DocumentIdentifier,
    document: Option<&DocumentState>,
) -> DocumentDetail {
    DocumentDetail {
        knowledge_base_id: key.knowledge_base_id.clone(),
        data_source_id: key.data_source_id.clone(),
        identifier,
        status: document.map_or("NOT_FOUND", |document| document.status),
        status_reason: document.and_then(|document| document.status_reason.clone()),
        updated_at: document.map(|document| document.updated_at),
    }
}

//! GetKnowledgeBaseDocuments, ListKnowledgeBaseDocuments.
//!
//! A document's status is its index entry (INDEXED, FAILED, IGNORED, METADATA_UPDATE_FAILED),
//! overlaid by the running job on its data source (documents the job will (re)index show STARTING /
//! IN_PROGRESS and documents it will delete show DELETING until the job completes), then by a
//! running direct operation on it (STARTING / IN_PROGRESS, DELETING / DELETE_IN_PROGRESS).
//! Documents nobody indexed are NOT_FOUND.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::document_identifiers::{object_key_in_bucket, require_document_count};
use super::Emulator;
use crate::catalog::DataSourceKey;
use crate::counters::Operation;
use crate::document_detail::{DocumentDetail, DocumentIdentifier};
use crate::errors::ApiError;
use crate::jobs::JobStatus;
use crate::pagination::paginate;
use crate::state::EmulatorState;
use crate::sync_plan::DocumentChange;

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
        require_document_count(identifiers.len())?;
        let (mut state, now) = self.lock();
        state.take_document_token(Operation::GetKnowledgeBaseDocuments, now)?;
        let data_source = state
            .catalog
            .data_source(knowledge_base_id, data_source_id)?;
        let keys = identifiers
            .iter()
            .map(|identifier| object_key_in_bucket(data_source, identifier))
            .collect::<Result<Vec<_>, _>>()?;
        let key = data_source.key();
        let statuses = document_states(&state, &key, now);
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
        state.take_document_token(Operation::ListKnowledgeBaseDocuments, now)?;
        let data_source = state
            .catalog
            .data_source(knowledge_base_id, data_source_id)?;
        let (key, scope) = (data_source.key(), data_source.scope.clone());
        let details = document_states(&state, &key, now)
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
}

/// Every document the data source knows of, with the status the API reports now. `state` has been
/// advanced to `now`, so every direct operation still pending is still running.
fn document_states(
    state: &EmulatorState,
    key: &DataSourceKey,
    now: DateTime<Utc>,
) -> BTreeMap<String, DocumentState> {
    let mut documents: BTreeMap<String, DocumentState> = state
        .indexes
        .get(key)
        .map(|index| {
            index
                .documents
                .iter()
                .map(|(object_key, document)| {
                    let document_state = DocumentState {
                        status: document.status.as_str(),
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
    for (object_key, operation) in state.pending_documents.get(key).into_iter().flatten() {
        let (status, updated_at) = operation.status_at(now);
        let document_state = DocumentState {
            status,
            status_reason: None,
            updated_at,
        };
        documents.insert(object_key.clone(), document_state);
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

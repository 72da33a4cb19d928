//! IngestKnowledgeBaseDocuments, DeleteKnowledgeBaseDocuments: documents ingested into or deleted
//! from the index directly, each with its own asynchronous lifecycle (see `direct_documents`).
//!
//! Checks, in order: the request itself (1-10 documents, clientToken format, metadata shape:
//! ValidationException), the operation's token bucket (ThrottlingException), the knowledge base and
//! data source (ResourceNotFoundException), each document inside the data source's scope and named
//! once (ValidationException), clientToken replay (same request: the first answer; another request:
//! ValidationException), no ingestion job running on the data source (ConflictException). Ingest
//! then reads the objects from S3 (InternalServerException when S3 fails or times out) and checks
//! replay and jobs again, since other calls ran meanwhile. A data source that never completed an
//! ingestion job takes no direct call (ValidationException: AWS's first sync must be a job).

use serde::Serialize;

use super::document_identifiers::{object_key_in_scope, reject_duplicates, require_document_count};
use super::Emulator;
use crate::catalog::{DataSource, DataSourceKey};
use crate::client_token::{validate_client_token, ReplayRecord};
use crate::counters::Operation;
use crate::direct_documents::{decide_ingest, DirectOperation, IngestInput};
use crate::document_detail::{DocumentDetail, DocumentIdentifier};
use crate::document_metadata::DocumentMetadata;
use crate::errors::ApiError;
use crate::s3_scope::{parse_s3_uri, within, ListedObject};
use crate::state::EmulatorState;

/// One document of IngestKnowledgeBaseDocuments.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IngestDocument {
    /// What `content` names: `S3 { uri }`, or `Custom` (refused on an S3 data source).
    pub content: DocumentIdentifier,
    pub metadata: Option<DocumentMetadata>,
}

#[derive(Debug, Clone, Default)]
pub struct IngestDocumentsRequest {
    pub client_token: Option<String>,
    pub documents: Vec<IngestDocument>,
}

#[derive(Debug, Clone, Default)]
pub struct DeleteDocumentsRequest {
    pub client_token: Option<String>,
    pub identifiers: Vec<DocumentIdentifier>,
}

/// A document admitted into an ingest call: where its content and metadata are.
struct IngestTarget {
    object_key: String,
    metadata: Option<DocumentMetadata>,
    /// (bucket, key) of an `S3_LOCATION` metadata object.
    metadata_location: Option<(String, String)>,
}

/// What S3 said of one target.
struct Looked {
    object: Option<ListedObject>,
    metadata_object: Option<ListedObject>,
}

impl Emulator {
    pub async fn ingest_knowledge_base_documents(
        &self,
        knowledge_base_id: &str,
        data_source_id: &str,
        request: IngestDocumentsRequest,
    ) -> Result<Vec<DocumentDetail>, ApiError> {
        const OPERATION: Operation = Operation::IngestKnowledgeBaseDocuments;
        require_document_count(request.documents.len())?;
        validate_client_token(request.client_token.as_deref())?;
        let fingerprint = fingerprint(&request.documents);
        let token = request.client_token.as_deref();
        let (data_source, targets) = {
            let (mut state, now) = self.lock();
            state.take_document_token(OPERATION, now)?;
            let data_source = state
                .catalog
                .data_source(knowledge_base_id, data_source_id)?
                .clone();
            let targets = ingest_targets(&data_source, &request.documents)?;
            if let Some(answer) = replayed(
                &mut state,
                &data_source.key(),
                OPERATION,
                token,
                &fingerprint,
            )? {
                return Ok(answer);
            }
            state.check_no_active_job(&data_source.key())?;
            state.check_synced_before(
                &data_source.key(),
                self.config().documents.require_completed_job,
            )?;
            (data_source, targets)
        };
        // S3 is read without the lock: a slow S3 must not stall every other call.
        let bucket = data_source.scope.bucket.as_str();
        let mut looked = Vec::with_capacity(targets.len());
        for target in &targets {
            let object = self.find_object(bucket, &target.object_key).await?;
            let metadata_object = match &target.metadata_location {
                Some((metadata_bucket, metadata_key)) => {
                    self.find_object(metadata_bucket, metadata_key).await?
                }
                None => None,
            };
            looked.push(Looked {
                object,
                metadata_object,
            });
        }

        let (mut state, now) = self.lock();
        let key = state
            .catalog
            .data_source(knowledge_base_id, data_source_id)?
            .key();
        if let Some(answer) = replayed(&mut state, &key, OPERATION, token, &fingerprint)? {
            return Ok(answer);
        }
        state.check_no_active_job(&key)?;
        state.check_synced_before(&key, self.config().documents.require_completed_job)?;
        let rules = &self.config().documents;
        let mut operations = Vec::with_capacity(targets.len());
        for (target, looked) in targets.into_iter().zip(looked) {
            let existing = state
                .indexes
                .get(&key)
                .and_then(|index| index.documents.get(&target.object_key));
            let input = IngestInput {
                bucket,
                object_key: &target.object_key,
                object: looked.object,
                metadata: target.metadata,
                metadata_object: looked.metadata_object,
                existing,
                injected_failure: state.faults.document_failure(
                    knowledge_base_id,
                    data_source_id,
                    &target.object_key,
                ),
            };
            let outcome = decide_ingest(rules, input);
            let operation = DirectOperation::ingest(
                outcome,
                request.client_token.clone(),
                now,
                rules,
                self.time_scale(),
            );
            operations.push((target.object_key, operation));
        }
        tracing::info!(
            knowledge_base_id,
            data_source_id,
            documents = operations.len(),
            "documents ingested directly"
        );
        let pending = state.pending_documents.entry(key.clone()).or_default();
        for (object_key, operation) in operations {
            pending.insert(object_key, operation);
        }
        let answer = accepted(&key, &request.documents_identifiers(), "STARTING", now);
        remember(
            &mut state,
            key,
            OPERATION,
            request.client_token,
            fingerprint,
            &answer,
        );
        Ok(answer)
    }

    pub fn delete_knowledge_base_documents(
        &self,
        knowledge_base_id: &str,
        data_source_id: &str,
        request: DeleteDocumentsRequest,
    ) -> Result<Vec<DocumentDetail>, ApiError> {
        const OPERATION: Operation = Operation::DeleteKnowledgeBaseDocuments;
        require_document_count(request.identifiers.len())?;
        validate_client_token(request.client_token.as_deref())?;
        let fingerprint = fingerprint(&request.identifiers);
        let (mut state, now) = self.lock();
        state.take_document_token(OPERATION, now)?;
        let data_source = state
            .catalog
            .data_source(knowledge_base_id, data_source_id)?;
        let key = data_source.key();
        let object_keys = request
            .identifiers
            .iter()
            .map(|identifier| {
                let object_key = object_key_in_scope(data_source, identifier)?;
                Ok((uri_of(identifier), object_key))
            })
            .collect::<Result<Vec<_>, ApiError>>()?;
        reject_duplicates(&object_keys)?;
        let token = request.client_token.as_deref();
        if let Some(answer) = replayed(&mut state, &key, OPERATION, token, &fingerprint)? {
            return Ok(answer);
        }
        state.check_no_active_job(&key)?;
        state.check_synced_before(&key, self.config().documents.require_completed_job)?;
        let rules = &self.config().documents;
        let pending = state.pending_documents.entry(key.clone()).or_default();
        for (_, object_key) in object_keys {
            let operation = DirectOperation::delete(
                request.client_token.clone(),
                now,
                rules,
                self.time_scale(),
            );
            pending.insert(object_key, operation);
        }
        tracing::info!(
            knowledge_base_id,
            data_source_id,
            documents = request.identifiers.len(),
            "documents deleted directly"
        );
        let answer = accepted(&key, &request.identifiers, "DELETING", now);
        remember(
            &mut state,
            key,
            OPERATION,
            request.client_token,
            fingerprint,
            &answer,
        );
        Ok(answer)
    }

    /// The object `key` of `bucket`, None when there is none; S3 failing or not answering in time is
    /// an InternalServerException (retryable, and nothing was started).
    async fn find_object(&self, bucket: &str, key: &str) -> Result<Option<ListedObject>, ApiError> {
        let timeout = self.config().s3.listing_timeout();
        let objects = within(timeout, self.shared.lister.list(bucket, key))
            .await
            .map_err(|error| {
                ApiError::Internal(format!("Unable to read s3://{bucket}/{key}: {error}"))
            })?;
        Ok(objects.into_iter().find(|object| object.key == key))
    }
}

impl IngestDocumentsRequest {
    fn documents_identifiers(&self) -> Vec<DocumentIdentifier> {
        self.documents
            .iter()
            .map(|document| document.content.clone())
            .collect()
    }
}

/// Each document's object key (inside the data source's scope, each once) and metadata location.
fn ingest_targets(
    data_source: &DataSource,
    documents: &[IngestDocument],
) -> Result<Vec<IngestTarget>, ApiError> {
    let object_keys = documents
        .iter()
        .map(|document| {
            let object_key = object_key_in_scope(data_source, &document.content)?;
            Ok((uri_of(&document.content), object_key))
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    reject_duplicates(&object_keys)?;
    documents
        .iter()
        .zip(object_keys)
        .map(|(document, (_, object_key))| {
            let metadata_location = match document
                .metadata
                .as_ref()
                .and_then(DocumentMetadata::s3_uri)
            {
                Some(uri) => {
                    let (bucket, key) = parse_s3_uri(uri).ok_or_else(|| {
                        ApiError::Validation(format!(
                            "Invalid metadata S3 URI {uri:?}; expected s3://bucket/key."
                        ))
                    })?;
                    Some((bucket.to_string(), key.to_string()))
                }
                None => None,
            };
            Ok(IngestTarget {
                object_key,
                metadata: document.metadata.clone(),
                metadata_location,
            })
        })
        .collect()
}

fn uri_of(identifier: &DocumentIdentifier) -> String {
    match identifier {
        DocumentIdentifier::S3 { uri } => uri.clone(),
        DocumentIdentifier::Custom { id } => id.clone(),
    }
}

/// The canonical form of a request body, to tell a retry from another request with the same token.
fn fingerprint<T: Serialize>(body: &T) -> String {
    serde_json::to_string(body).unwrap_or_default()
}

/// The first answer to this token, when the call is a retry (counted as a replay).
fn replayed(
    state: &mut EmulatorState,
    data_source: &DataSourceKey,
    operation: Operation,
    token: Option<&str>,
    fingerprint: &str,
) -> Result<Option<Vec<DocumentDetail>>, ApiError> {
    let Some(token) = token else {
        return Ok(None);
    };
    let replay_key = (data_source.clone(), operation, token.to_string());
    let Some(record) = state.document_replays.get(&replay_key) else {
        return Ok(None);
    };
    let answer = record.replay(token, fingerprint)?;
    state
        .document_call_counters(data_source, operation)
        .replayed += 1;
    Ok(Some(answer))
}

fn remember(
    state: &mut EmulatorState,
    data_source: DataSourceKey,
    operation: Operation,
    token: Option<String>,
    fingerprint: String,
    answer: &[DocumentDetail],
) {
    if let Some(token) = token {
        let record = ReplayRecord {
            fingerprint,
            response: answer.to_vec(),
        };
        state
            .document_replays
            .insert((data_source, operation, token), record);
    }
}

/// The 202 answer: every document in the lifecycle's first status, as of the call.
fn accepted(
    key: &DataSourceKey,
    identifiers: &[DocumentIdentifier],
    status: &'static str,
    now: chrono::DateTime<chrono::Utc>,
) -> Vec<DocumentDetail> {
    identifiers
        .iter()
        .map(|identifier| DocumentDetail {
            knowledge_base_id: key.knowledge_base_id.clone(),
            data_source_id: key.data_source_id.clone(),
            identifier: identifier.clone(),
            status,
            status_reason: None,
            updated_at: Some(now),
        })
        .collect()
}

//! Handlers of the control endpoints; each is a thin wrapper around an `Emulator` method.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::api::wire::IngestionJobWire;
use crate::config::{DataSourceConfig, KnowledgeBaseConfig};
use crate::emulator::{Emulator, ForeignJobRequest};
use crate::errors::ApiError;
use crate::faults::{FailDocumentsFault, FailJobsFault, SlowJobsFault};

/// Body of `POST /_emulator/faults/throttle-start-ingestion-job`,
/// `POST /_emulator/faults/deny-start-ingestion-job` and
/// `POST /_emulator/faults/throttle-document-operations`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleStartsBody {
    pub count: u32,
}

fn body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|error| ApiError::Validation(format!("Invalid request body: {error}")))
}

fn reply<T: Serialize>(status: StatusCode, result: Result<T, ApiError>) -> Response {
    match result {
        Ok(value) => (status, Json(value)).into_response(),
        Err(error) => error.into_response(),
    }
}

pub async fn health() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

pub async fn state(State(emulator): State<Emulator>) -> Response {
    Json(emulator.inspect()).into_response()
}

pub async fn reset(State(emulator): State<Emulator>) -> Response {
    reply(
        StatusCode::OK,
        emulator.reset().map(|()| json!({ "reset": true })),
    )
}

pub async fn add_knowledge_base(State(emulator): State<Emulator>, bytes: Bytes) -> Response {
    let result = body::<KnowledgeBaseConfig>(&bytes).and_then(|config| {
        let id = config.id.clone();
        emulator.add_knowledge_base(config)?;
        Ok(json!({ "knowledge_base_id": id }))
    });
    reply(StatusCode::CREATED, result)
}

pub async fn add_data_source(
    State(emulator): State<Emulator>,
    Path(knowledge_base_id): Path<String>,
    bytes: Bytes,
) -> Response {
    let result = body::<DataSourceConfig>(&bytes).and_then(|config| {
        let id = config.id.clone();
        emulator.add_data_source(&knowledge_base_id, config)?;
        Ok(json!({ "knowledge_base_id": knowledge_base_id, "data_source_id": id }))
    });
    reply(StatusCode::CREATED, result)
}

pub async fn faults(State(emulator): State<Emulator>) -> Response {
    Json(emulator.faults()).into_response()
}

pub async fn clear_faults(State(emulator): State<Emulator>) -> Response {
    Json(emulator.clear_faults()).into_response()
}

pub async fn fail_jobs(State(emulator): State<Emulator>, bytes: Bytes) -> Response {
    let result = body::<FailJobsFault>(&bytes).and_then(|fault| emulator.add_job_failures(fault));
    reply(StatusCode::OK, result)
}

pub async fn fail_documents(State(emulator): State<Emulator>, bytes: Bytes) -> Response {
    let result =
        body::<FailDocumentsFault>(&bytes).and_then(|fault| emulator.add_document_failures(fault));
    reply(StatusCode::OK, result)
}

pub async fn slow_jobs(State(emulator): State<Emulator>, bytes: Bytes) -> Response {
    let result = body::<SlowJobsFault>(&bytes).and_then(|fault| emulator.add_slow_jobs(fault));
    reply(StatusCode::OK, result)
}

pub async fn throttle_start_ingestion_job(
    State(emulator): State<Emulator>,
    bytes: Bytes,
) -> Response {
    let result = body::<ThrottleStartsBody>(&bytes)
        .map(|request| emulator.add_start_throttles(request.count));
    reply(StatusCode::OK, result)
}

pub async fn throttle_document_operations(
    State(emulator): State<Emulator>,
    bytes: Bytes,
) -> Response {
    let result = body::<ThrottleStartsBody>(&bytes)
        .map(|request| emulator.add_document_throttles(request.count));
    reply(StatusCode::OK, result)
}

pub async fn deny_start_ingestion_job(State(emulator): State<Emulator>, bytes: Bytes) -> Response {
    let result =
        body::<ThrottleStartsBody>(&bytes).map(|request| emulator.add_start_denials(request.count));
    reply(StatusCode::OK, result)
}

pub async fn start_foreign_job(State(emulator): State<Emulator>, bytes: Bytes) -> Response {
    let result = match body::<ForeignJobRequest>(&bytes) {
        Ok(request) => emulator
            .start_foreign_job(request)
            .await
            .map(|job| json!({ "ingestionJob": IngestionJobWire::job(&job) })),
        Err(error) => Err(error),
    };
    reply(StatusCode::CREATED, result)
}

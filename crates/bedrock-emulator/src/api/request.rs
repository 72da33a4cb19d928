//! Shared request/response plumbing of the API handlers: path and body parsing that turn bad input
//! into ValidationException (never axum's plain-text rejections), and the response writer that
//! counts every call and stamps a request id.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::counters::{Operation, UNKNOWN_OPERATION};
use crate::emulator::Emulator;
use crate::errors::ApiError;

pub fn path_params<T>(path: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    path.map(|Path(params)| params)
        .map_err(|rejection| ApiError::Validation(format!("Invalid request path: {rejection}")))
}

/// The SDK always sends a JSON object for operations with a body, but an empty body means "no
/// fields" to a REST-JSON service, so it is accepted as the default request.
pub fn json_body<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|error| ApiError::Validation(format!("Invalid request body: {error}")))
}

/// Writes the operation's response (or error) and records the call for the inspection endpoint.
pub fn respond<T: Serialize>(
    emulator: &Emulator,
    operation: Operation,
    success: StatusCode,
    result: Result<T, ApiError>,
) -> Response {
    let error_type = result.as_ref().err().map(ApiError::error_type);
    emulator.record_call(operation.name(), error_type);
    match &result {
        Ok(_) => tracing::debug!(operation = operation.name(), "request served"),
        Err(error) => tracing::info!(
            operation = operation.name(),
            error_type = error.error_type(),
            message = error.message(),
            "request failed"
        ),
    }
    let mut response = match result {
        Ok(body) => (success, Json(body)).into_response(),
        Err(error) => error.into_response(),
    };
    with_request_id(&mut response);
    response
}

fn with_request_id(response: &mut Response) {
    if let Ok(value) = HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()) {
        response.headers_mut().insert("x-amzn-requestid", value);
    }
}

/// Fallback for any method and path no SDK operation (nor control endpoint) uses.
pub async fn unknown_operation(
    State(emulator): State<Emulator>,
    method: Method,
    uri: Uri,
) -> Response {
    let error = ApiError::UnknownOperation(format!("No operation matches {method} {}", uri.path()));
    emulator.record_call(UNKNOWN_OPERATION, Some(error.error_type()));
    tracing::info!(%method, path = uri.path(), "unknown operation");
    let mut response = error.into_response();
    with_request_id(&mut response);
    response
}

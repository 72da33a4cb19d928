//! Errors of the Bedrock Agent API, rendered the way aws-sdk-bedrockagent parses them: the error
//! type in the `x-amzn-errortype` header, `{"message": "..."}` as the body, and the HTTP status the
//! real service uses for that type.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    ServiceQuotaExceeded(String),
    #[error("{0}")]
    Throttling(String),
    #[error("{0}")]
    AccessDenied(String),
    #[error("{0}")]
    Internal(String),
    /// No SDK operation has this method and path.
    #[error("{0}")]
    UnknownOperation(String),
}

impl ApiError {
    /// The shape name the SDK matches on to build the typed error.
    pub fn error_type(&self) -> &'static str {
        match self {
            Self::ResourceNotFound(_) => "ResourceNotFoundException",
            Self::Validation(_) => "ValidationException",
            Self::Conflict(_) => "ConflictException",
            Self::ServiceQuotaExceeded(_) => "ServiceQuotaExceededException",
            Self::Throttling(_) => "ThrottlingException",
            Self::AccessDenied(_) => "AccessDeniedException",
            Self::Internal(_) => "InternalServerException",
            Self::UnknownOperation(_) => "UnknownOperationException",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::ResourceNotFound(_) | Self::UnknownOperation(_) => StatusCode::NOT_FOUND,
            Self::Validation(_) => StatusCode::BAD_REQUEST,
            Self::Conflict(_) => StatusCode::CONFLICT,
            // Bedrock documents 402 for this one, not 400.
            Self::ServiceQuotaExceeded(_) => StatusCode::PAYMENT_REQUIRED,
            Self::Throttling(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::AccessDenied(_) => StatusCode::FORBIDDEN,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Self::ResourceNotFound(message)
            | Self::Validation(message)
            | Self::Conflict(message)
            | Self::ServiceQuotaExceeded(message)
            | Self::Throttling(message)
            | Self::AccessDenied(message)
            | Self::Internal(message)
            | Self::UnknownOperation(message) => message,
        }
    }

    pub fn knowledge_base_not_found(knowledge_base_id: &str) -> Self {
        Self::ResourceNotFound(format!(
            "Knowledge base {knowledge_base_id} does not exist."
        ))
    }

    pub fn data_source_not_found(knowledge_base_id: &str, data_source_id: &str) -> Self {
        Self::ResourceNotFound(format!(
            "Data source {data_source_id} does not exist in knowledge base {knowledge_base_id}."
        ))
    }

    pub fn ingestion_job_not_found(
        knowledge_base_id: &str,
        data_source_id: &str,
        ingestion_job_id: &str,
    ) -> Self {
        Self::ResourceNotFound(format!(
            "Ingestion job {ingestion_job_id} does not exist for data source {data_source_id} in knowledge base {knowledge_base_id}."
        ))
    }

    pub fn rate_exceeded() -> Self {
        Self::Throttling("Rate exceeded".to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "message": self.message() });
        let mut response = (self.status(), axum::Json(body)).into_response();
        response.headers_mut().insert(
            "x-amzn-errortype",
            HeaderValue::from_static(self.error_type()),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_type_has_the_bedrock_status() {
        assert_eq!(
            ApiError::Conflict(String::new()).status(),
            StatusCode::CONFLICT
        );
        assert_eq!(
            ApiError::ServiceQuotaExceeded(String::new())
                .status()
                .as_u16(),
            402
        );
        assert_eq!(ApiError::rate_exceeded().status().as_u16(), 429);
        assert_eq!(
            ApiError::knowledge_base_not_found("KB").error_type(),
            "ResourceNotFoundException"
        );
    }

    #[test]
    fn error_response_carries_type_header_and_message_body() {
        let response = ApiError::Validation("bad".to_string()).into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            response.headers()["x-amzn-errortype"],
            "ValidationException"
        );
    }
}

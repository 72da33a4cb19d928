//! Classifies AWS errors (every call's, StartIngestionJob's included) into what the workflow does
//! about them. The error names here are the `errorType`s the functions return, which the state
//! machine's Retry/Catch match on.

/// `errorType` for "a job is already running" (ours or one started elsewhere): wait, never fail.
pub const DATA_SOURCE_BUSY: &str = "DataSourceBusy";
/// `errorType` for Bedrock throttling: retried with backoff and jitter.
pub const THROTTLED: &str = "ThrottlingException";
/// `errorType` for errors no retry fixes (access denied, unknown ids, invalid requests).
pub const NOT_RETRYABLE: &str = "NotRetryable";
/// `errorType` for errors that may pass (5xx, timeouts): retried a few times.
pub const TRANSIENT: &str = "TransientError";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Busy,
    Throttled,
    NotRetryable,
    Transient,
}

impl ErrorClass {
    pub fn error_type(self) -> &'static str {
        match self {
            Self::Busy => DATA_SOURCE_BUSY,
            Self::Throttled => THROTTLED,
            Self::NotRetryable => NOT_RETRYABLE,
            Self::Transient => TRANSIENT,
        }
    }
}

/// `code` is the service error code (e.g. "ConflictException"), `message` its message.
/// The docs do not say which error a start on a busy data source gets; callers of the real
/// service have seen Conflict, ServiceQuotaExceeded and a ValidationException that says a job is
/// ongoing. All of them mean "busy".
pub fn classify(code: Option<&str>, message: Option<&str>) -> ErrorClass {
    let message = message.unwrap_or_default().to_ascii_lowercase();
    match code.unwrap_or_default() {
        "ThrottlingException" | "TooManyRequestsException" => ErrorClass::Throttled,
        "ConflictException" | "ServiceQuotaExceededException" => ErrorClass::Busy,
        "ValidationException"
            if ["ongoing", "running", "in progress", "in_progress"]
                .iter()
                .any(|w| message.contains(w)) =>
        {
            ErrorClass::Busy
        }
        "AccessDeniedException"
        | "ResourceNotFoundException"
        | "ValidationException"
        | "UnrecognizedClientException"
        | "InvalidSignatureException" => ErrorClass::NotRetryable,
        _ => ErrorClass::Transient,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_in_every_form_the_service_uses() {
        assert_eq!(classify(Some("ConflictException"), None), ErrorClass::Busy);
        assert_eq!(
            classify(Some("ServiceQuotaExceededException"), Some("limit")),
            ErrorClass::Busy
        );
        assert_eq!(
            classify(
                Some("ValidationException"),
                Some("There is an ongoing ingestion job for this data source")
            ),
            ErrorClass::Busy
        );
        assert_eq!(
            classify(
                Some("ValidationException"),
                Some("A job is already RUNNING")
            ),
            ErrorClass::Busy
        );
    }

    #[test]
    fn throttling_fatal_and_transient() {
        assert_eq!(
            classify(Some("ThrottlingException"), None),
            ErrorClass::Throttled
        );
        assert_eq!(
            classify(Some("AccessDeniedException"), None),
            ErrorClass::NotRetryable
        );
        assert_eq!(
            classify(Some("ResourceNotFoundException"), None),
            ErrorClass::NotRetryable
        );
        assert_eq!(
            classify(Some("ValidationException"), Some("clientToken is invalid")),
            ErrorClass::NotRetryable
        );
        assert_eq!(
            classify(Some("InternalServerException"), None),
            ErrorClass::Transient
        );
        assert_eq!(classify(None, None), ErrorClass::Transient);
    }
}

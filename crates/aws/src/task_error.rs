//! Errors a function returns to Lambda. The `errorType` is what Step Functions' Retry and Catch
//! match on, so it is chosen deliberately instead of the Rust type name.

use kb_autosync_core::error_class::ErrorClass;
use lambda_runtime::Diagnostic;

use crate::config::ConfigError;
use crate::AwsError;

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct TaskError {
    pub error_type: &'static str,
    pub message: String,
}

impl TaskError {
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        Self {
            error_type: class.error_type(),
            message: message.into(),
        }
    }

    /// The execution no longer holds its data source's lease (it was handed over): the state
    /// machine ends the execution quietly, since the holder covers what is pending.
    pub fn lease_moved(message: impl Into<String>) -> Self {
        Self {
            error_type: kb_autosync_core::lease::LEASE_MOVED,
            message: message.into(),
        }
    }

    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self {
            error_type: "InvalidInput",
            message: message.into(),
        }
    }
}

/// AWS errors: classified by their code (throttling, not retryable, transient).
impl From<AwsError> for TaskError {
    fn from(err: AwsError) -> Self {
        let class = kb_autosync_core::error_class::classify(Some(&err.code), Some(&err.message));
        // A data source that is "busy" only matters for StartIngestionJob; elsewhere a conflict
        // is a transient state.
        let class = if class == ErrorClass::Busy {
            ErrorClass::Transient
        } else {
            class
        };
        Self::new(class, err.to_string())
    }
}

impl From<ConfigError> for TaskError {
    fn from(err: ConfigError) -> Self {
        Self {
            error_type: "ConfigurationError",
            message: err.to_string(),
        }
    }
}

impl From<TaskError> for Diagnostic {
    fn from(err: TaskError) -> Self {
        Diagnostic {
            error_type: err.error_type.to_string(),
            error_message: err.message,
        }
    }
}

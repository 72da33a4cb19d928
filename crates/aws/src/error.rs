use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// An AWS call that failed, with the service's error code and message kept for classification.
#[derive(Debug, thiserror::Error)]
#[error("{operation} failed: {code}: {message}")]
pub struct AwsError {
    pub operation: &'static str,
    pub code: String,
    pub message: String,
}

impl AwsError {
    pub fn new(
        operation: &'static str,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            operation,
            code: code.into(),
            message: message.into(),
        }
    }

    /// From any SDK error: keeps the modelled code/message, or the transport error's text.
    pub fn from_sdk<E, R>(
        operation: &'static str,
        err: aws_sdk_dynamodb::error::SdkError<E, R>,
    ) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        let code = err.code().unwrap_or("Unknown").to_string();
        let message = err.message().map(str::to_string).unwrap_or_else(|| {
            aws_smithy_types::error::display::DisplayErrorContext(&err).to_string()
        });
        Self {
            operation,
            code,
            message,
        }
    }

    pub fn is(&self, code: &str) -> bool {
        self.code == code
    }
}

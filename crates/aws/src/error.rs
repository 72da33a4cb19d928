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

    /// A conditional write whose condition did not hold: someone else got there first.
    pub fn is_condition_failed(&self) -> bool {
        self.is(CONDITION_FAILED)
    }
}

/// DynamoDB's error code for a conditional write whose condition did not hold.
pub const CONDITION_FAILED: &str = "ConditionalCheckFailedException";

/// Whether a conditional write (`operation`) was applied: false when its condition did not hold,
/// which is how the lease, slot and change writes learn that someone else got there first; any
/// other failure is an error.
pub fn applied<T, E, R>(
    operation: &'static str,
    result: Result<T, aws_sdk_dynamodb::error::SdkError<E, R>>,
) -> Result<bool, AwsError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result.map_err(|e| AwsError::from_sdk(operation, e)) {
        Ok(_) => Ok(true),
        Err(err) if err.is_condition_failed() => Ok(false),
        Err(err) => Err(err),
    }
}

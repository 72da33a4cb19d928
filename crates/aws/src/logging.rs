/// JSON logs when Lambda's LoggingConfig says so (AWS_LAMBDA_LOG_FORMAT=JSON), level from
/// AWS_LAMBDA_LOG_LEVEL or RUST_LOG.
pub fn init() {
    lambda_runtime::tracing::init_default_subscriber();
}

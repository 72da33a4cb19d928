//! Started without its configuration, the function says which variable is missing and exits.

use std::process::Command;

#[test]
fn missing_configuration_is_named_at_cold_start() {
    let output = Command::new(env!("CARGO_BIN_EXE_drift-check"))
        .env_clear()
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_REGION", "us-east-1")
        .output()
        .expect("the function binary runs");
    assert!(
        !output.status.success(),
        "must not start without configuration"
    );
    let logs = String::from_utf8_lossy(&output.stdout);
    assert!(
        logs.contains("missing configuration: environment variable ROUTES is not set"),
        "logs should name ROUTES:\n{logs}"
    );
}

//! Started without its configuration, the function says which variable is missing and exits.

use std::process::Command;

#[test]
fn missing_configuration_is_named_at_cold_start() {
    let output = Command::new(env!("CARGO_BIN_EXE_start-sync"))
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
        logs.contains("missing configuration: environment variable SOURCES_TABLE_NAME is not set"),
        "logs should name SOURCES_TABLE_NAME:\n{logs}"
    );
}

#[test]
fn an_invalid_ingestion_mode_is_named_at_cold_start() {
    let output = Command::new(env!("CARGO_BIN_EXE_start-sync"))
        .env_clear()
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_REGION", "us-east-1")
        .env("SOURCES_TABLE_NAME", "sources")
        .env("METADATA_TABLE_NAME", "jobs")
        .env("TRACKING_TABLE_NAME", "tracking")
        .env(
            "NOTIFICATION_TOPIC_ARN",
            "arn:aws:sns:us-east-1:123456789012:t",
        )
        .env(
            "ROUTES",
            r#"[{"bucket":"b","prefix":"","knowledge_base_id":"KB","data_source_id":"DS"}]"#,
        )
        .env("INGESTION_MODE", "fast")
        .output()
        .expect("the function binary runs");
    assert!(!output.status.success(), "must not start with a bad mode");
    let logs = String::from_utf8_lossy(&output.stdout);
    assert!(
        logs.contains(r#"INGESTION_MODE=\"fast\" is not auto, job or direct"#),
        "logs should name INGESTION_MODE and the allowed values:\n{logs}"
    );
}

//! Started without its configuration, the function says which variable is missing and exits.

use kb_autosync_test_support::cold_start;

#[test]
fn missing_configuration_is_named_at_cold_start() {
    let logs = cold_start::refused(env!("CARGO_BIN_EXE_start-sync"), &[]);
    assert!(
        logs.contains("missing configuration: environment variable SOURCES_TABLE_NAME is not set"),
        "logs should name SOURCES_TABLE_NAME:\n{logs}"
    );
}

#[test]
fn an_invalid_ingestion_mode_is_named_at_cold_start() {
    let logs = cold_start::refused(
        env!("CARGO_BIN_EXE_start-sync"),
        &[
            ("SOURCES_TABLE_NAME", "sources"),
            ("METADATA_TABLE_NAME", "jobs"),
            ("TRACKING_TABLE_NAME", "tracking"),
            (
                "NOTIFICATION_TOPIC_ARN",
                "arn:aws:sns:us-east-1:123456789012:t",
            ),
            (
                "ROUTES",
                r#"[{"bucket":"b","prefix":"","knowledge_base_id":"KB","data_source_id":"DS"}]"#,
            ),
            ("INGESTION_MODE", "fast"),
        ],
    );
    assert!(
        logs.contains(r#"INGESTION_MODE=\"fast\" is not auto, job or direct"#),
        "logs should name INGESTION_MODE and the allowed values:\n{logs}"
    );
}

//! Started without its configuration, the function says which variable is missing and exits.

use kb_autosync_test_support::cold_start;

#[test]
fn missing_configuration_is_named_at_cold_start() {
    let logs = cold_start::refused(env!("CARGO_BIN_EXE_sync-processor"), &[]);
    assert!(
        logs.contains("missing configuration: environment variable SOURCES_TABLE_NAME is not set"),
        "logs should name SOURCES_TABLE_NAME:\n{logs}"
    );
}

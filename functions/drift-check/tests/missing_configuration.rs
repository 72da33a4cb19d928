//! Started without its configuration, the function says which variable is missing and exits.

use kb_autosync_test_support::cold_start;

#[test]
fn missing_configuration_is_named_at_cold_start() {
    let logs = cold_start::refused(env!("CARGO_BIN_EXE_drift-check"), &[]);
    assert!(
        logs.contains("missing configuration: environment variable ROUTES is not set"),
        "logs should name ROUTES:\n{logs}"
    );
}

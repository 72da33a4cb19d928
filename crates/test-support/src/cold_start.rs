//! A function binary started the way Lambda starts it, but with the configuration a test
//! chooses: for the tests that a missing or wrong setting stops the cold start, naming it.

use std::process::Command;

/// Starts `binary` with only `env` (plus JSON logs and a region), asserts that it refused to
/// start, and returns what it logged.
pub fn refused(binary: &str, env: &[(&str, &str)]) -> String {
    let output = Command::new(binary)
        .env_clear()
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        .env("AWS_REGION", "us-east-1")
        .envs(env.iter().copied())
        .output()
        .expect("the function binary runs");
    assert!(
        !output.status.success(),
        "{binary} must not start with {env:?}"
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

//! The state machine's DynamoDB tasks write the lease item themselves (no Lambda in between), so
//! their expressions live in `statemachine/workflow.asl.json`. They must say exactly what the
//! Rust side of the lease protocol says (`kb_autosync_core::lease`): this test fails when one
//! side changes without the other.

use kb_autosync_core::lease::{HELD_AND_NO_NEW_REQUEST, HELD_BY_ME, RELEASE_LEASE};
use serde_json::Value;

fn definition() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../statemachine/workflow.asl.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).expect("workflow.asl.json"))
        .expect("workflow.asl.json is JSON")
}

#[test]
fn the_state_machine_releases_the_lease_as_the_rust_code_does() {
    let definition = definition();
    let states = definition["States"].as_object().expect("States");
    let expected = [
        ("ReleaseLease", HELD_AND_NO_NEW_REQUEST),
        ("ReleaseFailedRound", HELD_AND_NO_NEW_REQUEST),
        ("ReleaseLeaseAfterError", HELD_BY_ME),
    ];
    for (name, condition) in expected {
        let parameters = &states[name]["Parameters"];
        assert_eq!(
            parameters["UpdateExpression"], RELEASE_LEASE,
            "{name}'s UpdateExpression"
        );
        assert_eq!(
            parameters["ConditionExpression"], condition,
            "{name}'s ConditionExpression"
        );
        assert_eq!(
            parameters["ExpressionAttributeValues"][":me"]["S.$"],
            "$.execution_name"
        );
    }
    // Every DynamoDB task of the definition is one of these: a new one must be added here.
    let mut writers: Vec<&String> = states
        .iter()
        .filter(|(_, state)| {
            state["Resource"]
                .as_str()
                .is_some_and(|r| r.starts_with("arn:aws:states:::dynamodb:"))
        })
        .map(|(name, _)| name)
        .collect();
    // serde_json keeps the file's order when a dependency turns on `preserve_order`.
    writers.sort();
    assert_eq!(
        writers,
        vec![
            "ReleaseFailedRound",
            "ReleaseLease",
            "ReleaseLeaseAfterError"
        ],
        "a DynamoDB task without a Rust counterpart: add it to docs/lease-protocol.md and here"
    );
}

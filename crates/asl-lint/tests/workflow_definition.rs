//! The shipped state machine passes the structural checks.

#[test]
fn shipped_workflow_definition_is_clean() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../statemachine/workflow.asl.json"
    );
    let text = std::fs::read_to_string(path).expect("statemachine/workflow.asl.json exists");
    let findings: Vec<String> = asl_lint::lint_str(&text)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert!(findings.is_empty(), "findings:\n{}", findings.join("\n"));
}

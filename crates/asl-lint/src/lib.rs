//! Structural checks of an Amazon States Language definition that neither cfn-lint nor the
//! Step Functions API make before an execution reaches the broken state:
//! - `StartAt` and every `Next`, `Default`, Choice and Catch target name an existing state;
//! - every Choice has a `Default`, so an unexpected value cannot fail the execution;
//! - every Task has a Catch on `States.ALL`, so no failure ends a round with the lease held;
//! - every Wait reads its time from the input (`SecondsPath`/`TimestampPath`), never a literal,
//!   so the same definition runs with production and test timings;
//! - every state is reachable from `StartAt`, and every non-terminal state has a `Next`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// One problem, naming the state it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub state: String,
    pub message: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "state {:?}: {}", self.state, self.message)
    }
}

pub fn lint_str(definition: &str) -> Vec<Finding> {
    match serde_json::from_str::<Value>(definition) {
        Ok(value) => lint(&value),
        Err(e) => vec![Finding {
            state: "(definition)".into(),
            message: format!("not valid JSON: {e}"),
        }],
    }
}

pub fn lint(definition: &Value) -> Vec<Finding> {
    let mut findings = Vec::new();
    let Some(states) = definition.get("States").and_then(Value::as_object) else {
        return vec![Finding {
            state: "(definition)".into(),
            message: "has no \"States\" object".into(),
        }];
    };
    let names: BTreeSet<&str> = states.keys().map(String::as_str).collect();
    let mut edges: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let start = definition
        .get("StartAt")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !names.contains(start) {
        findings.push(Finding {
            state: "(definition)".into(),
            message: format!("StartAt {start:?} is not a state"),
        });
    }
    for (name, state) in states {
        let mut report = |message: String| {
            findings.push(Finding {
                state: name.clone(),
                message,
            })
        };
        let kind = state
            .get("Type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let mut targets: Vec<(String, String)> = Vec::new();
        if let Some(next) = state.get("Next").and_then(Value::as_str) {
            targets.push(("Next".into(), next.into()));
        }
        let terminal = matches!(kind, "Succeed" | "Fail")
            || state.get("End").and_then(Value::as_bool) == Some(true);
        match kind {
            "Choice" => {
                match state.get("Default").and_then(Value::as_str) {
                    Some(default) => targets.push(("Default".into(), default.into())),
                    None => report("Choice has no Default".into()),
                }
                for (i, choice) in state
                    .get("Choices")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    match choice.get("Next").and_then(Value::as_str) {
                        Some(next) => targets.push((format!("Choices[{i}].Next"), next.into())),
                        None => report(format!("Choices[{i}] has no Next")),
                    }
                }
            }
            "Task" => {
                let catches_all = state
                    .get("Catch")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .any(|c| {
                        c.get("ErrorEquals")
                            .and_then(Value::as_array)
                            .is_some_and(|e| e.iter().any(|x| x == "States.ALL"))
                    });
                if !catches_all {
                    report("Task has no Catch on States.ALL: a failure would end the execution without cleanup".into());
                }
                if state
                    .get("Retry")
                    .and_then(Value::as_array)
                    .is_none_or(|r| r.is_empty())
                {
                    report("Task has no Retry".into());
                }
            }
            "Wait" => {
                for literal in ["Seconds", "Timestamp"] {
                    if state.get(literal).is_some() {
                        report(format!("Wait uses a literal {literal}: read it from the input with {literal}Path"));
                    }
                }
                if state.get("SecondsPath").is_none() && state.get("TimestampPath").is_none() {
                    report("Wait has neither SecondsPath nor TimestampPath".into());
                }
            }
            "Pass" | "Succeed" | "Fail" | "Parallel" | "Map" => {}
            other => report(format!("unknown Type {other:?}")),
        }
        for (i, catch) in state
            .get("Catch")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(next) = catch.get("Next").and_then(Value::as_str) {
                targets.push((format!("Catch[{i}].Next"), next.into()));
            }
        }
        if !terminal && kind != "Choice" && state.get("Next").is_none() {
            report("has neither Next nor End".into());
        }
        for (field, target) in &targets {
            if !names.contains(target.as_str()) {
                report(format!("{field} {target:?} is not a state"));
            }
        }
        edges.insert(name.as_str(), targets.into_iter().map(|(_, t)| t).collect());
    }
    let mut seen = BTreeSet::new();
    let mut stack = vec![start.to_string()];
    while let Some(state) = stack.pop() {
        if seen.insert(state.clone()) {
            stack.extend(edges.get(state.as_str()).cloned().unwrap_or_default());
        }
    }
    for name in &names {
        if !seen.contains(*name) {
            findings.push(Finding {
                state: name.to_string(),
                message: "is not reachable from StartAt".into(),
            });
        }
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(definition: Value) -> Vec<String> {
        lint(&definition)
            .into_iter()
            .map(|f| f.to_string())
            .collect()
    }

    #[test]
    fn a_clean_definition_passes() {
        let clean = json!({"StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "x", "Retry": [{"ErrorEquals": ["States.ALL"]}], "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "F"}], "Next": "C"},
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.a", "StringEquals": "b", "Next": "W"}], "Default": "S"},
            "W": {"Type": "Wait", "SecondsPath": "$.w", "Next": "T"},
            "S": {"Type": "Succeed"}, "F": {"Type": "Fail"}
        }});
        assert_eq!(messages(clean), Vec::<String>::new());
    }

    #[test]
    fn finds_each_kind_of_problem() {
        let broken = json!({"StartAt": "T", "States": {
            "T": {"Type": "Task", "Resource": "x", "Next": "Missing"},
            "C": {"Type": "Choice", "Choices": [{"Variable": "$.a", "StringEquals": "b", "Next": "T"}]},
            "W": {"Type": "Wait", "Seconds": 30, "Next": "T"}
        }});
        let found = messages(broken).join("\n");
        for expected in [
            "Next \"Missing\" is not a state",
            "Choice has no Default",
            "no Catch on States.ALL",
            "Task has no Retry",
            "literal Seconds",
            "\"C\": is not reachable",
        ] {
            assert!(
                found.contains(expected),
                "expected {expected:?} in:\n{found}"
            );
        }
    }

    #[test]
    fn invalid_json_is_reported() {
        assert!(lint_str("{")
            .first()
            .unwrap()
            .message
            .contains("not valid JSON"));
    }
}

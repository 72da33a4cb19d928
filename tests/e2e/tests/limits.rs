//! AWS's hard limits, enforced by the local stack: a steady stream of changes hands its
//! executions over to fresh ones before Step Functions' history limit would fail them.

use std::time::Duration;

use aws_sdk_sfn::types::ExecutionStatus;
use kb_autosync_e2e::*;
use kb_autosync_local::stack::Limits;
use kb_autosync_local::LocalStack;
use serde_json::json;

/// Every execution of the sync state machine: (name, status).
async fn executions(stack: &LocalStack) -> Vec<(String, ExecutionStatus)> {
    let pages: Vec<_> = stack
        .sfn()
        .list_executions()
        .state_machine_arn(&stack.info.state_machine_arn)
        .into_paginator()
        .items()
        .send()
        .collect()
        .await;
    pages
        .into_iter()
        .map(|e| {
            let e = e.expect("ListExecutions");
            (e.name, e.status)
        })
        .collect()
}

/// The execution's history length and whether it ended by handing over.
async fn history(stack: &LocalStack, name: &str) -> (u64, bool) {
    let arn = format!(
        "{}:{name}",
        stack
            .info
            .state_machine_arn
            .replacen(":stateMachine:", ":execution:", 1)
    );
    let events = stack
        .sfn()
        .get_execution_history()
        .execution_arn(arn)
        .send()
        .await
        .expect("GetExecutionHistory")
        .events;
    let handed_over = events.iter().any(|e| {
        e.state_entered_event_details
            .as_ref()
            .is_some_and(|d| d.name == "HandedOver")
    });
    (events.len() as u64, handed_over)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_steady_trickle_hands_over_to_fresh_executions_before_the_history_limit() {
    const LIMIT: u64 = 300;
    const UPLOADS: usize = 40;
    let mut options = options("history_limit_trickle");
    // Uploads arrive faster than a job runs, so every round goes again; one iteration (job
    // polls included) is about 50-60 events here, so a round that never handed over would
    // pass the limit within six jobs.
    // (With HANDOVER_AFTER_HISTORY_EVENTS at its maximum, the execution fails at the limit and
    // the changes of its last rounds stay PENDING: this stack has no sweep.)
    options
        .env
        .push(("HANDOVER_AFTER_HISTORY_EVENTS".into(), "100".into()));
    options.emulator_config = Some(json!({
        "knowledge_bases": single_source_config()["knowledge_bases"],
        "jobs": {"starting_seconds": 2, "base_duration_seconds": 25, "per_document_seconds": 0.05, "stopping_seconds": 2}
    }));
    let limits = Limits {
        sfn_history_events: Some(LIMIT),
        ..Limits::default()
    };
    let stack = LocalStack::start_with_limits(options, limits)
        .await
        .expect("local stack");

    for i in 0..UPLOADS {
        put(&stack, &format!("docs/trickle-{i:02}.txt"), &format!("{i}")).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let changes = settle_count(&stack, UPLOADS, Duration::from_secs(120)).await;
    assert_all_synced(&stack, &changes).await;
    assert_eq!(
        assert_index_matches_s3(&stack, KB, DS, PREFIX).await,
        UPLOADS
    );

    let executions = executions(&stack).await;
    let not_succeeded: Vec<_> = executions
        .iter()
        .filter(|(_, status)| *status != ExecutionStatus::Succeeded)
        .collect();
    assert!(
        not_succeeded.is_empty(),
        "every execution ends SUCCEEDED (none at the history limit): {executions:?}"
    );
    let mut hand_overs = 0;
    for (name, _) in &executions {
        let (events, handed_over) = history(&stack, name).await;
        assert!(
            events < LIMIT,
            "{name}: {events} history events, limit {LIMIT}"
        );
        hand_overs += usize::from(handed_over);
    }
    assert!(
        hand_overs >= 2,
        "the trickle ran through at least two hand-overs ({hand_overs}): {executions:?}"
    );
}

//! Self-healing: an execution stopped by hand leaves its lease and job slot held; the next
//! sweep (EventBridge Scheduler's message) reclaims both and the pending change is synced.

use std::time::Duration;

use kb_autosync_e2e::*;
use kb_autosync_local::{invariants, observe};

#[tokio::test(flavor = "multi_thread")]
async fn an_execution_stopped_by_hand_is_healed_by_the_sweep() {
    let stack = start(options("stopped_execution")).await;
    stack.emulator().slow_jobs(60.0, 1).await.unwrap();
    put(&stack, "docs/orphaned.txt", "its round is killed").await;
    let sfn = stack.sfn();
    let arn = stack.info.state_machine_arn.clone();
    eventually(
        Duration::from_secs(60),
        "the round's job to start",
        || async {
            stack
                .emulator()
                .jobs()
                .await
                .map(|j| !j.is_empty())
                .unwrap_or(false)
        },
    )
    .await;
    let running = sfn
        .list_executions()
        .state_machine_arn(&arn)
        .status_filter(aws_sdk_sfn::types::ExecutionStatus::Running)
        .send()
        .await
        .unwrap()
        .executions
        .into_iter()
        .next()
        .expect("the round's execution runs while its job does")
        .execution_arn;
    sfn.stop_execution()
        .execution_arn(&running)
        .cause("stopped by an operator")
        .send()
        .await
        .unwrap();

    // The killed round never marks its change, even once its job has ended; nothing else
    // arrives.
    eventually(
        Duration::from_secs(60),
        "the stopped round's job to end",
        || async {
            stack
                .emulator()
                .jobs()
                .await
                .map(|jobs| jobs.iter().all(|j| invariants::is_terminal(&j.status)))
                .unwrap_or(false)
        },
    )
    .await;
    // Two monitor intervals (1 s here): a live round would have marked it by now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let changes = observe::changes(&stack).await.unwrap();
    assert_eq!(
        changes[0].status,
        kb_autosync_core::change::ChangeStatus::Pending,
        "the stopped execution left the change pending"
    );

    stack
        .sqs()
        .send_message()
        .queue_url(&stack.info.sync_queue_url)
        .message_body(r#"{"kind":"sweep"}"#)
        .send()
        .await
        .unwrap();
    let changes = settle(&stack).await;
    assert_all_synced(&stack, &changes).await;
    let log = stack.function_log("sync-processor");
    assert!(
        log.contains("lease reclaimed from an execution that ended without releasing it"),
        "sync-processor says it healed the lease"
    );
    assert_eq!(assert_index_matches_s3(&stack, KB, DS, PREFIX).await, 1);
}

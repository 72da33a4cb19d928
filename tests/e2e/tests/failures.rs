//! Failing jobs, failing documents, malformed events and unroutable keys.

use std::time::Duration;

use kb_autosync_core::change::ChangeStatus;
use kb_autosync_e2e::*;
use kb_autosync_local::observe;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_job_is_retried_then_reported_failed_and_a_later_job_syncs_the_change() {
    let stack = start(options("failing_job")).await;
    stack
        .emulator()
        .fail_next_jobs(2, &["The data source's S3 bucket could not be read"])
        .await
        .unwrap();
    put(&stack, "docs/unlucky.txt", "first").await;
    let changes = settle(&stack).await;
    assert_eq!(changes[0].status, ChangeStatus::Failed);
    let reason = changes[0].failure_reason.clone().unwrap();
    assert!(
        reason.contains("could not be read") && reason.contains("2 attempt"),
        "{reason}"
    );
    let notifications = observe::take_notifications(&stack).await.unwrap();
    let failed: Vec<_> = notifications
        .iter()
        .filter(|n| n.subject == "Bedrock KB Sync Job FAILED")
        .collect();
    assert_eq!(
        failed.len(),
        2,
        "one notification per failed job: {notifications:?}"
    );
    assert_eq!(failed[0].body["will_retry"], true);
    assert_eq!(failed[1].body["will_retry"], false);
    assert_eq!(
        failed[1].body["failure_reasons"],
        json!(["The data source's S3 bucket could not be read"])
    );
    assert_eq!(failed[1].body["processed_changes"], 0);
    assert_eq!(failed[1].body["failed_changes"], 1);

    // The next successful job covers the FAILED change too.
    put(&stack, "docs/lucky.txt", "second").await;
    let changes = settle_count(&stack, 2, Duration::from_secs(60)).await;
    assert_all_synced(&stack, &changes).await;
    assert_eq!(assert_index_matches_s3(&stack, KB, DS, PREFIX).await, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_document_bedrock_cannot_ingest_is_marked_failed_with_its_reason() {
    let stack = start(options("failing_document")).await;
    stack
        .emulator()
        .fail_documents("*broken*", "Unsupported file content")
        .await
        .unwrap();
    put(&stack, "docs/good.txt", "fine").await;
    put(&stack, "docs/broken.txt", "not fine").await;
    let changes = settle_count(&stack, 2, Duration::from_secs(60)).await;
    let broken = changes.iter().find(|c| c.key == "docs/broken.txt").unwrap();
    let good = changes.iter().find(|c| c.key == "docs/good.txt").unwrap();
    assert_eq!(good.status, ChangeStatus::Synced);
    assert_eq!(broken.status, ChangeStatus::Failed);
    assert!(
        broken
            .failure_reason
            .as_deref()
            .unwrap()
            .contains("Unsupported file content"),
        "{:?}",
        broken.failure_reason
    );
    let notifications = observe::take_notifications(&stack).await.unwrap();
    let complete: Vec<_> = notifications
        .iter()
        .filter(|n| n.body["status"] == "COMPLETE")
        .collect();
    assert_eq!(
        complete
            .iter()
            .map(|n| n.body["failed_changes"].as_u64().unwrap())
            .sum::<u64>(),
        1
    );
    assert_eq!(
        complete
            .iter()
            .map(|n| n.body["statistics"]["numberOfDocumentsFailed"]
                .as_u64()
                .unwrap())
            .sum::<u64>(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_input_goes_to_the_dead_letter_queues_with_a_clear_log_and_unroutable_keys_are_logged(
) {
    let mut options = options("bad_input");
    options.overrides = vec![
        ("ChangeEventsQueue.VisibilityTimeout".into(), "1".into()),
        ("SyncQueue.VisibilityTimeout".into(), "1".into()),
    ];
    let stack = start(options).await;
    let sqs = stack.sqs();
    let send = |url: String, body: String| {
        let sqs = sqs.clone();
        async move {
            sqs.send_message()
                .queue_url(url)
                .message_body(body)
                .send()
                .await
                .unwrap()
        }
    };
    send(
        stack.info.change_events_queue_url.clone(),
        "this is not an event".into(),
    )
    .await;
    send(
        stack.info.sync_queue_url.clone(),
        json!({"kind": "sync", "knowledge_base_id": KB}).to_string(),
    )
    .await;
    let unroutable = json!({
        "version": "0", "id": "e2e-unroutable", "detail-type": "Object Created", "source": "aws.s3", "account": "123456789012",
        "time": "2026-01-01T00:00:00Z", "region": "us-east-1", "resources": [],
        "detail": {"version": "0", "bucket": {"name": "some-other-bucket"}, "object": {"key": "stray.txt", "size": 1, "etag": "abc", "sequencer": "01"}}
    });
    send(
        stack.info.change_events_queue_url.clone(),
        unroutable.to_string(),
    )
    .await;
    // A good neighbour is not held back by the bad messages.
    put(&stack, "docs/neighbour.txt", "fine").await;

    let change_dlq = stack.info.change_events_dlq_url.clone();
    let sync_dlq = stack.info.sync_dlq_url.clone();
    eventually(
        Duration::from_secs(90),
        "the malformed event in the change events DLQ",
        || async {
            observe::peek_queue(&stack, &change_dlq)
                .await
                .map(|m| m.iter().any(|b| b == "this is not an event"))
                .unwrap_or(false)
        },
    )
    .await;
    eventually(
        Duration::from_secs(90),
        "the malformed sync request in the sync DLQ",
        || async {
            observe::peek_queue(&stack, &sync_dlq)
                .await
                .map(|m| m.iter().any(|b| b.contains("\"kind\":\"sync\"")))
                .unwrap_or(false)
        },
    )
    .await;
    let events_log = stack.function_log("event-processor");
    assert!(
        events_log.contains("malformed change event")
            && events_log.contains("SQS message body is not JSON"),
        "event-processor log names the problem"
    );
    assert!(
        events_log.contains("no route matches the object")
            && events_log.contains("s3://some-other-bucket/stray.txt")
            && events_log.contains("s3://kb-autosync-e2e/docs/ -> KBE2E00001/DSE2E00001"),
        "unroutable key logged with the route table"
    );
    let sync_log = stack.function_log("sync-processor");
    assert!(
        sync_log.contains("malformed sync request") && sync_log.contains("data_source_id"),
        "sync-processor log names the missing field"
    );

    let changes = settle(&stack).await;
    assert_eq!(changes.len(), 1, "only the routable upload is recorded");
    assert_all_synced(&stack, &changes).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_recorded_while_a_round_fails_gets_a_new_iteration_without_the_sweep() {
    // No sweep in this stack: before the fix, the failed round freed the lease whatever was
    // counted meanwhile, and the change recorded during it waited for the next sweep.
    let stack = start(options("failed_round_requests")).await;
    let emulator = stack.emulator();
    emulator
        .fail_next_jobs(1, &["The data source's S3 bucket could not be read"])
        .await
        .unwrap();
    emulator.slow_jobs(80.0, 1).await.unwrap();
    put(&stack, "docs/first.txt", "first").await;
    eventually(
        Duration::from_secs(60),
        "the first job to start",
        || async { !jobs(&stack).await.is_empty() },
    )
    .await;
    // The retry of the failed job is refused as no retry fixes; the round fails while the
    // change below has already been counted on its lease.
    emulator.deny_next_starts(1).await.unwrap();
    put(&stack, "docs/second.txt", "second").await;

    let changes = settle_count(&stack, 2, Duration::from_secs(120)).await;
    assert_all_synced(&stack, &changes).await;
    assert_eq!(assert_index_matches_s3(&stack, KB, DS, PREFIX).await, 2);
    let notifications = observe::take_notifications(&stack).await.unwrap();
    let error = notifications
        .iter()
        .find(|n| n.subject == "Bedrock KB Sync Job ERROR")
        .unwrap_or_else(|| panic!("the failed round is notified: {notifications:?}"));
    assert!(
        error.body["message"]
            .as_str()
            .is_some_and(|m| m.contains("not authorized")),
        "{}",
        error.body
    );
    let statuses: Vec<_> = jobs(&stack).await.into_iter().map(|j| j.status).collect();
    assert_eq!(
        statuses.first().map(String::as_str),
        Some("FAILED"),
        "{statuses:?}"
    );
}

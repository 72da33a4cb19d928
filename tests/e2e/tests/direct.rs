//! Direct ingestion (IngestionMode `auto` and `direct`) against the local stack: single changes
//! reach the index in seconds without an ingestion job, bursts still cost at most two jobs,
//! a console job is waited out, Bedrock's document failures and throttling are handled, and the
//! index equals S3 after each.

use std::time::Duration;

use kb_autosync_core::change::{ChangeRecord, ChangeStatus};
use kb_autosync_core::direct::IngestionMethod;
use kb_autosync_e2e::*;
use kb_autosync_local::{observe, LocalStack};

/// The first change of a data source that never synced takes a job (AWS requires one); after
/// it, every settled change of the stack.
async fn first_sync(stack: &LocalStack) -> usize {
    put(stack, "docs/seed.txt", "seed").await;
    let changes = settle_count(stack, 1, Duration::from_secs(120)).await;
    assert_eq!(
        changes[0].ingestion_method,
        Some(IngestionMethod::Job),
        "the first sync of a data source is a job: {:?}",
        changes[0]
    );
    assert_eq!(jobs(stack).await.len(), 1);
    changes.len()
}

fn change<'a>(changes: &'a [ChangeRecord], key: &str, event: &str) -> Vec<&'a ChangeRecord> {
    changes
        .iter()
        .filter(|c| c.key == key && c.event_name.contains(event))
        .collect()
}

fn assert_direct(change: &ChangeRecord) {
    assert_eq!(change.status, ChangeStatus::Synced, "{change:?}");
    assert_eq!(
        change.ingestion_method,
        Some(IngestionMethod::Direct),
        "{change:?}"
    );
    assert!(
        change
            .ingestion_job_id
            .as_deref()
            .is_some_and(|id| id.starts_with("direct-")),
        "{change:?}"
    );
}

async fn document_calls(stack: &LocalStack, operation: &str) -> u64 {
    stack
        .emulator()
        .direct_document_activity(KB, DS)
        .await
        .unwrap()
        .document_calls
        .get(operation)
        .map_or(0, |calls| calls.succeeded)
}

#[tokio::test(flavor = "multi_thread")]
async fn uploads_overwrites_deletes_and_metadata_go_direct_in_auto_mode_without_a_job() {
    let stack = start(direct_options("direct_auto", "auto")).await;
    let mut settled = first_sync(&stack).await;
    observe::take_notifications(&stack).await.unwrap();

    // One upload: searchable without a job.
    put(&stack, "docs/a.txt", "alpha").await;
    settled += 1;
    let changes = settle_count(&stack, settled, Duration::from_secs(60)).await;
    let upload = change(&changes, "docs/a.txt", "Created")[0];
    assert_direct(upload);
    let documents = stack.emulator().documents(KB, DS).await.unwrap();
    let indexed = documents.iter().find(|d| d.key == "docs/a.txt").unwrap();
    assert_eq!(indexed.status, "INDEXED");
    assert_eq!(indexed.origin.as_deref(), Some("direct"));

    // Overwrite, then a metadata file, then a delete: each direct.
    put(&stack, "docs/a.txt", "alpha, second version").await;
    settled += 1;
    settle_count(&stack, settled, Duration::from_secs(60)).await;
    put(
        &stack,
        "docs/a.txt.metadata.json",
        r#"{"metadataAttributes":{"team":"search"}}"#,
    )
    .await;
    settled += 1;
    let changes = settle_count(&stack, settled, Duration::from_secs(60)).await;
    let metadata = change(&changes, "docs/a.txt.metadata.json", "Created")[0];
    assert_direct(metadata);
    assert_eq!(metadata.metadata_of.as_deref(), Some("docs/a.txt"));
    let documents = stack.emulator().documents(KB, DS).await.unwrap();
    let indexed = documents.iter().find(|d| d.key == "docs/a.txt").unwrap();
    assert_eq!(
        indexed.metadata.as_ref().map(|m| m["type"].clone()),
        Some(serde_json::json!("S3_LOCATION")),
        "the document was re-ingested with its metadata file: {indexed:?}"
    );
    observe::delete_object(&stack, "docs/a.txt").await.unwrap();
    observe::delete_object(&stack, "docs/a.txt.metadata.json")
        .await
        .unwrap();
    settled += 2;
    let changes = settle_count(&stack, settled, Duration::from_secs(60)).await;
    for deleted in change(&changes, "docs/a.txt", "Deleted") {
        assert_direct(deleted);
    }

    assert_eq!(jobs(&stack).await.len(), 1, "no job after the first sync");
    assert!(document_calls(&stack, "IngestKnowledgeBaseDocuments").await >= 3);
    assert!(document_calls(&stack, "DeleteKnowledgeBaseDocuments").await >= 1);
    assert_all_synced(&stack, &changes).await;
    assert_index_matches_s3(&stack, KB, DS, PREFIX).await;

    // One notification per direct batch, in the job notification's shape.
    let notifications = observe::take_notifications(&stack).await.unwrap();
    assert!(!notifications.is_empty());
    for n in &notifications {
        assert_eq!(n.body["ingestion_method"], "direct", "{:?}", n.body);
        assert!(n.body["job_id"].as_str().unwrap().starts_with("direct-"));
        assert_eq!(n.body["status"], "COMPLETE");
        assert!(n.body["statistics"].is_object());
    }
    let processed: u64 = notifications
        .iter()
        .map(|n| n.body["processed_changes"].as_u64().unwrap())
        .sum();
    assert_eq!(
        processed as usize,
        settled - 1,
        "every direct change notified once"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_document_is_failed_with_its_reason_odd_keys_are_settled_and_throttled_calls_retried(
) {
    let stack = start(direct_options("direct_failures", "auto")).await;
    let mut settled = first_sync(&stack).await;

    stack
        .emulator()
        .fail_documents("docs/broken.txt", "The file is encrypted")
        .await
        .unwrap();
    put(&stack, "docs/broken.txt", "???").await;
    settled += 1;
    let changes = settle_count(&stack, settled, Duration::from_secs(60)).await;
    let broken = change(&changes, "docs/broken.txt", "Created")[0];
    assert_eq!(broken.status, ChangeStatus::Failed, "{broken:?}");
    assert_eq!(broken.ingestion_method, Some(IngestionMethod::Direct));
    let reason = broken.failure_reason.clone().unwrap_or_default();
    assert!(reason.contains("The file is encrypted"), "{reason}");

    // A key with a space and a plus: settled against S3 before it is ingested.
    put(&stack, "docs/q3 report+notes.txt", "quarter").await;
    settled += 1;
    let changes = settle_count(&stack, settled, Duration::from_secs(60)).await;
    assert_direct(change(&changes, "docs/q3 report+notes.txt", "Created")[0]);
    let documents = stack.emulator().documents(KB, DS).await.unwrap();
    assert!(
        documents
            .iter()
            .any(|d| d.key == "docs/q3 report+notes.txt" && d.status == "INDEXED"),
        "{documents:?}"
    );

    stack
        .emulator()
        .throttle_next_document_calls(3)
        .await
        .unwrap();
    put(&stack, "docs/b.txt", "beta").await;
    settled += 1;
    let changes = settle_count(&stack, settled, Duration::from_secs(60)).await;
    assert_direct(change(&changes, "docs/b.txt", "Created")[0]);
    let activity = stack
        .emulator()
        .direct_document_activity(KB, DS)
        .await
        .unwrap();
    let throttled: u64 = activity
        .document_calls
        .values()
        .map(|c| c.errors.get("ThrottlingException").copied().unwrap_or(0))
        .sum();
    assert_eq!(
        throttled, 3,
        "the throttled calls were made and retried: {activity:?}"
    );
    assert_eq!(jobs(&stack).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_above_the_threshold_costs_at_most_two_jobs_not_thousands_of_document_calls() {
    let mut options = direct_options("direct_burst", "auto");
    options
        .env
        .push(("DIRECT_INGESTION_MAX_CHANGES".into(), "5".into()));
    let stack = start(options).await;
    let settled = first_sync(&stack).await;
    let before = jobs(&stack).await.len();

    const BURST: usize = 60;
    for i in 0..BURST {
        put(&stack, &format!("docs/burst/{i:03}.txt"), "burst").await;
    }
    let changes = settle_count(&stack, settled + BURST, Duration::from_secs(180)).await;
    let burst_jobs = jobs(&stack).await.len() - before;
    assert!(
        (1..=2).contains(&burst_jobs),
        "a burst above DirectIngestionMaxChanges costs one or two jobs, took {burst_jobs}"
    );
    let ingested = stack
        .emulator()
        .direct_document_activity(KB, DS)
        .await
        .unwrap()
        .document_calls
        .get("IngestKnowledgeBaseDocuments")
        .map_or(0, |c| c.documents);
    assert!(
        ingested <= 2 * 5,
        "at most a couple of small direct batches before the job took over: {ingested} documents"
    );
    assert_all_synced(&stack, &changes).await;
    assert_index_matches_s3(&stack, KB, DS, PREFIX).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_console_job_on_the_data_source_is_waited_out_never_overlapped() {
    let stack = start(direct_options("direct_console_job", "auto")).await;
    let mut settled = first_sync(&stack).await;

    // 200 Bedrock seconds = 20 s real: the upload's round must wait for it.
    stack
        .emulator()
        .start_foreign_job(KB, DS, 200.0)
        .await
        .unwrap();
    put(&stack, "docs/during-console-job.txt", "c").await;
    settled += 1;
    let changes = settle_count(&stack, settled, Duration::from_secs(120)).await;
    let during = change(&changes, "docs/during-console-job.txt", "Created")[0];
    assert_eq!(during.status, ChangeStatus::Synced, "{during:?}");
    let activity = stack
        .emulator()
        .direct_document_activity(KB, DS)
        .await
        .unwrap();
    let conflicts: u64 = activity
        .document_calls
        .values()
        .map(|c| c.errors.get("ConflictException").copied().unwrap_or(0))
        .sum();
    assert_eq!(
        conflicts, 0,
        "no document call while the console job ran: {activity:?}"
    );
    assert_all_synced(&stack, &changes).await;
    assert_index_matches_s3(&stack, KB, DS, PREFIX).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn direct_mode_ingests_a_burst_directly_and_starts_no_job_after_the_first_sync() {
    let mut options = direct_options("direct_mode", "direct");
    options
        .env
        .push(("DIRECT_INGESTION_MAX_CHANGES".into(), "5".into()));
    let stack = start(options).await;
    let settled = first_sync(&stack).await;

    const BURST: usize = 25;
    for i in 0..BURST {
        put(&stack, &format!("docs/direct/{i:03}.txt"), "d").await;
    }
    for i in 0..5 {
        observe::delete_object(&stack, &format!("docs/direct/{i:03}.txt"))
            .await
            .unwrap();
    }
    let changes = settle_count(&stack, settled + BURST + 5, Duration::from_secs(180)).await;
    for c in changes.iter().filter(|c| c.key.starts_with("docs/direct/")) {
        assert_direct(c);
    }
    assert_eq!(
        jobs(&stack).await.len(),
        1,
        "direct mode ignores DirectIngestionMaxChanges: no job after the first sync"
    );
    assert_all_synced(&stack, &changes).await;
    assert_index_matches_s3(&stack, KB, DS, PREFIX).await;
}

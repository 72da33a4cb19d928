//! Bedrock quotas: several data sources and knowledge bases, a job started elsewhere, throttling.

use std::time::Duration;

use kb_autosync_e2e::*;
use kb_autosync_local::{invariants, observe};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn two_data_sources_of_one_knowledge_base_and_a_second_knowledge_base() {
    let mut options = options("two_sources_two_kbs");
    let routes = json!([
        {"bucket": BUCKET, "prefix": "a/", "knowledge_base_id": "KBONE00001", "data_source_id": "DSA0000001"},
        {"bucket": BUCKET, "prefix": "b/", "knowledge_base_id": "KBONE00001", "data_source_id": "DSB0000001"},
        {"bucket": BUCKET, "prefix": "c/", "knowledge_base_id": "KBTWO00001", "data_source_id": "DSC0000001"}
    ]);
    options.params = vec![
        ("KnowledgeBaseId".into(), "KBONE00001".into()),
        ("DataSourceId".into(), "DSA0000001".into()),
        ("S3BucketName".into(), BUCKET.into()),
        ("S3KeyPrefix".into(), "".into()),
    ];
    options.env.push(("ROUTES".into(), routes.to_string()));
    let arn = format!("arn:aws:s3:::{BUCKET}");
    options.emulator_config = Some(json!({
        "knowledge_bases": [
            {"id": "KBONE00001", "name": "one", "data_sources": [
                {"id": "DSA0000001", "name": "a", "bucket_arn": arn, "inclusion_prefixes": ["a/"]},
                {"id": "DSB0000001", "name": "b", "bucket_arn": arn, "inclusion_prefixes": ["b/"]}
            ]},
            {"id": "KBTWO00001", "name": "two", "data_sources": [
                {"id": "DSC0000001", "name": "c", "bucket_arn": arn, "inclusion_prefixes": ["c/"]}
            ]}
        ],
        "jobs": {"starting_seconds": 5, "base_duration_seconds": 20, "per_document_seconds": 0.05, "stopping_seconds": 5}
    }));
    let stack = start(options).await;
    for i in 0..5 {
        for prefix in ["a", "b", "c"] {
            put(
                &stack,
                &format!("{prefix}/file-{i}.txt"),
                &format!("{prefix} {i}"),
            )
            .await;
        }
    }
    let changes = settle_count(&stack, 15, Duration::from_secs(60)).await;
    assert_all_synced(&stack, &changes).await;
    for (kb, ds, prefix) in [
        ("KBONE00001", "DSA0000001", "a/"),
        ("KBONE00001", "DSB0000001", "b/"),
        ("KBTWO00001", "DSC0000001", "c/"),
    ] {
        assert_eq!(
            changes.iter().filter(|c| c.data_source_id == ds).count(),
            5,
            "routed to {ds}"
        );
        assert_eq!(assert_index_matches_s3(&stack, kb, ds, prefix).await, 5);
    }
    // The service never provoked a quota error: one job per knowledge base at a time.
    assert_eq!(start_job_errors(&stack, "ConflictException").await, 0);
    assert_eq!(
        start_job_errors(&stack, "ServiceQuotaExceededException").await,
        0
    );
    invariants::no_overlapping_jobs_per_knowledge_base(&jobs(&stack).await).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_started_in_the_console_is_waited_out() {
    let stack = start(options("foreign_job")).await;
    let foreign = stack
        .emulator()
        .start_foreign_job(KB, DS, 60.0)
        .await
        .unwrap();
    put(&stack, "docs/while-busy.txt", "waits for the console's job").await;
    let changes = settle(&stack).await;
    assert_all_synced(&stack, &changes).await;
    let jobs = jobs(&stack).await;
    let console = jobs.iter().find(|j| j.ingestion_job_id == foreign).unwrap();
    let ours: Vec<_> = invariants::service_jobs(&jobs, DS);
    assert_eq!(ours.len(), 1);
    assert!(
        ours[0].started_at >= console.ended_at.clone().unwrap(),
        "our job started while the console's ran"
    );
    assert_eq!(
        start_job_errors(&stack, "ConflictException").await,
        0,
        "check-quota saw the running job and waited"
    );
    let log = stack.function_log("check-quota");
    assert!(
        log.contains("waiting for quota") && log.contains(&foreign),
        "check-quota says why it waits"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn throttled_starts_are_retried_not_failed() {
    let stack = start(options("throttling")).await;
    stack.emulator().throttle_next_starts(4).await.unwrap();
    put(&stack, "docs/throttled.txt", "eventually ingested").await;
    let changes = settle(&stack).await;
    assert_all_synced(&stack, &changes).await;
    assert_eq!(start_job_errors(&stack, "ThrottlingException").await, 4);
    assert_eq!(jobs(&stack).await.len(), 1, "throttled calls start no job");
    let notifications = observe::take_notifications(&stack).await.unwrap();
    assert_eq!(
        notifications
            .iter()
            .map(|n| n.subject.as_str())
            .collect::<Vec<_>>(),
        vec!["Bedrock KB Sync Job COMPLETE"]
    );
}

//! Ingestion job lifecycle, statistics, idempotency, listing, stopping, time scale.

use std::time::{Duration, Instant};

use aws_sdk_bedrockagent::error::ProvideErrorMetadata;
use aws_sdk_bedrockagent::types::{
    IngestionJobFilter, IngestionJobFilterAttribute, IngestionJobFilterOperator,
    IngestionJobSortBy, IngestionJobSortByAttribute, IngestionJobStatus, SortOrder,
};
use serde_json::json;

use crate::harness::{base_config, statistics, Harness, DS, FAST, JOB_TIMEOUT, KB};

#[tokio::test]
async fn jobs_complete_with_true_statistics_for_new_modified_deleted_and_failed_documents() {
    let harness = Harness::start(base_config(), FAST).await;
    harness.put("docs/a.txt", "a1", 100);
    harness.put("docs/b.md", "b1", 100);
    harness.put("docs/huge.pdf", "h1", 50 * 1024 * 1024 + 1);
    harness.put("docs/tool.exe", "t1", 100);
    harness.put("docs/a.txt.metadata.json", "m1", 10);
    harness.put("outside/ignored.txt", "o1", 100);

    let started = harness.start_job(KB, DS).await;
    assert_eq!(started.status(), &IngestionJobStatus::Starting);
    let first = harness
        .wait_until_done(KB, DS, started.ingestion_job_id(), JOB_TIMEOUT)
        .await;
    assert_eq!(
        first.status(),
        &IngestionJobStatus::Complete,
        "failed documents do not fail the job"
    );
    // scanned, metadata scanned, new, modified, metadata modified, deleted, failed
    assert_eq!(statistics(&first), (4, 1, 2, 0, 1, 0, 2));

    harness.put("docs/b.md", "b2", 120);
    harness.delete("docs/a.txt");
    harness.delete("docs/a.txt.metadata.json");
    harness.put("docs/c.csv", "c1", 100);
    let second_started = harness.start_job(KB, DS).await;
    let second = harness
        .wait_until_done(KB, DS, second_started.ingestion_job_id(), JOB_TIMEOUT)
        .await;
    assert_eq!(second.status(), &IngestionJobStatus::Complete);
    // b.md modified, c.csv new, a.txt deleted, the two unindexable files fail again.
    assert_eq!(statistics(&second), (4, 0, 1, 1, 0, 1, 2));

    let third_started = harness.start_job(KB, DS).await;
    let third = harness
        .wait_until_done(KB, DS, third_started.ingestion_job_id(), JOB_TIMEOUT)
        .await;
    assert_eq!(
        statistics(&third),
        (4, 0, 0, 0, 0, 0, 2),
        "nothing changed in S3"
    );
}

#[tokio::test]
async fn a_job_covers_exactly_the_objects_that_existed_when_it_started() {
    let mut config = base_config();
    // Half a second of real time at this scale: long enough to change S3 while the job runs.
    config.jobs.base_duration_seconds = 500.0;
    let harness = Harness::start(config, FAST).await;
    harness.put("docs/before.txt", "1", 10);

    let started = harness.start_job(KB, DS).await;
    harness.put("docs/after.txt", "1", 10);
    harness.put("docs/before.txt", "2", 10);
    let job = harness
        .wait_until_done(KB, DS, started.ingestion_job_id(), JOB_TIMEOUT)
        .await;
    assert_eq!(statistics(&job), (1, 0, 1, 0, 0, 0, 0));

    let state = harness.inspect().await;
    let documents = &state["knowledge_bases"][0]["data_sources"][0]["documents"];
    assert_eq!(documents.as_array().map(Vec::len), Some(1));
    assert_eq!(documents[0]["key"], "docs/before.txt");
    assert_eq!(
        documents[0]["etag"], "1",
        "the index holds the version of the snapshot"
    );

    let next = harness.start_job(KB, DS).await;
    let next = harness
        .wait_until_done(KB, DS, next.ingestion_job_id(), JOB_TIMEOUT)
        .await;
    assert_eq!(
        statistics(&next),
        (2, 0, 1, 1, 0, 0, 0),
        "the next job picks the changes up"
    );
}

#[tokio::test]
async fn same_client_token_returns_the_same_job_without_starting_another() {
    let mut config = base_config();
    config.jobs.base_duration_seconds = 100_000.0;
    let harness = Harness::start(config, FAST).await;
    let token = "0123456789abcdef0123456789abcdef-token";
    let send = || {
        harness
            .client
            .start_ingestion_job()
            .knowledge_base_id(KB)
            .data_source_id(DS)
            .client_token(token)
            .send()
    };
    let first = send()
        .await
        .expect("first start")
        .ingestion_job
        .expect("job");
    let replay = send()
        .await
        .expect("replayed start")
        .ingestion_job
        .expect("job");
    assert_eq!(first.ingestion_job_id(), replay.ingestion_job_id());

    let listed = harness
        .client
        .list_ingestion_jobs()
        .knowledge_base_id(KB)
        .data_source_id(DS)
        .send()
        .await
        .expect("list");
    assert_eq!(listed.ingestion_job_summaries().len(), 1);

    let other_token = harness
        .client
        .start_ingestion_job()
        .knowledge_base_id(KB)
        .data_source_id(DS)
        .client_token("another-token-0123456789abcdef0123456789")
        .send()
        .await
        .expect_err("a new token is a new job, and the data source is busy");
    assert!(other_token.into_service_error().is_conflict_exception());
}

#[tokio::test]
async fn list_ingestion_jobs_filters_on_status_sorts_and_paginates() {
    let harness = Harness::start(base_config(), FAST).await;
    harness.put("docs/a.txt", "1", 10);
    let mut completed = Vec::new();
    for _ in 0..3 {
        let job = harness.start_job(KB, DS).await;
        harness
            .wait_until_done(KB, DS, job.ingestion_job_id(), JOB_TIMEOUT)
            .await;
        completed.push(job.ingestion_job_id().to_string());
    }
    let (status, _) = harness
        .control_post(
            "faults/fail-jobs",
            json!({"count": 1, "failure_reasons": ["disk on fire"]}),
        )
        .await;
    assert_eq!(status, 200);
    let failed = harness.start_job(KB, DS).await;
    harness
        .wait_until_done(KB, DS, failed.ingestion_job_id(), JOB_TIMEOUT)
        .await;
    harness
        .control_post(
            "faults/slow-jobs",
            json!({"duration_seconds": 1_000_000.0, "count": 1}),
        )
        .await;
    let running = harness.start_job(KB, DS).await;

    let status_filter = |value: &str| {
        IngestionJobFilter::builder()
            .attribute(IngestionJobFilterAttribute::Status)
            .operator(IngestionJobFilterOperator::Eq)
            .values(value)
            .build()
            .expect("filter")
    };
    let ascending = IngestionJobSortBy::builder()
        .attribute(IngestionJobSortByAttribute::StartedAt)
        .order(SortOrder::Ascending)
        .build()
        .expect("sort");

    let mut paged = Vec::new();
    let mut next_token = None;
    let mut pages = 0;
    loop {
        let page = harness
            .client
            .list_ingestion_jobs()
            .knowledge_base_id(KB)
            .data_source_id(DS)
            .filters(status_filter("COMPLETE"))
            .sort_by(ascending.clone())
            .max_results(2)
            .set_next_token(next_token)
            .send()
            .await
            .expect("list page");
        pages += 1;
        assert!(page.ingestion_job_summaries().len() <= 2);
        for summary in page.ingestion_job_summaries() {
            assert_eq!(summary.status(), &IngestionJobStatus::Complete);
            paged.push(summary.ingestion_job_id().to_string());
        }
        next_token = page.next_token().map(str::to_string);
        if next_token.is_none() {
            break;
        }
    }
    assert_eq!(pages, 2);
    assert_eq!(paged, completed, "all COMPLETE jobs, oldest first");

    let both = IngestionJobFilter::builder()
        .attribute(IngestionJobFilterAttribute::Status)
        .operator(IngestionJobFilterOperator::Eq)
        .values("FAILED")
        .values("STARTING")
        .values("IN_PROGRESS")
        .build()
        .expect("filter");
    let by_status = IngestionJobSortBy::builder()
        .attribute(IngestionJobSortByAttribute::Status)
        .order(SortOrder::Descending)
        .build()
        .expect("sort");
    let listed = harness
        .client
        .list_ingestion_jobs()
        .knowledge_base_id(KB)
        .data_source_id(DS)
        .filters(both)
        .sort_by(by_status)
        .send()
        .await
        .expect("list");
    let ids: Vec<&str> = listed
        .ingestion_job_summaries()
        .iter()
        .map(|summary| summary.ingestion_job_id())
        .collect();
    // STARTING / IN_PROGRESS sort after FAILED alphabetically, so they come first descending.
    assert_eq!(
        ids,
        vec![running.ingestion_job_id(), failed.ingestion_job_id()]
    );

    let newest_first = harness
        .client
        .list_ingestion_jobs()
        .knowledge_base_id(KB)
        .data_source_id(DS)
        .send()
        .await
        .expect("list");
    assert_eq!(newest_first.ingestion_job_summaries().len(), 5);
    assert_eq!(
        newest_first.ingestion_job_summaries()[0].ingestion_job_id(),
        running.ingestion_job_id(),
        "default order is newest first"
    );

    let bad_filter = harness
        .client
        .list_ingestion_jobs()
        .knowledge_base_id(KB)
        .data_source_id(DS)
        .filters(status_filter("DONE"))
        .send()
        .await
        .expect_err("unknown status value");
    assert!(bad_filter.into_service_error().is_validation_exception());
}

#[tokio::test]
async fn stop_ingestion_job_goes_through_stopping_to_stopped_and_frees_the_data_source() {
    let mut config = base_config();
    config.jobs.base_duration_seconds = 1_000_000.0;
    let harness = Harness::start(config, FAST).await;
    let job = harness.start_job(KB, DS).await;
    let stopping = harness
        .client
        .stop_ingestion_job()
        .knowledge_base_id(KB)
        .data_source_id(DS)
        .ingestion_job_id(job.ingestion_job_id())
        .send()
        .await
        .expect("stop")
        .ingestion_job
        .expect("job");
    assert_eq!(stopping.status(), &IngestionJobStatus::Stopping);
    let stopped = harness
        .wait_until_done(KB, DS, job.ingestion_job_id(), JOB_TIMEOUT)
        .await;
    assert_eq!(stopped.status(), &IngestionJobStatus::Stopped);

    let again = harness
        .client
        .stop_ingestion_job()
        .knowledge_base_id(KB)
        .data_source_id(DS)
        .ingestion_job_id(job.ingestion_job_id())
        .send()
        .await
        .expect_err("a stopped job cannot be stopped");
    assert!(again.into_service_error().is_conflict_exception());
    harness.start_job(KB, DS).await;
}

#[tokio::test]
async fn time_scale_divides_job_duration() {
    let mut config = base_config();
    config.jobs.starting_seconds = 10.0;
    config.jobs.base_duration_seconds = 60.0;
    config.jobs.per_document_seconds = 20.0;
    // 60 s + 20 s x 2 documents = 100 s of Bedrock time = 250 ms at 400x.
    let harness = Harness::start(config, 400.0).await;
    harness.put("docs/a.txt", "1", 1);
    harness.put("docs/b.txt", "1", 1);
    let clock = Instant::now();
    let job = harness.start_job(KB, DS).await;
    let done = harness
        .wait_until_done(KB, DS, job.ingestion_job_id(), JOB_TIMEOUT)
        .await;
    let elapsed = clock.elapsed();
    assert_eq!(done.status(), &IngestionJobStatus::Complete);
    let reported = done.updated_at().to_millis().expect("millis")
        - done.started_at().to_millis().expect("millis");
    assert_eq!(
        reported, 250,
        "updatedAt - startedAt is the scaled duration"
    );
    assert!(
        elapsed >= Duration::from_millis(240),
        "completed too early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(3),
        "completed too late: {elapsed:?}"
    );
}

#[tokio::test]
async fn unknown_ids_are_resource_not_found_naming_the_id() {
    let harness = Harness::start(base_config(), FAST).await;
    let missing_kb = harness
        .client
        .start_ingestion_job()
        .knowledge_base_id("KBMISSING1")
        .data_source_id(DS)
        .send()
        .await
        .expect_err("unknown knowledge base")
        .into_service_error();
    assert!(missing_kb.is_resource_not_found_exception());
    assert!(missing_kb
        .message()
        .unwrap_or_default()
        .contains("KBMISSING1"));

    let missing_ds = harness
        .client
        .get_data_source()
        .knowledge_base_id(KB)
        .data_source_id("DSMISSING1")
        .send()
        .await
        .expect_err("unknown data source")
        .into_service_error();
    assert!(missing_ds.is_resource_not_found_exception());
    assert!(missing_ds
        .message()
        .unwrap_or_default()
        .contains("DSMISSING1"));

    let missing_job = harness
        .client
        .get_ingestion_job()
        .knowledge_base_id(KB)
        .data_source_id(DS)
        .ingestion_job_id("JOBMISSING")
        .send()
        .await
        .expect_err("unknown job")
        .into_service_error();
    assert!(missing_job.is_resource_not_found_exception());
    assert!(missing_job
        .message()
        .unwrap_or_default()
        .contains("JOBMISSING"));

    let missing_kb_get = harness
        .client
        .get_knowledge_base()
        .knowledge_base_id("KBMISSING2")
        .send()
        .await
        .expect_err("unknown knowledge base")
        .into_service_error();
    assert!(missing_kb_get.is_resource_not_found_exception());
}

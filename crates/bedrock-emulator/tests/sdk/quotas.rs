//! Concurrency quotas (data source, knowledge base, account) and request-rate token buckets.

use std::time::Duration;

use aws_sdk_bedrockagent::error::ProvideErrorMetadata;

use crate::harness::{
    base_config, data_source, knowledge_base, Harness, DS, DS2, FAST, KB, KB2, KB3, PREFIX,
};

/// Jobs that outlive the test.
fn long_jobs(mut config: bedrock_emulator::EmulatorConfig) -> bedrock_emulator::EmulatorConfig {
    config.jobs.base_duration_seconds = 1_000_000.0;
    config
}

#[tokio::test]
async fn a_busy_data_source_refuses_a_second_job_with_conflict() {
    let harness = Harness::start(long_jobs(base_config()), FAST).await;
    let running = harness.start_job(KB, DS).await;
    let error = harness
        .client
        .start_ingestion_job()
        .knowledge_base_id(KB)
        .data_source_id(DS)
        .send()
        .await
        .expect_err("data source busy")
        .into_service_error();
    assert!(error.is_conflict_exception(), "{error:?}");
    assert!(error
        .message()
        .unwrap_or_default()
        .contains(running.ingestion_job_id()));
}

#[tokio::test]
async fn a_busy_knowledge_base_refuses_a_job_on_its_other_data_source_with_conflict() {
    let mut config = long_jobs(base_config());
    config.knowledge_bases[0]
        .data_sources
        .push(data_source(DS2, Some("other/")));
    let harness = Harness::start(config, FAST).await;
    harness.start_job(KB, DS).await;
    let error = harness
        .client
        .start_ingestion_job()
        .knowledge_base_id(KB)
        .data_source_id(DS2)
        .send()
        .await
        .expect_err("knowledge base busy")
        .into_service_error();
    assert!(error.is_conflict_exception(), "{error:?}");
    assert!(error.message().unwrap_or_default().contains(KB));
}

#[tokio::test]
async fn the_account_limit_is_service_quota_exceeded() {
    let mut config = long_jobs(base_config());
    config.quotas.max_concurrent_jobs_per_account = 2;
    config
        .knowledge_bases
        .push(knowledge_base(KB2, vec![data_source(DS, Some(PREFIX))]));
    config
        .knowledge_bases
        .push(knowledge_base(KB3, vec![data_source(DS, Some(PREFIX))]));
    let harness = Harness::start(config, FAST).await;
    harness.start_job(KB, DS).await;
    harness.start_job(KB2, DS).await;
    let error = harness
        .client
        .start_ingestion_job()
        .knowledge_base_id(KB3)
        .data_source_id(DS)
        .send()
        .await
        .expect_err("account full")
        .into_service_error();
    assert!(error.is_service_quota_exceeded_exception(), "{error:?}");

    let state = harness.inspect().await;
    assert_eq!(state["errors"]["ServiceQuotaExceededException"], 1);
    assert_eq!(state["calls"]["StartIngestionJob"], 3);
}

#[tokio::test]
async fn start_ingestion_job_is_throttled_by_its_token_bucket() {
    let mut config = base_config();
    config.quotas.start_ingestion_job_burst = 1;
    config.quotas.start_ingestion_job_rate_per_second = 0.1;
    config
        .knowledge_bases
        .push(knowledge_base(KB2, vec![data_source(DS, Some(PREFIX))]));
    // Time scale 1: the bucket refills one token every 10 s, far beyond this test.
    let harness = Harness::start(config, 1.0).await;
    harness.start_job(KB, DS).await;
    let error = harness
        .client
        .start_ingestion_job()
        .knowledge_base_id(KB2)
        .data_source_id(DS)
        .send()
        .await
        .expect_err("second start within 10 s")
        .into_service_error();
    assert!(error.is_throttling_exception(), "{error:?}");
}

#[tokio::test]
async fn the_start_bucket_refills_time_scale_times_faster() {
    let mut config = base_config();
    config.quotas.start_ingestion_job_burst = 1;
    config.quotas.start_ingestion_job_rate_per_second = 0.1;
    config
        .knowledge_bases
        .push(knowledge_base(KB2, vec![data_source(DS, Some(PREFIX))]));
    config
        .knowledge_bases
        .push(knowledge_base(KB3, vec![data_source(DS, Some(PREFIX))]));
    // 0.1/s x 20 = one token every 500 ms (10 s at scale 1).
    let harness = Harness::start(long_jobs(config), 20.0).await;
    harness.start_job(KB, DS).await;
    let throttled = harness
        .client
        .start_ingestion_job()
        .knowledge_base_id(KB2)
        .data_source_id(DS)
        .send()
        .await
        .expect_err("no token yet")
        .into_service_error();
    assert!(throttled.is_throttling_exception());
    tokio::time::sleep(Duration::from_millis(550)).await;
    harness.start_job(KB3, DS).await;
}

#[tokio::test]
async fn get_and_list_calls_are_limited_per_operation_unless_disabled() {
    let mut config = base_config();
    // A slow refill, so a slow machine cannot earn an 11th token while making the first 10 calls.
    config.quotas.read_rate_per_second = 0.1;
    config.quotas.read_burst = 10;
    let harness = Harness::start(config, 1.0).await;
    for _ in 0..10 {
        harness
            .client
            .get_knowledge_base()
            .knowledge_base_id(KB)
            .send()
            .await
            .expect("within the burst");
    }
    let error = harness
        .client
        .get_knowledge_base()
        .knowledge_base_id(KB)
        .send()
        .await
        .expect_err("11th call in the same instant")
        .into_service_error();
    assert!(error.is_throttling_exception(), "{error:?}");
    harness
        .client
        .get_data_source()
        .knowledge_base_id(KB)
        .data_source_id(DS)
        .send()
        .await
        .expect("another operation has its own bucket");

    let mut unlimited = base_config();
    unlimited.quotas.read_rate_limit_enabled = false;
    let harness = Harness::start(unlimited, 1.0).await;
    for _ in 0..30 {
        harness
            .client
            .get_knowledge_base()
            .knowledge_base_id(KB)
            .send()
            .await
            .expect("no read limit");
    }
}

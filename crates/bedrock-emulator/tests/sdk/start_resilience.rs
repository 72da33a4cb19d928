//! A job start does not depend on its caller or on S3 answering: Bedrock carries on with a job
//! whatever the client does, and a hung S3 must end in an error, not in a job that holds its
//! data source, knowledge base and account slots forever.

use std::time::{Duration, Instant};

use aws_sdk_bedrockagent::error::ProvideErrorMetadata;
use aws_sdk_bedrockagent::types::IngestionJobStatus;
use bedrock_emulator::config::S3ClientConfig;
use bedrock_emulator::emulator::StartJobRequest;
use bedrock_emulator::{ObjectLister, S3ObjectLister};
use serde_json::Value;

use crate::harness::{base_config, statistics, Harness, BUCKET, DS, FAST, JOB_TIMEOUT, KB};

/// Lists take this long: the caller goes away well before the listing ends.
const SLOW_LISTING: Duration = Duration::from_secs(1);

/// Runs `request` until the emulator shows job number `jobs` STARTING without a snapshot (the
/// listing is under way), then drops it, as a client that disconnects does. Returns the job's id.
async fn give_up_during_the_listing<F: std::future::Future>(
    harness: &Harness,
    request: F,
    jobs: usize,
) -> String {
    let listing_started = async {
        loop {
            let state = harness.inspect().await;
            if state["jobs"].as_array().map_or(0, Vec::len) == jobs {
                let job = &state["jobs"][jobs - 1];
                assert_eq!(job["status"], "STARTING");
                assert_eq!(job["scheduled_end_at"], Value::Null, "no snapshot yet");
                return only_job_id(&state);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::select! {
        _ = request => panic!("the call returned before the listing ended"),
        job_id = listing_started => job_id,
    }
}

fn only_job_id(state: &Value) -> String {
    let jobs = state["jobs"].as_array().expect("jobs");
    jobs.last().expect("a job")["ingestion_job_id"]
        .as_str()
        .expect("job id")
        .to_string()
}

#[tokio::test]
async fn a_start_whose_caller_goes_away_during_the_listing_still_schedules_the_job() {
    let harness = Harness::start(base_config(), FAST).await;
    harness.put("docs/a.txt", "1", 1);
    harness.s3.set_listing_delay(Some(SLOW_LISTING));

    let emulator = harness.server.emulator().clone();
    let start = emulator.start_ingestion_job(KB, DS, StartJobRequest::default());
    let job_id = give_up_during_the_listing(&harness, start, 1).await;
    let done = harness.wait_until_done(KB, DS, &job_id, JOB_TIMEOUT).await;
    assert_eq!(done.status(), &IngestionJobStatus::Complete);
    assert_eq!(statistics(&done).2, 1, "its snapshot was taken and applied");

    // The same through the SDK: the client drops the HTTP request.
    harness.put("docs/b.txt", "1", 1);
    let request = harness
        .client
        .start_ingestion_job()
        .knowledge_base_id(KB)
        .data_source_id(DS)
        .send();
    let job_id = give_up_during_the_listing(&harness, request, 2).await;
    let done = harness.wait_until_done(KB, DS, &job_id, JOB_TIMEOUT).await;
    assert_eq!(done.status(), &IngestionJobStatus::Complete);
    assert_eq!(statistics(&done).2, 1);
}

fn hung_s3_config() -> bedrock_emulator::EmulatorConfig {
    let mut config = base_config();
    config.s3.listing_timeout_seconds = 0.2;
    config
}

#[tokio::test]
async fn a_hung_s3_fails_the_job_with_a_timeout_reason_and_frees_the_data_source() {
    let harness = Harness::start(hung_s3_config(), FAST).await;
    harness.put("docs/a.txt", "1", 1);
    harness.s3.set_listing_delay(Some(Duration::from_secs(30)));

    let asked_at = Instant::now();
    let job = harness.start_job(KB, DS).await;
    assert!(
        asked_at.elapsed() < Duration::from_secs(5),
        "the call returns"
    );
    let failed = harness
        .wait_until_done(KB, DS, job.ingestion_job_id(), JOB_TIMEOUT)
        .await;
    assert_eq!(failed.status(), &IngestionJobStatus::Failed);
    assert!(
        failed.failure_reasons()[0].contains("timed out"),
        "{:?}",
        failed.failure_reasons()
    );

    harness.s3.set_listing_delay(None);
    let next = harness.start_job(KB, DS).await;
    let next = harness
        .wait_until_done(KB, DS, next.ingestion_job_id(), JOB_TIMEOUT)
        .await;
    assert_eq!(next.status(), &IngestionJobStatus::Complete);
}

#[tokio::test]
async fn a_hung_s3_makes_direct_ingestion_an_internal_server_error_that_starts_nothing() {
    use aws_sdk_bedrockagent::types::{
        ContentDataSourceType, DocumentContent, KnowledgeBaseDocument, S3Content, S3Location,
    };
    let harness = Harness::start(hung_s3_config(), FAST).await;
    harness.put("docs/a.txt", "1", 1);
    harness.s3.set_listing_delay(Some(Duration::from_secs(30)));
    let document = KnowledgeBaseDocument::builder()
        .content(
            DocumentContent::builder()
                .data_source_type(ContentDataSourceType::S3)
                .s3(S3Content::builder()
                    .s3_location(
                        S3Location::builder()
                            .uri(format!("s3://{BUCKET}/docs/a.txt"))
                            .build()
                            .expect("location"),
                    )
                    .build())
                .build()
                .expect("content"),
        )
        .build();
    let error = harness
        .client
        .ingest_knowledge_base_documents()
        .knowledge_base_id(KB)
        .data_source_id(DS)
        .documents(document)
        .send()
        .await
        .expect_err("S3 does not answer")
        .into_service_error();
    assert!(error.is_internal_server_exception(), "{error:?}");
    assert!(error.message().unwrap_or_default().contains("timed out"));
    let state = harness.inspect().await;
    assert_eq!(
        state["knowledge_bases"][0]["data_sources"][0]["pending_documents"],
        serde_json::json!([])
    );
}

#[tokio::test]
async fn the_s3_client_gives_up_on_an_endpoint_that_never_answers() {
    // Accepts connections and never writes a byte.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let endpoint = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let timeouts = S3ClientConfig {
        connect_timeout_seconds: 1.0,
        operation_timeout_seconds: 0.3,
        listing_timeout_seconds: 120.0,
    };
    let lister = S3ObjectLister::new(&endpoint, "us-east-1", &timeouts);
    let asked_at = Instant::now();
    let error = lister
        .list("any-bucket", "docs/")
        .await
        .expect_err("no answer is an error");
    assert!(asked_at.elapsed() < Duration::from_secs(5), "{error}");
    assert!(error.0.contains("timeout"), "{error}");
}

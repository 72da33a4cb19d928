//! Fault injection and inspection through the /_emulator control endpoints.

use aws_sdk_bedrockagent::types::{
    ContentDataSourceType, DocumentIdentifier, DocumentStatus, IngestionJobStatus, S3Location,
};
use serde_json::json;

use crate::harness::{base_config, statistics, Harness, BUCKET, DS, FAST, JOB_TIMEOUT, KB};

fn s3_document(key: &str) -> DocumentIdentifier {
    DocumentIdentifier::builder()
        .data_source_type(ContentDataSourceType::S3)
        .s3(S3Location::builder()
            .uri(format!("s3://{BUCKET}/{key}"))
            .build()
            .expect("location"))
        .build()
        .expect("identifier")
}

#[tokio::test]
async fn injected_job_failures_end_jobs_failed_with_the_given_reasons() {
    let harness = Harness::start(base_config(), FAST).await;
    harness.put("docs/a.txt", "1", 1);
    let (status, faults) = harness
        .control_post(
            "faults/fail-jobs",
            json!({"count": 1, "failure_reasons": ["Embedding model throttled", "Try again"]}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(faults["fail_jobs"][0]["count"], 1);

    let job = harness.start_job(KB, DS).await;
    let failed = harness
        .wait_until_done(KB, DS, job.ingestion_job_id(), JOB_TIMEOUT)
        .await;
    assert_eq!(failed.status(), &IngestionJobStatus::Failed);
    assert_eq!(
        failed.failure_reasons(),
        ["Embedding model throttled", "Try again"]
    );

    let next = harness.start_job(KB, DS).await;
    let next = harness
        .wait_until_done(KB, DS, next.ingestion_job_id(), JOB_TIMEOUT)
        .await;
    assert_eq!(
        next.status(),
        &IngestionJobStatus::Complete,
        "the fault was used up"
    );
    assert_eq!(statistics(&next).2, 1, "the failed job indexed nothing");
}

#[tokio::test]
async fn documents_matching_a_failure_pattern_fail_with_their_reason_visible_per_document() {
    let harness = Harness::start(base_config(), FAST).await;
    harness.put("docs/good.txt", "1", 1);
    harness.put("docs/bad-1.txt", "1", 1);
    harness.put("docs/sub/bad-2.md", "1", 1);
    let (status, _) = harness
        .control_post(
            "faults/fail-documents",
            json!({"pattern": "docs/*bad-*", "reason": "Parsing failed: corrupt file", "data_source_id": DS}),
        )
        .await;
    assert_eq!(status, 200);

    let job = harness.start_job(KB, DS).await;
    let job = harness
        .wait_until_done(KB, DS, job.ingestion_job_id(), JOB_TIMEOUT)
        .await;
    assert_eq!(job.status(), &IngestionJobStatus::Complete);
    assert_eq!(statistics(&job), (3, 0, 1, 0, 0, 0, 2));

    let details = harness
        .client
        .get_knowledge_base_documents()
        .knowledge_base_id(KB)
        .data_source_id(DS)
        .document_identifiers(s3_document("docs/bad-1.txt"))
        .document_identifiers(s3_document("docs/good.txt"))
        .document_identifiers(s3_document("docs/never-existed.txt"))
        .send()
        .await
        .expect("get documents");
    let details = details.document_details();
    assert_eq!(details[0].status(), &DocumentStatus::Failed);
    assert_eq!(
        details[0].status_reason(),
        Some("Parsing failed: corrupt file")
    );
    assert_eq!(details[1].status(), &DocumentStatus::Indexed);
    assert_eq!(details[1].status_reason(), None);
    assert_eq!(details[2].status(), &DocumentStatus::NotFound);
    let uri = details[0]
        .identifier()
        .and_then(|identifier| identifier.s3())
        .map(|s3| s3.uri());
    assert_eq!(uri, Some("s3://docs-bucket/docs/bad-1.txt"));
}

#[tokio::test]
async fn a_foreign_job_occupies_the_data_source_and_shows_in_the_job_list() {
    let harness = Harness::start(base_config(), FAST).await;
    harness.put("docs/a.txt", "1", 1);
    let (status, created) = harness
        .control_post(
            "foreign-jobs",
            json!({"knowledge_base_id": KB, "data_source_id": DS, "duration_seconds": 1_000_000.0}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let foreign_id = created["ingestionJob"]["ingestionJobId"]
        .as_str()
        .expect("job id")
        .to_string();

    let error = harness
        .client
        .start_ingestion_job()
        .knowledge_base_id(KB)
        .data_source_id(DS)
        .send()
        .await
        .expect_err("slot taken by the console job")
        .into_service_error();
    assert!(error.is_conflict_exception());

    let listed = harness
        .client
        .list_ingestion_jobs()
        .knowledge_base_id(KB)
        .data_source_id(DS)
        .send()
        .await
        .expect("list");
    assert_eq!(listed.ingestion_job_summaries().len(), 1);
    assert_eq!(
        listed.ingestion_job_summaries()[0].ingestion_job_id(),
        foreign_id
    );

    let (status, _) = harness
        .control_post(
            "foreign-jobs",
            json!({"knowledge_base_id": KB, "data_source_id": DS}),
        )
        .await;
    assert_eq!(status, 409, "a second foreign job meets the same quota");
    let state = harness.inspect().await;
    assert_eq!(state["jobs"][0]["origin"], "foreign");
    assert_eq!(
        state["knowledge_bases"][0]["data_sources"][0]["active_job_ids"][0],
        foreign_id.as_str()
    );
}

#[tokio::test]
async fn forced_throttles_slow_jobs_and_reset() {
    let harness = Harness::start(base_config(), FAST).await;
    harness
        .control_post("faults/throttle-start-ingestion-job", json!({"count": 2}))
        .await;
    for _ in 0..2 {
        let error = harness
            .client
            .start_ingestion_job()
            .knowledge_base_id(KB)
            .data_source_id(DS)
            .send()
            .await
            .expect_err("forced throttle")
            .into_service_error();
        assert!(error.is_throttling_exception());
    }
    harness
        .control_post("faults/slow-jobs", json!({"duration_seconds": 1_000_000.0}))
        .await;
    let slow = harness.start_job(KB, DS).await;
    let state = harness.inspect().await;
    assert_eq!(state["errors"]["ThrottlingException"], 2);
    assert_eq!(
        state["jobs"][0]["ingestion_job_id"],
        slow.ingestion_job_id()
    );
    assert_eq!(state["jobs"][0]["ended_at"], serde_json::Value::Null);

    let reset = harness
        .http
        .post(harness.control_url("reset"))
        .send()
        .await
        .expect("reset answers");
    assert_eq!(reset.status().as_u16(), 200);
    let state = harness.inspect().await;
    assert_eq!(state["jobs"].as_array().map(Vec::len), Some(0));
    assert_eq!(state["calls"], json!({}));
    assert_eq!(state["faults"]["slow_jobs"], json!([]));
    harness.start_job(KB, DS).await;
}

#[tokio::test]
async fn inspection_shows_documents_job_times_statistics_and_counters() {
    let harness = Harness::start(base_config(), FAST).await;
    harness.put("docs/a.txt", "etag-a", 5);
    harness.put("docs/b.bin", "etag-b", 5);
    let job = harness.start_job(KB, DS).await;
    harness
        .wait_until_done(KB, DS, job.ingestion_job_id(), JOB_TIMEOUT)
        .await;
    let _ = harness
        .client
        .start_ingestion_job()
        .knowledge_base_id(KB)
        .data_source_id("NOPE")
        .send()
        .await;

    let state = harness.inspect().await;
    let data_source = &state["knowledge_bases"][0]["data_sources"][0];
    assert_eq!(data_source["bucket"], BUCKET);
    assert_eq!(data_source["documents"][0]["key"], "docs/a.txt");
    assert_eq!(data_source["documents"][0]["etag"], "etag-a");
    assert_eq!(data_source["documents"][0]["status"], "INDEXED");
    assert_eq!(data_source["documents"][1]["status"], "FAILED");
    let recorded = &state["jobs"][0];
    assert_eq!(recorded["status"], "COMPLETE");
    assert_eq!(recorded["statistics"]["numberOfNewDocumentsIndexed"], 1);
    assert_eq!(recorded["statistics"]["numberOfDocumentsFailed"], 1);
    assert_eq!(recorded["document_changes"]["docs/a.txt"]["change"], "NEW");
    for field in ["started_at", "ended_at", "updated_at"] {
        let timestamp = recorded[field].as_str().expect("timestamp string");
        // RFC 3339 with milliseconds: 2024-05-01T12:30:00.123Z
        assert_eq!(timestamp.len(), 24, "{field}: {timestamp}");
        assert!(
            timestamp.ends_with('Z') && timestamp.as_bytes()[19] == b'.',
            "{field}: {timestamp}"
        );
    }
    assert_eq!(
        state["errors_by_operation"]["StartIngestionJob"]["ResourceNotFoundException"],
        1
    );
    assert_eq!(state["calls"]["StartIngestionJob"], 2);
    assert!(state["calls"]["GetIngestionJob"].as_u64().unwrap_or(0) >= 1);
}

#[tokio::test]
async fn bad_fault_bodies_are_rejected() {
    let harness = Harness::start(base_config(), FAST).await;
    let (status, body) = harness
        .control_post("faults/fail-jobs", json!({"count": 0}))
        .await;
    assert_eq!(status, 400);
    assert!(body["message"]
        .as_str()
        .unwrap_or_default()
        .contains("count"));
    let (status, _) = harness
        .control_post("faults/fail-documents", json!({"patern": "x"}))
        .await;
    assert_eq!(status, 400);
    let (status, _) = harness
        .control_post(
            "foreign-jobs",
            json!({"knowledge_base_id": "KBNONE", "data_source_id": DS}),
        )
        .await;
    assert_eq!(status, 404);
}

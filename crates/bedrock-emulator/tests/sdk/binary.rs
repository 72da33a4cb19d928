//! The `bedrock-emulator` executable: readiness line, ready file, and a job that lists a (fake) S3
//! endpoint through aws-sdk-s3.

use std::process::Stdio;
use std::time::Duration;

use aws_sdk_bedrockagent::types::IngestionJobStatus;
use axum::extract::{Path, Query};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::Command;

use crate::harness::{sdk_client, statistics, JOB_TIMEOUT};

/// Answers ListObjectsV2 (path-style `GET /{bucket}?list-type=2&prefix=...`) for one bucket.
async fn fake_s3() -> String {
    async fn list_objects(
        Path(bucket): Path<String>,
        Query(query): Query<std::collections::HashMap<String, String>>,
    ) -> ([(&'static str, &'static str); 1], String) {
        let prefix = query.get("prefix").cloned().unwrap_or_default();
        let objects = [
            ("docs/a.txt", "\"etag-a\"", 10),
            ("docs/b.pdf", "\"etag-b\"", 20),
            ("other/c.txt", "\"etag-c\"", 5),
        ];
        let contents: String = objects
            .iter()
            .filter(|(key, _, _)| bucket == "binary-bucket" && key.starts_with(&prefix))
            .map(|(key, etag, size)| {
                format!(
                    "<Contents><Key>{key}</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified>\
                     <ETag>{}</ETag><Size>{size}</Size><StorageClass>STANDARD</StorageClass></Contents>",
                    etag.replace('"', "&quot;")
                )
            })
            .collect();
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
             <ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>{bucket}</Name>\
             <Prefix>{prefix}</Prefix><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>{contents}</ListBucketResult>"
        );
        ([("content-type", "application/xml")], body)
    }
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("fake S3 binds");
    let endpoint = format!("http://{}", listener.local_addr().expect("address"));
    // The SDK's path-style URL is `/{bucket}/?list-type=2...`; accept it with or without the slash.
    let app = Router::new()
        .route("/{bucket}", get(list_objects))
        .route("/{bucket}/", get(list_objects));
    tokio::spawn(async move { axum::serve(listener, app).await });
    endpoint
}

#[tokio::test]
async fn binary_announces_its_endpoint_and_runs_jobs_against_s3() {
    let s3_endpoint = fake_s3().await;
    let directory =
        std::env::temp_dir().join(format!("bedrock-emulator-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&directory).expect("temp dir");
    let config_path = directory.join("config.json");
    let ready_path = directory.join("ready.json");
    let config = json!({
        "region": "eu-west-1",
        "knowledge_bases": [{
            "id": "KBBINARY01", "name": "binary",
            "data_sources": [{"id": "DSBINARY01", "name": "docs", "bucket_arn": "arn:aws:s3:::binary-bucket",
                              "inclusion_prefixes": ["docs/"]}]
        }],
        "jobs": {"base_duration_seconds": 30}
    });
    std::fs::write(&config_path, config.to_string()).expect("config written");

    let mut child = Command::new(env!("CARGO_BIN_EXE_bedrock-emulator"))
        .arg("--config")
        .arg(&config_path)
        .args([
            "--port",
            "0",
            "--s3-endpoint",
            &s3_endpoint,
            "--time-scale",
            "1000",
            "--log-format",
            "json",
        ])
        .arg("--ready-file")
        .arg(&ready_path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("readiness line in time")
        .expect("stdout readable")
        .expect("a line");
    let announced: Value = serde_json::from_str(&line).expect("readiness line is JSON");
    let endpoint = announced["endpoint"]
        .as_str()
        .expect("endpoint")
        .to_string();
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
    assert_eq!(
        std::fs::read_to_string(&ready_path).expect("ready file"),
        format!("{line}\n")
    );

    let health: Value = reqwest::get(format!("{endpoint}/_emulator/health"))
        .await
        .expect("health answers")
        .json()
        .await
        .expect("health JSON");
    assert_eq!(health["status"], "ok");

    let client = sdk_client(&endpoint);
    let job = client
        .start_ingestion_job()
        .knowledge_base_id("KBBINARY01")
        .data_source_id("DSBINARY01")
        .send()
        .await
        .expect("start")
        .ingestion_job
        .expect("job");
    let deadline = tokio::time::Instant::now() + JOB_TIMEOUT;
    let done = loop {
        let current = client
            .get_ingestion_job()
            .knowledge_base_id("KBBINARY01")
            .data_source_id("DSBINARY01")
            .ingestion_job_id(job.ingestion_job_id())
            .send()
            .await
            .expect("get")
            .ingestion_job
            .expect("job");
        if matches!(
            current.status(),
            IngestionJobStatus::Complete | IngestionJobStatus::Failed
        ) {
            break current;
        }
        assert!(tokio::time::Instant::now() < deadline, "job did not finish");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(
        done.status(),
        &IngestionJobStatus::Complete,
        "{:?}",
        done.failure_reasons()
    );
    assert_eq!(statistics(&done), (2, 0, 2, 0, 0, 0, 0));

    let state: Value = reqwest::get(format!("{endpoint}/_emulator/state"))
        .await
        .expect("state answers")
        .json()
        .await
        .expect("state JSON");
    assert_eq!(
        state["knowledge_bases"][0]["data_sources"][0]["documents"][0]["etag"],
        "etag-a"
    );

    child.kill().await.expect("binary stops");
    let _ = std::fs::remove_dir_all(&directory);
}

#[tokio::test]
async fn binary_rejects_an_invalid_config() {
    let directory =
        std::env::temp_dir().join(format!("bedrock-emulator-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&directory).expect("temp dir");
    let config_path = directory.join("config.json");
    std::fs::write(&config_path, r#"{"knowledge_bases":[{"id":"KB1","name":"x","data_sources":[{"id":"DS1","name":"d","bucket_arn":"not-an-arn"}]}]}"#)
        .expect("config written");
    let output = Command::new(env!("CARGO_BIN_EXE_bedrock-emulator"))
        .arg("--config")
        .arg(&config_path)
        .args(["--s3-endpoint", "http://127.0.0.1:9"])
        .output()
        .await
        .expect("binary runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("bucket_arn"));
    let _ = std::fs::remove_dir_all(&directory);
}

//! Wire-level details: catalog reads through the SDK, and the raw HTTP shape of errors.

use aws_sdk_bedrockagent::types::{DataSourceStatus, KnowledgeBaseStatus};
use serde_json::{json, Value};

use crate::harness::{
    base_config, data_source, knowledge_base, Harness, BUCKET, DS, DS2, FAST, KB, KB2, PREFIX,
};

#[tokio::test]
async fn knowledge_base_and_data_sources_are_described_like_bedrock() {
    let mut config = base_config();
    config.knowledge_bases[0]
        .data_sources
        .push(data_source(DS2, None));
    let harness = Harness::start(config, FAST).await;

    let knowledge_base = harness
        .client
        .get_knowledge_base()
        .knowledge_base_id(KB)
        .send()
        .await
        .expect("get knowledge base")
        .knowledge_base
        .expect("knowledge base");
    assert_eq!(knowledge_base.knowledge_base_id(), KB);
    assert_eq!(knowledge_base.status(), &KnowledgeBaseStatus::Active);
    assert_eq!(
        knowledge_base.knowledge_base_arn(),
        format!("arn:aws:bedrock:us-east-1:123456789012:knowledge-base/{KB}")
    );

    let listed = harness
        .client
        .list_data_sources()
        .knowledge_base_id(KB)
        .max_results(1)
        .send()
        .await
        .expect("list data sources");
    assert_eq!(listed.data_source_summaries().len(), 1);
    assert_eq!(listed.data_source_summaries()[0].data_source_id(), DS);
    let rest = harness
        .client
        .list_data_sources()
        .knowledge_base_id(KB)
        .set_next_token(listed.next_token().map(str::to_string))
        .send()
        .await
        .expect("second page");
    assert_eq!(rest.data_source_summaries()[0].data_source_id(), DS2);
    assert_eq!(rest.next_token(), None);

    let data_source = harness
        .client
        .get_data_source()
        .knowledge_base_id(KB)
        .data_source_id(DS)
        .send()
        .await
        .expect("get data source")
        .data_source
        .expect("data source");
    assert_eq!(data_source.status(), &DataSourceStatus::Available);
    let s3 = data_source
        .data_source_configuration()
        .and_then(|configuration| configuration.s3_configuration())
        .expect("s3 configuration");
    assert_eq!(s3.bucket_arn(), format!("arn:aws:s3:::{BUCKET}"));
    assert_eq!(s3.inclusion_prefixes(), [PREFIX]);
}

#[tokio::test]
async fn every_knowledge_base_of_the_account_is_listed_page_by_page() {
    let mut config = base_config();
    config.knowledge_bases.push(knowledge_base(KB2, vec![]));
    let harness = Harness::start(config, FAST).await;
    let mut ids = Vec::new();
    let mut pages = harness
        .client
        .list_knowledge_bases()
        .max_results(1)
        .into_paginator()
        .send();
    let mut page_count = 0;
    while let Some(page) = pages.next().await {
        let page = page.expect("list knowledge bases");
        page_count += 1;
        for summary in page.knowledge_base_summaries() {
            assert_eq!(summary.status(), &KnowledgeBaseStatus::Active);
            ids.push(summary.knowledge_base_id().to_string());
        }
    }
    ids.sort();
    let mut expected = vec![KB.to_string(), KB2.to_string()];
    expected.sort();
    assert_eq!(ids, expected);
    assert!(page_count >= 2, "one knowledge base per page");
}

async fn raw(
    harness: &Harness,
    method: reqwest::Method,
    path: &str,
    body: &str,
) -> (u16, Option<String>, Value) {
    let response = harness
        .http
        .request(method, format!("{}{path}", harness.server.endpoint()))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("emulator answers");
    let status = response.status().as_u16();
    let error_type = response
        .headers()
        .get("x-amzn-errortype")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    assert!(response.headers().contains_key("x-amzn-requestid"));
    (
        status,
        error_type,
        response.json().await.expect("JSON body"),
    )
}

#[tokio::test]
async fn errors_carry_the_type_header_the_status_and_a_message_body() {
    let mut config = base_config();
    // The job stays STARTING for the whole test: at 1000x, the default 5 s of STARTING passed
    // before the response was read on a loaded machine.
    config.jobs.starting_seconds = 1_000_000.0;
    config.jobs.base_duration_seconds = 1_000_000.0;
    config.quotas.max_concurrent_jobs_per_account = 1;
    config
        .knowledge_bases
        .push(knowledge_base(KB2, vec![data_source(DS, Some(PREFIX))]));
    let harness = Harness::start(config, FAST).await;
    let start_path = |kb: &str| format!("/knowledgebases/{kb}/datasources/{DS}/ingestionjobs");

    let (status, error_type, body) = raw(
        &harness,
        reqwest::Method::PUT,
        &start_path("KBNOPE0001"),
        "{}",
    )
    .await;
    assert_eq!(
        (status, error_type.as_deref()),
        (404, Some("ResourceNotFoundException"))
    );
    let keys: Vec<&String> = body.as_object().expect("object").keys().collect();
    assert_eq!(keys, ["message"]);

    let (status, _, started) = raw(&harness, reqwest::Method::PUT, &start_path(KB), "{}").await;
    assert_eq!(status, 202);
    assert_eq!(started["ingestionJob"]["status"], "STARTING");
    let started_at = started["ingestionJob"]["startedAt"]
        .as_str()
        .expect("startedAt is a date-time string");
    assert!(
        started_at.ends_with('Z') && started_at.contains('T'),
        "{started_at}"
    );

    let (status, error_type, _) = raw(&harness, reqwest::Method::PUT, &start_path(KB), "{}").await;
    assert_eq!(
        (status, error_type.as_deref()),
        (409, Some("ConflictException"))
    );
    let (status, error_type, _) = raw(&harness, reqwest::Method::PUT, &start_path(KB2), "{}").await;
    assert_eq!(
        (status, error_type.as_deref()),
        (402, Some("ServiceQuotaExceededException"))
    );

    let (status, error_type, body) = raw(
        &harness,
        reqwest::Method::POST,
        &start_path(KB),
        "{not json",
    )
    .await;
    assert_eq!(
        (status, error_type.as_deref()),
        (400, Some("ValidationException"))
    );
    assert!(body["message"]
        .as_str()
        .unwrap_or_default()
        .contains("Invalid request body"));

    let (status, error_type, _) = raw(
        &harness,
        reqwest::Method::PUT,
        &start_path(KB),
        r#"{"clientToken":"short"}"#,
    )
    .await;
    assert_eq!(
        (status, error_type.as_deref()),
        (400, Some("ValidationException"))
    );

    let (status, error_type, _) = raw(&harness, reqwest::Method::GET, "/agents", "").await;
    assert_eq!(
        (status, error_type.as_deref()),
        (404, Some("UnknownOperationException"))
    );
    let (status, error_type, _) = raw(&harness, reqwest::Method::DELETE, &start_path(KB), "").await;
    assert_eq!(
        (status, error_type.as_deref()),
        (404, Some("UnknownOperationException"))
    );

    // botocore spells some paths with a trailing slash; the Rust SDK does not.
    let (status, error_type, listed) = raw(
        &harness,
        reqwest::Method::POST,
        &format!("{}/", start_path(KB)),
        "{}",
    )
    .await;
    assert_eq!((status, error_type), (200, None));
    assert_eq!(
        listed["ingestionJobSummaries"].as_array().map(Vec::len),
        Some(1)
    );

    harness
        .control_post("faults/throttle-start-ingestion-job", json!({"count": 1}))
        .await;
    let (status, error_type, _) = raw(&harness, reqwest::Method::PUT, &start_path(KB), "{}").await;
    assert_eq!(
        (status, error_type.as_deref()),
        (429, Some("ThrottlingException"))
    );
}

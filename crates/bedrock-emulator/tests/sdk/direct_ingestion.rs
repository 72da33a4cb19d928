//! IngestKnowledgeBaseDocuments and DeleteKnowledgeBaseDocuments modelled as Bedrock does: each
//! document's asynchronous lifecycle, its outcome and metadata, validation, clientToken replays,
//! throttling, the conflict with a running job, and what the inspection document shows of it.
//!
//! Mid-lifecycle statuses are read on a manual clock, so nothing races the wall clock.

use std::sync::Arc;

use aws_sdk_bedrockagent::config::http::HttpResponse;
use aws_sdk_bedrockagent::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_bedrockagent::primitives::DateTime as SdkDateTime;
use aws_sdk_bedrockagent::types::{
    ContentDataSourceType, CustomContent, CustomDocumentIdentifier, CustomS3Location,
    CustomSourceType, DocumentContent, DocumentIdentifier, DocumentMetadata, DocumentStatus,
    IngestionJobStatus, KnowledgeBaseDocument, KnowledgeBaseDocumentDetail, MetadataAttribute,
    MetadataAttributeValue, MetadataSourceType, MetadataValueType, S3Content, S3Location,
};
use bedrock_emulator::{Clock, EmulatorConfig, ManualClock};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use crate::harness::{base_config, manual_clock, statistics, Harness, BUCKET, DS, KB};

/// Bedrock time runs 10x faster: a document takes 10 Bedrock seconds (1 s real) to index, 2 of
/// them (200 ms real) STARTING; a deletion 5 (500 ms real), 1 of them (100 ms real) DELETING.
const SCALE: f64 = 10.0;

fn config() -> EmulatorConfig {
    let mut config = base_config();
    config.documents.direct_ingest_seconds = 10.0;
    config.documents.direct_ingest_starting_seconds = 2.0;
    config.documents.direct_delete_seconds = 5.0;
    config.documents.direct_delete_deleting_seconds = 1.0;
    config
}

async fn start(config: EmulatorConfig) -> (Harness, Arc<ManualClock>) {
    let clock = manual_clock();
    let harness = Harness::start_with_clock(config, SCALE, clock.clone()).await;
    (harness, clock)
}

fn now(clock: &ManualClock) -> DateTime<Utc> {
    clock.now()
}

fn sdk_time(at: DateTime<Utc>) -> SdkDateTime {
    SdkDateTime::from_millis(at.timestamp_millis())
}

fn uri(key: &str) -> String {
    format!("s3://{BUCKET}/{key}")
}

fn identifier(key: &str) -> DocumentIdentifier {
    DocumentIdentifier::builder()
        .data_source_type(ContentDataSourceType::S3)
        .s3(S3Location::builder()
            .uri(uri(key))
            .build()
            .expect("location"))
        .build()
        .expect("identifier")
}

fn document_at(full_uri: &str, metadata: Option<DocumentMetadata>) -> KnowledgeBaseDocument {
    KnowledgeBaseDocument::builder()
        .content(
            DocumentContent::builder()
                .data_source_type(ContentDataSourceType::S3)
                .s3(S3Content::builder()
                    .s3_location(
                        S3Location::builder()
                            .uri(full_uri)
                            .build()
                            .expect("location"),
                    )
                    .build())
                .build()
                .expect("content"),
        )
        .set_metadata(metadata)
        .build()
}

fn document(key: &str) -> KnowledgeBaseDocument {
    document_at(&uri(key), None)
}

fn s3_metadata(key: &str) -> DocumentMetadata {
    DocumentMetadata::builder()
        .r#type(MetadataSourceType::S3Location)
        .s3_location(
            CustomS3Location::builder()
                .uri(uri(key))
                .build()
                .expect("location"),
        )
        .build()
        .expect("metadata")
}

fn inline_metadata() -> DocumentMetadata {
    DocumentMetadata::builder()
        .r#type(MetadataSourceType::InLineAttribute)
        .inline_attributes(
            MetadataAttribute::builder()
                .key("team")
                .value(
                    MetadataAttributeValue::builder()
                        .r#type(MetadataValueType::String)
                        .string_value("search")
                        .build()
                        .expect("value"),
                )
                .build()
                .expect("attribute"),
        )
        .build()
        .expect("metadata")
}

async fn ingest(
    harness: &Harness,
    documents: Vec<KnowledgeBaseDocument>,
    client_token: Option<&str>,
) -> Vec<KnowledgeBaseDocumentDetail> {
    harness
        .client
        .ingest_knowledge_base_documents()
        .knowledge_base_id(KB)
        .data_source_id(DS)
        .set_documents(Some(documents))
        .set_client_token(client_token.map(str::to_string))
        .send()
        .await
        .expect("ingest")
        .document_details()
        .to_vec()
}

async fn delete(harness: &Harness, keys: &[&str]) -> Vec<KnowledgeBaseDocumentDetail> {
    harness
        .client
        .delete_knowledge_base_documents()
        .knowledge_base_id(KB)
        .data_source_id(DS)
        .set_document_identifiers(Some(keys.iter().map(|key| identifier(key)).collect()))
        .send()
        .await
        .expect("delete")
        .document_details()
        .to_vec()
}

async fn details(harness: &Harness, keys: &[&str]) -> Vec<KnowledgeBaseDocumentDetail> {
    harness
        .client
        .get_knowledge_base_documents()
        .knowledge_base_id(KB)
        .data_source_id(DS)
        .set_document_identifiers(Some(keys.iter().map(|key| identifier(key)).collect()))
        .send()
        .await
        .expect("get documents")
        .document_details()
        .to_vec()
}

async fn status(harness: &Harness, key: &str) -> (DocumentStatus, Option<SdkDateTime>) {
    let detail = details(harness, &[key]).await.remove(0);
    (detail.status, detail.updated_at)
}

/// The inspection entry of this test's data source.
async fn data_source_state(harness: &Harness) -> Value {
    harness.inspect().await["knowledge_bases"][0]["data_sources"][0].clone()
}

fn indexed(data_source: &Value, key: &str) -> Value {
    data_source["documents"]
        .as_array()
        .expect("documents")
        .iter()
        .find(|document| document["key"] == key)
        .cloned()
        .unwrap_or(Value::Null)
}

const TOKEN: &str = "3f1c2b4a-5d6e-4f70-8a9b-0c1d2e3f4a5b";

#[tokio::test]
async fn an_ingested_document_goes_starting_in_progress_indexed_on_the_scaled_clock() {
    let (harness, clock) = start(config()).await;
    harness.put("docs/a.txt", "e1", 10);
    let accepted_at = now(&clock);

    let answer = ingest(&harness, vec![document("docs/a.txt")], None).await;
    assert_eq!(answer[0].status(), &DocumentStatus::Starting);
    assert_eq!(answer[0].updated_at(), Some(&sdk_time(accepted_at)));
    assert_eq!(
        status(&harness, "docs/a.txt").await,
        (DocumentStatus::Starting, Some(sdk_time(accepted_at)))
    );
    let pending = data_source_state(&harness).await;
    assert_eq!(pending["pending_documents"][0]["key"], "docs/a.txt");
    assert_eq!(pending["pending_documents"][0]["operation"], "INGEST");
    assert_eq!(pending["pending_documents"][0]["planned_status"], "INDEXED");
    assert_eq!(
        indexed(&pending, "docs/a.txt"),
        Value::Null,
        "not indexed yet"
    );

    clock.advance(Duration::milliseconds(199));
    assert_eq!(
        status(&harness, "docs/a.txt").await.0,
        DocumentStatus::Starting
    );
    clock.advance(Duration::milliseconds(1));
    let in_progress_at = accepted_at + Duration::milliseconds(200);
    assert_eq!(
        status(&harness, "docs/a.txt").await,
        (DocumentStatus::InProgress, Some(sdk_time(in_progress_at)))
    );
    let listed = harness
        .client
        .list_knowledge_base_documents()
        .knowledge_base_id(KB)
        .data_source_id(DS)
        .send()
        .await
        .expect("list");
    assert_eq!(
        listed.document_details()[0].status(),
        &DocumentStatus::InProgress
    );

    clock.advance(Duration::milliseconds(799));
    assert_eq!(
        status(&harness, "docs/a.txt").await.0,
        DocumentStatus::InProgress
    );
    clock.advance(Duration::milliseconds(1));
    let indexed_at = accepted_at + Duration::seconds(1);
    assert_eq!(
        status(&harness, "docs/a.txt").await,
        (DocumentStatus::Indexed, Some(sdk_time(indexed_at)))
    );
    let state = data_source_state(&harness).await;
    let document = indexed(&state, "docs/a.txt");
    assert_eq!(document["origin"], "direct");
    assert_eq!(document["status"], "INDEXED");
    assert_eq!(document["etag"], "e1");
    assert_eq!(document["metadata"], Value::Null);
    assert_eq!(state["pending_documents"], json!([]));
}

#[tokio::test]
async fn documents_that_cannot_be_indexed_end_failed_or_ignored_with_a_reason() {
    let mut config = config();
    config.documents.max_document_bytes = 100;
    let (harness, clock) = start(config).await;
    harness.put("docs/tool.exe", "e", 10);
    harness.put("docs/big.pdf", "e", 101);
    harness.put("docs/bad-1.txt", "e", 10);
    harness.put("docs/a.txt.metadata.json", "m", 10);
    let (code, _) = harness
        .control_post(
            "faults/fail-documents",
            json!({"pattern": "bad-", "reason": "Parsing failed: corrupt file"}),
        )
        .await;
    assert_eq!(code, 200);
    let keys = [
        "docs/missing.txt",
        "docs/tool.exe",
        "docs/big.pdf",
        "docs/bad-1.txt",
        "docs/a.txt.metadata.json",
    ];
    let answer = ingest(
        &harness,
        keys.iter().map(|key| document(key)).collect(),
        None,
    )
    .await;
    assert!(answer
        .iter()
        .all(|detail| detail.status() == &DocumentStatus::Starting));

    clock.advance(Duration::seconds(1));
    let ended = details(&harness, &keys).await;
    let outcome: Vec<(DocumentStatus, String)> = ended
        .iter()
        .map(|detail| {
            (
                detail.status().clone(),
                detail.status_reason().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(outcome[0].0, DocumentStatus::Failed);
    assert!(
        outcome[0].1.contains("s3://docs-bucket/docs/missing.txt"),
        "{}",
        outcome[0].1
    );
    assert_eq!(outcome[1].0, DocumentStatus::Ignored);
    assert!(
        outcome[1].1.contains("Unsupported file type"),
        "{}",
        outcome[1].1
    );
    assert_eq!(outcome[2].0, DocumentStatus::Failed);
    assert!(outcome[2].1.contains("exceeds"), "{}", outcome[2].1);
    assert_eq!(
        outcome[3],
        (
            DocumentStatus::Failed,
            "Parsing failed: corrupt file".to_string()
        )
    );
    assert_eq!(outcome[4].0, DocumentStatus::Ignored);
    assert!(outcome[4].1.contains("metadata file"), "{}", outcome[4].1);
}

#[tokio::test]
async fn metadata_is_attached_and_a_later_job_sees_the_documents_and_sidecar_unchanged() {
    let (harness, clock) = start(config()).await;
    harness.put("docs/a.txt", "a1", 10);
    harness.put("docs/a.txt.metadata.json", "m1", 10);
    harness.put("docs/b.txt", "b1", 10);
    let documents = vec![
        document_at(
            &uri("docs/a.txt"),
            Some(s3_metadata("docs/a.txt.metadata.json")),
        ),
        document_at(&uri("docs/b.txt"), Some(inline_metadata())),
    ];
    ingest(&harness, documents, None).await;
    clock.advance(Duration::seconds(1));

    let state = data_source_state(&harness).await;
    assert_eq!(
        indexed(&state, "docs/a.txt")["metadata"],
        json!({"type": "S3_LOCATION", "uri": "s3://docs-bucket/docs/a.txt.metadata.json", "etag": "m1"})
    );
    assert_eq!(
        indexed(&state, "docs/b.txt")["metadata"],
        json!({"type": "IN_LINE_ATTRIBUTE", "attributes": [
            {"key": "team", "value": {"type": "STRING", "stringValue": "search"}}]})
    );
    assert_eq!(
        state["metadata_documents"],
        json!({"docs/a.txt.metadata.json": "m1"})
    );

    let job = harness.start_job(KB, DS).await;
    clock.advance(Duration::seconds(100));
    let job = harness.get_job(KB, DS, job.ingestion_job_id()).await;
    assert_eq!(
        statistics(&job),
        (2, 1, 0, 0, 0, 0, 0),
        "both documents and the sidecar were already applied"
    );
    let state = data_source_state(&harness).await;
    assert_eq!(
        indexed(&state, "docs/a.txt")["origin"],
        "direct",
        "left alone by the job"
    );
}

#[tokio::test]
async fn missing_metadata_fails_a_new_document_but_only_the_metadata_update_of_an_indexed_one() {
    let (harness, clock) = start(config()).await;
    harness.put("docs/a.txt", "a1", 10);
    harness.put("docs/c.txt", "c1", 10);
    ingest(&harness, vec![document("docs/a.txt")], None).await;
    clock.advance(Duration::seconds(1));
    assert_eq!(
        status(&harness, "docs/a.txt").await.0,
        DocumentStatus::Indexed
    );

    let documents = vec![
        document_at(&uri("docs/a.txt"), Some(s3_metadata("meta/a.json"))),
        document_at(&uri("docs/c.txt"), Some(s3_metadata("meta/c.json"))),
    ];
    ingest(&harness, documents, None).await;
    clock.advance(Duration::seconds(1));
    let ended = details(&harness, &["docs/a.txt", "docs/c.txt"]).await;
    assert_eq!(ended[0].status(), &DocumentStatus::MetadataUpdateFailed);
    assert!(ended[0]
        .status_reason()
        .unwrap_or_default()
        .contains("s3://docs-bucket/meta/a.json"));
    assert_eq!(ended[1].status(), &DocumentStatus::Failed);
    assert!(ended[1]
        .status_reason()
        .unwrap_or_default()
        .contains("s3://docs-bucket/meta/c.json"));
}

#[tokio::test]
async fn a_deleted_document_goes_deleting_delete_in_progress_then_not_found() {
    let (harness, clock) = start(config()).await;
    harness.put("docs/a.txt", "a1", 10);
    ingest(&harness, vec![document("docs/a.txt")], None).await;
    clock.advance(Duration::seconds(1));
    let deleted_at = now(&clock);

    let answer = delete(&harness, &["docs/a.txt"]).await;
    assert_eq!(answer[0].status(), &DocumentStatus::Deleting);
    assert_eq!(answer[0].updated_at(), Some(&sdk_time(deleted_at)));
    assert_eq!(
        status(&harness, "docs/a.txt").await.0,
        DocumentStatus::Deleting
    );
    let pending = data_source_state(&harness).await["pending_documents"][0].clone();
    assert_eq!(pending["operation"], "DELETE");
    assert_eq!(pending["planned_status"], "NOT_FOUND");

    clock.advance(Duration::milliseconds(100));
    assert_eq!(
        status(&harness, "docs/a.txt").await,
        (
            DocumentStatus::DeleteInProgress,
            Some(sdk_time(deleted_at + Duration::milliseconds(100)))
        )
    );
    clock.advance(Duration::milliseconds(399));
    assert_eq!(
        status(&harness, "docs/a.txt").await.0,
        DocumentStatus::DeleteInProgress
    );
    clock.advance(Duration::milliseconds(1));
    assert_eq!(
        status(&harness, "docs/a.txt").await,
        (DocumentStatus::NotFound, None)
    );
    let state = data_source_state(&harness).await;
    assert_eq!(state["documents"], json!([]));
    assert_eq!(state["pending_documents"], json!([]));
}

/// An error as the SDK reports it: (HTTP status, error code). The document operations' model
/// has no ConflictException, so the SDK cannot type that one: its code is what callers match.
fn failure<E: ProvideErrorMetadata>(error: SdkError<E, HttpResponse>) -> (Option<u16>, String) {
    let status = error
        .raw_response()
        .map(|response| response.status().as_u16());
    (status, error.code().unwrap_or_default().to_string())
}

#[tokio::test]
async fn bad_document_writes_are_validation_errors() {
    let (harness, _clock) = start(config()).await;
    harness.put("docs/a.txt", "a1", 10);
    let validation = (Some(400), "ValidationException".to_string());
    let ingest_error = |documents: Vec<KnowledgeBaseDocument>, token: Option<&str>| {
        let request = harness
            .client
            .ingest_knowledge_base_documents()
            .knowledge_base_id(KB)
            .data_source_id(DS)
            .set_documents(Some(documents))
            .set_client_token(token.map(str::to_string));
        async move { failure(request.send().await.expect_err("refused")) }
    };

    assert_eq!(
        ingest_error(Vec::new(), None).await,
        validation,
        "no document"
    );
    let eleven = (0..11)
        .map(|index| document(&format!("docs/{index}.txt")))
        .collect();
    assert_eq!(ingest_error(eleven, None).await, validation, "11 documents");
    assert_eq!(
        ingest_error(vec![document("other/a.txt")], None).await,
        validation,
        "outside the inclusion prefix"
    );
    assert_eq!(
        ingest_error(
            vec![document_at("s3://another-bucket/docs/a.txt", None)],
            None
        )
        .await,
        validation,
        "another bucket"
    );
    assert_eq!(
        ingest_error(vec![document("docs/a.txt"), document("docs/a.txt")], None).await,
        validation,
        "the same document twice"
    );
    assert_eq!(
        ingest_error(vec![document("docs/a.txt")], Some("short")).await,
        validation,
        "clientToken under 33 characters"
    );
    let custom = KnowledgeBaseDocument::builder()
        .content(
            DocumentContent::builder()
                .data_source_type(ContentDataSourceType::Custom)
                .custom(
                    CustomContent::builder()
                        .custom_document_identifier(
                            CustomDocumentIdentifier::builder()
                                .id("doc-1")
                                .build()
                                .expect("id"),
                        )
                        .source_type(CustomSourceType::S3Location)
                        .s3_location(
                            CustomS3Location::builder()
                                .uri(uri("docs/a.txt"))
                                .build()
                                .expect("location"),
                        )
                        .build()
                        .expect("custom"),
                )
                .build()
                .expect("content"),
        )
        .build();
    assert_eq!(
        ingest_error(vec![custom], None).await,
        validation,
        "CUSTOM content on an S3 data source"
    );
    let bad_metadata_uri = DocumentMetadata::builder()
        .r#type(MetadataSourceType::S3Location)
        .s3_location(
            CustomS3Location::builder()
                .uri("s3://UPPER/a.json")
                .build()
                .expect("location"),
        )
        .build()
        .expect("metadata");
    assert_eq!(
        ingest_error(
            vec![document_at(&uri("docs/a.txt"), Some(bad_metadata_uri))],
            None
        )
        .await,
        validation,
        "metadata URI outside the S3ObjectUri pattern"
    );
    let mismatched_value = DocumentMetadata::builder()
        .r#type(MetadataSourceType::InLineAttribute)
        .inline_attributes(
            MetadataAttribute::builder()
                .key("n")
                .value(
                    MetadataAttributeValue::builder()
                        .r#type(MetadataValueType::Number)
                        .string_value("1")
                        .build()
                        .expect("value"),
                )
                .build()
                .expect("attribute"),
        )
        .build()
        .expect("metadata");
    assert_eq!(
        ingest_error(
            vec![document_at(&uri("docs/a.txt"), Some(mismatched_value))],
            None
        )
        .await,
        validation,
        "a NUMBER attribute carrying a stringValue"
    );

    let delete_error = |keys: Vec<DocumentIdentifier>| {
        let request = harness
            .client
            .delete_knowledge_base_documents()
            .knowledge_base_id(KB)
            .data_source_id(DS)
            .set_document_identifiers(Some(keys));
        async move { failure(request.send().await.expect_err("refused")) }
    };
    assert_eq!(
        delete_error(vec![identifier("other/a.txt")]).await,
        validation,
        "delete outside the scope"
    );
    assert_eq!(
        delete_error(vec![identifier("docs/a.txt"), identifier("docs/a.txt")]).await,
        validation,
        "delete the same document twice"
    );
    assert_eq!(delete_error(Vec::new()).await, validation, "delete nothing");

    let state = harness.inspect().await;
    assert_eq!(
        state["errors_by_operation"]["IngestKnowledgeBaseDocuments"]["ValidationException"],
        9
    );
    assert_eq!(
        state["knowledge_bases"][0]["data_sources"][0]["document_calls"]
            ["DeleteKnowledgeBaseDocuments"]["errors"]["ValidationException"],
        3
    );
    assert_eq!(
        state["knowledge_bases"][0]["data_sources"][0]["pending_documents"],
        json!([]),
        "nothing was started"
    );
}

#[tokio::test]
async fn a_retry_with_the_same_client_token_gets_the_first_answer_and_restarts_nothing() {
    let (harness, clock) = start(config()).await;
    harness.put("docs/a.txt", "a1", 10);
    let first = ingest(&harness, vec![document("docs/a.txt")], Some(TOKEN)).await;
    let scheduled_end =
        data_source_state(&harness).await["pending_documents"][0]["scheduled_end_at"].clone();
    clock.advance(Duration::milliseconds(500));

    let retry = ingest(&harness, vec![document("docs/a.txt")], Some(TOKEN)).await;
    assert_eq!(
        retry, first,
        "the same answer, STARTING as of the first call"
    );
    assert_eq!(
        status(&harness, "docs/a.txt").await.0,
        DocumentStatus::InProgress
    );
    let state = data_source_state(&harness).await;
    assert_eq!(
        state["pending_documents"][0]["scheduled_end_at"],
        scheduled_end
    );
    assert_eq!(
        state["document_calls"]["IngestKnowledgeBaseDocuments"]["replayed"],
        1
    );

    let other_body = harness
        .client
        .ingest_knowledge_base_documents()
        .knowledge_base_id(KB)
        .data_source_id(DS)
        .documents(document("docs/other.txt"))
        .client_token(TOKEN)
        .send()
        .await
        .expect_err("the token belongs to another request");
    assert_eq!(
        failure(other_body),
        (Some(400), "ValidationException".to_string())
    );

    clock.advance(Duration::milliseconds(500));
    assert_eq!(
        status(&harness, "docs/a.txt").await.0,
        DocumentStatus::Indexed
    );
    let deleted = harness
        .client
        .delete_knowledge_base_documents()
        .knowledge_base_id(KB)
        .data_source_id(DS)
        .document_identifiers(identifier("docs/a.txt"))
        .client_token(TOKEN)
        .send()
        .await
        .expect("tokens are per operation: a delete may reuse an ingest's token");
    clock.advance(Duration::milliseconds(300));
    let retried = harness
        .client
        .delete_knowledge_base_documents()
        .knowledge_base_id(KB)
        .data_source_id(DS)
        .document_identifiers(identifier("docs/a.txt"))
        .client_token(TOKEN)
        .send()
        .await
        .expect("delete retry");
    assert_eq!(retried.document_details(), deleted.document_details());
    clock.advance(Duration::milliseconds(200));
    assert_eq!(
        status(&harness, "docs/a.txt").await.0,
        DocumentStatus::NotFound,
        "the retry did not push the deletion back"
    );
}

#[tokio::test]
async fn document_operations_have_time_scaled_token_buckets_and_a_throttle_fault() {
    let mut config = config();
    config.quotas.document_write_rate_per_second = 0.1;
    config.quotas.document_write_burst = 2;
    config.quotas.document_read_rate_per_second = 0.1;
    config.quotas.document_read_burst = 1;
    let (harness, clock) = start(config).await;
    harness.put("docs/a.txt", "a1", 10);
    let throttled = (Some(429), "ThrottlingException".to_string());
    let try_ingest = || {
        let request = harness
            .client
            .ingest_knowledge_base_documents()
            .knowledge_base_id(KB)
            .data_source_id(DS)
            .documents(document("docs/a.txt"));
        async move { request.send().await.map(|_| ()).map_err(failure) }
    };
    let try_get = || {
        let request = harness
            .client
            .get_knowledge_base_documents()
            .knowledge_base_id(KB)
            .data_source_id(DS)
            .document_identifiers(identifier("docs/a.txt"));
        async move { request.send().await.map(|_| ()).map_err(failure) }
    };

    assert_eq!(try_ingest().await, Ok(()));
    assert_eq!(try_ingest().await, Ok(()));
    assert_eq!(
        try_ingest().await,
        Err(throttled.clone()),
        "burst of 2 used up"
    );
    delete(&harness, &["docs/a.txt"]).await;
    assert_eq!(try_get().await, Ok(()));
    assert_eq!(
        try_get().await,
        Err(throttled.clone()),
        "burst of 1 used up"
    );
    // 0.1 request per Bedrock second x 10 = one token per real second.
    clock.advance(Duration::milliseconds(999));
    assert_eq!(try_ingest().await, Err(throttled.clone()));
    clock.advance(Duration::milliseconds(1));
    assert_eq!(try_ingest().await, Ok(()));
    assert_eq!(try_get().await, Ok(()));

    clock.advance(Duration::seconds(10));
    let (code, faults) = harness
        .control_post("faults/throttle-document-operations", json!({"count": 2}))
        .await;
    assert_eq!(code, 200);
    assert_eq!(faults["throttle_document_operations"], 2);
    assert_eq!(try_get().await, Err(throttled.clone()));
    assert_eq!(try_ingest().await, Err(throttled));
    assert_eq!(try_get().await, Ok(()), "the fault is used up");
    let state = harness.inspect().await;
    assert_eq!(state["faults"]["throttle_document_operations"], 0);
    assert_eq!(state["errors"]["ThrottlingException"], 5);
}

#[tokio::test]
async fn a_document_write_while_a_job_runs_is_a_conflict_counted_in_inspection() {
    let (harness, clock) = start(config()).await;
    harness.put("docs/a.txt", "a1", 10);
    let job = harness.start_job(KB, DS).await;

    let ingest_error = harness
        .client
        .ingest_knowledge_base_documents()
        .knowledge_base_id(KB)
        .data_source_id(DS)
        .documents(document("docs/a.txt"))
        .send()
        .await
        .expect_err("a job is syncing the data source");
    let message = ingest_error
        .as_service_error()
        .and_then(ProvideErrorMetadata::message)
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        failure(ingest_error),
        (Some(409), "ConflictException".to_string())
    );
    assert!(message.contains(job.ingestion_job_id()), "{message}");
    let delete_error = harness
        .client
        .delete_knowledge_base_documents()
        .knowledge_base_id(KB)
        .data_source_id(DS)
        .document_identifiers(identifier("docs/a.txt"))
        .send()
        .await
        .expect_err("a job is syncing the data source");
    assert_eq!(
        failure(delete_error),
        (Some(409), "ConflictException".to_string())
    );
    status(&harness, "docs/a.txt").await;

    let state = harness.inspect().await;
    assert_eq!(state["errors"]["ConflictException"], 2);
    let calls = &state["knowledge_bases"][0]["data_sources"][0]["document_calls"];
    assert_eq!(
        calls["IngestKnowledgeBaseDocuments"],
        json!({"calls": 1, "succeeded": 0, "replayed": 0, "documents": 0,
               "errors": {"ConflictException": 1}})
    );
    assert_eq!(
        calls["DeleteKnowledgeBaseDocuments"]["errors"]["ConflictException"],
        1
    );
    assert_eq!(
        calls["GetKnowledgeBaseDocuments"]["succeeded"], 1,
        "reads are fine"
    );

    clock.advance(Duration::seconds(100));
    let job = harness.get_job(KB, DS, job.ingestion_job_id()).await;
    assert_eq!(job.status(), &IngestionJobStatus::Complete);
    let answer = ingest(&harness, vec![document("docs/a.txt")], None).await;
    assert_eq!(answer[0].status(), &DocumentStatus::Starting, "free again");
}

#[tokio::test]
async fn inspection_tells_job_documents_from_direct_ones_and_counts_calls() {
    let (harness, clock) = start(config()).await;
    harness.put("docs/job.txt", "j1", 10);
    let job = harness.start_job(KB, DS).await;
    clock.advance(Duration::seconds(100));
    harness.get_job(KB, DS, job.ingestion_job_id()).await;
    harness.put("docs/direct.txt", "d1", 10);
    ingest(
        &harness,
        vec![document("docs/direct.txt"), document("docs/missing.txt")],
        Some(TOKEN),
    )
    .await;
    ingest(
        &harness,
        vec![document("docs/direct.txt"), document("docs/missing.txt")],
        Some(TOKEN),
    )
    .await;
    clock.advance(Duration::seconds(1));
    delete(&harness, &["docs/job.txt"]).await;

    let state = data_source_state(&harness).await;
    assert_eq!(indexed(&state, "docs/job.txt")["origin"], "job");
    assert_eq!(indexed(&state, "docs/direct.txt")["origin"], "direct");
    assert_eq!(indexed(&state, "docs/missing.txt")["status"], "FAILED");
    assert_eq!(
        state["document_calls"]["IngestKnowledgeBaseDocuments"],
        json!({"calls": 2, "succeeded": 2, "replayed": 1, "documents": 4, "errors": {}})
    );
    assert_eq!(
        state["document_calls"]["DeleteKnowledgeBaseDocuments"]["calls"],
        1
    );
    let pending = &state["pending_documents"][0];
    assert_eq!(pending["key"], "docs/job.txt");
    assert_eq!(pending["status"], "DELETING");
    assert!(pending["accepted_at"].is_string());
    assert!(pending["scheduled_in_progress_at"].is_string());
    assert!(pending["scheduled_end_at"].is_string());
}

#[tokio::test]
async fn a_job_started_while_direct_operations_run_is_allowed_but_counted() {
    let (harness, clock) = start(config()).await;
    harness.put("docs/a.txt", "a1", 10);
    ingest(&harness, vec![document("docs/a.txt")], None).await;
    let job = harness.start_job(KB, DS).await;
    assert_eq!(
        data_source_state(&harness).await["job_starts_during_direct_operations"],
        1
    );
    clock.advance(Duration::seconds(100));
    let job = harness.get_job(KB, DS, job.ingestion_job_id()).await;
    assert_eq!(job.status(), &IngestionJobStatus::Complete);
    assert_eq!(
        status(&harness, "docs/a.txt").await.0,
        DocumentStatus::Indexed,
        "the direct ingestion ended first, the job applied its snapshot after it"
    );
    harness.start_job(KB, DS).await;
    assert_eq!(
        data_source_state(&harness).await["job_starts_during_direct_operations"],
        1,
        "nothing direct was running this time"
    );
}

#[tokio::test]
async fn a_data_source_takes_direct_calls_only_after_an_ingestion_job_completed() {
    let mut config = config();
    config.documents.require_completed_job = true;
    let (harness, clock) = start(config).await;
    harness.put("docs/a.txt", "a1", 10);
    let refused = harness
        .client
        .ingest_knowledge_base_documents()
        .knowledge_base_id(KB)
        .data_source_id(DS)
        .documents(document("docs/a.txt"))
        .send()
        .await
        .expect_err("the first sync of an S3 data source must be a job");
    assert_eq!(refused.code(), Some("ValidationException"));
    assert!(
        refused
            .message()
            .unwrap_or_default()
            .contains("has not been synced yet"),
        "{refused:?}"
    );
    let refused = harness
        .client
        .delete_knowledge_base_documents()
        .knowledge_base_id(KB)
        .data_source_id(DS)
        .document_identifiers(identifier("docs/a.txt"))
        .send()
        .await
        .expect_err("deletes too");
    assert_eq!(refused.code(), Some("ValidationException"));

    let job = harness.start_job(KB, DS).await;
    clock.advance(Duration::seconds(100));
    let job = harness.get_job(KB, DS, job.ingestion_job_id()).await;
    assert_eq!(job.status(), &IngestionJobStatus::Complete);
    let accepted = ingest(&harness, vec![document("docs/a.txt")], None).await;
    assert_eq!(accepted.len(), 1);
}

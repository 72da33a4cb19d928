//! Per-document status: GetKnowledgeBaseDocuments, ListKnowledgeBaseDocuments, and the direct
//! Ingest/DeleteKnowledgeBaseDocuments operations.

use std::time::Duration;

use aws_sdk_bedrockagent::types::{
    ContentDataSourceType, CustomDocumentIdentifier, DocumentContent, DocumentIdentifier,
    DocumentStatus, KnowledgeBaseDocument, S3Content, S3Location,
};

use crate::harness::{base_config, Harness, BUCKET, DS, FAST, JOB_TIMEOUT, KB};

fn location(key: &str) -> S3Location {
    S3Location::builder()
        .uri(format!("s3://{BUCKET}/{key}"))
        .build()
        .expect("location")
}

fn s3_document(key: &str) -> DocumentIdentifier {
    DocumentIdentifier::builder()
        .data_source_type(ContentDataSourceType::S3)
        .s3(location(key))
        .build()
        .expect("identifier")
}

async fn document_status(harness: &Harness, key: &str) -> DocumentStatus {
    harness
        .client
        .get_knowledge_base_documents()
        .knowledge_base_id(KB)
        .data_source_id(DS)
        .document_identifiers(s3_document(key))
        .send()
        .await
        .expect("get documents")
        .document_details()[0]
        .status()
        .clone()
}

#[tokio::test]
async fn list_knowledge_base_documents_pages_through_indexed_and_failed_documents() {
    let harness = Harness::start(base_config(), FAST).await;
    for index in 0..5 {
        harness.put(&format!("docs/{index}.txt"), "1", 1);
    }
    harness.put("docs/x.zip", "1", 1);
    let job = harness.start_job(KB, DS).await;
    harness
        .wait_until_done(KB, DS, job.ingestion_job_id(), JOB_TIMEOUT)
        .await;

    let mut seen = Vec::new();
    let mut next_token = None;
    loop {
        let page = harness
            .client
            .list_knowledge_base_documents()
            .knowledge_base_id(KB)
            .data_source_id(DS)
            .max_results(4)
            .set_next_token(next_token)
            .send()
            .await
            .expect("list documents");
        for detail in page.document_details() {
            let uri = detail
                .identifier()
                .and_then(|identifier| identifier.s3())
                .map(|s3| s3.uri().to_string());
            seen.push((uri.unwrap_or_default(), detail.status().clone()));
            assert!(detail.updated_at().is_some());
        }
        next_token = page.next_token().map(str::to_string);
        if next_token.is_none() {
            break;
        }
    }
    assert_eq!(seen.len(), 6);
    assert_eq!(
        seen[0],
        (
            "s3://docs-bucket/docs/0.txt".to_string(),
            DocumentStatus::Indexed
        )
    );
    assert_eq!(
        seen[5],
        (
            "s3://docs-bucket/docs/x.zip".to_string(),
            DocumentStatus::Failed
        )
    );
}

#[tokio::test]
async fn document_status_flips_when_the_job_completes() {
    let mut config = base_config();
    config.jobs.starting_seconds = 0.0;
    // 1.5 s of real time: the in-progress statuses are read well within it.
    config.jobs.base_duration_seconds = 1500.0;
    let harness = Harness::start(config, FAST).await;
    harness.put("docs/old.txt", "1", 1);
    let first = harness.start_job(KB, DS).await;
    harness
        .wait_until_done(KB, DS, first.ingestion_job_id(), JOB_TIMEOUT)
        .await;
    assert_eq!(
        document_status(&harness, "docs/old.txt").await,
        DocumentStatus::Indexed
    );

    harness.delete("docs/old.txt");
    harness.put("docs/new.txt", "1", 1);
    let second = harness.start_job(KB, DS).await;
    // The job reads its S3 snapshot after StartIngestionJob answers: wait for that state, not
    // for a fixed time (the job itself runs 1.5 s).
    let mut old = document_status(&harness, "docs/old.txt").await;
    for _ in 0..100 {
        if old != DocumentStatus::Indexed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        old = document_status(&harness, "docs/old.txt").await;
    }
    assert_eq!(old, DocumentStatus::Deleting);
    assert_eq!(
        document_status(&harness, "docs/new.txt").await,
        DocumentStatus::InProgress
    );
    harness
        .wait_until_done(KB, DS, second.ingestion_job_id(), JOB_TIMEOUT)
        .await;
    assert_eq!(
        document_status(&harness, "docs/old.txt").await,
        DocumentStatus::NotFound
    );
    assert_eq!(
        document_status(&harness, "docs/new.txt").await,
        DocumentStatus::Indexed
    );
}

#[tokio::test]
async fn bad_document_identifiers_are_validation_errors() {
    let harness = Harness::start(base_config(), FAST).await;
    let custom = DocumentIdentifier::builder()
        .data_source_type(ContentDataSourceType::Custom)
        .custom(
            CustomDocumentIdentifier::builder()
                .id("doc-1")
                .build()
                .expect("custom id"),
        )
        .build()
        .expect("identifier");
    let error = harness
        .client
        .get_knowledge_base_documents()
        .knowledge_base_id(KB)
        .data_source_id(DS)
        .document_identifiers(custom)
        .send()
        .await
        .expect_err("custom identifier on an S3 data source")
        .into_service_error();
    assert!(error.is_validation_exception(), "{error:?}");

    let bad_uri = DocumentIdentifier::builder()
        .data_source_type(ContentDataSourceType::S3)
        .s3(S3Location::builder()
            .uri("not-a-uri")
            .build()
            .expect("location"))
        .build()
        .expect("identifier");
    let error = harness
        .client
        .get_knowledge_base_documents()
        .knowledge_base_id(KB)
        .data_source_id(DS)
        .document_identifiers(bad_uri)
        .send()
        .await
        .expect_err("malformed uri")
        .into_service_error();
    assert!(error.is_validation_exception(), "{error:?}");

    let error = harness
        .client
        .get_knowledge_base_documents()
        .knowledge_base_id(KB)
        .data_source_id(DS)
        .send()
        .await
        .expect_err("no identifiers")
        .into_service_error();
    assert!(error.is_validation_exception(), "{error:?}");

    let eleven = (0..11)
        .map(|index| s3_document(&format!("docs/{index}.txt")))
        .collect();
    let error = harness
        .client
        .get_knowledge_base_documents()
        .knowledge_base_id(KB)
        .data_source_id(DS)
        .set_document_identifiers(Some(eleven))
        .send()
        .await
        .expect_err("Bedrock takes at most 10 identifiers per call")
        .into_service_error();
    assert!(error.is_validation_exception(), "{error:?}");
}

/// Polls GetKnowledgeBaseDocuments until the document has `status`.
async fn wait_for_status(harness: &Harness, key: &str, status: DocumentStatus) {
    let deadline = std::time::Instant::now() + JOB_TIMEOUT;
    loop {
        let current = document_status(harness, key).await;
        if current == status {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{key} still {current:?}, expected {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn ingested_and_deleted_documents_reach_the_index_after_their_lifecycle() {
    let harness = Harness::start(base_config(), FAST).await;
    harness.put("docs/direct.txt", "d1", 1);
    let document = KnowledgeBaseDocument::builder()
        .content(
            DocumentContent::builder()
                .data_source_type(ContentDataSourceType::S3)
                .s3(S3Content::builder()
                    .s3_location(location("docs/direct.txt"))
                    .build())
                .build()
                .expect("content"),
        )
        .build();
    let ingested = harness
        .client
        .ingest_knowledge_base_documents()
        .knowledge_base_id(KB)
        .data_source_id(DS)
        .documents(document)
        .send()
        .await
        .expect("ingest");
    assert_eq!(
        ingested.document_details()[0].status(),
        &DocumentStatus::Starting
    );
    wait_for_status(&harness, "docs/direct.txt", DocumentStatus::Indexed).await;

    let job = harness.start_job(KB, DS).await;
    let job = harness
        .wait_until_done(KB, DS, job.ingestion_job_id(), JOB_TIMEOUT)
        .await;
    let new_documents = job
        .statistics()
        .map(|statistics| statistics.number_of_new_documents_indexed());
    assert_eq!(
        new_documents,
        Some(0),
        "the job sees the ingested version as indexed"
    );

    let deleted = harness
        .client
        .delete_knowledge_base_documents()
        .knowledge_base_id(KB)
        .data_source_id(DS)
        .document_identifiers(s3_document("docs/direct.txt"))
        .send()
        .await
        .expect("delete");
    assert_eq!(
        deleted.document_details()[0].status(),
        &DocumentStatus::Deleting
    );
    wait_for_status(&harness, "docs/direct.txt", DocumentStatus::NotFound).await;
}

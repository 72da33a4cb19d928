//! Get/List/Ingest/DeleteKnowledgeBaseDocuments handlers.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::request::{json_body, path_params, respond};
use super::wire::{
    DocumentDetailWire, DocumentIdentifierWire, DocumentIdentifiersBody, IngestDocumentsBody,
    PageBody,
};
use crate::counters::Operation;
use crate::emulator::{DocumentDetail, DocumentIdentifier, Emulator};
use crate::errors::ApiError;

pub async fn get_knowledge_base_documents(
    State(emulator): State<Emulator>,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Bytes,
) -> Response {
    let result = path_params(path).and_then(|(knowledge_base_id, data_source_id)| {
        let body: DocumentIdentifiersBody = json_body(&body)?;
        let identifiers = identifiers(body.document_identifiers)?;
        let details = emulator.get_knowledge_base_documents(
            &knowledge_base_id,
            &data_source_id,
            identifiers,
        )?;
        Ok(json!({ "documentDetails": wire_details(&details) }))
    });
    respond(
        &emulator,
        Operation::GetKnowledgeBaseDocuments,
        StatusCode::OK,
        result,
    )
}

pub async fn list_knowledge_base_documents(
    State(emulator): State<Emulator>,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Bytes,
) -> Response {
    let result = path_params(path).and_then(|(knowledge_base_id, data_source_id)| {
        let page: PageBody = json_body(&body)?;
        let (details, next_token) = emulator.list_knowledge_base_documents(
            &knowledge_base_id,
            &data_source_id,
            page.max_results,
            page.next_token.as_deref(),
        )?;
        Ok(json!({ "documentDetails": wire_details(&details), "nextToken": next_token }))
    });
    respond(
        &emulator,
        Operation::ListKnowledgeBaseDocuments,
        StatusCode::OK,
        result,
    )
}

pub async fn ingest_knowledge_base_documents(
    State(emulator): State<Emulator>,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Bytes,
) -> Response {
    let result = async {
        let (knowledge_base_id, data_source_id) = path_params(path)?;
        let body: IngestDocumentsBody = json_body(&body)?;
        let identifiers = body
            .documents
            .into_iter()
            .map(|document| match (document.content.data_source_type.as_str(), document.content.s3) {
                ("S3", Some(s3)) => Ok(DocumentIdentifier::S3 { uri: s3.s3_location.uri }),
                (other, _) => Err(ApiError::Validation(format!(
                    "Only S3 document content is supported by this S3 data source, got dataSourceType {other:?}."
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let details = emulator
            .ingest_knowledge_base_documents(&knowledge_base_id, &data_source_id, identifiers)
            .await?;
        Ok(json!({ "documentDetails": wire_details(&details) }))
    }
    .await;
    respond(
        &emulator,
        Operation::IngestKnowledgeBaseDocuments,
        StatusCode::ACCEPTED,
        result,
    )
}

pub async fn delete_knowledge_base_documents(
    State(emulator): State<Emulator>,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Bytes,
) -> Response {
    let result = path_params(path).and_then(|(knowledge_base_id, data_source_id)| {
        let body: DocumentIdentifiersBody = json_body(&body)?;
        let identifiers = identifiers(body.document_identifiers)?;
        let details = emulator.delete_knowledge_base_documents(
            &knowledge_base_id,
            &data_source_id,
            identifiers,
        )?;
        Ok(json!({ "documentDetails": wire_details(&details) }))
    });
    respond(
        &emulator,
        Operation::DeleteKnowledgeBaseDocuments,
        StatusCode::ACCEPTED,
        result,
    )
}

fn identifiers(wire: Vec<DocumentIdentifierWire>) -> Result<Vec<DocumentIdentifier>, ApiError> {
    wire.into_iter()
        .map(|identifier| match (identifier.data_source_type.as_str(), identifier.s3, identifier.custom) {
            ("S3", Some(s3), _) => Ok(DocumentIdentifier::S3 { uri: s3.uri }),
            ("CUSTOM", _, Some(custom)) => Ok(DocumentIdentifier::Custom { id: custom.id }),
            (data_source_type, _, _) => Err(ApiError::Validation(format!(
                "Invalid document identifier: dataSourceType {data_source_type:?} needs a matching \"s3\" or \"custom\" member."
            ))),
        })
        .collect()
}

fn wire_details(details: &[DocumentDetail]) -> Vec<DocumentDetailWire> {
    details.iter().map(DocumentDetailWire::from).collect()
}

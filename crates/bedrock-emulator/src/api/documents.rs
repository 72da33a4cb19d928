//! Get/List/Ingest/DeleteKnowledgeBaseDocuments handlers.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::request::{json_body, path_params, respond};
use super::wire::{
    DocumentDetailWire, DocumentIdentifierWire, DocumentIdentifiersBody, DocumentMetadataBody,
    IngestDocumentsBody, KnowledgeBaseDocumentBody, PageBody,
};
use crate::counters::Operation;
use crate::document_metadata::{DocumentMetadata, RawMetadataValue};
use crate::emulator::{
    DeleteDocumentsRequest, DocumentDetail, DocumentIdentifier, Emulator, IngestDocument,
    IngestDocumentsRequest,
};
use crate::errors::ApiError;

pub async fn get_knowledge_base_documents(
    State(emulator): State<Emulator>,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Bytes,
) -> Response {
    let path = path_params(path);
    let result = path
        .clone()
        .and_then(|(knowledge_base_id, data_source_id)| {
            let body: DocumentIdentifiersBody = json_body(&body)?;
            let identifiers = identifiers(body.document_identifiers)?;
            emulator.get_knowledge_base_documents(&knowledge_base_id, &data_source_id, identifiers)
        });
    answer_details(
        &emulator,
        path,
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
    let path = path_params(path);
    let result = path
        .clone()
        .and_then(|(knowledge_base_id, data_source_id)| {
            let page: PageBody = json_body(&body)?;
            emulator.list_knowledge_base_documents(
                &knowledge_base_id,
                &data_source_id,
                page.max_results,
                page.next_token.as_deref(),
            )
        });
    if let Ok((knowledge_base_id, data_source_id)) = &path {
        let outcome = result
            .as_ref()
            .map(|(details, _)| details.len())
            .map_err(ApiError::error_type);
        emulator.record_document_call(
            knowledge_base_id,
            data_source_id,
            Operation::ListKnowledgeBaseDocuments,
            outcome,
        );
    }
    let result = result.map(|(details, next_token)| {
        json!({ "documentDetails": wire_details(&details), "nextToken": next_token })
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
    let path = path_params(path);
    let result = async {
        let (knowledge_base_id, data_source_id) = path.clone()?;
        let body: IngestDocumentsBody = json_body(&body)?;
        let request = IngestDocumentsRequest {
            client_token: body.client_token,
            documents: body
                .documents
                .into_iter()
                .map(ingest_document)
                .collect::<Result<Vec<_>, _>>()?,
        };
        emulator
            .ingest_knowledge_base_documents(&knowledge_base_id, &data_source_id, request)
            .await
    }
    .await;
    answer_details(
        &emulator,
        path,
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
    let path = path_params(path);
    let result = path
        .clone()
        .and_then(|(knowledge_base_id, data_source_id)| {
            let body: DocumentIdentifiersBody = json_body(&body)?;
            let request = DeleteDocumentsRequest {
                client_token: body.client_token,
                identifiers: identifiers(body.document_identifiers)?,
            };
            emulator.delete_knowledge_base_documents(&knowledge_base_id, &data_source_id, request)
        });
    answer_details(
        &emulator,
        path,
        Operation::DeleteKnowledgeBaseDocuments,
        StatusCode::ACCEPTED,
        result,
    )
}

/// Counts the call on its data source, then writes `{"documentDetails": [...]}` or the error.
fn answer_details(
    emulator: &Emulator,
    path: Result<(String, String), ApiError>,
    operation: Operation,
    success: StatusCode,
    result: Result<Vec<DocumentDetail>, ApiError>,
) -> Response {
    if let Ok((knowledge_base_id, data_source_id)) = &path {
        let outcome = result.as_ref().map(Vec::len).map_err(ApiError::error_type);
        emulator.record_document_call(knowledge_base_id, data_source_id, operation, outcome);
    }
    let result = result.map(|details| json!({ "documentDetails": wire_details(&details) }));
    respond(emulator, operation, success, result)
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

/// A KnowledgeBaseDocument: its content must be of a known type with its member; CUSTOM content
/// is passed on (the emulator refuses it for naming the wrong data source type).
fn ingest_document(document: KnowledgeBaseDocumentBody) -> Result<IngestDocument, ApiError> {
    let content = document.content;
    let identifier = match (
        content.data_source_type.as_str(),
        content.s3,
        content.custom,
    ) {
        ("S3", Some(s3), _) => DocumentIdentifier::S3 {
            uri: s3.s3_location.uri,
        },
        ("CUSTOM", _, custom) => DocumentIdentifier::Custom {
            id: custom
                .and_then(|custom| custom.custom_document_identifier)
                .map(|identifier| identifier.id)
                .unwrap_or_default(),
        },
        ("S3", None, _) => {
            return Err(ApiError::Validation(
                "content.s3 is required when content.dataSourceType is S3.".to_string(),
            ))
        }
        (other, _, _) => {
            return Err(ApiError::Validation(format!(
                "Value '{other}' at 'content.dataSourceType' failed to satisfy constraint: \
                 Member must satisfy enum value set: [CUSTOM, S3]"
            )))
        }
    };
    let metadata = document.metadata.map(metadata).transpose()?;
    Ok(IngestDocument {
        content: identifier,
        metadata,
    })
}

/// "Choose a `type` and include the field that corresponds to it."
fn metadata(body: DocumentMetadataBody) -> Result<DocumentMetadata, ApiError> {
    let metadata = match (
        body.metadata_type.as_str(),
        body.s3_location,
        body.inline_attributes,
    ) {
        ("S3_LOCATION", Some(location), None) => {
            DocumentMetadata::s3_location(location.uri, location.bucket_owner_account_id)
        }
        ("IN_LINE_ATTRIBUTE", None, Some(attributes)) => DocumentMetadata::in_line(
            attributes
                .into_iter()
                .map(|attribute| {
                    let value = attribute.value.map(|value| RawMetadataValue {
                        value_type: value.value_type,
                        number_value: value.number_value,
                        boolean_value: value.boolean_value,
                        string_value: value.string_value,
                        string_list_value: value.string_list_value,
                    });
                    (attribute.key, value.unwrap_or_default())
                })
                .collect(),
        ),
        ("S3_LOCATION", _, _) => {
            Err("metadata of type S3_LOCATION needs s3Location and no inlineAttributes".to_string())
        }
        ("IN_LINE_ATTRIBUTE", _, _) => Err(
            "metadata of type IN_LINE_ATTRIBUTE needs inlineAttributes and no s3Location"
                .to_string(),
        ),
        (other, _, _) => Err(format!(
            "Value '{other}' at 'metadata.type' failed to satisfy constraint: \
             Member must satisfy enum value set: [IN_LINE_ATTRIBUTE, S3_LOCATION]"
        )),
    };
    metadata.map_err(ApiError::Validation)
}

fn wire_details(details: &[DocumentDetail]) -> Vec<DocumentDetailWire> {
    details.iter().map(DocumentDetailWire::from).collect()
}

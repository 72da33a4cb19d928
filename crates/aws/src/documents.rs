//! Bedrock's document API for direct ingestion: IngestKnowledgeBaseDocuments,
//! DeleteKnowledgeBaseDocuments (at most 10 documents per call, a client token each) and the
//! per-document status of GetKnowledgeBaseDocuments.

use std::collections::HashMap;

use aws_sdk_bedrockagent::types::{
    ContentDataSourceType, CustomS3Location, DocumentContent, DocumentIdentifier, DocumentMetadata,
    KnowledgeBaseDocument, MetadataSourceType, S3Content, S3Location,
};
use kb_autosync_core::direct::DocumentAction;
use kb_autosync_core::SourceId;

use crate::knowledge_base::{DocumentState, KnowledgeBase};
use crate::AwsError;

/// Documents per call, as the API allows.
pub const DOCUMENTS_PER_CALL: usize = 10;

fn invalid(operation: &'static str, error: impl ToString) -> AwsError {
    AwsError::new(operation, "InvalidRequest", error.to_string())
}

fn s3_identifier(operation: &'static str, uri: &str) -> Result<DocumentIdentifier, AwsError> {
    let location = S3Location::builder()
        .uri(uri)
        .build()
        .map_err(|e| invalid(operation, e))?;
    DocumentIdentifier::builder()
        .data_source_type(ContentDataSourceType::S3)
        .s3(location)
        .build()
        .map_err(|e| invalid(operation, e))
}

fn s3_document(uri: &str, metadata_uri: Option<&str>) -> Result<KnowledgeBaseDocument, AwsError> {
    const OPERATION: &str = "IngestKnowledgeBaseDocuments";
    let location = S3Location::builder()
        .uri(uri)
        .build()
        .map_err(|e| invalid(OPERATION, e))?;
    let content = DocumentContent::builder()
        .data_source_type(ContentDataSourceType::S3)
        .s3(S3Content::builder().s3_location(location).build())
        .build()
        .map_err(|e| invalid(OPERATION, e))?;
    let metadata = metadata_uri
        .map(|uri| {
            let location = CustomS3Location::builder()
                .uri(uri)
                .build()
                .map_err(|e| invalid(OPERATION, e))?;
            DocumentMetadata::builder()
                .r#type(MetadataSourceType::S3Location)
                .s3_location(location)
                .build()
                .map_err(|e| invalid(OPERATION, e))
        })
        .transpose()?;
    Ok(KnowledgeBaseDocument::builder()
        .content(content)
        .set_metadata(metadata)
        .build())
}

impl KnowledgeBase {
    /// Ingests (or deletes) at most ten documents in one call: all of `actions` must be of one
    /// kind. Bedrock answers at once (202) and processes them asynchronously.
    pub async fn send_documents(
        &self,
        source: &SourceId,
        actions: &[&DocumentAction],
        client_token: &str,
    ) -> Result<(), AwsError> {
        let deletes = actions.iter().filter(|a| a.is_delete()).count();
        if actions.is_empty()
            || actions.len() > DOCUMENTS_PER_CALL
            || (deletes != 0 && deletes != actions.len())
        {
            return Err(invalid(
                "DocumentCall",
                format!("a document call carries 1-{DOCUMENTS_PER_CALL} documents of one kind, not {} ({deletes} deletes)", actions.len()),
            ));
        }
        if deletes > 0 {
            const OPERATION: &str = "DeleteKnowledgeBaseDocuments";
            let identifiers = actions
                .iter()
                .map(|a| s3_identifier(OPERATION, a.uri()))
                .collect::<Result<Vec<_>, _>>()?;
            self.client
                .delete_knowledge_base_documents()
                .knowledge_base_id(&source.knowledge_base_id)
                .data_source_id(&source.data_source_id)
                .client_token(client_token)
                .set_document_identifiers(Some(identifiers))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk(OPERATION, e))?;
        } else {
            let documents = actions
                .iter()
                .map(|a| match a {
                    DocumentAction::Ingest { uri, metadata_uri } => {
                        s3_document(uri, metadata_uri.as_deref())
                    }
                    DocumentAction::Delete { uri } => s3_document(uri, None),
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.client
                .ingest_knowledge_base_documents()
                .knowledge_base_id(&source.knowledge_base_id)
                .data_source_id(&source.data_source_id)
                .client_token(client_token)
                .set_documents(Some(documents))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("IngestKnowledgeBaseDocuments", e))?;
        }
        Ok(())
    }

    /// The current status of each document at `uris`, by URI (ten per call). A document Bedrock
    /// does not list is reported NOT_FOUND.
    pub async fn document_statuses(
        &self,
        source: &SourceId,
        uris: &[String],
    ) -> Result<HashMap<String, DocumentState>, AwsError> {
        let mut statuses: HashMap<String, DocumentState> = self
            .document_states(source, uris)
            .await?
            .into_iter()
            .map(|state| (state.uri.clone(), state))
            .collect();
        for uri in uris {
            statuses
                .entry(uri.clone())
                .or_insert_with(|| DocumentState {
                    uri: uri.clone(),
                    status: "NOT_FOUND".into(),
                    reason: None,
                    updated_at: None,
                });
        }
        Ok(statuses)
    }
}

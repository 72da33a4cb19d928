//! The two listings a drift check compares: a data source's S3 scope (its bucket and inclusion
//! prefixes, ListObjectsV2) and its documents in the knowledge base (ListKnowledgeBaseDocuments,
//! 1,000 per page). Used by `autosync drift` / `reconcile` and by the scheduled drift check.

use std::collections::BTreeMap;

use kb_autosync_core::drift::{IndexedDocument, ScopeObject};
use kb_autosync_core::SourceId;

use crate::knowledge_base::KnowledgeBase;
use crate::objects::ObjectStore;
use crate::AwsError;

/// A data source's two listings.
#[derive(Debug, Clone)]
pub struct Listing {
    pub bucket: String,
    /// The data source's inclusion prefixes ("" for the whole bucket).
    pub prefixes: Vec<String>,
    /// In key order, one entry per key however the prefixes overlap.
    pub objects: Vec<ScopeObject>,
    pub documents: Vec<IndexedDocument>,
}

#[derive(Debug, thiserror::Error)]
pub enum ListingError {
    #[error("data source {data_source_id} is not in knowledge base {knowledge_base_id}")]
    UnknownDataSource {
        knowledge_base_id: String,
        data_source_id: String,
    },
    #[error("data source {0} is not an S3 data source: there is no S3 scope to compare")]
    NotS3(SourceId),
    #[error("{service}: {error}")]
    Call {
        /// `bedrock-agent` or `s3`.
        service: &'static str,
        error: AwsError,
    },
}

/// Lists the S3 scope of `source` as its data source configuration defines it, and its
/// documents in the knowledge base.
pub async fn list_data_source(
    kb: &KnowledgeBase,
    store: &ObjectStore,
    source: &SourceId,
) -> Result<Listing, ListingError> {
    let bedrock = |error| ListingError::Call {
        service: "bedrock-agent",
        error,
    };
    let scope = kb
        .data_source_scopes(&source.knowledge_base_id)
        .await
        .map_err(bedrock)?
        .into_iter()
        .find(|s| s.data_source_id == source.data_source_id)
        .ok_or_else(|| ListingError::UnknownDataSource {
            knowledge_base_id: source.knowledge_base_id.clone(),
            data_source_id: source.data_source_id.clone(),
        })?;
    let bucket = scope
        .bucket()
        .map(str::to_string)
        .ok_or_else(|| ListingError::NotS3(source.clone()))?;
    let prefixes = if scope.inclusion_prefixes.is_empty() {
        vec![String::new()]
    } else {
        scope.inclusion_prefixes.clone()
    };
    let mut objects: BTreeMap<String, ScopeObject> = BTreeMap::new();
    for prefix in &prefixes {
        for object in
            store
                .list_scope(&bucket, prefix)
                .await
                .map_err(|error| ListingError::Call {
                    service: "s3",
                    error,
                })?
        {
            objects.insert(object.key.clone(), object);
        }
    }
    let documents = kb
        .indexed_documents(source, &bucket)
        .await
        .map_err(bedrock)?;
    Ok(Listing {
        objects: objects.into_values().collect(),
        documents,
        bucket,
        prefixes,
    })
}

fn utc(t: &aws_smithy_types::DateTime) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(t.to_millis().unwrap_or(0)).unwrap_or_default()
}

impl ObjectStore {
    /// Every object under `prefix` of `bucket`, in key order.
    pub async fn list_scope(
        &self,
        bucket: &str,
        prefix: &str,
    ) -> Result<Vec<ScopeObject>, AwsError> {
        let mut objects = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::from_sdk("ListObjectsV2", e))?;
            objects.extend(
                page.contents
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|o| {
                        Some(ScopeObject {
                            last_modified: o.last_modified.as_ref().map(utc)?,
                            key: o.key?,
                        })
                    }),
            );
        }
        Ok(objects)
    }
}

impl KnowledgeBase {
    /// Every document of the data source with its status and last update; `key` is the object
    /// key in `bucket` (documents of other buckets are left out).
    pub async fn indexed_documents(
        &self,
        source: &SourceId,
        bucket: &str,
    ) -> Result<Vec<IndexedDocument>, AwsError> {
        let prefix = format!("s3://{bucket}/");
        Ok(self
            .all_document_states(source)
            .await?
            .into_iter()
            .filter_map(|state| {
                Some(IndexedDocument {
                    key: state.uri.strip_prefix(&prefix)?.to_string(),
                    status: state.status,
                    reason: state.reason,
                    updated_at: state.updated_at,
                })
            })
            .collect())
    }
}

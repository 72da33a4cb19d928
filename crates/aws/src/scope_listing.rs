//! The two listings a drift check compares: a data source's S3 scope (ListObjectsV2) and its
//! documents in the knowledge base (ListKnowledgeBaseDocuments, 1,000 per page).

use kb_autosync_core::drift::{IndexedDocument, ScopeObject};
use kb_autosync_core::SourceId;

use crate::knowledge_base::KnowledgeBase;
use crate::objects::ObjectStore;
use crate::AwsError;

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

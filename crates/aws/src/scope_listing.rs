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
        let mut documents = Vec::new();
        let mut pages = self
            .client
            .list_knowledge_base_documents()
            .knowledge_base_id(&source.knowledge_base_id)
            .data_source_id(&source.data_source_id)
            .max_results(1000)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| AwsError::from_sdk("ListKnowledgeBaseDocuments", e))?;
            for detail in page.document_details {
                let Some(key) = detail
                    .identifier
                    .as_ref()
                    .and_then(|i| i.s3.as_ref())
                    .and_then(|s3| s3.uri.strip_prefix(&prefix))
                    .map(str::to_string)
                else {
                    continue;
                };
                documents.push(IndexedDocument {
                    key,
                    status: detail.status.as_str().to_string(),
                    reason: detail
                        .status_reason
                        .map(kb_autosync_core::job::bounded_reason),
                    updated_at: detail.updated_at.as_ref().map(utc),
                });
            }
        }
        Ok(documents)
    }
}

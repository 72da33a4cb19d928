//! One drift check of every routed data source. A data source that cannot be checked does not
//! stop the others; the invocation then fails naming each, so the function's error metric (and
//! the schedule's retry) see it.

use kb_autosync_aws::knowledge_base::KnowledgeBase;
use kb_autosync_aws::metrics::{Metrics, DRIFTED_DOCUMENTS};
use kb_autosync_aws::notifier::Notifier;
use kb_autosync_aws::objects::ObjectStore;
use kb_autosync_aws::reconciler::{Reconciler, SourceReconcile};
use kb_autosync_aws::scope_listing::list_data_source;
use kb_autosync_core::notification::{DataSourceDrift, DriftNotification, DRIFT_EXAMPLES};
use kb_autosync_core::SourceId;
use serde::Serialize;

pub struct DriftCheck {
    pub sources: Vec<SourceId>,
    pub knowledge_base: KnowledgeBase,
    pub objects: ObjectStore,
    pub reconciler: Reconciler,
    pub notifier: Notifier,
    pub metrics: Metrics,
}

/// What one invocation found, per data source (the function's result).
#[derive(Debug, Serialize)]
pub struct DriftCheckReport {
    pub data_sources: Vec<DataSourceDrift>,
    /// Whether a notification went out (something was repaired).
    pub notified: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DriftCheckError {
    #[error("drift check failed for {}", .0.join("; "))]
    Sources(Vec<String>),
    #[error("drift check: sending the notification failed: {0}")]
    Notify(kb_autosync_aws::AwsError),
}

impl DriftCheck {
    pub async fn handle(&self) -> Result<DriftCheckReport, DriftCheckError> {
        let mut checked = Vec::new();
        let mut failures = Vec::new();
        for source in &self.sources {
            match self.check(source).await {
                Ok(done) => {
                    self.metrics
                        .count(DRIFTED_DOCUMENTS, done.drifted() as u64, source);
                    tracing::info!(%source, drifted = done.drifted(), in_flight = done.in_flight, recorded = done.recorded.recorded, "drift check");
                    checked.push(summary(&done));
                }
                Err(error) => {
                    tracing::error!(%source, %error, "drift check of the data source failed");
                    failures.push(format!("{source}: {error}"));
                }
            }
        }
        let repaired: Vec<DataSourceDrift> = checked
            .iter()
            .filter(|d| d.recorded_changes > 0)
            .cloned()
            .collect();
        let notified = !repaired.is_empty();
        if notified {
            let notification = DriftNotification::new(kb_autosync_aws::now_rfc3339(), repaired);
            let body = serde_json::to_value(&notification).unwrap_or_default();
            self.notifier
                .publish(&notification.subject(), &body)
                .await
                .map_err(DriftCheckError::Notify)?;
        }
        if !failures.is_empty() {
            return Err(DriftCheckError::Sources(failures));
        }
        Ok(DriftCheckReport {
            data_sources: checked.into_iter().filter(|d| d.total() > 0).collect(),
            notified,
        })
    }

    async fn check(&self, source: &SourceId) -> Result<SourceReconcile, String> {
        let listing = list_data_source(&self.knowledge_base, &self.objects, source)
            .await
            .map_err(|e| e.to_string())?;
        self.reconciler
            .reconcile(source, &listing)
            .await
            .map_err(|e| format!("recording the repair: {e}"))
    }
}

fn summary(done: &SourceReconcile) -> DataSourceDrift {
    let d = &done.drift;
    let failed: Vec<String> = d.failed.iter().map(|f| f.key.clone()).collect();
    let examples = [
        ("missing", &d.missing),
        ("stale", &d.stale),
        ("orphaned", &d.orphaned),
        ("failed", &failed),
    ]
    .into_iter()
    .filter(|(_, keys)| !keys.is_empty())
    .map(|(category, keys)| {
        let first = keys.iter().take(DRIFT_EXAMPLES).cloned().collect();
        (category.to_string(), first)
    })
    .collect();
    DataSourceDrift {
        knowledge_base_id: done.knowledge_base_id.clone(),
        data_source_id: done.data_source_id.clone(),
        missing: d.missing.len(),
        stale: d.stale.len(),
        orphaned: d.orphaned.len(),
        failed: d.failed.len(),
        in_flight: done.in_flight,
        recorded_changes: done.recorded.recorded,
        examples,
    }
}

#[cfg(test)]
mod tests {
    //! A data source that cannot be checked fails the invocation naming it, after the others
    //! were checked (mocked AWS answers, matched by operation and knowledge base).

    use aws_sdk_bedrockagent::operation::get_data_source::GetDataSourceOutput;
    use aws_sdk_bedrockagent::operation::list_data_sources::{
        ListDataSourcesError, ListDataSourcesOutput,
    };
    use aws_sdk_bedrockagent::operation::list_knowledge_base_documents::ListKnowledgeBaseDocumentsOutput;
    use aws_sdk_bedrockagent::types::{
        DataSource, DataSourceConfiguration, DataSourceStatus, DataSourceSummary, DataSourceType,
        S3DataSourceConfiguration,
    };
    use aws_sdk_s3::operation::list_objects_v2::ListObjectsV2Output;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use aws_smithy_types::error::ErrorMetadata;
    use aws_smithy_types::DateTime;
    use kb_autosync_aws::sources_table::SourcesTable;
    use kb_autosync_aws::sync_queue::SyncQueue;
    use kb_autosync_aws::tracking_table::TrackingTable;

    use super::*;

    fn bedrock() -> aws_sdk_bedrockagent::Client {
        let gone = mock!(aws_sdk_bedrockagent::Client::list_data_sources)
            .match_requests(|r| r.knowledge_base_id() == Some("KBGONE"))
            .then_error(|| {
                ListDataSourcesError::generic(
                    ErrorMetadata::builder()
                        .code("ResourceNotFoundException")
                        .message("knowledge base KBGONE not found")
                        .build(),
                )
            });
        let data_sources =
            mock!(aws_sdk_bedrockagent::Client::list_data_sources).then_output(|| {
                let summary = DataSourceSummary::builder()
                    .knowledge_base_id("KB")
                    .data_source_id("DS")
                    .name("docs")
                    .status(DataSourceStatus::Available)
                    .updated_at(DateTime::from_secs(0))
                    .build()
                    .unwrap();
                ListDataSourcesOutput::builder()
                    .data_source_summaries(summary)
                    .build()
                    .unwrap()
            });
        let data_source = mock!(aws_sdk_bedrockagent::Client::get_data_source).then_output(|| {
            let s3 = S3DataSourceConfiguration::builder()
                .bucket_arn("arn:aws:s3:::docs")
                .build()
                .unwrap();
            let configuration = DataSourceConfiguration::builder()
                .r#type(DataSourceType::S3)
                .s3_configuration(s3)
                .build()
                .unwrap();
            let ds = DataSource::builder()
                .knowledge_base_id("KB")
                .data_source_id("DS")
                .name("docs")
                .status(DataSourceStatus::Available)
                .data_source_configuration(configuration)
                .created_at(DateTime::from_secs(0))
                .updated_at(DateTime::from_secs(0))
                .build()
                .unwrap();
            GetDataSourceOutput::builder().data_source(ds).build()
        });
        let documents = mock!(aws_sdk_bedrockagent::Client::list_knowledge_base_documents)
            .then_output(|| {
                ListKnowledgeBaseDocumentsOutput::builder()
                    .set_document_details(Some(Vec::new()))
                    .build()
                    .unwrap()
            });
        mock_client!(
            aws_sdk_bedrockagent,
            RuleMode::MatchAny,
            [&gone, &data_sources, &data_source, &documents]
        )
    }

    #[tokio::test]
    async fn a_data_source_that_cannot_be_checked_fails_the_invocation_after_the_others() {
        let listed = mock!(aws_sdk_s3::Client::list_objects_v2)
            .then_output(|| ListObjectsV2Output::builder().build());
        // No drift, no repair: the tables, the queue and the topic are never called.
        let dynamo = mock_client!(aws_sdk_dynamodb, []);
        let check = DriftCheck {
            sources: vec![SourceId::new("KBGONE", "DS"), SourceId::new("KB", "DS")],
            knowledge_base: KnowledgeBase::new(bedrock()),
            objects: ObjectStore::new(mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&listed])),
            reconciler: Reconciler {
                tracking: TrackingTable::new(dynamo.clone(), "tracking"),
                sources: SourcesTable::new(dynamo, "sources"),
                queue: SyncQueue::new(mock_client!(aws_sdk_sqs, []), "https://q", 0),
                retention_days: 30,
            },
            notifier: Notifier::new(mock_client!(aws_sdk_sns, []), "arn:aws:sns:us-east-1:1:t"),
            metrics: Metrics::new("Test", "test-stack"),
        };
        let err = check.handle().await.unwrap_err().to_string();
        assert!(err.starts_with("drift check failed for KBGONE"), "{err}");
        assert!(err.contains("ResourceNotFoundException"), "{err}");
        assert!(!err.contains("KB/DS") && !err.contains("KB#DS"), "{err}");
        assert!(listed.num_calls() > 0, "the other data source was checked");
    }
}

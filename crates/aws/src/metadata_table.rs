//! The metadata table: one item per ingestion job, keyed by `job_id`, with the `by-source` index.

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use kb_autosync_core::direct::IngestionMethod;
use kb_autosync_core::SourceId;

use crate::AwsError;

#[derive(Clone, Debug)]
pub struct MetadataTable {
    client: aws_sdk_dynamodb::Client,
    table: String,
    retention_days: u32,
}

/// A job as start-sync records it.
#[derive(Debug, Clone)]
pub struct JobStart<'a> {
    pub job_id: &'a str,
    pub source: &'a SourceId,
    pub status: &'a str,
    pub started_at: &'a str,
    pub execution_name: &'a str,
    pub attempt: u32,
    pub client_token: &'a str,
    pub target_seq: u64,
    pub cutoff_seq: u64,
    /// `job`, or `direct` for a direct batch (whose `job_id` is `direct-...`).
    pub method: IngestionMethod,
}

/// A job as monitor-sync records its end.
#[derive(Debug, Clone)]
pub struct JobEnd<'a> {
    pub job_id: &'a str,
    pub status: &'a str,
    pub ended_at: &'a str,
    pub statistics_json: &'a str,
    pub failure_reasons: &'a [String],
    /// Changes the job marked SYNCED.
    pub change_count: u64,
    /// Changes the job left FAILED.
    pub failed_change_count: u64,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

impl MetadataTable {
    pub fn new(
        client: aws_sdk_dynamodb::Client,
        table: impl Into<String>,
        retention_days: u32,
    ) -> Self {
        Self {
            client,
            table: table.into(),
            retention_days,
        }
    }

    /// Records a started job. Idempotent: a retried start writes the same values.
    pub async fn record_start(&self, job: &JobStart<'_>) -> Result<(), AwsError> {
        let expires_at = chrono::Utc::now().timestamp() + i64::from(self.retention_days) * 86_400;
        self.client
            .update_item()
            .table_name(&self.table)
            .key("job_id", s(job.job_id))
            .update_expression(
                "SET knowledge_base_id = :kb, data_source_id = :ds, source_id = :src, \
                 #status = if_not_exists(#status, :status), start_time = if_not_exists(start_time, :started), \
                 started_at = if_not_exists(started_at, :started), execution_name = :exec, attempt = :attempt, \
                 client_token = :token, target_seq = :target, cutoff_seq = :cutoff, expires_at = :exp, \
                 ingestion_method = :method",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":kb", s(&job.source.knowledge_base_id))
            .expression_attribute_values(":ds", s(&job.source.data_source_id))
            .expression_attribute_values(":src", s(job.source.key()))
            .expression_attribute_values(":status", s(job.status))
            .expression_attribute_values(":started", s(job.started_at))
            .expression_attribute_values(":exec", s(job.execution_name))
            .expression_attribute_values(":attempt", n(job.attempt))
            .expression_attribute_values(":token", s(job.client_token))
            .expression_attribute_values(":target", n(job.target_seq))
            .expression_attribute_values(":cutoff", n(job.cutoff_seq))
            .expression_attribute_values(":exp", n(expires_at))
            .expression_attribute_values(":method", s(job.method.as_str()))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("UpdateItem", e))?;
        Ok(())
    }

    /// Stores `count`, the number of changes the job covers, as `covered_change_count` unless a
    /// first call already did, and returns the stored value: every call for a job gets the
    /// first call's count back, however many times the marking is retried.
    pub async fn covered_change_count(&self, job_id: &str, count: u64) -> Result<u64, AwsError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("job_id", s(job_id))
            .update_expression(
                "SET covered_change_count = if_not_exists(covered_change_count, :count)",
            )
            .expression_attribute_values(":count", n(count))
            // ALL_NEW, not UPDATED_NEW: when the count is already stored the SET changes nothing,
            // and an implementation may then leave the attribute out of UPDATED_NEW.
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("UpdateItem", e))?;
        out.attributes
            .as_ref()
            .and_then(|a| a.get("covered_change_count"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                AwsError::new(
                    "UpdateItem",
                    "MissingAttribute",
                    format!(
                        "covered_change_count of job {job_id} in {} was not returned",
                        self.table
                    ),
                )
            })
    }

    pub async fn record_end(&self, job: &JobEnd<'_>) -> Result<(), AwsError> {
        let reasons = if job.failure_reasons.is_empty() {
            AttributeValue::L(vec![])
        } else {
            AttributeValue::L(job.failure_reasons.iter().map(|r| s(r.as_str())).collect())
        };
        self.client
            .update_item()
            .table_name(&self.table)
            .key("job_id", s(job.job_id))
            .update_expression(
                "SET #status = :status, end_time = :ended, ended_at = :ended, statistics = :stats, \
                 failure_reasons = :reasons, change_count = :count, failed_change_count = :failed",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":status", s(job.status))
            .expression_attribute_values(":ended", s(job.ended_at))
            .expression_attribute_values(":stats", s(job.statistics_json))
            .expression_attribute_values(":reasons", reasons)
            .expression_attribute_values(":count", n(job.change_count))
            .expression_attribute_values(":failed", n(job.failed_change_count))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("UpdateItem", e))?;
        Ok(())
    }

    /// True if the job's notification was already sent (a retried monitor task skips it).
    pub async fn is_notified(&self, job_id: &str) -> Result<bool, AwsError> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("job_id", s(job_id))
            .consistent_read(true)
            .projection_expression("notified_at")
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("GetItem", e))?;
        Ok(item.item.is_some_and(|i| i.contains_key("notified_at")))
    }

    pub async fn mark_notified(&self, job_id: &str, at: &str) -> Result<(), AwsError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("job_id", s(job_id))
            .update_expression("SET notified_at = :at")
            .expression_attribute_values(":at", s(at))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("UpdateItem", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    use super::*;

    #[tokio::test]
    async fn the_covered_change_count_is_the_first_one_stored() {
        // An earlier invocation stored 10; this one found 4 changes left and gets 10 back.
        let update = mock!(aws_sdk_dynamodb::Client::update_item)
            .match_requests(|r| {
                r.update_expression()
                    == Some(
                        "SET covered_change_count = if_not_exists(covered_change_count, :count)",
                    )
                    && r.expression_attribute_values()
                        .and_then(|v| v.get(":count"))
                        == Some(&n(4))
                    && r.return_values() == Some(&ReturnValue::AllNew)
            })
            .then_output(|| {
                UpdateItemOutput::builder()
                    .set_attributes(Some(HashMap::from([(
                        "covered_change_count".to_string(),
                        n(10),
                    )])))
                    .build()
            });
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&update]);
        let jobs = MetadataTable::new(client, "jobs", 1);
        assert_eq!(jobs.covered_change_count("JOB1", 4).await.unwrap(), 10);
    }
}

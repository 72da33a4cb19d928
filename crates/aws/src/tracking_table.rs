//! The tracking table: one item per change, keyed by `change_id`, with the sparse
//! `pending-by-source` index (`pending_source`, `source_seq`) listing changes not yet SYNCED.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use kb_autosync_core::change::{ChangeRecord, ChangeStatus};
use kb_autosync_core::SourceId;

use crate::AwsError;

pub const PENDING_INDEX: &str = "pending-by-source";

#[derive(Clone, Debug)]
pub struct TrackingTable {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

#[derive(Debug, PartialEq, Eq)]
pub enum PutOutcome {
    Recorded,
    /// Same change id already recorded: a redelivered event.
    AlreadyRecorded,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

impl TrackingTable {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Records a change once: a conditional put, so redeliveries never create a second item.
    pub async fn put_pending(&self, record: &ChangeRecord) -> Result<PutOutcome, AwsError> {
        let item: HashMap<String, AttributeValue> = serde_dynamo::to_item(record)
            .map_err(|e| AwsError::new("PutItem", "Serialization", e.to_string()))?;
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(change_id)")
            .send()
            .await
        {
            Ok(_) => Ok(PutOutcome::Recorded),
            Err(err) => {
                let err = AwsError::from_sdk("PutItem", err);
                if err.is("ConditionalCheckFailedException") {
                    Ok(PutOutcome::AlreadyRecorded)
                } else {
                    Err(err)
                }
            }
        }
    }

    /// Changes of `source` in the pending index numbered up to `cutoff_seq` (PENDING or FAILED).
    pub async fn pending_up_to(
        &self,
        source: &SourceId,
        cutoff_seq: u64,
    ) -> Result<Vec<ChangeRecord>, AwsError> {
        let mut records = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(PENDING_INDEX)
                .key_condition_expression("pending_source = :s AND source_seq <= :c")
                .expression_attribute_values(":s", s(source.key()))
                .expression_attribute_values(":c", n(cutoff_seq))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("Query", e))?;
            for item in page.items.unwrap_or_default() {
                let record: ChangeRecord = serde_dynamo::from_item(item)
                    .map_err(|e| AwsError::new("Query", "Deserialization", e.to_string()))?;
                records.push(record);
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(records)
    }

    /// The oldest PENDING change of `source` (lowest sequence number), if any.
    pub async fn oldest_pending(
        &self,
        source: &SourceId,
    ) -> Result<Option<ChangeRecord>, AwsError> {
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(PENDING_INDEX)
                .key_condition_expression("pending_source = :s")
                .filter_expression("#status = :pending")
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":s", s(source.key()))
                .expression_attribute_values(":pending", s("PENDING"))
                .scan_index_forward(true)
                .limit(100)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("Query", e))?;
            if let Some(item) = page.items.unwrap_or_default().into_iter().next() {
                let record = serde_dynamo::from_item(item)
                    .map_err(|e| AwsError::new("Query", "Deserialization", e.to_string()))?;
                return Ok(Some(record));
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(None),
            }
        }
    }

    /// Marks a change SYNCED by `job_id` and takes it out of the pending index. A change already
    /// SYNCED keeps the job that synced it first.
    pub async fn mark_synced(
        &self,
        change_id: &str,
        job_id: &str,
        at: &str,
    ) -> Result<bool, AwsError> {
        self.conditional_update(
            change_id,
            "SET #status = :synced, #processed = :true, ingestion_job_id = :job, synced_at = :at REMOVE pending_source, failure_reason",
            "attribute_exists(change_id) AND #status <> :synced",
            &[(":synced", s("SYNCED")), (":true", AttributeValue::Bool(true)), (":job", s(job_id)), (":at", s(at))],
        )
        .await
    }

    /// Marks a PENDING change FAILED with a reason. It stays in the pending index, so a later
    /// successful job that covers it marks it SYNCED.
    pub async fn mark_failed(
        &self,
        change_id: &str,
        job_id: Option<&str>,
        reason: &str,
    ) -> Result<bool, AwsError> {
        let mut values = vec![
            (":failed", s("FAILED")),
            (":pending", s("PENDING")),
            (":reason", s(reason)),
        ];
        let update = if let Some(job) = job_id {
            values.push((":job", s(job)));
            "SET #status = :failed, failure_reason = :reason, ingestion_job_id = :job"
        } else {
            "SET #status = :failed, failure_reason = :reason"
        };
        self.conditional_update(change_id, update, "#status = :pending", &values)
            .await
    }

    async fn conditional_update(
        &self,
        change_id: &str,
        update: &str,
        condition: &str,
        values: &[(&str, AttributeValue)],
    ) -> Result<bool, AwsError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("change_id", s(change_id))
            .update_expression(update)
            .condition_expression(condition)
            .expression_attribute_names("#status", "status");
        if update.contains("#processed") {
            request = request.expression_attribute_names("#processed", "processed");
        }
        for (name, value) in values {
            request = request.expression_attribute_values(*name, value.clone());
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(err) => {
                let err = AwsError::from_sdk("UpdateItem", err);
                if err.is("ConditionalCheckFailedException") {
                    Ok(false)
                } else {
                    Err(err)
                }
            }
        }
    }
}

/// True when the record still waits for a job.
pub fn is_pending(record: &ChangeRecord) -> bool {
    record.status == ChangeStatus::Pending
}

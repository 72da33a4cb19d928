//! The tracking table: one item per change, keyed by `change_id`, with the sparse
//! `pending-by-source` index (`pending_source`, `source_seq`) listing changes not yet SYNCED.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use kb_autosync_core::change::{ChangeRecord, ChangeStatus};
use kb_autosync_core::direct::IngestionMethod;
use kb_autosync_core::SourceId;

use crate::AwsError;

pub const PENDING_INDEX: &str = "pending-by-source";

/// BatchGetItem takes at most 100 keys per call.
const BATCH_GET_MAX_KEYS: usize = 100;
/// Calls per chunk before keys DynamoDB leaves unprocessed (throttling) make `recorded_ids` fail.
const BATCH_GET_ATTEMPTS: u32 = 6;
const BATCH_GET_FIRST_BACKOFF: Duration = Duration::from_millis(25);

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

    /// Which of `change_ids` are already recorded (a redelivered event): BatchGetItem with
    /// consistent reads and only the key projected, 100 keys a call, unprocessed keys asked again
    /// with backoff. Repeated ids are asked once (BatchGetItem refuses duplicate keys).
    pub async fn recorded_ids(&self, change_ids: &[String]) -> Result<HashSet<String>, AwsError> {
        let mut unique: Vec<&str> = Vec::with_capacity(change_ids.len());
        let mut seen = HashSet::with_capacity(change_ids.len());
        for id in change_ids {
            if seen.insert(id.as_str()) {
                unique.push(id);
            }
        }
        let mut recorded = HashSet::new();
        for chunk in unique.chunks(BATCH_GET_MAX_KEYS) {
            let mut keys: Vec<HashMap<String, AttributeValue>> = chunk
                .iter()
                .map(|id| HashMap::from([("change_id".to_string(), s(*id))]))
                .collect();
            let mut attempt = 1;
            loop {
                let request = KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .projection_expression("change_id")
                    .build()
                    .map_err(|e| AwsError::new("BatchGetItem", "InvalidRequest", e.to_string()))?;
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| AwsError::from_sdk("BatchGetItem", e))?;
                for item in out
                    .responses
                    .unwrap_or_default()
                    .remove(&self.table)
                    .unwrap_or_default()
                {
                    if let Some(AttributeValue::S(id)) = item.get("change_id") {
                        recorded.insert(id.clone());
                    }
                }
                keys = out
                    .unprocessed_keys
                    .unwrap_or_default()
                    .remove(&self.table)
                    .map(|k| k.keys)
                    .unwrap_or_default();
                if keys.is_empty() {
                    break;
                }
                if attempt == BATCH_GET_ATTEMPTS {
                    return Err(AwsError::new(
                        "BatchGetItem",
                        "UnprocessedKeys",
                        format!(
                            "{} of {} change ids of {} still unprocessed after {attempt} calls (throttled)",
                            keys.len(),
                            chunk.len(),
                            self.table
                        ),
                    ));
                }
                tokio::time::sleep(BATCH_GET_FIRST_BACKOFF * 2u32.pow(attempt - 1)).await;
                attempt += 1;
            }
        }
        Ok(recorded)
    }

    /// Whether a change of `source` numbered up to `cutoff_seq` is still PENDING: one whose
    /// record was written after the job that covered its number had marked its changes (a write
    /// slower than a whole job). The index is eventually consistent, so each candidate is
    /// confirmed with a consistent read of its item before it counts.
    pub async fn has_pending_up_to(
        &self,
        source: &SourceId,
        cutoff_seq: u64,
    ) -> Result<bool, AwsError> {
        let candidates: Vec<String> = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(PENDING_INDEX)
            .key_condition_expression("pending_source = :s AND source_seq <= :c")
            .filter_expression("#status = :pending")
            .projection_expression("change_id")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":s", s(source.key()))
            .expression_attribute_values(":c", n(cutoff_seq))
            .expression_attribute_values(":pending", s("PENDING"))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| AwsError::from_sdk("Query", e))?
            .into_iter()
            .filter_map(|item| item.get("change_id")?.as_s().ok().cloned())
            .collect();
        for change_id in candidates {
            let item = self
                .client
                .get_item()
                .table_name(&self.table)
                .key("change_id", s(&change_id))
                .consistent_read(true)
                .projection_expression("#status")
                .expression_attribute_names("#status", "status")
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("GetItem", e))?
                .item;
            let still_pending = item
                .as_ref()
                .and_then(|i| i.get("status"))
                .and_then(|v| v.as_s().ok())
                .is_some_and(|status| status == "PENDING");
            if still_pending {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether the pending index holds more than `limit` changes of `source` (PENDING or
    /// FAILED): one page of at most `limit + 1` keys, however long the backlog.
    pub async fn more_pending_than(
        &self,
        source: &SourceId,
        limit: usize,
    ) -> Result<bool, AwsError> {
        let page = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(PENDING_INDEX)
            .key_condition_expression("pending_source = :s")
            .expression_attribute_values(":s", s(source.key()))
            .select(aws_sdk_dynamodb::types::Select::Count)
            .limit(i32::try_from(limit.saturating_add(1)).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("Query", e))?;
        Ok(page.count as usize > limit)
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

    /// Marks a change SYNCED by `job_id` (a job, or a direct batch) and takes it out of the
    /// pending index. A change already SYNCED keeps the job that synced it first.
    pub async fn mark_synced(
        &self,
        change_id: &str,
        job_id: &str,
        at: &str,
        method: IngestionMethod,
    ) -> Result<bool, AwsError> {
        self.conditional_update(
            change_id,
            "SET #status = :synced, #processed = :true, ingestion_job_id = :job, synced_at = :at, ingestion_method = :method REMOVE pending_source, failure_reason",
            "attribute_exists(change_id) AND #status <> :synced",
            &[(":synced", s("SYNCED")), (":true", AttributeValue::Bool(true)), (":job", s(job_id)), (":at", s(at)), (":method", s(method.as_str()))],
        )
        .await
    }

    /// Marks a PENDING change FAILED with a reason. It stays in the pending index, so a later
    /// successful job that covers it marks it SYNCED.
    pub async fn mark_failed(
        &self,
        change_id: &str,
        job_id: Option<(&str, IngestionMethod)>,
        reason: &str,
    ) -> Result<bool, AwsError> {
        let mut values = vec![
            (":failed", s("FAILED")),
            (":pending", s("PENDING")),
            (":reason", s(reason)),
        ];
        let update = if let Some((job, method)) = job_id {
            values.push((":job", s(job)));
            values.push((":method", s(method.as_str())));
            "SET #status = :failed, failure_reason = :reason, ingestion_job_id = :job, ingestion_method = :method"
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

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemOutput;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    use super::*;

    fn key(id: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([("change_id".to_string(), s(id))])
    }

    fn asked(r: &aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemInput) -> Vec<String> {
        let request = &r.request_items().unwrap()["tracking"];
        request
            .keys()
            .iter()
            .map(|k| k["change_id"].as_s().unwrap().clone())
            .collect()
    }

    fn output(found: &[&str], unprocessed: &[&str]) -> BatchGetItemOutput {
        let mut out = BatchGetItemOutput::builder()
            .responses("tracking", found.iter().map(|id| key(id)).collect());
        if !unprocessed.is_empty() {
            out = out.unprocessed_keys(
                "tracking",
                KeysAndAttributes::builder()
                    .set_keys(Some(unprocessed.iter().map(|id| key(id)).collect()))
                    .build()
                    .unwrap(),
            );
        }
        out.build()
    }

    #[tokio::test]
    async fn recorded_ids_reads_consistently_only_the_key_and_asks_each_id_once() {
        let get = mock!(aws_sdk_dynamodb::Client::batch_get_item)
            .match_requests(|r| {
                let request = &r.request_items().unwrap()["tracking"];
                request.consistent_read() == Some(true)
                    && request.projection_expression() == Some("change_id")
                    && asked(r) == ["a", "b"]
            })
            .then_output(|| output(&["a"], &[]));
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&get]);
        let recorded = TrackingTable::new(client, "tracking")
            .recorded_ids(&["a".into(), "b".into(), "a".into()])
            .await
            .unwrap();
        assert_eq!(recorded, HashSet::from(["a".to_string()]));
        assert_eq!(get.num_calls(), 1);
    }

    #[tokio::test]
    async fn recorded_ids_asks_again_for_unprocessed_keys() {
        let first = mock!(aws_sdk_dynamodb::Client::batch_get_item)
            .match_requests(|r| asked(r) == ["a", "b", "c"])
            .then_output(|| output(&["a"], &["b", "c"]));
        let second = mock!(aws_sdk_dynamodb::Client::batch_get_item)
            .match_requests(|r| {
                asked(r) == ["b", "c"]
                    && r.request_items().unwrap()["tracking"].consistent_read() == Some(true)
            })
            .then_output(|| output(&["c"], &[]));
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::Sequential, [&first, &second]);
        let recorded = TrackingTable::new(client, "tracking")
            .recorded_ids(&["a".into(), "b".into(), "c".into()])
            .await
            .unwrap();
        assert_eq!(recorded, HashSet::from(["a".to_string(), "c".to_string()]));
        assert_eq!(second.num_calls(), 1);
    }

    #[tokio::test]
    async fn recorded_ids_fails_when_keys_stay_unprocessed() {
        let throttled =
            mock!(aws_sdk_dynamodb::Client::batch_get_item).then_output(|| output(&[], &["a"]));
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&throttled]);
        let err = TrackingTable::new(client, "tracking")
            .recorded_ids(&["a".into()])
            .await
            .unwrap_err();
        assert_eq!(err.code, "UnprocessedKeys");
        assert_eq!(throttled.num_calls(), BATCH_GET_ATTEMPTS as usize);
    }

    #[tokio::test]
    async fn recorded_ids_asks_at_most_100_keys_a_call() {
        let get = mock!(aws_sdk_dynamodb::Client::batch_get_item)
            .match_requests(|r| asked(r).len() <= 100)
            .then_output(|| output(&[], &[]));
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&get]);
        let ids: Vec<String> = (0..250).map(|i| format!("c{i}")).collect();
        let recorded = TrackingTable::new(client, "tracking")
            .recorded_ids(&ids)
            .await
            .unwrap();
        assert!(recorded.is_empty());
        assert_eq!(get.num_calls(), 3);
    }

    #[tokio::test]
    async fn no_ids_no_call() {
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, &[]);
        assert!(TrackingTable::new(client, "tracking")
            .recorded_ids(&[])
            .await
            .unwrap()
            .is_empty());
    }
}

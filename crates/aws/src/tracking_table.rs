//! The tracking table: one item per change, keyed by `change_id`, with the sparse
//! `pending-by-source` index (`pending_source`, `source_seq`) listing changes not yet SYNCED.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use kb_autosync_core::change::{ChangeRecord, ChangeStatus};
use kb_autosync_core::direct::IngestionMethod;
use kb_autosync_core::SourceId;

use crate::error::applied;
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

/// A change read back from a Query of the pending index.
fn change_record(item: HashMap<String, AttributeValue>) -> Result<ChangeRecord, AwsError> {
    serde_dynamo::from_item(item)
        .map_err(|e| AwsError::new("Query", "Deserialization", e.to_string()))
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
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(change_id)")
            .send()
            .await;
        Ok(if applied("PutItem", put)? {
            PutOutcome::Recorded
        } else {
            PutOutcome::AlreadyRecorded
        })
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
            recorded.extend(self.recorded_of_batch(chunk).await?);
        }
        Ok(recorded)
    }

    /// One batch of at most 100 ids. BatchGetItem may leave keys unprocessed when throttled:
    /// they are asked again with backoff, and an error after the last attempt, since a key never
    /// read would pass for an unrecorded change.
    async fn recorded_of_batch(&self, ids: &[&str]) -> Result<HashSet<String>, AwsError> {
        let mut keys: Vec<HashMap<String, AttributeValue>> = ids
            .iter()
            .map(|id| HashMap::from([("change_id".to_string(), s(*id))]))
            .collect();
        let mut recorded = HashSet::new();
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
                return Ok(recorded);
            }
            if attempt == BATCH_GET_ATTEMPTS {
                return Err(AwsError::new(
                    "BatchGetItem",
                    "UnprocessedKeys",
                    format!(
                        "{} of {} change ids of {} still unprocessed after {attempt} calls (throttled)",
                        keys.len(),
                        ids.len(),
                        self.table
                    ),
                ));
            }
            tokio::time::sleep(BATCH_GET_FIRST_BACKOFF * 2u32.pow(attempt - 1)).await;
            attempt += 1;
        }
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
        let mut items = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(PENDING_INDEX)
            .key_condition_expression("pending_source = :s AND source_seq <= :c")
            .expression_attribute_values(":s", s(source.key()))
            .expression_attribute_values(":c", n(cutoff_seq))
            .into_paginator()
            .items()
            .send();
        let mut records = Vec::new();
        while let Some(item) = items
            .try_next()
            .await
            .map_err(|e| AwsError::from_sdk("Query", e))?
        {
            records.push(change_record(item)?);
        }
        Ok(records)
    }

    /// The keys of `source`'s PENDING changes: what the service is syncing right now.
    pub async fn pending_keys(&self, source: &SourceId) -> Result<Vec<String>, AwsError> {
        let items: Vec<HashMap<String, AttributeValue>> = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(PENDING_INDEX)
            .key_condition_expression("pending_source = :s")
            .filter_expression("#status = :pending")
            .projection_expression("#key")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#key", "key")
            .expression_attribute_values(":s", s(source.key()))
            .expression_attribute_values(":pending", s("PENDING"))
            .into_paginator()
            .items()
            .send()
            .collect::<Result<Vec<_>, _>>()
            .await
            .map_err(|e| AwsError::from_sdk("Query", e))?;
        Ok(items
            .into_iter()
            .filter_map(|item| item.get("key")?.as_s().ok().cloned())
            .collect())
    }

    /// The oldest PENDING change of `source` (lowest sequence number), if any.
    pub async fn oldest_pending(
        &self,
        source: &SourceId,
    ) -> Result<Option<ChangeRecord>, AwsError> {
        // The first item of the first page that has one: pages after it are never read.
        let first = self
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
            .into_paginator()
            .items()
            .send()
            .try_next()
            .await
            .map_err(|e| AwsError::from_sdk("Query", e))?;
        first.map(change_record).transpose()
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
        applied("UpdateItem", request.send().await)
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

    /// A PENDING change of `KB#DS` numbered `seq`, as the pending index returns it.
    fn pending(seq: u64) -> HashMap<String, AttributeValue> {
        let change: ChangeRecord = serde_json::from_value(serde_json::json!({
            "change_id": format!("c{seq}"),
            "knowledge_base_id": "KB",
            "data_source_id": "DS",
            "change_type": "create",
            "bucket": "docs",
            "key": format!("k{seq}"),
            "timestamp": "2026-01-01T00:00:00.000Z",
            "event_name": "Object Created",
            "status": "PENDING",
            "processed": false,
            "source_seq": seq,
            "pending_source": "KB#DS",
            "expires_at": 0,
        }))
        .unwrap();
        serde_dynamo::to_item(change).unwrap()
    }

    /// A page of the pending index: `seqs`, then the key to go on from (`after`), if any.
    fn page(seqs: &[u64], after: Option<&str>) -> aws_sdk_dynamodb::operation::query::QueryOutput {
        aws_sdk_dynamodb::operation::query::QueryOutput::builder()
            .set_items(Some(seqs.iter().map(|&seq| pending(seq)).collect()))
            .set_last_evaluated_key(after.map(key))
            .build()
    }

    /// The Query rule answering the page read from `start` (the first page when `None`).
    fn query_from(
        start: Option<&'static str>,
        answer: aws_sdk_dynamodb::operation::query::QueryOutput,
    ) -> aws_smithy_mocks::Rule {
        mock!(aws_sdk_dynamodb::Client::query)
            .match_requests(move |r| {
                let from = r
                    .exclusive_start_key()
                    .map(|k| k["change_id"].as_s().unwrap().as_str());
                from == start
            })
            .then_output(move || answer.clone())
    }

    fn seqs(records: &[ChangeRecord]) -> Vec<u64> {
        records.iter().map(|r| r.source_seq).collect()
    }

    #[tokio::test]
    async fn pending_up_to_reads_every_page() {
        let first = query_from(None, page(&[1, 2], Some("c2")));
        let second = query_from(Some("c2"), page(&[], Some("c2b")));
        let third = query_from(Some("c2b"), page(&[3], None));
        let client = mock_client!(
            aws_sdk_dynamodb,
            RuleMode::MatchAny,
            [&first, &second, &third]
        );
        let records = TrackingTable::new(client, "tracking")
            .pending_up_to(&SourceId::new("KB", "DS"), 3)
            .await
            .unwrap();
        assert_eq!(seqs(&records), [1, 2, 3]);
        assert_eq!(third.num_calls(), 1);
    }

    #[tokio::test]
    async fn oldest_pending_goes_past_empty_pages_and_stops_at_the_first_pending() {
        let first = query_from(None, page(&[], Some("c1")));
        let second = query_from(Some("c1"), page(&[5, 6], Some("c6")));
        let third = query_from(Some("c6"), page(&[7], None));
        let client = mock_client!(
            aws_sdk_dynamodb,
            RuleMode::MatchAny,
            [&first, &second, &third]
        );
        let oldest = TrackingTable::new(client, "tracking")
            .oldest_pending(&SourceId::new("KB", "DS"))
            .await
            .unwrap();
        assert_eq!(oldest.map(|r| r.source_seq), Some(5));
        assert_eq!(second.num_calls(), 1);
        assert_eq!(third.num_calls(), 0);
    }

    #[tokio::test]
    async fn oldest_pending_is_none_after_the_last_empty_page() {
        let first = query_from(None, page(&[], Some("c1")));
        let second = query_from(Some("c1"), page(&[], None));
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&first, &second]);
        let oldest = TrackingTable::new(client, "tracking")
            .oldest_pending(&SourceId::new("KB", "DS"))
            .await
            .unwrap();
        assert_eq!(oldest, None);
        assert_eq!(second.num_calls(), 1);
    }
}

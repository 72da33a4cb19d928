use std::collections::{HashMap, HashSet};

use futures_util::future::join_all;
use kb_autosync_aws::metrics::{Metrics, CHANGES_RECORDED};
use kb_autosync_aws::objects::ObjectStore;
use kb_autosync_aws::sources_table::SourcesTable;
use kb_autosync_aws::sync_queue::SyncQueue;
use kb_autosync_aws::tracking_table::{PutOutcome, TrackingTable};
use kb_autosync_aws::{AwsError, TaskError};
use kb_autosync_core::change::{change_id, oversize_warning, ChangeRecord, DeleteResolution};
use kb_autosync_core::event::{parse_payload, EventError, ObjectChange, ParsedPayload};
use kb_autosync_core::numbering::{counts_per_source, new_in_batch, Numbering};
use kb_autosync_core::routing::RouteTable;
use kb_autosync_core::sync_request::SyncRequest;
use kb_autosync_core::SourceId;
use serde_json::Value;

pub struct EventProcessor {
    pub routes: RouteTable,
    pub tracking: TrackingTable,
    pub sources: SourcesTable,
    pub objects: ObjectStore,
    pub queue: SyncQueue,
    pub retention_days: u32,
    pub metrics: Metrics,
}

/// Why a message is not acknowledged: what Lambda reports for a direct invocation.
#[derive(Debug, Clone)]
struct Failure {
    error_type: &'static str,
    message: String,
}

impl From<AwsError> for Failure {
    fn from(err: AwsError) -> Self {
        let err = TaskError::from(err);
        Self {
            error_type: err.error_type,
            message: err.message,
        }
    }
}

impl From<Failure> for TaskError {
    fn from(failure: Failure) -> Self {
        TaskError {
            error_type: failure.error_type,
            message: failure.message,
        }
    }
}

/// One routable change of a message.
struct Entry {
    message: usize,
    change: ObjectChange,
    source: SourceId,
    change_id: String,
}

impl Entry {
    fn uri(&self) -> String {
        format!("s3://{}/{}", self.change.bucket, self.change.key.decoded)
    }
}

impl EventProcessor {
    /// An SQS batch gets a partial batch response: only the messages that failed are retried
    /// (and reach the DLQ after maxReceiveCount). A direct invocation fails as a whole so
    /// EventBridge retries it and its on-failure destination receives it.
    pub async fn handle(&self, payload: Value) -> Result<Value, TaskError> {
        let parsed = parse_payload(&payload).map_err(|e| {
            tracing::error!(error = %e, "rejecting event");
            TaskError::invalid_input(e.to_string())
        })?;
        match parsed {
            ParsedPayload::Direct(changes) => {
                let outcome = self.record_batch(vec![Ok(changes)]).await.pop();
                let requests = match outcome {
                    Some(Ok(requests)) => requests,
                    Some(Err(failure)) => return Err(failure.into()),
                    None => Vec::new(),
                };
                self.queue.send_all(&requests).await?;
                Ok(serde_json::json!({"recorded": requests.len()}))
            }
            ParsedPayload::Sqs(items) => {
                let (message_ids, bodies): (Vec<String>, Vec<_>) = items
                    .into_iter()
                    .map(|item| (item.message_id, item.changes))
                    .unzip();
                let outcomes = self.record_batch(bodies).await;
                let mut failures = Vec::new();
                let mut acknowledged = Vec::new();
                let mut requests: Vec<SyncRequest> = Vec::new();
                let mut seen = HashSet::new();
                for (message_id, outcome) in message_ids.into_iter().zip(outcomes) {
                    match outcome {
                        Ok(mine) => {
                            // One request per change, even when the batch repeats it.
                            requests.extend(mine.into_iter().filter(|r| seen.insert(r.to_body())));
                            acknowledged.push(message_id);
                        }
                        Err(failure) => {
                            tracing::error!(%message_id, error_type = failure.error_type, error = %failure.message, "message not processed: it will be retried, and reach the dead-letter queue if it keeps failing");
                            failures.push(message_id);
                        }
                    }
                }
                if let Err(e) = self.queue.send_all(&requests).await {
                    // The changes are recorded; redelivery records nothing new and sends again.
                    tracing::error!(error = %e, "sending sync requests failed: the batch will be retried");
                    failures.extend(acknowledged);
                }
                Ok(
                    serde_json::to_value(kb_autosync_aws::batch_failures(failures))
                        .unwrap_or_default(),
                )
            }
        }
    }

    /// Records the new changes of a batch (one result per message, in order) and returns, per
    /// message, the sync requests to send: one per routable change, redeliveries included (the
    /// first delivery may have failed before sending). A message fails when it is malformed or
    /// when any of its changes could not be recorded; its neighbours go on.
    async fn record_batch(
        &self,
        messages: Vec<Result<Vec<ObjectChange>, EventError>>,
    ) -> Vec<Result<Vec<SyncRequest>, Failure>> {
        let mut failed: Vec<Option<Failure>> = vec![None; messages.len()];
        let mut entries = Vec::new();
        for (message, changes) in messages.into_iter().enumerate() {
            match changes.map_err(|e| Failure {
                error_type: "InvalidInput",
                message: format!("malformed change event: {e}"),
            }) {
                Ok(changes) => match self.route(message, changes) {
                    Ok(routed) => entries.extend(routed),
                    Err(failure) => failed[message] = Some(failure),
                },
                Err(failure) => failed[message] = Some(failure),
            }
        }
        let failed_ids = self.record_new(&entries).await;
        let mut requests: Vec<Vec<SyncRequest>> = vec![Vec::new(); failed.len()];
        for entry in &entries {
            match failed_ids.get(&entry.change_id) {
                Some(failure) if failed[entry.message].is_none() => {
                    failed[entry.message] = Some(failure.clone())
                }
                Some(_) => {}
                None => requests[entry.message]
                    .push(SyncRequest::for_change(&entry.source, &entry.change_id)),
            }
        }
        failed
            .into_iter()
            .zip(requests)
            .map(|(failure, requests)| match failure {
                Some(failure) => Err(failure),
                None => Ok(requests),
            })
            .collect()
    }

    /// The routable changes of one message, with their data source and change id.
    fn route(&self, message: usize, changes: Vec<ObjectChange>) -> Result<Vec<Entry>, Failure> {
        let mut entries = Vec::with_capacity(changes.len());
        for change in changes {
            let uri = format!("s3://{}/{}", change.bucket, change.key.decoded);
            let Some(route) = self.routes.route(&change.bucket, &change.key.decoded) else {
                tracing::info!(object = %uri, routes = %self.routes.summary(), "no route matches the object: not recorded");
                continue;
            };
            let Some(source) = route.source() else {
                return Err(AwsError::new(
                    "Route",
                    "Unresolved",
                    format!("route {} has no data source", route.s3_uri()),
                )
                .into());
            };
            if let Some(warning) = oversize_warning(&change) {
                tracing::warn!(object = %uri, "{warning}");
            }
            entries.push(Entry {
                message,
                change_id: change_id(&change),
                change,
                source,
            });
        }
        Ok(entries)
    }

    /// Records the changes of `entries` not recorded yet, numbered from one reservation per data
    /// source, and returns the change ids that could not be recorded. Redeliveries (already in the
    /// table, or repeated within the batch) take no number: the state machine skips a job when
    /// the counter has not moved since the previous job's pin.
    async fn record_new(&self, entries: &[Entry]) -> HashMap<String, Failure> {
        if entries.is_empty() {
            return HashMap::new();
        }
        let mut new = match self.unrecorded(entries).await {
            Ok(new) => new,
            Err(failed) => return failed,
        };
        let mut failed = HashMap::new();
        let resolutions = self.resolve_version_deletes(&new, &mut failed).await;
        new.retain(|e| !failed.contains_key(&e.change_id));
        let numbering = self.reserve_numbers(&new, &mut failed).await;
        let records = self.numbered_records(new, numbering, &resolutions);
        self.write_records(&records, &mut failed).await;
        failed
    }

    /// The entries whose change is neither in the table nor earlier in the batch. When the table
    /// cannot be read, every entry fails: without knowing which are redeliveries, they would
    /// take numbers.
    async fn unrecorded<'a>(
        &self,
        entries: &'a [Entry],
    ) -> Result<Vec<&'a Entry>, HashMap<String, Failure>> {
        let ids: Vec<String> = entries.iter().map(|e| e.change_id.clone()).collect();
        let recorded = match self.tracking.recorded_ids(&ids).await {
            Ok(recorded) => recorded,
            Err(e) => {
                tracing::error!(error = %e, "reading which changes are already recorded failed");
                let failure = Failure::from(e);
                return Err(ids.into_iter().map(|id| (id, failure.clone())).collect());
            }
        };
        let mut new = Vec::new();
        for (entry, is_new) in entries.iter().zip(new_in_batch(&ids, &recorded)) {
            if is_new {
                new.push(entry);
            } else if recorded.contains(&entry.change_id) {
                tracing::info!(change_id = %entry.change_id, object = %entry.uri(), "change already recorded (redelivered event)");
            } else {
                tracing::info!(change_id = %entry.change_id, object = %entry.uri(), "change repeated within the batch: recorded once");
            }
        }
        Ok(new)
    }

    /// What a delete that names a version really is, before it takes a number: whether the
    /// object still exists decides whether it is ingested again or deleted.
    async fn resolve_version_deletes<'a>(
        &self,
        new: &[&'a Entry],
        failed: &mut HashMap<String, Failure>,
    ) -> HashMap<&'a str, DeleteResolution> {
        let mut resolutions = HashMap::new();
        for entry in new.iter().filter(|e| e.change.needs_existence_check()) {
            let change = &entry.change;
            match self
                .objects
                .exists(&change.bucket, &change.key.decoded)
                .await
            {
                Ok(exists) => {
                    let resolution = DeleteResolution::from_existence(exists);
                    tracing::info!(change_id = %entry.change_id, object = %entry.uri(), version_id = change.version_id.as_deref().unwrap_or_default(), event = %change.event_name, resolved_as = resolution.as_str(), change_type = resolution.change_type().as_str(), "{}", resolution.explanation());
                    resolutions.insert(entry.change_id.as_str(), resolution);
                }
                Err(e) => {
                    tracing::error!(change_id = %entry.change_id, object = %entry.uri(), error = %e, "asking S3 whether the object of a version delete exists failed");
                    failed.insert(entry.change_id.clone(), e.into());
                }
            }
        }
        resolutions
    }

    /// One counter write per data source for the whole batch. A crash between reserving and
    /// writing leaves numbers that no change carries, which is harmless: no change is lost,
    /// and at worst one round starts a job that finds nothing new. The changes of a data source
    /// whose reservation failed fail with it.
    async fn reserve_numbers(
        &self,
        new: &[&Entry],
        failed: &mut HashMap<String, Failure>,
    ) -> Numbering {
        let mut numbering = Numbering::new();
        for (source, count) in counts_per_source(new.iter().map(|e| &e.source)) {
            let reserved = match self.sources.reserve_change_seqs(&source, count).await {
                Ok(last) => numbering
                    .reserved(source.clone(), count, last)
                    .map_err(|e| {
                        Failure::from(AwsError::new(
                            "UpdateItem",
                            "CounterInconsistent",
                            e.to_string(),
                        ))
                    }),
                Err(e) => Err(Failure::from(e)),
            };
            if let Err(failure) = reserved {
                tracing::error!(%source, count, error = %failure.message, "reserving change numbers failed");
                for entry in new.iter().filter(|e| e.source == source) {
                    failed.insert(entry.change_id.clone(), failure.clone());
                }
            }
        }
        numbering
    }

    /// The PENDING records of the entries whose data source got numbers, in batch order, so the
    /// changes of one key are numbered in the order they came.
    fn numbered_records<'a>(
        &self,
        new: Vec<&'a Entry>,
        mut numbering: Numbering,
        resolutions: &HashMap<&str, DeleteResolution>,
    ) -> Vec<(&'a Entry, ChangeRecord)> {
        let now = chrono::Utc::now();
        let mut records = Vec::with_capacity(new.len());
        for entry in new {
            let Some(seq) = numbering.next(&entry.source) else {
                continue;
            };
            let mut record =
                ChangeRecord::pending(&entry.change, &entry.source, seq, now, self.retention_days);
            if let Some(resolution) = resolutions.get(entry.change_id.as_str()) {
                record = record.resolved(*resolution);
            }
            records.push((entry, record));
        }
        records
    }

    /// All written at once, right after the reservation: a job whose counters are pinned in
    /// between covers numbers whose changes are not written yet, so that window stays one
    /// round trip long, as it was with one number per change.
    async fn write_records(
        &self,
        records: &[(&Entry, ChangeRecord)],
        failed: &mut HashMap<String, Failure>,
    ) {
        let outcomes = join_all(records.iter().map(|(_, record)| async move {
            let outcome = self.tracking.put_pending(record).await;
            if outcome.is_ok() {
                kb_autosync_aws::crash_point!("event-processor/after-change-write");
            }
            outcome
        }))
        .await;
        for ((entry, record), outcome) in records.iter().zip(outcomes) {
            match outcome {
                Ok(PutOutcome::Recorded) => {
                    tracing::info!(change_id = %record.change_id, object = %entry.uri(), change_type = record.change_type.as_str(), source = %entry.source, source_seq = record.source_seq, "change recorded");
                    self.metrics.count(CHANGES_RECORDED, 1, &entry.source);
                }
                Ok(PutOutcome::AlreadyRecorded) => {
                    // Another delivery of the same event recorded it in the meantime.
                    tracing::info!(change_id = %record.change_id, object = %entry.uri(), "change already recorded (redelivered event)");
                }
                Err(e) => {
                    tracing::error!(change_id = %record.change_id, object = %entry.uri(), error = %e, "recording the change failed");
                    failed.insert(entry.change_id.clone(), e.into());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex};

    use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemOutput;
    use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemOutput};
    use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
    use aws_sdk_dynamodb::types::AttributeValue;
    use aws_sdk_s3::operation::head_object::{HeadObjectError, HeadObjectOutput};
    use aws_sdk_sqs::operation::send_message_batch::SendMessageBatchOutput;
    use aws_smithy_mocks::{mock, mock_client, MockResponse, Rule, RuleMode};
    use aws_smithy_types::error::ErrorMetadata;
    use kb_autosync_aws::test_util::put_condition_failed;
    use serde_json::json;

    use super::*;

    fn eventbridge_event(key: &str, etag: &str) -> Value {
        json!({
            "version": "0", "id": "same-id-every-time", "detail-type": "Object Created", "source": "aws.s3",
            "account": "123456789012", "time": "2024-01-01T00:00:00Z", "region": "us-east-1", "resources": [],
            "detail": {"version": "0", "bucket": {"name": "docs"}, "object": {"key": key, "size": 3, "eTag": etag, "sequencer": "00"}, "reason": "PutObject"}
        })
    }

    fn deleted_event(key: &str, deletion_type: &str, version_id: &str) -> Value {
        let mut event = eventbridge_event(key, "e1");
        event["detail-type"] = json!("Object Deleted");
        event["detail"]["deletion-type"] = json!(deletion_type);
        event["detail"]["object"]["version-id"] = json!(version_id);
        event["detail"]["reason"] = json!("DeleteObject");
        event
    }

    fn notification(event_name: &str, key: &str, size: i64) -> Value {
        json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2024-05-01T12:00:00.000Z", "eventName": event_name,
            "userIdentity": {"principalId": "AWS:EXAMPLE"}, "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8"},
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "kb-sync",
                   "bucket": {"name": "docs", "ownerIdentity": {"principalId": "A"}, "arn": "arn:aws:s3:::docs"},
                   "object": {"key": key, "size": size, "eTag": "d41d8cd98f00b204e9800998ecf8427e", "sequencer": "0055AED6DCD90281E5"}}
        }]})
    }

    fn sns_envelope(message: &Value) -> Value {
        json!({
            "Type": "Notification", "MessageId": "d3a7d5a9-2f2e-5b4e-9a3c-0c6b1f0f9e11",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:bucket-events", "Subject": "Amazon S3 Notification",
            "Message": message.to_string(), "Timestamp": "2024-05-01T12:00:00.123Z", "SignatureVersion": "1",
            "Signature": "EXAMPLE==", "SigningCertURL": "https://sns.us-east-1.amazonaws.com/cert.pem",
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"
        })
    }

    fn sqs_batch(bodies: Vec<String>) -> Value {
        let records: Vec<Value> = bodies
            .into_iter()
            .enumerate()
            .map(|(i, body)| json!({"messageId": format!("m{i}"), "receiptHandle": "r", "body": body, "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:1:q", "awsRegion": "us-east-1"}))
            .collect();
        json!({"Records": records})
    }

    /// What HeadObject answers.
    #[derive(Clone, Copy)]
    enum Head {
        Exists,
        Missing,
        Denied,
    }

    /// A small model of the tables and queue behind the mocks, recording every call.
    #[derive(Default)]
    struct World {
        /// change ids in the tracking table
        recorded: Mutex<HashSet<String>>,
        change_seq: AtomicU64,
        /// `:n` of every counter write
        reservations: Mutex<Vec<u64>>,
        /// (key, source_seq, item) of every successful put, in order
        puts: Mutex<Vec<HashMap<String, AttributeValue>>>,
        batch_gets: AtomicU64,
        /// bodies of the sync requests sent
        sent: Mutex<Vec<String>>,
        /// puts of this key fail with a server error
        failing_key: Mutex<Option<String>>,
    }

    impl World {
        fn put_keys_and_seqs(&self) -> Vec<(String, u64)> {
            self.puts
                .lock()
                .unwrap()
                .iter()
                .map(|item| {
                    (
                        item["key"].as_s().unwrap().clone(),
                        item["source_seq"].as_n().unwrap().parse().unwrap(),
                    )
                })
                .collect()
        }
    }

    struct Mocks {
        head: Rule,
        send: Rule,
    }

    fn processor(head: Head) -> (EventProcessor, Arc<World>, Mocks) {
        let world = Arc::new(World::default());
        let w = world.clone();
        let batch_get =
            mock!(aws_sdk_dynamodb::Client::batch_get_item).then_compute_output(move |r| {
                w.batch_gets.fetch_add(1, Ordering::SeqCst);
                let request = &r.request_items().unwrap()["tracking"];
                assert_eq!(request.consistent_read(), Some(true));
                let recorded = w.recorded.lock().unwrap();
                let found = request
                    .keys()
                    .iter()
                    .filter(|k| recorded.contains(k["change_id"].as_s().unwrap()))
                    .cloned()
                    .collect();
                BatchGetItemOutput::builder()
                    .responses("tracking", found)
                    .build()
            });
        let w = world.clone();
        let reserve = mock!(aws_sdk_dynamodb::Client::update_item)
            .match_requests(|r| {
                r.update_expression()
                    .is_some_and(|e| e.starts_with("ADD change_seq :n"))
            })
            .then_compute_output(move |r| {
                let n: u64 = r.expression_attribute_values().unwrap()[":n"]
                    .as_n()
                    .unwrap()
                    .parse()
                    .unwrap();
                w.reservations.lock().unwrap().push(n);
                let last = w.change_seq.fetch_add(n, Ordering::SeqCst) + n;
                UpdateItemOutput::builder()
                    .attributes("change_seq", AttributeValue::N(last.to_string()))
                    .build()
            });
        let w = world.clone();
        let put = mock!(aws_sdk_dynamodb::Client::put_item)
            .match_requests(|r| r.condition_expression() == Some("attribute_not_exists(change_id)"))
            .then_compute_response(move |r| {
                let item = r.item().unwrap().clone();
                let id = item["change_id"].as_s().unwrap().clone();
                if w.failing_key.lock().unwrap().as_deref()
                    == item["key"].as_s().ok().map(String::as_str)
                {
                    return MockResponse::Error(PutItemError::InternalServerError(
                        aws_sdk_dynamodb::types::error::InternalServerError::builder()
                            .message("boom")
                            .meta(
                                ErrorMetadata::builder()
                                    .code("InternalServerError")
                                    .message("boom")
                                    .build(),
                            )
                            .build(),
                    ));
                }
                if !w.recorded.lock().unwrap().insert(id) {
                    return MockResponse::Error(put_condition_failed());
                }
                w.puts.lock().unwrap().push(item);
                MockResponse::Output(PutItemOutput::builder().build())
            });
        let head = match head {
            Head::Exists => mock!(aws_sdk_s3::Client::head_object)
                .match_requests(|r| r.version_id().is_none())
                .then_output(|| HeadObjectOutput::builder().build()),
            Head::Missing => mock!(aws_sdk_s3::Client::head_object)
                .match_requests(|r| r.version_id().is_none())
                .then_error(|| {
                    HeadObjectError::NotFound(aws_sdk_s3::types::error::NotFound::builder().build())
                }),
            Head::Denied => mock!(aws_sdk_s3::Client::head_object)
                .sequence()
                .http_status(403, None)
                .repeatedly()
                .build(),
        };
        let w = world.clone();
        let send = mock!(aws_sdk_sqs::Client::send_message_batch)
            .match_requests(|r| {
                r.entries().iter().all(|e| {
                    e.delay_seconds() == Some(5) && e.message_body().contains("\"kind\":\"sync\"")
                })
            })
            .then_compute_output(move |r| {
                for entry in r.entries() {
                    w.sent
                        .lock()
                        .unwrap()
                        .push(entry.message_body().to_string());
                }
                SendMessageBatchOutput::builder()
                    .set_successful(Some(vec![]))
                    .set_failed(Some(vec![]))
                    .build()
                    .unwrap()
            });
        let dynamo = mock_client!(
            aws_sdk_dynamodb,
            RuleMode::MatchAny,
            [&batch_get, &reserve, &put]
        );
        let s3 = mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&head]);
        let sqs = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, [&send]);
        let processor = EventProcessor {
            routes: RouteTable::from_json(r#"[{"bucket":"docs","prefix":"kb/","knowledge_base_id":"KB","data_source_id":"DS"},{"bucket":"docs","prefix":"other/","knowledge_base_id":"KB","data_source_id":"DS2"}]"#).unwrap(),
            tracking: TrackingTable::new(dynamo.clone(), "tracking"),
            sources: SourcesTable::new(dynamo, "sources"),
            objects: ObjectStore::new(s3),
            queue: SyncQueue::new(sqs, "https://sqs/q", 5),
            retention_days: 1,
            metrics: Metrics::new("Test", "test-stack"),
        };
        (processor, world, Mocks { head, send })
    }

    fn failures(response: &Value) -> Vec<String> {
        response["batchItemFailures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["itemIdentifier"].as_str().unwrap().to_string())
            .collect()
    }

    #[tokio::test]
    async fn records_each_routable_change_and_sends_one_request_per_change() {
        let (processor, world, mocks) = processor(Head::Exists);
        let batch = sqs_batch(vec![
            eventbridge_event("kb/a.txt", "e1").to_string(),
            eventbridge_event("kb/a.txt", "e2").to_string(),
            eventbridge_event("elsewhere/b.txt", "e3").to_string(),
        ]);
        let response = processor.handle(batch).await.unwrap();
        assert_eq!(failures(&response), Vec::<String>::new());
        assert_eq!(
            world.put_keys_and_seqs(),
            [("kb/a.txt".to_string(), 1), ("kb/a.txt".to_string(), 2)],
            "two uploads of one key with a reused event id are two changes, numbered in batch order; the unroutable key none"
        );
        assert_eq!(
            mocks.send.num_calls(),
            1,
            "sync requests go out in one batch"
        );
        assert_eq!(world.sent.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_batch_of_ten_new_changes_takes_its_numbers_with_one_counter_write() {
        let (processor, world, _) = processor(Head::Exists);
        world.change_seq.store(40, Ordering::SeqCst);
        let keys = [
            "kb/a.txt", "kb/b.txt", "kb/a.txt", "kb/c.txt", "kb/a.txt", "kb/d.txt", "kb/e.txt",
            "kb/a.txt", "kb/f.txt", "kb/g.txt",
        ];
        let bodies = keys
            .iter()
            .enumerate()
            .map(|(i, key)| eventbridge_event(key, &format!("e{i}")).to_string())
            .collect();
        let response = processor.handle(sqs_batch(bodies)).await.unwrap();
        assert_eq!(failures(&response), Vec::<String>::new());
        assert_eq!(
            *world.reservations.lock().unwrap(),
            [10],
            "one ADD change_seq :10 for the batch"
        );
        assert_eq!(
            world.batch_gets.load(Ordering::SeqCst),
            1,
            "one read for the batch"
        );
        let puts = world.put_keys_and_seqs();
        assert_eq!(
            puts.iter().map(|(_, seq)| *seq).collect::<Vec<_>>(),
            (41..=50).collect::<Vec<_>>(),
            "numbered N-n+1..=N in batch order"
        );
        assert_eq!(
            puts.iter().map(|(key, _)| key.as_str()).collect::<Vec<_>>(),
            keys,
            "the changes of kb/a.txt keep the order they came in"
        );
    }

    #[tokio::test]
    async fn each_data_source_reserves_once_per_batch() {
        let (processor, world, _) = processor(Head::Exists);
        let bodies = vec![
            eventbridge_event("kb/a.txt", "e1").to_string(),
            eventbridge_event("other/a.txt", "e2").to_string(),
            eventbridge_event("kb/b.txt", "e3").to_string(),
        ];
        processor.handle(sqs_batch(bodies)).await.unwrap();
        let mut reservations = world.reservations.lock().unwrap().clone();
        reservations.sort();
        assert_eq!(reservations, [1, 2]);
    }

    #[tokio::test]
    async fn a_redelivered_event_takes_no_number_but_still_requests_a_sync() {
        let (processor, world, _) = processor(Head::Exists);
        let event = eventbridge_event("kb/a.txt", "e1");
        processor
            .handle(sqs_batch(vec![event.to_string()]))
            .await
            .unwrap();
        assert_eq!(world.change_seq.load(Ordering::SeqCst), 1);

        let response = processor
            .handle(sqs_batch(vec![event.to_string()]))
            .await
            .unwrap();
        assert_eq!(failures(&response), Vec::<String>::new());
        assert_eq!(
            world.change_seq.load(Ordering::SeqCst),
            1,
            "a redelivery must not move change_seq: start-sync skips the job only when it has not moved"
        );
        assert_eq!(
            *world.reservations.lock().unwrap(),
            [1],
            "no counter write at all"
        );
        assert_eq!(world.puts.lock().unwrap().len(), 1);
        assert_eq!(
            world.sent.lock().unwrap().len(),
            2,
            "the redelivery still sends its request"
        );
    }

    #[tokio::test]
    async fn an_event_repeated_within_a_batch_is_numbered_and_requested_once() {
        let (processor, world, _) = processor(Head::Exists);
        let event = eventbridge_event("kb/a.txt", "e1").to_string();
        let response = processor
            .handle(sqs_batch(vec![event.clone(), event]))
            .await
            .unwrap();
        assert_eq!(
            failures(&response),
            Vec::<String>::new(),
            "both deliveries are acknowledged"
        );
        assert_eq!(*world.reservations.lock().unwrap(), [1]);
        assert_eq!(world.puts.lock().unwrap().len(), 1);
        assert_eq!(world.sent.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_failed_write_fails_every_message_carrying_the_change_and_only_those() {
        let (processor, world, _) = processor(Head::Exists);
        *world.failing_key.lock().unwrap() = Some("kb/bad.txt".into());
        let bad = eventbridge_event("kb/bad.txt", "e1").to_string();
        let response = processor
            .handle(sqs_batch(vec![
                bad.clone(),
                eventbridge_event("kb/good.txt", "e2").to_string(),
                bad,
            ]))
            .await
            .unwrap();
        assert_eq!(failures(&response), ["m0", "m2"]);
        assert_eq!(
            world.put_keys_and_seqs(),
            [("kb/good.txt".to_string(), 2)],
            "numbers reserved for a change that failed are skipped"
        );
        assert_eq!(world.sent.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_malformed_message_fails_alone() {
        let (processor, world, _) = processor(Head::Exists);
        let batch = sqs_batch(vec![
            "{\"detail-type\": \"Object Created\"}".into(),
            eventbridge_event("kb/a.txt", "e1").to_string(),
        ]);
        let response = processor.handle(batch).await.unwrap();
        assert_eq!(failures(&response), ["m0"]);
        assert_eq!(
            world.puts.lock().unwrap().len(),
            1,
            "the good neighbour is recorded"
        );
    }

    #[tokio::test]
    async fn a_direct_invocation_with_a_malformed_event_fails_so_it_is_retried_and_dead_lettered() {
        let (processor, _, _) = processor(Head::Exists);
        let err = processor
            .handle(json!({"hello": "world"}))
            .await
            .unwrap_err();
        assert_eq!(err.error_type, "InvalidInput");
        assert!(
            err.message.contains("unrecognised event shape"),
            "{}",
            err.message
        );
    }

    #[tokio::test]
    async fn a_direct_invocation_whose_write_fails_fails() {
        let (processor, world, _) = processor(Head::Exists);
        *world.failing_key.lock().unwrap() = Some("kb/a.txt".into());
        let err = processor
            .handle(eventbridge_event("kb/a.txt", "e1"))
            .await
            .unwrap_err();
        assert!(
            err.message.contains("InternalServerError"),
            "{}",
            err.message
        );
        assert!(world.sent.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn s3_notifications_through_sns_are_recorded_raw_or_enveloped() {
        let (processor, world, _) = processor(Head::Exists);
        let put = notification("ObjectCreated:Put", "kb/annual+report.pdf", 10);
        let mut other = notification("ObjectCreated:Put", "kb/b.txt", 10);
        other["Records"][0]["s3"]["object"]["sequencer"] = json!("0055AED6DCD90281E6");
        let response = processor
            .handle(sqs_batch(vec![
                sns_envelope(&put).to_string(),
                other.to_string(),
            ]))
            .await
            .unwrap();
        assert_eq!(
            failures(&response),
            Vec::<String>::new(),
            "an SNS envelope is not malformed"
        );
        assert_eq!(
            world.put_keys_and_seqs(),
            [
                ("kb/annual report.pdf".to_string(), 1),
                ("kb/b.txt".to_string(), 2)
            ]
        );
    }

    #[tokio::test]
    async fn s3_test_events_are_acknowledged_and_not_recorded() {
        let (processor, world, _) = processor(Head::Exists);
        let test_event = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2024-05-01T12:00:00.000Z",
            "Bucket": "docs", "RequestId": "5582815E1AEA5ADF", "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR"});
        let response = processor
            .handle(sqs_batch(vec![
                test_event.to_string(),
                sns_envelope(&test_event).to_string(),
            ]))
            .await
            .unwrap();
        assert_eq!(failures(&response), Vec::<String>::new());
        assert!(world.puts.lock().unwrap().is_empty());
        assert_eq!(world.batch_gets.load(Ordering::SeqCst), 0);
        assert!(processor.handle(test_event).await.is_ok(), "directly too");
    }

    #[tokio::test]
    async fn folder_placeholders_are_not_recorded() {
        let (processor, world, _) = processor(Head::Exists);
        let mut folder = eventbridge_event("kb/reports/", "d41d8cd98f00b204e9800998ecf8427e");
        folder["detail"]["object"]["size"] = json!(0);
        let response = processor
            .handle(sqs_batch(vec![
                folder.to_string(),
                notification("ObjectRemoved:Delete", "kb/reports/", 0).to_string(),
                notification("ObjectCreated:Put", "kb/reports/", 0).to_string(),
            ]))
            .await
            .unwrap();
        assert_eq!(failures(&response), Vec::<String>::new());
        assert!(world.puts.lock().unwrap().is_empty());
        assert!(world.reservations.lock().unwrap().is_empty());
        assert!(world.sent.lock().unwrap().is_empty(), "no job for a folder");
    }

    #[tokio::test]
    async fn a_version_delete_of_an_object_that_still_exists_is_recorded_as_a_create() {
        let (processor, world, mocks) = processor(Head::Exists);
        let mut notification_delete = notification("ObjectRemoved:Delete", "kb/b.txt", 0);
        notification_delete["Records"][0]["s3"]["object"]["versionId"] =
            json!("3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY");
        processor
            .handle(sqs_batch(vec![
                deleted_event(
                    "kb/a.txt",
                    "Permanently Deleted",
                    "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
                )
                .to_string(),
                notification_delete.to_string(),
            ]))
            .await
            .unwrap();
        assert_eq!(mocks.head.num_calls(), 2);
        let puts = world.puts.lock().unwrap();
        for item in puts.iter() {
            assert_eq!(item["change_type"].as_s().unwrap(), "create", "{item:?}");
            assert_eq!(item["resolved_as"].as_s().unwrap(), "object_exists");
        }
        assert_eq!(puts.len(), 2);
    }

    #[tokio::test]
    async fn a_version_delete_of_an_object_that_is_gone_is_recorded_as_a_delete() {
        let (processor, world, mocks) = processor(Head::Missing);
        processor
            .handle(sqs_batch(vec![deleted_event(
                "kb/a.txt",
                "Permanently Deleted",
                "v1",
            )
            .to_string()]))
            .await
            .unwrap();
        assert_eq!(mocks.head.num_calls(), 1);
        let puts = world.puts.lock().unwrap();
        assert_eq!(puts[0]["change_type"].as_s().unwrap(), "delete");
        assert_eq!(puts[0]["resolved_as"].as_s().unwrap(), "object_absent");
    }

    #[tokio::test]
    async fn delete_markers_and_unversioned_deletes_ask_s3_nothing() {
        let (processor, world, mocks) = processor(Head::Exists);
        processor
            .handle(sqs_batch(vec![
                deleted_event("kb/a.txt", "Delete Marker Created", "v2").to_string(),
                deleted_event("kb/b.txt", "Permanently Deleted", "null").to_string(),
                notification("ObjectRemoved:Delete", "kb/c.txt", 0).to_string(),
            ]))
            .await
            .unwrap();
        assert_eq!(mocks.head.num_calls(), 0);
        let puts = world.puts.lock().unwrap();
        assert_eq!(puts.len(), 3);
        for item in puts.iter() {
            assert_eq!(item["change_type"].as_s().unwrap(), "delete");
            assert!(!item.contains_key("resolved_as"));
        }
    }

    #[tokio::test]
    async fn a_redelivered_version_delete_asks_s3_nothing() {
        let (processor, world, mocks) = processor(Head::Exists);
        let event = deleted_event("kb/a.txt", "Permanently Deleted", "v1").to_string();
        processor
            .handle(sqs_batch(vec![event.clone()]))
            .await
            .unwrap();
        processor.handle(sqs_batch(vec![event])).await.unwrap();
        assert_eq!(mocks.head.num_calls(), 1);
        assert_eq!(world.puts.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_version_delete_s3_will_not_answer_fails_alone_and_takes_no_number() {
        let (processor, world, _) = processor(Head::Denied);
        let response = processor
            .handle(sqs_batch(vec![
                deleted_event("kb/a.txt", "Permanently Deleted", "v1").to_string(),
                eventbridge_event("kb/b.txt", "e2").to_string(),
            ]))
            .await
            .unwrap();
        assert_eq!(failures(&response), ["m0"]);
        assert_eq!(world.put_keys_and_seqs(), [("kb/b.txt".to_string(), 1)]);
        assert_eq!(*world.reservations.lock().unwrap(), [1]);
    }
}

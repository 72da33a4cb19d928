use kb_autosync_aws::metrics::{Metrics, CHANGES_RECORDED};
use kb_autosync_aws::sources_table::SourcesTable;
use kb_autosync_aws::sync_queue::SyncQueue;
use kb_autosync_aws::tracking_table::{PutOutcome, TrackingTable};
use kb_autosync_aws::{AwsError, TaskError};
use kb_autosync_core::change::{oversize_warning, ChangeRecord};
use kb_autosync_core::event::{parse_payload, ObjectChange, ParsedPayload};
use kb_autosync_core::routing::RouteTable;
use kb_autosync_core::sync_request::SyncRequest;
use serde_json::Value;

pub struct EventProcessor {
    pub routes: RouteTable,
    pub tracking: TrackingTable,
    pub sources: SourcesTable,
    pub queue: SyncQueue,
    pub retention_days: u32,
    pub metrics: Metrics,
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
                let requests = self.record_all(&changes).await?;
                self.queue.send_all(&requests).await?;
                Ok(serde_json::json!({"recorded": requests.len()}))
            }
            ParsedPayload::Sqs(items) => {
                let mut failures = Vec::new();
                let mut pending: Vec<(String, Vec<SyncRequest>)> = Vec::new();
                for item in items {
                    let changes = match item.changes {
                        Ok(changes) => changes,
                        Err(e) => {
                            tracing::error!(message_id = %item.message_id, error = %e, "malformed change event: leaving it for the dead-letter queue");
                            failures.push(item.message_id);
                            continue;
                        }
                    };
                    match self.record_all(&changes).await {
                        Ok(requests) => pending.push((item.message_id, requests)),
                        Err(e) => {
                            tracing::error!(message_id = %item.message_id, error = %e, "recording the change failed: the message will be retried");
                            failures.push(item.message_id);
                        }
                    }
                }
                let requests: Vec<SyncRequest> = pending
                    .iter()
                    .flat_map(|(_, r)| r.iter().cloned())
                    .collect();
                if let Err(e) = self.queue.send_all(&requests).await {
                    // The changes are recorded; redelivery records nothing new and sends again.
                    tracing::error!(error = %e, "sending sync requests failed: the batch will be retried");
                    failures.extend(pending.into_iter().map(|(id, _)| id));
                }
                Ok(
                    serde_json::to_value(kb_autosync_aws::batch_failures(failures))
                        .unwrap_or_default(),
                )
            }
        }
    }

    /// Records each routable change once and returns the sync requests to send.
    async fn record_all(&self, changes: &[ObjectChange]) -> Result<Vec<SyncRequest>, AwsError> {
        let mut requests = Vec::with_capacity(changes.len());
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
                ));
            };
            if let Some(warning) = oversize_warning(change) {
                tracing::warn!(object = %uri, "{warning}");
            }
            let seq = self.sources.next_change_seq(&source).await?;
            let record = ChangeRecord::pending(
                change,
                &source,
                seq,
                chrono::Utc::now(),
                self.retention_days,
            );
            let outcome = self.tracking.put_pending(&record).await?;
            kb_autosync_aws::crash_point!("event-processor/after-change-write");
            match outcome {
                PutOutcome::Recorded => {
                    tracing::info!(change_id = %record.change_id, object = %uri, change_type = record.change_type.as_str(), %source, source_seq = seq, "change recorded");
                    self.metrics.count(CHANGES_RECORDED, 1, &source);
                }
                PutOutcome::AlreadyRecorded => {
                    tracing::info!(change_id = %record.change_id, object = %uri, "change already recorded (redelivered event)");
                }
            }
            // Sent for redeliveries too: the first delivery may have failed before sending.
            requests.push(SyncRequest::for_change(&source, &record.change_id));
        }
        Ok(requests)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use aws_sdk_dynamodb::operation::put_item::{PutItemError, PutItemOutput};
    use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
    use aws_sdk_dynamodb::types::AttributeValue;
    use aws_sdk_sqs::operation::send_message_batch::SendMessageBatchOutput;
    use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
    use aws_smithy_types::error::ErrorMetadata;
    use serde_json::json;

    use super::*;

    fn eventbridge_event(key: &str, etag: &str) -> Value {
        json!({
            "version": "0", "id": "same-id-every-time", "detail-type": "Object Created", "source": "aws.s3",
            "account": "123456789012", "time": "2024-01-01T00:00:00Z", "region": "us-east-1", "resources": [],
            "detail": {"version": "0", "bucket": {"name": "docs"}, "object": {"key": key, "size": 3, "eTag": etag, "sequencer": "00"}, "reason": "PutObject"}
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

    struct Mocks {
        seq: Rule,
        put: Rule,
        send: Rule,
    }

    fn processor(put_succeeds: bool) -> (EventProcessor, Mocks) {
        let seq = mock!(aws_sdk_dynamodb::Client::update_item)
            .match_requests(|r| {
                r.update_expression()
                    .is_some_and(|e| e.starts_with("ADD change_seq"))
            })
            .then_output(|| {
                UpdateItemOutput::builder()
                    .set_attributes(Some(HashMap::from([(
                        "change_seq".to_string(),
                        AttributeValue::N("7".into()),
                    )])))
                    .build()
            });
        let put = mock!(aws_sdk_dynamodb::Client::put_item).match_requests(|r| {
            r.condition_expression() == Some("attribute_not_exists(change_id)")
        });
        let put = if put_succeeds {
            put.then_output(|| PutItemOutput::builder().build())
        } else {
            put.then_error(|| {
                PutItemError::ConditionalCheckFailedException(
                    aws_sdk_dynamodb::types::error::ConditionalCheckFailedException::builder()
                        .meta(
                            ErrorMetadata::builder()
                                .code("ConditionalCheckFailedException")
                                .build(),
                        )
                        .build(),
                )
            })
        };
        let send = mock!(aws_sdk_sqs::Client::send_message_batch)
            .match_requests(|r| {
                r.entries().iter().all(|e| {
                    e.delay_seconds() == Some(5) && e.message_body().contains("\"kind\":\"sync\"")
                })
            })
            .then_output(|| {
                SendMessageBatchOutput::builder()
                    .set_successful(Some(vec![]))
                    .set_failed(Some(vec![]))
                    .build()
                    .unwrap()
            });
        let dynamo = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&seq, &put]);
        let sqs = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, [&send]);
        let processor = EventProcessor {
            routes: RouteTable::from_json(r#"[{"bucket":"docs","prefix":"kb/","knowledge_base_id":"KB","data_source_id":"DS"}]"#).unwrap(),
            tracking: TrackingTable::new(dynamo.clone(), "tracking"),
            sources: SourcesTable::new(dynamo, "sources"),
            queue: SyncQueue::new(sqs, "https://sqs/q", 5),
            retention_days: 1,
            metrics: Metrics::new("Test"),
        };
        (processor, Mocks { seq, put, send })
    }

    #[tokio::test]
    async fn records_each_routable_change_and_sends_one_request_per_change() {
        let (processor, mocks) = processor(true);
        let batch = sqs_batch(vec![
            eventbridge_event("kb/a.txt", "e1").to_string(),
            eventbridge_event("kb/a.txt", "e2").to_string(),
            eventbridge_event("elsewhere/b.txt", "e3").to_string(),
        ]);
        let response = processor.handle(batch).await.unwrap();
        assert_eq!(response["batchItemFailures"], json!([]));
        assert_eq!(mocks.put.num_calls(), 2, "two uploads of one key with a reused event id are two changes; the unroutable key none");
        assert_eq!(mocks.seq.num_calls(), 2);
        assert_eq!(
            mocks.send.num_calls(),
            1,
            "sync requests go out in one batch"
        );
    }

    #[tokio::test]
    async fn a_redelivered_event_records_nothing_new_but_still_requests_a_sync() {
        let (processor, mocks) = processor(false);
        let response = processor
            .handle(sqs_batch(vec![
                eventbridge_event("kb/a.txt", "e1").to_string()
            ]))
            .await
            .unwrap();
        assert_eq!(response["batchItemFailures"], json!([]));
        assert_eq!(mocks.put.num_calls(), 1);
        assert_eq!(mocks.send.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_malformed_message_fails_alone() {
        let (processor, mocks) = processor(true);
        let batch = sqs_batch(vec![
            "{\"detail-type\": \"Object Created\"}".into(),
            eventbridge_event("kb/a.txt", "e1").to_string(),
        ]);
        let response = processor.handle(batch).await.unwrap();
        assert_eq!(
            response["batchItemFailures"],
            json!([{"itemIdentifier": "m0"}])
        );
        assert_eq!(mocks.put.num_calls(), 1, "the good neighbour is recorded");
    }

    #[tokio::test]
    async fn a_direct_invocation_with_a_malformed_event_fails_so_it_is_retried_and_dead_lettered() {
        let (processor, _) = processor(true);
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
}

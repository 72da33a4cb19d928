//! Reads what the service wrote: the tracking and metadata tables, the notifications a user
//! would get by mail, the DLQs, S3 and the state machine's executions.

use kb_autosync_core::change::ChangeRecord;
use serde_json::Value;

use crate::LocalStack;

/// An SNS notification as it reached the subscribed queue.
#[derive(Debug, Clone)]
pub struct Notification {
    pub subject: String,
    pub body: Value,
}

pub async fn changes(stack: &LocalStack) -> Result<Vec<ChangeRecord>, String> {
    let mut records = Vec::new();
    let mut start = None;
    loop {
        let page = stack
            .dynamodb()
            .scan()
            .table_name(&stack.info.tracking_table)
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| format!("scan tracking table: {e:?}"))?;
        for item in page.items.unwrap_or_default() {
            records.push(serde_dynamo::from_item(item).map_err(|e| format!("tracking item: {e}"))?);
        }
        match page.last_evaluated_key {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => break,
        }
    }
    records.sort_by(|a: &ChangeRecord, b| a.timestamp.cmp(&b.timestamp));
    Ok(records)
}

pub async fn job_records(stack: &LocalStack) -> Result<Vec<Value>, String> {
    let page = stack
        .dynamodb()
        .scan()
        .table_name(&stack.info.metadata_table)
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| format!("scan metadata table: {e:?}"))?;
    page.items
        .unwrap_or_default()
        .into_iter()
        .map(|item| serde_dynamo::from_item(item).map_err(|e| format!("metadata item: {e}")))
        .collect()
}

/// Receives (and deletes) the notifications that arrived since the last call.
pub async fn take_notifications(stack: &LocalStack) -> Result<Vec<Notification>, String> {
    let sqs = stack.sqs();
    let mut notifications = Vec::new();
    loop {
        let out = sqs
            .receive_message()
            .queue_url(&stack.info.notifications_queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(0)
            .send()
            .await
            .map_err(|e| format!("receive notifications: {e:?}"))?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(notifications);
        }
        for message in messages {
            let body = message.body.clone().unwrap_or_default();
            let parsed: Value = serde_json::from_str(&body).unwrap_or(Value::String(body.clone()));
            // Raw delivery carries the message alone; an SNS envelope carries the subject too.
            let (subject, body) = if parsed["Type"] == "Notification" {
                let inner = parsed["Message"].as_str().unwrap_or_default();
                (
                    parsed["Subject"].as_str().unwrap_or_default().to_string(),
                    serde_json::from_str(inner).unwrap_or(Value::String(inner.to_string())),
                )
            } else {
                // Raw delivery drops the subject: rebuilt from the body's kind.
                let kind = if parsed.get("data_sources").is_some() {
                    "Drift"
                } else {
                    "Sync Job"
                };
                (
                    format!(
                        "Bedrock KB {kind} {}",
                        parsed["status"].as_str().unwrap_or("?")
                    ),
                    parsed,
                )
            };
            notifications.push(Notification { subject, body });
            if let Some(handle) = message.receipt_handle {
                let _ = sqs
                    .delete_message()
                    .queue_url(&stack.info.notifications_queue_url)
                    .receipt_handle(handle)
                    .send()
                    .await;
            }
        }
    }
}

/// Bodies of the messages in a queue, without consuming them.
pub async fn peek_queue(stack: &LocalStack, queue_url: &str) -> Result<Vec<String>, String> {
    let out = stack
        .sqs()
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .wait_time_seconds(0)
        .send()
        .await
        .map_err(|e| format!("receive from {queue_url}: {e:?}"))?;
    Ok(out
        .messages
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.body)
        .collect())
}

/// (key, ETag without quotes) of every object under `prefix` in the stack's (first) bucket.
pub async fn s3_objects(stack: &LocalStack, prefix: &str) -> Result<Vec<(String, String)>, String> {
    s3_objects_in(stack, &stack.info.bucket, prefix).await
}

/// (key, ETag without quotes) of every object under `prefix` in `bucket`.
pub async fn s3_objects_in(
    stack: &LocalStack,
    bucket: &str,
    prefix: &str,
) -> Result<Vec<(String, String)>, String> {
    let mut objects = Vec::new();
    let mut token = None;
    loop {
        let out = stack
            .s3()
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .set_continuation_token(token.take())
            .send()
            .await
            .map_err(|e| format!("list s3://{bucket}/{prefix}: {e:?}"))?;
        for object in out.contents.unwrap_or_default() {
            objects.push((
                object.key.unwrap_or_default(),
                object
                    .e_tag
                    .unwrap_or_default()
                    .trim_matches('"')
                    .to_string(),
            ));
        }
        match out.next_continuation_token {
            Some(t) if out.is_truncated == Some(true) => token = Some(t),
            _ => break,
        }
    }
    objects.sort();
    Ok(objects)
}

pub async fn running_executions(stack: &LocalStack) -> Result<usize, String> {
    let out = stack
        .sfn()
        .list_executions()
        .state_machine_arn(&stack.info.state_machine_arn)
        .status_filter(aws_sdk_sfn::types::ExecutionStatus::Running)
        .send()
        .await
        .map_err(|e| format!("list executions: {e:?}"))?;
    Ok(out.executions.len())
}

pub async fn put_object(stack: &LocalStack, key: &str, body: &[u8]) -> Result<(), String> {
    put_object_in(stack, &stack.info.bucket, key, body).await
}

/// Uploads to `bucket`, one of the stack's buckets when it has several routes.
pub async fn put_object_in(
    stack: &LocalStack,
    bucket: &str,
    key: &str,
    body: &[u8],
) -> Result<(), String> {
    stack
        .s3()
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(body.to_vec().into())
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("put s3://{bucket}/{key}: {e:?}"))
}

pub async fn delete_object(stack: &LocalStack, key: &str) -> Result<(), String> {
    stack
        .s3()
        .delete_object()
        .bucket(&stack.info.bucket)
        .key(key)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| format!("delete s3://{}/{key}: {e:?}", stack.info.bucket))
}

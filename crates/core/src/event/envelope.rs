//! Recognises which shape a Lambda payload has and parses it. An SQS batch is parsed message by
//! message, so one malformed message is reported on its own and never fails its neighbours.

use aws_lambda_events::sqs::SqsEvent;
use serde_json::Value;

use super::{eventbridge, s3_notification, sns, ObjectChange};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EventError {
    #[error("malformed {shape}: {reason}")]
    Malformed { shape: &'static str, reason: String },
    #[error("SQS message body is not JSON: {reason} (body starts with {preview:?})")]
    BodyNotJson { reason: String, preview: String },
    #[error("unrecognised event shape: expected an EventBridge S3 event (with \"detail-type\"), S3 notification records (\"Records\" with \"eventSource\": \"aws:s3\"), an SNS notification carrying either, or an SQS batch of these; got {found}")]
    UnknownShape { found: String },
    #[error("in SNS message {message_id} from {topic_arn}: {inner}")]
    InSnsMessage {
        message_id: String,
        topic_arn: String,
        inner: Box<EventError>,
    },
}

/// A payload after shape detection.
#[derive(Debug)]
pub enum ParsedPayload {
    /// Invoked directly with one event (EventBridge target, S3 notification to Lambda).
    Direct(Vec<ObjectChange>),
    /// An SQS batch: one result per message, in order.
    Sqs(Vec<SqsItem>),
}

#[derive(Debug)]
pub struct SqsItem {
    pub message_id: String,
    pub changes: Result<Vec<ObjectChange>, EventError>,
}

/// Parses whatever the function was invoked with.
pub fn parse_payload(value: &Value) -> Result<ParsedPayload, EventError> {
    if is_sqs_batch(value) {
        let batch: SqsEvent =
            serde_json::from_value(value.clone()).map_err(|e| EventError::Malformed {
                shape: "SQS event",
                reason: e.to_string(),
            })?;
        let items = batch
            .records
            .into_iter()
            .enumerate()
            .map(|(index, message)| SqsItem {
                // An empty id is as useless in a partial batch response as a missing one.
                message_id: message
                    .message_id
                    .filter(|id| !id.is_empty())
                    .unwrap_or_else(|| format!("missing-message-id-{index}")),
                changes: parse_body(message.body.as_deref().unwrap_or_default()),
            })
            .collect();
        return Ok(ParsedPayload::Sqs(items));
    }
    parse_single(value).map(ParsedPayload::Direct)
}

/// Parses one SQS message body holding an EventBridge event, S3 notification records, or an SNS
/// notification carrying either.
pub fn parse_body(body: &str) -> Result<Vec<ObjectChange>, EventError> {
    let value: Value = serde_json::from_str(body).map_err(|e| EventError::BodyNotJson {
        reason: e.to_string(),
        preview: body.chars().take(80).collect(),
    })?;
    parse_single(&value)
}

fn parse_single(value: &Value) -> Result<Vec<ObjectChange>, EventError> {
    if sns::is_envelope(value) {
        let (envelope, message) = sns::unwrap(value)?;
        // One level only: an SNS envelope inside an SNS message is an unknown shape.
        return parse_unwrapped(&message).map_err(|inner| EventError::InSnsMessage {
            message_id: envelope.message_id,
            topic_arn: envelope.topic_arn,
            inner: Box::new(inner),
        });
    }
    parse_unwrapped(value)
}

fn parse_unwrapped(value: &Value) -> Result<Vec<ObjectChange>, EventError> {
    let mut changes = if value.get("detail-type").is_some() {
        eventbridge::parse(value)?
    } else if value.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        let bucket = value
            .get("Bucket")
            .and_then(Value::as_str)
            .unwrap_or_default();
        tracing::info!(bucket, "ignoring the s3:TestEvent S3 sends when a notification configuration is created: nothing to record");
        return Ok(Vec::new());
    } else {
        match value.get("Records").and_then(Value::as_array) {
            Some(records)
                if !records.is_empty()
                    && records.iter().all(|r| {
                        r.get("eventSource").and_then(Value::as_str) == Some("aws:s3")
                    }) =>
            {
                s3_notification::parse(value)?
            }
            _ => {
                return Err(EventError::UnknownShape {
                    found: describe(value),
                })
            }
        }
    };
    changes.retain(|change| {
        let placeholder = change.is_folder_placeholder();
        if placeholder {
            tracing::info!(object = %format!("s3://{}/{}", change.bucket, change.key.decoded), event = %change.event_name, "ignoring a folder placeholder (a key ending in \"/\"): not a document, nothing to record");
        }
        !placeholder
    });
    Ok(changes)
}

fn is_sqs_batch(value: &Value) -> bool {
    value
        .get("Records")
        .and_then(Value::as_array)
        .and_then(|records| records.first())
        .and_then(|first| first.get("eventSource"))
        .and_then(Value::as_str)
        == Some("aws:sqs")
}

fn describe(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let keys: Vec<&str> = map.keys().map(String::as_str).take(8).collect();
            format!("an object with keys [{}]", keys.join(", "))
        }
        Value::Array(_) => "a JSON array".into(),
        Value::String(_) => "a JSON string".into(),
        Value::Number(_) => "a number".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Null => "null".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{eventbridge, s3_notification, sns, ChangeType};
    use super::*;
    use serde_json::json;

    fn sqs_batch(bodies: &[String]) -> Value {
        let records: Vec<Value> = bodies
            .iter()
            .enumerate()
            .map(|(i, body)| {
                json!({
                    "messageId": format!("m{i}"),
                    "receiptHandle": "rh",
                    "body": body,
                    "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1", "SenderId": "x", "ApproximateFirstReceiveTimestamp": "1"},
                    "messageAttributes": {},
                    "md5OfBody": "x",
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:111122223333:changes",
                    "awsRegion": "us-east-1"
                })
            })
            .collect();
        json!({ "Records": records })
    }

    #[test]
    fn eventbridge_event_invoked_directly() {
        let ParsedPayload::Direct(changes) =
            parse_payload(&eventbridge::tests::created_event()).unwrap()
        else {
            panic!("expected a direct payload");
        };
        assert_eq!(changes[0].change_type, ChangeType::Create);
    }

    #[test]
    fn sqs_batch_isolates_a_malformed_message() {
        let good = eventbridge::tests::created_event().to_string();
        let notification =
            s3_notification::tests::notification("ObjectRemoved:Delete", "x+y.txt").to_string();
        let payload = sqs_batch(&[
            good,
            "{not json".into(),
            notification,
            json!({"hello": 1}).to_string(),
        ]);
        let ParsedPayload::Sqs(items) = parse_payload(&payload).unwrap() else {
            panic!("expected an SQS batch");
        };
        assert_eq!(items.len(), 4);
        assert_eq!(
            items[0].changes.as_ref().unwrap()[0].change_type,
            ChangeType::Create
        );
        let err = items[1].changes.as_ref().unwrap_err().to_string();
        assert!(err.contains("not JSON"), "{err}");
        assert_eq!(items[1].message_id, "m1");
        assert_eq!(items[2].changes.as_ref().unwrap()[0].key.decoded, "x y.txt");
        let err = items[3].changes.as_ref().unwrap_err().to_string();
        assert!(
            err.contains("unrecognised event shape") && err.contains("hello"),
            "{err}"
        );
    }

    #[test]
    fn an_empty_message_id_is_replaced_like_a_missing_one() {
        // Found by the change_event fuzz target.
        let mut payload = sqs_batch(&["{}".to_string(), "{}".to_string()]);
        payload["Records"][1]["messageId"] = json!("");
        let ParsedPayload::Sqs(items) = parse_payload(&payload).unwrap() else {
            panic!("expected an SQS batch");
        };
        assert_eq!(items[1].message_id, "missing-message-id-1");
    }

    #[test]
    fn s3_test_event_is_ignored() {
        let ParsedPayload::Direct(changes) =
            parse_payload(&json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"}))
                .unwrap()
        else {
            panic!()
        };
        assert!(changes.is_empty());
    }

    fn test_event() -> Value {
        // What S3 sends when a notification configuration is created (S3 user guide,
        // "Event message structure").
        json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2024-05-01T12:00:00.000Z",
               "Bucket": "docs-bucket", "RequestId": "5582815E1AEA5ADF", "HostId": "8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"})
    }

    #[test]
    fn s3_notification_in_an_sns_envelope_in_sqs() {
        let notification =
            s3_notification::tests::notification("ObjectCreated:Put", "docs/a+b.txt");
        let raw_delivery = notification.to_string();
        let enveloped = sns::tests::envelope(&notification).to_string();
        let ParsedPayload::Sqs(items) =
            parse_payload(&sqs_batch(&[enveloped, raw_delivery])).unwrap()
        else {
            panic!("expected an SQS batch");
        };
        for item in &items {
            let changes = item.changes.as_ref().unwrap();
            assert_eq!(changes.len(), 1, "{}", item.message_id);
            assert_eq!(changes[0].key.decoded, "docs/a b.txt");
            assert_eq!(changes[0].change_type, ChangeType::Create);
        }
        assert_eq!(
            items[0].changes.as_ref().unwrap(),
            items[1].changes.as_ref().unwrap(),
            "the envelope changes nothing about the change, so a notification delivered both ways is one change"
        );
    }

    #[test]
    fn an_sns_envelope_around_a_bad_message_names_the_message_and_its_topic() {
        let body = sns::tests::envelope(&json!({"hello": 1})).to_string();
        let err = parse_body(&body).unwrap_err().to_string();
        assert!(
            err.contains("SNS message") && err.contains("bucket-events") && err.contains("hello"),
            "{err}"
        );
        let nested = sns::tests::envelope(&sns::tests::envelope(&json!({}))).to_string();
        let err = parse_body(&nested).unwrap_err().to_string();
        assert!(err.contains("unrecognised event shape"), "{err}");
    }

    #[test]
    fn s3_test_event_is_ignored_however_it_arrives() {
        let direct = test_event();
        let in_sns = sns::tests::envelope(&test_event());
        let ParsedPayload::Sqs(items) =
            parse_payload(&sqs_batch(&[direct.to_string(), in_sns.to_string()])).unwrap()
        else {
            panic!("expected an SQS batch");
        };
        assert!(items.iter().all(|i| i.changes.as_ref().unwrap().is_empty()));
        let ParsedPayload::Direct(changes) = parse_payload(&in_sns).unwrap() else {
            panic!("expected a direct payload");
        };
        assert!(changes.is_empty());
    }

    #[test]
    fn folder_placeholders_are_ignored() {
        let created = s3_notification::tests::notification("ObjectCreated:Put", "docs/folder/");
        let mut empty = created.clone();
        empty["Records"][0]["s3"]["object"]["size"] = json!(0);
        let removed = s3_notification::tests::notification("ObjectRemoved:Delete", "docs/folder/");
        let mut eventbridge_folder = eventbridge::tests::created_event();
        eventbridge_folder["detail"]["object"]["key"] = json!("docs/folder/");
        eventbridge_folder["detail"]["object"]["size"] = json!(0);
        for placeholder in [&empty, &removed, &eventbridge_folder] {
            let ParsedPayload::Direct(changes) = parse_payload(placeholder).unwrap() else {
                panic!("expected a direct payload");
            };
            assert!(changes.is_empty(), "{placeholder}");
        }
        // A key ending in "/" with content is an object like any other.
        let ParsedPayload::Direct(changes) = parse_payload(&created).unwrap() else {
            panic!("expected a direct payload");
        };
        assert_eq!(changes.len(), 1);
        // The folder's documents are not placeholders.
        let ParsedPayload::Direct(changes) = parse_payload(&s3_notification::tests::notification(
            "ObjectRemoved:Delete",
            "docs/folder/a.txt",
        ))
        .unwrap() else {
            panic!("expected a direct payload");
        };
        assert_eq!(changes.len(), 1);
    }

    #[test]
    fn unknown_shape_names_what_it_got() {
        let err = parse_payload(&json!([1, 2])).unwrap_err().to_string();
        assert!(err.contains("a JSON array"), "{err}");
    }
}

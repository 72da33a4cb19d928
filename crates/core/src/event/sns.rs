//! S3 notifications that S3 published to an SNS topic and SNS delivered to the change events
//! queue. With raw message delivery off, the SQS body is SNS's envelope
//! (`{"Type":"Notification","MessageId":...,"TopicArn":...,"Message":"<JSON as a string>",...}`)
//! and the notification is its `Message`; with raw delivery on, the body is the notification
//! itself and needs nothing from this module.

use aws_lambda_events::sns::SnsMessage;
use serde_json::Value;

use super::EventError;

const NOTIFICATION: &str = "Notification";

/// An SNS message as SNS delivers it to a queue: it names its type and its topic.
pub(super) fn is_envelope(value: &Value) -> bool {
    value.get("Type").is_some_and(Value::is_string) && value.get("TopicArn").is_some()
}

/// The envelope and the JSON its `Message` carries.
pub(super) fn unwrap(value: &Value) -> Result<(SnsMessage, Value), EventError> {
    let malformed = |reason: String| EventError::Malformed {
        shape: "SNS notification",
        reason,
    };
    let kind = value
        .get("Type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if kind != NOTIFICATION {
        return Err(malformed(format!(
            "Type is {kind:?} from topic {}; only \"Notification\" messages carry S3 events (a subscription to be confirmed is confirmed in the SNS console or with its SubscribeURL)",
            value.get("TopicArn").map(Value::to_string).unwrap_or_default()
        )));
    }
    let envelope: SnsMessage =
        serde_json::from_value(value.clone()).map_err(|e| malformed(e.to_string()))?;
    let message: Value = serde_json::from_str(&envelope.message).map_err(|e| {
        malformed(format!(
            "Message of {} from {} is not JSON: {e} (it starts with {:?})",
            envelope.message_id,
            envelope.topic_arn,
            envelope.message.chars().take(80).collect::<String>()
        ))
    })?;
    Ok((envelope, message))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// An SNS notification as SNS delivers it to an SQS queue with raw message delivery off
    /// (Amazon SNS developer guide, "Fanout to Amazon SQS queues").
    pub(crate) fn envelope(message: &Value) -> Value {
        json!({
            "Type": "Notification",
            "MessageId": "d3a7d5a9-2f2e-5b4e-9a3c-0c6b1f0f9e11",
            "TopicArn": "arn:aws:sns:us-east-1:111122223333:bucket-events",
            "Subject": "Amazon S3 Notification",
            "Message": message.to_string(),
            "Timestamp": "2024-05-01T12:00:00.123Z",
            "SignatureVersion": "1",
            "Signature": "EXAMPLEpH+DcEwjAPg8O9mY8dReBSwksfg2S7WKQcikcNKWLQjwu6A4VbeS0QHVCkhRS7fUQvi2egU3N858fiTDN6bkkOxYDVrY0Ad8L10Hs3zH81mtnPk5uvvolIC1CXGu43obcgFxeL3khZl8IKvO61GWB6jI9b5+gLPoBc1Q=",
            "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem",
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:us-east-1:111122223333:bucket-events:c9135db0-26c4-47ec-8998-413945fb5a96"
        })
    }

    #[test]
    fn unwraps_the_message() {
        let (envelope, message) = unwrap(&envelope(&json!({"Records": []}))).unwrap();
        assert_eq!(
            envelope.topic_arn,
            "arn:aws:sns:us-east-1:111122223333:bucket-events"
        );
        assert_eq!(message, json!({"Records": []}));
    }

    #[test]
    fn a_message_that_is_not_json_names_the_message() {
        let mut value = envelope(&json!({}));
        value["Message"] = json!("hello");
        let err = unwrap(&value).unwrap_err().to_string();
        assert!(
            err.contains("SNS notification") && err.contains("not JSON") && err.contains("hello"),
            "{err}"
        );
    }

    #[test]
    fn a_subscription_confirmation_is_a_clear_error() {
        let mut value = envelope(&json!({}));
        value["Type"] = json!("SubscriptionConfirmation");
        let err = unwrap(&value).unwrap_err().to_string();
        assert!(
            err.contains("SubscriptionConfirmation") && err.contains("bucket-events"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_field_is_named() {
        let mut value = envelope(&json!({}));
        value.as_object_mut().unwrap().remove("Message");
        let err = unwrap(&value).unwrap_err().to_string();
        assert!(err.contains("Message"), "{err}");
    }
}

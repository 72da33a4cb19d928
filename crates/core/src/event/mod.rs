//! S3 object change events, in every shape they reach the service:
//! EventBridge events (`detail-type` "Object Created" / "Object Deleted" / "Object Restore Completed"),
//! direct S3 notification records (`eventName` "ObjectCreated:*" / "ObjectRemoved:*"),
//! and either of them wrapped in an SQS message body.

mod envelope;
mod eventbridge;
mod object_key;
mod s3_notification;

pub use envelope::{parse_payload, EventError, ParsedPayload};
pub use eventbridge::S3EventBridgeDetail;
pub use object_key::ObjectKey;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What happened to the object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeType {
    /// Created, overwritten or restored: the object exists with new content.
    Create,
    /// Deleted (or a delete marker was placed).
    Delete,
}

impl ChangeType {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeType::Create => "create",
            ChangeType::Delete => "delete",
        }
    }
}

/// Which wire shape an event arrived in; part of the idempotency key and useful in logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventSource {
    EventBridge,
    S3Notification,
}

/// One S3 object change, normalised from whichever event shape carried it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectChange {
    pub source: EventSource,
    /// EventBridge event id or S3 notification `x-amz-request-id`/`responseElements`; may be reused
    /// by emulators, so it is never trusted alone for idempotency.
    pub event_id: Option<String>,
    /// `detail-type` or `eventName`, as received.
    pub event_name: String,
    pub change_type: ChangeType,
    pub bucket: String,
    pub key: ObjectKey,
    pub size: Option<i64>,
    pub etag: Option<String>,
    pub version_id: Option<String>,
    pub sequencer: Option<String>,
    pub event_time: Option<DateTime<Utc>>,
}

//! S3 object change events, in every shape they reach the service:
//! EventBridge events (`detail-type` "Object Created" / "Object Deleted" / "Object Restore Completed"),
//! direct S3 notification records (`eventName` "ObjectCreated:*" / "ObjectRemoved:*"),
//! either of them wrapped in an SQS message body, and S3 notifications S3 published to SNS that
//! SNS delivered to SQS (in an SNS envelope, or raw).

mod envelope;
mod eventbridge;
mod object_key;
mod s3_notification;
mod sns;

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

/// What a delete event says about the object's versions. Only [`DeleteKind::Version`] leaves
/// open whether the object still exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeleteKind {
    /// Unversioned (or versioning-suspended) delete, or a lifecycle expiration without a
    /// version: the object is gone.
    Object,
    /// A delete marker was placed: the object is gone from listings (and from the data source).
    DeleteMarker,
    /// A delete that names a version: a non-current version was deleted, the current version was
    /// deleted permanently, or a delete marker was removed. The object may still exist, or exist
    /// again; only S3 can say which.
    Version,
}

/// Which wire shape an event arrived in; part of the idempotency key and useful in logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventSource {
    EventBridge,
    S3Notification,
    /// Not an S3 event: a drift check (`autosync reconcile`, the scheduled check) found the
    /// index and S3 disagreeing about the object.
    Reconcile,
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
    /// For deletes: what the event says about versions. None for creates.
    #[serde(default)]
    pub delete_kind: Option<DeleteKind>,
}

impl ObjectChange {
    /// A "folder" as the S3 console and many tools create it: an empty object whose key ends in
    /// `/`, or the delete of such a key. Not a document: never recorded.
    pub fn is_folder_placeholder(&self) -> bool {
        self.key.decoded.ends_with('/')
            && match self.change_type {
                ChangeType::Delete => true,
                ChangeType::Create => self.size == Some(0),
            }
    }

    /// A delete that names a real version, after which the object may still exist: what it
    /// means is settled by asking S3 whether the object exists (see
    /// [`crate::change::DeleteResolution`]).
    pub fn needs_existence_check(&self) -> bool {
        self.change_type == ChangeType::Delete
            && self.delete_kind == Some(DeleteKind::Version)
            && self.version_id.is_some()
    }
}

/// A version id that names a real version: present, not empty, not S3's "null" (unversioned).
pub(crate) fn real_version_id(version_id: Option<String>) -> Option<String> {
    version_id.filter(|v| !v.is_empty() && v != "null")
}

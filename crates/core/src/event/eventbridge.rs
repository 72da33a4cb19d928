//! S3 events delivered through EventBridge. `aws_lambda_events` has the envelope
//! (`EventBridgeEvent<T>`) but no typed S3 detail, so it lives here.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::{Deserialize, Serialize};

use super::{
    real_version_id, ChangeType, DeleteKind, EventError, EventSource, ObjectChange, ObjectKey,
};

pub const DETAIL_TYPE_CREATED: &str = "Object Created";
pub const DETAIL_TYPE_DELETED: &str = "Object Deleted";
pub const DETAIL_TYPE_RESTORE_COMPLETED: &str = "Object Restore Completed";
/// `detail.deletion-type` of an "Object Deleted" event that placed a delete marker.
pub const DELETION_TYPE_MARKER: &str = "Delete Marker Created";
/// `detail.deletion-type` of an "Object Deleted" event that deleted a version (or, unversioned,
/// the object) for good.
pub const DELETION_TYPE_PERMANENT: &str = "Permanently Deleted";

/// `detail` of an S3 EventBridge event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct S3EventBridgeDetail {
    #[serde(default)]
    pub version: Option<String>,
    pub bucket: BucketDetail,
    pub object: ObjectDetail,
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub requester: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub deletion_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketDetail {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ObjectDetail {
    pub key: String,
    #[serde(default)]
    pub size: Option<i64>,
    /// AWS documents `etag`; some emitters (moto) send `eTag`. Both are accepted.
    #[serde(default, alias = "eTag")]
    pub etag: Option<String>,
    #[serde(default)]
    pub version_id: Option<String>,
    #[serde(default)]
    pub sequencer: Option<String>,
}

/// Detail types that are object changes, and what they mean for the knowledge base.
pub fn change_type_of(detail_type: &str) -> Option<ChangeType> {
    match detail_type {
        DETAIL_TYPE_CREATED | DETAIL_TYPE_RESTORE_COMPLETED => Some(ChangeType::Create),
        DETAIL_TYPE_DELETED => Some(ChangeType::Delete),
        _ => None,
    }
}

/// What an "Object Deleted" event deleted: a delete marker, a named version, or the object.
fn delete_kind(deletion_type: Option<&str>, version_id: Option<&str>) -> DeleteKind {
    match (deletion_type, version_id) {
        (Some(DELETION_TYPE_MARKER), _) => DeleteKind::DeleteMarker,
        (Some(DELETION_TYPE_PERMANENT), Some(_)) => DeleteKind::Version,
        _ => DeleteKind::Object,
    }
}

/// Parses an EventBridge event. Returns no change for detail types that do not change objects
/// (tagging, ACL, storage class ...), which are logged at debug level and otherwise ignored.
pub(super) fn parse(value: &serde_json::Value) -> Result<Vec<ObjectChange>, EventError> {
    let envelope: EventBridgeEvent<serde_json::Value> = serde_json::from_value(value.clone())
        .map_err(|e| EventError::Malformed {
            shape: "EventBridge event",
            reason: e.to_string(),
        })?;
    let Some(change_type) = change_type_of(&envelope.detail_type) else {
        tracing::debug!(detail_type = %envelope.detail_type, source = %envelope.source, "ignoring EventBridge event that is not an object change");
        return Ok(Vec::new());
    };
    if envelope.source != "aws.s3" {
        return Err(EventError::Malformed {
            shape: "EventBridge event",
            reason: format!(
                "detail-type {:?} must come from source \"aws.s3\", got {:?}",
                envelope.detail_type, envelope.source
            ),
        });
    }
    let detail: S3EventBridgeDetail =
        serde_json::from_value(envelope.detail).map_err(|e| EventError::Malformed {
            shape: "S3 EventBridge detail",
            reason: e.to_string(),
        })?;
    if detail.object.key.is_empty() {
        return Err(EventError::Malformed {
            shape: "S3 EventBridge detail",
            reason: "detail.object.key is empty".into(),
        });
    }
    let version_id = real_version_id(detail.object.version_id);
    let delete_kind = (change_type == ChangeType::Delete)
        .then(|| delete_kind(detail.deletion_type.as_deref(), version_id.as_deref()));
    Ok(vec![ObjectChange {
        source: EventSource::EventBridge,
        event_id: envelope.id,
        event_name: envelope.detail_type,
        change_type,
        bucket: detail.bucket.name,
        key: ObjectKey::verbatim(detail.object.key),
        size: detail.object.size,
        etag: detail.object.etag.map(|e| e.trim_matches('"').to_string()),
        version_id,
        sequencer: detail.object.sequencer,
        event_time: envelope.time,
        delete_kind,
    }])
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn created_event() -> serde_json::Value {
        // Shape from the Amazon S3 user guide, "EventBridge event message structure".
        json!({
            "version": "0",
            "id": "17793124-05d4-b198-2fde-7ededc63b103",
            "detail-type": "Object Created",
            "source": "aws.s3",
            "account": "111122223333",
            "time": "2021-11-12T00:00:00Z",
            "region": "ca-central-1",
            "resources": ["arn:aws:s3:::DOC-EXAMPLE-BUCKET1"],
            "detail": {
                "version": "0",
                "bucket": {"name": "DOC-EXAMPLE-BUCKET1"},
                "object": {
                    "key": "docs/example key.txt",
                    "size": 5,
                    "etag": "b1946ac92492d2347c6235b4d2611184",
                    "version-id": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e",
                    "sequencer": "617f08299329d189"
                },
                "request-id": "N4N7GDK58NMKJ12R",
                "requester": "123456789012",
                "source-ip-address": "1.2.3.4",
                "reason": "PutObject"
            }
        })
    }

    #[test]
    fn reads_the_change_type_from_top_level_detail_type() {
        // Defect 1 of the public sample: it looked for the type in `detail.name`.
        let changes = parse(&created_event()).unwrap();
        assert_eq!(changes.len(), 1);
        let change = &changes[0];
        assert_eq!(change.change_type, ChangeType::Create);
        assert_eq!(change.bucket, "DOC-EXAMPLE-BUCKET1");
        assert_eq!(change.key.decoded, "docs/example key.txt");
        assert_eq!(change.size, Some(5));
        assert_eq!(
            change.etag.as_deref(),
            Some("b1946ac92492d2347c6235b4d2611184")
        );
        assert_eq!(change.sequencer.as_deref(), Some("617f08299329d189"));
        assert_eq!(
            change.event_id.as_deref(),
            Some("17793124-05d4-b198-2fde-7ededc63b103")
        );
    }

    #[test]
    fn deleted_and_restored_map_to_delete_and_create() {
        let mut event = created_event();
        event["detail-type"] = json!("Object Deleted");
        event["detail"]["deletion-type"] = json!("Delete Marker Created");
        assert_eq!(parse(&event).unwrap()[0].change_type, ChangeType::Delete);
        event["detail-type"] = json!("Object Restore Completed");
        assert_eq!(parse(&event).unwrap()[0].change_type, ChangeType::Create);
    }

    #[test]
    fn a_permanent_delete_naming_a_version_is_a_version_delete() {
        // Deleting a non-current version or removing a delete marker: the object may still exist.
        let mut event = created_event();
        event["detail-type"] = json!("Object Deleted");
        event["detail"]["deletion-type"] = json!("Permanently Deleted");
        let change = &parse(&event).unwrap()[0];
        assert_eq!(change.change_type, ChangeType::Delete);
        assert_eq!(change.delete_kind, Some(DeleteKind::Version));
        assert!(change.needs_existence_check());

        event["detail"]["deletion-type"] = json!("Delete Marker Created");
        let marker = &parse(&event).unwrap()[0];
        assert_eq!(marker.delete_kind, Some(DeleteKind::DeleteMarker));
        assert!(!marker.needs_existence_check());

        // Unversioned bucket: no version, or S3's "null" version.
        event["detail"]["deletion-type"] = json!("Permanently Deleted");
        event["detail"]["object"]["version-id"] = json!("null");
        let unversioned = &parse(&event).unwrap()[0];
        assert_eq!(unversioned.delete_kind, Some(DeleteKind::Object));
        assert!(!unversioned.needs_existence_check());
        event["detail"]["object"]
            .as_object_mut()
            .unwrap()
            .remove("version-id");
        assert!(!parse(&event).unwrap()[0].needs_existence_check());

        assert_eq!(parse(&created_event()).unwrap()[0].delete_kind, None);
    }

    #[test]
    fn other_detail_types_are_ignored() {
        let mut event = created_event();
        event["detail-type"] = json!("Object Tags Added");
        assert!(parse(&event).unwrap().is_empty());
    }

    #[test]
    fn accepts_moto_style_etag_and_null_version() {
        let mut event = created_event();
        let object = event["detail"]["object"].as_object_mut().unwrap();
        object.remove("etag");
        object.insert("eTag".into(), json!("\"abc\""));
        object.insert("version-id".into(), json!("null"));
        let change = &parse(&event).unwrap()[0];
        assert_eq!(change.etag.as_deref(), Some("abc"));
        assert_eq!(change.version_id, None);
    }

    #[test]
    fn missing_key_is_a_clear_error() {
        let mut event = created_event();
        event["detail"]["object"]
            .as_object_mut()
            .unwrap()
            .remove("key");
        let err = parse(&event).unwrap_err().to_string();
        assert!(
            err.contains("S3 EventBridge detail") && err.contains("key"),
            "{err}"
        );
    }

    #[test]
    fn object_change_from_another_source_is_rejected() {
        let mut event = created_event();
        event["source"] = json!("custom.app");
        let err = parse(&event).unwrap_err().to_string();
        assert!(err.contains("aws.s3"), "{err}");
    }
}

//! Direct S3 event notifications (`Records[].eventName` = "ObjectCreated:Put", ...), the shape
//! S3 sends to SQS, SNS and Lambda. Keys are URL-encoded with `+` for spaces.

use aws_lambda_events::s3::{S3Event, S3EventRecord};

use super::{
    real_version_id, ChangeType, DeleteKind, EventError, EventSource, ObjectChange, ObjectKey,
};

/// Event names that change objects. Lifecycle expirations delete objects too.
pub fn change_type_of(event_name: &str) -> Option<ChangeType> {
    if event_name.starts_with("ObjectCreated:") || event_name == "ObjectRestore:Completed" {
        Some(ChangeType::Create)
    } else if event_name.starts_with("ObjectRemoved:")
        || event_name.starts_with("LifecycleExpiration:")
    {
        Some(ChangeType::Delete)
    } else {
        None
    }
}

/// What a removal deleted: a delete marker, a named version, or the object. `ObjectRemoved:Delete`
/// (and a lifecycle `Delete`) with a version id deleted that version for good, which leaves the
/// object in place when it was not the current one, or brings it back when it was a delete marker.
fn delete_kind(event_name: &str, version_id: Option<&str>) -> DeleteKind {
    if event_name.ends_with(":DeleteMarkerCreated") {
        DeleteKind::DeleteMarker
    } else if version_id.is_some()
        && (event_name == "ObjectRemoved:Delete" || event_name == "LifecycleExpiration:Delete")
    {
        DeleteKind::Version
    } else {
        DeleteKind::Object
    }
}

pub(super) fn parse(value: &serde_json::Value) -> Result<Vec<ObjectChange>, EventError> {
    let event: S3Event =
        serde_json::from_value(value.clone()).map_err(|e| EventError::Malformed {
            shape: "S3 event notification",
            reason: e.to_string(),
        })?;
    let mut changes = Vec::with_capacity(event.records.len());
    for (index, record) in event.records.into_iter().enumerate() {
        if let Some(change) = parse_record(index, record)? {
            changes.push(change);
        }
    }
    Ok(changes)
}

fn parse_record(index: usize, record: S3EventRecord) -> Result<Option<ObjectChange>, EventError> {
    let malformed = |reason: String| EventError::Malformed {
        shape: "S3 event notification",
        reason: format!("Records[{index}]: {reason}"),
    };
    let event_name = record
        .event_name
        .ok_or_else(|| malformed("eventName is missing".into()))?;
    let Some(change_type) = change_type_of(&event_name) else {
        tracing::debug!(%event_name, "ignoring S3 notification that is not an object change");
        return Ok(None);
    };
    let bucket = record
        .s3
        .bucket
        .name
        .ok_or_else(|| malformed("s3.bucket.name is missing".into()))?;
    let raw_key = record
        .s3
        .object
        .key
        .filter(|k| !k.is_empty())
        .ok_or_else(|| malformed("s3.object.key is missing".into()))?;
    let key = ObjectKey::url_encoded(raw_key).map_err(malformed)?;
    let version_id = real_version_id(record.s3.object.version_id);
    let delete_kind = (change_type == ChangeType::Delete)
        .then(|| delete_kind(&event_name, version_id.as_deref()));
    Ok(Some(ObjectChange {
        source: EventSource::S3Notification,
        event_id: record.response_elements.get("x-amz-request-id").cloned(),
        event_name,
        change_type,
        bucket,
        key,
        size: record.s3.object.size,
        etag: record
            .s3
            .object
            .e_tag
            .map(|e| e.trim_matches('"').to_string()),
        version_id,
        sequencer: record.s3.object.sequencer,
        event_time: Some(record.event_time),
        delete_kind,
    }))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn notification(event_name: &str, key: &str) -> serde_json::Value {
        json!({"Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": "us-east-1",
            "eventTime": "2024-05-01T12:00:00.000Z",
            "eventName": event_name,
            "userIdentity": {"principalId": "AWS:EXAMPLE"},
            "requestParameters": {"sourceIPAddress": "127.0.0.1"},
            "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8"},
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": "kb-sync",
                "bucket": {"name": "docs-bucket", "ownerIdentity": {"principalId": "A3NL1KOZZKExample"}, "arn": "arn:aws:s3:::docs-bucket"},
                "object": {"key": key, "size": 1024, "eTag": "d41d8cd98f00b204e9800998ecf8427e", "sequencer": "0055AED6DCD90281E5"}
            }
        }]})
    }

    #[test]
    fn created_and_removed_names() {
        let created = parse(&notification("ObjectCreated:Put", "a.txt")).unwrap();
        assert_eq!(created[0].change_type, ChangeType::Create);
        let removed = parse(&notification("ObjectRemoved:DeleteMarkerCreated", "a.txt")).unwrap();
        assert_eq!(removed[0].change_type, ChangeType::Delete);
        let expired = parse(&notification("LifecycleExpiration:Delete", "a.txt")).unwrap();
        assert_eq!(expired[0].change_type, ChangeType::Delete);
        assert!(parse(&notification("ObjectTagging:Put", "a.txt"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_delete_naming_a_version_is_a_version_delete() {
        let mut event = notification("ObjectRemoved:Delete", "a.txt");
        event["Records"][0]["s3"]["object"]["versionId"] =
            json!("3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY");
        let change = &parse(&event).unwrap()[0];
        assert_eq!(change.delete_kind, Some(DeleteKind::Version));
        assert!(change.needs_existence_check());

        let mut marker = notification("ObjectRemoved:DeleteMarkerCreated", "a.txt");
        marker["Records"][0]["s3"]["object"]["versionId"] =
            json!("3HL4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY");
        assert_eq!(
            parse(&marker).unwrap()[0].delete_kind,
            Some(DeleteKind::DeleteMarker)
        );
        assert!(!parse(&marker).unwrap()[0].needs_existence_check());

        let unversioned = &parse(&notification("ObjectRemoved:Delete", "a.txt")).unwrap()[0];
        assert_eq!(unversioned.delete_kind, Some(DeleteKind::Object));
        event["Records"][0]["s3"]["object"]["versionId"] = json!("null");
        assert!(!parse(&event).unwrap()[0].needs_existence_check());

        let mut expired = notification("LifecycleExpiration:Delete", "a.txt");
        expired["Records"][0]["s3"]["object"]["versionId"] = json!("v1");
        assert!(
            parse(&expired).unwrap()[0].needs_existence_check(),
            "a non-current version expired"
        );
    }

    #[test]
    fn keys_are_url_decoded() {
        let changes = parse(&notification(
            "ObjectCreated:Put",
            "docs/annual+report%202024.pdf",
        ))
        .unwrap();
        assert_eq!(changes[0].key.decoded, "docs/annual report 2024.pdf");
        assert_eq!(changes[0].key.raw, "docs/annual+report%202024.pdf");
        assert_eq!(changes[0].event_id.as_deref(), Some("C3D13FE58DE4C810"));
    }

    #[test]
    fn missing_event_name_names_the_record() {
        let mut event = notification("ObjectCreated:Put", "a.txt");
        event["Records"][0]
            .as_object_mut()
            .unwrap()
            .remove("eventName");
        let err = parse(&event).unwrap_err().to_string();
        assert!(
            err.contains("Records[0]") && err.contains("eventName"),
            "{err}"
        );
    }
}

//! The tracked change: one item in the tracking table per S3 object event.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::event::{ChangeType, ObjectChange};
use crate::SourceId;

/// Bedrock's per-file quota: 50 MB. (The public sample checked 50 GB.)
pub const MAX_DOCUMENT_BYTES: i64 = 50 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ChangeStatus {
    /// Recorded; no successful job that started after it has finished yet.
    Pending,
    /// Covered by the successful job named in `ingestion_job_id`.
    Synced,
    /// Its job failed after all attempts, or Bedrock failed the document; see `failure_reason`.
    Failed,
}

/// What a delete that names a version turned out to be, once S3 said whether the object exists
/// (`resolved_as` on the change). Deleting a non-current version, or removing a delete marker,
/// arrives as "Object Deleted" / `ObjectRemoved:Delete` like a real delete, but the object is
/// still there, or there again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeleteResolution {
    /// The object exists: recorded as a `create`, so its current content is (re-)ingested. That
    /// is right whichever happened: a non-current version was deleted (the content is unchanged),
    /// a delete marker was removed (the object is back), or the current version was deleted
    /// (the previous version is now current).
    ObjectExists,
    /// No current object (none, or a delete marker): recorded as a `delete`.
    ObjectAbsent,
}

impl DeleteResolution {
    pub fn from_existence(exists: bool) -> Self {
        if exists {
            Self::ObjectExists
        } else {
            Self::ObjectAbsent
        }
    }

    /// What the change is for the knowledge base.
    pub fn change_type(self) -> ChangeType {
        match self {
            Self::ObjectExists => ChangeType::Create,
            Self::ObjectAbsent => ChangeType::Delete,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ObjectExists => "object_exists",
            Self::ObjectAbsent => "object_absent",
        }
    }

    /// Why the change was recorded as it was, for the log.
    pub fn explanation(self) -> &'static str {
        match self {
            Self::ObjectExists => "the delete named a version and S3 still has the object (a non-current version was deleted, a delete marker was removed, or an older version became current): recorded as a create, so the current content is ingested",
            Self::ObjectAbsent => "the delete named a version and S3 has no current object: recorded as a delete",
        }
    }
}

/// Deterministic id of a change: the same event redelivered gets the same id, two distinct
/// events never do. EventBridge ids alone are not enough: some emitters reuse them (moto sends a
/// constant id and sequencer), so every field that tells two events apart goes into the hash.
pub fn change_id(change: &ObjectChange) -> String {
    let mut hasher = Sha256::new();
    let fields: [&str; 10] = [
        match change.source {
            crate::event::EventSource::EventBridge => "eventbridge",
            crate::event::EventSource::S3Notification => "s3",
            crate::event::EventSource::Reconcile => "reconcile",
        },
        change.event_id.as_deref().unwrap_or(""),
        &change.event_name,
        &change.bucket,
        &change.key.raw,
        change.version_id.as_deref().unwrap_or(""),
        change.sequencer.as_deref().unwrap_or(""),
        change.etag.as_deref().unwrap_or(""),
        &change.size.map(|s| s.to_string()).unwrap_or_default(),
        &change
            .event_time
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Nanos, true))
            .unwrap_or_default(),
    ];
    for field in fields {
        // Length-prefixed so ("ab","c") and ("a","bc") hash differently.
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    hex::encode(&hasher.finalize()[..16])
}

/// The reserved path segment under which `autosync canary` writes its objects.
pub const CANARY_SEGMENT: &str = ".kb-autosync-canary/";
/// The `origin` of a canary change.
pub const CANARY_ORIGIN: &str = "canary";

/// True when a path segment of `key` is the reserved canary segment (`.kb-autosync-canary/` at
/// the start of the key or right after a `/`).
pub fn is_canary_key(key: &str) -> bool {
    key.starts_with(CANARY_SEGMENT) || key.contains(&format!("/{CANARY_SEGMENT}"))
}

/// The `origin` recorded with a change of `key`: `canary` under the reserved segment, else none.
pub fn origin_of(key: &str) -> Option<String> {
    is_canary_key(key).then(|| CANARY_ORIGIN.to_string())
}

/// One row of the tracking table. Field names are the table's attribute names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangeRecord {
    pub change_id: String,
    pub knowledge_base_id: String,
    pub data_source_id: String,
    pub change_type: ChangeType,
    pub bucket: String,
    /// The object key as S3 stores it (decoded).
    pub key: String,
    /// The key exactly as the event carried it, when that differs (URL-encoded notifications).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_as_received: Option<String>,
    /// Who made the change, when it was not a user: `canary` for the objects `autosync canary`
    /// writes under the reserved `.kb-autosync-canary/` segment (see [`origin_of`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// When the service recorded the change (RFC 3339).
    pub timestamp: String,
    /// When S3 emitted the event (RFC 3339), if the event said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<String>,
    pub event_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    pub status: ChangeStatus,
    /// Kept for users of the public sample's schema: true once SYNCED.
    pub processed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingestion_job_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequencer: Option<String>,
    /// Position in the data source's change counter; a job covers the changes numbered up to the
    /// counter value it read before it started.
    pub source_seq: u64,
    /// For a delete that named a version: what S3 said (see [`DeleteResolution`]); `change_type`
    /// follows it. Absent for every other change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_as: Option<DeleteResolution>,
    /// `KB#DS` while PENDING or FAILED: the sparse pending-by-source index key. Absent once SYNCED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synced_at: Option<String>,
    /// How the change reached the index, once SYNCED (or was tried, once FAILED): `job` or
    /// `direct` (the id in `ingestion_job_id` is then a direct batch's, `direct-...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingestion_method: Option<crate::direct::IngestionMethod>,
    /// For a change to `X.metadata.json`: `X`, the document whose metadata it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_of: Option<String>,
    /// DynamoDB TTL (epoch seconds).
    pub expires_at: i64,
}

impl ChangeRecord {
    /// A new PENDING change for `source`, numbered `source_seq`, kept `retention_days`.
    pub fn pending(
        change: &ObjectChange,
        source: &SourceId,
        source_seq: u64,
        recorded_at: DateTime<Utc>,
        retention_days: u32,
    ) -> Self {
        let key_as_received =
            (change.key.raw != change.key.decoded).then(|| change.key.raw.clone());
        Self {
            change_id: change_id(change),
            knowledge_base_id: source.knowledge_base_id.clone(),
            data_source_id: source.data_source_id.clone(),
            change_type: change.change_type,
            bucket: change.bucket.clone(),
            key: change.key.decoded.clone(),
            key_as_received,
            origin: origin_of(&change.key.decoded),
            timestamp: recorded_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            event_time: change
                .event_time
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true)),
            event_name: change.event_name.clone(),
            event_id: change.event_id.clone(),
            status: ChangeStatus::Pending,
            processed: false,
            ingestion_job_id: None,
            size: change.size,
            etag: change.etag.clone(),
            version_id: change.version_id.clone(),
            sequencer: change.sequencer.clone(),
            source_seq,
            resolved_as: None,
            pending_source: Some(source.key()),
            failure_reason: None,
            synced_at: None,
            ingestion_method: None,
            metadata_of: crate::direct::plan::metadata_of(&change.key.decoded),
            expires_at: recorded_at.timestamp() + i64::from(retention_days) * 86_400,
        }
    }

    /// A change made by `autosync canary`, not by a user (also for records written before
    /// `origin` existed: the key says it).
    pub fn is_canary(&self) -> bool {
        self.origin.as_deref() == Some(CANARY_ORIGIN) || is_canary_key(&self.key)
    }

    /// The record of a delete that named a version, once S3 said whether the object exists.
    pub fn resolved(mut self, resolution: DeleteResolution) -> Self {
        self.change_type = resolution.change_type();
        self.resolved_as = Some(resolution);
        self
    }
}

/// Seconds a change has waited since it was recorded (0 when its timestamp is unreadable or in
/// the future): the `OldestPendingChangeAgeSeconds` metric.
pub fn age_seconds(record: &ChangeRecord, now: DateTime<Utc>) -> f64 {
    DateTime::parse_from_rfc3339(&record.timestamp)
        .map(|t| (now - t.with_timezone(&Utc)).num_milliseconds().max(0) as f64 / 1000.0)
        .unwrap_or(0.0)
}

/// A warning for objects Bedrock will refuse, so the log names the file before the job fails it.
pub fn oversize_warning(change: &ObjectChange) -> Option<String> {
    let size = change.size?;
    (change.change_type == ChangeType::Create && size > MAX_DOCUMENT_BYTES).then(|| {
        format!(
            "s3://{}/{} is {} bytes; Bedrock ingests files up to {} bytes (50 MB): the ingestion job will fail this document",
            change.bucket, change.key.decoded, size, MAX_DOCUMENT_BYTES
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{EventSource, ObjectKey};

    fn change() -> ObjectChange {
        ObjectChange {
            source: EventSource::EventBridge,
            event_id: Some("same-id".into()),
            event_name: "Object Created".into(),
            change_type: ChangeType::Create,
            bucket: "b".into(),
            key: ObjectKey::verbatim("docs/a.txt"),
            size: Some(10),
            etag: Some("e1".into()),
            version_id: None,
            sequencer: Some("0001".into()),
            event_time: Some("2024-01-01T00:00:00.123Z".parse().unwrap()),
            delete_kind: None,
        }
    }

    #[test]
    fn redelivered_event_gets_the_same_id() {
        assert_eq!(change_id(&change()), change_id(&change().clone()));
    }

    #[test]
    fn distinct_uploads_with_reused_event_id_and_sequencer_get_distinct_ids() {
        // moto reuses id and sequencer: content (etag) or time must still tell uploads apart.
        let first = change();
        let mut overwritten = change();
        overwritten.etag = Some("e2".into());
        assert_ne!(change_id(&first), change_id(&overwritten));
        let mut same_content_later = change();
        same_content_later.event_time = Some("2024-01-01T00:00:00.124Z".parse().unwrap());
        assert_ne!(change_id(&first), change_id(&same_content_later));
        let mut deleted = change();
        deleted.change_type = ChangeType::Delete;
        deleted.event_name = "Object Deleted".into();
        assert_ne!(change_id(&first), change_id(&deleted));
    }

    #[test]
    fn field_boundaries_matter() {
        let mut a = change();
        a.bucket = "ab".into();
        a.key = ObjectKey::verbatim("c");
        let mut b = change();
        b.bucket = "a".into();
        b.key = ObjectKey::verbatim("bc");
        assert_ne!(change_id(&a), change_id(&b));
    }

    #[test]
    fn pending_record_carries_the_index_key_and_ttl() {
        let source = SourceId::new("KB", "DS");
        let at: DateTime<Utc> = "2024-01-01T00:00:00Z".parse().unwrap();
        let record = ChangeRecord::pending(&change(), &source, 7, at, 30);
        assert_eq!(record.status, ChangeStatus::Pending);
        assert!(!record.processed);
        assert_eq!(record.pending_source.as_deref(), Some("KB#DS"));
        assert_eq!(record.source_seq, 7);
        assert_eq!(record.expires_at, at.timestamp() + 30 * 86_400);
        assert_eq!(record.key_as_received, None);
        assert_eq!(record.timestamp, "2024-01-01T00:00:00.000Z");
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["change_type"], "create");
        assert_eq!(json["status"], "PENDING");
        assert!(
            json.get("ingestion_job_id").is_none(),
            "absent, not null: {json}"
        );
    }

    #[test]
    fn a_version_delete_is_what_s3_says_it_is() {
        let mut version_deleted = change();
        version_deleted.change_type = ChangeType::Delete;
        version_deleted.event_name = "Object Deleted".into();
        version_deleted.version_id = Some("v1".into());
        let at: DateTime<Utc> = "2024-01-01T00:00:00Z".parse().unwrap();
        let pending = ChangeRecord::pending(&version_deleted, &SourceId::new("KB", "DS"), 1, at, 1);

        let exists = pending
            .clone()
            .resolved(DeleteResolution::from_existence(true));
        assert_eq!(
            exists.change_type,
            ChangeType::Create,
            "the current content is re-ingested"
        );
        assert_eq!(exists.resolved_as, Some(DeleteResolution::ObjectExists));
        assert_eq!(
            exists.event_name, "Object Deleted",
            "the event is kept as received"
        );
        assert_eq!(
            exists.change_id, pending.change_id,
            "resolving never changes the id"
        );
        let json = serde_json::to_value(&exists).unwrap();
        assert_eq!(json["resolved_as"], "object_exists");
        assert_eq!(json["change_type"], "create");

        let absent = pending
            .clone()
            .resolved(DeleteResolution::from_existence(false));
        assert_eq!(absent.change_type, ChangeType::Delete);
        assert_eq!(
            serde_json::to_value(&absent).unwrap()["resolved_as"],
            "object_absent"
        );

        assert!(serde_json::to_value(&pending)
            .unwrap()
            .get("resolved_as")
            .is_none());
        assert_eq!(DeleteResolution::ObjectExists.as_str(), "object_exists");
    }

    #[test]
    fn only_the_reserved_segment_marks_a_canary() {
        for key in [
            ".kb-autosync-canary/20261201T000000.000Z.txt",
            "docs/.kb-autosync-canary/20261201T000000.000Z.txt",
            "docs/reports/.kb-autosync-canary/a/b.txt",
        ] {
            assert!(is_canary_key(key), "{key}");
            assert_eq!(origin_of(key).as_deref(), Some("canary"), "{key}");
        }
        for key in [
            "docs/a.txt",
            "docs/x.kb-autosync-canary/a.txt",
            "docs/.kb-autosync-canary",
            "docs/.kb-autosync-canary-old/a.txt",
            ".kb-autosync-canary.txt",
        ] {
            assert!(!is_canary_key(key), "{key}");
            assert_eq!(origin_of(key), None, "{key}");
        }
    }

    #[test]
    fn canary_changes_are_recorded_with_their_origin() {
        let at: DateTime<Utc> = "2024-01-01T00:00:00Z".parse().unwrap();
        let source = SourceId::new("KB", "DS");
        let user = ChangeRecord::pending(&change(), &source, 1, at, 1);
        assert_eq!(user.origin, None);
        assert!(!user.is_canary());
        assert!(serde_json::to_value(&user).unwrap().get("origin").is_none());

        let mut canary = change();
        canary.key = ObjectKey::verbatim("docs/.kb-autosync-canary/20240101T000000.000Z.txt");
        let record = ChangeRecord::pending(&canary, &source, 2, at, 1);
        assert_eq!(record.origin.as_deref(), Some("canary"));
        assert!(record.is_canary());
        assert_eq!(serde_json::to_value(&record).unwrap()["origin"], "canary");

        // A record written before `origin` existed reads back, and its key still marks it.
        let mut old = serde_json::to_value(&record).unwrap();
        old.as_object_mut().unwrap().remove("origin");
        let old: ChangeRecord = serde_json::from_value(old).unwrap();
        assert_eq!(old.origin, None);
        assert!(old.is_canary());
    }

    #[test]
    fn age_is_measured_from_the_recorded_timestamp() {
        let at: DateTime<Utc> = "2024-01-01T00:00:00Z".parse().unwrap();
        let record = ChangeRecord::pending(&change(), &SourceId::new("KB", "DS"), 1, at, 1);
        assert_eq!(
            age_seconds(&record, at + chrono::Duration::milliseconds(2500)),
            2.5
        );
        assert_eq!(age_seconds(&record, at - chrono::Duration::seconds(5)), 0.0);
    }

    #[test]
    fn size_limit_is_50_megabytes_not_gigabytes() {
        let mut big = change();
        big.size = Some(MAX_DOCUMENT_BYTES + 1);
        assert!(oversize_warning(&big).unwrap().contains("50 MB"));
        big.size = Some(MAX_DOCUMENT_BYTES);
        assert_eq!(oversize_warning(&big), None);
        big.size = Some(60 * 1024 * 1024);
        assert!(
            oversize_warning(&big).is_some(),
            "60 MB must be refused (a 50 GB check would accept it)"
        );
    }
}

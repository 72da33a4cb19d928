//! SNS notifications: one per finished ingestion job, one per failure that is not a job failure
//! (access denied, unknown data source, ...), and one per scheduled drift check that repaired
//! drift. Subjects are what mail filters match on.

use serde::{Deserialize, Serialize};

/// Sent for every ingestion job that reached a terminal status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobNotification {
    pub knowledge_base_id: String,
    pub data_source_id: String,
    pub job_id: String,
    pub status: String,
    /// The eight counters of the job's `IngestionJobStatistics` under Bedrock's names
    /// (`numberOfDocumentsScanned`, ...); `{}` when the job has none.
    pub statistics: serde_json::Value,
    /// Changes the job marked SYNCED; 0 for a FAILED or STOPPED job.
    pub processed_changes: u64,
    /// Changes the job covered that are FAILED: those whose document Bedrock failed to ingest
    /// (COMPLETE), or all of them (FAILED or STOPPED on the last attempt). With
    /// `processed_changes`, every change the job covered; both are 0 when it will be retried.
    pub failed_changes: u64,
    pub failure_reasons: Vec<String>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub duration_seconds: Option<f64>,
    pub attempt: u32,
    pub will_retry: bool,
    pub execution_name: String,
    /// `job`, or `direct` for a direct batch: then `job_id` is the batch's id (`direct-...`) and
    /// `statistics` counts its documents by Bedrock status.
    #[serde(default)]
    pub ingestion_method: crate::direct::IngestionMethod,
}

impl JobNotification {
    pub fn subject(&self) -> String {
        format!("Bedrock KB Sync Job {}", self.status)
    }
}

/// Sent when a round ends without a job result: the job could not be started or followed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailureNotification {
    pub knowledge_base_id: String,
    pub data_source_id: String,
    pub status: String,
    pub error: String,
    pub message: String,
    /// Changes of the round left FAILED by this error: every change numbered up to the round's
    /// cutoff that was not SYNCED (a change FAILED before keeps its earlier reason).
    pub failed_changes: u64,
    pub execution_name: String,
    pub occurred_at: String,
}

impl FailureNotification {
    pub const STATUS: &'static str = "ERROR";

    pub fn subject(&self) -> String {
        format!("Bedrock KB Sync Job {}", self.status)
    }
}

/// Keys of each drift category a notification names (the counts are always whole).
pub const DRIFT_EXAMPLES: usize = 5;
/// Above this many bytes a drift notification drops its examples: SNS takes 256 KB.
const DRIFT_NOTIFICATION_MAX_BYTES: usize = 200 * 1024;

/// Sent once by a scheduled drift check that recorded changes to repair drift.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftNotification {
    pub status: String,
    pub checked_at: String,
    /// The data sources that drifted.
    pub data_sources: Vec<DataSourceDrift>,
}

/// One data source's drift in a [`DriftNotification`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSourceDrift {
    pub knowledge_base_id: String,
    pub data_source_id: String,
    pub missing: usize,
    pub stale: usize,
    pub orphaned: usize,
    /// Left alone: ingesting them again fails the same way.
    pub failed: usize,
    /// Left alone: a change of theirs is still PENDING.
    pub in_flight: usize,
    /// Changes recorded to repair the rest; they sync like any other change.
    pub recorded_changes: usize,
    /// The first keys of each category (at most [`DRIFT_EXAMPLES`]).
    pub examples: std::collections::BTreeMap<String, Vec<String>>,
}

impl DataSourceDrift {
    pub fn total(&self) -> usize {
        self.missing + self.stale + self.orphaned + self.failed
    }
}

impl DriftNotification {
    pub const STATUS: &'static str = "REPAIRED";

    pub fn new(checked_at: String, data_sources: Vec<DataSourceDrift>) -> Self {
        let mut notification = Self {
            status: Self::STATUS.to_string(),
            checked_at,
            data_sources,
        };
        let size = serde_json::to_vec(&notification).map_or(0, |v| v.len());
        if size > DRIFT_NOTIFICATION_MAX_BYTES {
            for source in &mut notification.data_sources {
                source.examples.clear();
            }
        }
        notification
    }

    pub fn subject(&self) -> String {
        format!("Bedrock KB Drift {}", self.status)
    }
}

/// Seconds between two RFC 3339 timestamps.
pub fn duration_seconds(started_at: Option<&str>, ended_at: Option<&str>) -> Option<f64> {
    let start = chrono::DateTime::parse_from_rfc3339(started_at?).ok()?;
    let end = chrono::DateTime::parse_from_rfc3339(ended_at?).ok()?;
    Some((end - start).num_milliseconds() as f64 / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn job_notification_has_the_documented_fields() {
        let n = JobNotification {
            knowledge_base_id: "KB".into(),
            data_source_id: "DS".into(),
            job_id: "J".into(),
            status: "COMPLETE".into(),
            statistics: json!({"numberOfDocumentsScanned": 3, "numberOfNewDocumentsIndexed": 1}),
            processed_changes: 2,
            failed_changes: 0,
            failure_reasons: vec![],
            started_at: Some("2024-01-01T00:00:00Z".into()),
            ended_at: Some("2024-01-01T00:01:30.500Z".into()),
            duration_seconds: duration_seconds(
                Some("2024-01-01T00:00:00Z"),
                Some("2024-01-01T00:01:30.500Z"),
            ),
            attempt: 1,
            will_retry: false,
            execution_name: "KB-DS-r1".into(),
            ingestion_method: crate::direct::IngestionMethod::Job,
        };
        assert_eq!(n.subject(), "Bedrock KB Sync Job COMPLETE");
        let body = serde_json::to_value(&n).unwrap();
        for field in [
            "knowledge_base_id",
            "data_source_id",
            "job_id",
            "status",
            "statistics",
            "processed_changes",
            "failure_reasons",
            "started_at",
            "ended_at",
            "duration_seconds",
            "ingestion_method",
        ] {
            assert!(body.get(field).is_some(), "missing {field}");
        }
        assert_eq!(body["duration_seconds"], json!(90.5));
        assert_eq!(body["statistics"]["numberOfNewDocumentsIndexed"], json!(1));
    }

    #[test]
    fn failure_notification_subject() {
        let n = FailureNotification {
            knowledge_base_id: "KB".into(),
            data_source_id: "DS".into(),
            status: FailureNotification::STATUS.into(),
            error: "NotRetryable".into(),
            message: "AccessDeniedException".into(),
            failed_changes: 1,
            execution_name: "e".into(),
            occurred_at: "t".into(),
        };
        assert_eq!(n.subject(), "Bedrock KB Sync Job ERROR");
    }

    fn drift(examples: usize, key_len: usize) -> DataSourceDrift {
        DataSourceDrift {
            knowledge_base_id: "KB".into(),
            data_source_id: "DS".into(),
            missing: 3,
            stale: 0,
            orphaned: 1,
            failed: 0,
            in_flight: 0,
            recorded_changes: 4,
            examples: [(
                "missing".to_string(),
                (0..examples)
                    .map(|i| format!("{i}{}", "k".repeat(key_len)))
                    .collect(),
            )]
            .into(),
        }
    }

    #[test]
    fn a_drift_notification_keeps_its_examples_unless_they_would_pass_the_sns_limit() {
        let small = DriftNotification::new("t".into(), vec![drift(3, 10)]);
        assert_eq!(small.subject(), "Bedrock KB Drift REPAIRED");
        assert_eq!(small.data_sources[0].examples["missing"].len(), 3);
        let many: Vec<DataSourceDrift> = (0..60).map(|_| drift(DRIFT_EXAMPLES, 1024)).collect();
        let big = DriftNotification::new("t".into(), many);
        assert!(big.data_sources.iter().all(|d| d.examples.is_empty()));
        assert_eq!(big.data_sources[59].recorded_changes, 4, "counts stay");
        assert!(serde_json::to_vec(&big).unwrap().len() < DRIFT_NOTIFICATION_MAX_BYTES);
    }
}

//! Ingestion jobs and their lifecycle.
//!
//! A job's whole future is fixed when its snapshot is attached: when it turns IN_PROGRESS, when it
//! ends and how (COMPLETE with its plan, or FAILED with reasons). `advance` only walks forward along
//! that timeline and stores each transition, so a job observed at some status can never be
//! observed at an earlier one afterwards, however the reads interleave.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::catalog::DataSourceKey;
use crate::sync_plan::{IngestionStatistics, SyncPlan};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobStatus {
    Starting,
    InProgress,
    Complete,
    Failed,
    Stopping,
    Stopped,
}

impl JobStatus {
    pub const ALL: [JobStatus; 6] = [
        Self::Starting,
        Self::InProgress,
        Self::Complete,
        Self::Failed,
        Self::Stopping,
        Self::Stopped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "STARTING",
            Self::InProgress => "IN_PROGRESS",
            Self::Complete => "COMPLETE",
            Self::Failed => "FAILED",
            Self::Stopping => "STOPPING",
            Self::Stopped => "STOPPED",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == value)
    }

    /// Occupies a concurrency slot (data source, knowledge base, account).
    pub fn is_active(self) -> bool {
        matches!(self, Self::Starting | Self::InProgress | Self::Stopping)
    }
}

/// Who started the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JobOrigin {
    /// StartIngestionJob through the API.
    Api,
    /// Injected through the control endpoint, as if someone clicked "Sync" in the console.
    Foreign,
}

/// When the job's transitions happen; known once the snapshot is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct JobTimeline {
    #[serde(serialize_with = "crate::timestamps::serialize_millis")]
    pub in_progress_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::timestamps::serialize_millis")]
    pub ends_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct IngestionJob {
    pub id: String,
    pub data_source: DataSourceKey,
    pub description: Option<String>,
    pub client_token: Option<String>,
    pub origin: JobOrigin,
    pub started_at: DateTime<Utc>,
    pub status: JobStatus,
    pub updated_at: DateTime<Utc>,
    /// None while the S3 snapshot is being taken: the job stays STARTING until it is attached.
    pub timeline: Option<JobTimeline>,
    /// The diff computed at start; None while the snapshot is pending or if listing failed.
    pub plan: Option<SyncPlan>,
    /// Set at start when the job is doomed (injected fault, S3 listing failed); it ends FAILED.
    pub planned_failure: Option<Vec<String>>,
    pub failure_reasons: Vec<String>,
    /// When a STOPPING job becomes STOPPED.
    pub stopped_at: Option<DateTime<Utc>>,
    /// Time of reaching COMPLETE, FAILED or STOPPED.
    pub ended_at: Option<DateTime<Utc>>,
}

/// What the API shows of a job (the plan stays inside).
#[derive(Debug, Clone, PartialEq)]
pub struct IngestionJobView {
    pub ingestion_job_id: String,
    pub knowledge_base_id: String,
    pub data_source_id: String,
    pub description: Option<String>,
    pub status: JobStatus,
    pub statistics: IngestionStatistics,
    pub failure_reasons: Vec<String>,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Result of StopIngestionJob on a job that cannot be stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotStoppable(pub JobStatus);

impl IngestionJob {
    pub fn new(
        id: String,
        data_source: DataSourceKey,
        origin: JobOrigin,
        description: Option<String>,
        client_token: Option<String>,
        started_at: DateTime<Utc>,
    ) -> Self {
        Self {
            id,
            data_source,
            description,
            client_token,
            origin,
            started_at,
            status: JobStatus::Starting,
            updated_at: started_at,
            timeline: None,
            plan: None,
            planned_failure: None,
            failure_reasons: Vec::new(),
            stopped_at: None,
            ended_at: None,
        }
    }

    pub fn view(&self) -> IngestionJobView {
        IngestionJobView {
            ingestion_job_id: self.id.clone(),
            knowledge_base_id: self.data_source.knowledge_base_id.clone(),
            data_source_id: self.data_source.data_source_id.clone(),
            description: self.description.clone(),
            status: self.status,
            statistics: self.visible_statistics(),
            failure_reasons: self.failure_reasons.clone(),
            started_at: self.started_at,
            updated_at: self.updated_at,
        }
    }

    /// Fixes the job's future once its snapshot has been diffed (or failed to be taken).
    pub fn schedule(&mut self, plan: Option<SyncPlan>, timeline: JobTimeline) {
        self.plan = plan;
        self.timeline = Some(timeline);
    }

    /// Moves the job along its timeline up to `now`. Returns true when this call completed the job,
    /// so the caller applies its plan to the index (exactly once).
    pub fn advance(&mut self, now: DateTime<Utc>) -> bool {
        let mut completed = false;
        loop {
            match (self.status, self.timeline, self.stopped_at) {
                (JobStatus::Starting, Some(timeline), _) if now >= timeline.in_progress_at => {
                    self.status = JobStatus::InProgress;
                    self.updated_at = timeline.in_progress_at;
                }
                (JobStatus::InProgress, Some(timeline), _) if now >= timeline.ends_at => {
                    match self.planned_failure.clone() {
                        Some(reasons) => {
                            self.status = JobStatus::Failed;
                            self.failure_reasons = reasons;
                        }
                        None => {
                            self.status = JobStatus::Complete;
                            completed = true;
                        }
                    }
                    self.updated_at = timeline.ends_at;
                    self.ended_at = Some(timeline.ends_at);
                }
                (JobStatus::Stopping, _, Some(stopped_at)) if now >= stopped_at => {
                    self.status = JobStatus::Stopped;
                    self.updated_at = stopped_at;
                    self.ended_at = Some(stopped_at);
                }
                _ => return completed,
            }
        }
    }

    pub fn request_stop(
        &mut self,
        now: DateTime<Utc>,
        stopping_for: Duration,
    ) -> Result<(), NotStoppable> {
        match self.status {
            JobStatus::Starting | JobStatus::InProgress => {
                self.status = JobStatus::Stopping;
                self.updated_at = now;
                self.stopped_at = Some(now + stopping_for);
                Ok(())
            }
            other => Err(NotStoppable(other)),
        }
    }

    /// Statistics as GetIngestionJob shows them: nothing while STARTING, the scan counts once the
    /// job is past STARTING, everything once COMPLETE.
    pub fn visible_statistics(&self) -> IngestionStatistics {
        match (&self.plan, self.status) {
            (Some(plan), JobStatus::Complete) => plan.statistics.clone(),
            (Some(plan), status) if status != JobStatus::Starting => plan.statistics.scanned_only(),
            _ => IngestionStatistics::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job_at(start: DateTime<Utc>) -> IngestionJob {
        IngestionJob::new(
            "JOB0000001".to_string(),
            DataSourceKey::new("KB", "DS"),
            JobOrigin::Api,
            None,
            None,
            start,
        )
    }

    fn timeline(start: DateTime<Utc>, in_progress_after: i64, ends_after: i64) -> JobTimeline {
        JobTimeline {
            in_progress_at: start + Duration::seconds(in_progress_after),
            ends_at: start + Duration::seconds(ends_after),
        }
    }

    #[test]
    fn job_walks_starting_in_progress_complete_and_completes_once() {
        let start = Utc::now();
        let mut job = job_at(start);
        assert!(
            !job.advance(start + Duration::seconds(100)),
            "no timeline yet: stays STARTING"
        );
        assert_eq!(job.status, JobStatus::Starting);
        job.schedule(Some(SyncPlan::default()), timeline(start, 5, 60));
        assert!(!job.advance(start + Duration::seconds(4)));
        assert_eq!(job.status, JobStatus::Starting);
        assert!(!job.advance(start + Duration::seconds(5)));
        assert_eq!(job.status, JobStatus::InProgress);
        assert!(job.advance(start + Duration::seconds(61)));
        assert_eq!(job.status, JobStatus::Complete);
        assert_eq!(job.updated_at, start + Duration::seconds(60));
        assert!(!job.advance(start + Duration::seconds(62)));
    }

    #[test]
    fn late_reader_sees_the_final_status_directly() {
        let start = Utc::now();
        let mut job = job_at(start);
        job.schedule(Some(SyncPlan::default()), timeline(start, 0, 0));
        assert!(job.advance(start));
        assert_eq!(job.status, JobStatus::Complete);
    }

    #[test]
    fn planned_failure_ends_failed_with_reasons_and_no_completion() {
        let start = Utc::now();
        let mut job = job_at(start);
        job.planned_failure = Some(vec!["boom".to_string()]);
        job.schedule(None, timeline(start, 1, 2));
        assert!(!job.advance(start + Duration::seconds(3)));
        assert_eq!(job.status, JobStatus::Failed);
        assert_eq!(job.failure_reasons, vec!["boom".to_string()]);
    }

    #[test]
    fn stopped_job_never_completes_and_finished_job_cannot_stop() {
        let start = Utc::now();
        let mut job = job_at(start);
        job.schedule(Some(SyncPlan::default()), timeline(start, 1, 10));
        job.request_stop(start + Duration::seconds(2), Duration::seconds(3))
            .unwrap();
        assert!(!job.advance(start + Duration::seconds(4)));
        assert_eq!(job.status, JobStatus::Stopping);
        assert!(!job.advance(start + Duration::seconds(20)));
        assert_eq!(job.status, JobStatus::Stopped);
        assert_eq!(
            job.request_stop(start, Duration::zero()),
            Err(NotStoppable(JobStatus::Stopped))
        );
    }

    #[test]
    fn statuses_round_trip_through_their_wire_names() {
        for status in JobStatus::ALL {
            assert_eq!(JobStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(JobStatus::parse("DONE"), None);
    }
}

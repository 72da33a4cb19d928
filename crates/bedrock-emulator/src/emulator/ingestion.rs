//! StartIngestionJob, GetIngestionJob, ListIngestionJobs, StopIngestionJob.

use chrono::{DateTime, Utc};

use super::{new_resource_id, Emulator};
use crate::catalog::DataSourceKey;
use crate::client_token::validate_client_token;
use crate::counters::Operation;
use crate::document_index::DocumentIndex;
use crate::errors::ApiError;
use crate::jobs::{
    IngestionJob, IngestionJobView, JobOrigin, JobStatus, JobTimeline, NotStoppable,
};
use crate::pagination::paginate;
use crate::s3_scope::{within, DataSourceScope};
use crate::sync_plan::{plan_sync, SyncPlan};

#[derive(Debug, Clone, Default)]
pub struct StartJobRequest {
    pub client_token: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobSortAttribute {
    StartedAt,
    Status,
}

#[derive(Debug, Clone)]
pub struct ListJobsQuery {
    /// Jobs whose status is one of these (the STATUS / EQ filter); None = all.
    pub statuses: Option<Vec<JobStatus>>,
    pub sort_attribute: JobSortAttribute,
    pub descending: bool,
    pub max_results: Option<i64>,
    pub next_token: Option<String>,
}

impl Default for ListJobsQuery {
    /// Newest first, like the console.
    fn default() -> Self {
        Self {
            statuses: None,
            sort_attribute: JobSortAttribute::StartedAt,
            descending: true,
            max_results: None,
            next_token: None,
        }
    }
}

/// A job created under the lock whose S3 snapshot is still to be taken.
pub(super) struct PendingJob {
    pub job_id: String,
    pub data_source: DataSourceKey,
    pub scope: DataSourceScope,
    /// Overrides the computed duration (slow-job fault, foreign job).
    pub forced_duration_seconds: Option<f64>,
}

impl Emulator {
    pub async fn start_ingestion_job(
        &self,
        knowledge_base_id: &str,
        data_source_id: &str,
        request: StartJobRequest,
    ) -> Result<IngestionJobView, ApiError> {
        validate_client_token(request.client_token.as_deref())?;
        validate_description(request.description.as_deref())?;
        let pending = {
            let (mut state, now) = self.lock();
            // Rate first: Bedrock throttles before looking at the request's resources.
            state.take_start_job_token(now)?;
            let data_source = state
                .catalog
                .data_source(knowledge_base_id, data_source_id)?;
            let (key, scope) = (data_source.key(), data_source.scope.clone());
            if let Some(token) = &request.client_token {
                let replayed = state
                    .client_tokens
                    .get(&(key.clone(), token.clone()))
                    .and_then(|job_id| state.job_by_id(job_id));
                if let Some(job) = replayed {
                    return Ok(job.view());
                }
            }
            state.check_job_slots(&key, &self.config().quotas)?;
            let planned_failure = state
                .faults
                .take_job_failure(knowledge_base_id, data_source_id);
            let forced_duration_seconds = state
                .faults
                .take_slow_job_duration(knowledge_base_id, data_source_id);
            let mut job = IngestionJob::new(
                new_resource_id(),
                key.clone(),
                JobOrigin::Api,
                request.description,
                request.client_token.clone(),
                now,
            );
            job.planned_failure = planned_failure;
            if let Some(token) = request.client_token {
                state
                    .client_tokens
                    .insert((key.clone(), token), job.id.clone());
            }
            let pending = PendingJob {
                job_id: job.id.clone(),
                data_source: key,
                scope,
                forced_duration_seconds,
            };
            tracing::info!(job_id = %job.id, knowledge_base_id, data_source_id, "ingestion job started");
            state.note_job_start(&pending.data_source, &job.id);
            state.jobs.push(job);
            pending
        };
        self.start_detached(pending).await
    }

    /// Takes the job's snapshot in a task of its own and waits for it. Once created, a job holds
    /// its data source, knowledge base and account slots; Bedrock carries on with it whatever the
    /// client does, so a client that disconnects during the S3 listing (dropping this future) must
    /// not leave the job STARTING forever.
    pub(super) async fn start_detached(
        &self,
        pending: PendingJob,
    ) -> Result<IngestionJobView, ApiError> {
        let emulator = self.clone();
        let job_id = pending.job_id.clone();
        tokio::spawn(async move { emulator.snapshot_and_schedule(pending).await })
            .await
            .unwrap_or_else(|error| {
                Err(ApiError::Internal(format!(
                    "Ingestion job {job_id} could not be started: {error}"
                )))
            })
    }

    /// Lists the data source's scope now (this is the job's snapshot), diffs it against the index
    /// and fixes the job's timeline. Runs without the lock held during the S3 call; the job already
    /// holds its concurrency slot, so nothing else can start on the data source meanwhile. The
    /// listing is bounded by `s3.listing_timeout_seconds`: a hung S3 fails the job.
    async fn snapshot_and_schedule(
        &self,
        pending: PendingJob,
    ) -> Result<IngestionJobView, ApiError> {
        let timeout = self.config().s3.listing_timeout();
        let snapshot = within(timeout, pending.scope.snapshot(self.shared.lister.as_ref())).await;
        let (mut state, now) = self.lock();
        let Some(started_at) = state.job_by_id(&pending.job_id).map(|job| job.started_at) else {
            return Err(reset_while_starting(&pending.job_id));
        };
        let config = self.config();
        let key = &pending.data_source;
        let (plan, listing_failure) = match snapshot {
            Ok(snapshot) => {
                let empty_index = DocumentIndex::default();
                let index = state.indexes.get(key).unwrap_or(&empty_index);
                let faults = &state.faults;
                let plan = plan_sync(&snapshot, index, &config.documents, |object_key| {
                    faults.document_failure(&key.knowledge_base_id, &key.data_source_id, object_key)
                });
                (Some(plan), None)
            }
            Err(error) => {
                tracing::warn!(job_id = %pending.job_id, %error, "S3 listing failed; the job will fail");
                (
                    None,
                    Some(format!(
                        "Unable to list the data source's S3 objects: {error}"
                    )),
                )
            }
        };
        let timeline =
            self.timeline_for(started_at, plan.as_ref(), pending.forced_duration_seconds);
        let job = state
            .job_by_id_mut(&pending.job_id)
            .ok_or_else(|| reset_while_starting(&pending.job_id))?;
        if let Some(reason) = listing_failure {
            job.planned_failure.get_or_insert_with(|| vec![reason]);
        }
        if let Some(plan) = &plan {
            tracing::info!(job_id = %job.id, statistics = ?plan.statistics, ends_at = %timeline.ends_at, "job scheduled");
        }
        job.schedule(plan, timeline);
        state.advance(now);
        state
            .job_by_id(&pending.job_id)
            .map(IngestionJob::view)
            .ok_or_else(|| reset_while_starting(&pending.job_id))
    }

    /// STARTING for the configured time (at most the whole job), then IN_PROGRESS until the end.
    fn timeline_for(
        &self,
        started_at: DateTime<Utc>,
        plan: Option<&SyncPlan>,
        forced_duration_seconds: Option<f64>,
    ) -> JobTimeline {
        let timing = &self.config().jobs;
        let work_items = plan.map(SyncPlan::work_items).unwrap_or(0) as f64;
        let total_seconds = forced_duration_seconds
            .unwrap_or(timing.base_duration_seconds + timing.per_document_seconds * work_items);
        let starting_seconds = timing.starting_seconds.min(total_seconds);
        let scale = self.time_scale();
        JobTimeline {
            in_progress_at: started_at + scale.real_duration(starting_seconds),
            ends_at: started_at + scale.real_duration(total_seconds),
        }
    }

    pub fn get_ingestion_job(
        &self,
        knowledge_base_id: &str,
        data_source_id: &str,
        ingestion_job_id: &str,
    ) -> Result<IngestionJobView, ApiError> {
        let (mut state, now) = self.lock();
        state.take_read_token(Operation::GetIngestionJob, now)?;
        let position = state.job_position(knowledge_base_id, data_source_id, ingestion_job_id)?;
        Ok(state.jobs[position].view())
    }

    pub fn list_ingestion_jobs(
        &self,
        knowledge_base_id: &str,
        data_source_id: &str,
        query: ListJobsQuery,
    ) -> Result<(Vec<IngestionJobView>, Option<String>), ApiError> {
        let (mut state, now) = self.lock();
        state.take_read_token(Operation::ListIngestionJobs, now)?;
        let key = state
            .catalog
            .data_source(knowledge_base_id, data_source_id)?
            .key();
        let mut jobs: Vec<IngestionJobView> = state
            .jobs
            .iter()
            .filter(|job| job.data_source == key)
            .filter(|job| {
                query
                    .statuses
                    .as_ref()
                    .is_none_or(|statuses| statuses.contains(&job.status))
            })
            .map(IngestionJob::view)
            .collect();
        jobs.sort_by(|a, b| {
            let by_attribute = match query.sort_attribute {
                JobSortAttribute::StartedAt => a.started_at.cmp(&b.started_at),
                // Alphabetical by status name, as Bedrock sorts the enum's strings.
                JobSortAttribute::Status => a.status.as_str().cmp(b.status.as_str()),
            };
            let ordered = by_attribute
                .then_with(|| a.started_at.cmp(&b.started_at))
                .then_with(|| a.ingestion_job_id.cmp(&b.ingestion_job_id));
            if query.descending {
                ordered.reverse()
            } else {
                ordered
            }
        });
        paginate(jobs, query.max_results, query.next_token.as_deref())
    }

    pub fn stop_ingestion_job(
        &self,
        knowledge_base_id: &str,
        data_source_id: &str,
        ingestion_job_id: &str,
    ) -> Result<IngestionJobView, ApiError> {
        let (mut state, now) = self.lock();
        let position = state.job_position(knowledge_base_id, data_source_id, ingestion_job_id)?;
        let stopping_for = self
            .time_scale()
            .real_duration(self.config().jobs.stopping_seconds);
        let job = &mut state.jobs[position];
        job.request_stop(now, stopping_for)
            .map_err(|NotStoppable(status)| {
                ApiError::Conflict(format!(
                    "Ingestion job {ingestion_job_id} is {} and can no longer be stopped.",
                    status.as_str()
                ))
            })?;
        state.advance(now);
        Ok(state.jobs[position].view())
    }
}

/// A reset between creating a job and attaching its snapshot drops the job; the caller gets a
/// retryable error rather than a job id nobody knows.
fn reset_while_starting(job_id: &str) -> ApiError {
    ApiError::Internal(format!(
        "The emulator was reset while ingestion job {job_id} was starting."
    ))
}

fn validate_description(description: Option<&str>) -> Result<(), ApiError> {
    match description {
        Some(text) if text.is_empty() || text.chars().count() > 200 => Err(ApiError::Validation(
            "1 validation error detected: Value at 'description' failed to satisfy constraint: \
             Member must have length between 1 and 200"
                .to_string(),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_are_limited_to_200_characters() {
        assert!(validate_description(Some("nightly")).is_ok());
        assert!(validate_description(Some("")).is_err());
        assert!(validate_description(Some(&"x".repeat(201))).is_err());
    }
}

use std::collections::HashMap;

use kb_autosync_aws::knowledge_base::{JobView, KnowledgeBase};
use kb_autosync_aws::metadata_table::{JobEnd, MetadataTable};
use kb_autosync_aws::metrics::{Metrics, JOBS_COMPLETED, JOBS_FAILED, OLDEST_PENDING_AGE};
use kb_autosync_aws::notifier::Notifier;
use kb_autosync_aws::sources_table::SourcesTable;
use kb_autosync_aws::tracking_table::TrackingTable;
use kb_autosync_aws::TaskError;
use kb_autosync_core::change::{age_seconds, ChangeRecord};
use kb_autosync_core::event::ChangeType;
use kb_autosync_core::job::{JobStatus, NextStep, RetryPolicy};
use kb_autosync_core::notification::{duration_seconds, FailureNotification, JobNotification};
use kb_autosync_core::workflow::{
    MonitorAction, MonitorRequest, MonitorResult, StartedJob, WorkflowState,
};
use kb_autosync_core::SourceId;

pub struct MonitorSync {
    pub knowledge_base: KnowledgeBase,
    pub tracking: TrackingTable,
    pub jobs: MetadataTable,
    pub sources: SourcesTable,
    pub notifier: Notifier,
    pub metrics: Metrics,
}

/// Document statuses that mean Bedrock could not ingest the file.
const FAILED_DOCUMENT: &str = "FAILED";

impl MonitorSync {
    pub async fn handle(&self, request: MonitorRequest) -> Result<serde_json::Value, TaskError> {
        match request.action {
            MonitorAction::Poll => {
                let result = self.poll(&request.state).await?;
                Ok(serde_json::to_value(result).unwrap_or_default())
            }
            MonitorAction::Fail => {
                self.fail(&request.state).await?;
                Ok(serde_json::json!({"handled": true}))
            }
        }
    }

    async fn poll(&self, state: &WorkflowState) -> Result<MonitorResult, TaskError> {
        let job = state.job.as_ref().ok_or_else(|| {
            TaskError::invalid_input("monitor-sync poll needs $.job (the started job)")
        })?;
        let source = state.input.source();
        let view = self.knowledge_base.get_job(&source, &job.job_id).await?;
        let status = JobStatus::parse(&view.status);
        let policy = kb_autosync_aws::config::retry_policy(&state.input.settings);
        let next = policy.next_step(&status, job.attempt);
        if !status.is_running() {
            self.finish(state, job, &view, &status, &next, &policy)
                .await?;
        } else {
            tracing::debug!(%source, job_id = %job.job_id, status = %view.status, "job running");
        }
        Ok(MonitorResult {
            next,
            status: view.status,
            job_id: job.job_id.clone(),
        })
    }

    /// A terminal job: mark the changes it covered, record it, free the slot, notify once.
    async fn finish(
        &self,
        state: &WorkflowState,
        job: &StartedJob,
        view: &JobView,
        status: &JobStatus,
        next: &NextStep,
        policy: &RetryPolicy,
    ) -> Result<(), TaskError> {
        let source = state.input.source();
        let execution = &state.input.execution_name;
        let covered = self.tracking.pending_up_to(&source, job.cutoff_seq).await?;
        let will_retry = matches!(next, NextStep::Retry { .. });
        let ended_at = kb_autosync_aws::now_rfc3339();
        let (mut processed, mut failed) = (0u64, 0u64);
        if *status == JobStatus::Complete {
            let documents = self.failed_documents(&source, &covered).await?;
            for change in &covered {
                let uri = format!("s3://{}/{}", change.bucket, change.key);
                if let Some(reason) = documents.get(&uri) {
                    failed += u64::from(
                        self.tracking
                            .mark_failed(&change.change_id, Some(&job.job_id), reason)
                            .await?,
                    );
                } else if self
                    .tracking
                    .mark_synced(&change.change_id, &job.job_id, &ended_at)
                    .await?
                {
                    processed += 1;
                }
            }
        } else if !will_retry {
            let reason = format!(
                "ingestion job {} ended {} after {} attempt(s): {}",
                job.job_id,
                status.as_str(),
                job.attempt,
                view.failure_reasons.join("; ")
            );
            for change in &covered {
                if self
                    .tracking
                    .mark_failed(&change.change_id, Some(&job.job_id), &reason)
                    .await?
                {
                    failed += 1;
                }
            }
            processed = failed;
        }
        let statistics_json = view.statistics.to_string();
        self.jobs
            .record_end(&JobEnd {
                job_id: &job.job_id,
                status: status.as_str(),
                ended_at: &ended_at,
                statistics_json: &statistics_json,
                failure_reasons: &view.failure_reasons,
                change_count: processed,
                failed_change_count: failed,
            })
            .await?;
        kb_autosync_aws::crash_point!("monitor-sync/before-release");
        self.sources
            .release_slot(&source.knowledge_base_id, execution)
            .await?;
        let metric = if *status == JobStatus::Complete {
            JOBS_COMPLETED
        } else {
            JOBS_FAILED
        };
        self.metrics.count(metric, 1, &source);
        self.emit_pending_age(&source).await;
        tracing::info!(%source, %execution, job_id = %job.job_id, status = status.as_str(), processed, failed, will_retry, max_attempts = policy.max_attempts, "ingestion job finished");

        if !self.jobs.is_notified(&job.job_id).await? {
            let notification = JobNotification {
                knowledge_base_id: source.knowledge_base_id.clone(),
                data_source_id: source.data_source_id.clone(),
                job_id: job.job_id.clone(),
                status: status.as_str().to_string(),
                statistics: view.statistics.clone(),
                processed_changes: processed,
                failed_changes: failed,
                failure_reasons: view.failure_reasons.clone(),
                started_at: Some(view.started_at.clone()),
                ended_at: Some(view.updated_at.clone()),
                duration_seconds: duration_seconds(Some(&view.started_at), Some(&view.updated_at)),
                attempt: job.attempt,
                will_retry,
                execution_name: execution.clone(),
            };
            self.notifier
                .publish(
                    &notification.subject(),
                    &serde_json::to_value(&notification).unwrap_or_default(),
                )
                .await?;
            self.jobs.mark_notified(&job.job_id, &ended_at).await?;
        }
        Ok(())
    }

    /// Documents of created/overwritten changes that Bedrock reports as FAILED, by S3 URI.
    async fn failed_documents(
        &self,
        source: &SourceId,
        covered: &[ChangeRecord],
    ) -> Result<HashMap<String, String>, TaskError> {
        let mut uris: Vec<String> = covered
            .iter()
            .filter(|c| c.change_type == ChangeType::Create)
            .map(|c| format!("s3://{}/{}", c.bucket, c.key))
            .collect();
        uris.sort();
        uris.dedup();
        if uris.is_empty() {
            return Ok(HashMap::new());
        }
        // Without per-document status a change whose document Bedrock failed would be marked
        // SYNCED: the error goes to the state machine (retried, then the round's changes are
        // marked FAILED with this reason) instead of being papered over.
        let states = self.knowledge_base.document_states(source, &uris).await?;
        Ok(states
            .into_iter()
            .filter(|d| d.status == FAILED_DOCUMENT)
            .map(|d| {
                let reason = format!(
                    "Bedrock failed to ingest the document: {}",
                    d.reason.unwrap_or_else(|| "no reason given".into())
                );
                (d.uri, reason)
            })
            .collect())
    }

    /// The round failed without a job result (a non-retryable error, or something unforeseen):
    /// its changes get FAILED with the reason, the job slot is freed, users are told.
    async fn fail(&self, state: &WorkflowState) -> Result<(), TaskError> {
        let source = state.input.source();
        let execution = &state.input.execution_name;
        let error = state.error.clone().unwrap_or_default();
        let message = error.message();
        let cutoff = match &state.job {
            Some(job) => job.cutoff_seq,
            None => self
                .sources
                .read(&source)
                .await?
                .map(|l| l.change_seq)
                .unwrap_or(0),
        };
        let reason = format!("sync of {source} failed: {}: {message}", error.error);
        let mut failed = 0u64;
        for change in self.tracking.pending_up_to(&source, cutoff).await? {
            if self
                .tracking
                .mark_failed(
                    &change.change_id,
                    state.job.as_ref().map(|j| j.job_id.as_str()),
                    &reason,
                )
                .await?
            {
                failed += 1;
            }
        }
        self.sources
            .release_slot(&source.knowledge_base_id, execution)
            .await?;
        tracing::error!(%source, %execution, error = %error.error, %message, failed_changes = failed, "round failed");
        let notification = FailureNotification {
            knowledge_base_id: source.knowledge_base_id.clone(),
            data_source_id: source.data_source_id.clone(),
            status: FailureNotification::STATUS.to_string(),
            error: error.error.clone(),
            message,
            failed_changes: failed,
            execution_name: execution.clone(),
            occurred_at: kb_autosync_aws::now_rfc3339(),
        };
        self.notifier
            .publish(
                &notification.subject(),
                &serde_json::to_value(&notification).unwrap_or_default(),
            )
            .await?;
        self.metrics.count(JOBS_FAILED, 1, &source);
        Ok(())
    }

    async fn emit_pending_age(&self, source: &SourceId) {
        match self.tracking.oldest_pending(source).await {
            Ok(oldest) => {
                let age = oldest
                    .map(|c| age_seconds(&c, chrono::Utc::now()))
                    .unwrap_or(0.0);
                self.metrics
                    .emit(OLDEST_PENDING_AGE, age, "Seconds", source);
            }
            // A metric only: the sweep emits it again within minutes.
            Err(e) => {
                tracing::warn!(%source, error = %e, "cannot read the oldest pending change for the age metric")
            }
        }
    }
}

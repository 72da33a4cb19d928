use std::collections::HashMap;

use futures_util::stream::{self, StreamExt};

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
/// DynamoDB writes in flight while marking a job's changes: a burst of 10,000 changes is marked
/// in seconds instead of outlasting the function's timeout one write at a time.
const MARK_CONCURRENCY: usize = 32;

/// What marking did to one change (None: it was already in that state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marked {
    Synced,
    Failed,
}

/// Runs `mark` for every change, `MARK_CONCURRENCY` at a time; the first error stops it (the
/// task is retried, and marking is idempotent).
async fn for_each_change<'a, F, Fut>(
    changes: &'a [ChangeRecord],
    mark: F,
) -> Result<Vec<Marked>, TaskError>
where
    F: Fn(&'a ChangeRecord) -> Fut,
    Fut: std::future::Future<Output = Result<Option<Marked>, kb_autosync_aws::AwsError>>,
{
    let mut results = stream::iter(changes.iter().map(mark)).buffer_unordered(MARK_CONCURRENCY);
    let mut marked = Vec::new();
    while let Some(result) = results.next().await {
        marked.extend(result?);
    }
    Ok(marked)
}

/// Whether listing all documents of the data source (1000 per call) takes fewer calls than
/// asking for the changed ones (10 per call). The job's scanned-document count sizes the data
/// source; without it, ask for the changed ones.
fn prefer_listing(changed_documents: usize, documents_in_source: Option<u64>) -> bool {
    let get_calls = changed_documents.div_ceil(10) as u64;
    match documents_in_source {
        Some(total) => total.div_ceil(1000).max(1) < get_calls,
        None => false,
    }
}

impl MonitorSync {
    pub async fn handle(&self, request: MonitorRequest) -> Result<serde_json::Value, TaskError> {
        match request.action {
            MonitorAction::Poll => {
                let result = self.poll(&request.state).await?;
                Ok(serde_json::to_value(result).unwrap_or_default())
            }
            MonitorAction::Fail => {
                let release_target = self.fail(&request.state).await?;
                // The state machine frees the lease only while `requested_seq` still equals it.
                Ok(
                    serde_json::json!({"handled": true, "release_target_text": release_target.to_string()}),
                )
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
            let documents = self.failed_documents(&source, &covered, view).await?;
            let tracking = &self.tracking;
            let (documents, ended_at) = (&documents, &ended_at);
            let outcomes = for_each_change(&covered, |change| async move {
                let uri = format!("s3://{}/{}", change.bucket, change.key);
                Ok(match documents.get(&uri) {
                    Some(reason) => tracking
                        .mark_failed(&change.change_id, Some(&job.job_id), reason)
                        .await?
                        .then_some(Marked::Failed),
                    None => tracking
                        .mark_synced(&change.change_id, &job.job_id, ended_at)
                        .await?
                        .then_some(Marked::Synced),
                })
            })
            .await?;
            processed = outcomes.iter().filter(|m| **m == Marked::Synced).count() as u64;
            failed = outcomes.iter().filter(|m| **m == Marked::Failed).count() as u64;
        } else if !will_retry {
            let reason = format!(
                "ingestion job {} ended {} after {} attempt(s): {}",
                job.job_id,
                status.as_str(),
                job.attempt,
                view.failure_reasons.join("; ")
            );
            let (tracking, reason) = (&self.tracking, &reason);
            failed = for_each_change(&covered, |change| async move {
                Ok(tracking
                    .mark_failed(&change.change_id, Some(&job.job_id), reason)
                    .await?
                    .then_some(Marked::Failed))
            })
            .await?
            .len() as u64;
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
        view: &JobView,
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
        let scanned = view.statistics["numberOfDocumentsScanned"].as_u64();
        let states = if prefer_listing(uris.len(), scanned) {
            self.knowledge_base.all_document_states(source).await?
        } else {
            self.knowledge_base.document_states(source, &uris).await?
        };
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
    /// its changes get FAILED with the reason, the job slot is freed, users are told. Returns the
    /// request count those changes answer: the job's pinned target, or, without a job, the
    /// count read together with the change counter (a request is counted only after its change
    /// was numbered and recorded, so every request in that count has its change marked here).
    async fn fail(&self, state: &WorkflowState) -> Result<u64, TaskError> {
        let source = state.input.source();
        let execution = &state.input.execution_name;
        let error = state.error.clone().unwrap_or_default();
        let message = error.message();
        let (cutoff, release_target) = match &state.job {
            Some(job) => (job.cutoff_seq, job.target_seq),
            None => {
                let lease = self.sources.read(&source).await?.unwrap_or_default();
                (lease.change_seq, lease.requested_seq)
            }
        };
        let reason = format!("sync of {source} failed: {}: {message}", error.error);
        let covered = self.tracking.pending_up_to(&source, cutoff).await?;
        let (tracking, reason_ref) = (&self.tracking, &reason);
        let job_id = state.job.as_ref().map(|j| j.job_id.as_str());
        let failed = for_each_change(&covered, |change| async move {
            Ok(tracking
                .mark_failed(&change.change_id, job_id, reason_ref)
                .await?
                .then_some(Marked::Failed))
        })
        .await?
        .len() as u64;
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
        Ok(release_target)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_the_data_source_only_when_that_takes_fewer_calls() {
        // 10,000 changed documents: 1,000 GetKnowledgeBaseDocuments calls, or 10 list pages.
        assert!(prefer_listing(10_000, Some(10_000)));
        // 25 changes in a data source of 100,000 documents: 3 calls beat 100 pages.
        assert!(!prefer_listing(25, Some(100_000)));
        // A handful of changes: one call either way, keep asking for them.
        assert!(!prefer_listing(5, Some(20)));
        assert!(!prefer_listing(10_000, None));
    }
}

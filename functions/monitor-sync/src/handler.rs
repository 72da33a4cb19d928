use std::collections::HashMap;

use futures_util::stream::{self, StreamExt};

use kb_autosync_aws::knowledge_base::{JobView, KnowledgeBase};
use kb_autosync_aws::metadata_table::{JobEnd, MetadataTable};
use kb_autosync_aws::metrics::{Metrics, JOBS_COMPLETED, JOBS_FAILED, OLDEST_PENDING_AGE};
use kb_autosync_aws::notifier::Notifier;
use kb_autosync_aws::sources_table::SourcesTable;
use kb_autosync_aws::stores::{
    IngestionJobs, JobRecords, Notifications, PendingChanges, SourcesStore,
};
use kb_autosync_aws::tracking_table::TrackingTable;
use kb_autosync_aws::TaskError;
use kb_autosync_core::change::{age_seconds, ChangeRecord};
use kb_autosync_core::direct::IngestionMethod;
use kb_autosync_core::event::ChangeType;
use kb_autosync_core::job::{JobStatus, NextStep, RetryPolicy};
use kb_autosync_core::notification::{duration_seconds, FailureNotification, JobNotification};
use kb_autosync_core::workflow::{
    MonitorAction, MonitorRequest, MonitorResult, StartedJob, WorkflowState,
};
use kb_autosync_core::SourceId;

/// monitor-sync's task. Generic over the stores (`kb_autosync_aws::stores`) so that finishing
/// and failing a round are unit-tested on in-memory ones; deployed with the AWS adapters (the
/// defaults).
pub struct MonitorSync<
    K = KnowledgeBase,
    T = TrackingTable,
    J = MetadataTable,
    S = SourcesTable,
    N = Notifier,
> {
    pub knowledge_base: K,
    pub tracking: T,
    pub jobs: J,
    pub sources: S,
    pub notifier: N,
    pub metrics: Metrics,
}

/// Document statuses that mean Bedrock could not ingest the file.
const FAILED_DOCUMENT: &str = "FAILED";
/// DynamoDB writes in flight while marking a job's changes: a burst of 10,000 changes is marked
/// in seconds instead of outlasting the function's timeout one write at a time.
const MARK_CONCURRENCY: usize = 32;

/// What a job decided for a change it covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Synced,
    Failed,
}

/// Marks every change as `mark` decides, `MARK_CONCURRENCY` at a time, and returns how many it
/// decided FAILED: every decision counts, whether this call changed the item or an earlier
/// attempt had. The first error stops it (the task is retried, and marking is idempotent).
async fn mark_all<'a, F, Fut>(changes: &'a [ChangeRecord], mark: F) -> Result<u64, TaskError>
where
    F: Fn(&'a ChangeRecord) -> Fut,
    Fut: std::future::Future<Output = Result<Decision, kb_autosync_aws::AwsError>>,
{
    let mut results = stream::iter(changes.iter().map(mark)).buffer_unordered(MARK_CONCURRENCY);
    let mut failed = 0;
    while let Some(decision) = results.next().await {
        if decision? == Decision::Failed {
            failed += 1;
        }
    }
    Ok(failed)
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

impl<K, T, J, S, N> MonitorSync<K, T, J, S, N>
where
    K: IngestionJobs,
    T: PendingChanges,
    J: JobRecords,
    S: SourcesStore,
    N: Notifications,
{
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
        let policy = state.input.settings.retry_policy();
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
    ///
    /// The totals are exact however many invocations the marking takes. Marking a big job can
    /// outlast the function's timeout; Step Functions then retries the task, and the next
    /// invocation finds only what is left in the pending index: a change marked SYNCED has left
    /// it, a FAILED one stays in it. So:
    /// - before it marks anything, the first invocation stores how many changes the job covers
    ///   (`covered_change_count` on the job item, written once); later invocations get that
    ///   first value back;
    /// - every invocation decides SYNCED or FAILED for every change it finds, whether it
    ///   changes the item or an earlier attempt already did;
    /// - the invocation that gets through therefore sees every FAILED change of the job:
    ///   failed = its FAILED decisions, synced = covered - failed (0 when the job failed).
    ///
    /// A stale read of the index (it is eventually consistent) can only show a change that was
    /// already marked SYNCED, which is decided SYNCED again: the totals do not move. FAILED
    /// includes changes an earlier job left FAILED that this job could not ingest either.
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
        let will_retry = matches!(next, NextStep::Retry { .. });
        let ended_at = kb_autosync_aws::now_rfc3339();
        // A job that will be retried marks nothing: its changes wait for the next attempt.
        let (processed, failed) = if will_retry {
            (0, 0)
        } else {
            self.mark_covered(&source, job, view, status, &ended_at)
                .await?
        };
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
        self.release_slot(&source, execution, status).await?;
        tracing::info!(%source, %execution, job_id = %job.job_id, status = status.as_str(), processed, failed, will_retry, max_attempts = policy.max_attempts, "ingestion job finished");
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
            ingestion_method: IngestionMethod::Job,
        };
        self.notify_once(&job.job_id, &notification, &ended_at)
            .await
    }

    /// Publishes the job's notification unless an earlier attempt of this task did: a retried
    /// task must not tell users twice.
    async fn notify_once(
        &self,
        job_id: &str,
        notification: &JobNotification,
        ended_at: &str,
    ) -> Result<(), TaskError> {
        if self.jobs.is_notified(job_id).await? {
            return Ok(());
        }
        self.notifier
            .publish(
                &notification.subject(),
                &serde_json::to_value(notification).unwrap_or_default(),
            )
            .await?;
        self.jobs.mark_notified(job_id, ended_at).await?;
        Ok(())
    }

    /// Frees the knowledge base's job slot for the next job, once this one is recorded, and
    /// counts the job.
    async fn release_slot(
        &self,
        source: &SourceId,
        execution: &str,
        status: &JobStatus,
    ) -> Result<(), TaskError> {
        kb_autosync_aws::crash_point!("monitor-sync/before-release");
        self.sources
            .release_slot(&source.knowledge_base_id, execution)
            .await?;
        let metric = if *status == JobStatus::Complete {
            JOBS_COMPLETED
        } else {
            JOBS_FAILED
        };
        self.metrics.count(metric, 1, source);
        self.emit_pending_age(source).await;
        Ok(())
    }

    /// Marks every change the ended job covered and returns (synced, failed): SYNCED, or FAILED
    /// where Bedrock failed its document, for a COMPLETE job; all FAILED for a FAILED or
    /// STOPPED one on its last attempt. See `finish` for why the totals are exact.
    async fn mark_covered(
        &self,
        source: &SourceId,
        job: &StartedJob,
        view: &JobView,
        status: &JobStatus,
        ended_at: &str,
    ) -> Result<(u64, u64), TaskError> {
        let covered = self.tracking.pending_up_to(source, job.cutoff_seq).await?;
        let total = self
            .jobs
            .covered_change_count(&job.job_id, covered.len() as u64)
            .await?;
        let tracking = &self.tracking;
        let method = Some((job.job_id.as_str(), IngestionMethod::Job));
        if *status != JobStatus::Complete {
            let reason = format!(
                "ingestion job {} ended {} after {} attempt(s): {}",
                job.job_id,
                status.as_str(),
                job.attempt,
                view.failure_reasons.join("; ")
            );
            let reason = &reason;
            let failed = mark_all(&covered, |change| async move {
                tracking
                    .mark_failed(&change.change_id, method, reason)
                    .await?;
                Ok(Decision::Failed)
            })
            .await?;
            return Ok((0, failed));
        }
        let documents = self.failed_documents(source, &covered, view).await?;
        let documents = &documents;
        let failed = mark_all(&covered, |change| async move {
            let uri = format!("s3://{}/{}", change.bucket, change.key);
            Ok(match documents.get(&uri) {
                Some(reason) => {
                    tracking
                        .mark_failed(&change.change_id, method, reason)
                        .await?;
                    Decision::Failed
                }
                None => {
                    tracking
                        .mark_synced(
                            &change.change_id,
                            &job.job_id,
                            ended_at,
                            IngestionMethod::Job,
                        )
                        .await?;
                    Decision::Synced
                }
            })
        })
        .await?;
        Ok((total.saturating_sub(failed), failed))
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
        let job_id = state.job.as_ref().map(|j| (j.job_id.as_str(), j.method));
        // Every change the round covers ends FAILED, and FAILED changes stay in the pending
        // index: when this task is retried after marking part of them, the invocation that gets
        // through finds them all again, so its count is the round's, not its own share.
        let failed = mark_all(&covered, |change| async move {
            tracking
                .mark_failed(&change.change_id, job_id, reason_ref)
                .await?;
            Ok(Decision::Failed)
        })
        .await?;
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
    //! Finishing and failing rounds on an in-memory account (`kb-autosync-test-support`):
    //! invocations run one after another on the same account, as Step Functions retries a
    //! task whose invocation failed or timed out.

    use super::*;
    use kb_autosync_core::change::ChangeStatus;
    use kb_autosync_core::workflow::MonitorAction;
    use kb_autosync_test_support::{Job, MemoryAccount};

    type InMemory =
        MonitorSync<MemoryAccount, MemoryAccount, MemoryAccount, MemoryAccount, MemoryAccount>;

    fn source() -> SourceId {
        SourceId::new("KB", "DS")
    }

    /// `KB#DS` with changes #1..=#`changes` PENDING (`s3://docs/doc-<seq>.txt`) and job `JOB1`
    /// ended with `status`.
    fn account(changes: u64, status: &str) -> MemoryAccount {
        let account = MemoryAccount::new();
        let job = Job {
            id: "JOB1".into(),
            running: false,
            complete: status == "COMPLETE",
        };
        account.add_data_source(&source(), vec![job]);
        account.with(|a| a.job_status.insert("JOB1".into(), status.into()));
        for seq in 1..=changes {
            account.record_change(
                &source(),
                seq,
                "2026-01-01T00:00:00.000Z",
                ChangeStatus::Pending,
            );
        }
        account
    }

    /// A fresh handler (a new Lambda process) on the shared account.
    fn handler(account: &MemoryAccount) -> InMemory {
        MonitorSync {
            knowledge_base: account.clone(),
            tracking: account.clone(),
            jobs: account.clone(),
            sources: account.clone(),
            notifier: account.clone(),
            metrics: Metrics::new("Test", "test-stack"),
        }
    }

    fn notifications(account: &MemoryAccount) -> Vec<serde_json::Value> {
        account.with(|a| a.published.iter().map(|(_, body)| body.clone()).collect())
    }

    fn with_status(account: &MemoryAccount, status: ChangeStatus) -> usize {
        account.with(|a| a.with_status(status))
    }

    /// The state monitor-sync gets for job `JOB1`, attempt `attempt` of `max_attempts`,
    /// covering changes numbered up to `cutoff`.
    fn request(
        action: MonitorAction,
        attempt: u32,
        max_attempts: u32,
        cutoff: u64,
    ) -> MonitorRequest {
        serde_json::from_value(serde_json::json!({
            "action": action,
            "state": {
                "knowledge_base_id": "KB", "data_source_id": "DS", "round": 1,
                "execution_name": "KB-DS-r1", "source_key": "KB#DS",
                "settings": {"monitor_interval_seconds": 30, "quota_wait_seconds": 60, "max_job_attempts": max_attempts, "retry_backoff_seconds": 60},
                "job": {"job_id": "JOB1", "attempt": attempt, "client_token": "t", "target_seq": 1, "target_seq_text": "1", "cutoff_seq": cutoff, "started_at": "2026-01-01T00:00:00.000Z", "skipped": false},
                "error": {"Error": "States.TaskFailed", "Cause": "{\"errorMessage\": \"GetIngestionJob failed\"}"}
            }
        }))
        .unwrap()
    }

    /// JOB1's counts as recorded: (changes marked SYNCED, left FAILED).
    fn recorded_counts(account: &MemoryAccount) -> (Option<u64>, Option<u64>) {
        account.with(|a| {
            let record = a.job_records.get("JOB1").cloned().unwrap_or_default();
            (record.change_count, record.failed_change_count)
        })
    }

    /// A first invocation that marks changes #1..=#`marked` and then stops (its writes for the
    /// others fail, like a Lambda that timed out in the middle of marking).
    async fn first_attempt_marks_only(
        account: &MemoryAccount,
        request: MonitorRequest,
        marked: u64,
    ) {
        let total = account.with(|a| a.changes.values().flatten().count()) as u64;
        account.with(|a| {
            a.broken_writes = (marked + 1..=total)
                .map(|seq| format!("{}-{seq}", source().key()))
                .collect()
        });
        handler(account)
            .handle(request)
            .await
            .expect_err("the first attempt stops in the middle of marking");
        account.with(|a| a.broken_writes.clear());
    }

    #[tokio::test]
    async fn a_job_marked_over_several_attempts_reports_every_change_it_covered() {
        // The burst of 10,000 in the benchmark: attempts that timed out marked part of the job
        // each, and the one that completed reported only its own share.
        let fake = account(10, "COMPLETE");
        fake.with(|a| {
            a.failed_documents.insert(
                "s3://docs/doc-2.txt".into(),
                "Unsupported file content".into(),
            )
        });
        let poll = || request(MonitorAction::Poll, 1, 3, 10);

        first_attempt_marks_only(&fake, poll(), 5).await;
        assert_eq!(
            (
                with_status(&fake, ChangeStatus::Synced),
                with_status(&fake, ChangeStatus::Failed)
            ),
            (4, 1),
            "the first attempt marked #1-#5"
        );
        assert!(notifications(&fake).is_empty());

        handler(&fake).handle(poll()).await.unwrap();
        assert_eq!(with_status(&fake, ChangeStatus::Synced), 9);
        assert_eq!(recorded_counts(&fake), (Some(9), Some(1)));
        let published = notifications(&fake);
        assert_eq!(published.len(), 1, "{published:?}");
        assert_eq!(published[0]["processed_changes"], 9);
        assert_eq!(published[0]["failed_changes"], 1);

        // A retry after the job was recorded (say, the invocation died before it returned)
        // records the same totals and does not notify again.
        handler(&fake).handle(poll()).await.unwrap();
        assert_eq!(recorded_counts(&fake), (Some(9), Some(1)));
        assert_eq!(notifications(&fake).len(), 1);
    }

    #[tokio::test]
    async fn a_job_that_failed_on_its_last_attempt_processed_no_change() {
        let fake = account(4, "FAILED");
        let poll = || request(MonitorAction::Poll, 2, 2, 4);

        first_attempt_marks_only(&fake, poll(), 2).await;
        assert_eq!(with_status(&fake, ChangeStatus::Failed), 2);

        handler(&fake).handle(poll()).await.unwrap();
        assert_eq!(with_status(&fake, ChangeStatus::Failed), 4);
        assert_eq!(recorded_counts(&fake), (Some(0), Some(4)));
        let published = notifications(&fake);
        assert_eq!(published.len(), 1, "{published:?}");
        assert_eq!(published[0]["status"], "FAILED");
        assert_eq!(published[0]["will_retry"], false);
        assert_eq!(published[0]["processed_changes"], 0);
        assert_eq!(published[0]["failed_changes"], 4);
    }

    #[tokio::test]
    async fn a_failed_job_that_will_be_retried_marks_and_counts_nothing() {
        let fake = account(3, "FAILED");
        handler(&fake)
            .handle(request(MonitorAction::Poll, 1, 2, 3))
            .await
            .unwrap();
        assert_eq!(with_status(&fake, ChangeStatus::Pending), 3);
        assert_eq!(recorded_counts(&fake), (Some(0), Some(0)));
        let published = notifications(&fake);
        assert_eq!(published[0]["will_retry"], true);
        assert_eq!(
            (
                &published[0]["processed_changes"],
                &published[0]["failed_changes"]
            ),
            (&serde_json::json!(0), &serde_json::json!(0))
        );
    }

    #[tokio::test]
    async fn a_round_failure_handled_over_several_attempts_counts_every_failed_change() {
        let fake = account(6, "COMPLETE");
        let fail = || request(MonitorAction::Fail, 1, 3, 6);

        first_attempt_marks_only(&fake, fail(), 4).await;
        assert_eq!(with_status(&fake, ChangeStatus::Failed), 4);

        handler(&fake).handle(fail()).await.unwrap();
        assert_eq!(with_status(&fake, ChangeStatus::Failed), 6);
        let published = notifications(&fake);
        assert_eq!(published.len(), 1, "{published:?}");
        assert_eq!(published[0]["status"], "ERROR");
        assert_eq!(published[0]["failed_changes"], 6);
    }

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

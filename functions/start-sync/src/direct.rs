//! The direct way through a round: the changes start-sync pinned are indexed or removed document
//! by document (IngestKnowledgeBaseDocuments / DeleteKnowledgeBaseDocuments), their statuses read
//! until terminal inside this invocation (cheaper than Step Functions transitions), and each
//! change marked SYNCED or FAILED. Whatever cannot go direct is left PENDING and the round takes
//! the job path for it, under the same lease and counters.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::stream::{self, StreamExt, TryStreamExt};
use tokio::time::Instant;

use kb_autosync_aws::knowledge_base::KnowledgeBase;
use kb_autosync_aws::metadata_table::{JobEnd, JobStart, MetadataTable};
use kb_autosync_aws::metrics::{Metrics, DIRECT_BATCHES};
use kb_autosync_aws::notifier::Notifier;
use kb_autosync_aws::objects::ObjectStore;
use kb_autosync_aws::tracking_table::TrackingTable;
use kb_autosync_aws::{AwsError, TaskError};
use kb_autosync_core::change::{ChangeRecord, ChangeStatus};
use kb_autosync_core::direct::plan::metadata_key;
use kb_autosync_core::direct::status::outcome;
use kb_autosync_core::direct::{
    change_outcomes, collapse, direct_or_job, token, DirectSettings, DocumentChanges,
    DocumentOutcome, IngestionMethod, IngestionMode, JobReason, PlannedDocument, Presence,
};
use kb_autosync_core::error_class::{classify, ErrorClass};
use kb_autosync_core::notification::{duration_seconds, JobNotification};
use kb_autosync_core::routing::RouteTable;
use kb_autosync_core::workflow::StartedJob;
use kb_autosync_core::SourceId;

use crate::pacer::Pacer;

/// HeadObject and tracking writes in flight at once.
const CONCURRENCY: usize = 8;
/// Attempts of one document call that Bedrock throttles, before the task gives up (and the
/// state machine retries it with backoff).
const THROTTLED_ATTEMPTS: u32 = 5;

pub struct DirectIngestion {
    pub knowledge_base: KnowledgeBase,
    pub objects: ObjectStore,
    pub tracking: TrackingTable,
    pub jobs: MetadataTable,
    pub notifier: Notifier,
    pub metrics: Metrics,
    pub routes: RouteTable,
    pub settings: DirectSettings,
}

/// The round as start-sync pinned it.
pub struct PinnedRound<'a> {
    pub source: SourceId,
    pub execution: &'a str,
    pub client_token: String,
    pub attempt: u32,
    pub target_seq: u64,
    pub cutoff_seq: u64,
}

impl PinnedRound<'_> {
    /// What start-sync returns for this round: a job or a direct batch (`id`), or nothing to do
    /// (`skipped`).
    pub fn started(
        &self,
        id: &str,
        started_at: &str,
        method: IngestionMethod,
        skipped: bool,
    ) -> StartedJob {
        StartedJob {
            job_id: id.to_string(),
            attempt: self.attempt,
            client_token: self.client_token.clone(),
            target_seq: self.target_seq,
            target_seq_text: self.target_seq.to_string(),
            cutoff_seq: self.cutoff_seq,
            started_at: started_at.to_string(),
            skipped,
            method,
        }
    }
}

/// A direct batch that ran: its id, when it started, and whether a job must follow.
#[derive(Debug)]
pub enum DirectOutcome {
    /// Every change up to the cutoff was decided directly.
    Done {
        batch_id: String,
        started_at: String,
    },
    /// The round (or what the batch left PENDING) needs an ingestion job.
    Job(JobReason),
}

/// What one batch did, for its record, its notification and the tracking table.
struct BatchResult {
    documents: HashMap<String, DocumentOutcome>,
    changes: HashMap<String, DocumentOutcome>,
    synced: u64,
    failed: u64,
    reasons: Vec<String>,
}

impl BatchResult {
    fn new(planned: &[PlannedDocument], documents: HashMap<String, DocumentOutcome>) -> Self {
        let changes = change_outcomes(planned, &documents);
        let mut reasons: Vec<String> = changes
            .values()
            .filter_map(|o| match o {
                DocumentOutcome::Failed(reason) => Some(reason.clone()),
                _ => None,
            })
            .collect();
        reasons.sort();
        reasons.dedup();
        let count = |pick: fn(&DocumentOutcome) -> bool| {
            changes.values().filter(|o| pick(o)).count() as u64
        };
        Self {
            synced: count(|o| matches!(o, DocumentOutcome::Indexed(_) | DocumentOutcome::Removed)),
            failed: count(|o| matches!(o, DocumentOutcome::Failed(_))),
            reasons: kb_autosync_core::job::bounded_failure_reasons(reasons),
            documents,
            changes,
        }
    }

    /// The job the round falls back to when documents were still processing at the deadline:
    /// their changes stay PENDING and only a job settles them.
    fn still_processing(&self, wait_seconds: u64) -> Option<JobReason> {
        let waiting: Vec<&String> = self
            .documents
            .iter()
            .filter(|(_, o)| !o.is_terminal())
            .map(|(uri, _)| uri)
            .collect();
        (!waiting.is_empty()).then(|| JobReason::DocumentsStillProcessing {
            waiting: waiting.len(),
            seconds: wait_seconds,
            example: waiting[0].clone(),
        })
    }

    /// Documents counted by status, the batch's statistics: the same shape as a job's, so that
    /// both read alike in records and notifications. A failure counts under the status its
    /// reason starts with.
    fn documents_by_status(&self) -> HashMap<String, u64> {
        let mut by_status: HashMap<String, u64> = HashMap::new();
        for outcome in self.documents.values() {
            let name = match outcome {
                DocumentOutcome::Indexed(status) | DocumentOutcome::Waiting(status) => {
                    status.clone()
                }
                DocumentOutcome::Removed => "NOT_FOUND".into(),
                DocumentOutcome::Failed(reason) => {
                    reason.split(':').next().unwrap_or("FAILED").to_string()
                }
            };
            *by_status.entry(name).or_default() += 1;
        }
        by_status
    }
}

impl DirectIngestion {
    /// The stack's or the route's ingestion mode for `source`.
    pub fn mode(&self, source: &SourceId) -> IngestionMode {
        self.routes.ingestion_mode(source, self.settings.mode)
    }

    /// `deadline`: when this invocation must stop waiting for documents (its remaining time
    /// less a margin for marking and recording).
    pub async fn run(
        &self,
        round: &PinnedRound<'_>,
        deadline: Instant,
    ) -> Result<DirectOutcome, TaskError> {
        let batch_id = token::batch_id(&round.client_token);
        let planned = match self.plan_batch(round, &batch_id).await? {
            Ok(planned) => planned,
            Err(decided) => return Ok(decided),
        };
        self.wait_for_foreign_jobs(&round.source).await?;
        let started_at = kb_autosync_aws::now_rfc3339();
        self.record_start(round, &batch_id, &started_at).await?;
        let batch_deadline =
            deadline.min(Instant::now() + Duration::from_secs(self.settings.wait_seconds));
        let mut pacer = Pacer::per_second(self.settings.calls_per_second);
        if let Err(reason) = self
            .send(round, &planned, &mut pacer, batch_deadline)
            .await?
        {
            return Ok(DirectOutcome::Job(reason));
        }
        kb_autosync_aws::crash_point!("start-sync/after-direct-calls");
        let documents = self
            .await_terminal(&round.source, &planned, &mut pacer, batch_deadline)
            .await?;
        let result = BatchResult::new(&planned, documents);
        let fall_back = result.still_processing(self.settings.wait_seconds);
        // Recorded and notified before the changes are marked: a retry after a crash in
        // between finds the batch notified and its changes PENDING, and a job covers them.
        self.finish(round, &batch_id, &started_at, &result, fall_back.is_some())
            .await?;
        kb_autosync_aws::crash_point!("start-sync/after-direct-notification");
        self.mark(&result, &batch_id).await?;
        Ok(match fall_back {
            Some(reason) => DirectOutcome::Job(reason),
            None => DirectOutcome::Done {
                batch_id,
                started_at,
            },
        })
    }

    /// The documents the batch sends, or the round's outcome without sending any: a job when
    /// the mode, the number of changes, a data source never synced by a job or a key S3 cannot
    /// settle rules the direct way out. A retried task whose batch already finished repeats
    /// nothing; what that batch left PENDING needs the job it fell back to.
    async fn plan_batch(
        &self,
        round: &PinnedRound<'_>,
        batch_id: &str,
    ) -> Result<Result<Vec<PlannedDocument>, DirectOutcome>, TaskError> {
        let mode = self.mode(&round.source);
        if mode == IngestionMode::Job {
            return Ok(Err(DirectOutcome::Job(JobReason::ModeIsJob)));
        }
        let pending: Vec<ChangeRecord> = self
            .tracking
            .pending_up_to(&round.source, round.cutoff_seq)
            .await?
            .into_iter()
            .filter(|c| c.status == ChangeStatus::Pending)
            .collect();
        if self.jobs.is_notified(batch_id).await? {
            return Ok(Err(match pending.len() {
                0 => DirectOutcome::Done {
                    batch_id: batch_id.to_string(),
                    started_at: kb_autosync_aws::now_rfc3339(),
                },
                left => DirectOutcome::Job(JobReason::BatchLeftChanges { left }),
            }));
        }
        let eligible = direct_or_job(
            mode,
            pending.len(),
            self.settings.max_changes,
            round.cutoff_seq,
        );
        if let Err(reason) = eligible {
            return Ok(Err(DirectOutcome::Job(reason)));
        }
        if !self.knowledge_base.has_completed_job(&round.source).await? {
            return Ok(Err(DirectOutcome::Job(JobReason::NeverSynced)));
        }
        Ok(self
            .plan(&collapse(&pending))
            .await
            .map_err(DirectOutcome::Job))
    }

    /// What S3 holds under every key form of every document; a lookup that fails leaves the
    /// round to a job (the key cannot be settled).
    async fn plan(&self, documents: &[DocumentChanges]) -> Result<Vec<PlannedDocument>, JobReason> {
        let looked_up: Vec<Vec<PlannedDocument>> = stream::iter(documents)
            .map(|document| async move {
                let mut presence = Vec::with_capacity(document.keys.len());
                for key in &document.keys {
                    presence.push(self.presence(&document.bucket, key).await?);
                }
                document.actions(&presence)
            })
            .buffered(CONCURRENCY)
            .try_collect()
            .await?;
        Ok(looked_up.into_iter().flatten().collect())
    }

    async fn presence(&self, bucket: &str, key: &str) -> Result<Presence, JobReason> {
        let not_settled = |error: AwsError| JobReason::KeyNotSettled {
            bucket: bucket.to_string(),
            key: key.to_string(),
            error: error.to_string(),
        };
        let Some(size) = self.objects.size(bucket, key).await.map_err(not_settled)? else {
            return Ok(Presence::Missing);
        };
        let metadata = self
            .objects
            .exists(bucket, &metadata_key(key))
            .await
            .map_err(not_settled)?;
        Ok(Presence::Exists { size, metadata })
    }

    /// A job started elsewhere (console, another tool) since check-quota looked: wait for it,
    /// exactly as for a job of our own. Direct calls never overlap a job of the data source.
    async fn wait_for_foreign_jobs(&self, source: &SourceId) -> Result<(), TaskError> {
        let running = self.knowledge_base.running_jobs(source).await?;
        if running.is_empty() {
            return Ok(());
        }
        Err(TaskError::new(
            ErrorClass::Busy,
            format!(
                "ingestion job(s) {} running on {source}: waiting before direct ingestion",
                running.join(", ")
            ),
        ))
    }

    /// Sends the ingest and delete calls, ten documents each. `Ok(Err(reason))`: Bedrock refused
    /// a call for a reason waiting does not fix, or time ran out: the round takes a job.
    async fn send(
        &self,
        round: &PinnedRound<'_>,
        planned: &[PlannedDocument],
        pacer: &mut Pacer,
        deadline: Instant,
    ) -> Result<Result<(), JobReason>, TaskError> {
        let (deletes, ingests): (Vec<_>, Vec<_>) = planned
            .iter()
            .map(|p| &p.action)
            .partition(|a| a.is_delete());
        let calls: Vec<&[_]> = ingests.chunks(10).chain(deletes.chunks(10)).collect();
        for (index, call) in calls.iter().enumerate() {
            if Instant::now() >= deadline {
                return Ok(Err(JobReason::OutOfTime {
                    remaining: calls.len() - index,
                }));
            }
            let call_token = token::call_token(&round.client_token, call);
            let mut attempt = 1;
            loop {
                pacer.wait().await;
                let sent = self
                    .knowledge_base
                    .send_documents(&round.source, call, &call_token)
                    .await;
                let Err(err) = sent else { break };
                match classify(Some(&err.code), Some(&err.message)) {
                    ErrorClass::Throttled if attempt < THROTTLED_ATTEMPTS => {
                        tracing::info!(source = %round.source, attempt, error = %err, "document call throttled: backing off");
                        tokio::time::sleep(Duration::from_millis(250 << attempt)).await;
                        attempt += 1;
                    }
                    ErrorClass::Busy => {
                        return Err(TaskError::new(
                            ErrorClass::Busy,
                            format!("{err}: waiting for the data source's ingestion job"),
                        ))
                    }
                    ErrorClass::NotRetryable => {
                        return Ok(Err(JobReason::DirectCallRefused {
                            operation: err.operation.to_string(),
                            error: err.to_string(),
                        }))
                    }
                    class => return Err(TaskError::new(class, err.to_string())),
                }
            }
        }
        Ok(Ok(()))
    }

    /// Reads the documents' statuses (ten per call) until all are terminal or `deadline`
    /// passes; throttled reads are simply read again later.
    async fn await_terminal(
        &self,
        source: &SourceId,
        planned: &[PlannedDocument],
        pacer: &mut Pacer,
        deadline: Instant,
    ) -> Result<HashMap<String, DocumentOutcome>, TaskError> {
        let actions: HashMap<&str, _> = planned
            .iter()
            .map(|p| (p.action.uri(), &p.action))
            .collect();
        let mut documents: HashMap<String, DocumentOutcome> = HashMap::new();
        let mut interval = Duration::from_millis(250);
        loop {
            let waiting: Vec<String> = actions
                .keys()
                .filter(|uri| {
                    !documents
                        .get(**uri)
                        .is_some_and(DocumentOutcome::is_terminal)
                })
                .map(|uri| uri.to_string())
                .collect();
            if waiting.is_empty() || Instant::now() >= deadline {
                return Ok(documents);
            }
            tokio::time::sleep(interval.min(deadline.saturating_duration_since(Instant::now())))
                .await;
            interval = (interval * 2).min(Duration::from_secs(2));
            for chunk in waiting.chunks(10) {
                pacer.wait().await;
                match self.knowledge_base.document_statuses(source, chunk).await {
                    Ok(states) => {
                        for (uri, state) in states {
                            if let Some(action) = actions.get(uri.as_str()) {
                                let read = outcome(action, &state.status, state.reason.as_deref());
                                documents.insert(uri, read);
                            }
                        }
                    }
                    Err(err) if classify(Some(&err.code), None) == ErrorClass::Throttled => {
                        tracing::info!(%source, error = %err, "status read throttled: reading again later");
                    }
                    Err(err) => return Err(err.into()),
                }
            }
        }
    }

    /// Marks each change by its documents' outcomes; a change still waiting stays PENDING.
    async fn mark(&self, result: &BatchResult, batch_id: &str) -> Result<(), TaskError> {
        let at = kb_autosync_aws::now_rfc3339();
        let (tracking, at) = (&self.tracking, &at);
        stream::iter(&result.changes)
            .map(|(change_id, outcome)| async move {
                match outcome {
                    DocumentOutcome::Indexed(_) | DocumentOutcome::Removed => {
                        tracking
                            .mark_synced(change_id, batch_id, at, IngestionMethod::Direct)
                            .await?;
                    }
                    DocumentOutcome::Failed(reason) => {
                        tracking
                            .mark_failed(
                                change_id,
                                Some((batch_id, IngestionMethod::Direct)),
                                reason,
                            )
                            .await?;
                    }
                    DocumentOutcome::Waiting(_) => {}
                }
                Ok::<_, AwsError>(())
            })
            .buffer_unordered(CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(())
    }

    async fn record_start(
        &self,
        round: &PinnedRound<'_>,
        batch_id: &str,
        started_at: &str,
    ) -> Result<(), TaskError> {
        self.jobs
            .record_start(&JobStart {
                job_id: batch_id,
                source: &round.source,
                status: "IN_PROGRESS",
                started_at,
                execution_name: round.execution,
                attempt: round.attempt,
                client_token: &round.client_token,
                target_seq: round.target_seq,
                cutoff_seq: round.cutoff_seq,
                method: IngestionMethod::Direct,
            })
            .await?;
        Ok(())
    }

    /// Records the batch's end and sends its one notification (same shape as a job's).
    async fn finish(
        &self,
        round: &PinnedRound<'_>,
        batch_id: &str,
        started_at: &str,
        result: &BatchResult,
        incomplete: bool,
    ) -> Result<(), TaskError> {
        let status = if incomplete { "INCOMPLETE" } else { "COMPLETE" };
        let statistics = serde_json::to_value(result.documents_by_status()).unwrap_or_default();
        let ended_at = kb_autosync_aws::now_rfc3339();
        self.jobs
            .record_end(&JobEnd {
                job_id: batch_id,
                status,
                ended_at: &ended_at,
                statistics_json: &statistics.to_string(),
                failure_reasons: &result.reasons,
                change_count: result.synced,
                failed_change_count: result.failed,
            })
            .await?;
        self.metrics.count(DIRECT_BATCHES, 1, &round.source);
        tracing::info!(source = %round.source, execution = round.execution, batch_id, status, synced = result.synced, failed = result.failed, documents = result.documents.len(), "direct batch finished");
        let notification = JobNotification {
            knowledge_base_id: round.source.knowledge_base_id.clone(),
            data_source_id: round.source.data_source_id.clone(),
            job_id: batch_id.to_string(),
            status: status.to_string(),
            statistics,
            processed_changes: result.synced,
            failed_changes: result.failed,
            failure_reasons: result.reasons.clone(),
            started_at: Some(started_at.to_string()),
            ended_at: Some(ended_at.clone()),
            duration_seconds: duration_seconds(Some(started_at), Some(&ended_at)),
            attempt: round.attempt,
            will_retry: false,
            execution_name: round.execution.to_string(),
            ingestion_method: IngestionMethod::Direct,
        };
        self.notifier
            .publish(
                &notification.subject(),
                &serde_json::to_value(&notification).unwrap_or_default(),
            )
            .await?;
        self.jobs.mark_notified(batch_id, &ended_at).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The direct way's decisions against mocked AWS answers: what is called, what is marked,
    //! and which error the state machine sees. The e2e suite `direct` runs the same path on
    //! the local stack.

    use aws_sdk_bedrockagent::operation::get_knowledge_base_documents::GetKnowledgeBaseDocumentsOutput;
    use aws_sdk_bedrockagent::operation::ingest_knowledge_base_documents::{
        IngestKnowledgeBaseDocumentsError, IngestKnowledgeBaseDocumentsOutput,
    };
    use aws_sdk_bedrockagent::types::{
        DocumentIdentifier, DocumentStatus, IngestionJobStatus, KnowledgeBaseDocumentDetail,
    };
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::operation::query::QueryOutput;
    use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
    use aws_sdk_s3::operation::head_object::HeadObjectOutput;
    use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
    use aws_smithy_types::error::ErrorMetadata;
    use kb_autosync_aws::test_util::ingestion_jobs;
    use kb_autosync_core::change::ChangeRecord;

    use super::*;

    fn source() -> SourceId {
        SourceId::new("KB", "DS")
    }

    fn round() -> PinnedRound<'static> {
        PinnedRound {
            source: source(),
            execution: "KB-DS-r1",
            client_token: "KB-DS-r1-p0-a1-0123456789abcdef0123456789abcdef".into(),
            attempt: 1,
            target_seq: 3,
            cutoff_seq: 7,
        }
    }

    fn pending_change(id: &str, key: &str) -> ChangeRecord {
        serde_json::from_value(serde_json::json!({
            "change_id": id, "knowledge_base_id": "KB", "data_source_id": "DS",
            "change_type": "create", "bucket": "b", "key": key,
            "timestamp": "2026-01-01T00:00:00Z", "event_name": "Object Created",
            "status": "PENDING", "processed": false, "source_seq": 5, "expires_at": 0,
            "pending_source": "KB#DS"
        }))
        .unwrap()
    }

    /// Answers shared by every test: one PENDING change of `docs/a.txt`, a data source that
    /// completed a job and runs none, the object in S3 without a metadata file.
    fn common() -> (Vec<Rule>, Vec<Rule>, Vec<Rule>) {
        let query = mock!(aws_sdk_dynamodb::Client::query).then_output(|| {
            QueryOutput::builder()
                .items(serde_dynamo::to_item(pending_change("c1", "docs/a.txt")).unwrap())
                .build()
        });
        let not_notified = mock!(aws_sdk_dynamodb::Client::get_item)
            .then_output(|| GetItemOutput::builder().build());
        let writes = mock!(aws_sdk_dynamodb::Client::update_item)
            .then_output(|| UpdateItemOutput::builder().build());
        // The COMPLETE filter finds the first sync; the running filters find nothing.
        let jobs = ingestion_jobs(&[("J0", IngestionJobStatus::Complete)]);
        let object = mock!(aws_sdk_s3::Client::head_object)
            .match_requests(|r| r.key() == Some("docs/a.txt"))
            .then_output(|| HeadObjectOutput::builder().content_length(5).build());
        let no_metadata = mock!(aws_sdk_s3::Client::head_object)
            .sequence()
            .http_status(404, None)
            .build();
        (
            vec![query, not_notified, writes],
            vec![jobs],
            vec![object, no_metadata],
        )
    }

    fn ingestion(
        dynamo: Vec<Rule>,
        bedrock: Vec<Rule>,
        s3: Vec<Rule>,
        sns: Vec<Rule>,
        mode: IngestionMode,
    ) -> DirectIngestion {
        let dynamo = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, &dynamo);
        let bedrock = mock_client!(aws_sdk_bedrockagent, RuleMode::MatchAny, &bedrock);
        DirectIngestion {
            knowledge_base: KnowledgeBase::new(bedrock),
            objects: ObjectStore::new(mock_client!(aws_sdk_s3, RuleMode::MatchAny, &s3)),
            tracking: TrackingTable::new(dynamo.clone(), "tracking"),
            jobs: MetadataTable::new(dynamo, "jobs", 1),
            notifier: Notifier::new(
                mock_client!(aws_sdk_sns, RuleMode::MatchAny, &sns),
                "arn:aws:sns:us-east-1:1:t",
            ),
            metrics: Metrics::new("Test", "test-stack"),
            routes: RouteTable::from_json(
                r#"[{"bucket":"b","knowledge_base_id":"KB","data_source_id":"DS"}]"#,
            )
            .unwrap(),
            settings: DirectSettings {
                mode,
                calls_per_second: 100.0,
                ..DirectSettings::default()
            },
        }
    }

    fn ingest_error(code: &'static str) -> Rule {
        mock!(aws_sdk_bedrockagent::Client::ingest_knowledge_base_documents).then_error(move || {
            IngestKnowledgeBaseDocumentsError::generic(
                ErrorMetadata::builder()
                    .code(code)
                    .message("refused by the test")
                    .build(),
            )
        })
    }

    fn deadline() -> Instant {
        Instant::now() + Duration::from_secs(20)
    }

    #[tokio::test]
    async fn job_mode_calls_nothing() {
        let direct = ingestion(vec![], vec![], vec![], vec![], IngestionMode::Job);
        let outcome = direct.run(&round(), deadline()).await.unwrap();
        assert!(matches!(outcome, DirectOutcome::Job(JobReason::ModeIsJob)));
    }

    #[tokio::test]
    async fn an_indexed_document_marks_its_change_synced_after_one_notification() {
        let (dynamo, mut bedrock, s3) = common();
        let ingest = mock!(aws_sdk_bedrockagent::Client::ingest_knowledge_base_documents)
            .match_requests(|r| {
                r.documents().len() == 1 && r.client_token().is_some_and(|t| t.len() == 64)
            })
            .then_output(|| IngestKnowledgeBaseDocumentsOutput::builder().build());
        let status =
            mock!(aws_sdk_bedrockagent::Client::get_knowledge_base_documents).then_output(|| {
                let identifier = DocumentIdentifier::builder()
                    .data_source_type(aws_sdk_bedrockagent::types::ContentDataSourceType::S3)
                    .s3(aws_sdk_bedrockagent::types::S3Location::builder()
                        .uri("s3://b/docs/a.txt")
                        .build()
                        .unwrap())
                    .build()
                    .unwrap();
                GetKnowledgeBaseDocumentsOutput::builder()
                    .document_details(
                        KnowledgeBaseDocumentDetail::builder()
                            .knowledge_base_id("KB")
                            .data_source_id("DS")
                            .status(DocumentStatus::Indexed)
                            .identifier(identifier)
                            .build()
                            .unwrap(),
                    )
                    .build()
            });
        let publish = mock!(aws_sdk_sns::Client::publish)
            .then_output(|| aws_sdk_sns::operation::publish::PublishOutput::builder().build());
        bedrock.insert(0, ingest.clone());
        bedrock.insert(0, status.clone());
        let direct = ingestion(
            dynamo.clone(),
            bedrock,
            s3,
            vec![publish.clone()],
            IngestionMode::Auto,
        );
        let outcome = direct.run(&round(), deadline()).await.unwrap();
        let DirectOutcome::Done { batch_id, .. } = outcome else {
            panic!("{outcome:?}");
        };
        assert_eq!(batch_id, token::batch_id(&round().client_token));
        assert_eq!(ingest.num_calls(), 1);
        assert!(status.num_calls() >= 1);
        assert_eq!(publish.num_calls(), 1);
        // record_start, record_end, mark_notified and the change's mark_synced.
        assert_eq!(dynamo[2].num_calls(), 4);
    }

    #[tokio::test]
    async fn a_conflict_from_a_job_that_started_meanwhile_makes_the_round_wait() {
        let (dynamo, mut bedrock, s3) = common();
        bedrock.insert(0, ingest_error("ConflictException"));
        let direct = ingestion(dynamo, bedrock, s3, vec![], IngestionMode::Auto);
        let err = direct.run(&round(), deadline()).await.unwrap_err();
        assert_eq!(err.error_type, "DataSourceBusy", "{err}");
    }

    #[tokio::test]
    async fn a_refusal_that_waiting_does_not_fix_falls_back_to_a_job() {
        let (dynamo, mut bedrock, s3) = common();
        bedrock.insert(0, ingest_error("AccessDeniedException"));
        let direct = ingestion(dynamo, bedrock, s3, vec![], IngestionMode::Auto);
        let outcome = direct.run(&round(), deadline()).await.unwrap();
        assert!(
            matches!(
                outcome,
                DirectOutcome::Job(JobReason::DirectCallRefused { .. })
            ),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn a_data_source_without_a_completed_job_takes_a_job() {
        let (dynamo, _, s3) = common();
        let direct = ingestion(
            dynamo,
            vec![ingestion_jobs(&[])],
            s3,
            vec![],
            IngestionMode::Direct,
        );
        let outcome = direct.run(&round(), deadline()).await.unwrap();
        assert!(
            matches!(outcome, DirectOutcome::Job(JobReason::NeverSynced)),
            "{outcome:?}"
        );
    }
}

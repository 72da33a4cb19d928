use kb_autosync_aws::knowledge_base::{JobView, KnowledgeBase};
use kb_autosync_aws::metadata_table::{JobStart, MetadataTable};
use kb_autosync_aws::metrics::{Metrics, JOBS_STARTED};
use kb_autosync_aws::sources_table::{SlotOutcome, SourcesTable};
use kb_autosync_aws::stores::{IngestionJobs, JobRecords, PendingChanges, SourcesStore};
use kb_autosync_aws::tracking_table::TrackingTable;
use kb_autosync_aws::TaskError;
use kb_autosync_core::direct::{IngestionMethod, MAX_BATCHES_PER_INVOCATION};
use kb_autosync_core::error_class::ErrorClass;
use kb_autosync_core::quota::IngestionQuota;
use kb_autosync_core::workflow::{StartedJob, WorkflowState};
use std::time::Duration;

use kb_autosync_core::SourceId;
use tokio::time::Instant;

use crate::direct::{DirectIngestion, DirectOutcome, PinnedRound};

/// start-sync's task. Generic over the stores (`kb_autosync_aws::stores`) so that the job path
/// is unit-tested on in-memory ones; deployed with the AWS adapters (the defaults).
pub struct StartSync<K = KnowledgeBase, S = SourcesTable, T = TrackingTable, J = MetadataTable> {
    pub direct: DirectIngestion,
    pub knowledge_base: K,
    pub sources: S,
    pub tracking: T,
    pub jobs: J,
    pub quota: IngestionQuota,
    /// Longest a StartIngestionJob call can be in flight (LEASE_CLAIM_GRACE_SECONDS: the
    /// function's timeout and a margin); see `SourcesTable::acquire_slot`.
    pub start_in_flight_ms: i64,
    pub metrics: Metrics,
}

/// Time a further batch needs at least (calls, a document's processing, marking).
const NEXT_BATCH_ROOM: Duration = Duration::from_secs(15);

impl<K, S, T, J> StartSync<K, S, T, J>
where
    K: IngestionJobs,
    S: SourcesStore,
    T: PendingChanges,
    J: JobRecords,
{
    /// Order matters: the counters are pinned BEFORE the job starts, so the job covers every
    /// change numbered up to the cutoff, and the lease is released only if no request arrived
    /// after the pin. A retried task pins nothing new and gets the same job back (client token).
    ///
    /// Between the pin and the job, the direct way: when the round's changes can go direct (see
    /// `direct`), they are ingested document by document and the round needs no job, or only
    /// one for what the direct batch could not settle. `deadline`: when the invocation must
    /// have stopped waiting for documents.
    pub async fn handle(
        &self,
        state: WorkflowState,
        deadline: Instant,
    ) -> Result<StartedJob, TaskError> {
        let source = state.input.source();
        let source_key = source.key();
        let execution = &state.input.execution_name;
        let attempt = state.next_attempt();
        let token = state.client_token(attempt);
        let round = self.pin(source, execution, attempt, token).await?;
        if self.nothing_new(&state, &round).await? {
            self.leave_line(&round).await?;
            return Ok(round.started(
                "",
                &kb_autosync_aws::now_rfc3339(),
                IngestionMethod::Job,
                true,
            ));
        }
        let round = match self.direct_batches(round, deadline).await? {
            Ok(done) => {
                self.sources.leave_line(&source_key, execution).await?;
                return Ok(done);
            }
            Err(round) => round,
        };
        self.take_slot(&round).await?;
        self.leave_line(&round).await?;
        let job = self.start_job(&round).await?;
        self.jobs
            .record_start(&JobStart {
                job_id: &job.job_id,
                source: &round.source,
                status: &job.status,
                started_at: &job.started_at,
                execution_name: execution,
                attempt,
                client_token: &round.client_token,
                target_seq: round.target_seq,
                cutoff_seq: round.cutoff_seq,
                method: IngestionMethod::Job,
            })
            .await?;
        self.metrics.count(JOBS_STARTED, 1, &round.source);
        tracing::info!(source = %round.source, execution, job_id = %job.job_id, attempt, target_seq = round.target_seq, cutoff_seq = round.cutoff_seq, "ingestion job started");
        Ok(round.started(&job.job_id, &job.started_at, IngestionMethod::Job, false))
    }

    /// Pins the counters for `token` (the same values for every retry of it).
    async fn pin<'a>(
        &self,
        source: SourceId,
        execution: &'a str,
        attempt: u32,
        token: String,
    ) -> Result<PinnedRound<'a>, TaskError> {
        let snapshot = self.sources.snapshot(&source, execution, &token).await.map_err(|e| {
            if e.is_condition_failed() {
                TaskError::lease_moved(format!("execution {execution} no longer holds the lease of {source}: not starting a job"))
            } else {
                e.into()
            }
        })?;
        Ok(PinnedRound {
            source,
            execution,
            client_token: token,
            attempt,
            target_seq: snapshot.target_seq,
            cutoff_seq: snapshot.cutoff_seq,
        })
    }

    /// Direct batches, as many as requests keep arriving and the invocation has time for:
    /// after a batch, when a request was counted meanwhile, the counters are pinned again (a
    /// token of its own, so a retried task pins the same values) and the next batch runs in
    /// the same invocation, which costs no state transition. `Ok`: the round is done directly;
    /// `Err(round)`: the round, as last pinned, takes the job path.
    async fn direct_batches<'a>(
        &self,
        mut round: PinnedRound<'a>,
        deadline: Instant,
    ) -> Result<Result<StartedJob, PinnedRound<'a>>, TaskError> {
        if self.holds_slot(&round).await? {
            // An earlier attempt of this task took the slot to start a job, and may have started
            // it: the retry must find that job (same client token), not go direct beside it.
            return Ok(Err(round));
        }
        let first_token = round.client_token.clone();
        let mut batch = 1;
        loop {
            let (batch_id, started_at) = match self.direct.run(&round, deadline).await? {
                DirectOutcome::Done {
                    batch_id,
                    started_at,
                } => (batch_id, started_at),
                DirectOutcome::Job(reason) => {
                    tracing::info!(source = %round.source, execution = round.execution, cutoff_seq = round.cutoff_seq, %reason, "this round takes an ingestion job");
                    return Ok(Err(round));
                }
            };
            let done = round.started(&batch_id, &started_at, IngestionMethod::Direct, false);
            let pause = Duration::from_secs(self.direct.settings.pause_seconds);
            let room = deadline.saturating_duration_since(Instant::now());
            if batch >= MAX_BATCHES_PER_INVOCATION
                || room < pause + NEXT_BATCH_ROOM
                || !self.requested_since(&round).await?
            {
                return Ok(Ok(done));
            }
            batch += 1;
            tokio::time::sleep(pause).await;
            let token = format!("{first_token}-b{batch}");
            round = self
                .pin(round.source, round.execution, round.attempt, token)
                .await?;
        }
    }

    /// Whether this execution holds its knowledge base's job slot.
    async fn holds_slot(&self, round: &PinnedRound<'_>) -> Result<bool, TaskError> {
        let slots = self.sources.read_slots().await?;
        Ok(slots.holders.iter().any(|h| {
            h.knowledge_base_id == round.source.knowledge_base_id
                && h.execution_name == round.execution
        }))
    }

    /// Whether a sync request was counted after `round` pinned its counters.
    async fn requested_since(&self, round: &PinnedRound<'_>) -> Result<bool, TaskError> {
        let lease = self.sources.read(&round.source).await?.unwrap_or_default();
        Ok(lease.requested_seq > round.target_seq)
    }

    /// The round goes again because requests were counted during the previous job, but every
    /// change they announced was numbered before that job's pin: nothing to ingest.
    async fn nothing_new(
        &self,
        state: &WorkflowState,
        round: &PinnedRound<'_>,
    ) -> Result<bool, TaskError> {
        if state.previous_cutoff != Some(round.cutoff_seq)
            || self
                .tracking
                .has_pending_up_to(&round.source, round.cutoff_seq)
                .await?
        {
            return Ok(false);
        }
        tracing::info!(source = %round.source, execution = round.execution, cutoff_seq = round.cutoff_seq, target_seq = round.target_seq, "no change since the previous job started: releasing without a new job");
        Ok(true)
    }

    /// Takes the round out of the line for job slots (`kb_autosync_core::slot_line`): it has
    /// its slot, or needs none. A no-op when it never stood there.
    async fn leave_line(&self, round: &PinnedRound<'_>) -> Result<(), TaskError> {
        self.sources
            .leave_line(&round.source.key(), round.execution)
            .await?;
        Ok(())
    }

    /// The knowledge base's job slot: one job per knowledge base, the account limit and the
    /// start rate, across every execution of the stack.
    async fn take_slot(&self, round: &PinnedRound<'_>) -> Result<(), TaskError> {
        let now = kb_autosync_aws::now_ms();
        let outcome = self
            .sources
            .acquire_slot(
                &round.source,
                round.execution,
                now,
                self.quota.max_concurrent_jobs_per_account,
                self.quota.start_min_interval_ms,
                self.start_in_flight_ms,
            )
            .await?;
        let SlotOutcome::Busy(slots) = outcome else {
            return Ok(());
        };
        let holders: Vec<String> = slots
            .holders
            .iter()
            .map(|h| format!("{} ({})", h.knowledge_base_id, h.execution_name))
            .collect();
        Err(TaskError::new(
            ErrorClass::Busy,
            format!("job slot for {} not available: held [{}], account limit {}, last start {:?} ms ago", round.source, holders.join(", "), self.quota.max_concurrent_jobs_per_account, slots.last_start_ms.map(|t| now - t)),
        ))
    }

    /// StartIngestionJob with the round's client token; the slot is given back when Bedrock
    /// refuses for a reason other than throttling (the retry takes it again then).
    async fn start_job(&self, round: &PinnedRound<'_>) -> Result<JobView, TaskError> {
        let (source, execution) = (&round.source, round.execution);
        let description = format!(
            "kb-autosync {execution} attempt {}: changes up to #{}",
            round.attempt, round.cutoff_seq
        );
        let started = self
            .knowledge_base
            .start_job(source, &round.client_token, &description)
            .await;
        if started.is_ok() {
            kb_autosync_aws::crash_point!("start-sync/after-start-ingestion-job");
        }
        self.sources
            .mark_started(
                &source.knowledge_base_id,
                execution,
                kb_autosync_aws::now_ms(),
            )
            .await?;
        match started {
            Ok(job) => Ok(job),
            Err(err) => {
                if err.class != ErrorClass::Throttled {
                    self.sources
                        .release_slot(&source.knowledge_base_id, execution)
                        .await?;
                }
                tracing::warn!(%source, %execution, class = ?err.class, error = %err, "StartIngestionJob refused");
                Err(TaskError::new(err.class, err.to_string()))
            }
        }
    }
}

#[cfg(test)]
mod in_memory;

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use aws_sdk_bedrockagent::operation::start_ingestion_job::{
        StartIngestionJobError, StartIngestionJobOutput,
    };
    use aws_sdk_bedrockagent::types::{IngestionJob, IngestionJobStatus};
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
    use aws_sdk_dynamodb::types::AttributeValue;
    use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
    use aws_smithy_types::error::ErrorMetadata;
    use aws_smithy_types::DateTime;
    use kb_autosync_aws::knowledge_base::KnowledgeBase;
    use kb_autosync_aws::test_util::update_condition_failed;

    use super::*;

    fn state() -> WorkflowState {
        serde_json::from_value(serde_json::json!({
            "knowledge_base_id": "KB", "data_source_id": "DS", "round": 1, "execution_name": "KB-DS-r1", "source_key": "KB#DS",
            "settings": {"monitor_interval_seconds": 1, "quota_wait_seconds": 1, "max_job_attempts": 2, "retry_backoff_seconds": 1}
        }))
        .unwrap()
    }

    /// Direct ingestion switched off (`job` mode): these tests are about the job path, which
    /// then makes no direct call at all.
    fn job_mode(
        bedrock: &aws_sdk_bedrockagent::Client,
        dynamo: &aws_sdk_dynamodb::Client,
    ) -> DirectIngestion {
        use kb_autosync_core::direct::{DirectSettings, IngestionMode};
        DirectIngestion {
            knowledge_base: KnowledgeBase::new(bedrock.clone()),
            objects: kb_autosync_aws::objects::ObjectStore::new(mock_client!(aws_sdk_s3, [])),
            tracking: TrackingTable::new(dynamo.clone(), "tracking"),
            jobs: MetadataTable::new(dynamo.clone(), "jobs", 1),
            notifier: kb_autosync_aws::notifier::Notifier::new(mock_client!(aws_sdk_sns, []), "arn:aws:sns:us-east-1:1:t"),
            metrics: Metrics::new("Test", "test-stack"),
            routes: kb_autosync_core::routing::RouteTable::from_json(r#"[{"bucket":"b","knowledge_base_id":"KB","data_source_id":"DS","ingestion_mode":"job"}]"#).unwrap(),
            settings: DirectSettings { mode: IngestionMode::Auto, ..DirectSettings::default() },
        }
    }

    fn deadline() -> Instant {
        Instant::now() + std::time::Duration::from_secs(30)
    }

    fn n(v: u64) -> AttributeValue {
        AttributeValue::N(v.to_string())
    }

    struct Mocks {
        release: Rule,
        start: Rule,
        record: Rule,
        started: Rule,
    }

    /// `slot_free`: the slot acquisition succeeds; `start`: what StartIngestionJob answers.
    fn start_sync(
        slot_free: bool,
        start: Result<(), &'static str>,
    ) -> (StartSync, Mocks, Vec<Rule>) {
        start_sync_with_late_change(slot_free, start, None)
    }

    /// `late_change`: a change numbered under the cutoff that the pending index still lists, and
    /// the status a consistent read of its item finds (None: the index lists nothing).
    fn start_sync_with_late_change(
        slot_free: bool,
        start: Result<(), &'static str>,
        late_change: Option<&'static str>,
    ) -> (StartSync, Mocks, Vec<Rule>) {
        let listed = mock!(aws_sdk_dynamodb::Client::query)
            .match_requests(|r| {
                r.index_name() == Some("pending-by-source")
                    && r.filter_expression() == Some("#status = :pending")
                    && r.expression_attribute_values().unwrap().get(":c") == Some(&n(40))
            })
            .then_output(move || {
                let items = late_change
                    .map(|_| {
                        vec![HashMap::from([(
                            "change_id".to_string(),
                            AttributeValue::S("late".into()),
                        )])]
                    })
                    .unwrap_or_default();
                aws_sdk_dynamodb::operation::query::QueryOutput::builder()
                    .set_items(Some(items))
                    .build()
            });
        let confirmed = mock!(aws_sdk_dynamodb::Client::get_item)
            .match_requests(|r| {
                r.key().and_then(|k| k.get("change_id")) == Some(&AttributeValue::S("late".into()))
                    && r.consistent_read() == Some(true)
            })
            .then_output(move || {
                GetItemOutput::builder()
                    .set_item(Some(HashMap::from([(
                        "status".to_string(),
                        AttributeValue::S(late_change.unwrap_or("SYNCED").into()),
                    )])))
                    .build()
            });
        let read = mock!(aws_sdk_dynamodb::Client::get_item)
            .match_requests(|r| {
                r.key().and_then(|k| k.get("source_id")) == Some(&AttributeValue::S("KB#DS".into()))
            })
            .then_output(|| {
                GetItemOutput::builder()
                    .set_item(Some(HashMap::from([
                        ("requested_seq".to_string(), n(12)),
                        ("change_seq".to_string(), n(40)),
                        (
                            "active_execution".to_string(),
                            AttributeValue::S("KB-DS-r1".into()),
                        ),
                    ])))
                    .build()
            });
        let snapshot = mock!(aws_sdk_dynamodb::Client::update_item)
            .match_requests(|r| {
                r.update_expression()
                    == Some("SET snapshots.#token = if_not_exists(snapshots.#token, :snap)")
                    && r.expression_attribute_names()
                        .and_then(|n| n.get("#token"))
                        .is_some_and(|t| t.starts_with("KB-DS-r1-p0-a1-"))
            })
            .then_output(|| {
                let snap = AttributeValue::M(HashMap::from([
                    ("target_seq".to_string(), n(12)),
                    ("cutoff_seq".to_string(), n(40)),
                ]));
                let snapshots = AttributeValue::M(HashMap::from([(state().client_token(1), snap)]));
                UpdateItemOutput::builder()
                    .set_attributes(Some(HashMap::from([("snapshots".to_string(), snapshots)])))
                    .build()
            });
        let acquire = mock!(aws_sdk_dynamodb::Client::update_item).match_requests(|r| {
            r.update_expression() == Some("SET holders.#kb = :holder, last_start_ms = :stamp")
        });
        let acquire = if slot_free {
            acquire.then_output(|| UpdateItemOutput::builder().build())
        } else {
            acquire.then_error(update_condition_failed)
        };
        let slots = mock!(aws_sdk_dynamodb::Client::get_item)
            .match_requests(|r| {
                r.key().and_then(|k| k.get("source_id")) == Some(&AttributeValue::S("SLOTS".into()))
            })
            .then_output(|| {
                let holder = AttributeValue::M(HashMap::from([(
                    "execution".to_string(),
                    AttributeValue::S("KB-OTHER-r3".into()),
                )]));
                GetItemOutput::builder()
                    .set_item(Some(HashMap::from([(
                        "holders".to_string(),
                        AttributeValue::M(HashMap::from([("KB".to_string(), holder)])),
                    )])))
                    .build()
            });
        let release = mock!(aws_sdk_dynamodb::Client::update_item)
            .match_requests(|r| r.update_expression() == Some("REMOVE holders.#kb"))
            .then_output(|| UpdateItemOutput::builder().build());
        let started = mock!(aws_sdk_dynamodb::Client::update_item)
            .match_requests(|r| r.update_expression() == Some("SET last_start_ms = :now"))
            .then_output(|| UpdateItemOutput::builder().build());
        let record = mock!(aws_sdk_dynamodb::Client::update_item)
            .match_requests(|r| r.key().and_then(|k| k.get("job_id")).is_some())
            .then_output(|| UpdateItemOutput::builder().build());
        // The round leaves the line for job slots (it never stood there: the condition fails).
        let left_line = mock!(aws_sdk_dynamodb::Client::update_item)
            .match_requests(|r| r.update_expression() == Some("REMOVE line.#src"))
            .then_error(update_condition_failed);
        let bedrock_start = mock!(aws_sdk_bedrockagent::Client::start_ingestion_job)
            .match_requests(|r| {
                r.client_token()
                    .is_some_and(|t| t.starts_with("KB-DS-r1-p0-a1-"))
            });
        let bedrock_start = match start {
            Ok(()) => bedrock_start.then_output(|| {
                let job = IngestionJob::builder()
                    .knowledge_base_id("KB")
                    .data_source_id("DS")
                    .ingestion_job_id("JOB1")
                    .status(IngestionJobStatus::Starting)
                    .started_at(DateTime::from_secs(1_700_000_000))
                    .updated_at(DateTime::from_secs(1_700_000_000))
                    .build()
                    .unwrap();
                StartIngestionJobOutput::builder()
                    .ingestion_job(job)
                    .build()
            }),
            Err(code) => bedrock_start.then_error(move || match code {
                "ThrottlingException" => StartIngestionJobError::ThrottlingException(
                    aws_sdk_bedrockagent::types::error::ThrottlingException::builder()
                        .message("rate")
                        .meta(ErrorMetadata::builder().code(code).message("rate").build())
                        .build(),
                ),
                _ => StartIngestionJobError::ConflictException(
                    aws_sdk_bedrockagent::types::error::ConflictException::builder()
                        .message("busy")
                        .meta(ErrorMetadata::builder().code(code).message("busy").build())
                        .build(),
                ),
            }),
        };
        let dynamo = mock_client!(
            aws_sdk_dynamodb,
            RuleMode::MatchAny,
            [
                &read, &snapshot, &acquire, &slots, &release, &started, &record, &listed,
                &confirmed, &left_line
            ]
        );
        let bedrock = mock_client!(aws_sdk_bedrockagent, RuleMode::MatchAny, [&bedrock_start]);
        let handler = StartSync {
            direct: job_mode(&bedrock, &dynamo),
            knowledge_base: KnowledgeBase::new(bedrock),
            sources: SourcesTable::new(dynamo.clone(), "sources"),
            tracking: TrackingTable::new(dynamo.clone(), "tracking"),
            jobs: MetadataTable::new(dynamo, "jobs", 1),
            quota: IngestionQuota::default(),
            start_in_flight_ms: 60_000,
            metrics: Metrics::new("Test", "test-stack"),
        };
        (
            handler,
            Mocks {
                release,
                start: bedrock_start,
                record,
                started,
            },
            vec![read, snapshot, acquire, slots],
        )
    }

    #[tokio::test]
    async fn starts_the_job_with_the_pinned_counters_and_records_it() {
        let (handler, mocks, _) = start_sync(true, Ok(()));
        let job = handler.handle(state(), deadline()).await.unwrap();
        assert_eq!(
            (
                job.job_id.as_str(),
                job.attempt,
                job.target_seq,
                job.cutoff_seq
            ),
            ("JOB1", 1, 12, 40)
        );
        assert_eq!(job.target_seq_text, "12");
        assert_eq!(job.client_token, state().client_token(1));
        assert_eq!(
            (
                mocks.start.num_calls(),
                mocks.record.num_calls(),
                mocks.release.num_calls()
            ),
            (1, 1, 0)
        );
    }

    #[tokio::test]
    async fn a_round_going_again_without_new_changes_starts_no_job() {
        let (handler, mocks, _) = start_sync(true, Ok(()));
        let mut again = state();
        again.previous_target = Some("0".into());
        again.previous_cutoff = Some(40);
        // The memo key differs per iteration; the mock answers any token with cutoff 40.
        let job = handler.handle(again, deadline()).await;
        let job = job.unwrap();
        assert!(job.skipped);
        assert_eq!((job.target_seq, job.cutoff_seq), (12, 40));
        assert_eq!((mocks.start.num_calls(), mocks.record.num_calls()), (0, 0));
    }

    #[tokio::test]
    async fn a_change_written_after_the_last_job_marked_its_changes_gets_a_job() {
        // Numbered before the previous job's pin, written after that job's changes were marked:
        // the counters did not move, yet the change is PENDING and only a job marks it.
        let (handler, mocks, _) = start_sync_with_late_change(true, Ok(()), Some("PENDING"));
        let mut again = state();
        again.previous_target = Some("0".into());
        again.previous_cutoff = Some(40);
        let job = handler.handle(again, deadline()).await.unwrap();
        assert!(!job.skipped);
        assert_eq!(mocks.start.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_pending_entry_the_index_still_shows_after_marking_costs_no_job() {
        let (handler, mocks, _) = start_sync_with_late_change(true, Ok(()), Some("SYNCED"));
        let mut again = state();
        again.previous_target = Some("0".into());
        again.previous_cutoff = Some(40);
        let job = handler.handle(again, deadline()).await.unwrap();
        assert!(job.skipped);
        assert_eq!(mocks.start.num_calls(), 0);
    }

    #[tokio::test]
    async fn a_round_going_again_with_new_changes_starts_a_job() {
        let (handler, mocks, _) = start_sync(true, Ok(()));
        let mut again = state();
        again.previous_target = Some("0".into());
        again.previous_cutoff = Some(39);
        let job = handler.handle(again, deadline()).await.unwrap();
        assert!(!job.skipped);
        assert_eq!(mocks.start.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_busy_slot_waits_without_calling_bedrock() {
        let (handler, mocks, _) = start_sync(false, Ok(()));
        let err = handler.handle(state(), deadline()).await.unwrap_err();
        assert_eq!(err.error_type, "DataSourceBusy");
        assert!(err.message.contains("KB-OTHER-r3"), "{}", err.message);
        assert_eq!(mocks.start.num_calls(), 0);
    }

    #[tokio::test]
    async fn a_conflict_from_a_job_started_elsewhere_is_busy_and_frees_the_slot() {
        let (handler, mocks, _) = start_sync(true, Err("ConflictException"));
        let err = handler.handle(state(), deadline()).await.unwrap_err();
        assert_eq!(err.error_type, "DataSourceBusy");
        assert_eq!(mocks.release.num_calls(), 1);
        assert_eq!(mocks.record.num_calls(), 0);
    }

    #[tokio::test]
    async fn throttling_is_retried_with_the_slot_kept() {
        let (handler, mocks, _) = start_sync(true, Err("ThrottlingException"));
        let err = handler.handle(state(), deadline()).await.unwrap_err();
        assert_eq!(err.error_type, "ThrottlingException");
        assert_eq!(mocks.release.num_calls(), 0);
    }

    #[tokio::test]
    async fn the_start_interval_runs_from_the_end_of_every_call() {
        // Found by fault scenario seed 12: the interval ran from the slot acquisition, so a slow
        // call (or a retried one) could reach Bedrock right after another knowledge base's.
        let (handler, mocks, _) = start_sync(true, Ok(()));
        handler.handle(state(), deadline()).await.unwrap();
        assert_eq!(mocks.started.num_calls(), 1);
        let (handler, mocks, _) = start_sync(true, Err("ThrottlingException"));
        handler.handle(state(), deadline()).await.unwrap_err();
        assert_eq!(mocks.started.num_calls(), 1);
    }
}

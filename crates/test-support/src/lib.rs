//! In-memory stores for the handlers' unit tests: one [`MemoryAccount`] stands for the sources
//! and tracking tables, Bedrock's ingestion jobs and the state machine's executions, and
//! implements every trait of `kb_autosync_aws::stores`. Each conditional write applies the same
//! guard as its DynamoDB expression (listed in `docs/lease-protocol.md`), so a handler test
//! reads what the account holds afterwards instead of matching request wording.
//!
//! Clones share one account: give each field of a handler its own clone, then inspect with
//! [`MemoryAccount::with`].

pub mod cold_start;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use kb_autosync_aws::executions::StartOutcome;
use kb_autosync_aws::knowledge_base::{DocumentState, JobView, StartJobError};
use kb_autosync_aws::metadata_table::{JobEnd, JobStart};
use kb_autosync_aws::sources_table::{HandOver, SlotHolder, SlotOutcome, Slots, Snapshot};
use kb_autosync_aws::stores::{
    IngestionJobs, JobRecords, Notifications, PendingChanges, RoundExecutions, SourcesStore,
};
use kb_autosync_aws::AwsError;
use kb_autosync_core::change::{ChangeRecord, ChangeStatus};
use kb_autosync_core::direct::IngestionMethod;
use kb_autosync_core::error_class::classify;
use kb_autosync_core::foreign_jobs::ForeignJobsCensus;
use kb_autosync_core::lease::{ExecutionState, LeaseState};
use kb_autosync_core::slot_line::WaitingRound;
use kb_autosync_core::SourceId;

/// A Bedrock ingestion job of one data source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub id: String,
    /// STARTING, IN_PROGRESS or STOPPING: it holds the data source.
    pub running: bool,
    pub complete: bool,
}

/// A job item of the metadata table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JobRecord {
    pub covered_change_count: Option<u64>,
    pub status: Option<String>,
    pub change_count: Option<u64>,
    pub failed_change_count: Option<u64>,
    pub notified_at: Option<String>,
}

/// A state machine execution.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    pub state: ExecutionState,
    pub input: serde_json::Value,
    pub history_events: u64,
}

/// What the account holds.
#[derive(Debug, Default)]
pub struct Account {
    /// Lease items by source key (`KB#DS`).
    pub leases: BTreeMap<String, (SourceId, LeaseState)>,
    /// The SLOTS item.
    pub slots: Slots,
    /// Executions by name.
    pub executions: BTreeMap<String, Execution>,
    /// Names of the executions started, in order (each start that started one).
    pub started: Vec<String>,
    /// Ingestion jobs by source key.
    pub jobs: BTreeMap<String, Vec<Job>>,
    /// Data source ids by knowledge base.
    pub data_sources: BTreeMap<String, Vec<String>>,
    /// Tracked changes by source key.
    pub changes: BTreeMap<String, Vec<ChangeRecord>>,
    /// Pinned counters by source key and client token (the lease item's `snapshots`).
    pub snapshots: BTreeMap<String, BTreeMap<String, Snapshot>>,
    /// Bedrock's jobs by client token: (source key, job id).
    pub job_tokens: BTreeMap<String, (String, String)>,
    /// StartIngestionJob calls answered so far.
    pub start_calls: u32,
    /// Job starts recorded in the metadata table: (job id, execution, attempt, cutoff).
    pub recorded_starts: Vec<(String, String, u32, u64)>,
    /// The metadata table's job items, by job id.
    pub job_records: BTreeMap<String, JobRecord>,
    /// What GetIngestionJob answers for a job id (else IN_PROGRESS while it runs, COMPLETE).
    pub job_status: BTreeMap<String, String>,
    /// Documents Bedrock failed, by S3 URI, with the reason; every other one is INDEXED.
    pub failed_documents: BTreeMap<String, String>,
    /// Changes whose marking write fails (as in an invocation that timed out there).
    pub broken_writes: BTreeSet<String>,
    /// Notifications published: (subject, body).
    pub published: Vec<(String, serde_json::Value)>,
    /// Censuses of jobs started elsewhere claimed so far.
    pub census_claims: u32,
    /// ListIngestionJobs calls answered so far (Bedrock allows 10 a second per account).
    pub job_listings: u32,
}

impl Account {
    /// The slot holder of a knowledge base, if any.
    pub fn slot_holder(&self, knowledge_base_id: &str) -> Option<&SlotHolder> {
        self.slots
            .holders
            .iter()
            .find(|h| h.knowledge_base_id == knowledge_base_id)
    }

    /// The line entry of a data source, if it stands in line.
    pub fn in_line(&self, source: &SourceId) -> Option<&WaitingRound> {
        self.slots
            .line
            .as_ref()?
            .iter()
            .find(|e| e.source_key == source.key())
    }

    pub fn lease(&self, source: &SourceId) -> Option<&LeaseState> {
        self.leases.get(&source.key()).map(|(_, lease)| lease)
    }

    /// The lease item of `source`, created empty if it has none (as an UpdateItem would).
    pub fn lease_mut(&mut self, source: &SourceId) -> &mut LeaseState {
        &mut self
            .leases
            .entry(source.key())
            .or_insert_with(|| (source.clone(), LeaseState::default()))
            .1
    }

    /// The conditional take of `take_lease`: free (`stale` None) or held by `stale`.
    fn take_lease(
        &mut self,
        source: &SourceId,
        round: u64,
        execution: &str,
        now_ms: i64,
        stale: Option<&str>,
    ) -> bool {
        let holder = self.lease(source).and_then(|l| l.active_execution.clone());
        if holder.as_deref() != stale {
            return false;
        }
        let lease = self.lease_mut(source);
        lease.active_execution = Some(execution.to_string());
        lease.round = round;
        lease.claimed_at_ms = Some(now_ms);
        self.snapshots.remove(&source.key());
        true
    }

    /// Changes in `status`, on every data source.
    pub fn with_status(&self, status: ChangeStatus) -> usize {
        self.changes
            .values()
            .flatten()
            .filter(|c| c.status == status)
            .count()
    }

    fn change_mut(&mut self, change_id: &str) -> Result<Option<&mut ChangeRecord>, AwsError> {
        if self.broken_writes.contains(change_id) {
            return Err(AwsError::new(
                "UpdateItem",
                "TaskTimedOut",
                "the invocation ended here",
            ));
        }
        Ok(self
            .changes
            .values_mut()
            .flatten()
            .find(|c| c.change_id == change_id))
    }

    /// Jobs holding the account (STARTING, IN_PROGRESS, STOPPING), on every data source.
    pub fn running_job_count(&self) -> usize {
        self.jobs.values().flatten().filter(|j| j.running).count()
    }

    fn line_mut(&mut self) -> &mut Vec<WaitingRound> {
        self.slots.line.get_or_insert_with(Vec::new)
    }

    fn remove_from_line(&mut self, source_key: &str, keep: impl Fn(&WaitingRound) -> bool) -> bool {
        let line = self.line_mut();
        let before = line.len();
        line.retain(|e| e.source_key != source_key || keep(e));
        line.len() < before
    }
}

#[derive(Clone, Default)]
pub struct MemoryAccount {
    account: Arc<Mutex<Account>>,
}

impl MemoryAccount {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads or changes what the account holds.
    pub fn with<R>(&self, f: impl FnOnce(&mut Account) -> R) -> R {
        f(&mut self.lock())
    }

    fn lock(&self) -> MutexGuard<'_, Account> {
        self.account
            .lock()
            .expect("the account's lock is never poisoned")
    }

    /// A data source Bedrock knows, with its jobs so far.
    pub fn add_data_source(&self, source: &SourceId, jobs: Vec<Job>) {
        self.with(|a| {
            let ids = a
                .data_sources
                .entry(source.knowledge_base_id.clone())
                .or_default();
            if !ids.contains(&source.data_source_id) {
                ids.push(source.data_source_id.clone());
            }
            a.jobs.insert(source.key(), jobs);
        });
    }

    /// An execution in `state`, with `input` (as a running round would have).
    pub fn add_execution(&self, name: &str, state: ExecutionState) {
        self.with(|a| {
            a.executions.insert(
                name.to_string(),
                Execution {
                    state,
                    input: serde_json::Value::Null,
                    history_events: 10,
                },
            )
        });
    }

    /// A change of `source` in `status`, recorded at `timestamp` (RFC 3339), numbered `seq`.
    pub fn record_change(
        &self,
        source: &SourceId,
        seq: u64,
        timestamp: &str,
        status: ChangeStatus,
    ) {
        let record: ChangeRecord = serde_json::from_value(serde_json::json!({
            "change_id": format!("{}-{seq}", source.key()),
            "knowledge_base_id": source.knowledge_base_id,
            "data_source_id": source.data_source_id,
            "change_type": "create",
            "bucket": "docs",
            "key": format!("doc-{seq}.txt"),
            "timestamp": timestamp,
            "event_name": "Object Created",
            "status": status,
            "processed": false,
            "source_seq": seq,
            "expires_at": 0,
        }))
        .expect("a change record from its fields");
        self.with(|a| a.changes.entry(source.key()).or_default().push(record));
    }
}

fn not_found(operation: &'static str, what: String) -> AwsError {
    AwsError::new(operation, "ResourceNotFoundException", what)
}

fn condition_failed(what: String) -> AwsError {
    AwsError::new("UpdateItem", "ConditionalCheckFailedException", what)
}

impl SourcesStore for MemoryAccount {
    async fn bump_requested(&self, source: &SourceId, k: u64) -> Result<LeaseState, AwsError> {
        Ok(self.with(|a| {
            let lease = a.lease_mut(source);
            lease.requested_seq += k;
            lease.clone()
        }))
    }

    async fn read(&self, source: &SourceId) -> Result<Option<LeaseState>, AwsError> {
        Ok(self.with(|a| a.lease(source).cloned()))
    }

    async fn claim(
        &self,
        source: &SourceId,
        round: u64,
        execution: &str,
        now: i64,
    ) -> Result<bool, AwsError> {
        Ok(self.with(|a| a.take_lease(source, round, execution, now, None)))
    }

    async fn reclaim(
        &self,
        source: &SourceId,
        stale: &str,
        round: u64,
        execution: &str,
        now_ms: i64,
    ) -> Result<bool, AwsError> {
        Ok(self.with(|a| a.take_lease(source, round, execution, now_ms, Some(stale))))
    }

    async fn hand_over(
        &self,
        source: &SourceId,
        from: &str,
        round: u64,
        to: &str,
        now_ms: i64,
    ) -> Result<HandOver, AwsError> {
        Ok(self.with(|a| {
            if a.take_lease(source, round, to, now_ms, Some(from)) {
                return HandOver::Moved;
            }
            match a.lease(source).and_then(|l| l.active_execution.clone()) {
                Some(holder) if holder == to => HandOver::AlreadyMoved,
                holder => HandOver::Lost(holder),
            }
        }))
    }

    async fn clear_snapshots(&self, source: &SourceId, execution: &str) -> Result<bool, AwsError> {
        Ok(self.with(|a| {
            a.lease(source)
                .is_some_and(|l| l.active_execution.as_deref() == Some(execution))
        }))
    }

    async fn snapshot(
        &self,
        source: &SourceId,
        execution: &str,
        token: &str,
    ) -> Result<Snapshot, AwsError> {
        self.with(|a| {
            let lease = a.lease(source).cloned().unwrap_or_default();
            if lease.active_execution.as_deref() != Some(execution) {
                return Err(condition_failed(format!(
                    "{execution} does not hold the lease of {source}"
                )));
            }
            let pinned = Snapshot {
                target_seq: lease.requested_seq,
                cutoff_seq: lease.change_seq,
            };
            Ok(*a
                .snapshots
                .entry(source.key())
                .or_default()
                .entry(token.to_string())
                .or_insert(pinned))
        })
    }

    async fn acquire_slot(
        &self,
        source: &SourceId,
        execution: &str,
        now_ms: i64,
        max_jobs: u32,
        min_interval_ms: i64,
        in_flight_ms: i64,
    ) -> Result<SlotOutcome, AwsError> {
        Ok(self.with(|a| {
            let spaced = a
                .slots
                .last_start_ms
                .is_none_or(|at| at <= now_ms - min_interval_ms);
            let holder = a
                .slot_holder(&source.knowledge_base_id)
                .map(|h| h.execution_name.clone());
            let free = match holder {
                Some(holder) => holder == execution,
                None => a.slots.holders.len() < max_jobs as usize,
            };
            if !(spaced && free) {
                return SlotOutcome::Busy(a.slots.clone());
            }
            a.slots
                .holders
                .retain(|h| h.knowledge_base_id != source.knowledge_base_id);
            a.slots.holders.push(SlotHolder {
                knowledge_base_id: source.knowledge_base_id.clone(),
                execution_name: execution.to_string(),
                data_source_id: source.data_source_id.clone(),
                since_ms: now_ms,
            });
            a.slots.last_start_ms = Some(now_ms + in_flight_ms);
            SlotOutcome::Acquired
        }))
    }

    async fn mark_started(
        &self,
        knowledge_base_id: &str,
        execution: &str,
        now_ms: i64,
    ) -> Result<(), AwsError> {
        self.with(|a| {
            if a.slot_holder(knowledge_base_id)
                .is_some_and(|h| h.execution_name == execution)
            {
                a.slots.last_start_ms = Some(now_ms);
            }
        });
        Ok(())
    }

    async fn all_sources(&self) -> Result<Vec<(SourceId, LeaseState)>, AwsError> {
        Ok(self.with(|a| a.leases.values().cloned().collect()))
    }

    async fn read_slots(&self) -> Result<Slots, AwsError> {
        Ok(self.with(|a| a.slots.clone()))
    }

    async fn release_slot(
        &self,
        knowledge_base_id: &str,
        execution: &str,
    ) -> Result<bool, AwsError> {
        Ok(self.with(|a| {
            let before = a.slots.holders.len();
            a.slots.holders.retain(|h| {
                h.knowledge_base_id != knowledge_base_id || h.execution_name != execution
            });
            a.slots.holders.len() < before
        }))
    }

    async fn stand_in_line(&self, round: &WaitingRound) -> Result<(), AwsError> {
        self.with(|a| {
            let line = a.line_mut();
            line.retain(|e| e.source_key != round.source_key);
            line.push(round.clone());
        });
        Ok(())
    }

    async fn leave_line(&self, source_key: &str, execution: &str) -> Result<bool, AwsError> {
        Ok(self.with(|a| a.remove_from_line(source_key, |e| e.execution != execution)))
    }

    async fn remove_stale_entry(&self, stale: &WaitingRound) -> Result<bool, AwsError> {
        Ok(self.with(|a| a.remove_from_line(&stale.source_key, |e| e.seen_ms != stale.seen_ms)))
    }

    async fn claim_census(
        &self,
        previous: Option<&ForeignJobsCensus>,
        now_ms: i64,
    ) -> Result<bool, AwsError> {
        Ok(self.with(|a| {
            if a.slots.census.map(|c| c.at_ms) != previous.map(|c| c.at_ms) {
                return false;
            }
            a.slots.census = Some(ForeignJobsCensus {
                at_ms: now_ms,
                foreign_jobs: ForeignJobsCensus::count(previous),
            });
            a.census_claims += 1;
            true
        }))
    }

    async fn record_census(&self, census: &ForeignJobsCensus) -> Result<bool, AwsError> {
        Ok(self.with(|a| match &mut a.slots.census {
            Some(stored) if stored.at_ms == census.at_ms => {
                stored.foreign_jobs = census.foreign_jobs;
                true
            }
            _ => false,
        }))
    }
}

fn is_pending(change: &ChangeRecord) -> bool {
    matches!(change.status, ChangeStatus::Pending | ChangeStatus::Failed)
}

impl PendingChanges for MemoryAccount {
    async fn oldest_pending(&self, source: &SourceId) -> Result<Option<ChangeRecord>, AwsError> {
        Ok(self.with(|a| {
            a.changes
                .get(&source.key())
                .into_iter()
                .flatten()
                .filter(|c| c.status == ChangeStatus::Pending)
                .min_by_key(|c| c.source_seq)
                .cloned()
        }))
    }

    async fn has_pending_up_to(
        &self,
        source: &SourceId,
        cutoff_seq: u64,
    ) -> Result<bool, AwsError> {
        Ok(self.with(|a| {
            a.changes
                .get(&source.key())
                .into_iter()
                .flatten()
                .any(|c| is_pending(c) && c.source_seq <= cutoff_seq)
        }))
    }

    async fn pending_up_to(
        &self,
        source: &SourceId,
        cutoff_seq: u64,
    ) -> Result<Vec<ChangeRecord>, AwsError> {
        Ok(self.with(|a| {
            let mut found: Vec<ChangeRecord> = a
                .changes
                .get(&source.key())
                .into_iter()
                .flatten()
                .filter(|c| is_pending(c) && c.source_seq <= cutoff_seq)
                .cloned()
                .collect();
            found.sort_by_key(|c| c.source_seq);
            found
        }))
    }

    async fn mark_synced(
        &self,
        change_id: &str,
        job_id: &str,
        at: &str,
        method: IngestionMethod,
    ) -> Result<bool, AwsError> {
        self.with(|a| {
            let Some(change) = a.change_mut(change_id)? else {
                return Ok(false);
            };
            if change.status == ChangeStatus::Synced {
                return Ok(false);
            }
            change.status = ChangeStatus::Synced;
            change.processed = true;
            change.ingestion_job_id = Some(job_id.to_string());
            change.synced_at = Some(at.to_string());
            change.ingestion_method = Some(method);
            change.pending_source = None;
            change.failure_reason = None;
            Ok(true)
        })
    }

    async fn mark_failed(
        &self,
        change_id: &str,
        job_id: Option<(&str, IngestionMethod)>,
        reason: &str,
    ) -> Result<bool, AwsError> {
        self.with(|a| {
            let Some(change) = a.change_mut(change_id)? else {
                return Ok(false);
            };
            if change.status != ChangeStatus::Pending {
                return Ok(false);
            }
            change.status = ChangeStatus::Failed;
            change.failure_reason = Some(reason.to_string());
            if let Some((job, method)) = job_id {
                change.ingestion_job_id = Some(job.to_string());
                change.ingestion_method = Some(method);
            }
            Ok(true)
        })
    }

    async fn more_pending_than(&self, source: &SourceId, limit: usize) -> Result<bool, AwsError> {
        Ok(self.with(|a| {
            a.changes
                .get(&source.key())
                .into_iter()
                .flatten()
                .filter(|c| is_pending(c))
                .count()
                > limit
        }))
    }
}

impl IngestionJobs for MemoryAccount {
    async fn running_jobs(&self, source: &SourceId) -> Result<Vec<String>, AwsError> {
        self.with(|a| {
            a.job_listings += 1;
            match a.jobs.get(&source.key()) {
                Some(jobs) => Ok(jobs
                    .iter()
                    .filter(|j| j.running)
                    .map(|j| j.id.clone())
                    .collect()),
                None => Err(not_found(
                    "ListIngestionJobs",
                    format!("no data source {source}"),
                )),
            }
        })
    }

    async fn data_source_ids(&self, knowledge_base_id: &str) -> Result<Vec<String>, AwsError> {
        self.with(|a| {
            a.data_sources
                .get(knowledge_base_id)
                .cloned()
                .ok_or_else(|| {
                    not_found(
                        "ListDataSources",
                        format!("no knowledge base {knowledge_base_id}"),
                    )
                })
        })
    }

    async fn has_completed_job(&self, source: &SourceId) -> Result<bool, AwsError> {
        Ok(self.with(|a| {
            a.job_listings += 1;
            a.jobs
                .get(&source.key())
                .is_some_and(|jobs| jobs.iter().any(|j| j.complete))
        }))
    }

    async fn get_job(&self, source: &SourceId, job_id: &str) -> Result<JobView, AwsError> {
        self.with(|a| {
            let job = a
                .jobs
                .get(&source.key())
                .into_iter()
                .flatten()
                .find(|j| j.id == job_id);
            let status = match (a.job_status.get(job_id), job) {
                (Some(status), _) => status.clone(),
                (None, Some(job)) if job.running => "IN_PROGRESS".into(),
                (None, Some(_)) => "COMPLETE".into(),
                (None, None) => {
                    return Err(not_found(
                        "GetIngestionJob",
                        format!("no job {job_id} on {source}"),
                    ))
                }
            };
            Ok(JobView {
                status,
                ..job_view(job_id)
            })
        })
    }

    async fn document_states(
        &self,
        _source: &SourceId,
        uris: &[String],
    ) -> Result<Vec<DocumentState>, AwsError> {
        Ok(self.with(|a| uris.iter().map(|uri| document_state(a, uri)).collect()))
    }

    async fn all_document_states(&self, source: &SourceId) -> Result<Vec<DocumentState>, AwsError> {
        Ok(self.with(|a| {
            a.changes
                .get(&source.key())
                .into_iter()
                .flatten()
                .map(|c| document_state(a, &format!("s3://{}/{}", c.bucket, c.key)))
                .collect()
        }))
    }

    async fn start_job(
        &self,
        source: &SourceId,
        client_token: &str,
        _description: &str,
    ) -> Result<JobView, StartJobError> {
        self.with(|a| start_ingestion_job(a, source, client_token))
    }
}

/// Bedrock's answers to StartIngestionJob: the same job for a client token it has seen,
/// ConflictException while a job holds the data source or its knowledge base,
/// ServiceQuotaExceededException with five jobs running in the account.
fn start_ingestion_job(
    a: &mut Account,
    source: &SourceId,
    client_token: &str,
) -> Result<JobView, StartJobError> {
    a.start_calls += 1;
    let refuse = |code: &str, message: String| StartJobError {
        class: classify(Some(code), Some(&message)),
        data_source: source.clone(),
        error: AwsError::new("StartIngestionJob", code, message),
    };
    if let Some((_, job_id)) = a.job_tokens.get(client_token) {
        return Ok(job_view(job_id));
    }
    let kb_prefix = format!("{}#", source.knowledge_base_id);
    let on_knowledge_base = a
        .jobs
        .iter()
        .filter(|(key, _)| key.starts_with(&kb_prefix))
        .flat_map(|(_, jobs)| jobs)
        .any(|j| j.running);
    if on_knowledge_base {
        return Err(refuse(
            "ConflictException",
            format!("an ingestion job is running on {source} or its knowledge base"),
        ));
    }
    if a.running_job_count() >= 5 {
        return Err(refuse(
            "ServiceQuotaExceededException",
            "5 concurrent ingestion jobs per account".into(),
        ));
    }
    let job_id = format!("JOB{}", a.job_tokens.len() + 1);
    a.jobs.entry(source.key()).or_default().push(Job {
        id: job_id.clone(),
        running: true,
        complete: false,
    });
    a.job_tokens
        .insert(client_token.to_string(), (source.key(), job_id.clone()));
    Ok(job_view(&job_id))
}

fn document_state(a: &Account, uri: &str) -> DocumentState {
    let failed = a.failed_documents.get(uri);
    DocumentState {
        uri: uri.to_string(),
        status: if failed.is_some() {
            "FAILED"
        } else {
            "INDEXED"
        }
        .to_string(),
        reason: failed.cloned(),
        updated_at: None,
    }
}

fn job_view(job_id: &str) -> JobView {
    JobView {
        job_id: job_id.to_string(),
        status: "STARTING".into(),
        statistics: serde_json::Value::Null,
        failure_reasons: Vec::new(),
        started_at: "2026-01-01T00:00:00Z".into(),
        updated_at: "2026-01-01T00:00:00Z".into(),
    }
}

impl JobRecords for MemoryAccount {
    async fn record_start(&self, job: &JobStart<'_>) -> Result<(), AwsError> {
        let record = (
            job.job_id.to_string(),
            job.execution_name.to_string(),
            job.attempt,
            job.cutoff_seq,
        );
        self.with(|a| {
            if !a.recorded_starts.contains(&record) {
                a.recorded_starts.push(record);
            }
        });
        Ok(())
    }

    async fn covered_change_count(&self, job_id: &str, count: u64) -> Result<u64, AwsError> {
        Ok(self.with(|a| {
            *a.job_records
                .entry(job_id.to_string())
                .or_default()
                .covered_change_count
                .get_or_insert(count)
        }))
    }

    async fn record_end(&self, job: &JobEnd<'_>) -> Result<(), AwsError> {
        self.with(|a| {
            let record = a.job_records.entry(job.job_id.to_string()).or_default();
            record.status = Some(job.status.to_string());
            record.change_count = Some(job.change_count);
            record.failed_change_count = Some(job.failed_change_count);
        });
        Ok(())
    }

    async fn is_notified(&self, job_id: &str) -> Result<bool, AwsError> {
        Ok(self.with(|a| {
            a.job_records
                .get(job_id)
                .is_some_and(|r| r.notified_at.is_some())
        }))
    }

    async fn mark_notified(&self, job_id: &str, at: &str) -> Result<(), AwsError> {
        self.with(|a| {
            a.job_records
                .entry(job_id.to_string())
                .or_default()
                .notified_at = Some(at.to_string())
        });
        Ok(())
    }
}

impl Notifications for MemoryAccount {
    async fn publish(&self, subject: &str, body: &serde_json::Value) -> Result<(), AwsError> {
        self.with(|a| a.published.push((subject.to_string(), body.clone())));
        Ok(())
    }
}

impl RoundExecutions for MemoryAccount {
    async fn state(&self, execution_name: &str) -> Result<ExecutionState, AwsError> {
        Ok(self.with(|a| {
            a.executions
                .get(execution_name)
                .map_or(ExecutionState::NotFound, |e| e.state.clone())
        }))
    }

    /// Step Functions' rule: a name is used once; starting a running execution again with the
    /// same input is the same start, anything else is taken.
    async fn start(
        &self,
        execution_name: &str,
        input: &serde_json::Value,
    ) -> Result<StartOutcome, AwsError> {
        Ok(self.with(|a| match a.executions.get(execution_name) {
            Some(e) if e.state == ExecutionState::Running && e.input == *input => {
                StartOutcome::Started
            }
            Some(_) => StartOutcome::NameTaken,
            None => {
                a.executions.insert(
                    execution_name.to_string(),
                    Execution {
                        state: ExecutionState::Running,
                        input: input.clone(),
                        history_events: 2,
                    },
                );
                a.started.push(execution_name.to_string());
                StartOutcome::Started
            }
        }))
    }

    async fn history_events(&self, execution_arn: &str) -> Result<u64, AwsError> {
        let name = execution_arn.rsplit(':').next().unwrap_or(execution_arn);
        self.with(|a| {
            a.executions
                .get(name)
                .map(|e| e.history_events)
                .ok_or_else(|| {
                    AwsError::new(
                        "GetExecutionHistory",
                        "ExecutionDoesNotExist",
                        format!("no execution {name}"),
                    )
                })
        })
    }
}

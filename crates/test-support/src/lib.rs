//! In-memory stores for the handlers' unit tests: one [`MemoryAccount`] stands for the sources
//! and tracking tables, Bedrock's ingestion jobs and the state machine's executions, and
//! implements every trait of `kb_autosync_aws::stores`. Each conditional write applies the same
//! guard as its DynamoDB expression (listed in `docs/lease-protocol.md`), so a handler test
//! reads what the account holds afterwards instead of matching request wording.
//!
//! Clones share one account: give each field of a handler its own clone, then inspect with
//! [`MemoryAccount::with`].

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use kb_autosync_aws::executions::StartOutcome;
use kb_autosync_aws::sources_table::{HandOver, SlotHolder, Slots};
use kb_autosync_aws::stores::{IngestionJobs, PendingChanges, RoundExecutions, SourcesStore};
use kb_autosync_aws::AwsError;
use kb_autosync_core::change::{ChangeRecord, ChangeStatus};
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

    fn lease_mut(&mut self, source: &SourceId) -> &mut LeaseState {
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
        true
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
        self.with(|a| a.job_listings += 1);
        self.with(|a| match a.jobs.get(&source.key()) {
            Some(jobs) => Ok(jobs
                .iter()
                .filter(|j| j.running)
                .map(|j| j.id.clone())
                .collect()),
            None => Err(not_found(
                "ListIngestionJobs",
                format!("no data source {source}"),
            )),
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

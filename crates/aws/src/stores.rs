//! The seams between the handlers and AWS: one small trait per store or client, holding only
//! what the state machine's tasks and sync-processor call. The DynamoDB and SDK adapters of this
//! crate implement them (below, by delegation); `kb-autosync-test-support` has in-memory
//! implementations, so a handler's decisions are tested on behaviour (what the stores hold
//! afterwards), not on the wording of a condition expression. What an adapter itself must get
//! right (the exact conditional writes, error mapping) stays tested against mocked SDK clients
//! in the adapter's own module.
//!
//! The futures are `Send`: handlers run on the Lambda runtime's multi-threaded executor.

use std::future::Future;

use kb_autosync_core::change::ChangeRecord;
use kb_autosync_core::foreign_jobs::ForeignJobsCensus;
use kb_autosync_core::lease::{ExecutionState, LeaseState};
use kb_autosync_core::slot_line::WaitingRound;
use kb_autosync_core::SourceId;

use crate::executions::{Executions, StartOutcome};
use crate::knowledge_base::KnowledgeBase;
use crate::sources_table::{HandOver, Slots, SourcesTable};
use crate::tracking_table::TrackingTable;
use crate::AwsError;

type Answer<T> = Result<T, AwsError>;

/// The sources table: each data source's lease item, and the SLOTS item (the account's job
/// slots and the line for them). Every write is conditional; the protocol and its guards are
/// in `docs/lease-protocol.md`.
pub trait SourcesStore: Sync {
    /// Counts `k` sync requests; the lease as it is after the bump.
    fn bump_requested(
        &self,
        source: &SourceId,
        k: u64,
    ) -> impl Future<Output = Answer<LeaseState>> + Send;
    fn read(&self, source: &SourceId) -> impl Future<Output = Answer<Option<LeaseState>>> + Send;
    /// Takes a free lease for `round`; false when someone holds it.
    fn claim(
        &self,
        source: &SourceId,
        round: u64,
        execution: &str,
        now_ms: i64,
    ) -> impl Future<Output = Answer<bool>> + Send;
    /// Takes the lease from `stale`; false when `stale` no longer holds it.
    fn reclaim(
        &self,
        source: &SourceId,
        stale: &str,
        round: u64,
        execution: &str,
        now_ms: i64,
    ) -> impl Future<Output = Answer<bool>> + Send;
    fn hand_over(
        &self,
        source: &SourceId,
        from: &str,
        round: u64,
        to: &str,
        now_ms: i64,
    ) -> impl Future<Output = Answer<HandOver>> + Send;
    /// Forgets the pinned counters; false when `execution` no longer holds the lease.
    fn clear_snapshots(
        &self,
        source: &SourceId,
        execution: &str,
    ) -> impl Future<Output = Answer<bool>> + Send;
    /// Every data source with a lease item.
    fn all_sources(&self) -> impl Future<Output = Answer<Vec<(SourceId, LeaseState)>>> + Send;
    fn read_slots(&self) -> impl Future<Output = Answer<Slots>> + Send;
    /// Gives the knowledge base's slot back if `execution` holds it.
    fn release_slot(
        &self,
        knowledge_base_id: &str,
        execution: &str,
    ) -> impl Future<Output = Answer<bool>> + Send;
    fn stand_in_line(&self, round: &WaitingRound) -> impl Future<Output = Answer<()>> + Send;
    /// Leaves the line if `execution` stands there for `source_key`.
    fn leave_line(
        &self,
        source_key: &str,
        execution: &str,
    ) -> impl Future<Output = Answer<bool>> + Send;
    /// Removes an entry not refreshed since `stale.seen_ms`.
    fn remove_stale_entry(&self, stale: &WaitingRound)
        -> impl Future<Output = Answer<bool>> + Send;
    /// Claims the next census of jobs started elsewhere; false when another check did.
    fn claim_census(
        &self,
        previous: Option<&ForeignJobsCensus>,
        now_ms: i64,
    ) -> impl Future<Output = Answer<bool>> + Send;
    /// Records the count of the census claimed at `census.at_ms`.
    fn record_census(
        &self,
        census: &ForeignJobsCensus,
    ) -> impl Future<Output = Answer<bool>> + Send;
}

/// The tracking table's pending index, as the scheduling decisions read it.
pub trait PendingChanges: Sync {
    /// The oldest PENDING change of `source` (lowest number).
    fn oldest_pending(
        &self,
        source: &SourceId,
    ) -> impl Future<Output = Answer<Option<ChangeRecord>>> + Send;
    /// Whether more than `limit` changes of `source` are PENDING or FAILED.
    fn more_pending_than(
        &self,
        source: &SourceId,
        limit: usize,
    ) -> impl Future<Output = Answer<bool>> + Send;
}

/// Bedrock's ingestion jobs, as the scheduling decisions read them.
pub trait IngestionJobs: Sync {
    /// Ids of the data source's jobs that hold it (STARTING, IN_PROGRESS, STOPPING).
    fn running_jobs(&self, source: &SourceId) -> impl Future<Output = Answer<Vec<String>>> + Send;
    fn data_source_ids(
        &self,
        knowledge_base_id: &str,
    ) -> impl Future<Output = Answer<Vec<String>>> + Send;
    /// Whether the data source ever had a COMPLETE job (direct ingestion needs one).
    fn has_completed_job(&self, source: &SourceId) -> impl Future<Output = Answer<bool>> + Send;
}

/// The state machine's executions.
pub trait RoundExecutions: Sync {
    fn state(&self, execution_name: &str) -> impl Future<Output = Answer<ExecutionState>> + Send;
    /// Starts the named execution (idempotent for a running one with the same input).
    fn start(
        &self,
        execution_name: &str,
        input: &serde_json::Value,
    ) -> impl Future<Output = Answer<StartOutcome>> + Send;
    /// Events in the execution's history so far.
    fn history_events(&self, execution_arn: &str) -> impl Future<Output = Answer<u64>> + Send;
}

impl SourcesStore for SourcesTable {
    async fn bump_requested(&self, source: &SourceId, k: u64) -> Answer<LeaseState> {
        SourcesTable::bump_requested(self, source, k).await
    }
    async fn read(&self, source: &SourceId) -> Answer<Option<LeaseState>> {
        SourcesTable::read(self, source).await
    }
    async fn claim(
        &self,
        source: &SourceId,
        round: u64,
        execution: &str,
        now: i64,
    ) -> Answer<bool> {
        SourcesTable::claim(self, source, round, execution, now).await
    }
    async fn reclaim(
        &self,
        source: &SourceId,
        stale: &str,
        round: u64,
        execution: &str,
        now_ms: i64,
    ) -> Answer<bool> {
        SourcesTable::reclaim(self, source, stale, round, execution, now_ms).await
    }
    async fn hand_over(
        &self,
        source: &SourceId,
        from: &str,
        round: u64,
        to: &str,
        now_ms: i64,
    ) -> Answer<HandOver> {
        SourcesTable::hand_over(self, source, from, round, to, now_ms).await
    }
    async fn clear_snapshots(&self, source: &SourceId, execution: &str) -> Answer<bool> {
        SourcesTable::clear_snapshots(self, source, execution).await
    }
    async fn all_sources(&self) -> Answer<Vec<(SourceId, LeaseState)>> {
        SourcesTable::all_sources(self).await
    }
    async fn read_slots(&self) -> Answer<Slots> {
        SourcesTable::read_slots(self).await
    }
    async fn release_slot(&self, knowledge_base_id: &str, execution: &str) -> Answer<bool> {
        SourcesTable::release_slot(self, knowledge_base_id, execution).await
    }
    async fn stand_in_line(&self, round: &WaitingRound) -> Answer<()> {
        SourcesTable::stand_in_line(self, round).await
    }
    async fn leave_line(&self, source_key: &str, execution: &str) -> Answer<bool> {
        SourcesTable::leave_line(self, source_key, execution).await
    }
    async fn remove_stale_entry(&self, stale: &WaitingRound) -> Answer<bool> {
        SourcesTable::remove_stale_entry(self, stale).await
    }
    async fn claim_census(
        &self,
        previous: Option<&ForeignJobsCensus>,
        now_ms: i64,
    ) -> Answer<bool> {
        SourcesTable::claim_census(self, previous, now_ms).await
    }
    async fn record_census(&self, census: &ForeignJobsCensus) -> Answer<bool> {
        SourcesTable::record_census(self, census).await
    }
}

impl PendingChanges for TrackingTable {
    async fn oldest_pending(&self, source: &SourceId) -> Answer<Option<ChangeRecord>> {
        TrackingTable::oldest_pending(self, source).await
    }
    async fn more_pending_than(&self, source: &SourceId, limit: usize) -> Answer<bool> {
        TrackingTable::more_pending_than(self, source, limit).await
    }
}

impl IngestionJobs for KnowledgeBase {
    async fn running_jobs(&self, source: &SourceId) -> Answer<Vec<String>> {
        KnowledgeBase::running_jobs(self, source).await
    }
    async fn data_source_ids(&self, knowledge_base_id: &str) -> Answer<Vec<String>> {
        KnowledgeBase::data_source_ids(self, knowledge_base_id).await
    }
    async fn has_completed_job(&self, source: &SourceId) -> Answer<bool> {
        KnowledgeBase::has_completed_job(self, source).await
    }
}

impl RoundExecutions for Executions {
    async fn state(&self, execution_name: &str) -> Answer<ExecutionState> {
        Executions::state(self, execution_name).await
    }
    async fn start(&self, execution_name: &str, input: &serde_json::Value) -> Answer<StartOutcome> {
        Executions::start(self, execution_name, input).await
    }
    async fn history_events(&self, execution_arn: &str) -> Answer<u64> {
        Executions::history_events(self, execution_arn).await
    }
}

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
use kb_autosync_core::direct::IngestionMethod;
use kb_autosync_core::foreign_jobs::ForeignJobsCensus;
use kb_autosync_core::lease::{ExecutionState, LeaseState};
use kb_autosync_core::slot_line::WaitingRound;
use kb_autosync_core::SourceId;

use crate::executions::{Executions, StartOutcome};
use crate::knowledge_base::{DocumentState, JobView, KnowledgeBase, StartJobError};
use crate::metadata_table::{JobEnd, JobStart, MetadataTable};
use crate::notifier::Notifier;
use crate::sources_table::{HandOver, SlotOutcome, Slots, Snapshot, SourcesTable};
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
    /// Pins the counters for `token` (the first pin of a token stays); fails with a condition
    /// failure when `execution` no longer holds the lease.
    fn snapshot(
        &self,
        source: &SourceId,
        execution: &str,
        token: &str,
    ) -> impl Future<Output = Answer<Snapshot>> + Send;
    /// Every data source with a lease item.
    fn all_sources(&self) -> impl Future<Output = Answer<Vec<(SourceId, LeaseState)>>> + Send;
    fn read_slots(&self) -> impl Future<Output = Answer<Slots>> + Send;
    /// Takes the knowledge base's job slot (one per knowledge base, `max_jobs` in all, starts
    /// `min_interval_ms` apart), stamping the start in flight.
    fn acquire_slot(
        &self,
        source: &SourceId,
        execution: &str,
        now_ms: i64,
        max_jobs: u32,
        min_interval_ms: i64,
        in_flight_ms: i64,
    ) -> impl Future<Output = Answer<SlotOutcome>> + Send;
    /// Stamps the end of the slot holder's StartIngestionJob call as the last start.
    fn mark_started(
        &self,
        knowledge_base_id: &str,
        execution: &str,
        now_ms: i64,
    ) -> impl Future<Output = Answer<()>> + Send;
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
    /// Whether a change of `source` numbered up to `cutoff_seq` is PENDING or FAILED.
    fn has_pending_up_to(
        &self,
        source: &SourceId,
        cutoff_seq: u64,
    ) -> impl Future<Output = Answer<bool>> + Send;
    /// Whether more than `limit` changes of `source` are PENDING or FAILED.
    fn more_pending_than(
        &self,
        source: &SourceId,
        limit: usize,
    ) -> impl Future<Output = Answer<bool>> + Send;
    /// The changes of `source` numbered up to `cutoff_seq` that are PENDING or FAILED.
    fn pending_up_to(
        &self,
        source: &SourceId,
        cutoff_seq: u64,
    ) -> impl Future<Output = Answer<Vec<ChangeRecord>>> + Send;
    /// Marks a change SYNCED; false when it already was.
    fn mark_synced(
        &self,
        change_id: &str,
        job_id: &str,
        at: &str,
        method: IngestionMethod,
    ) -> impl Future<Output = Answer<bool>> + Send;
    /// Marks a PENDING change FAILED; false when it was not PENDING.
    fn mark_failed(
        &self,
        change_id: &str,
        job_id: Option<(&str, IngestionMethod)>,
        reason: &str,
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
    fn get_job(
        &self,
        source: &SourceId,
        job_id: &str,
    ) -> impl Future<Output = Answer<JobView>> + Send;
    /// The ingestion status of the documents at `uris`.
    fn document_states(
        &self,
        source: &SourceId,
        uris: &[String],
    ) -> impl Future<Output = Answer<Vec<DocumentState>>> + Send;
    /// The ingestion status of every document of the data source.
    fn all_document_states(
        &self,
        source: &SourceId,
    ) -> impl Future<Output = Answer<Vec<DocumentState>>> + Send;
    /// StartIngestionJob (idempotent per client token), its refusal classified.
    fn start_job(
        &self,
        source: &SourceId,
        client_token: &str,
        description: &str,
    ) -> impl Future<Output = Result<JobView, StartJobError>> + Send;
}

/// The metadata table's job records.
pub trait JobRecords: Sync {
    fn record_start(&self, job: &JobStart<'_>) -> impl Future<Output = Answer<()>> + Send;
    /// Stores `count` as the job's covered changes unless a count is stored; the stored one.
    fn covered_change_count(
        &self,
        job_id: &str,
        count: u64,
    ) -> impl Future<Output = Answer<u64>> + Send;
    fn record_end(&self, job: &JobEnd<'_>) -> impl Future<Output = Answer<()>> + Send;
    fn is_notified(&self, job_id: &str) -> impl Future<Output = Answer<bool>> + Send;
    fn mark_notified(&self, job_id: &str, at: &str) -> impl Future<Output = Answer<()>> + Send;
}

/// The notification topic.
pub trait Notifications: Sync {
    fn publish(
        &self,
        subject: &str,
        body: &serde_json::Value,
    ) -> impl Future<Output = Answer<()>> + Send;
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
    async fn snapshot(&self, source: &SourceId, execution: &str, token: &str) -> Answer<Snapshot> {
        SourcesTable::snapshot(self, source, execution, token).await
    }
    async fn all_sources(&self) -> Answer<Vec<(SourceId, LeaseState)>> {
        SourcesTable::all_sources(self).await
    }
    async fn acquire_slot(
        &self,
        source: &SourceId,
        execution: &str,
        now_ms: i64,
        max_jobs: u32,
        min_interval_ms: i64,
        in_flight_ms: i64,
    ) -> Answer<SlotOutcome> {
        SourcesTable::acquire_slot(
            self,
            source,
            execution,
            now_ms,
            max_jobs,
            min_interval_ms,
            in_flight_ms,
        )
        .await
    }
    async fn mark_started(
        &self,
        knowledge_base_id: &str,
        execution: &str,
        now_ms: i64,
    ) -> Answer<()> {
        SourcesTable::mark_started(self, knowledge_base_id, execution, now_ms).await
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
    async fn has_pending_up_to(&self, source: &SourceId, cutoff_seq: u64) -> Answer<bool> {
        TrackingTable::has_pending_up_to(self, source, cutoff_seq).await
    }
    async fn more_pending_than(&self, source: &SourceId, limit: usize) -> Answer<bool> {
        TrackingTable::more_pending_than(self, source, limit).await
    }
    async fn pending_up_to(&self, source: &SourceId, cutoff_seq: u64) -> Answer<Vec<ChangeRecord>> {
        TrackingTable::pending_up_to(self, source, cutoff_seq).await
    }
    async fn mark_synced(
        &self,
        change_id: &str,
        job_id: &str,
        at: &str,
        method: IngestionMethod,
    ) -> Answer<bool> {
        TrackingTable::mark_synced(self, change_id, job_id, at, method).await
    }
    async fn mark_failed(
        &self,
        change_id: &str,
        job_id: Option<(&str, IngestionMethod)>,
        reason: &str,
    ) -> Answer<bool> {
        TrackingTable::mark_failed(self, change_id, job_id, reason).await
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
    async fn get_job(&self, source: &SourceId, job_id: &str) -> Answer<JobView> {
        KnowledgeBase::get_job(self, source, job_id).await
    }
    async fn document_states(
        &self,
        source: &SourceId,
        uris: &[String],
    ) -> Answer<Vec<DocumentState>> {
        KnowledgeBase::document_states(self, source, uris).await
    }
    async fn all_document_states(&self, source: &SourceId) -> Answer<Vec<DocumentState>> {
        KnowledgeBase::all_document_states(self, source).await
    }
    async fn start_job(
        &self,
        source: &SourceId,
        client_token: &str,
        description: &str,
    ) -> Result<JobView, StartJobError> {
        KnowledgeBase::start_job(self, source, client_token, description).await
    }
}

impl JobRecords for MetadataTable {
    async fn record_start(&self, job: &JobStart<'_>) -> Answer<()> {
        MetadataTable::record_start(self, job).await
    }
    async fn covered_change_count(&self, job_id: &str, count: u64) -> Answer<u64> {
        MetadataTable::covered_change_count(self, job_id, count).await
    }
    async fn record_end(&self, job: &JobEnd<'_>) -> Answer<()> {
        MetadataTable::record_end(self, job).await
    }
    async fn is_notified(&self, job_id: &str) -> Answer<bool> {
        MetadataTable::is_notified(self, job_id).await
    }
    async fn mark_notified(&self, job_id: &str, at: &str) -> Answer<()> {
        MetadataTable::mark_notified(self, job_id, at).await
    }
}

impl Notifications for Notifier {
    async fn publish(&self, subject: &str, body: &serde_json::Value) -> Answer<()> {
        Notifier::publish(self, subject, body).await
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

//! Domain model of kb-autosync. Pure: no AWS SDK, no I/O, so every rule here is unit-testable.
//!
//! - [`event`]: S3 change events in every shape users meet, normalised to [`event::ObjectChange`].
//! - [`change`]: the tracked [`change::ChangeRecord`] and its deterministic id.
//! - [`direct`]: direct ingestion of the changed documents, and when a round is a job instead.
//! - [`drift`]: where an index and its S3 scope disagree (missing, stale, orphaned, failed).
//! - [`reconcile`]: the changes that repair a drift.
//! - [`numbering`]: change numbers reserved per batch and data source.
//! - [`routing`]: bucket + key prefix -> knowledge base and data source.
//! - [`resolution`]: which data source of a knowledge base a route syncs.
//! - [`quota`]: Bedrock ingestion quotas and the "may we start a job now" decision.
//! - [`lease`]: the per-data-source lease that serialises rounds of ingestion.
//! - [`job`]: ingestion job states and what the workflow does next.
//! - [`workflow`]: the payloads exchanged with the state machine.
//! - [`notification`]: the SNS messages users receive.
//! - [`sync_request`]: messages on the sync queue.
//! - [`error_class`]: how AWS errors are classified for the state machine's Retry and Catch.

pub mod change;
pub mod direct;
pub mod drift;
pub mod error_class;
pub mod event;
pub mod foreign_jobs;
pub mod handover;
pub mod job;
pub mod lease;
pub mod notification;
pub mod numbering;
pub mod quota;
pub mod reconcile;
pub mod resolution;
pub mod routing;
pub mod slot_line;
pub mod sync_request;
pub mod workflow;

/// Identifies one Bedrock data source: the unit that leases, rounds and jobs are kept per.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct SourceId {
    pub knowledge_base_id: String,
    pub data_source_id: String,
}

impl SourceId {
    pub fn new(knowledge_base_id: impl Into<String>, data_source_id: impl Into<String>) -> Self {
        Self {
            knowledge_base_id: knowledge_base_id.into(),
            data_source_id: data_source_id.into(),
        }
    }

    /// The key used in the sources table and the pending index: `KB#DS`.
    pub fn key(&self) -> String {
        format!("{}#{}", self.knowledge_base_id, self.data_source_id)
    }
}

impl std::fmt::Display for SourceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.knowledge_base_id, self.data_source_id)
    }
}

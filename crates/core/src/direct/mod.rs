//! Direct ingestion: a round that indexes or removes the changed documents themselves
//! (IngestKnowledgeBaseDocuments / DeleteKnowledgeBaseDocuments) instead of scanning the whole
//! data source with an ingestion job. Same lease, same counters, same tracking; only the way
//! through the round differs.
//!
//! - [`mode`]: `auto` / `job` / `direct` per route, and which way a round took.
//! - [`choice`]: whether a round may go direct, or why it must be a job.
//! - [`plan`]: pending changes collapsed per document, with the key forms to settle in S3.
//! - [`status`]: what Bedrock's per-document statuses mean for the changes.
//! - [`token`]: deterministic client tokens and batch ids, so a retried task repeats nothing.

pub mod choice;
pub mod mode;
pub mod plan;
pub mod status;
pub mod token;

pub use choice::{
    direct_or_job, DirectSettings, JobReason, DIRECT_MAX_OBJECT_BYTES, MAX_BATCHES_PER_INVOCATION,
};
pub use mode::{IngestionMethod, IngestionMode};
pub use plan::{collapse, DocumentAction, DocumentChanges, PlannedDocument, Presence};
pub use status::{change_outcomes, DocumentOutcome};

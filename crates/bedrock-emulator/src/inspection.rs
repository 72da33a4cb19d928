//! The inspection document (`GET /_emulator/state`): indexed documents per data source (with how
//! they got there and their metadata), direct document operations still running, document API
//! calls per data source, job history with times and statistics, pending faults, API call and error
//! counters.
//!
//! Field names are snake_case, except `statistics` / `planned_statistics`, which keep Bedrock's
//! names so they compare directly with what GetIngestionJob returns.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::clock::TimeScale;
use crate::counters::{ApiCounters, DocumentCallCounters};
use crate::direct_documents::DirectOperationInspection;
use crate::document_index::IndexedDocument;
use crate::faults::FaultsConfig;
use crate::jobs::{IngestionJob, JobOrigin, JobStatus};
use crate::state::EmulatorState;
use crate::sync_plan::{DocumentChange, IngestionStatistics};

#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    #[serde(serialize_with = "crate::timestamps::serialize_millis")]
    pub now: DateTime<Utc>,
    pub time_scale: f64,
    pub knowledge_bases: Vec<KnowledgeBaseInspection>,
    /// All jobs, oldest first.
    pub jobs: Vec<JobInspection>,
    pub faults: FaultsConfig,
    #[serde(flatten)]
    pub counters: ApiCounters,
}

#[derive(Debug, Clone, Serialize)]
pub struct KnowledgeBaseInspection {
    pub knowledge_base_id: String,
    pub name: String,
    pub data_sources: Vec<DataSourceInspection>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DataSourceInspection {
    pub data_source_id: String,
    pub name: String,
    pub bucket: String,
    pub inclusion_prefixes: Vec<String>,
    /// Jobs holding this data source's slot (STARTING, IN_PROGRESS, STOPPING).
    pub active_job_ids: Vec<String>,
    /// The index as of now (running jobs and direct operations not applied yet): INDEXED, FAILED,
    /// IGNORED or METADATA_UPDATE_FAILED per key, with origin `job` or `direct`.
    pub documents: Vec<DocumentInspection>,
    /// Metadata sidecars applied (by the last completed job, or with a direct ingestion that named
    /// the document's sidecar): key -> ETag.
    pub metadata_documents: BTreeMap<String, String>,
    /// Direct ingestions and deletions still running, by key.
    pub pending_documents: Vec<DirectOperationInspection>,
    /// Document API calls naming this data source, by operation name.
    pub document_calls: BTreeMap<String, DocumentCallCounters>,
    /// Jobs started while direct operations here were still running.
    pub job_starts_during_direct_operations: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DocumentInspection {
    pub key: String,
    #[serde(flatten)]
    pub document: IndexedDocument,
}

#[derive(Debug, Clone, Serialize)]
pub struct JobInspection {
    pub ingestion_job_id: String,
    pub knowledge_base_id: String,
    pub data_source_id: String,
    pub origin: JobOrigin,
    pub status: JobStatus,
    pub description: Option<String>,
    pub client_token: Option<String>,
    #[serde(serialize_with = "crate::timestamps::serialize_millis")]
    pub started_at: DateTime<Utc>,
    #[serde(serialize_with = "crate::timestamps::serialize_millis")]
    pub updated_at: DateTime<Utc>,
    /// When it reached COMPLETE / FAILED / STOPPED; null while running.
    #[serde(serialize_with = "crate::timestamps::serialize_optional_millis")]
    pub ended_at: Option<DateTime<Utc>>,
    /// When it is scheduled to turn IN_PROGRESS and to end; null while the snapshot is taken.
    #[serde(serialize_with = "crate::timestamps::serialize_optional_millis")]
    pub scheduled_in_progress_at: Option<DateTime<Utc>>,
    #[serde(serialize_with = "crate::timestamps::serialize_optional_millis")]
    pub scheduled_end_at: Option<DateTime<Utc>>,
    pub failure_reasons: Vec<String>,
    /// What GetIngestionJob shows now.
    pub statistics: IngestionStatistics,
    /// What the job will report when COMPLETE (computed from its start snapshot); null if it has
    /// no snapshot (still listing, or listing failed).
    pub planned_statistics: Option<IngestionStatistics>,
    /// Per key, what the job does: NEW / MODIFIED / FAILED (with reason) / DELETED.
    pub document_changes: BTreeMap<String, DocumentChange>,
}

impl Inspection {
    pub fn of(state: &EmulatorState, now: DateTime<Utc>, time_scale: TimeScale) -> Self {
        let knowledge_bases = state
            .catalog
            .knowledge_bases
            .values()
            .map(|knowledge_base| KnowledgeBaseInspection {
                knowledge_base_id: knowledge_base.id.clone(),
                name: knowledge_base.name.clone(),
                data_sources: knowledge_base
                    .data_sources
                    .values()
                    .map(|data_source| {
                        let key = data_source.key();
                        let index = state.indexes.get(&key);
                        DataSourceInspection {
                            data_source_id: data_source.id.clone(),
                            name: data_source.name.clone(),
                            bucket: data_source.scope.bucket.clone(),
                            inclusion_prefixes: data_source.scope.inclusion_prefixes.clone(),
                            active_job_ids: state
                                .jobs
                                .iter()
                                .filter(|job| job.data_source == key && job.status.is_active())
                                .map(|job| job.id.clone())
                                .collect(),
                            documents: index
                                .map(|index| {
                                    index
                                        .documents
                                        .iter()
                                        .map(|(key, document)| DocumentInspection {
                                            key: key.clone(),
                                            document: document.clone(),
                                        })
                                        .collect()
                                })
                                .unwrap_or_default(),
                            metadata_documents: index
                                .map(|index| index.metadata.clone())
                                .unwrap_or_default(),
                            pending_documents: state
                                .pending_documents
                                .get(&key)
                                .into_iter()
                                .flatten()
                                .map(|(object_key, operation)| {
                                    DirectOperationInspection::of(object_key, operation, now)
                                })
                                .collect(),
                            document_calls: state
                                .document_calls
                                .get(&key)
                                .cloned()
                                .unwrap_or_default(),
                            job_starts_during_direct_operations: state
                                .job_starts_during_direct_operations
                                .get(&key)
                                .copied()
                                .unwrap_or(0),
                        }
                    })
                    .collect(),
            })
            .collect();
        Self {
            now,
            time_scale: time_scale.factor(),
            knowledge_bases,
            jobs: state.jobs.iter().map(JobInspection::of).collect(),
            faults: state.faults.clone(),
            counters: state.counters.clone(),
        }
    }
}

impl JobInspection {
    fn of(job: &IngestionJob) -> Self {
        Self {
            ingestion_job_id: job.id.clone(),
            knowledge_base_id: job.data_source.knowledge_base_id.clone(),
            data_source_id: job.data_source.data_source_id.clone(),
            origin: job.origin,
            status: job.status,
            description: job.description.clone(),
            client_token: job.client_token.clone(),
            started_at: job.started_at,
            updated_at: job.updated_at,
            ended_at: job.ended_at,
            scheduled_in_progress_at: job.timeline.map(|timeline| timeline.in_progress_at),
            scheduled_end_at: job.timeline.map(|timeline| timeline.ends_at),
            failure_reasons: job.failure_reasons.clone(),
            statistics: job.visible_statistics(),
            planned_statistics: job.plan.as_ref().map(|plan| plan.statistics.clone()),
            document_changes: job
                .plan
                .as_ref()
                .map(|plan| plan.changes.clone())
                .unwrap_or_default(),
        }
    }
}

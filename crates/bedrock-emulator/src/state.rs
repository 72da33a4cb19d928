//! All mutable emulator state, kept in one struct behind one mutex (see `Emulator`), so every API
//! call sees and changes a consistent picture: quota checks and job creation cannot interleave.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use crate::catalog::{Catalog, DataSourceKey};
use crate::client_token::ReplayRecord;
use crate::clock::TimeScale;
use crate::config::{ConfigError, EmulatorConfig, QuotaConfig};
use crate::counters::{ApiCounters, DocumentCallCounters, Operation};
use crate::direct_documents::DirectOperation;
use crate::document_detail::DocumentDetail;
use crate::document_index::DocumentIndex;
use crate::errors::ApiError;
use crate::faults::FaultsConfig;
use crate::jobs::IngestionJob;
use crate::quota::TokenBucket;

/// Direct operations still running, per data source and object key (one per key: a newer call on
/// the key replaces a running one).
pub type PendingDocuments = BTreeMap<DataSourceKey, BTreeMap<String, DirectOperation>>;

/// (data source, operation, clientToken) of a document write call.
pub type DocumentReplayKey = (DataSourceKey, Operation, String);

#[derive(Debug)]
pub struct EmulatorState {
    pub catalog: Catalog,
    pub indexes: BTreeMap<DataSourceKey, DocumentIndex>,
    /// In start order.
    pub jobs: Vec<IngestionJob>,
    /// (data source, clientToken) -> job id, for StartIngestionJob idempotency.
    pub client_tokens: HashMap<(DataSourceKey, String), String>,
    pub faults: FaultsConfig,
    pub start_job_bucket: TokenBucket,
    /// One bucket per Get/List operation, created on first use.
    pub read_buckets: HashMap<Operation, TokenBucket>,
    pub counters: ApiCounters,
    read_quota: ReadQuota,
    pub pending_documents: PendingDocuments,
    /// Answers of Ingest/DeleteKnowledgeBaseDocuments calls that carried a clientToken.
    pub document_replays: HashMap<DocumentReplayKey, ReplayRecord<Vec<DocumentDetail>>>,
    /// One bucket per document operation, created on first use.
    pub document_buckets: HashMap<Operation, TokenBucket>,
    document_quota: DocumentQuota,
    /// Document API calls per data source and operation name.
    pub document_calls: BTreeMap<DataSourceKey, BTreeMap<String, DocumentCallCounters>>,
    /// Jobs started (API or foreign) while direct document operations of their data source were
    /// still running: the other direction of the overlap a document write's ConflictException
    /// refuses. Allowed, as Bedrock documents no error for it, but counted so tests can assert none.
    pub job_starts_during_direct_operations: BTreeMap<DataSourceKey, u64>,
}

#[derive(Debug, Clone, Copy)]
struct ReadQuota {
    enabled: bool,
    burst: u32,
    real_rate_per_second: f64,
}

#[derive(Debug, Clone, Copy)]
struct DocumentQuota {
    enabled: bool,
    /// Ingest and Delete, each its own bucket.
    write: BucketLimits,
    /// Get and List, each its own bucket.
    read: BucketLimits,
}

#[derive(Debug, Clone, Copy)]
struct BucketLimits {
    burst: u32,
    real_rate_per_second: f64,
}

impl EmulatorState {
    pub fn new(
        config: &EmulatorConfig,
        time_scale: TimeScale,
        now: DateTime<Utc>,
    ) -> Result<Self, ConfigError> {
        let quotas = &config.quotas;
        Ok(Self {
            catalog: Catalog::from_config(&config.knowledge_bases, now)?,
            indexes: BTreeMap::new(),
            jobs: Vec::new(),
            client_tokens: HashMap::new(),
            faults: config.faults.clone(),
            start_job_bucket: TokenBucket::new(
                quotas.start_ingestion_job_burst,
                time_scale.real_rate(quotas.start_ingestion_job_rate_per_second),
                now,
            ),
            read_buckets: HashMap::new(),
            counters: ApiCounters::default(),
            read_quota: ReadQuota {
                enabled: quotas.read_rate_limit_enabled,
                burst: quotas.read_burst,
                real_rate_per_second: time_scale.real_rate(quotas.read_rate_per_second),
            },
            pending_documents: BTreeMap::new(),
            document_replays: HashMap::new(),
            document_buckets: HashMap::new(),
            document_quota: DocumentQuota {
                enabled: quotas.document_rate_limit_enabled,
                write: BucketLimits {
                    burst: quotas.document_write_burst,
                    real_rate_per_second: time_scale
                        .real_rate(quotas.document_write_rate_per_second),
                },
                read: BucketLimits {
                    burst: quotas.document_read_burst,
                    real_rate_per_second: time_scale
                        .real_rate(quotas.document_read_rate_per_second),
                },
            },
            document_calls: BTreeMap::new(),
            job_starts_during_direct_operations: BTreeMap::new(),
        })
    }

    /// Brings every job and direct document operation up to `now`, applying what ended to the
    /// indexes in the order it ended (a job before a document at the same instant). Called at the
    /// start of every locked section, so no reader sees a stale job or document.
    pub fn advance(&mut self, now: DateTime<Utc>) {
        enum Ended {
            Job(usize),
            Document(DataSourceKey, String, Box<DirectOperation>),
        }
        let mut ended: Vec<(DateTime<Utc>, Ended)> = Vec::new();
        for (position, job) in self.jobs.iter_mut().enumerate() {
            if job.advance(now) {
                ended.push((job.ended_at.unwrap_or(now), Ended::Job(position)));
            }
        }
        for (data_source, operations) in &mut self.pending_documents {
            let due: Vec<String> = operations
                .iter()
                .filter(|(_, operation)| operation.is_due(now))
                .map(|(object_key, _)| object_key.clone())
                .collect();
            for object_key in due {
                if let Some(operation) = operations.remove(&object_key) {
                    let at = operation.ends_at;
                    ended.push((
                        at,
                        Ended::Document(data_source.clone(), object_key, Box::new(operation)),
                    ));
                }
            }
        }
        self.pending_documents
            .retain(|_, operations| !operations.is_empty());
        // Stable: at equal times jobs (pushed first) stay first.
        ended.sort_by_key(|(at, _)| *at);
        for (at, item) in ended {
            match item {
                Ended::Job(position) => {
                    let job = &self.jobs[position];
                    if let Some(plan) = &job.plan {
                        plan.apply(self.indexes.entry(job.data_source.clone()).or_default(), at);
                    }
                }
                Ended::Document(data_source, object_key, operation) => {
                    (*operation).apply(self.indexes.entry(data_source).or_default(), &object_key);
                }
            }
        }
    }

    /// The document API's rate check: an injected throttle first, then the operation's bucket.
    pub fn take_document_token(
        &mut self,
        operation: Operation,
        now: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        if self.faults.take_forced_document_throttle() {
            return Err(ApiError::Throttling(
                "Rate exceeded (injected by the emulator's throttle fault)".to_string(),
            ));
        }
        let quota = self.document_quota;
        if !quota.enabled || !operation.is_document_operation() {
            return Ok(());
        }
        let limits = if operation.is_document_write() {
            quota.write
        } else {
            quota.read
        };
        let bucket = self
            .document_buckets
            .entry(operation)
            .or_insert_with(|| TokenBucket::new(limits.burst, limits.real_rate_per_second, now));
        if bucket.try_take(now) {
            Ok(())
        } else {
            Err(ApiError::rate_exceeded())
        }
    }

    /// Direct document writes and an ingestion job must not overlap on a data source (AWS advises
    /// against it; here it is an error, so a service that lets them overlap is caught in tests).
    pub fn check_no_active_job(&self, data_source: &DataSourceKey) -> Result<(), ApiError> {
        let running: Vec<String> = self
            .jobs
            .iter()
            .filter(|job| &job.data_source == data_source && job.status.is_active())
            .map(|job| format!("{} ({})", job.id, job.status.as_str()))
            .collect();
        if running.is_empty() {
            return Ok(());
        }
        Err(ApiError::Conflict(format!(
            "Data source {} in knowledge base {} has an ingestion job in progress ({}); \
             documents cannot be ingested or deleted directly while it syncs. Wait for the job to end.",
            data_source.data_source_id,
            data_source.knowledge_base_id,
            running.join(", ")
        )))
    }

    /// AWS: the first sync of an S3 data source must be an ingestion job; until one COMPLETED,
    /// documents cannot be ingested or deleted directly.
    pub fn check_synced_before(
        &self,
        data_source: &DataSourceKey,
        required: bool,
    ) -> Result<(), ApiError> {
        let synced = !required
            || self.jobs.iter().any(|job| {
                &job.data_source == data_source && job.status == crate::jobs::JobStatus::Complete
            });
        if synced {
            return Ok(());
        }
        Err(ApiError::Validation(format!(
            "Data source {} in knowledge base {} has not been synced yet: start an ingestion job \
             (StartIngestionJob) and let it complete before ingesting documents directly.",
            data_source.data_source_id, data_source.knowledge_base_id
        )))
    }

    /// Counts a job starting on `data_source` if direct operations there are still running.
    pub fn note_job_start(&mut self, data_source: &DataSourceKey, job_id: &str) {
        let running = self
            .pending_documents
            .get(data_source)
            .map_or(0, |operations| operations.len());
        if running > 0 {
            tracing::warn!(job_id, knowledge_base_id = %data_source.knowledge_base_id,
                data_source_id = %data_source.data_source_id, running,
                "ingestion job started while direct document operations are running");
            *self
                .job_starts_during_direct_operations
                .entry(data_source.clone())
                .or_default() += 1;
        }
    }

    pub fn document_call_counters(
        &mut self,
        data_source: &DataSourceKey,
        operation: Operation,
    ) -> &mut DocumentCallCounters {
        self.document_calls
            .entry(data_source.clone())
            .or_default()
            .entry(operation.name().to_string())
            .or_default()
    }

    /// Takes a token from the operation's read bucket, unless read limits are off.
    pub fn take_read_token(
        &mut self,
        operation: Operation,
        now: DateTime<Utc>,
    ) -> Result<(), ApiError> {
        let quota = self.read_quota;
        if !quota.enabled || !operation.is_read() {
            return Ok(());
        }
        let bucket = self
            .read_buckets
            .entry(operation)
            .or_insert_with(|| TokenBucket::new(quota.burst, quota.real_rate_per_second, now));
        if bucket.try_take(now) {
            Ok(())
        } else {
            Err(ApiError::rate_exceeded())
        }
    }

    /// StartIngestionJob's rate check: an injected throttle first, then the token bucket.
    pub fn take_start_job_token(&mut self, now: DateTime<Utc>) -> Result<(), ApiError> {
        if self.faults.take_forced_denial() {
            return Err(ApiError::AccessDenied(
                "User is not authorized to perform: bedrock:StartIngestionJob (injected by the emulator's deny fault)".to_string(),
            ));
        }
        if self.faults.take_forced_throttle() {
            return Err(ApiError::Throttling(
                "Rate exceeded (injected by the emulator's throttle fault)".to_string(),
            ));
        }
        if self.start_job_bucket.try_take(now) {
            Ok(())
        } else {
            Err(ApiError::rate_exceeded())
        }
    }

    pub fn job_position(
        &self,
        knowledge_base_id: &str,
        data_source_id: &str,
        ingestion_job_id: &str,
    ) -> Result<usize, ApiError> {
        self.catalog
            .data_source(knowledge_base_id, data_source_id)?;
        self.jobs
            .iter()
            .position(|job| {
                job.id == ingestion_job_id
                    && job.data_source.knowledge_base_id == knowledge_base_id
                    && job.data_source.data_source_id == data_source_id
            })
            .ok_or_else(|| {
                ApiError::ingestion_job_not_found(
                    knowledge_base_id,
                    data_source_id,
                    ingestion_job_id,
                )
            })
    }

    pub fn job_by_id(&self, ingestion_job_id: &str) -> Option<&IngestionJob> {
        self.jobs.iter().find(|job| job.id == ingestion_job_id)
    }

    pub fn job_by_id_mut(&mut self, ingestion_job_id: &str) -> Option<&mut IngestionJob> {
        self.jobs.iter_mut().find(|job| job.id == ingestion_job_id)
    }

    /// Bedrock's concurrency quotas, checked in the order the service reports them: the data
    /// source first, then the knowledge base (ConflictException), then the account
    /// (ServiceQuotaExceededException).
    pub fn check_job_slots(
        &self,
        data_source: &DataSourceKey,
        quotas: &QuotaConfig,
    ) -> Result<(), ApiError> {
        let active: Vec<&IngestionJob> = self
            .jobs
            .iter()
            .filter(|job| job.status.is_active())
            .collect();
        let on_data_source: Vec<&&IngestionJob> = active
            .iter()
            .filter(|job| &job.data_source == data_source)
            .collect();
        if on_data_source.len() >= quotas.max_concurrent_jobs_per_data_source as usize {
            let running = on_data_source
                .iter()
                .map(|job| job.id.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(ApiError::Conflict(format!(
                "Data source {} in knowledge base {} already has an ingestion job in progress ({running}); \
                 at most {} concurrent ingestion job(s) per data source.",
                data_source.data_source_id,
                data_source.knowledge_base_id,
                quotas.max_concurrent_jobs_per_data_source
            )));
        }
        let on_knowledge_base: Vec<&&IngestionJob> = active
            .iter()
            .filter(|job| job.data_source.knowledge_base_id == data_source.knowledge_base_id)
            .collect();
        if on_knowledge_base.len() >= quotas.max_concurrent_jobs_per_knowledge_base as usize {
            let running = on_knowledge_base
                .iter()
                .map(|job| {
                    format!(
                        "{} on data source {}",
                        job.id, job.data_source.data_source_id
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            return Err(ApiError::Conflict(format!(
                "Knowledge base {} already has an ingestion job in progress ({running}); \
                 at most {} concurrent ingestion job(s) per knowledge base.",
                data_source.knowledge_base_id, quotas.max_concurrent_jobs_per_knowledge_base
            )));
        }
        if active.len() >= quotas.max_concurrent_jobs_per_account as usize {
            return Err(ApiError::ServiceQuotaExceeded(format!(
                "The account already has {} ingestion jobs in progress; the quota is {} concurrent ingestion jobs per account.",
                active.len(),
                quotas.max_concurrent_jobs_per_account
            )));
        }
        Ok(())
    }
}

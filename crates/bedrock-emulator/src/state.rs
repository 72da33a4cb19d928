//! All mutable emulator state, kept in one struct behind one mutex (see `Emulator`), so every API
//! call sees and changes a consistent picture: quota checks and job creation cannot interleave.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};

use crate::catalog::{Catalog, DataSourceKey};
use crate::clock::TimeScale;
use crate::config::{ConfigError, EmulatorConfig, QuotaConfig};
use crate::counters::{ApiCounters, Operation};
use crate::document_index::DocumentIndex;
use crate::errors::ApiError;
use crate::faults::FaultsConfig;
use crate::jobs::IngestionJob;
use crate::quota::TokenBucket;

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
}

#[derive(Debug, Clone, Copy)]
struct ReadQuota {
    enabled: bool,
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
        })
    }

    /// Brings every job up to `now`, applying completed jobs' plans to their indexes in completion
    /// order. Called at the start of every locked section, so no reader sees a stale job.
    pub fn advance(&mut self, now: DateTime<Utc>) {
        let mut completed: Vec<(DateTime<Utc>, usize)> = Vec::new();
        for (position, job) in self.jobs.iter_mut().enumerate() {
            if job.advance(now) {
                completed.push((job.ended_at.unwrap_or(now), position));
            }
        }
        completed.sort();
        for (completed_at, position) in completed {
            let job = &self.jobs[position];
            if let Some(plan) = &job.plan {
                plan.apply(
                    self.indexes.entry(job.data_source.clone()).or_default(),
                    completed_at,
                );
            }
        }
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

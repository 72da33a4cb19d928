//! What the control endpoints do: reset, add knowledge bases / data sources, inject faults, start
//! foreign jobs, inspect. Errors reuse `ApiError` so they render the same way as API errors.

use serde::Deserialize;

use super::ingestion::PendingJob;
use super::{new_resource_id, Emulator};
use crate::catalog::CatalogChangeError;
use crate::config::{DataSourceConfig, KnowledgeBaseConfig};
use crate::errors::ApiError;
use crate::faults::{FailDocumentsFault, FailJobsFault, FaultsConfig, SlowJobsFault};
use crate::inspection::Inspection;
use crate::jobs::{IngestionJob, IngestionJobView, JobOrigin};
use crate::state::EmulatorState;

/// Body of `POST /_emulator/foreign-jobs`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForeignJobRequest {
    pub knowledge_base_id: String,
    pub data_source_id: String,
    /// Total duration in Bedrock seconds; absent = the normal computed duration.
    #[serde(default)]
    pub duration_seconds: Option<f64>,
    #[serde(default)]
    pub description: Option<String>,
}

impl Emulator {
    /// Back to the state right after start-up: the configured catalog and faults, no jobs, empty
    /// indexes, full token buckets, zeroed counters.
    pub fn reset(&self) -> Result<(), ApiError> {
        let mut state = self
            .shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = self.shared.clock.now();
        *state = EmulatorState::new(self.config(), self.time_scale(), now).map_err(|error| {
            ApiError::Internal(format!("cannot rebuild the configured state: {error}"))
        })?;
        tracing::info!("emulator state reset");
        Ok(())
    }

    pub fn add_knowledge_base(&self, config: KnowledgeBaseConfig) -> Result<(), ApiError> {
        let (mut state, now) = self.lock();
        if state.catalog.knowledge_bases.contains_key(&config.id) {
            return Err(ApiError::Conflict(format!(
                "Knowledge base {} already exists.",
                config.id
            )));
        }
        state
            .catalog
            .add_knowledge_base(&config, now)
            .map_err(|error| ApiError::Validation(error.to_string()))
    }

    pub fn add_data_source(
        &self,
        knowledge_base_id: &str,
        config: DataSourceConfig,
    ) -> Result<(), ApiError> {
        let (mut state, now) = self.lock();
        let knowledge_base = state.catalog.knowledge_base(knowledge_base_id)?;
        if knowledge_base.data_sources.contains_key(&config.id) {
            return Err(ApiError::Conflict(format!(
                "Data source {} already exists in knowledge base {knowledge_base_id}.",
                config.id
            )));
        }
        state
            .catalog
            .add_data_source(knowledge_base_id, &config, now)
            .map_err(|error| match error {
                CatalogChangeError::NotFound(error) => error,
                CatalogChangeError::Invalid(error) => ApiError::Validation(error.to_string()),
            })
    }

    pub fn faults(&self) -> FaultsConfig {
        self.lock().0.faults.clone()
    }

    pub fn clear_faults(&self) -> FaultsConfig {
        let (mut state, _) = self.lock();
        state.faults = FaultsConfig::default();
        state.faults.clone()
    }

    pub fn add_job_failures(&self, fault: FailJobsFault) -> Result<FaultsConfig, ApiError> {
        fault.validate().map_err(ApiError::Validation)?;
        let (mut state, _) = self.lock();
        state.faults.fail_jobs.push(fault);
        Ok(state.faults.clone())
    }

    pub fn add_document_failures(
        &self,
        fault: FailDocumentsFault,
    ) -> Result<FaultsConfig, ApiError> {
        fault.validate().map_err(ApiError::Validation)?;
        let (mut state, _) = self.lock();
        state.faults.fail_documents.push(fault);
        Ok(state.faults.clone())
    }

    pub fn add_slow_jobs(&self, fault: SlowJobsFault) -> Result<FaultsConfig, ApiError> {
        fault.validate().map_err(ApiError::Validation)?;
        let (mut state, _) = self.lock();
        state.faults.slow_jobs.push(fault);
        Ok(state.faults.clone())
    }

    /// Adds `count` AccessDeniedExceptions for the next StartIngestionJob calls.
    pub fn add_start_denials(&self, count: u32) -> FaultsConfig {
        let (mut state, _) = self.lock();
        state.faults.deny_start_ingestion_job =
            state.faults.deny_start_ingestion_job.saturating_add(count);
        state.faults.clone()
    }

    /// Adds `count` forced ThrottlingExceptions for the next document API calls.
    pub fn add_document_throttles(&self, count: u32) -> FaultsConfig {
        let (mut state, _) = self.lock();
        state.faults.throttle_document_operations = state
            .faults
            .throttle_document_operations
            .saturating_add(count);
        state.faults.clone()
    }

    /// Adds `count` forced ThrottlingExceptions for the next StartIngestionJob calls.
    pub fn add_start_throttles(&self, count: u32) -> FaultsConfig {
        let (mut state, _) = self.lock();
        state.faults.throttle_start_ingestion_job = state
            .faults
            .throttle_start_ingestion_job
            .saturating_add(count);
        state.faults.clone()
    }

    /// Starts a job as if from the console: it takes a real snapshot and really syncs, and it
    /// occupies the data source / knowledge base / account slots like any job (so it is refused
    /// the same way when they are taken), but it skips the API's rate limit and the job faults.
    pub async fn start_foreign_job(
        &self,
        request: ForeignJobRequest,
    ) -> Result<IngestionJobView, ApiError> {
        if let Some(seconds) = request.duration_seconds {
            if !(seconds.is_finite() && seconds >= 0.0) {
                return Err(ApiError::Validation(format!(
                    "duration_seconds must be a finite number >= 0, got {seconds}"
                )));
            }
        }
        let pending = {
            let (mut state, now) = self.lock();
            let data_source = state
                .catalog
                .data_source(&request.knowledge_base_id, &request.data_source_id)?;
            let (key, scope) = (data_source.key(), data_source.scope.clone());
            state.check_job_slots(&key, &self.config().quotas)?;
            let description = request.description.unwrap_or_else(|| {
                "Started outside the service under test (emulated console sync)".to_string()
            });
            let job = IngestionJob::new(
                new_resource_id(),
                key.clone(),
                JobOrigin::Foreign,
                Some(description),
                None,
                now,
            );
            let pending = PendingJob {
                job_id: job.id.clone(),
                data_source: key,
                scope,
                forced_duration_seconds: request.duration_seconds,
            };
            tracing::info!(job_id = %job.id, knowledge_base_id = %request.knowledge_base_id,
                data_source_id = %request.data_source_id, "foreign ingestion job started");
            state.note_job_start(&pending.data_source, &job.id);
            state.jobs.push(job);
            pending
        };
        self.start_detached(pending).await
    }

    pub fn inspect(&self) -> Inspection {
        let (state, now) = self.lock();
        Inspection::of(&state, now, self.time_scale())
    }
}

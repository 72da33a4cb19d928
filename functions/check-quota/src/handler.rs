use kb_autosync_aws::executions::Executions;
use kb_autosync_aws::knowledge_base::KnowledgeBase;
use kb_autosync_aws::sources_table::SourcesTable;
use kb_autosync_aws::tracking_table::TrackingTable;
use kb_autosync_aws::TaskError;
use kb_autosync_core::direct::{DirectSettings, IngestionMode};
use kb_autosync_core::lease::ExecutionState;
use kb_autosync_core::quota::{IngestionQuota, QuotaDecision, QuotaObservation};
use kb_autosync_core::routing::RouteTable;
use kb_autosync_core::workflow::WorkflowState;
use kb_autosync_core::SourceId;

pub struct CheckQuota {
    pub knowledge_base: KnowledgeBase,
    pub sources: SourcesTable,
    pub executions: Executions,
    pub quota: IngestionQuota,
    pub tracking: TrackingTable,
    pub routes: RouteTable,
    pub direct: DirectSettings,
}

impl CheckQuota {
    pub async fn handle(&self, state: WorkflowState) -> Result<QuotaDecision, TaskError> {
        let source = state.input.source();
        let me = &state.input.execution_name;
        let seen = self.observe(&source, me).await?;
        let decision = self
            .quota
            .decide(&seen, state.input.settings.quota_wait_seconds);
        match &decision {
            QuotaDecision::Proceed => {
                tracing::info!(%source, execution = %me, "quota allows a job now")
            }
            QuotaDecision::Wait {
                wait_seconds,
                reason,
            } => {
                tracing::info!(%source, execution = %me, wait_seconds, %reason, "waiting for quota")
            }
        }
        Ok(decision)
    }

    /// Jobs running on the data source, its knowledge base and every data source the stack
    /// manages; the job slots of this stack (freeing those of executions that are gone); the
    /// last start.
    async fn observe(&self, source: &SourceId, me: &str) -> Result<QuotaObservation, TaskError> {
        let mut seen = QuotaObservation {
            data_source_jobs: self.knowledge_base.running_jobs(source).await?,
            direct_expected: self.direct_expected(source).await?,
            ..Default::default()
        };
        // Jobs on the other data sources of the knowledge base, ours or started elsewhere.
        for ds in self
            .knowledge_base
            .data_source_ids(&source.knowledge_base_id)
            .await?
        {
            if ds == source.data_source_id {
                continue;
            }
            let other = SourceId::new(&source.knowledge_base_id, &ds);
            for job in self.knowledge_base.running_jobs(&other).await? {
                seen.knowledge_base_jobs.push((ds.clone(), job));
            }
        }
        // Jobs across every data source this stack manages.
        let mut account_jobs = seen.data_source_jobs.len() + seen.knowledge_base_jobs.len();
        for (managed, _) in self.sources.all_sources().await? {
            if managed.knowledge_base_id != source.knowledge_base_id {
                account_jobs += self.knowledge_base.running_jobs(&managed).await?.len();
            }
        }
        seen.account_jobs = account_jobs as u32;
        // Job slots held by other executions of this stack; slots of executions that are gone
        // are freed here, so a killed execution never blocks a knowledge base for good.
        let slots = self.sources.read_slots().await?;
        for holder in &slots.holders {
            if holder.execution_name == me {
                continue;
            }
            if self.executions.state(&holder.execution_name).await? != ExecutionState::Running {
                tracing::warn!(knowledge_base_id = %holder.knowledge_base_id, execution = %holder.execution_name, "freeing the job slot of an execution that is not running");
                self.sources
                    .release_slot(&holder.knowledge_base_id, &holder.execution_name)
                    .await?;
                continue;
            }
            seen.slots_held += 1;
            if holder.knowledge_base_id == source.knowledge_base_id {
                seen.slot_held_by = Some(holder.execution_name.clone());
            }
        }
        // A stamp in the future is a start in flight (see SourcesTable::acquire_slot): as recent
        // as a start can be.
        seen.since_last_start_ms = slots
            .last_start_ms
            .map(|at| (kb_autosync_aws::now_ms() - at).max(0));
        Ok(seen)
    }

    /// Whether start-sync will most likely take the direct way (see `kb_autosync_core::direct`):
    /// then the round needs no job slot. A guess made before the counters are pinned; when it
    /// is wrong, start-sync finds the slot busy and the round waits and checks again.
    async fn direct_expected(&self, source: &SourceId) -> Result<bool, TaskError> {
        Ok(match self.routes.ingestion_mode(source, self.direct.mode) {
            IngestionMode::Job => false,
            IngestionMode::Direct => self.knowledge_base.has_completed_job(source).await?,
            IngestionMode::Auto => {
                !self
                    .tracking
                    .more_pending_than(source, self.direct.max_changes)
                    .await?
                    && self.knowledge_base.has_completed_job(source).await?
            }
        })
    }
}

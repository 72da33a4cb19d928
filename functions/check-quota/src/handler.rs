use kb_autosync_aws::executions::Executions;
use kb_autosync_aws::knowledge_base::KnowledgeBase;
use kb_autosync_aws::sources_table::{Slots, SourcesTable};
use kb_autosync_aws::stores::{IngestionJobs, PendingChanges, RoundExecutions, SourcesStore};
use kb_autosync_aws::tracking_table::TrackingTable;
use kb_autosync_aws::TaskError;
use kb_autosync_core::direct::{DirectSettings, IngestionMode};
use kb_autosync_core::foreign_jobs::{self, ForeignJobsCensus};
use kb_autosync_core::lease::ExecutionState;
use kb_autosync_core::quota::{IngestionQuota, QuotaDecision, QuotaObservation};
use kb_autosync_core::routing::RouteTable;
use kb_autosync_core::slot_line::{self, WaitingRound};
use kb_autosync_core::workflow::WorkflowState;
use kb_autosync_core::SourceId;

/// check-quota's task. Generic over the stores (`kb_autosync_aws::stores`) so that its
/// decisions are unit-tested on in-memory ones; deployed with the AWS adapters (the defaults).
pub struct CheckQuota<K = KnowledgeBase, S = SourcesTable, E = Executions, T = TrackingTable> {
    pub knowledge_base: K,
    pub sources: S,
    pub executions: E,
    pub quota: IngestionQuota,
    pub tracking: T,
    pub routes: RouteTable,
    pub direct: DirectSettings,
}

impl<K, S, E, T> CheckQuota<K, S, E, T>
where
    K: IngestionJobs,
    S: SourcesStore,
    E: RoundExecutions,
    T: PendingChanges,
{
    pub async fn handle(&self, state: WorkflowState) -> Result<QuotaDecision, TaskError> {
        let source = state.input.source();
        let me = &state.input.execution_name;
        let quota_wait = state.input.settings.quota_wait_seconds;
        let slots = self.sources.read_slots().await?;
        let mut seen = self.observe(&source, me, &slots).await?;
        let now = kb_autosync_aws::now_ms();
        // A round whose execution holds a slot already started its job: no longer waiting.
        let line: Vec<WaitingRound> = slots
            .line
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| {
                !slots
                    .holders
                    .iter()
                    .any(|h| h.execution_name == e.execution)
            })
            .collect();
        let stale_after = slot_line::stale_after_ms(quota_wait);
        // A round keeps the place it already has: every round compares its own stored place
        // with the others' stored places, so the order is one total order (a place taken from
        // the current oldest pending change alone could put two rounds each behind the other).
        let since = self.waiting_since(&source, now).await?;
        let kept = slot_line::kept_place(&line, &source.key(), since);
        let waiting = WaitingRound::new(source.key(), me, kept, now);
        seen.rounds_ahead = slot_line::rounds_ahead(&line, &waiting, now, stale_after);
        seen.knowledge_base_ahead =
            slot_line::knowledge_base_ahead(&line, &waiting, now, stale_after)
                .map(|sibling| sibling.source_key.clone());
        let front_wait = state.input.settings.monitor_interval_seconds;
        if self.quota.decide_in_line(&seen, quota_wait, front_wait) == QuotaDecision::Proceed {
            self.observe_knowledge_base(&source, &mut seen).await?;
        }
        let decision = self.quota.decide_in_line(&seen, quota_wait, front_wait);
        self.update_line(&line, waiting, &seen, &decision, stale_after)
            .await?;
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

    /// When the data source's oldest pending change was recorded: its place in the line (now,
    /// when none is pending any more).
    async fn waiting_since(&self, source: &SourceId, now_ms: i64) -> Result<i64, TaskError> {
        Ok(self
            .tracking
            .oldest_pending(source)
            .await?
            .and_then(|change| chrono::DateTime::parse_from_rfc3339(&change.timestamp).ok())
            .map_or(now_ms, |at| at.timestamp_millis()))
    }

    /// Stands in the line while waiting (refreshing the entry and why), leaves it on
    /// proceeding, and removes the entries of rounds that stopped checking.
    async fn update_line(
        &self,
        line: &[WaitingRound],
        me: WaitingRound,
        seen: &QuotaObservation,
        decision: &QuotaDecision,
        stale_after_ms: i64,
    ) -> Result<(), TaskError> {
        for stale in line
            .iter()
            .filter(|e| slot_line::is_stale(e, me.seen_ms, stale_after_ms))
        {
            tracing::warn!(source = %stale.source_key, execution = %stale.execution, "removing a stale entry from the line for job slots");
            self.sources.remove_stale_entry(stale).await?;
        }
        match decision {
            QuotaDecision::Wait { reason, .. } => {
                let me = me.waiting(seen.needs_account_slot(), reason);
                self.sources.stand_in_line(&me).await?;
            }
            // A round let through for a job keeps its place until start-sync has taken the slot
            // (and leaves the line then): a younger round checking in between sees it ahead, and
            // does not race it for the slot.
            QuotaDecision::Proceed if seen.needs_account_slot() => {
                let me = me.waiting(true, "let through: starting its job");
                self.sources.stand_in_line(&me).await?;
            }
            QuotaDecision::Proceed => {
                if line.iter().any(|e| e.source_key == me.source_key) {
                    self.sources
                        .leave_line(&me.source_key, &me.execution)
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// What the stack's own records show, without asking Bedrock about every data source: the
    /// job slots of this stack (freeing those of executions that are gone), the jobs started
    /// elsewhere (the census), the last start, and whether the round will go direct.
    async fn observe(
        &self,
        source: &SourceId,
        me: &str,
        slots: &Slots,
    ) -> Result<QuotaObservation, TaskError> {
        let mut seen = QuotaObservation {
            direct_expected: self.direct_expected(source).await?,
            ..Default::default()
        };
        // Job slots held by other executions of this stack; slots of executions that are gone
        // are freed here, so a killed execution never blocks a knowledge base for good.
        for holder in &slots.holders {
            if holder.execution_name == me {
                seen.holds_slot = true;
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
        seen.account_jobs = seen.slots_held + self.foreign_jobs(slots).await?;
        // A stamp in the future is a start in flight (see SourcesTable::acquire_slot): as recent
        // as a start can be.
        seen.since_last_start_ms = slots
            .last_start_ms
            .map(|at| (kb_autosync_aws::now_ms() - at).max(0));
        Ok(seen)
    }

    /// Bedrock's jobs on the data source and on the other data sources of its knowledge base
    /// (ours or started elsewhere): asked only of a round that could start now, so a waiting
    /// line costs no ListIngestionJobs calls.
    async fn observe_knowledge_base(
        &self,
        source: &SourceId,
        seen: &mut QuotaObservation,
    ) -> Result<(), TaskError> {
        seen.data_source_jobs = self.knowledge_base.running_jobs(source).await?;
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
        Ok(())
    }

    /// Jobs running on managed data sources that hold no slot of this stack, from the census
    /// (`kb_autosync_core::foreign_jobs`), taking a new one when it is due and nobody else
    /// claimed it.
    async fn foreign_jobs(&self, slots: &Slots) -> Result<u32, TaskError> {
        let now = kb_autosync_aws::now_ms();
        let last = slots.census.as_ref();
        if !ForeignJobsCensus::is_due(last, now) || !self.sources.claim_census(last, now).await? {
            return Ok(ForeignJobsCensus::count(last));
        }
        let managed: Vec<SourceId> = self
            .sources
            .all_sources()
            .await?
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        let held: Vec<&str> = slots
            .holders
            .iter()
            .map(|h| h.knowledge_base_id.as_str())
            .collect();
        let mut foreign_jobs = 0;
        for source in foreign_jobs::to_list(&managed, &held) {
            foreign_jobs += self.knowledge_base.running_jobs(source).await?.len() as u32;
        }
        let census = ForeignJobsCensus {
            at_ms: now,
            foreign_jobs,
        };
        self.sources.record_census(&census).await?;
        if foreign_jobs > 0 {
            tracing::info!(
                foreign_jobs,
                "jobs started elsewhere run on the stack's data sources"
            );
        }
        Ok(foreign_jobs)
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

#[cfg(test)]
mod in_memory;

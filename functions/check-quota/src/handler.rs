use kb_autosync_aws::executions::Executions;
use kb_autosync_aws::knowledge_base::KnowledgeBase;
use kb_autosync_aws::sources_table::{Slots, SourcesTable};
use kb_autosync_aws::tracking_table::TrackingTable;
use kb_autosync_aws::TaskError;
use kb_autosync_core::direct::{DirectSettings, IngestionMode};
use kb_autosync_core::lease::ExecutionState;
use kb_autosync_core::quota::{IngestionQuota, QuotaDecision, QuotaObservation};
use kb_autosync_core::routing::RouteTable;
use kb_autosync_core::slot_line::{self, WaitingRound};
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
        let front_wait = state.input.settings.monitor_interval_seconds;
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

    /// Jobs running on the data source, its knowledge base and every data source the stack
    /// manages; the job slots of this stack (freeing those of executions that are gone); the
    /// last start.
    async fn observe(
        &self,
        source: &SourceId,
        me: &str,
        slots: &Slots,
    ) -> Result<QuotaObservation, TaskError> {
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

#[cfg(test)]
mod tests {
    //! What check-quota decides from what the account shows (mocked AWS answers, matched by
    //! operation and data source, not by expression wording).

    use std::collections::HashMap;

    use aws_sdk_bedrockagent::operation::list_data_sources::ListDataSourcesOutput;
    use aws_sdk_bedrockagent::types::{DataSourceStatus, DataSourceSummary, IngestionJobStatus};
    use aws_sdk_dynamodb::operation::get_item::GetItemOutput;
    use aws_sdk_dynamodb::operation::query::QueryOutput;
    use aws_sdk_dynamodb::operation::scan::ScanOutput;
    use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
    use aws_sdk_dynamodb::types::AttributeValue;
    use aws_sdk_sfn::operation::describe_execution::{
        DescribeExecutionError, DescribeExecutionOutput,
    };
    use aws_sdk_sfn::types::ExecutionStatus;
    use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
    use aws_smithy_types::DateTime;
    use kb_autosync_aws::test_util::ingestion_jobs;

    use super::*;

    fn state() -> WorkflowState {
        serde_json::from_value(serde_json::json!({
            "knowledge_base_id": "KB", "data_source_id": "DS", "round": 2, "execution_name": "KB-DS-r2", "source_key": "KB#DS",
            "settings": {"monitor_interval_seconds": 1, "quota_wait_seconds": 7, "max_job_attempts": 2, "retry_backoff_seconds": 1}
        }))
        .unwrap()
    }

    /// The data source's jobs: `running` (a console job) and whether one ever COMPLETED.
    fn bedrock(running: bool, synced: bool) -> Vec<Rule> {
        let mut jobs = Vec::new();
        if synced {
            jobs.push(("FIRST", IngestionJobStatus::Complete));
        }
        if running {
            jobs.push(("CONSOLE1", IngestionJobStatus::InProgress));
        }
        let data_sources =
            mock!(aws_sdk_bedrockagent::Client::list_data_sources).then_output(|| {
                let only = DataSourceSummary::builder()
                    .knowledge_base_id("KB")
                    .data_source_id("DS")
                    .name("docs")
                    .status(DataSourceStatus::Available)
                    .updated_at(DateTime::from_secs(0))
                    .build()
                    .unwrap();
                ListDataSourcesOutput::builder()
                    .data_source_summaries(only)
                    .build()
                    .unwrap()
            });
        vec![ingestion_jobs(&jobs), data_sources]
    }

    /// The SLOTS item: `holders` as (knowledge base, execution).
    fn slots(holders: &'static [(&'static str, &'static str)]) -> Rule {
        mock!(aws_sdk_dynamodb::Client::get_item).then_output(move || {
            let holders = holders
                .iter()
                .map(|(kb, execution)| {
                    let holder = HashMap::from([
                        (
                            "execution".to_string(),
                            AttributeValue::S(execution.to_string()),
                        ),
                        (
                            "data_source_id".to_string(),
                            AttributeValue::S("DSX".into()),
                        ),
                        ("since_ms".to_string(), AttributeValue::N("1".into())),
                    ]);
                    (kb.to_string(), AttributeValue::M(holder))
                })
                .collect();
            GetItemOutput::builder()
                .item("holders", AttributeValue::M(holders))
                .build()
        })
    }

    struct Checked {
        decision: QuotaDecision,
        /// Writes that free a job slot.
        freed: Rule,
        /// Writes to the line for job slots.
        in_line: Rule,
    }

    /// `ended`: executions DescribeExecution does not find; every other one is running.
    async fn check(
        mode: &str,
        holders: &'static [(&'static str, &'static str)],
        ended: &'static [&'static str],
        running_console_job: bool,
    ) -> Checked {
        let freed = mock!(aws_sdk_dynamodb::Client::update_item)
            .match_requests(|r| r.update_expression().is_some_and(|e| e.contains("holders")))
            .then_output(|| UpdateItemOutput::builder().build());
        let in_line = mock!(aws_sdk_dynamodb::Client::update_item)
            .match_requests(|r| r.update_expression().is_some_and(|e| e.contains("line")))
            .then_output(|| UpdateItemOutput::builder().build());
        let scan =
            mock!(aws_sdk_dynamodb::Client::scan).then_output(|| ScanOutput::builder().build());
        let pending = mock!(aws_sdk_dynamodb::Client::query)
            .then_output(|| QueryOutput::builder().count(1).build());
        let dynamo = [
            slots(holders),
            freed.clone(),
            in_line.clone(),
            scan,
            pending,
        ];
        let describe = mock!(aws_sdk_sfn::Client::describe_execution)
            .match_requests(move |r| {
                !ended
                    .iter()
                    .any(|e| r.execution_arn().is_some_and(|a| a.ends_with(e)))
            })
            .then_output(|| {
                DescribeExecutionOutput::builder()
                    .execution_arn("arn")
                    .state_machine_arn("arn")
                    .status(ExecutionStatus::Running)
                    .start_date(DateTime::from_secs(0))
                    .build()
                    .unwrap()
            });
        let gone = mock!(aws_sdk_sfn::Client::describe_execution).then_error(|| {
            DescribeExecutionError::ExecutionDoesNotExist(
                aws_sdk_sfn::types::error::ExecutionDoesNotExist::builder()
                    .meta(
                        aws_smithy_types::error::ErrorMetadata::builder()
                            .code("ExecutionDoesNotExist")
                            .build(),
                    )
                    .build(),
            )
        });
        let dynamo = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, &dynamo);
        let handler = CheckQuota {
            knowledge_base: KnowledgeBase::new(mock_client!(
                aws_sdk_bedrockagent,
                RuleMode::MatchAny,
                &bedrock(running_console_job, true)
            )),
            sources: SourcesTable::new(dynamo.clone(), "sources"),
            executions: Executions::new(
                mock_client!(aws_sdk_sfn, RuleMode::MatchAny, &[describe, gone]),
                "arn:aws:states:us-east-1:1:stateMachine:sync",
            ),
            quota: IngestionQuota {
                max_concurrent_jobs_per_account: 2,
                start_min_interval_ms: 0,
            },
            tracking: TrackingTable::new(dynamo, "tracking"),
            routes: RouteTable::from_json(&format!(
                r#"[{{"bucket":"b","knowledge_base_id":"KB","data_source_id":"DS","ingestion_mode":"{mode}"}}]"#
            ))
            .unwrap(),
            direct: DirectSettings::default(),
        };
        Checked {
            decision: handler.handle(state()).await.unwrap(),
            freed,
            in_line,
        }
    }

    fn reason(decision: &QuotaDecision) -> &str {
        match decision {
            QuotaDecision::Wait { reason, .. } => reason,
            QuotaDecision::Proceed => panic!("expected a wait"),
        }
    }

    #[tokio::test]
    async fn a_console_job_on_the_data_source_makes_the_round_wait() {
        let checked = check("job", &[], &[], true).await;
        assert!(
            reason(&checked.decision).contains("CONSOLE1"),
            "{:?}",
            checked.decision
        );
        assert!(matches!(
            checked.decision,
            QuotaDecision::Wait {
                wait_seconds: 7,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn the_slot_of_an_execution_that_is_gone_is_freed_and_the_round_proceeds() {
        let checked = check("job", &[("KB", "KB-DS-r1")], &["KB-DS-r1"], false).await;
        assert_eq!(checked.decision, QuotaDecision::Proceed);
        assert_eq!(checked.freed.num_calls(), 1);
        // Let through for a job, it keeps its place until start-sync has the slot.
        assert_eq!(checked.in_line.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_full_account_holds_a_job_round_but_not_one_that_goes_direct() {
        let holders: &[(&str, &str)] = &[("KB2", "KB2-DS-r1"), ("KB3", "KB3-DS-r4")];
        let job = check("job", holders, &[], false).await;
        assert!(
            reason(&job.decision).contains("account busy"),
            "{:?}",
            job.decision
        );
        assert_eq!(
            job.in_line.num_calls(),
            1,
            "the waiting round stands in line"
        );
        let direct = check("auto", holders, &[], false).await;
        assert_eq!(direct.decision, QuotaDecision::Proceed);
        assert_eq!(direct.freed.num_calls(), 0);
        assert_eq!(
            direct.in_line.num_calls(),
            0,
            "a direct round needs no slot"
        );
    }
}

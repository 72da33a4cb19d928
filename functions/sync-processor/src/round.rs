//! Makes sure a round is running for a data source after its requests were counted: the lease
//! protocol of `kb_autosync_core::lease`, applied against DynamoDB and Step Functions.

use std::time::Duration;

use kb_autosync_aws::executions::{Executions, StartOutcome};
use kb_autosync_aws::sources_table::{HandOver, SourcesTable};
use kb_autosync_aws::AwsError;
use kb_autosync_core::handover::{
    next_iteration, successor, Continuation, ContinueRequest, HandOverPolicy, Next, Reason,
};
use kb_autosync_core::lease::{decide, ExecutionState, LeaseAction, LeaseState};
use kb_autosync_core::workflow::{RoundInput, WorkflowSettings};
use kb_autosync_core::SourceId;

pub struct Rounds {
    pub sources: SourcesTable,
    pub executions: Executions,
    pub settings: WorkflowSettings,
    pub claim_grace_ms: i64,
    pub hand_over: HandOverPolicy,
}

#[derive(Debug, thiserror::Error)]
pub enum RoundError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// The request must come back later (batch item failure).
    #[error("{0}")]
    RetryLater(String),
}

/// How many times a request re-reads a lease that changed under it before giving up for now.
const MAX_STEPS: usize = 6;
/// Pause before re-checking a claim whose execution is not visible yet.
const CLAIM_RECHECK: Duration = Duration::from_millis(300);

impl Rounds {
    /// Counts `requests` for `source` and returns once a running execution is known to cover
    /// them. Returns the execution name.
    pub async fn ensure_running(
        &self,
        source: &SourceId,
        requests: u64,
    ) -> Result<String, RoundError> {
        let mut lease = self.sources.bump_requested(source, requests).await?;
        let mut last_reason = String::new();
        for _ in 0..MAX_STEPS {
            let action = self.next_action(source, &lease).await?;
            let (round, execution_name, holds_lease) = match action {
                LeaseAction::Acknowledge { execution_name } => return Ok(execution_name),
                LeaseAction::RetryLater { reason } => {
                    last_reason = reason;
                    tokio::time::sleep(CLAIM_RECHECK).await;
                    lease = self.sources.read(source).await?.unwrap_or_default();
                    continue;
                }
                LeaseAction::Claim {
                    round,
                    execution_name,
                } => {
                    let claimed = self.claim(source, round, &execution_name).await?;
                    (round, execution_name, claimed)
                }
                LeaseAction::StartClaimed {
                    round,
                    execution_name,
                } => {
                    tracing::warn!(%source, execution = %execution_name, "lease claimed long ago without an execution: starting it");
                    (round, execution_name, true)
                }
                LeaseAction::Reclaim {
                    stale_execution,
                    round,
                    execution_name,
                } => {
                    let reclaimed = self
                        .reclaim(source, &stale_execution, round, &execution_name)
                        .await?;
                    (round, execution_name, reclaimed)
                }
            };
            if !holds_lease {
                // Another request changed the lease first: decide again on what it is now.
                lease = self.sources.read(source).await?.unwrap_or_default();
                continue;
            }
            if let Some(name) = self.start(source, round, &execution_name).await? {
                return Ok(name);
            }
            // The start moved the lease on (a closed execution had the name): decide on it anew.
            lease = self.sources.read(source).await?.unwrap_or_default();
        }
        Err(RoundError::RetryLater(if last_reason.is_empty() {
            format!("the lease of {source} kept changing; retrying the request later")
        } else {
            last_reason
        }))
    }

    /// What to do about `lease`, given the state of the execution holding it: a holder that
    /// ended without releasing the lease must not keep it.
    async fn next_action(
        &self,
        source: &SourceId,
        lease: &LeaseState,
    ) -> Result<LeaseAction, AwsError> {
        let execution = match &lease.active_execution {
            Some(holder) => Some(self.executions.state(holder).await?),
            None => None,
        };
        let action = decide(
            source,
            lease,
            execution.as_ref(),
            kb_autosync_aws::now_ms(),
            self.claim_grace_ms,
        );
        tracing::debug!(%source, ?action, "lease decision");
        Ok(action)
    }

    /// Claims the free lease for `execution_name`; false when another request claimed it first.
    async fn claim(
        &self,
        source: &SourceId,
        round: u64,
        execution_name: &str,
    ) -> Result<bool, AwsError> {
        let claimed = self
            .sources
            .claim(source, round, execution_name, kb_autosync_aws::now_ms())
            .await?;
        if claimed {
            tracing::info!(%source, round, execution = %execution_name, "lease claimed");
            kb_autosync_aws::crash_point!("sync-processor/after-lease-claim");
        }
        Ok(claimed)
    }

    /// Takes the lease from `stale_execution`, which ended without releasing it; false when
    /// another request took it first.
    async fn reclaim(
        &self,
        source: &SourceId,
        stale_execution: &str,
        round: u64,
        execution_name: &str,
    ) -> Result<bool, AwsError> {
        let reclaimed = self
            .sources
            .reclaim(
                source,
                stale_execution,
                round,
                execution_name,
                kb_autosync_aws::now_ms(),
            )
            .await?;
        if reclaimed {
            tracing::warn!(%source, stale = %stale_execution, execution = %execution_name, "lease reclaimed from an execution that ended without releasing it");
        }
        Ok(reclaimed)
    }

    /// The state machine's round must go again: in this execution, or, once its history is
    /// past the hand-over bound, in the execution of the next round, which takes the lease over
    /// (`kb_autosync_core::handover`). Every step is idempotent, so the task can be retried.
    pub async fn continue_round(
        &self,
        request: &ContinueRequest,
    ) -> Result<Continuation, RoundError> {
        let history_events = self
            .executions
            .history_events(&request.execution_arn)
            .await?;
        if self.hand_over.should_hand_over(history_events) {
            self.hand_over(request, history_events).await
        } else {
            self.go_round_again(request, history_events).await
        }
    }

    /// Another iteration in this execution, as long as it still holds the lease: clearing the
    /// snapshots is conditional on that, so a lost lease ends the execution instead.
    async fn go_round_again(
        &self,
        request: &ContinueRequest,
        history_events: u64,
    ) -> Result<Continuation, RoundError> {
        let state = &request.state;
        let source = state.input.source();
        let current = &state.input.execution_name;
        if !self.sources.clear_snapshots(&source, current).await? {
            return Ok(self
                .lease_moved_on(&source, current, history_events)
                .await?);
        }
        let next = match request.reason {
            Reason::RequestsDuringJob => Next::Continue,
            Reason::RequestsDuringFailure => Next::ContinueAfterWait,
        };
        Ok(Continuation {
            next,
            state: Some(next_iteration(state, request.reason)),
            handed_over_to: None,
            history_events,
        })
    }

    /// Moves the lease to the next round's execution, then starts it; this execution ends. The
    /// lease moves first so that the successor never runs without holding it.
    async fn hand_over(
        &self,
        request: &ContinueRequest,
        history_events: u64,
    ) -> Result<Continuation, RoundError> {
        let state = &request.state;
        let source = state.input.source();
        let current = &state.input.execution_name;
        let successor = successor(state, request.reason, self.settings);
        let next_name = successor.input.execution_name.clone();
        let moved = self
            .sources
            .hand_over(
                &source,
                current,
                successor.input.round,
                &next_name,
                kb_autosync_aws::now_ms(),
            )
            .await?;
        if let HandOver::Lost(holder) = moved {
            tracing::warn!(%source, execution = %current, holder = ?holder, "the lease moved on before the hand-over: this execution ends, the holder covers what is pending");
            return Ok(Continuation {
                next: Next::End,
                state: None,
                handed_over_to: holder,
                history_events,
            });
        }
        kb_autosync_aws::crash_point!("sync-processor/after-hand-over-move");
        let input = serde_json::to_value(&successor).expect("workflow state serialises");
        if self.executions.start(&next_name, &input).await? == StartOutcome::NameTaken {
            // Started already: by a retry of this task, or healed by a request that found the
            // lease naming it. Either way it holds the lease now.
            tracing::info!(%source, execution = %next_name, "successor already started");
        }
        kb_autosync_aws::crash_point!("sync-processor/after-hand-over-start");
        tracing::info!(%source, from = %current, to = %next_name, history_events, bound = self.hand_over.after_history_events, "execution handed over to the next round");
        Ok(Continuation {
            next: Next::End,
            state: None,
            handed_over_to: Some(next_name),
            history_events,
        })
    }

    /// This execution lost its lease before going round again: it ends, the holder (or the
    /// next request, when nobody holds it) covers what is pending.
    async fn lease_moved_on(
        &self,
        source: &SourceId,
        execution: &str,
        history_events: u64,
    ) -> Result<Continuation, AwsError> {
        let holder = self
            .sources
            .read(source)
            .await?
            .and_then(|l| l.active_execution);
        tracing::warn!(%source, %execution, holder = ?holder, "the lease moved on: this execution ends, the holder covers what is pending");
        Ok(Continuation {
            next: Next::End,
            state: None,
            handed_over_to: holder,
            history_events,
        })
    }

    /// Starts the round's execution. `None` when the lease moved on meanwhile (re-read it).
    async fn start(
        &self,
        source: &SourceId,
        round: u64,
        execution_name: &str,
    ) -> Result<Option<String>, RoundError> {
        let input = RoundInput::new(source, round, execution_name.to_string(), self.settings);
        let input = serde_json::to_value(&input).expect("round input serialises");
        match self.executions.start(execution_name, &input).await? {
            StartOutcome::Started => {
                tracing::info!(%source, round, execution = %execution_name, "execution started");
                kb_autosync_aws::crash_point!("sync-processor/after-start-execution");
                Ok(Some(execution_name.to_string()))
            }
            StartOutcome::NameTaken => match self.executions.state(execution_name).await? {
                ExecutionState::Running => Ok(Some(execution_name.to_string())),
                state => {
                    tracing::warn!(%source, execution = %execution_name, ?state, "execution name already used by a closed execution: moving to the next round");
                    self.reclaim_closed(source, round, execution_name).await
                }
            },
        }
    }

    /// The lease names `closed`, whose name is used by a closed execution: take the next round.
    async fn reclaim_closed(
        &self,
        source: &SourceId,
        closed_round: u64,
        closed: &str,
    ) -> Result<Option<String>, RoundError> {
        let round = closed_round + 1;
        let name = kb_autosync_core::lease::execution_name(source, round);
        if self
            .sources
            .reclaim(source, closed, round, &name, kb_autosync_aws::now_ms())
            .await?
        {
            let input = RoundInput::new(source, round, name.clone(), self.settings);
            let input = serde_json::to_value(&input).expect("round input serialises");
            if self.executions.start(&name, &input).await? == StartOutcome::Started {
                return Ok(Some(name));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
    use aws_sdk_dynamodb::types::AttributeValue;
    use aws_sdk_sfn::operation::describe_execution::{
        DescribeExecutionError, DescribeExecutionOutput,
    };
    use aws_sdk_sfn::operation::start_execution::StartExecutionOutput;
    use aws_sdk_sfn::types::ExecutionStatus;
    use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
    use aws_smithy_types::error::ErrorMetadata;
    use aws_smithy_types::DateTime;
    use kb_autosync_aws::test_util::update_condition_failed;

    use super::*;

    const SM: &str = "arn:aws:states:us-east-1:123456789012:stateMachine:kb-sync";

    fn settings() -> WorkflowSettings {
        WorkflowSettings {
            monitor_interval_seconds: 1,
            quota_wait_seconds: 1,
            max_job_attempts: 2,
            retry_backoff_seconds: 1,
        }
    }

    fn lease(
        requested: u64,
        holder: Option<&str>,
        round: u64,
        claimed_at_ms: i64,
    ) -> HashMap<String, AttributeValue> {
        let mut item = HashMap::from([
            ("source_id".to_string(), AttributeValue::S("KB#DS".into())),
            (
                "requested_seq".to_string(),
                AttributeValue::N(requested.to_string()),
            ),
            ("round".to_string(), AttributeValue::N(round.to_string())),
        ]);
        if let Some(holder) = holder {
            item.insert("active_execution".into(), AttributeValue::S(holder.into()));
            item.insert(
                "claimed_at_ms".into(),
                AttributeValue::N(claimed_at_ms.to_string()),
            );
        }
        item
    }

    fn bump_returning(item: HashMap<String, AttributeValue>) -> Rule {
        mock!(aws_sdk_dynamodb::Client::update_item)
            .match_requests(|r| {
                r.update_expression()
                    .is_some_and(|e| e.starts_with("ADD requested_seq"))
            })
            .then_output(move || {
                UpdateItemOutput::builder()
                    .set_attributes(Some(item.clone()))
                    .build()
            })
    }

    fn take_lease(condition: &'static str, succeeds: bool) -> Rule {
        let rule = mock!(aws_sdk_dynamodb::Client::update_item)
            .match_requests(move |r| r.condition_expression() == Some(condition));
        if succeeds {
            rule.then_output(|| UpdateItemOutput::builder().build())
        } else {
            rule.then_error(update_condition_failed)
        }
    }

    fn start_execution(name: &'static str) -> Rule {
        mock!(aws_sdk_sfn::Client::start_execution)
            .match_requests(move |r| {
                r.name() == Some(name)
                    && r.input().is_some_and(|i| {
                        i.contains("\"source_key\":\"KB#DS\"")
                            && i.contains(&format!("\"execution_name\":\"{name}\""))
                    })
            })
            .then_output(|| {
                StartExecutionOutput::builder()
                    .execution_arn("arn")
                    .start_date(DateTime::from_secs(0))
                    .build()
                    .unwrap()
            })
    }

    fn describe(status: Option<ExecutionStatus>) -> Rule {
        let rule = mock!(aws_sdk_sfn::Client::describe_execution).match_requests(|_| true);
        match status {
            Some(status) => rule.then_output(move || {
                DescribeExecutionOutput::builder()
                    .execution_arn("arn")
                    .state_machine_arn(SM)
                    .status(status.clone())
                    .start_date(DateTime::from_secs(0))
                    .build()
                    .unwrap()
            }),
            None => rule.then_error(|| {
                DescribeExecutionError::ExecutionDoesNotExist(
                    aws_sdk_sfn::types::error::ExecutionDoesNotExist::builder()
                        .meta(
                            ErrorMetadata::builder()
                                .code("ExecutionDoesNotExist")
                                .build(),
                        )
                        .build(),
                )
            }),
        }
    }

    /// The lease as a re-read finds it.
    fn reread(item: HashMap<String, AttributeValue>) -> Rule {
        mock!(aws_sdk_dynamodb::Client::get_item).then_output(move || {
            aws_sdk_dynamodb::operation::get_item::GetItemOutput::builder()
                .set_item(Some(item.clone()))
                .build()
        })
    }

    fn rounds(dynamo: &[&Rule], sfn: &[&Rule]) -> Rounds {
        Rounds {
            sources: SourcesTable::new(
                mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, dynamo),
                "sources",
            ),
            executions: Executions::new(mock_client!(aws_sdk_sfn, RuleMode::MatchAny, sfn), SM),
            settings: settings(),
            claim_grace_ms: 60_000,
            hand_over: HandOverPolicy {
                after_history_events: 100,
            },
        }
    }

    fn source() -> SourceId {
        SourceId::new("KB", "DS")
    }

    #[tokio::test]
    async fn a_free_lease_is_claimed_and_the_round_started() {
        let bump = bump_returning(lease(3, None, 4, 0));
        let claim = take_lease("attribute_not_exists(active_execution)", true);
        let start = start_execution("KB-DS-r5");
        let rounds = rounds(&[&bump, &claim], &[&start]);
        assert_eq!(
            rounds.ensure_running(&source(), 3).await.unwrap(),
            "KB-DS-r5"
        );
        assert_eq!(
            (bump.num_calls(), claim.num_calls(), start.num_calls()),
            (1, 1, 1)
        );
    }

    #[tokio::test]
    async fn a_running_holder_covers_the_request_without_a_new_execution() {
        let bump = bump_returning(lease(9, Some("KB-DS-r2"), 2, now()));
        let running = describe(Some(ExecutionStatus::Running));
        let start = start_execution("KB-DS-r3");
        let rounds = rounds(&[&bump], &[&running, &start]);
        assert_eq!(
            rounds.ensure_running(&source(), 1).await.unwrap(),
            "KB-DS-r2"
        );
        assert_eq!(start.num_calls(), 0, "no second execution while one runs");
    }

    #[tokio::test]
    async fn a_holder_that_ended_without_releasing_is_reclaimed() {
        let bump = bump_returning(lease(9, Some("KB-DS-r2"), 2, 0));
        let aborted = describe(Some(ExecutionStatus::Aborted));
        let reclaim = take_lease("active_execution = :stale", true);
        let start = start_execution("KB-DS-r3");
        let rounds = rounds(&[&bump, &reclaim], &[&aborted, &start]);
        assert_eq!(
            rounds.ensure_running(&source(), 1).await.unwrap(),
            "KB-DS-r3"
        );
        assert_eq!((reclaim.num_calls(), start.num_calls()), (1, 1));
    }

    // Paused time: the rechecks' sleeps pass at once (the claim's age is wall-clock time).
    #[tokio::test(start_paused = true)]
    async fn a_fresh_claim_without_execution_sends_the_request_back() {
        let bump = bump_returning(lease(9, Some("KB-DS-r2"), 2, now()));
        let reread = reread(lease(9, Some("KB-DS-r2"), 2, now()));
        let missing = describe(None);
        let start = start_execution("KB-DS-r2");
        let rounds = rounds(&[&bump, &reread], &[&missing, &start]);
        let err = rounds.ensure_running(&source(), 1).await.unwrap_err();
        assert!(
            matches!(err, RoundError::RetryLater(ref r) if r.contains("has not started yet")),
            "{err}"
        );
        assert_eq!(start.num_calls(), 0);
    }

    #[tokio::test]
    async fn an_old_claim_without_execution_is_healed_by_starting_the_named_execution() {
        let bump = bump_returning(lease(9, Some("KB-DS-r2"), 2, now() - 120_000));
        let missing = describe(None);
        let start = start_execution("KB-DS-r2");
        let rounds = rounds(&[&bump], &[&missing, &start]);
        assert_eq!(
            rounds.ensure_running(&source(), 1).await.unwrap(),
            "KB-DS-r2"
        );
        assert_eq!(start.num_calls(), 1);
    }

    #[tokio::test]
    async fn losing_the_claim_race_acknowledges_the_winner() {
        let bump = bump_returning(lease(3, None, 4, 0));
        let claim = take_lease("attribute_not_exists(active_execution)", false);
        let reread = reread(lease(4, Some("KB-DS-r5"), 5, now()));
        let running = describe(Some(ExecutionStatus::Running));
        let start = start_execution("KB-DS-r5");
        let rounds = rounds(&[&bump, &claim, &reread], &[&running, &start]);
        assert_eq!(
            rounds.ensure_running(&source(), 1).await.unwrap(),
            "KB-DS-r5"
        );
        assert_eq!(
            start.num_calls(),
            0,
            "the winner starts the execution, not us"
        );
    }

    fn history(events: i64) -> Rule {
        mock!(aws_sdk_sfn::Client::get_execution_history)
            .match_requests(|r| {
                r.execution_arn() == Some("arn:exec:KB-DS-r7") && r.reverse_order() == Some(true)
            })
            .then_output(move || {
                // As moto answers: the whole history, oldest first.
                let events = (1..=events)
                    .map(|id| {
                        aws_sdk_sfn::types::HistoryEvent::builder()
                            .id(id)
                            .r#type(aws_sdk_sfn::types::HistoryEventType::PassStateEntered)
                            .timestamp(DateTime::from_secs(0))
                            .build()
                            .unwrap()
                    })
                    .collect();
                aws_sdk_sfn::operation::get_execution_history::GetExecutionHistoryOutput::builder()
                    .set_events(Some(events))
                    .build()
                    .unwrap()
            })
    }

    fn continue_request(reason: &str) -> ContinueRequest {
        serde_json::from_value(serde_json::json!({
            "reason": reason, "execution_arn": "arn:exec:KB-DS-r7",
            "state": {
                "knowledge_base_id": "KB", "data_source_id": "DS", "round": 7, "execution_name": "KB-DS-r7", "source_key": "KB#DS",
                "settings": {"monitor_interval_seconds": 1, "quota_wait_seconds": 1, "max_job_attempts": 2, "retry_backoff_seconds": 1},
                "job": {"job_id": "J", "attempt": 1, "client_token": "t", "target_seq": 40, "target_seq_text": "40", "cutoff_seq": 33, "started_at": "x", "skipped": false},
                "previous_target": "12", "previous_cutoff": 10
            }
        }))
        .unwrap()
    }

    fn successor_start() -> Rule {
        mock!(aws_sdk_sfn::Client::start_execution)
            .match_requests(|r| {
                r.name() == Some("KB-DS-r8")
                    && r.input().is_some_and(|i| {
                        let doc: serde_json::Value = serde_json::from_str(i).unwrap();
                        doc["round"] == 8
                            && doc["execution_name"] == "KB-DS-r8"
                            && doc["previous_target"] == "40"
                            && doc["previous_cutoff"] == 33
                            && doc.get("job").is_none()
                    })
            })
            .then_output(|| {
                StartExecutionOutput::builder()
                    .execution_arn("arn")
                    .start_date(DateTime::from_secs(0))
                    .build()
                    .unwrap()
            })
    }

    #[tokio::test]
    async fn a_short_history_goes_round_again_in_the_same_execution() {
        let events = history(99);
        let start = successor_start();
        let move_lease = take_lease("active_execution = :stale", true);
        let clear = mock!(aws_sdk_dynamodb::Client::update_item)
            .match_requests(|r| {
                r.update_expression() == Some("SET snapshots = :empty")
                    && r.condition_expression() == Some("active_execution = :me")
                    && r.expression_attribute_values().unwrap().get(":me")
                        == Some(&AttributeValue::S("KB-DS-r7".into()))
            })
            .then_output(|| UpdateItemOutput::builder().build());
        let rounds = rounds(&[&move_lease, &clear], &[&events, &start]);
        let c = rounds
            .continue_round(&continue_request("requests_during_job"))
            .await
            .unwrap();
        assert_eq!((c.next, c.history_events), (Next::Continue, 99));
        let next = c.state.unwrap();
        assert_eq!(next.input.execution_name, "KB-DS-r7");
        assert_eq!(next.previous_cutoff, Some(33));
        assert_eq!((move_lease.num_calls(), start.num_calls()), (0, 0));

        let c = rounds
            .continue_round(&continue_request("requests_during_failure"))
            .await
            .unwrap();
        assert_eq!(c.next, Next::ContinueAfterWait);
        assert_eq!(c.state.unwrap().previous_cutoff, Some(10));
        assert_eq!(
            clear.num_calls(),
            2,
            "each iteration forgets the last one's snapshots"
        );
    }

    #[tokio::test]
    async fn an_execution_that_lost_its_lease_does_not_go_round_again() {
        let events = history(10);
        let clear = take_lease("active_execution = :me", false);
        let reread = reread(lease(41, Some("KB-DS-r8"), 8, now()));
        let rounds = rounds(&[&clear, &reread], &[&events]);
        let c = rounds
            .continue_round(&continue_request("requests_during_job"))
            .await
            .unwrap();
        assert_eq!(
            (c.next, c.handed_over_to.as_deref()),
            (Next::End, Some("KB-DS-r8"))
        );
        assert!(c.state.is_none());
    }

    #[tokio::test]
    async fn a_long_history_hands_the_lease_to_the_next_round() {
        let events = history(100);
        let move_lease = mock!(aws_sdk_dynamodb::Client::update_item)
            .match_requests(|r| {
                let values = r.expression_attribute_values().unwrap();
                r.condition_expression() == Some("active_execution = :stale")
                    && values.get(":stale") == Some(&AttributeValue::S("KB-DS-r7".into()))
                    && values.get(":exec") == Some(&AttributeValue::S("KB-DS-r8".into()))
                    && values.get(":round") == Some(&AttributeValue::N("8".into()))
            })
            .then_output(|| UpdateItemOutput::builder().build());
        let start = successor_start();
        let rounds = rounds(&[&move_lease], &[&events, &start]);
        let c = rounds
            .continue_round(&continue_request("requests_during_job"))
            .await
            .unwrap();
        assert_eq!(c.next, Next::End);
        assert_eq!(c.handed_over_to.as_deref(), Some("KB-DS-r8"));
        assert!(c.state.is_none());
        assert_eq!((move_lease.num_calls(), start.num_calls()), (1, 1));
    }

    #[tokio::test]
    async fn a_retried_hand_over_finds_the_lease_moved_and_starts_the_successor_once() {
        let events = history(250);
        let moved_already = take_lease("active_execution = :stale", false);
        let reread = reread(lease(41, Some("KB-DS-r8"), 8, now()));
        let already_started = mock!(aws_sdk_sfn::Client::start_execution)
            .match_requests(|r| r.name() == Some("KB-DS-r8"))
            .then_error(|| {
                aws_sdk_sfn::operation::start_execution::StartExecutionError::ExecutionAlreadyExists(
                    aws_sdk_sfn::types::error::ExecutionAlreadyExists::builder()
                        .meta(
                            ErrorMetadata::builder()
                                .code("ExecutionAlreadyExists")
                                .build(),
                        )
                        .build(),
                )
            });
        let rounds = rounds(&[&moved_already, &reread], &[&events, &already_started]);
        let c = rounds
            .continue_round(&continue_request("requests_during_job"))
            .await
            .unwrap();
        assert_eq!(
            (c.next, c.handed_over_to.as_deref()),
            (Next::End, Some("KB-DS-r8"))
        );
        assert_eq!(already_started.num_calls(), 1);
    }

    #[tokio::test]
    async fn a_lease_lost_before_the_hand_over_ends_the_execution_without_a_successor() {
        let events = history(250);
        let lost = take_lease("active_execution = :stale", false);
        let reread = reread(lease(41, Some("KB-DS-r9"), 9, now()));
        let start = successor_start();
        let rounds = rounds(&[&lost, &reread], &[&events, &start]);
        let c = rounds
            .continue_round(&continue_request("requests_during_job"))
            .await
            .unwrap();
        assert_eq!(
            (c.next, c.handed_over_to.as_deref()),
            (Next::End, Some("KB-DS-r9"))
        );
        assert_eq!(start.num_calls(), 0);
    }

    pub(super) fn now() -> i64 {
        kb_autosync_aws::now_ms()
    }
}

//! Makes sure a round is running for a data source after its requests were counted: the lease
//! protocol of `kb_autosync_core::lease`, applied against DynamoDB and Step Functions.

use std::time::Duration;

use kb_autosync_aws::executions::{Executions, StartOutcome};
use kb_autosync_aws::sources_table::{HandOver, SourcesTable};
use kb_autosync_aws::stores::{RoundExecutions, SourcesStore};
use kb_autosync_aws::AwsError;
use kb_autosync_core::handover::{
    next_iteration, successor, Continuation, ContinueRequest, HandOverPolicy, Next, Reason,
};
use kb_autosync_core::lease::{decide, ExecutionState, LeaseAction, LeaseState};
use kb_autosync_core::workflow::{RoundInput, WorkflowSettings};
use kb_autosync_core::SourceId;

/// The lease protocol's rounds. Generic over the stores (`kb_autosync_aws::stores`) so that it
/// is unit-tested on in-memory ones; deployed with the AWS adapters (the defaults).
pub struct Rounds<S = SourcesTable, E = Executions> {
    pub sources: S,
    pub executions: E,
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

impl<S: SourcesStore, E: RoundExecutions> Rounds<S, E> {
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
mod tests;

//! Makes sure a round is running for a data source after its requests were counted: the lease
//! protocol of `kb_autosync_core::lease`, applied against DynamoDB and Step Functions.

use std::time::Duration;

use kb_autosync_aws::executions::{Executions, StartOutcome};
use kb_autosync_aws::sources_table::SourcesTable;
use kb_autosync_aws::AwsError;
use kb_autosync_core::lease::{decide, ExecutionState, LeaseAction};
use kb_autosync_core::workflow::{RoundInput, WorkflowSettings};
use kb_autosync_core::SourceId;

pub struct Rounds {
    pub sources: SourcesTable,
    pub executions: Executions,
    pub settings: WorkflowSettings,
    pub claim_grace_ms: i64,
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
            let execution = match &lease.active_execution {
                Some(holder) => Some(self.executions.state(holder).await?),
                None => None,
            };
            let action = decide(
                source,
                &lease,
                execution.as_ref(),
                kb_autosync_aws::now_ms(),
                self.claim_grace_ms,
            );
            tracing::debug!(%source, ?action, "lease decision");
            match action {
                LeaseAction::Acknowledge { execution_name } => return Ok(execution_name),
                LeaseAction::Claim {
                    round,
                    execution_name,
                } => {
                    if self
                        .sources
                        .claim(source, round, &execution_name, kb_autosync_aws::now_ms())
                        .await?
                    {
                        tracing::info!(%source, round, execution = %execution_name, "lease claimed");
                        kb_autosync_aws::crash_point!("sync-processor/after-lease-claim");
                        if let Some(name) = self.start(source, round, &execution_name).await? {
                            return Ok(name);
                        }
                        continue;
                    }
                }
                LeaseAction::StartClaimed {
                    round,
                    execution_name,
                } => {
                    tracing::warn!(%source, execution = %execution_name, "lease claimed long ago without an execution: starting it");
                    if let Some(name) = self.start(source, round, &execution_name).await? {
                        return Ok(name);
                    }
                    continue;
                }
                LeaseAction::Reclaim {
                    stale_execution,
                    round,
                    execution_name,
                } => {
                    if self
                        .sources
                        .reclaim(
                            source,
                            &stale_execution,
                            round,
                            &execution_name,
                            kb_autosync_aws::now_ms(),
                        )
                        .await?
                    {
                        tracing::warn!(%source, stale = %stale_execution, execution = %execution_name, "lease reclaimed from an execution that ended without releasing it");
                        if let Some(name) = self.start(source, round, &execution_name).await? {
                            return Ok(name);
                        }
                        continue;
                    }
                }
                LeaseAction::RetryLater { reason } => {
                    last_reason = reason;
                    tokio::time::sleep(CLAIM_RECHECK).await;
                }
            }
            lease = self.sources.read(source).await?.unwrap_or_default();
        }
        Err(RoundError::RetryLater(if last_reason.is_empty() {
            format!("the lease of {source} kept changing; retrying the request later")
        } else {
            last_reason
        }))
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

    use aws_sdk_dynamodb::operation::update_item::{UpdateItemError, UpdateItemOutput};
    use aws_sdk_dynamodb::types::AttributeValue;
    use aws_sdk_sfn::operation::describe_execution::{
        DescribeExecutionError, DescribeExecutionOutput,
    };
    use aws_sdk_sfn::operation::start_execution::StartExecutionOutput;
    use aws_sdk_sfn::types::ExecutionStatus;
    use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
    use aws_smithy_types::error::ErrorMetadata;
    use aws_smithy_types::DateTime;

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
            rule.then_error(|| {
                UpdateItemError::ConditionalCheckFailedException(
                    aws_sdk_dynamodb::types::error::ConditionalCheckFailedException::builder()
                        .meta(
                            ErrorMetadata::builder()
                                .code("ConditionalCheckFailedException")
                                .build(),
                        )
                        .build(),
                )
            })
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

    fn rounds(dynamo: &[&Rule], sfn: &[&Rule]) -> Rounds {
        Rounds {
            sources: SourcesTable::new(
                mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, dynamo),
                "sources",
            ),
            executions: Executions::new(mock_client!(aws_sdk_sfn, RuleMode::MatchAny, sfn), SM),
            settings: settings(),
            claim_grace_ms: 60_000,
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

    #[tokio::test]
    async fn a_fresh_claim_without_execution_sends_the_request_back() {
        let bump = bump_returning(lease(9, Some("KB-DS-r2"), 2, now()));
        let reread = mock!(aws_sdk_dynamodb::Client::get_item).then_output(|| {
            aws_sdk_dynamodb::operation::get_item::GetItemOutput::builder()
                .set_item(Some(lease(9, Some("KB-DS-r2"), 2, now())))
                .build()
        });
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
        let reread = mock!(aws_sdk_dynamodb::Client::get_item).then_output(|| {
            aws_sdk_dynamodb::operation::get_item::GetItemOutput::builder()
                .set_item(Some(lease(4, Some("KB-DS-r5"), 5, now())))
                .build()
        });
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

    pub(super) fn now() -> i64 {
        kb_autosync_aws::now_ms()
    }
}

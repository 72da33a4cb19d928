use std::collections::BTreeMap;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use kb_autosync_aws::executions::Executions;
use kb_autosync_aws::metrics::Metrics;
use kb_autosync_aws::sources_table::SourcesTable;
use kb_autosync_aws::tracking_table::TrackingTable;
use kb_autosync_aws::TaskError;
use kb_autosync_core::handover::{Continuation, ContinueRequest};
use kb_autosync_core::sync_request::SyncRequest;
use kb_autosync_core::SourceId;

use crate::round::{RoundError, Rounds};

pub struct SyncProcessor {
    pub rounds: Rounds,
    pub sources: SourcesTable,
    pub executions: Executions,
    pub tracking: TrackingTable,
    pub metrics: Metrics,
}

impl SyncProcessor {
    /// Two callers: the sync queue's event source mapping (an SQS batch) and the state machine's
    /// ContinueRound / RetryRound tasks (a `ContinueRequest`).
    pub async fn dispatch(
        &self,
        payload: serde_json::Value,
    ) -> Result<serde_json::Value, TaskError> {
        if payload.get("Records").is_some() {
            let event: SqsEvent = serde_json::from_value(payload).map_err(|e| {
                TaskError::invalid_input(format!("not an SQS batch of sync requests: {e}"))
            })?;
            return Ok(serde_json::to_value(self.handle(event).await).unwrap_or_default());
        }
        let request: ContinueRequest = serde_json::from_value(payload).map_err(|e| {
            TaskError::invalid_input(format!(
                "neither an SQS batch (Records) nor a round continuation (reason, execution_arn, state): {e}"
            ))
        })?;
        let continuation = self.continue_round(&request).await?;
        Ok(serde_json::to_value(continuation).unwrap_or_default())
    }

    async fn continue_round(&self, request: &ContinueRequest) -> Result<Continuation, TaskError> {
        self.rounds
            .continue_round(request)
            .await
            .map_err(|e| match e {
                RoundError::Aws(e) => e.into(),
                RoundError::RetryLater(message) => TaskError::new(
                    kb_autosync_core::error_class::ErrorClass::Transient,
                    message,
                ),
            })
    }

    /// Groups the batch by data source so k requests cost one counter bump and one lease check.
    /// A message is acknowledged only once a running execution covers it.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut failures: Vec<String> = Vec::new();
        let mut by_source: BTreeMap<SourceId, Vec<String>> = BTreeMap::new();
        let mut sweeps: Vec<String> = Vec::new();
        for (index, message) in event.records.into_iter().enumerate() {
            let id = message
                .message_id
                .filter(|id| !id.is_empty())
                .unwrap_or_else(|| format!("missing-message-id-{index}"));
            match SyncRequest::parse(message.body.as_deref().unwrap_or_default()) {
                Ok(SyncRequest::Sweep) => sweeps.push(id),
                Ok(request) => {
                    if let Some(source) = request.source() {
                        by_source.entry(source).or_default().push(id);
                    }
                }
                Err(e) => {
                    tracing::error!(message_id = %id, error = %e, "malformed sync request: leaving it for the dead-letter queue");
                    failures.push(id);
                }
            }
        }
        for (source, ids) in by_source {
            match self.rounds.ensure_running(&source, ids.len() as u64).await {
                Ok(execution) => {
                    tracing::info!(%source, requests = ids.len(), %execution, "sync requests covered by a running execution")
                }
                Err(e) => {
                    tracing::warn!(%source, requests = ids.len(), error = %e, "sync requests not covered yet: they will be retried");
                    failures.extend(ids);
                }
            }
        }
        if !sweeps.is_empty() {
            if let Err(e) = self.sweep().await {
                tracing::error!(error = %e, "anti-entropy sweep failed: it will be retried");
                failures.extend(sweeps);
            }
        }
        kb_autosync_aws::batch_failures(failures)
    }
}

//! The anti-entropy sweep: a `{"kind":"sweep"}` request (every 5 minutes, from the scheduler)
//! makes sure every data source with a PENDING change has a running execution, and frees the
//! lease of an execution that ended without releasing it.

use kb_autosync_aws::metrics::OLDEST_PENDING_AGE;
use kb_autosync_core::change::age_seconds;
use kb_autosync_core::SourceId;

use crate::handler::SyncProcessor;

/// Why a sweep did not get through; the sweep request is retried (batch item failure).
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("anti-entropy sweep could not list the data sources: {0}")]
    Listing(String),
    #[error("anti-entropy sweep failed for {}", describe(.0))]
    Sources(Vec<(SourceId, String)>),
}

fn describe(failures: &[(SourceId, String)]) -> String {
    failures
        .iter()
        .map(|(source, error)| format!("{source}: {error}"))
        .collect::<Vec<_>>()
        .join("; ")
}

impl SyncProcessor {
    /// Anti-entropy: every data source with a PENDING change and no running execution gets a
    /// round. The backstop for executions stopped by hand and requests that reached the DLQ.
    pub(crate) async fn sweep(&self) -> Result<(), SweepError> {
        let sources = self
            .sources
            .all_sources()
            .await
            .map_err(|e| SweepError::Listing(e.to_string()))?;
        let mut errors = Vec::new();
        for (source, lease) in sources {
            let oldest = match self.tracking.oldest_pending(&source).await {
                Ok(oldest) => oldest,
                Err(e) => {
                    errors.push((source, e.to_string()));
                    continue;
                }
            };
            let age = oldest
                .as_ref()
                .map(|c| age_seconds(c, chrono::Utc::now()))
                .unwrap_or(0.0);
            self.metrics
                .emit(OLDEST_PENDING_AGE, age, "Seconds", &source);
            if oldest.is_none() {
                if let Some(execution) = &lease.active_execution {
                    if let Err(e) = self.release_if_ended(&source, execution).await {
                        errors.push((source.clone(), e));
                    }
                }
                continue;
            }
            match self.rounds.ensure_running(&source, 1).await {
                Ok(execution) => {
                    tracing::info!(%source, %execution, oldest_pending_age_seconds = age, "sweep: pending changes are covered by a running execution")
                }
                Err(e) => errors.push((source, e.to_string())),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(SweepError::Sources(errors))
        }
    }

    /// Nothing is pending, yet the lease names an execution: if that execution has ended (it was
    /// stopped after marking its changes, before ReleaseLease), no request will ever come to
    /// reclaim it, so the sweep releases it. (Found by fault scenario seed 43.)
    async fn release_if_ended(&self, source: &SourceId, execution: &str) -> Result<(), String> {
        let state = self
            .executions
            .state(execution)
            .await
            .map_err(|e| e.to_string())?;
        if let kb_autosync_core::lease::ExecutionState::Ended(status) = state {
            if self
                .sources
                .release_ended(source, execution)
                .await
                .map_err(|e| e.to_string())?
            {
                tracing::warn!(%source, %execution, %status, "sweep: released the lease of an execution that ended without releasing it");
            }
        }
        Ok(())
    }
}

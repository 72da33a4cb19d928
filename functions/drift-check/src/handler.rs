//! One drift check of every routed data source. A data source that cannot be checked does not
//! stop the others; the invocation then fails naming each, so the function's error metric (and
//! the schedule's retry) see it.

use kb_autosync_aws::knowledge_base::KnowledgeBase;
use kb_autosync_aws::metrics::{Metrics, DRIFTED_DOCUMENTS};
use kb_autosync_aws::notifier::Notifier;
use kb_autosync_aws::objects::ObjectStore;
use kb_autosync_aws::reconciler::{Reconciler, SourceReconcile};
use kb_autosync_aws::scope_listing::list_data_source;
use kb_autosync_core::notification::{DataSourceDrift, DriftNotification, DRIFT_EXAMPLES};
use kb_autosync_core::SourceId;
use serde::Serialize;

pub struct DriftCheck {
    pub sources: Vec<SourceId>,
    pub knowledge_base: KnowledgeBase,
    pub objects: ObjectStore,
    pub reconciler: Reconciler,
    pub notifier: Notifier,
    pub metrics: Metrics,
}

/// What one invocation found, per data source (the function's result).
#[derive(Debug, Serialize)]
pub struct DriftCheckReport {
    pub data_sources: Vec<DataSourceDrift>,
    /// Whether a notification went out (something was repaired).
    pub notified: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum DriftCheckError {
    #[error("drift check failed for {}", .0.join("; "))]
    Sources(Vec<String>),
    #[error("drift check: sending the notification failed: {0}")]
    Notify(kb_autosync_aws::AwsError),
}

impl DriftCheck {
    pub async fn handle(&self) -> Result<DriftCheckReport, DriftCheckError> {
        let mut checked = Vec::new();
        let mut failures = Vec::new();
        for source in &self.sources {
            match self.check(source).await {
                Ok(done) => {
                    self.metrics
                        .count(DRIFTED_DOCUMENTS, done.drifted() as u64, source);
                    tracing::info!(%source, drifted = done.drifted(), in_flight = done.in_flight, recorded = done.recorded.recorded, "drift check");
                    checked.push(summary(&done));
                }
                Err(error) => {
                    tracing::error!(%source, %error, "drift check of the data source failed");
                    failures.push(format!("{source}: {error}"));
                }
            }
        }
        let repaired: Vec<DataSourceDrift> = checked
            .iter()
            .filter(|d| d.recorded_changes > 0)
            .cloned()
            .collect();
        let notified = !repaired.is_empty();
        if notified {
            let notification = DriftNotification::new(kb_autosync_aws::now_rfc3339(), repaired);
            let body = serde_json::to_value(&notification).unwrap_or_default();
            self.notifier
                .publish(&notification.subject(), &body)
                .await
                .map_err(DriftCheckError::Notify)?;
        }
        if !failures.is_empty() {
            return Err(DriftCheckError::Sources(failures));
        }
        Ok(DriftCheckReport {
            data_sources: checked.into_iter().filter(|d| d.total() > 0).collect(),
            notified,
        })
    }

    async fn check(&self, source: &SourceId) -> Result<SourceReconcile, String> {
        let listing = list_data_source(&self.knowledge_base, &self.objects, source)
            .await
            .map_err(|e| e.to_string())?;
        self.reconciler
            .reconcile(source, &listing)
            .await
            .map_err(|e| format!("recording the repair: {e}"))
    }
}

fn summary(done: &SourceReconcile) -> DataSourceDrift {
    let d = &done.drift;
    let failed: Vec<String> = d.failed.iter().map(|f| f.key.clone()).collect();
    let examples = [
        ("missing", &d.missing),
        ("stale", &d.stale),
        ("orphaned", &d.orphaned),
        ("failed", &failed),
    ]
    .into_iter()
    .filter(|(_, keys)| !keys.is_empty())
    .map(|(category, keys)| {
        let first = keys.iter().take(DRIFT_EXAMPLES).cloned().collect();
        (category.to_string(), first)
    })
    .collect();
    DataSourceDrift {
        knowledge_base_id: done.knowledge_base_id.clone(),
        data_source_id: done.data_source_id.clone(),
        missing: d.missing.len(),
        stale: d.stale.len(),
        orphaned: d.orphaned.len(),
        failed: d.failed.len(),
        in_flight: done.in_flight,
        recorded_changes: done.recorded.recorded,
        examples,
    }
}

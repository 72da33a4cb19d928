//! CloudWatch metrics in Embedded Metric Format: one JSON line on stdout per data point, turned
//! into metrics by CloudWatch Logs. No API call, no extra permission, no latency.

use kb_autosync_core::SourceId;

pub const CHANGES_RECORDED: &str = "ChangesRecorded";
pub const JOBS_STARTED: &str = "IngestionJobsStarted";
pub const JOBS_FAILED: &str = "IngestionJobsFailed";
pub const JOBS_COMPLETED: &str = "IngestionJobsCompleted";
pub const OLDEST_PENDING_AGE: &str = "OldestPendingChangeAgeSeconds";
pub const DIRECT_BATCHES: &str = "DirectIngestionBatches";
/// Documents whose index disagreed with S3 at a scheduled drift check (failed ones included).
pub const DRIFTED_DOCUMENTS: &str = "DriftedDocuments";

/// The dimension naming the stack that emitted a data point: the alarms and the dashboard
/// filter on it, so two stacks in one account (or one namespace) never count each other's
/// routes.
pub const STACK_DIMENSION: &str = "StackName";

#[derive(Clone, Debug)]
pub struct Metrics {
    namespace: String,
    stack: String,
}

impl Metrics {
    pub fn new(namespace: impl Into<String>, stack: impl Into<String>) -> Self {
        Self {
            namespace: namespace.into(),
            stack: stack.into(),
        }
    }

    pub fn line(&self, name: &str, value: f64, unit: &str, source: &SourceId) -> String {
        serde_json::json!({
            "_aws": {
                "Timestamp": crate::now_ms(),
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [[STACK_DIMENSION, "KnowledgeBaseId", "DataSourceId"]],
                    "Metrics": [{"Name": name, "Unit": unit}]
                }]
            },
            STACK_DIMENSION: self.stack,
            "KnowledgeBaseId": source.knowledge_base_id,
            "DataSourceId": source.data_source_id,
            name: value
        })
        .to_string()
    }

    pub fn emit(&self, name: &str, value: f64, unit: &str, source: &SourceId) {
        println!("{}", self.line(name, value, unit, source));
    }

    pub fn count(&self, name: &str, value: u64, source: &SourceId) {
        self.emit(name, value as f64, "Count", source);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_line_declares_the_metric_and_its_dimensions() {
        let line = Metrics::new("KbAutoSync", "docs-sync").line(
            OLDEST_PENDING_AGE,
            12.5,
            "Seconds",
            &SourceId::new("KB", "DS"),
        );
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "KbAutoSync");
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"],
            OLDEST_PENDING_AGE
        );
        assert_eq!(v[OLDEST_PENDING_AGE], 12.5);
        assert_eq!(v["DataSourceId"], "DS");
        assert_eq!(v["StackName"], "docs-sync");
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            serde_json::json!([["StackName", "KnowledgeBaseId", "DataSourceId"]])
        );
    }
}

//! Counts of API calls per operation and of errors per type, for the inspection endpoint: tests of
//! the service under test assert on them (e.g. "it never hit a ConflictException", "it polled at
//! most N times").

use std::collections::BTreeMap;

use serde::Serialize;

/// The SDK operations the emulator serves, named as in the SDK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    GetKnowledgeBase,
    ListDataSources,
    GetDataSource,
    StartIngestionJob,
    GetIngestionJob,
    ListIngestionJobs,
    StopIngestionJob,
    GetKnowledgeBaseDocuments,
    ListKnowledgeBaseDocuments,
    IngestKnowledgeBaseDocuments,
    DeleteKnowledgeBaseDocuments,
}

impl Operation {
    pub fn name(self) -> &'static str {
        match self {
            Self::GetKnowledgeBase => "GetKnowledgeBase",
            Self::ListDataSources => "ListDataSources",
            Self::GetDataSource => "GetDataSource",
            Self::StartIngestionJob => "StartIngestionJob",
            Self::GetIngestionJob => "GetIngestionJob",
            Self::ListIngestionJobs => "ListIngestionJobs",
            Self::StopIngestionJob => "StopIngestionJob",
            Self::GetKnowledgeBaseDocuments => "GetKnowledgeBaseDocuments",
            Self::ListKnowledgeBaseDocuments => "ListKnowledgeBaseDocuments",
            Self::IngestKnowledgeBaseDocuments => "IngestKnowledgeBaseDocuments",
            Self::DeleteKnowledgeBaseDocuments => "DeleteKnowledgeBaseDocuments",
        }
    }

    /// Get/List operations share Bedrock's read quota (each its own bucket).
    pub fn is_read(self) -> bool {
        matches!(
            self,
            Self::GetKnowledgeBase
                | Self::ListDataSources
                | Self::GetDataSource
                | Self::GetIngestionJob
                | Self::ListIngestionJobs
                | Self::GetKnowledgeBaseDocuments
                | Self::ListKnowledgeBaseDocuments
        )
    }
}

/// Name used for requests that matched no operation.
pub const UNKNOWN_OPERATION: &str = "Unknown";

#[derive(Debug, Clone, Default, Serialize)]
pub struct ApiCounters {
    /// Every call, successful or not, by operation name.
    pub calls: BTreeMap<String, u64>,
    /// Every error returned, by error type (e.g. "ConflictException").
    pub errors: BTreeMap<String, u64>,
    /// Errors by operation name, then error type.
    pub errors_by_operation: BTreeMap<String, BTreeMap<String, u64>>,
}

impl ApiCounters {
    pub fn record(&mut self, operation: &str, error_type: Option<&str>) {
        *self.calls.entry(operation.to_string()).or_default() += 1;
        if let Some(error_type) = error_type {
            *self.errors.entry(error_type.to_string()).or_default() += 1;
            *self
                .errors_by_operation
                .entry(operation.to_string())
                .or_default()
                .entry(error_type.to_string())
                .or_default() += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_and_errors_are_counted_separately() {
        let mut counters = ApiCounters::default();
        counters.record("StartIngestionJob", None);
        counters.record("StartIngestionJob", Some("ConflictException"));
        assert_eq!(counters.calls["StartIngestionJob"], 2);
        assert_eq!(counters.errors["ConflictException"], 1);
        assert_eq!(
            counters.errors_by_operation["StartIngestionJob"]["ConflictException"],
            1
        );
    }
}

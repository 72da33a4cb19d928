//! Counts of API calls per operation and of errors per type, for the inspection endpoint: tests of
//! the service under test assert on them (e.g. "it never hit a ConflictException", "it polled at
//! most N times").

use std::collections::BTreeMap;

use serde::Serialize;

/// The SDK operations the emulator serves, named as in the SDK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    ListKnowledgeBases,
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
            Self::ListKnowledgeBases => "ListKnowledgeBases",
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

    /// Get/List operations of the catalog and of jobs share Bedrock's read quota (each its own
    /// bucket).
    pub fn is_read(self) -> bool {
        matches!(
            self,
            Self::ListKnowledgeBases
                | Self::GetKnowledgeBase
                | Self::ListDataSources
                | Self::GetDataSource
                | Self::GetIngestionJob
                | Self::ListIngestionJobs
        )
    }

    /// The document API, rate limited apart from the rest (each operation its own bucket).
    pub fn is_document_operation(self) -> bool {
        self.is_document_write()
            || matches!(
                self,
                Self::GetKnowledgeBaseDocuments | Self::ListKnowledgeBaseDocuments
            )
    }

    /// The document operations that change the index.
    pub fn is_document_write(self) -> bool {
        matches!(
            self,
            Self::IngestKnowledgeBaseDocuments | Self::DeleteKnowledgeBaseDocuments
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

/// Document API calls on one data source, for one operation: what tests of the service assert on
/// ("N direct calls", "none refused because a job ran").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DocumentCallCounters {
    /// Every call naming this data source, whatever its outcome.
    pub calls: u64,
    pub succeeded: u64,
    /// Successful calls that were a retry with a known clientToken (answered, nothing started).
    pub replayed: u64,
    /// Documents in the successful calls (replays included).
    pub documents: u64,
    /// Failed calls by error type (ConflictException: a write while an ingestion job ran).
    pub errors: BTreeMap<String, u64>,
}

impl DocumentCallCounters {
    pub fn record(&mut self, outcome: Result<usize, &str>) {
        self.calls += 1;
        match outcome {
            Ok(documents) => {
                self.succeeded += 1;
                self.documents += documents as u64;
            }
            Err(error_type) => *self.errors.entry(error_type.to_string()).or_default() += 1,
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

    #[test]
    fn document_calls_count_documents_of_successful_calls_only() {
        let mut counters = DocumentCallCounters::default();
        counters.record(Ok(3));
        counters.record(Err("ConflictException"));
        assert_eq!(
            (counters.calls, counters.succeeded, counters.documents),
            (2, 1, 3)
        );
        assert_eq!(counters.errors["ConflictException"], 1);
    }

    #[test]
    fn document_operations_are_not_in_the_read_quota() {
        assert!(!Operation::GetKnowledgeBaseDocuments.is_read());
        assert!(Operation::GetKnowledgeBaseDocuments.is_document_operation());
        assert!(Operation::DeleteKnowledgeBaseDocuments.is_document_write());
        assert!(!Operation::GetIngestionJob.is_document_operation());
    }
}

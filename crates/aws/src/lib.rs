//! AWS adapters of kb-autosync: one small module per table or service. Handlers build them once
//! per cold start from [`clients::AwsClients`] and [`config::ServiceConfig`] and inject them.

pub mod clients;
pub mod config;
pub mod crash_point;
pub mod documents;
pub mod error;
pub mod executions;
pub mod item_size;
pub mod knowledge_base;
pub mod logging;
pub mod metadata_table;
pub mod metrics;
pub mod notifier;
pub mod objects;
pub mod reconciler;
pub mod route_resolution;
pub mod scope_listing;
pub mod serve;
pub mod sources_table;
pub mod stores;
pub mod sync_queue;
pub mod task_error;
#[cfg(any(test, feature = "test-util"))]
pub mod test_util;
pub mod tracking_table;

pub use error::AwsError;
pub use task_error::TaskError;

/// The SQS partial batch response naming the messages to retry (ReportBatchItemFailures).
pub fn batch_failures(
    message_ids: impl IntoIterator<Item = String>,
) -> aws_lambda_events::sqs::SqsBatchResponse {
    let mut response = aws_lambda_events::sqs::SqsBatchResponse::default();
    response.batch_item_failures = message_ids
        .into_iter()
        .map(|id| {
            let mut failure = aws_lambda_events::sqs::BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

/// Milliseconds since the Unix epoch, the unit of every timestamp stored as a number.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// RFC 3339 with milliseconds, the unit of every timestamp stored as a string.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

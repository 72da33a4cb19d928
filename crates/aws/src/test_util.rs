//! Builders for the unit tests of the functions (feature `test-util`): what DynamoDB answers
//! through `aws-smithy-mocks` when a conditional write's condition does not hold, and what
//! Bedrock lists as a data source's ingestion jobs.

use aws_sdk_bedrockagent::operation::list_ingestion_jobs::ListIngestionJobsOutput;
use aws_sdk_bedrockagent::types::{IngestionJobStatus, IngestionJobSummary};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::error::ConditionalCheckFailedException;
use aws_smithy_mocks::{mock, Rule};
use aws_smithy_types::error::ErrorMetadata;
use aws_smithy_types::DateTime;

use crate::error::CONDITION_FAILED;

/// The ConditionalCheckFailedException of a conditional write, with its error code.
pub fn condition_failed() -> ConditionalCheckFailedException {
    ConditionalCheckFailedException::builder()
        .meta(ErrorMetadata::builder().code(CONDITION_FAILED).build())
        .build()
}

/// An UpdateItem whose condition did not hold.
pub fn update_condition_failed() -> UpdateItemError {
    UpdateItemError::ConditionalCheckFailedException(condition_failed())
}

/// A PutItem whose condition did not hold.
pub fn put_condition_failed() -> PutItemError {
    PutItemError::ConditionalCheckFailedException(condition_failed())
}

/// ListIngestionJobs of a data source whose jobs are `jobs` (id, status): a request filtered on
/// statuses finds the jobs with one of them, as the `COMPLETE` (ever synced?) and running
/// filters of [`crate::knowledge_base::KnowledgeBase`] do; an unfiltered one finds them all.
pub fn ingestion_jobs(jobs: &[(&str, IngestionJobStatus)]) -> Rule {
    let jobs: Vec<(String, IngestionJobStatus)> = jobs
        .iter()
        .map(|(id, status)| (id.to_string(), status.clone()))
        .collect();
    mock!(aws_sdk_bedrockagent::Client::list_ingestion_jobs).then_compute_output(move |r| {
        let wanted: Vec<&str> = r
            .filters()
            .iter()
            .flat_map(|f| f.values())
            .map(String::as_str)
            .collect();
        let summaries = jobs
            .iter()
            .filter(|(_, status)| wanted.is_empty() || wanted.contains(&status.as_str()))
            .map(|(id, status)| {
                IngestionJobSummary::builder()
                    .knowledge_base_id(r.knowledge_base_id().unwrap_or_default())
                    .data_source_id(r.data_source_id().unwrap_or_default())
                    .ingestion_job_id(id)
                    .status(status.clone())
                    .started_at(DateTime::from_secs(0))
                    .updated_at(DateTime::from_secs(0))
                    .build()
                    .expect("every required field is set")
            })
            .collect();
        ListIngestionJobsOutput::builder()
            .set_ingestion_job_summaries(Some(summaries))
            .build()
            .expect("every required field is set")
    })
}

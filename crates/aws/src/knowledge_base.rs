//! Bedrock Agent knowledge base API: data sources, ingestion jobs, document status.

use aws_sdk_bedrockagent::operation::list_knowledge_base_documents::ListKnowledgeBaseDocumentsOutput;
use aws_sdk_bedrockagent::types::{
    ContentDataSourceType, DocumentIdentifier, IngestionJobFilter, IngestionJobFilterAttribute,
    IngestionJobFilterOperator, IngestionJobStatistics, S3Location,
};
use kb_autosync_core::error_class::{classify, ErrorClass};
use kb_autosync_core::resolution::DataSourceScope;
use kb_autosync_core::SourceId;
use std::time::Duration;

use crate::AwsError;

/// Attempts at one page of ListKnowledgeBaseDocuments while Bedrock throttles it.
const LIST_THROTTLED_ATTEMPTS: u32 = 10;
const LIST_FIRST_BACKOFF: Duration = Duration::from_millis(200);
const LIST_MAX_BACKOFF: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub struct KnowledgeBase {
    pub(crate) client: aws_sdk_bedrockagent::Client,
}

/// An ingestion job as the service needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobView {
    pub job_id: String,
    pub status: String,
    /// Statistics with Bedrock's own field names.
    pub statistics: serde_json::Value,
    pub failure_reasons: Vec<String>,
    pub started_at: String,
    pub updated_at: String,
}

/// Why a StartIngestionJob failed, already classified for the state machine.
#[derive(Debug, thiserror::Error)]
#[error("StartIngestionJob on {data_source}: {error}")]
pub struct StartJobError {
    pub class: ErrorClass,
    pub data_source: SourceId,
    pub error: AwsError,
}

/// Per-document ingestion status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentState {
    pub uri: String,
    pub status: String,
    pub reason: Option<String>,
    /// When Bedrock last updated the document.
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
}

pub fn statistics_json(stats: Option<&IngestionJobStatistics>) -> serde_json::Value {
    match stats {
        None => serde_json::json!({}),
        Some(s) => serde_json::json!({
            "numberOfDocumentsScanned": s.number_of_documents_scanned,
            "numberOfMetadataDocumentsScanned": s.number_of_metadata_documents_scanned,
            "numberOfNewDocumentsIndexed": s.number_of_new_documents_indexed,
            "numberOfModifiedDocumentsIndexed": s.number_of_modified_documents_indexed,
            "numberOfMetadataDocumentsModified": s.number_of_metadata_documents_modified,
            "numberOfDocumentsDeleted": s.number_of_documents_deleted,
            "numberOfDocumentsFailed": s.number_of_documents_failed,
            "numberOfDocumentsSkipped": s.number_of_documents_skipped,
        }),
    }
}

fn rfc3339(t: &aws_smithy_types::DateTime) -> String {
    chrono::DateTime::from_timestamp_millis(t.to_millis().unwrap_or(0))
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl KnowledgeBase {
    pub fn new(client: aws_sdk_bedrockagent::Client) -> Self {
        Self { client }
    }

    /// Every data source of the knowledge base with its S3 scope.
    pub async fn data_source_scopes(
        &self,
        knowledge_base_id: &str,
    ) -> Result<Vec<DataSourceScope>, AwsError> {
        let ids = self.data_source_ids(knowledge_base_id).await?;
        let mut scopes = Vec::with_capacity(ids.len());
        for id in ids {
            let out = self
                .client
                .get_data_source()
                .knowledge_base_id(knowledge_base_id)
                .data_source_id(&id)
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("GetDataSource", e))?;
            let Some(ds) = out.data_source else { continue };
            let s3 = ds
                .data_source_configuration
                .as_ref()
                .and_then(|c| c.s3_configuration.as_ref());
            scopes.push(DataSourceScope {
                data_source_id: ds.data_source_id.clone(),
                name: ds.name.clone(),
                bucket_arn: s3.map(|s| s.bucket_arn.clone()),
                inclusion_prefixes: s3
                    .and_then(|s| s.inclusion_prefixes.clone())
                    .unwrap_or_default(),
            });
        }
        Ok(scopes)
    }

    /// Every knowledge base of the account (in the client's region).
    pub async fn knowledge_base_ids(&self) -> Result<Vec<String>, AwsError> {
        let summaries = self
            .client
            .list_knowledge_bases()
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| AwsError::from_sdk("ListKnowledgeBases", e))?;
        Ok(summaries.into_iter().map(|s| s.knowledge_base_id).collect())
    }

    pub async fn data_source_ids(&self, knowledge_base_id: &str) -> Result<Vec<String>, AwsError> {
        let summaries = self
            .client
            .list_data_sources()
            .knowledge_base_id(knowledge_base_id)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| AwsError::from_sdk("ListDataSources", e))?;
        Ok(summaries.into_iter().map(|s| s.data_source_id).collect())
    }

    /// Whether an ingestion job of the data source ever COMPLETED (AWS requires one before
    /// documents of an S3 data source can be ingested directly).
    pub async fn has_completed_job(&self, source: &SourceId) -> Result<bool, AwsError> {
        let filter = IngestionJobFilter::builder()
            .attribute(IngestionJobFilterAttribute::Status)
            .operator(IngestionJobFilterOperator::Eq)
            .values("COMPLETE")
            .build()
            .map_err(|e| AwsError::new("ListIngestionJobs", "InvalidFilter", e.to_string()))?;
        let out = self
            .client
            .list_ingestion_jobs()
            .knowledge_base_id(&source.knowledge_base_id)
            .data_source_id(&source.data_source_id)
            .filters(filter)
            .max_results(1)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("ListIngestionJobs", e))?;
        Ok(!out.ingestion_job_summaries.is_empty())
    }

    /// Jobs of the data source that are STARTING, IN_PROGRESS or STOPPING, started by anyone.
    pub async fn running_jobs(&self, source: &SourceId) -> Result<Vec<String>, AwsError> {
        let mut jobs = Vec::new();
        for status in ["STARTING", "IN_PROGRESS", "STOPPING"] {
            let filter = IngestionJobFilter::builder()
                .attribute(IngestionJobFilterAttribute::Status)
                .operator(IngestionJobFilterOperator::Eq)
                .values(status)
                .build()
                .map_err(|e| AwsError::new("ListIngestionJobs", "InvalidFilter", e.to_string()))?;
            let summaries = self
                .client
                .list_ingestion_jobs()
                .knowledge_base_id(&source.knowledge_base_id)
                .data_source_id(&source.data_source_id)
                .filters(filter)
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| AwsError::from_sdk("ListIngestionJobs", e))?;
            jobs.extend(summaries.into_iter().map(|j| j.ingestion_job_id));
        }
        Ok(jobs)
    }

    pub async fn start_job(
        &self,
        source: &SourceId,
        client_token: &str,
        description: &str,
    ) -> Result<JobView, StartJobError> {
        let out = self
            .client
            .start_ingestion_job()
            .knowledge_base_id(&source.knowledge_base_id)
            .data_source_id(&source.data_source_id)
            .client_token(client_token)
            .description(description)
            // No SDK retries: a retry is a start Bedrock rate-limits, made outside the job slot's
            // start interval. A throttled start fails the task; the state machine retries it
            // through the slot.
            .customize()
            .config_override(
                aws_sdk_bedrockagent::config::Builder::default()
                    .retry_config(aws_smithy_types::retry::RetryConfig::disabled()),
            )
            .send()
            .await
            .map_err(|e| {
                let error = AwsError::from_sdk("StartIngestionJob", e);
                StartJobError {
                    class: classify(Some(&error.code), Some(&error.message)),
                    data_source: source.clone(),
                    error,
                }
            })?;
        out.ingestion_job.map(view).ok_or_else(|| StartJobError {
            class: ErrorClass::Transient,
            data_source: source.clone(),
            error: AwsError::new(
                "StartIngestionJob",
                "EmptyResponse",
                "response has no ingestionJob",
            ),
        })
    }

    pub async fn get_job(&self, source: &SourceId, job_id: &str) -> Result<JobView, AwsError> {
        let out = self
            .client
            .get_ingestion_job()
            .knowledge_base_id(&source.knowledge_base_id)
            .data_source_id(&source.data_source_id)
            .ingestion_job_id(job_id)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("GetIngestionJob", e))?;
        out.ingestion_job.map(view).ok_or_else(|| {
            AwsError::new(
                "GetIngestionJob",
                "EmptyResponse",
                format!("no ingestionJob for {job_id}"),
            )
        })
    }

    /// Status of the documents at `uris` (s3://bucket/key), ten per call as the API allows.
    pub async fn document_states(
        &self,
        source: &SourceId,
        uris: &[String],
    ) -> Result<Vec<DocumentState>, AwsError> {
        let mut states = Vec::with_capacity(uris.len());
        for chunk in uris.chunks(10) {
            let identifiers = chunk
                .iter()
                .map(|uri| {
                    let location = S3Location::builder().uri(uri).build().map_err(|e| {
                        AwsError::new("GetKnowledgeBaseDocuments", "InvalidUri", e.to_string())
                    })?;
                    DocumentIdentifier::builder()
                        .data_source_type(ContentDataSourceType::S3)
                        .s3(location)
                        .build()
                        .map_err(|e| {
                            AwsError::new(
                                "GetKnowledgeBaseDocuments",
                                "InvalidIdentifier",
                                e.to_string(),
                            )
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let out = self
                .client
                .get_knowledge_base_documents()
                .knowledge_base_id(&source.knowledge_base_id)
                .data_source_id(&source.data_source_id)
                .set_document_identifiers(Some(identifiers))
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("GetKnowledgeBaseDocuments", e))?;
            states.extend(
                out.document_details
                    .unwrap_or_default()
                    .into_iter()
                    .map(document_state),
            );
        }
        Ok(states)
    }

    /// Every document of the data source with its status, 1000 per ListKnowledgeBaseDocuments
    /// page: fewer calls than GetKnowledgeBaseDocuments (10 per call) when a job covered many
    /// changes of a data source that is not much larger.
    pub async fn all_document_states(
        &self,
        source: &SourceId,
    ) -> Result<Vec<DocumentState>, AwsError> {
        let mut states = Vec::new();
        let mut next_token: Option<String> = None;
        loop {
            let page = self.document_page(source, next_token.take()).await?;
            states.extend(page.document_details.into_iter().map(document_state));
            match page.next_token {
                Some(token) if !token.is_empty() => next_token = Some(token),
                _ => return Ok(states),
            }
        }
    }

    /// One page of ListKnowledgeBaseDocuments. Bedrock throttles document reads at a few per
    /// second, and a scope of 100,000 documents is 100 pages: a throttled page is asked again
    /// after a backoff (the SDK's own retries give up after three attempts and share a retry
    /// budget that 100 pages exhaust), up to [`LIST_THROTTLED_ATTEMPTS`] times.
    async fn document_page(
        &self,
        source: &SourceId,
        next_token: Option<String>,
    ) -> Result<ListKnowledgeBaseDocumentsOutput, AwsError> {
        let mut backoff = LIST_FIRST_BACKOFF;
        for attempt in 1.. {
            let result = self
                .client
                .list_knowledge_base_documents()
                .knowledge_base_id(&source.knowledge_base_id)
                .data_source_id(&source.data_source_id)
                .max_results(1000)
                .set_next_token(next_token.clone())
                .send()
                .await
                .map_err(|e| AwsError::from_sdk("ListKnowledgeBaseDocuments", e));
            match result {
                Err(err)
                    if classify(Some(&err.code), None) == ErrorClass::Throttled
                        && attempt < LIST_THROTTLED_ATTEMPTS =>
                {
                    tracing::debug!(%source, attempt, "ListKnowledgeBaseDocuments throttled: backing off");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(LIST_MAX_BACKOFF);
                }
                other => return other,
            }
        }
        unreachable!("the loop returns on its last attempt")
    }
}

fn document_state(
    detail: aws_sdk_bedrockagent::types::KnowledgeBaseDocumentDetail,
) -> DocumentState {
    DocumentState {
        uri: detail
            .identifier
            .as_ref()
            .and_then(|i| i.s3.as_ref())
            .map(|s| s.uri.clone())
            .unwrap_or_default(),
        status: detail.status.as_str().to_string(),
        reason: detail
            .status_reason
            .map(kb_autosync_core::job::bounded_reason),
        updated_at: detail
            .updated_at
            .as_ref()
            .and_then(|t| chrono::DateTime::from_timestamp_millis(t.to_millis().ok()?)),
    }
}

fn view(job: aws_sdk_bedrockagent::types::IngestionJob) -> JobView {
    JobView {
        statistics: statistics_json(job.statistics.as_ref()),
        status: job.status.as_str().to_string(),
        failure_reasons: kb_autosync_core::job::bounded_failure_reasons(
            job.failure_reasons.unwrap_or_default(),
        ),
        started_at: rfc3339(&job.started_at),
        updated_at: rfc3339(&job.updated_at),
        job_id: job.ingestion_job_id,
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_bedrockagent::operation::list_knowledge_base_documents::ListKnowledgeBaseDocumentsError;
    use aws_sdk_bedrockagent::types::error::ThrottlingException;
    use aws_sdk_bedrockagent::types::{DocumentStatus, KnowledgeBaseDocumentDetail};
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use aws_smithy_types::error::ErrorMetadata;

    use super::*;

    fn page(key: &str, next: Option<&str>) -> ListKnowledgeBaseDocumentsOutput {
        let identifier = DocumentIdentifier::builder()
            .data_source_type(ContentDataSourceType::S3)
            .s3(S3Location::builder()
                .uri(format!("s3://b/{key}"))
                .build()
                .unwrap())
            .build()
            .unwrap();
        ListKnowledgeBaseDocumentsOutput::builder()
            .document_details(
                KnowledgeBaseDocumentDetail::builder()
                    .knowledge_base_id("KB")
                    .data_source_id("DS")
                    .status(DocumentStatus::Indexed)
                    .identifier(identifier)
                    .build()
                    .unwrap(),
            )
            .set_next_token(next.map(str::to_string))
            .build()
            .unwrap()
    }

    fn throttled() -> ListKnowledgeBaseDocumentsError {
        ListKnowledgeBaseDocumentsError::ThrottlingException(
            ThrottlingException::builder()
                .message("Rate exceeded")
                .meta(ErrorMetadata::builder().code("ThrottlingException").build())
                .build(),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_page_is_asked_again_and_the_listing_goes_on_from_it() {
        let first = mock!(aws_sdk_bedrockagent::Client::list_knowledge_base_documents)
            .match_requests(|r| r.next_token().is_none())
            .sequence()
            .error(throttled)
            .times(3)
            .output(|| page("a.txt", Some("t1")))
            .build();
        let second = mock!(aws_sdk_bedrockagent::Client::list_knowledge_base_documents)
            .match_requests(|r| r.next_token() == Some("t1"))
            .sequence()
            .error(throttled)
            .output(|| page("b.txt", None))
            .build();
        let client = mock_client!(
            aws_sdk_bedrockagent,
            RuleMode::MatchAny,
            &[first.clone(), second.clone()],
            |c| c.retry_config(aws_smithy_types::retry::RetryConfig::disabled())
        );
        let states = KnowledgeBase::new(client)
            .all_document_states(&SourceId::new("KB", "DS"))
            .await
            .unwrap();
        let uris: Vec<&str> = states.iter().map(|s| s.uri.as_str()).collect();
        assert_eq!(uris, vec!["s3://b/a.txt", "s3://b/b.txt"]);
        assert_eq!((first.num_calls(), second.num_calls()), (4, 2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_page_throttled_past_the_bound_is_an_error_naming_the_throttling() {
        let always = mock!(aws_sdk_bedrockagent::Client::list_knowledge_base_documents)
            .then_error(throttled);
        let client = mock_client!(
            aws_sdk_bedrockagent,
            RuleMode::MatchAny,
            std::slice::from_ref(&always),
            |c| c.retry_config(aws_smithy_types::retry::RetryConfig::disabled())
        );
        let err = KnowledgeBase::new(client)
            .all_document_states(&SourceId::new("KB", "DS"))
            .await
            .unwrap_err();
        assert_eq!(err.code, "ThrottlingException");
        assert_eq!(always.num_calls(), LIST_THROTTLED_ATTEMPTS as usize);
    }
}

//! StartIngestionJob, GetIngestionJob, ListIngestionJobs, StopIngestionJob handlers.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::request::{json_body, path_params, respond};
use super::wire::{
    IngestionJobFilterBody, IngestionJobSortByBody, IngestionJobWire, ListIngestionJobsBody,
    StartIngestionJobBody,
};
use crate::counters::Operation;
use crate::emulator::{Emulator, JobSortAttribute, ListJobsQuery, StartJobRequest};
use crate::errors::ApiError;
use crate::jobs::JobStatus;

pub async fn start_ingestion_job(
    State(emulator): State<Emulator>,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Bytes,
) -> Response {
    let result = async {
        let (knowledge_base_id, data_source_id) = path_params(path)?;
        let body: StartIngestionJobBody = json_body(&body)?;
        let request = StartJobRequest {
            client_token: body.client_token,
            description: body.description,
        };
        let job = emulator
            .start_ingestion_job(&knowledge_base_id, &data_source_id, request)
            .await?;
        Ok(json!({ "ingestionJob": IngestionJobWire::job(&job) }))
    }
    .await;
    respond(
        &emulator,
        Operation::StartIngestionJob,
        StatusCode::ACCEPTED,
        result,
    )
}

pub async fn get_ingestion_job(
    State(emulator): State<Emulator>,
    path: Result<Path<(String, String, String)>, PathRejection>,
) -> Response {
    let result =
        path_params(path).and_then(|(knowledge_base_id, data_source_id, ingestion_job_id)| {
            let job = emulator.get_ingestion_job(
                &knowledge_base_id,
                &data_source_id,
                &ingestion_job_id,
            )?;
            Ok(json!({ "ingestionJob": IngestionJobWire::job(&job) }))
        });
    respond(
        &emulator,
        Operation::GetIngestionJob,
        StatusCode::OK,
        result,
    )
}

pub async fn list_ingestion_jobs(
    State(emulator): State<Emulator>,
    path: Result<Path<(String, String)>, PathRejection>,
    body: Bytes,
) -> Response {
    let result = path_params(path).and_then(|(knowledge_base_id, data_source_id)| {
        let body: ListIngestionJobsBody = json_body(&body)?;
        let query = list_query(body)?;
        let (jobs, next_token) =
            emulator.list_ingestion_jobs(&knowledge_base_id, &data_source_id, query)?;
        let summaries: Vec<IngestionJobWire> = jobs.iter().map(IngestionJobWire::summary).collect();
        Ok(json!({ "ingestionJobSummaries": summaries, "nextToken": next_token }))
    });
    respond(
        &emulator,
        Operation::ListIngestionJobs,
        StatusCode::OK,
        result,
    )
}

pub async fn stop_ingestion_job(
    State(emulator): State<Emulator>,
    path: Result<Path<(String, String, String)>, PathRejection>,
) -> Response {
    let result =
        path_params(path).and_then(|(knowledge_base_id, data_source_id, ingestion_job_id)| {
            let job = emulator.stop_ingestion_job(
                &knowledge_base_id,
                &data_source_id,
                &ingestion_job_id,
            )?;
            Ok(json!({ "ingestionJob": IngestionJobWire::job(&job) }))
        });
    respond(
        &emulator,
        Operation::StopIngestionJob,
        StatusCode::ACCEPTED,
        result,
    )
}

/// Bedrock accepts exactly one filter attribute (STATUS) with one operator (EQ); a job matches when
/// its status is any of the values.
fn list_query(body: ListIngestionJobsBody) -> Result<ListJobsQuery, ApiError> {
    let mut query = ListJobsQuery {
        max_results: body.max_results,
        next_token: body.next_token,
        ..ListJobsQuery::default()
    };
    if let Some(filters) = body.filters {
        if filters.len() != 1 {
            return Err(ApiError::Validation(format!(
                "filters must contain exactly 1 filter, got {}",
                filters.len()
            )));
        }
        query.statuses = Some(status_filter(&filters[0])?);
    }
    if let Some(sort_by) = body.sort_by {
        (query.sort_attribute, query.descending) = sort_order(&sort_by)?;
    }
    Ok(query)
}

fn status_filter(filter: &IngestionJobFilterBody) -> Result<Vec<JobStatus>, ApiError> {
    if filter.attribute != "STATUS" {
        return Err(ApiError::Validation(format!(
            "Value '{}' at 'filters.1.member.attribute' failed to satisfy constraint: Member must satisfy enum value set: [STATUS]",
            filter.attribute
        )));
    }
    if filter.operator != "EQ" {
        return Err(ApiError::Validation(format!(
            "Value '{}' at 'filters.1.member.operator' failed to satisfy constraint: Member must satisfy enum value set: [EQ]",
            filter.operator
        )));
    }
    if filter.values.is_empty() {
        return Err(ApiError::Validation(
            "filters.1.member.values must not be empty".to_string(),
        ));
    }
    filter
        .values
        .iter()
        .map(|value| {
            JobStatus::parse(value).ok_or_else(|| {
                ApiError::Validation(format!(
                    "Invalid status filter value '{value}'. Valid values: {}",
                    JobStatus::ALL.map(JobStatus::as_str).join(", ")
                ))
            })
        })
        .collect()
}

fn sort_order(sort_by: &IngestionJobSortByBody) -> Result<(JobSortAttribute, bool), ApiError> {
    let attribute = match sort_by.attribute.as_str() {
        "STARTED_AT" => JobSortAttribute::StartedAt,
        "STATUS" => JobSortAttribute::Status,
        other => {
            return Err(ApiError::Validation(format!(
                "Value '{other}' at 'sortBy.attribute' failed to satisfy constraint: Member must satisfy enum value set: [STATUS, STARTED_AT]"
            )))
        }
    };
    let descending = match sort_by.order.as_str() {
        "ASCENDING" => false,
        "DESCENDING" => true,
        other => {
            return Err(ApiError::Validation(format!(
                "Value '{other}' at 'sortBy.order' failed to satisfy constraint: Member must satisfy enum value set: [ASCENDING, DESCENDING]"
            )))
        }
    };
    Ok((attribute, descending))
}

//! ListKnowledgeBases, GetKnowledgeBase, ListDataSources, GetDataSource handlers.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::request::{json_body, path_params, respond};
use super::wire::{
    DataSourceSummaryWire, DataSourceWire, KnowledgeBaseSummaryWire, KnowledgeBaseWire, PageBody,
};
use crate::counters::Operation;
use crate::emulator::Emulator;

pub async fn list_knowledge_bases(State(emulator): State<Emulator>, body: Bytes) -> Response {
    let result = json_body::<PageBody>(&body).and_then(|page| {
        let (knowledge_bases, next_token) =
            emulator.list_knowledge_bases(page.max_results, page.next_token.as_deref())?;
        let summaries: Vec<KnowledgeBaseSummaryWire> = knowledge_bases
            .iter()
            .map(KnowledgeBaseSummaryWire::new)
            .collect();
        Ok(json!({ "knowledgeBaseSummaries": summaries, "nextToken": next_token }))
    });
    respond(
        &emulator,
        Operation::ListKnowledgeBases,
        StatusCode::OK,
        result,
    )
}

pub async fn get_knowledge_base(
    State(emulator): State<Emulator>,
    path: Result<Path<String>, PathRejection>,
) -> Response {
    let result = path_params(path).and_then(|knowledge_base_id| {
        let knowledge_base = emulator.get_knowledge_base(&knowledge_base_id)?;
        let config = emulator.config();
        Ok(json!({ "knowledgeBase": KnowledgeBaseWire::new(&knowledge_base, &config.region, &config.account_id) }))
    });
    respond(
        &emulator,
        Operation::GetKnowledgeBase,
        StatusCode::OK,
        result,
    )
}

pub async fn list_data_sources(
    State(emulator): State<Emulator>,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Response {
    let result = path_params(path).and_then(|knowledge_base_id| {
        let page: PageBody = json_body(&body)?;
        let (data_sources, next_token) = emulator.list_data_sources(
            &knowledge_base_id,
            page.max_results,
            page.next_token.as_deref(),
        )?;
        let summaries: Vec<DataSourceSummaryWire> = data_sources
            .iter()
            .map(DataSourceSummaryWire::new)
            .collect();
        Ok(json!({ "dataSourceSummaries": summaries, "nextToken": next_token }))
    });
    respond(
        &emulator,
        Operation::ListDataSources,
        StatusCode::OK,
        result,
    )
}

pub async fn get_data_source(
    State(emulator): State<Emulator>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Response {
    let result = path_params(path).and_then(|(knowledge_base_id, data_source_id)| {
        let data_source = emulator.get_data_source(&knowledge_base_id, &data_source_id)?;
        Ok(json!({ "dataSource": DataSourceWire::new(&data_source) }))
    });
    respond(&emulator, Operation::GetDataSource, StatusCode::OK, result)
}

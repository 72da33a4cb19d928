//! The bedrock-agent REST protocol: routes exactly as aws-sdk-bedrockagent builds them
//! (`operation/<name>.rs`, `uri_base` and the HTTP method), with the success status each
//! operation's deserializer expects (200, or 202 for Start/Stop/Ingest/Delete). Paths are also
//! served with a trailing slash, the way botocore's model spells some of them.

mod catalog;
mod documents;
mod ingestion_jobs;
mod request;
pub mod wire;

use axum::routing::{get, post, MethodRouter};
use axum::Router;

use crate::emulator::Emulator;

pub fn router() -> Router<Emulator> {
    let kb = "/knowledgebases/{knowledge_base_id}";
    let ds = "/knowledgebases/{knowledge_base_id}/datasources/{data_source_id}";
    let routes: [(String, MethodRouter<Emulator>); 10] = [
        (
            "/knowledgebases".to_string(),
            post(catalog::list_knowledge_bases),
        ),
        (kb.to_string(), get(catalog::get_knowledge_base)),
        (
            format!("{kb}/datasources"),
            post(catalog::list_data_sources),
        ),
        (ds.to_string(), get(catalog::get_data_source)),
        (
            format!("{ds}/ingestionjobs"),
            post(ingestion_jobs::list_ingestion_jobs).put(ingestion_jobs::start_ingestion_job),
        ),
        (
            format!("{ds}/ingestionjobs/{{ingestion_job_id}}"),
            get(ingestion_jobs::get_ingestion_job),
        ),
        (
            format!("{ds}/ingestionjobs/{{ingestion_job_id}}/stop"),
            post(ingestion_jobs::stop_ingestion_job),
        ),
        (
            format!("{ds}/documents"),
            post(documents::list_knowledge_base_documents)
                .put(documents::ingest_knowledge_base_documents),
        ),
        (
            format!("{ds}/documents/getDocuments"),
            post(documents::get_knowledge_base_documents),
        ),
        (
            format!("{ds}/documents/deleteDocuments"),
            post(documents::delete_knowledge_base_documents),
        ),
    ];
    // The Rust SDK drops the model's trailing slashes ("/ingestionjobs"), botocore and others keep
    // them ("/ingestionjobs/"): serve both spellings.
    routes
        .into_iter()
        .fold(Router::new(), |router, (path, handler)| {
            router
                .route(&format!("{path}/"), handler.clone())
                .route(&path, handler)
        })
}

pub use request::unknown_operation;

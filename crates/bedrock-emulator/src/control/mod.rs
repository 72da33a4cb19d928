//! Control and inspection endpoints under `/_emulator/` (no SDK path starts with `/_`). Bodies are
//! snake_case JSON; errors are `{"message": ...}` with the same statuses as API errors.

mod handlers;

use axum::routing::{get, post};
use axum::Router;

use crate::emulator::Emulator;

/// Prefix of every control endpoint.
pub const CONTROL_PREFIX: &str = "/_emulator";

pub fn router() -> Router<Emulator> {
    Router::new()
        .route("/_emulator/health", get(handlers::health))
        .route("/_emulator/state", get(handlers::state))
        .route("/_emulator/reset", post(handlers::reset))
        .route(
            "/_emulator/knowledge-bases",
            post(handlers::add_knowledge_base),
        )
        .route(
            "/_emulator/knowledge-bases/{knowledge_base_id}/data-sources",
            post(handlers::add_data_source),
        )
        .route(
            "/_emulator/faults",
            get(handlers::faults).delete(handlers::clear_faults),
        )
        .route("/_emulator/faults/fail-jobs", post(handlers::fail_jobs))
        .route(
            "/_emulator/faults/fail-documents",
            post(handlers::fail_documents),
        )
        .route("/_emulator/faults/slow-jobs", post(handlers::slow_jobs))
        .route(
            "/_emulator/faults/throttle-start-ingestion-job",
            post(handlers::throttle_start_ingestion_job),
        )
        .route(
            "/_emulator/faults/throttle-document-operations",
            post(handlers::throttle_document_operations),
        )
        .route(
            "/_emulator/faults/deny-start-ingestion-job",
            post(handlers::deny_start_ingestion_job),
        )
        .route("/_emulator/foreign-jobs", post(handlers::start_foreign_job))
}

//! Cold-start resolution of routes: fills in data sources the routes do not name and warns
//! about routes whose prefix and data source scope disagree.

use std::collections::BTreeMap;

use kb_autosync_core::resolution::{resolve_data_source, scope_mismatch, ResolutionError};
use kb_autosync_core::routing::RouteTable;

use crate::knowledge_base::KnowledgeBase;
use crate::AwsError;

#[derive(Debug, thiserror::Error)]
pub enum RouteResolutionError {
    #[error(transparent)]
    Resolution(#[from] ResolutionError),
    #[error("cannot resolve the data source of route {uri}: reading knowledge base {knowledge_base_id} failed: {error}")]
    Lookup {
        uri: String,
        knowledge_base_id: String,
        error: AwsError,
    },
}

pub async fn resolve_routes(
    routes: &RouteTable,
    kb: &KnowledgeBase,
) -> Result<RouteTable, RouteResolutionError> {
    let mut scopes = BTreeMap::new();
    for route in routes.routes() {
        if scopes.contains_key(&route.knowledge_base_id) {
            continue;
        }
        match kb.data_source_scopes(&route.knowledge_base_id).await {
            Ok(found) => {
                scopes.insert(route.knowledge_base_id.clone(), found);
            }
            Err(error) if route.data_source_id.is_none() => {
                return Err(RouteResolutionError::Lookup {
                    uri: route.s3_uri(),
                    knowledge_base_id: route.knowledge_base_id.clone(),
                    error,
                });
            }
            Err(error) => {
                tracing::warn!(route = %route.s3_uri(), %error, "cannot read the data sources of the knowledge base to check the route's scope");
            }
        }
    }
    let mut resolved = BTreeMap::new();
    for route in routes.routes() {
        let Some(kb_scopes) = scopes.get(&route.knowledge_base_id) else {
            continue;
        };
        let ds = match &route.data_source_id {
            Some(ds) => ds.clone(),
            None => {
                let ds = resolve_data_source(route, kb_scopes)?;
                tracing::info!(route = %route.s3_uri(), knowledge_base_id = %route.knowledge_base_id, data_source_id = %ds, "resolved the route's data source from its S3 scope");
                resolved.insert(route.s3_uri(), ds.clone());
                ds
            }
        };
        match kb_scopes.iter().find(|s| s.data_source_id == ds) {
            Some(scope) => {
                if let Some(warning) = scope_mismatch(route, scope) {
                    tracing::warn!(route = %route.s3_uri(), data_source_id = %ds, "{warning}");
                }
            }
            None => {
                tracing::warn!(route = %route.s3_uri(), data_source_id = %ds, knowledge_base_id = %route.knowledge_base_id, "the route names a data source the knowledge base does not have")
            }
        }
    }
    Ok(routes.with_data_sources(|r| resolved.get(&r.s3_uri()).cloned()))
}

//! Routes: which knowledge base and data source a bucket + key belongs to.
//! Several routes may share a bucket; the longest matching prefix wins. A key that matches no
//! route is not guessed at (the public sample took its first path segment as a knowledge base id).

use serde::{Deserialize, Serialize};

use crate::SourceId;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub bucket: String,
    #[serde(default)]
    pub prefix: String,
    pub knowledge_base_id: String,
    /// Empty or absent: resolved at cold start from the knowledge base's data sources.
    #[serde(default, deserialize_with = "empty_as_none")]
    pub data_source_id: Option<String>,
    /// `auto`, `job` or `direct`; absent: the stack's `INGESTION_MODE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingestion_mode: Option<crate::direct::IngestionMode>,
}

fn empty_as_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let value: Option<String> = Option::deserialize(d)?;
    Ok(value.filter(|v| !v.trim().is_empty()))
}

impl Route {
    pub fn source(&self) -> Option<SourceId> {
        self.data_source_id
            .as_ref()
            .map(|ds| SourceId::new(&self.knowledge_base_id, ds))
    }

    pub fn s3_uri(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }

    fn matches(&self, bucket: &str, key: &str) -> bool {
        self.bucket == bucket && key.starts_with(&self.prefix)
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RouteError {
    #[error("ROUTES is not valid JSON of the form [{{\"bucket\":..., \"prefix\":..., \"knowledge_base_id\":..., \"data_source_id\":...}}]: {0}")]
    Json(String),
    #[error("ROUTES is empty: at least one route (bucket, prefix, knowledge base) is required")]
    Empty,
    #[error("route {index} ({uri}) has an empty {field}")]
    EmptyField {
        index: usize,
        uri: String,
        field: &'static str,
    },
    #[error("routes {first} and {second} both watch {uri}: each bucket + prefix may route to one data source only")]
    Duplicate {
        first: usize,
        second: usize,
        uri: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteTable {
    routes: Vec<Route>,
}

impl RouteTable {
    pub fn new(routes: Vec<Route>) -> Result<Self, RouteError> {
        if routes.is_empty() {
            return Err(RouteError::Empty);
        }
        for (index, route) in routes.iter().enumerate() {
            if route.bucket.trim().is_empty() {
                return Err(RouteError::EmptyField {
                    index,
                    uri: route.s3_uri(),
                    field: "bucket",
                });
            }
            if route.knowledge_base_id.trim().is_empty() {
                return Err(RouteError::EmptyField {
                    index,
                    uri: route.s3_uri(),
                    field: "knowledge_base_id",
                });
            }
            if let Some(first) = routes[..index]
                .iter()
                .position(|r| r.bucket == route.bucket && r.prefix == route.prefix)
            {
                return Err(RouteError::Duplicate {
                    first,
                    second: index,
                    uri: route.s3_uri(),
                });
            }
        }
        Ok(Self { routes })
    }

    pub fn from_json(json: &str) -> Result<Self, RouteError> {
        let routes: Vec<Route> =
            serde_json::from_str(json).map_err(|e| RouteError::Json(e.to_string()))?;
        Self::new(routes)
    }

    /// The route with the longest prefix matching `bucket`/`key`.
    pub fn route(&self, bucket: &str, key: &str) -> Option<&Route> {
        self.routes
            .iter()
            .filter(|r| r.matches(bucket, key))
            .max_by_key(|r| r.prefix.len())
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Routes after data source resolution; `resolved` gives the data source of each unresolved
    /// route, in order.
    pub fn with_data_sources(&self, resolve: impl Fn(&Route) -> Option<String>) -> Self {
        let routes = self
            .routes
            .iter()
            .map(|r| Route {
                data_source_id: r.data_source_id.clone().or_else(|| resolve(r)),
                ..r.clone()
            })
            .collect();
        Self { routes }
    }

    /// The ingestion mode of the route that syncs `source` (the first one, when several do),
    /// or `default` when that route names none.
    pub fn ingestion_mode(
        &self,
        source: &SourceId,
        default: crate::direct::IngestionMode,
    ) -> crate::direct::IngestionMode {
        self.routes
            .iter()
            .filter(|r| r.knowledge_base_id == source.knowledge_base_id)
            .find(|r| {
                r.data_source_id
                    .as_deref()
                    .is_none_or(|ds| ds == source.data_source_id)
            })
            .and_then(|r| r.ingestion_mode)
            .unwrap_or(default)
    }

    /// Every distinct data source this stack manages.
    pub fn sources(&self) -> Vec<SourceId> {
        let mut sources: Vec<SourceId> = self.routes.iter().filter_map(Route::source).collect();
        sources.sort();
        sources.dedup();
        sources
    }

    /// One line per route, for logs that explain why a key was not routed.
    pub fn summary(&self) -> String {
        self.routes
            .iter()
            .map(|r| {
                format!(
                    "{} -> {}/{}",
                    r.s3_uri(),
                    r.knowledge_base_id,
                    r.data_source_id.as_deref().unwrap_or("(unresolved)")
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> RouteTable {
        RouteTable::from_json(
            r#"[
              {"bucket":"docs","prefix":"","knowledge_base_id":"KBALL","data_source_id":"DSALL"},
              {"bucket":"docs","prefix":"manuals/","knowledge_base_id":"KBMAN","data_source_id":"DSMAN"},
              {"bucket":"docs","prefix":"manuals/v2/","knowledge_base_id":"KBMAN","data_source_id":"DSV2"},
              {"bucket":"other","prefix":"kb/","knowledge_base_id":"KBOTHER","data_source_id":""}
            ]"#,
        )
        .unwrap()
    }

    #[test]
    fn longest_prefix_wins() {
        let table = table();
        assert_eq!(
            table
                .route("docs", "manuals/v2/a.pdf")
                .unwrap()
                .data_source_id
                .as_deref(),
            Some("DSV2")
        );
        assert_eq!(
            table
                .route("docs", "manuals/a.pdf")
                .unwrap()
                .data_source_id
                .as_deref(),
            Some("DSMAN")
        );
        assert_eq!(
            table
                .route("docs", "notes.txt")
                .unwrap()
                .data_source_id
                .as_deref(),
            Some("DSALL")
        );
    }

    #[test]
    fn unmatched_key_is_not_guessed() {
        // Defect 8: an unmatched prefix must not fall back to "first path segment is the kb id".
        let table = table();
        assert!(table.route("other", "KBGUESS/file.txt").is_none());
        assert!(table.route("unknown-bucket", "kb/file.txt").is_none());
    }

    #[test]
    fn keys_with_dot_dot_are_routed_like_any_key() {
        // Defect 8: keys containing ".." were silently dropped; S3 allows them.
        let table = table();
        let route = table.route("docs", "manuals/../weird..name.txt").unwrap();
        assert_eq!(route.knowledge_base_id, "KBMAN");
    }

    #[test]
    fn empty_data_source_means_unresolved() {
        let table = table();
        let route = table.route("other", "kb/x").unwrap();
        assert_eq!(route.data_source_id, None);
        let resolved =
            table.with_data_sources(|r| (r.bucket == "other").then(|| "DSRES".to_string()));
        assert_eq!(
            resolved
                .route("other", "kb/x")
                .unwrap()
                .source()
                .unwrap()
                .key(),
            "KBOTHER#DSRES"
        );
        assert_eq!(resolved.sources().len(), 4);
    }

    #[test]
    fn invalid_tables_name_the_problem() {
        assert_eq!(RouteTable::from_json("[]").unwrap_err(), RouteError::Empty);
        let err = RouteTable::from_json(r#"[{"bucket":"","knowledge_base_id":"K"}]"#).unwrap_err();
        assert!(err.to_string().contains("empty bucket"), "{err}");
        let err = RouteTable::from_json(
            r#"[{"bucket":"b","prefix":"p/","knowledge_base_id":"K"},{"bucket":"b","prefix":"p/","knowledge_base_id":"L"}]"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("s3://b/p/"), "{err}");
        let err = RouteTable::from_json("{").unwrap_err();
        assert!(
            err.to_string().contains("ROUTES is not valid JSON"),
            "{err}"
        );
    }

    #[test]
    fn summary_lists_every_route() {
        let summary = table().summary();
        assert!(summary.contains("s3://docs/manuals/v2/ -> KBMAN/DSV2"));
        assert!(summary.contains("s3://other/kb/ -> KBOTHER/(unresolved)"));
    }
}

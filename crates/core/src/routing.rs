//! Routes: which knowledge base and data source a bucket + key belongs to.
//! Several routes may share a bucket as long as their prefixes do not overlap, so every key has
//! at most one route and moving a route never silently hands keys to another. A key that matches
//! no route is not guessed at (the public sample took its first path segment as a knowledge base
//! id).

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

    /// Some key would match both routes.
    fn overlaps(&self, other: &Route) -> bool {
        self.bucket == other.bucket
            && (self.prefix.starts_with(&other.prefix) || other.prefix.starts_with(&self.prefix))
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "empty".to_string()
    } else {
        items.join(", ")
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
    #[error("routes {first} ({first_uri}) and {second} ({second_uri}) overlap: both would claim the keys under {second_uri}; give routes of one bucket prefixes that are not prefixes of each other")]
    Overlap {
        first: usize,
        first_uri: String,
        second: usize,
        second_uri: String,
    },
    #[error("route {index} ({uri}) watches bucket {bucket}, which is not in RouteBuckets ({allowed}): add it there, or the functions may neither read the bucket nor receive its events")]
    BucketNotDeployed {
        index: usize,
        uri: String,
        bucket: String,
        allowed: String,
    },
    #[error("route {index} ({uri}) syncs knowledge base {knowledge_base_id}, which is not in RouteKnowledgeBaseIds ({allowed}): add it there, or the functions may not use the knowledge base")]
    KnowledgeBaseNotDeployed {
        index: usize,
        uri: String,
        knowledge_base_id: String,
        allowed: String,
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
            if let Some(first) = routes[..index].iter().position(|r| r.overlaps(route)) {
                let (first_uri, second_uri) = (routes[first].s3_uri(), route.s3_uri());
                // The narrower route goes second: its keys are the ones both would claim.
                let (first_uri, second_uri) = if first_uri.len() > second_uri.len() {
                    (second_uri, first_uri)
                } else {
                    (first_uri, second_uri)
                };
                return Err(RouteError::Overlap {
                    first,
                    first_uri,
                    second: index,
                    second_uri,
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

    /// Checks that every route uses a bucket of `buckets` and a knowledge base of
    /// `knowledge_base_ids`: the deployment's permissions and event rule cover those only, so a
    /// route outside them would fail on every change instead of at start. Both empty: the
    /// deployment names no lists (one route, scoped by its own parameters) and nothing is checked.
    pub fn check_deployed(
        &self,
        buckets: &[String],
        knowledge_base_ids: &[String],
    ) -> Result<(), RouteError> {
        if buckets.is_empty() && knowledge_base_ids.is_empty() {
            return Ok(());
        }
        for (index, route) in self.routes.iter().enumerate() {
            if !buckets.contains(&route.bucket) {
                return Err(RouteError::BucketNotDeployed {
                    index,
                    uri: route.s3_uri(),
                    bucket: route.bucket.clone(),
                    allowed: list_or_none(buckets),
                });
            }
            if !knowledge_base_ids.contains(&route.knowledge_base_id) {
                return Err(RouteError::KnowledgeBaseNotDeployed {
                    index,
                    uri: route.s3_uri(),
                    knowledge_base_id: route.knowledge_base_id.clone(),
                    allowed: list_or_none(knowledge_base_ids),
                });
            }
        }
        Ok(())
    }

    /// The route matching `bucket`/`key` (routes do not overlap, so there is one at most).
    pub fn route(&self, bucket: &str, key: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.matches(bucket, key))
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
              {"bucket":"docs","prefix":"notes/","knowledge_base_id":"KBALL","data_source_id":"DSALL"},
              {"bucket":"docs","prefix":"manuals/v1/","knowledge_base_id":"KBMAN","data_source_id":"DSMAN"},
              {"bucket":"docs","prefix":"manuals/v2/","knowledge_base_id":"KBMAN","data_source_id":"DSV2"},
              {"bucket":"other","prefix":"kb/","knowledge_base_id":"KBOTHER","data_source_id":""}
            ]"#,
        )
        .unwrap()
    }

    fn data_source_of(table: &RouteTable, bucket: &str, key: &str) -> Option<String> {
        table
            .route(bucket, key)
            .and_then(|r| r.data_source_id.clone())
    }

    #[test]
    fn each_key_goes_to_the_route_of_its_prefix() {
        let table = table();
        assert_eq!(
            data_source_of(&table, "docs", "manuals/v2/a.pdf").as_deref(),
            Some("DSV2")
        );
        assert_eq!(
            data_source_of(&table, "docs", "manuals/v1/a.pdf").as_deref(),
            Some("DSMAN")
        );
        assert_eq!(
            data_source_of(&table, "docs", "notes/a.txt").as_deref(),
            Some("DSALL")
        );
        // Between the routes' prefixes: no route.
        assert!(table.route("docs", "manuals/a.pdf").is_none());
    }

    fn overlap_error(first: (&str, &str), second: (&str, &str)) -> String {
        let routes = serde_json::json!([
            {"bucket": first.0, "prefix": first.1, "knowledge_base_id": "KBFIRST"},
            {"bucket": second.0, "prefix": second.1, "knowledge_base_id": "KBSECOND"},
        ]);
        match RouteTable::from_json(&routes.to_string()) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn overlapping_routes_are_rejected_naming_both() {
        let nested = overlap_error(("docs", "manuals/"), ("docs", "manuals/v2/"));
        assert!(
            nested
                .starts_with("routes 0 (s3://docs/manuals/) and 1 (s3://docs/manuals/v2/) overlap"),
            "{nested}"
        );
        // Order does not matter: the wider route is named first either way.
        let reversed = overlap_error(("docs", "manuals/v2/"), ("docs", "manuals/"));
        assert!(
            reversed.contains("(s3://docs/manuals/) and 1 (s3://docs/manuals/v2/) overlap"),
            "{reversed}"
        );
        let whole_bucket = overlap_error(("docs", ""), ("docs", "a/"));
        assert!(
            whole_bucket.starts_with("routes 0 (s3://docs/) and 1 (s3://docs/a/) overlap"),
            "{whole_bucket}"
        );
        let equal = overlap_error(("docs", "p/"), ("docs", "p/"));
        assert!(equal.contains("overlap"), "{equal}");
        // A shared beginning that is not a whole prefix does not overlap: "a/" and "ab/".
        assert_eq!(overlap_error(("docs", "a/"), ("docs", "ab/")), "");
        // Other buckets never overlap.
        assert_eq!(overlap_error(("docs", ""), ("other", "")), "");
    }

    #[test]
    fn routes_outside_the_deployed_lists_are_rejected() {
        let table = table();
        let strings = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(table.check_deployed(&[], &[]), Ok(()));
        let kbs = strings(&["KBALL", "KBMAN", "KBOTHER"]);
        assert_eq!(
            table.check_deployed(&strings(&["docs", "other"]), &kbs),
            Ok(())
        );
        let err = table
            .check_deployed(&strings(&["docs"]), &kbs)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("route 3 (s3://other/kb/) watches bucket other, which is not in RouteBuckets (docs)"),
            "{err}"
        );
        let err = table
            .check_deployed(&strings(&["docs", "other"]), &strings(&["KBALL", "KBMAN"]))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("route 3 (s3://other/kb/) syncs knowledge base KBOTHER, which is not in RouteKnowledgeBaseIds (KBALL, KBMAN)"),
            "{err}"
        );
        let err = table.check_deployed(&[], &kbs).unwrap_err().to_string();
        assert!(err.contains("not in RouteBuckets (empty)"), "{err}");
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
        let route = table
            .route("docs", "manuals/v1/../weird..name.txt")
            .unwrap();
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
        assert!(err.to_string().contains("overlap"), "{err}");
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

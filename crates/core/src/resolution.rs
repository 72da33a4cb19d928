//! Which data source a route syncs, and whether its scope agrees with the route.
//!
//! A job re-scans the data source's own S3 scope (bucket ARN + inclusion prefixes), not the
//! route's prefix. When the two disagree, changes are either never ingested or other objects are
//! ingested too; the public sample did not notice. The service resolves the data source from the
//! scope when the route does not name it, and warns at cold start when the scopes disagree.

use crate::routing::Route;

/// The S3 scope of one Bedrock data source, as GetDataSource describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataSourceScope {
    pub data_source_id: String,
    pub name: String,
    /// `arn:aws:s3:::bucket`; None for data sources that are not S3.
    pub bucket_arn: Option<String>,
    /// Empty means the whole bucket.
    pub inclusion_prefixes: Vec<String>,
}

impl DataSourceScope {
    pub fn bucket(&self) -> Option<&str> {
        self.bucket_arn
            .as_deref()
            .and_then(|arn| arn.rsplit(":::").next())
            .filter(|b| !b.is_empty())
    }

    fn describe(&self) -> String {
        let bucket = self.bucket().unwrap_or("(not an S3 data source)");
        let prefixes = if self.inclusion_prefixes.is_empty() {
            "whole bucket".to_string()
        } else {
            self.inclusion_prefixes.join(", ")
        };
        format!(
            "{} ({}) s3://{} [{}]",
            self.data_source_id, self.name, bucket, prefixes
        )
    }

    /// True when every key under the route's prefix is inside this data source's scope.
    pub fn contains(&self, route: &Route) -> bool {
        self.bucket() == Some(route.bucket.as_str())
            && (self.inclusion_prefixes.is_empty()
                || self
                    .inclusion_prefixes
                    .iter()
                    .any(|p| route.prefix.starts_with(p.as_str())))
    }

    /// True when the data source syncs objects the route does not watch.
    fn is_wider_than(&self, route: &Route) -> bool {
        if route.prefix.is_empty() {
            return false;
        }
        self.inclusion_prefixes.is_empty()
            || self
                .inclusion_prefixes
                .iter()
                .any(|p| !p.starts_with(route.prefix.as_str()))
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ResolutionError {
    #[error("route {uri} -> knowledge base {knowledge_base_id}: no data source of the knowledge base covers the route; candidates: {candidates}. Set the route's data_source_id (template parameter DataSourceId) or fix the data source's S3 bucket/inclusion prefixes")]
    NoCandidate {
        uri: String,
        knowledge_base_id: String,
        candidates: String,
    },
    #[error("route {uri} -> knowledge base {knowledge_base_id}: several data sources cover the route: {candidates}. Set the route's data_source_id (template parameter DataSourceId) to the one to sync")]
    Ambiguous {
        uri: String,
        knowledge_base_id: String,
        candidates: String,
    },
}

/// Picks the one data source of the knowledge base whose scope contains the route.
pub fn resolve_data_source(
    route: &Route,
    data_sources: &[DataSourceScope],
) -> Result<String, ResolutionError> {
    let covering: Vec<&DataSourceScope> = data_sources
        .iter()
        .filter(|ds| ds.contains(route))
        .collect();
    let list = |items: &mut dyn Iterator<Item = &DataSourceScope>| {
        let text: Vec<String> = items.map(DataSourceScope::describe).collect();
        if text.is_empty() {
            "none".to_string()
        } else {
            text.join("; ")
        }
    };
    match covering.as_slice() {
        [one] => Ok(one.data_source_id.clone()),
        [] => Err(ResolutionError::NoCandidate {
            uri: route.s3_uri(),
            knowledge_base_id: route.knowledge_base_id.clone(),
            candidates: list(&mut data_sources.iter()),
        }),
        several => Err(ResolutionError::Ambiguous {
            uri: route.s3_uri(),
            knowledge_base_id: route.knowledge_base_id.clone(),
            candidates: list(&mut several.iter().copied()),
        }),
    }
}

/// A warning when the route and the data source it syncs disagree about the S3 scope.
pub fn scope_mismatch(route: &Route, scope: &DataSourceScope) -> Option<String> {
    if !scope.contains(route) {
        return Some(format!(
            "route {} syncs data source {}, whose scope does not contain the route: changes under the route are recorded but ingestion jobs will not ingest them",
            route.s3_uri(),
            scope.describe()
        ));
    }
    if scope.is_wider_than(route) {
        return Some(format!(
            "route {} syncs data source {}, whose scope is wider than the route: each job also ingests objects outside the route, whose changes are not tracked",
            route.s3_uri(),
            scope.describe()
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(prefix: &str) -> Route {
        Route {
            bucket: "docs".into(),
            prefix: prefix.into(),
            knowledge_base_id: "KB1".into(),
            data_source_id: None,
            ingestion_mode: None,
        }
    }

    fn scope(id: &str, bucket: &str, prefixes: &[&str]) -> DataSourceScope {
        DataSourceScope {
            data_source_id: id.into(),
            name: format!("{id}-name"),
            bucket_arn: Some(format!("arn:aws:s3:::{bucket}")),
            inclusion_prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn picks_the_data_source_that_contains_the_route_not_the_first() {
        // Defect 4: the sample synced dataSourceSummaries[0].
        let sources = [
            scope("DSA", "docs", &["images/"]),
            scope("DSB", "docs", &["manuals/"]),
        ];
        assert_eq!(
            resolve_data_source(&route("manuals/v1/"), &sources).unwrap(),
            "DSB"
        );
    }

    #[test]
    fn zero_or_several_candidates_are_errors_naming_them() {
        let sources = [
            scope("DSA", "docs", &["images/"]),
            scope("DSB", "other", &[]),
        ];
        let err = resolve_data_source(&route("manuals/"), &sources)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("DSA (DSA-name) s3://docs [images/]") && err.contains("DSB"),
            "{err}"
        );
        let sources = [
            scope("DSA", "docs", &[]),
            scope("DSB", "docs", &["manuals/"]),
        ];
        let err = resolve_data_source(&route("manuals/"), &sources).unwrap_err();
        assert!(matches!(err, ResolutionError::Ambiguous { .. }));
        assert!(err.to_string().contains("DSA") && err.to_string().contains("DSB"));
    }

    #[test]
    fn mismatched_scopes_are_reported() {
        // Defect 5: the route prefix and the data source scope disagreed silently.
        let narrower = scope("DS", "docs", &["manuals/"]);
        let warning = scope_mismatch(&route("docs/"), &narrower).unwrap();
        assert!(
            warning.contains("s3://docs/docs/") && warning.contains("will not ingest"),
            "{warning}"
        );
        let wider = scope("DS", "docs", &[]);
        let warning = scope_mismatch(&route("manuals/"), &wider).unwrap();
        assert!(warning.contains("wider"), "{warning}");
        let other_bucket = scope("DS", "elsewhere", &[]);
        assert!(scope_mismatch(&route(""), &other_bucket).is_some());
        assert_eq!(
            scope_mismatch(&route("manuals/"), &scope("DS", "docs", &["manuals/"])),
            None
        );
        assert_eq!(scope_mismatch(&route(""), &scope("DS", "docs", &[])), None);
    }
}

//! `kb-autosync-local up --config FILE` (`make up CONFIG=FILE`): the stack `up` starts, from a
//! JSON file giving the routes, the emulator's knowledge bases and job durations, the time scale
//! and template parameters. See `local/examples/many-routes.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kb_autosync_core::routing::{Route, RouteTable};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::demo;
use crate::StackOptions;

/// The template parameters the file's `routes` set; giving them under `parameters` too would
/// leave two sources for one setting.
const ROUTE_PARAMETERS: [&str; 7] = [
    "Routes",
    "RouteBuckets",
    "RouteKnowledgeBaseIds",
    "KnowledgeBaseId",
    "DataSourceId",
    "S3BucketName",
    "S3KeyPrefix",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpConfig {
    /// The routes, in the ROUTES format; a route without `data_source_id` gets the data source
    /// derived for it (when `knowledge_bases` is absent) or is resolved at cold start.
    pub routes: Vec<Route>,
    /// The emulator's knowledge bases and data sources (its configuration format); absent: one
    /// knowledge base per `knowledge_base_id` of the routes, one S3 data source per route.
    #[serde(default)]
    pub knowledge_bases: Option<Vec<Value>>,
    /// The emulator's job durations in Bedrock seconds (`starting_seconds`,
    /// `base_duration_seconds`, `per_document_seconds`, `stopping_seconds`).
    #[serde(default)]
    pub jobs: Option<Value>,
    /// How many times faster than Bedrock the emulator runs (default 10).
    #[serde(default)]
    pub time_scale: Option<f64>,
    /// Further template parameters (`IngestionMode`, `MaxConcurrentJobsPerAccount`, ...).
    #[serde(default)]
    pub parameters: BTreeMap<String, String>,
}

impl UpConfig {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "cannot read the stack configuration {}: {e}",
                path.display()
            )
        })?;
        let config: Self = serde_json::from_str(&text).map_err(|e| {
            format!(
                "the stack configuration {} is not valid: {e}",
                path.display()
            )
        })?;
        config
            .check()
            .map_err(|e| format!("the stack configuration {}: {e}", path.display()))?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        RouteTable::new(self.routes.clone()).map_err(|e| format!("routes: {e}"))?;
        if let Some(name) = ROUTE_PARAMETERS
            .iter()
            .find(|name| self.parameters.contains_key(**name))
        {
            return Err(format!(
                "parameters.{name}: the routes come from \"routes\" only; remove {name}"
            ));
        }
        if let Some(scale) = self.time_scale {
            if !(scale.is_finite() && scale > 0.0) {
                return Err(format!(
                    "time_scale {scale} must be a number above 0 (10: ten times faster than Bedrock)"
                ));
            }
        }
        if let Some(jobs) = &self.jobs {
            if !jobs.is_object() {
                return Err(format!("jobs must be an object of durations in seconds, such as {{\"base_duration_seconds\": 20}}, not {jobs}"));
            }
        }
        Ok(())
    }

    /// The routes with a data source each: the route's own, or the one derived for it.
    fn routes_with_data_sources(&self) -> Vec<Route> {
        if self.knowledge_bases.is_some() {
            return self.routes.clone();
        }
        let mut unnamed = 0;
        self.routes
            .iter()
            .map(|route| {
                let data_source_id = route.data_source_id.clone().unwrap_or_else(|| {
                    unnamed += 1;
                    format!("DSLOCAL{unnamed:03}")
                });
                Route {
                    data_source_id: Some(data_source_id),
                    ..route.clone()
                }
            })
            .collect()
    }

    fn knowledge_bases(&self, routes: &[Route]) -> Vec<Value> {
        if let Some(given) = &self.knowledge_bases {
            return given.clone();
        }
        let mut ids: Vec<&str> = Vec::new();
        for route in routes {
            if !ids.contains(&route.knowledge_base_id.as_str()) {
                ids.push(&route.knowledge_base_id);
            }
        }
        ids.iter()
            .map(|kb| {
                let sources: Vec<Value> = routes
                    .iter()
                    .filter(|r| r.knowledge_base_id == *kb)
                    .map(|r| {
                        let id = r.data_source_id.clone().unwrap_or_default();
                        json!({
                            "id": id,
                            "name": format!("{}-{}", r.bucket, r.prefix.trim_end_matches('/')).trim_end_matches('-').to_string(),
                            "bucket_arn": format!("arn:aws:s3:::{}", r.bucket),
                            "inclusion_prefixes": if r.prefix.is_empty() { vec![] } else { vec![r.prefix.clone()] },
                        })
                    })
                    .collect();
                json!({"id": kb, "name": kb.to_lowercase(), "data_sources": sources})
            })
            .collect()
    }

    /// Every distinct value of `field` over the routes, in route order.
    fn distinct(routes: &[Route], field: impl Fn(&Route) -> &str) -> String {
        let mut seen: Vec<&str> = Vec::new();
        for route in routes {
            if !seen.contains(&field(route)) {
                seen.push(field(route));
            }
        }
        seen.join(",")
    }

    /// Stack options: the demo's (second-scale timings, 2 workers, a sweep every minute) with
    /// this file's routes, emulator and parameters.
    pub fn options(&self, state_dir: PathBuf) -> StackOptions {
        let routes = self.routes_with_data_sources();
        let mut options = demo::demo_options(state_dir);
        options.params = vec![
            (
                "Routes".into(),
                serde_json::to_string(&routes).unwrap_or_default(),
            ),
            (
                "RouteBuckets".into(),
                Self::distinct(&routes, |r| &r.bucket),
            ),
            (
                "RouteKnowledgeBaseIds".into(),
                Self::distinct(&routes, |r| &r.knowledge_base_id),
            ),
        ];
        options.params.extend(self.parameters.clone());
        let jobs = self.jobs.clone().unwrap_or_else(|| {
            json!({"starting_seconds": 5, "base_duration_seconds": 20, "per_document_seconds": 0.2, "stopping_seconds": 5})
        });
        options.emulator_config =
            Some(json!({"knowledge_bases": self.knowledge_bases(&routes), "jobs": jobs}));
        if let Some(scale) = self.time_scale {
            options.time_scale = scale;
        }
        options
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<UpConfig, String> {
        let config: UpConfig = serde_json::from_str(text).map_err(|e| e.to_string())?;
        config.check()?;
        Ok(config)
    }

    fn param<'a>(options: &'a StackOptions, name: &str) -> &'a str {
        options
            .params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no parameter {name}"))
    }

    #[test]
    fn the_example_file_starts_several_knowledge_bases() {
        let path = crate::stack::project_root().join("local/examples/many-routes.json");
        let config = UpConfig::load(&path).unwrap();
        let options = config.options(PathBuf::from("state"));
        let buckets = param(&options, "RouteBuckets").split(',').count();
        let kbs = param(&options, "RouteKnowledgeBaseIds").split(',').count();
        assert!(buckets >= 2 && kbs >= 3, "{:?}", options.params);
    }

    #[test]
    fn emulator_knowledge_bases_are_derived_from_the_routes_when_absent() {
        let config = parse(
            r#"{"routes": [
                {"bucket": "a", "prefix": "docs/", "knowledge_base_id": "KB1", "data_source_id": "DS1"},
                {"bucket": "a", "prefix": "notes/", "knowledge_base_id": "KB2"},
                {"bucket": "b", "knowledge_base_id": "KB2"}
            ], "time_scale": 5, "parameters": {"IngestionMode": "auto"}}"#,
        )
        .unwrap();
        let options = config.options(PathBuf::from("state"));
        assert_eq!(param(&options, "RouteBuckets"), "a,b");
        assert_eq!(param(&options, "RouteKnowledgeBaseIds"), "KB1,KB2");
        assert_eq!(param(&options, "IngestionMode"), "auto");
        assert_eq!(options.time_scale, 5.0);
        let routes: Vec<Route> = serde_json::from_str(param(&options, "Routes")).unwrap();
        let data_sources: Vec<_> = routes
            .iter()
            .map(|r| r.data_source_id.clone().unwrap())
            .collect();
        assert_eq!(data_sources, ["DS1", "DSLOCAL001", "DSLOCAL002"]);
        let emulator = options.emulator_config.unwrap();
        let kb2 = &emulator["knowledge_bases"][1];
        assert_eq!(kb2["id"], "KB2");
        assert_eq!(
            kb2["data_sources"][0]["inclusion_prefixes"],
            json!(["notes/"])
        );
        assert_eq!(kb2["data_sources"][1]["bucket_arn"], "arn:aws:s3:::b");
        assert_eq!(kb2["data_sources"][1]["inclusion_prefixes"], json!([]));
        assert_eq!(emulator["jobs"]["base_duration_seconds"], 20);
    }

    #[test]
    fn bad_files_name_what_is_wrong() {
        let overlap = parse(
            r#"{"routes": [{"bucket": "a", "prefix": "", "knowledge_base_id": "K"}, {"bucket": "a", "prefix": "x/", "knowledge_base_id": "L"}]}"#,
        )
        .unwrap_err();
        assert!(
            overlap.starts_with("routes: routes 0 (s3://a/) and 1 (s3://a/x/) overlap"),
            "{overlap}"
        );
        let twice = parse(
            r#"{"routes": [{"bucket": "a", "knowledge_base_id": "K"}], "parameters": {"RouteBuckets": "a"}}"#,
        )
        .unwrap_err();
        assert!(
            twice.starts_with("parameters.RouteBuckets: the routes come from"),
            "{twice}"
        );
        let scale =
            parse(r#"{"routes": [{"bucket": "a", "knowledge_base_id": "K"}], "time_scale": 0}"#)
                .unwrap_err();
        assert!(
            scale.contains("time_scale 0 must be a number above 0"),
            "{scale}"
        );
        let unknown = parse(r#"{"routes": [], "route": []}"#).unwrap_err();
        assert!(unknown.contains("unknown field `route`"), "{unknown}");
        let empty = parse(r#"{"routes": []}"#).unwrap_err();
        assert!(empty.contains("ROUTES is empty"), "{empty}");
    }
}

//! Where a canary goes: the routes to check, the data source each syncs, and a key inside both
//! the route and the data source's scope under the reserved `.kb-autosync-canary/` segment.

use std::time::Duration;

use chrono::{DateTime, Utc};
use kb_autosync_aws::knowledge_base::KnowledgeBase;
use kb_autosync_core::change::CANARY_SEGMENT;
use kb_autosync_core::resolution::{resolve_data_source, DataSourceScope};
use kb_autosync_core::routing::Route;
use kb_autosync_core::SourceId;

use super::{RouteReport, Stage};
use crate::commands::Invocation;
use crate::context::sdk_error;
use crate::doctor::checks;
use crate::doctor::Finding;
use crate::error::CliError;

/// A route with the data source it syncs and where its canary objects go.
#[derive(Debug, Clone)]
pub struct Target {
    pub route: Route,
    pub source: SourceId,
    pub scope: DataSourceScope,
    /// The prefix the canary prefix goes under: the route's, or a narrower inclusion prefix.
    pub base: String,
    /// False when no key under the route is inside the data source's scope.
    pub in_scope: bool,
}

impl Target {
    pub fn new(route: &Route, scope: DataSourceScope) -> Self {
        let (base, in_scope) = canary_base(route, &scope);
        Self {
            route: route.clone(),
            source: SourceId::new(&route.knowledge_base_id, &scope.data_source_id),
            scope,
            base,
            in_scope,
        }
    }

    pub fn canary_prefix(&self) -> String {
        canary_prefix(&self.base)
    }

    pub fn uri(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.route.bucket)
    }

    /// The data source's scope: `s3://bucket [prefix, ...]`.
    pub fn scope_text(&self) -> String {
        let prefixes = match self.scope.inclusion_prefixes.as_slice() {
            [] => "whole bucket".to_string(),
            some => some.join(", "),
        };
        format!(
            "s3://{} [{prefixes}]",
            self.scope.bucket().unwrap_or("(not S3)")
        )
    }

    /// The knowledge-base stage's line.
    pub fn describe(&self) -> String {
        let ds = format!("{} ({})", self.scope.data_source_id, self.scope.name);
        let verdict = if self.in_scope {
            format!("contains {}", self.canary_prefix())
        } else {
            "does not contain the route: the canary goes under the route anyway".to_string()
        };
        format!(
            "{} / {ds}: scope {} {verdict}",
            self.route.knowledge_base_id,
            self.scope_text()
        )
    }
}

/// The prefix to put canary objects under, and whether it is inside the data source's scope:
/// the route's prefix when the scope contains it, else the narrowest-sorting inclusion prefix
/// under the route (the canary must match both the route and the scope).
pub fn canary_base(route: &Route, scope: &DataSourceScope) -> (String, bool) {
    if scope.bucket() != Some(route.bucket.as_str()) {
        return (route.prefix.clone(), false);
    }
    let prefixes = &scope.inclusion_prefixes;
    if prefixes.is_empty()
        || prefixes
            .iter()
            .any(|p| route.prefix.starts_with(p.as_str()))
    {
        return (route.prefix.clone(), true);
    }
    match prefixes
        .iter()
        .filter(|p| p.starts_with(route.prefix.as_str()))
        .min()
    {
        Some(narrower) => (narrower.clone(), true),
        None => (route.prefix.clone(), false),
    }
}

/// `<base>.kb-autosync-canary/`, with a `/` between when the base does not end with one.
pub fn canary_prefix(base: &str) -> String {
    if base.is_empty() || base.ends_with('/') {
        format!("{base}{CANARY_SEGMENT}")
    } else {
        format!("{base}/{CANARY_SEGMENT}")
    }
}

/// The canary object of a run started at `at`.
pub fn canary_key(base: &str, at: DateTime<Utc>) -> String {
    format!(
        "{}{}.txt",
        canary_prefix(base),
        at.format("%Y%m%dT%H%M%S%.3fZ")
    )
}

/// The data source the route syncs, resolved as the event processor does; or, when it cannot
/// be, the failed `doctor` checks that say why.
pub async fn resolve(inv: &Invocation, route: &Route) -> Result<Target, Vec<Finding>> {
    let kb = KnowledgeBase::new(inv.ctx.clients.bedrock.clone());
    let scopes = match kb.data_source_scopes(&route.knowledge_base_id).await {
        Ok(scopes) => scopes,
        Err(e) => {
            let why = inv.ctx.fail("bedrock-agent", e).to_string();
            return Err(explain(inv, route, why).await);
        }
    };
    let chosen = match &route.data_source_id {
        Some(ds) => Ok(ds.clone()),
        None => resolve_data_source(route, &scopes).map_err(|e| e.to_string()),
    };
    let scope = chosen.and_then(|ds| {
        scopes
            .into_iter()
            .find(|s| s.data_source_id == ds)
            .ok_or_else(|| {
                format!(
                    "data source {ds} does not exist in knowledge base {}",
                    route.knowledge_base_id
                )
            })
    });
    match scope {
        Ok(scope) => Ok(Target::new(route, scope)),
        Err(why) => Err(explain(inv, route, why).await),
    }
}

/// doctor's failed knowledge base and data source checks (its scope check aside: the canary
/// follows a scope problem to the stage it breaks); `why` when none fails.
async fn explain(inv: &Invocation, route: &Route, why: String) -> Vec<Finding> {
    let mut findings: Vec<Finding> = checks::knowledge_base(inv, route)
        .await
        .into_iter()
        .filter(|f| !f.passed && f.check != "data-source-scope")
        .collect();
    if findings.is_empty() {
        findings.push(Finding::fail(
            "knowledge-base",
            why,
            "run `autosync doctor` for the whole setup check",
        ));
    }
    findings
}

/// The routes to run, by `--kb` and `--ds`; a report failed at the knowledge-base stage when
/// none matches (or the deployment has no route).
pub async fn select_routes(
    inv: &Invocation,
    kb: Option<&str>,
    ds: Option<&str>,
) -> Result<Vec<Result<Route, Box<RouteReport>>>, CliError> {
    let mut selected = Vec::new();
    for (route, source) in inv.deployment.sources(&inv.ctx).await? {
        let kb_matches = kb.is_none_or(|kb| route.knowledge_base_id == kb);
        let ds_matches = ds.is_none_or(|ds| {
            source.as_ref().is_ok_and(|s| s.data_source_id == ds)
                || route.data_source_id.as_deref() == Some(ds)
        });
        if kb_matches && ds_matches {
            selected.push(Ok(route));
        }
    }
    if selected.is_empty() {
        selected.push(Err(Box::new(unrouted(inv, kb, ds).await)));
    }
    Ok(selected)
}

/// The report of a `--kb`/`--ds` that no route of the deployment syncs.
async fn unrouted(inv: &Invocation, kb: Option<&str>, ds: Option<&str>) -> RouteReport {
    let d = &inv.deployment;
    let routes: Vec<String> = d
        .routes
        .iter()
        .map(|r| format!("{} -> {}", r.s3_uri(), r.knowledge_base_id))
        .collect();
    let wanted = match (kb, ds) {
        (Some(kb), Some(ds)) => format!("knowledge base {kb} / data source {ds}"),
        (Some(kb), None) => format!("knowledge base {kb}"),
        (None, Some(ds)) => format!("data source {ds}"),
        (None, None) => "any knowledge base".to_string(),
    };
    let exists = match kb {
        Some(kb) => existence(inv, kb).await,
        None => String::new(),
    };
    let detail = format!(
        "no route of stack {} syncs {wanted}{exists} (routes: {})",
        d.stack_name,
        if routes.is_empty() {
            "none".into()
        } else {
            routes.join(", ")
        }
    );
    let route = Route {
        bucket: String::new(),
        prefix: String::new(),
        knowledge_base_id: kb.unwrap_or("-").to_string(),
        data_source_id: ds.map(str::to_string),
        ingestion_mode: None,
    };
    let mut report = RouteReport::new(&route);
    report.route = "(no route)".into();
    let fix = "pass --kb/--ds of a routed knowledge base and data source, or deploy a stack for it (stack parameters KnowledgeBaseId, DataSourceId, S3BucketName, S3KeyPrefix)";
    let finding = Finding::fail("knowledge-base", detail.clone(), fix);
    report.fail(Stage::KnowledgeBase, detail, vec![finding]);
    report.finish()
}

/// ", which does not exist in REGION" (doctor's wording) when Bedrock does not know it.
async fn existence(inv: &Invocation, kb: &str) -> String {
    let call = inv
        .ctx
        .clients
        .bedrock
        .get_knowledge_base()
        .knowledge_base_id(kb);
    match call
        .send()
        .await
        .map_err(|e| sdk_error("GetKnowledgeBase", e))
    {
        Ok(_) => format!(", which exists in {}", inv.ctx.region),
        Err(e) if e.is("ResourceNotFoundException") => {
            format!(", which does not exist in {}", inv.ctx.region)
        }
        Err(_) => String::new(),
    }
}

/// Deletes canary objects of earlier runs that did not finish (older than `older_than`: a run
/// deletes its object within its timeout), and says which.
pub async fn sweep_leftovers(
    inv: &Invocation,
    target: &Target,
    older_than: Duration,
) -> Result<Vec<String>, CliError> {
    let s3 = &inv.ctx.clients.s3;
    let cutoff = Utc::now().timestamp() - older_than.as_secs() as i64;
    let mut swept = Vec::new();
    let mut token = None;
    loop {
        let page = s3
            .list_objects_v2()
            .bucket(&target.route.bucket)
            .prefix(target.canary_prefix())
            .set_continuation_token(token.take())
            .send()
            .await
            .map_err(|e| inv.ctx.fail("s3", sdk_error("ListObjectsV2", e)))?;
        for object in page.contents.unwrap_or_default() {
            let written = object.last_modified.map(|t| t.secs()).unwrap_or(0);
            let Some(key) = object.key.filter(|_| written < cutoff) else {
                continue;
            };
            s3.delete_object()
                .bucket(&target.route.bucket)
                .key(&key)
                .send()
                .await
                .map_err(|e| inv.ctx.fail("s3", sdk_error("DeleteObject", e)))?;
            let age = crate::output::span(Utc::now().timestamp() - written);
            swept.push(format!(
                "deleted {}, left {age} ago by a run that did not finish",
                target.uri(&key)
            ));
        }
        match page.next_continuation_token {
            Some(t) if page.is_truncated == Some(true) => token = Some(t),
            _ => return Ok(swept),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kb_autosync_core::change::is_canary_key;

    fn route(prefix: &str) -> Route {
        Route {
            bucket: "docs".into(),
            prefix: prefix.into(),
            knowledge_base_id: "KB".into(),
            data_source_id: Some("DS".into()),
            ingestion_mode: None,
        }
    }

    fn scope(bucket: &str, prefixes: &[&str]) -> DataSourceScope {
        DataSourceScope {
            data_source_id: "DS".into(),
            name: "n".into(),
            bucket_arn: Some(format!("arn:aws:s3:::{bucket}")),
            inclusion_prefixes: prefixes.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn the_canary_goes_inside_both_the_route_and_the_scope() {
        let cases = [
            ("docs/", vec!["docs/"], "docs/", true),
            ("docs/", vec![], "docs/", true),
            ("docs/team/", vec!["docs/"], "docs/team/", true),
            (
                "docs/",
                vec!["docs/reports/", "docs/archive/"],
                "docs/archive/",
                true,
            ),
            ("", vec!["kb/"], "kb/", true),
            ("docs/", vec!["other/"], "docs/", false),
        ];
        for (prefix, prefixes, base, in_scope) in cases {
            let got = canary_base(&route(prefix), &scope("docs", &prefixes));
            assert_eq!(got, (base.to_string(), in_scope), "{prefix} {prefixes:?}");
        }
        assert_eq!(
            canary_base(&route("docs/"), &scope("elsewhere", &[])),
            ("docs/".to_string(), false)
        );
    }

    #[test]
    fn canary_keys_sit_under_the_reserved_segment_and_match_their_prefixes() {
        let at: DateTime<Utc> = "2026-12-01T03:04:05.678Z".parse().unwrap();
        assert_eq!(
            canary_key("docs/", at),
            "docs/.kb-autosync-canary/20261201T030405.678Z.txt"
        );
        assert_eq!(
            canary_key("", at),
            ".kb-autosync-canary/20261201T030405.678Z.txt"
        );
        let odd = canary_key("docs/rep", at);
        assert_eq!(odd, "docs/rep/.kb-autosync-canary/20261201T030405.678Z.txt");
        for base in ["docs/", "", "docs/rep"] {
            let key = canary_key(base, at);
            assert!(key.starts_with(base) && is_canary_key(&key), "{key}");
            assert!(key.starts_with(&canary_prefix(base)), "{key}");
        }
    }

    #[test]
    fn the_target_says_whether_the_scope_contains_the_canary() {
        let inside = Target::new(&route("docs/"), scope("docs", &["docs/"]));
        assert!(inside.in_scope);
        assert!(inside
            .describe()
            .contains("s3://docs [docs/] contains docs/.kb-autosync-canary/"));
        let outside = Target::new(&route("docs/"), scope("docs", &["other/"]));
        assert!(!outside.in_scope);
        assert!(
            outside.describe().contains("does not contain the route"),
            "{}",
            outside.describe()
        );
        assert_eq!(outside.source, SourceId::new("KB", "DS"));
    }
}

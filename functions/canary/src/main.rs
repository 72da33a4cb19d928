//! canary: the scheduled canary. Runs the canary of `autosync canary` on every route of its own
//! stack and emits `CanaryLatencySeconds` (upload -> indexed -> removed) per route that passed.
//! A route that fails emits no data point, so the alarm on missing data fires; the invocation
//! then fails too, naming the stage, its cause and the fix.

use kb_autosync_aws::metrics::STACK_DIMENSION;
use kb_autosync_cli::cli::Target;
use kb_autosync_cli::commands::canary::{self, RouteReport, Settings};
use kb_autosync_cli::commands::Invocation;
use kb_autosync_cli::context::Context;
use kb_autosync_cli::deployment::Deployment;
use kb_autosync_cli::output::Style;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

pub const CANARY_LATENCY: &str = "CanaryLatencySeconds";

#[tokio::main]
async fn main() -> Result<(), Error> {
    kb_autosync_aws::logging::init();
    lambda_runtime::run(service_fn(|_: LambdaEvent<Value>| run_once())).await
}

fn env(name: &str) -> Result<String, Error> {
    std::env::var(name).map_err(|_| format!("{name} is not set").into())
}

async fn run_once() -> Result<Value, Error> {
    let target = Target {
        stack_name: env("STACK_NAME")?,
        profile: None,
        region: None,
        endpoint_url: std::env::var("AWS_ENDPOINT_URL").ok(),
        bedrock_endpoint_url: std::env::var("AWS_ENDPOINT_URL_BEDROCK_AGENT").ok(),
    };
    let timeout: u64 = env("CANARY_TIMEOUT_SECONDS")?.parse()?;
    let ctx = Context::new(&target).await?;
    let deployment = Deployment::find(&ctx, &target.stack_name).await?;
    let inv = Invocation {
        ctx,
        deployment,
        style: Style {
            color: false,
            interactive: false,
        },
        json: true,
    };
    let reports = canary::run_routes(&inv, None, None, Settings::new(timeout, 2.0)).await?;
    let namespace = kb_autosync_aws::config::metrics_namespace();
    let stack = kb_autosync_aws::config::stack_name();
    for report in &reports {
        tracing::info!(report = %json!(report), passed = report.passed, route = %report.route, "canary");
        if let Some(line) = latency_line(&namespace, &stack, report) {
            println!("{line}");
        }
    }
    match failures(&reports) {
        None => Ok(json!(reports)),
        Some(text) => Err(text.into()),
    }
}

/// The EMF data point of a route that passed, under the stack: by knowledge base and data
/// source, and by knowledge base alone (the template's alarm knows the knowledge base, not
/// always the data source).
pub fn latency_line(namespace: &str, stack: &str, report: &RouteReport) -> Option<String> {
    let ds = report.data_source_id.as_deref().filter(|_| report.passed)?;
    Some(
        json!({
            "_aws": {
                "Timestamp": kb_autosync_aws::now_ms(),
                "CloudWatchMetrics": [{
                    "Namespace": namespace,
                    "Dimensions": [
                        [STACK_DIMENSION, "KnowledgeBaseId", "DataSourceId"],
                        [STACK_DIMENSION, "KnowledgeBaseId"]
                    ],
                    "Metrics": [{"Name": CANARY_LATENCY, "Unit": "Seconds"}]
                }]
            },
            STACK_DIMENSION: stack,
            "KnowledgeBaseId": report.knowledge_base_id,
            "DataSourceId": ds,
            CANARY_LATENCY: report.total_seconds,
        })
        .to_string(),
    )
}

/// "canary failed: s3://b/docs/ at recorded: <detail> (cause: ...; fix: ...)", one per route.
pub fn failures(reports: &[RouteReport]) -> Option<String> {
    let lines: Vec<String> = reports
        .iter()
        .filter(|r| !r.passed)
        .map(|r| {
            let stage = r.stages.iter().find(|s| !s.passed);
            let causes: Vec<String> = r
                .findings
                .iter()
                .map(|f| {
                    format!(
                        "cause: {}; fix: {}",
                        f.detail,
                        f.fix.as_deref().unwrap_or("-")
                    )
                })
                .collect();
            format!(
                "{} at {}: {} ({})",
                r.route,
                r.failed_stage.map(|s| s.name()).unwrap_or("-"),
                stage.map(|s| s.detail.as_str()).unwrap_or("-"),
                causes.join("; ")
            )
        })
        .collect();
    (!lines.is_empty()).then(|| format!("canary failed: {}", lines.join(" | ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(passed: bool) -> RouteReport {
        let route = kb_autosync_core::routing::Route {
            bucket: "b".into(),
            prefix: "docs/".into(),
            knowledge_base_id: "KB".into(),
            data_source_id: Some("DS".into()),
            ingestion_mode: None,
        };
        let mut report = RouteReport::new(&route);
        report.pass(canary::Stage::KnowledgeBase, "ok".into());
        if !passed {
            let finding = kb_autosync_cli::doctor::Finding::fail(
                "eventbridge-rule",
                "rule R is disabled",
                "aws events enable-rule --name R",
            );
            report.fail(
                canary::Stage::Recorded,
                "not seen within 10s".into(),
                vec![finding],
            );
        }
        report.finish()
    }

    #[test]
    fn a_passing_route_emits_its_latency_by_knowledge_base_and_data_source() {
        let line: Value =
            serde_json::from_str(&latency_line("KbAutoSync", "docs-sync", &report(true)).unwrap())
                .unwrap();
        let declared = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(declared["Namespace"], "KbAutoSync");
        assert_eq!(declared["Metrics"][0]["Name"], "CanaryLatencySeconds");
        assert_eq!(
            declared["Dimensions"],
            json!([
                ["StackName", "KnowledgeBaseId", "DataSourceId"],
                ["StackName", "KnowledgeBaseId"]
            ])
        );
        assert_eq!(
            (
                line["KnowledgeBaseId"].clone(),
                line["DataSourceId"].clone()
            ),
            (json!("KB"), json!("DS"))
        );
        assert_eq!(line["StackName"], "docs-sync");
        assert!(line["CanaryLatencySeconds"].is_number());
        assert_eq!(failures(&[report(true)]), None);
    }

    #[test]
    fn a_failing_route_emits_nothing_and_fails_the_invocation_with_the_fix() {
        assert_eq!(
            latency_line("KbAutoSync", "docs-sync", &report(false)),
            None
        );
        let text = failures(&[report(true), report(false)]).unwrap();
        assert!(
            text.starts_with("canary failed: s3://b/docs/ at recorded: not seen within 10s"),
            "{text}"
        );
        assert!(
            text.contains("fix: aws events enable-rule --name R"),
            "{text}"
        );
    }
}

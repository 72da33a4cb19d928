//! A deployed stack as the CLI sees it: CloudFormation outputs and parameters, and the routes the
//! event processor really runs with (its ROUTES variable), which may differ from the parameters.

use std::collections::BTreeMap;

use kb_autosync_aws::knowledge_base::KnowledgeBase;
use kb_autosync_core::direct::IngestionMode;
use kb_autosync_core::resolution::resolve_data_source;
use kb_autosync_core::routing::{Route, RouteTable};
use kb_autosync_core::SourceId;

use crate::context::{sdk_error, Context};
use crate::error::CliError;

/// The function outputs, by the role each function plays.
pub const FUNCTION_OUTPUTS: [(&str, &str); 5] = [
    ("event-processor", "EventProcessorFunctionName"),
    ("sync-processor", "SyncProcessorFunctionName"),
    ("check-quota", "CheckQuotaFunctionName"),
    ("start-sync", "StartSyncFunctionName"),
    ("monitor-sync", "MonitorSyncFunctionName"),
];

#[derive(Debug, Clone)]
pub struct Deployment {
    pub stack_name: String,
    pub region: String,
    pub outputs: BTreeMap<String, String>,
    pub parameters: BTreeMap<String, String>,
    pub routes: Vec<Route>,
    /// Where the routes came from, for messages.
    pub routes_from: String,
}

impl Deployment {
    pub async fn find(ctx: &Context, stack_name: &str) -> Result<Self, CliError> {
        let out = ctx
            .clients
            .cloudformation
            .describe_stacks()
            .stack_name(stack_name)
            .send()
            .await
            .map_err(|e| ctx.fail("cloudformation", sdk_error("DescribeStacks", e)))?;
        let stack = out
            .stacks
            .unwrap_or_default()
            .into_iter()
            .next()
            .ok_or_else(|| CliError::Deployment {
                stack: stack_name.into(),
                region: ctx.region.clone(),
                what: "DescribeStacks returned no stack".into(),
            })?;
        let outputs: BTreeMap<String, String> = stack
            .outputs
            .unwrap_or_default()
            .into_iter()
            .filter_map(|o| Some((o.output_key?, o.output_value?)))
            .collect();
        let parameters: BTreeMap<String, String> = stack
            .parameters
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| Some((p.parameter_key?, p.parameter_value.unwrap_or_default())))
            .collect();
        let mut deployment = Self {
            stack_name: stack_name.to_string(),
            region: ctx.region.clone(),
            outputs,
            parameters,
            routes: Vec::new(),
            routes_from: String::new(),
        };
        deployment.load_routes(ctx).await?;
        Ok(deployment)
    }

    /// How long a waiting round sleeps between quota checks: the stack's `QuotaWaitSeconds`
    /// (60 when it does not say). The line for job slots counts an entry stale after two of them.
    pub fn quota_wait_seconds(&self) -> u64 {
        self.parameters
            .get("QuotaWaitSeconds")
            .and_then(|v| v.parse().ok())
            .unwrap_or(60)
    }

    /// How `source`'s changes reach the index: its route's `ingestion_mode`, else the stack's
    /// `IngestionMode` parameter (`auto` when neither says).
    pub fn ingestion_mode(&self, source: &SourceId) -> IngestionMode {
        let default = self
            .parameters
            .get("IngestionMode")
            .and_then(|m| m.parse().ok())
            .unwrap_or_default();
        RouteTable::new(self.routes.clone())
            .map(|table| table.ingestion_mode(source, default))
            .unwrap_or(default)
    }

    /// A required output, or an error naming it (an older or foreign stack lacks it).
    pub fn output(&self, name: &str) -> Result<&str, CliError> {
        self.outputs
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| CliError::Deployment {
                stack: self.stack_name.clone(),
                region: self.region.clone(),
                what: format!(
                    "output {name} is missing: is this a kb-autosync stack, deployed from this version's template.yaml? Outputs present: {}",
                    self.outputs.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            })
    }

    pub fn function_name(&self, role: &str) -> Option<&str> {
        FUNCTION_OUTPUTS
            .iter()
            .find(|(r, _)| *r == role)
            .and_then(|(_, output)| self.outputs.get(*output))
            .map(String::as_str)
    }

    async fn load_routes(&mut self, ctx: &Context) -> Result<(), CliError> {
        if let Some(function) = self.function_name("event-processor").map(str::to_string) {
            let config = ctx
                .clients
                .lambda
                .get_function_configuration()
                .function_name(&function)
                .send()
                .await
                .map_err(|e| ctx.fail("lambda", sdk_error("GetFunctionConfiguration", e)))?;
            let routes = config
                .environment
                .and_then(|e| e.variables)
                .and_then(|mut v| v.remove("ROUTES"));
            if let Some(json) = routes {
                let table = RouteTable::from_json(&json).map_err(|e| CliError::Deployment {
                    stack: self.stack_name.clone(),
                    region: self.region.clone(),
                    what: format!("function {function} has invalid ROUTES: {e}"),
                })?;
                self.routes = table.routes().to_vec();
                self.routes_from = format!("ROUTES of {function}");
                return Ok(());
            }
        }
        // Without the function's configuration, the template's routes: Routes, or the single route.
        let p = |name: &str| self.parameters.get(name).cloned().unwrap_or_default();
        if !p("Routes").is_empty() {
            let table = RouteTable::from_json(&p("Routes")).map_err(|e| CliError::Deployment {
                stack: self.stack_name.clone(),
                region: self.region.clone(),
                what: format!("stack parameter Routes is invalid: {e}"),
            })?;
            self.routes = table.routes().to_vec();
            self.routes_from = "stack parameter Routes".into();
        } else if !p("S3BucketName").is_empty() && !p("KnowledgeBaseId").is_empty() {
            self.routes = vec![Route {
                bucket: p("S3BucketName"),
                prefix: p("S3KeyPrefix"),
                knowledge_base_id: p("KnowledgeBaseId"),
                data_source_id: Some(p("DataSourceId")).filter(|d| !d.is_empty()),
                ingestion_mode: p("IngestionMode").parse().ok(),
            }];
            self.routes_from = "stack parameters".into();
        }
        Ok(())
    }

    /// The data source each route syncs: named by the route, else resolved from the knowledge
    /// base's data sources exactly as the event processor does at cold start.
    pub async fn sources(
        &self,
        ctx: &Context,
    ) -> Result<Vec<(Route, Result<SourceId, String>)>, CliError> {
        let kb = KnowledgeBase::new(ctx.clients.bedrock.clone());
        let mut sources = Vec::new();
        for route in &self.routes {
            let source = match route.source() {
                Some(source) => Ok(source),
                None => match kb.data_source_scopes(&route.knowledge_base_id).await {
                    Ok(scopes) => resolve_data_source(route, &scopes)
                        .map(|ds| SourceId::new(&route.knowledge_base_id, ds))
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(ctx.fail("bedrock-agent", e).to_string()),
                },
            };
            sources.push((route.clone(), source));
        }
        Ok(sources)
    }
}

//! The checks. Each one turns what AWS says into a Finding; a call that fails is itself a
//! failed finding (with the call, the error and its hint), so one broken permission does not
//! hide the other checks.

use std::collections::BTreeSet;

use aws_sdk_sqs::types::QueueAttributeName;
use kb_autosync_aws::knowledge_base::KnowledgeBase;
use kb_autosync_core::direct::IngestionMode;
use kb_autosync_core::resolution::{scope_mismatch, DataSourceScope};
use kb_autosync_core::routing::Route;
use kb_autosync_core::SourceId;

use super::policy::{self, Statement};
use super::{required, Finding};
use crate::commands::Invocation;
use crate::context::sdk_error;
use crate::deployment::FUNCTION_OUTPUTS;

pub async fn all(inv: &Invocation) -> Vec<Finding> {
    let d = &inv.deployment;
    let mut findings = vec![Finding::pass(
        "stack",
        format!(
            "{} in {}: {} route(s) from {}",
            d.stack_name,
            d.region,
            d.routes.len(),
            d.routes_from
        ),
    )];
    if d.routes.is_empty() {
        findings.push(Finding::fail(
            "routes",
            "the deployment routes no bucket/prefix to a knowledge base",
            "set the stack parameters S3BucketName and KnowledgeBaseId (or the event processor's ROUTES)",
        ));
    }
    let buckets: BTreeSet<&str> = d.routes.iter().map(|r| r.bucket.as_str()).collect();
    for bucket in buckets {
        findings.push(bucket_notifications(inv, bucket).await);
    }
    findings.push(change_rule(inv).await);
    for route in &d.routes {
        findings.extend(knowledge_base(inv, route).await);
    }
    let sources = crate::commands::routed_and(inv, Vec::new())
        .await
        .unwrap_or_default();
    findings.extend(super::index_drift::findings(inv, &sources).await);
    findings.push(super::foreign_jobs::finding(inv).await);
    findings.push(subscriptions(inv).await);
    for output in ["ChangeEventsDLQUrl", "SyncDLQUrl"] {
        findings.push(dead_letter_queue(inv, output).await);
    }
    for (function, output) in FUNCTION_OUTPUTS {
        findings.push(permissions(inv, function, output).await);
    }
    findings
}

pub async fn bucket_notifications(inv: &Invocation, bucket: &str) -> Finding {
    let check = "bucket-eventbridge";
    match inv
        .ctx
        .clients
        .s3
        .get_bucket_notification_configuration()
        .bucket(bucket)
        .send()
        .await
    {
        Ok(out) if out.event_bridge_configuration.is_some() => Finding::pass(
            check,
            format!("s3://{bucket} sends its object events to Amazon EventBridge"),
        ),
        Ok(_) => Finding::fail(
            check,
            format!("s3://{bucket} does not send events to Amazon EventBridge: no change is ever recorded"),
            format!(
                "S3 console > {bucket} > Properties > Event notifications > Amazon EventBridge: On \
                 (or add \"EventBridgeConfiguration\": {{}} to the bucket's notification configuration with \
                 aws s3api put-bucket-notification-configuration, keeping its other notifications)"
            ),
        ),
        Err(e) => call_failed(inv, check, "s3", sdk_error("GetBucketNotificationConfiguration", e)),
    }
}

/// The EventBridge rule that sends S3 events to the change events queue exists and is enabled.
/// It is found by its target (ListRuleNamesByTarget), so no stack resource listing is needed.
pub async fn change_rule(inv: &Invocation) -> Finding {
    let check = "eventbridge-rule";
    let queue = match queue_arn(inv, "ChangeEventsQueueUrl").await {
        Ok(arn) => arn,
        Err(finding) => return *finding,
    };
    let queue_name = queue.rsplit(':').next().unwrap_or(&queue).to_string();
    let events = &inv.ctx.clients.events;
    let names = match events
        .list_rule_names_by_target()
        .target_arn(&queue)
        .send()
        .await
    {
        Ok(out) => out.rule_names.unwrap_or_default(),
        Err(e) => return call_failed(inv, check, "events", sdk_error("ListRuleNamesByTarget", e)),
    };
    if names.is_empty() {
        return Finding::fail(
            check,
            format!("no EventBridge rule sends events to {queue_name}: no change is ever recorded"),
            "redeploy the stack's template.yaml: it creates the rule (S3ChangeRule) that sends the bucket's object events to the queue",
        );
    }
    let mut disabled = Vec::new();
    for name in &names {
        match events.describe_rule().name(name).send().await {
            Ok(rule) if rule.state.as_ref().map(|s| s.as_str()) == Some("ENABLED") => {
                return Finding::pass(
                    check,
                    format!("rule {name} is enabled and sends S3 events to {queue_name}"),
                );
            }
            Ok(_) => disabled.push(name.clone()),
            Err(e) => return call_failed(inv, check, "events", sdk_error("DescribeRule", e)),
        }
    }
    Finding::fail(
        check,
        format!("EventBridge rule {} is disabled: S3 events never reach {queue_name}, so no change is recorded", disabled.join(", ")),
        format!("aws events enable-rule --name {} (or redeploy the stack's template.yaml)", disabled[0]),
    )
}

/// The ARN of the queue behind a queue URL output.
async fn queue_arn(inv: &Invocation, output: &str) -> Result<String, Box<Finding>> {
    let check = "eventbridge-rule";
    let url = inv.deployment.output(output).map_err(|e| {
        Box::new(Finding::fail(
            check,
            e.to_string(),
            "deploy this version's template.yaml",
        ))
    })?;
    let out = inv
        .ctx
        .clients
        .sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| {
            Box::new(call_failed(
                inv,
                check,
                "sqs",
                sdk_error("GetQueueAttributes", e),
            ))
        })?;
    Ok(out
        .attributes
        .unwrap_or_default()
        .remove(&QueueAttributeName::QueueArn)
        .unwrap_or_default())
}

/// The knowledge base exists, the route's data source is unambiguous and exists, and its S3
/// scope is the route's.
pub async fn knowledge_base(inv: &Invocation, route: &Route) -> Vec<Finding> {
    let kb_id = &route.knowledge_base_id;
    let region = &inv.ctx.region;
    let bedrock = &inv.ctx.clients.bedrock;
    let check = "knowledge-base";
    match bedrock
        .get_knowledge_base()
        .knowledge_base_id(kb_id)
        .send()
        .await
    {
        Ok(out) => {
            let name = out.knowledge_base.map(|kb| kb.name).unwrap_or_default();
            let mut findings = vec![Finding::pass(
                check,
                format!("{kb_id} ({name}) exists in {region}"),
            )];
            findings.extend(data_source(inv, route).await);
            findings
        }
        Err(e) => {
            let error = sdk_error("GetKnowledgeBase", e);
            if error.is("ResourceNotFoundException") {
                vec![Finding::fail(
                    check,
                    format!("knowledge base {kb_id} does not exist in {region}"),
                    format!("check the stack parameter KnowledgeBaseId and deploy the stack in the knowledge base's region (`aws bedrock-agent list-knowledge-bases --region {region}`)"),
                )]
            } else {
                vec![call_failed(inv, check, "bedrock-agent", error)]
            }
        }
    }
}

async fn data_source(inv: &Invocation, route: &Route) -> Vec<Finding> {
    let kb = KnowledgeBase::new(inv.ctx.clients.bedrock.clone());
    let kb_id = &route.knowledge_base_id;
    let scopes = match kb.data_source_scopes(kb_id).await {
        Ok(scopes) => scopes,
        Err(e) => return vec![call_failed(inv, "data-source", "bedrock-agent", e)],
    };
    let scope = match routed_scope(route, &scopes, &inv.ctx.region) {
        Ok(scope) => scope,
        Err(finding) => return vec![*finding],
    };
    let mut findings = vec![Finding::pass(
        "data-source",
        format!("route {} syncs {}", route.s3_uri(), describe_scope(scope)),
    )];
    findings.push(match scope_mismatch(route, scope) {
        None => Finding::pass(
            "data-source-scope",
            format!(
                "{}'s S3 scope is exactly the watched {}",
                scope.data_source_id,
                route.s3_uri()
            ),
        ),
        Some(problem) => Finding::fail("data-source-scope", problem, scope_fix(route)),
    });
    findings.push(ingestion_mode(inv, &kb, &SourceId::new(kb_id, &scope.data_source_id)).await);
    findings
}

fn describe_scope(s: &DataSourceScope) -> String {
    format!("{} ({})", s.data_source_id, s.name)
}

/// The data source the route syncs: the one it names, else the knowledge base's only one. A
/// route that names none is refused when there are several, since adding a data source would
/// then silently change which one is synced.
fn routed_scope<'a>(
    route: &Route,
    scopes: &'a [DataSourceScope],
    region: &str,
) -> Result<&'a DataSourceScope, Box<Finding>> {
    let kb_id = &route.knowledge_base_id;
    let all = scopes
        .iter()
        .map(describe_scope)
        .collect::<Vec<_>>()
        .join(", ");
    match &route.data_source_id {
        Some(ds) => scopes.iter().find(|s| &s.data_source_id == ds).ok_or_else(|| {
            Box::new(Finding::fail(
                "data-source",
                format!("data source {ds} does not exist in knowledge base {kb_id} in {region}"),
                format!("set the stack parameter DataSourceId to one of: {}", if all.is_empty() { "(the knowledge base has none)".into() } else { all }),
            ))
        }),
        None => match scopes {
            [one] => Ok(one),
            [] => Err(Box::new(Finding::fail(
                "data-source",
                format!("knowledge base {kb_id} has no data source"),
                "create an S3 data source for the watched bucket and prefix",
            ))),
            several => Err(Box::new(Finding::fail(
                "data-source",
                format!(
                    "knowledge base {kb_id} has {} data sources ({all}) and the route {} names none: \
                     a new data source can silently change which one is synced",
                    several.len(),
                    route.s3_uri()
                ),
                "set the stack parameter DataSourceId to the data source that reads the watched bucket and prefix",
            ))),
        },
    }
}

/// Which way the data source's rounds go, and whether direct ingestion is possible yet (AWS
/// requires a completed ingestion job before documents are ingested directly).
async fn ingestion_mode(inv: &Invocation, kb: &KnowledgeBase, source: &SourceId) -> Finding {
    let mode = inv.deployment.ingestion_mode(source);
    if mode == IngestionMode::Job {
        return Finding::pass(
            "ingestion-mode",
            format!("{source}: job mode, every round is an ingestion job"),
        );
    }
    match kb.has_completed_job(source).await {
        Ok(true) => Finding::pass(
            "ingestion-mode",
            format!("{source}: {mode} mode, the data source has completed a job, so single changes are ingested directly"),
        ),
        Ok(false) => Finding::pass(
            "ingestion-mode",
            format!("{source}: {mode} mode, but the data source has never completed an ingestion job: the first round is a job (AWS requires it), direct ingestion follows"),
        ),
        Err(e) => call_failed(inv, "ingestion-mode", "bedrock-agent", e),
    }
}

/// How to make a data source's scope the route's (doctor and canary say the same).
pub fn scope_fix(route: &Route) -> String {
    format!(
        "make the data source's S3 bucket {} and inclusion prefix \"{}\" (UpdateDataSource), or change S3KeyPrefix to the data source's prefix",
        route.bucket, route.prefix
    )
}

/// Classifies the topic's subscriptions: (protocol, endpoint, pending confirmation).
pub fn subscription_finding(topic: &str, subscriptions: &[(String, String, bool)]) -> Finding {
    let check = "notifications";
    if subscriptions.is_empty() {
        return Finding::fail(
            check,
            format!("topic {topic} has no subscription: sync notifications go nowhere"),
            format!("set the stack parameter NotificationsEmail and confirm the mail, or `aws sns subscribe --topic-arn {topic} --protocol email --notification-endpoint you@example.com`"),
        );
    }
    let pending: Vec<&str> = subscriptions
        .iter()
        .filter(|(_, _, pending)| *pending)
        .map(|(_, endpoint, _)| endpoint.as_str())
        .collect();
    if pending.len() == subscriptions.len() {
        return Finding::fail(
            check,
            format!("every subscription of {topic} is pending confirmation ({})", pending.join(", ")),
            "open the \"AWS Notification - Subscription Confirmation\" mail and click Confirm subscription (it expires after 3 days; subscribe again if it did)",
        );
    }
    let confirmed: Vec<String> = subscriptions
        .iter()
        .filter(|(_, _, pending)| !*pending)
        .map(|(protocol, endpoint, _)| format!("{protocol}:{endpoint}"))
        .collect();
    let mut detail = format!(
        "{} confirmed subscription(s): {}",
        confirmed.len(),
        confirmed.join(", ")
    );
    if !pending.is_empty() {
        detail.push_str(&format!("; pending confirmation: {}", pending.join(", ")));
    }
    Finding::pass(check, detail)
}

async fn subscriptions(inv: &Invocation) -> Finding {
    let topic = match inv.deployment.output("NotificationTopicArn") {
        Ok(t) => t.to_string(),
        Err(e) => {
            return Finding::fail(
                "notifications",
                e.to_string(),
                "deploy this version's template.yaml",
            )
        }
    };
    let mut found = Vec::new();
    let mut token = None;
    loop {
        let page = match inv
            .ctx
            .clients
            .sns
            .list_subscriptions_by_topic()
            .topic_arn(&topic)
            .set_next_token(token.take())
            .send()
            .await
        {
            Ok(page) => page,
            Err(e) => {
                return call_failed(
                    inv,
                    "notifications",
                    "sns",
                    sdk_error("ListSubscriptionsByTopic", e),
                )
            }
        };
        for s in page.subscriptions.unwrap_or_default() {
            let arn = s.subscription_arn.unwrap_or_default();
            // SNS lists an unconfirmed subscription with the ARN "PendingConfirmation".
            let pending = arn == "PendingConfirmation";
            found.push((
                s.protocol.unwrap_or_default(),
                s.endpoint.unwrap_or_default(),
                pending,
            ));
        }
        match page.next_token {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => break,
        }
    }
    subscription_finding(&topic, &found)
}

pub async fn dead_letter_queue(inv: &Invocation, output: &str) -> Finding {
    let check = "dead-letter-queue";
    let url = match inv.deployment.output(output) {
        Ok(url) => url.to_string(),
        Err(e) => {
            return Finding::fail(check, e.to_string(), "deploy this version's template.yaml")
        }
    };
    let name = url.rsplit('/').next().unwrap_or(&url).to_string();
    let attributes = match inv
        .ctx
        .clients
        .sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
    {
        Ok(out) => out.attributes.unwrap_or_default(),
        Err(e) => return call_failed(inv, check, "sqs", sdk_error("GetQueueAttributes", e)),
    };
    let count = |name: QueueAttributeName| {
        attributes
            .get(&name)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let messages = count(QueueAttributeName::ApproximateNumberOfMessages)
        + count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible);
    if messages == 0 {
        return Finding::pass(check, format!("{name} is empty"));
    }
    let arn = attributes
        .get(&QueueAttributeName::QueueArn)
        .cloned()
        .unwrap_or_else(|| name.clone());
    Finding::fail(
        check,
        format!("{name} holds {messages} message(s) the service could not process"),
        format!(
            "read the reason in the messages and the function log (`aws sqs receive-message --queue-url {url} --max-number-of-messages 10`), fix the cause, \
             then move them back with `aws sqs start-message-move-task --source-arn {arn}` (or delete them)"
        ),
    )
}

/// The check name of `permissions` and of the role lookups it makes.
const PERMISSIONS: &str = "permissions";

pub async fn permissions(inv: &Invocation, function: &str, output: &str) -> Finding {
    let check = PERMISSIONS;
    let Some(name) = inv.deployment.outputs.get(output) else {
        return Finding::fail(
            check,
            format!("{function}: the stack has no output {output}"),
            "deploy this version's template.yaml (it names each function in its outputs)",
        );
    };
    let role_arn = match inv
        .ctx
        .clients
        .lambda
        .get_function_configuration()
        .function_name(name)
        .send()
        .await
    {
        Ok(config) => config.role.unwrap_or_default(),
        Err(e) => {
            return call_failed(
                inv,
                check,
                "lambda",
                sdk_error("GetFunctionConfiguration", e),
            )
        }
    };
    let role = role_arn.rsplit('/').next().unwrap_or_default().to_string();
    let statements = match role_statements(inv, &role).await {
        Ok(statements) => statements,
        Err(finding) => return *finding,
    };
    let missing: Vec<&str> = required::actions(function)
        .into_iter()
        .filter(|action| !policy::allows(&statements, action))
        .collect();
    if missing.is_empty() {
        Finding::pass(
            check,
            format!(
                "{function}: role {role} allows the {} actions it calls",
                required::actions(function).len()
            ),
        )
    } else {
        Finding::fail(
            check,
            format!("{function}: role {role} does not allow {}", missing.join(", ")),
            "add them to the role's policy (redeploying the stack's template.yaml restores its policies); the function fails with AccessDenied without them",
        )
    }
}

/// Every statement of the role's inline and attached managed policies.
async fn role_statements(inv: &Invocation, role: &str) -> Result<Vec<Statement>, Box<Finding>> {
    let mut documents = inline_policies(inv, role).await?;
    documents.extend(attached_policies(inv, role).await?);
    let mut statements = Vec::new();
    for doc in documents {
        statements.extend(policy::parse(&doc).map_err(|e| {
            Box::new(Finding::fail(
                PERMISSIONS,
                format!("role {role}: {e}"),
                "fix the role's policy document",
            ))
        })?);
    }
    Ok(statements)
}

fn iam_failed(inv: &Invocation, error: kb_autosync_aws::AwsError) -> Box<Finding> {
    Box::new(call_failed(inv, PERMISSIONS, "iam", error))
}

/// The documents of the policies embedded in the role.
async fn inline_policies(inv: &Invocation, role: &str) -> Result<Vec<String>, Box<Finding>> {
    let iam = &inv.ctx.clients.iam;
    let inline = iam
        .list_role_policies()
        .role_name(role)
        .send()
        .await
        .map_err(|e| iam_failed(inv, sdk_error("ListRolePolicies", e)))?;
    let mut documents = Vec::new();
    for policy_name in inline.policy_names {
        let out = iam
            .get_role_policy()
            .role_name(role)
            .policy_name(&policy_name)
            .send()
            .await
            .map_err(|e| iam_failed(inv, sdk_error("GetRolePolicy", e)))?;
        documents.push(out.policy_document);
    }
    Ok(documents)
}

/// The documents of the managed policies attached to the role, each at its default version:
/// the only version that grants anything.
async fn attached_policies(inv: &Invocation, role: &str) -> Result<Vec<String>, Box<Finding>> {
    let iam = &inv.ctx.clients.iam;
    let attached = iam
        .list_attached_role_policies()
        .role_name(role)
        .send()
        .await
        .map_err(|e| iam_failed(inv, sdk_error("ListAttachedRolePolicies", e)))?;
    let mut documents = Vec::new();
    for policy in attached.attached_policies.unwrap_or_default() {
        let Some(arn) = policy.policy_arn else {
            continue;
        };
        let meta = iam
            .get_policy()
            .policy_arn(&arn)
            .send()
            .await
            .map_err(|e| iam_failed(inv, sdk_error("GetPolicy", e)))?;
        let Some(version) = meta.policy.and_then(|p| p.default_version_id) else {
            continue;
        };
        let out = iam
            .get_policy_version()
            .policy_arn(&arn)
            .version_id(version)
            .send()
            .await
            .map_err(|e| iam_failed(inv, sdk_error("GetPolicyVersion", e)))?;
        if let Some(doc) = out.policy_version.and_then(|v| v.document) {
            documents.push(doc);
        }
    }
    Ok(documents)
}

pub fn call_failed(
    inv: &Invocation,
    check: &str,
    service: &'static str,
    error: kb_autosync_aws::AwsError,
) -> Finding {
    let text = inv.ctx.fail(service, error).to_string();
    let (detail, hint) = match text.split_once("\n  hint: ") {
        Some((detail, hint)) => (detail.to_string(), hint.to_string()),
        None => (text, "see the error; the check could not run".to_string()),
    };
    Finding::fail(check, format!("could not check: {detail}"), hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(endpoint: &str, pending: bool) -> (String, String, bool) {
        ("email".into(), endpoint.into(), pending)
    }

    #[test]
    fn subscriptions_absent_pending_and_confirmed() {
        let topic = "arn:aws:sns:us-east-1:1:t";
        let none = subscription_finding(topic, &[]);
        assert!(!none.passed && none.detail.contains("no subscription"));
        let pending = subscription_finding(topic, &[sub("ops@example.com", true)]);
        assert!(
            !pending.passed && pending.detail.contains("pending confirmation"),
            "{}",
            pending.detail
        );
        let mixed = subscription_finding(
            topic,
            &[sub("ops@example.com", true), sub("dev@example.com", false)],
        );
        assert!(
            mixed.passed && mixed.detail.contains("email:dev@example.com"),
            "{}",
            mixed.detail
        );
    }
}

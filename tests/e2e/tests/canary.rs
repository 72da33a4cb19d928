//! `autosync canary` against the local stack: a healthy deployment passes every stage and shows
//! their timings; each way a change silently stops (no events from the bucket, a disabled rule,
//! a data source whose scope leaves the route out, an unknown knowledge base) fails at the stage
//! it breaks, with the cause and the fix; and no canary object is ever left in S3.

use std::process::Command;
use std::time::Duration;

use kb_autosync_e2e::*;
use kb_autosync_local::stack::project_root;
use kb_autosync_local::{observe, operate, LocalStack};
use serde_json::{json, Value};

const CANARY_PREFIX: &str = "docs/.kb-autosync-canary/";
const STAGES: [&str; 11] = [
    "knowledge-base",
    "uploaded",
    "recorded",
    "sync-requested",
    "execution",
    "covered",
    "indexed",
    "deleted",
    "delete-recorded",
    "delete-covered",
    "removed",
];

/// The shared runner, printing what it ran and how long it took.
fn autosync(stack: &LocalStack, args: &[&str]) -> Run {
    let run = kb_autosync_e2e::autosync(stack, args);
    println!(
        "$ autosync {} ({:.1}s)\n{}",
        args.join(" "),
        run.seconds,
        run.stdout
    );
    run
}

/// A canary interrupted with Ctrl-C (SIGINT) while it waits still deletes its object.
async fn assert_interrupted_canary_cleans_up(stack: &LocalStack) {
    let mut child = Command::new(project_root().join("target/debug/autosync"))
        .args(["--endpoint-url", &stack.info.moto_endpoint])
        .args([
            "--bedrock-endpoint-url",
            stack.info.emulator_endpoint.as_deref().unwrap(),
        ])
        .args(["--region", &stack.info.region, "canary", "--timeout", "120"])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("autosync runs");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        canary_objects(stack).await.len(),
        1,
        "the canary is waiting"
    );
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    assert!(kill.unwrap().success());
    let status = child.wait().unwrap();
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    assert_eq!(status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("interrupted (Ctrl-C)") && stdout.contains("deleted the canary object"),
        "{stdout}"
    );
    assert_eq!(canary_objects(stack).await, Vec::<String>::new());
}

/// Keys left under the canary prefix in S3.
async fn canary_objects(stack: &LocalStack) -> Vec<String> {
    observe::s3_objects(stack, CANARY_PREFIX)
        .await
        .unwrap()
        .into_iter()
        .map(|(key, _)| key)
        .collect()
}

/// The one failed stage of a `--json` canary, its findings' checks and fixes.
fn failure(run: &Run) -> (String, Vec<String>, String) {
    assert_eq!(
        run.code, 1,
        "the canary must fail:\n{}\n{}",
        run.stdout, run.stderr
    );
    let reports = run.json();
    let report = &reports[0];
    assert_eq!(report["passed"], false, "{report}");
    let checks = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["check"].as_str().unwrap().to_string())
        .collect();
    let text = report["findings"].to_string();
    (
        report["failed_stage"].as_str().unwrap().to_string(),
        checks,
        text,
    )
}

async fn set_bucket_events(stack: &LocalStack, on: bool) {
    let mut config = aws_sdk_s3::types::NotificationConfiguration::builder();
    if on {
        config = config.event_bridge_configuration(
            aws_sdk_s3::types::EventBridgeConfiguration::builder().build(),
        );
    }
    stack
        .s3()
        .put_bucket_notification_configuration()
        .bucket(BUCKET)
        .notification_configuration(config.build())
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn canary_passes_every_stage_on_a_healthy_stack_and_leaves_nothing_behind() {
    let stack = start(options("canary_healthy")).await;
    put(&stack, "docs/alpha.txt", "a").await;
    settle_count(&stack, 1, Duration::from_secs(60)).await;

    let run = autosync(&stack, &["canary", "--timeout", "60"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let stages = STAGES;
    for stage in stages {
        assert!(
            run.stdout.contains(&format!("PASS  {stage}")),
            "{stage} missing:\n{}",
            run.stdout
        );
    }
    assert!(
        run.stdout.contains("SYNCED by ingestion job"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("INDEXED in the knowledge base"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("passed in "), "{}", run.stdout);

    // --json: every stage passed in order, with durations that add up to the total.
    let reports = autosync(&stack, &["canary", "--timeout", "60", "--json"]).json();
    let report = &reports[0];
    assert_eq!(report["passed"], true, "{report}");
    assert_eq!(report["data_source_id"], DS);
    let recorded: Vec<&str> = report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(recorded, stages);
    let sum: f64 = report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["seconds"].as_f64().unwrap())
        .sum();
    let total = report["total_seconds"].as_f64().unwrap();
    assert!(total > 0.0 && (sum - total).abs() < 1.0, "{sum} vs {total}");

    // Nothing left: no object in S3, no document in the index but the user's own.
    assert_eq!(canary_objects(&stack).await, Vec::<String>::new());
    let documents = stack.emulator().documents(KB, DS).await.unwrap();
    let keys: Vec<&str> = documents.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(keys, ["docs/alpha.txt"], "{documents:?}");

    assert_canary_changes_are_marked_and_left_out(&stack).await;
}

/// After two canaries and one user upload: four canary changes (two creates, two deletes),
/// marked `origin: canary`, shown by `changes` only with --include-canary.
async fn assert_canary_changes_are_marked_and_left_out(stack: &LocalStack) {
    let changes = settle_count(stack, 5, Duration::from_secs(30)).await;
    let canary: Vec<_> = changes
        .iter()
        .filter(|c| c.key.starts_with(CANARY_PREFIX))
        .collect();
    assert_eq!(canary.len(), 4, "two creates and two deletes");
    assert!(
        canary.iter().all(|c| c.origin.as_deref() == Some("canary")),
        "{canary:?}"
    );
    let user_view = autosync(stack, &["changes", "--json"]).json();
    assert_eq!(user_view.as_array().unwrap().len(), 1, "{user_view}");
    let everything = autosync(stack, &["changes", "--include-canary", "--json"]).json();
    assert_eq!(everything.as_array().unwrap().len(), 5, "{everything}");
    assert!(everything
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["origin"] == "canary"));
}

#[tokio::test(flavor = "multi_thread")]
async fn canary_passes_when_the_changes_go_by_direct_ingestion() {
    // Auto mode: after the data source's first job, a single change is ingested directly.
    let stack = start(direct_options("canary_direct", "auto")).await;
    put(&stack, "docs/alpha.txt", "a").await;
    settle_count(&stack, 1, Duration::from_secs(60)).await;

    let reports = autosync(&stack, &["canary", "--timeout", "60", "--json"]).json();
    let report = &reports[0];
    assert_eq!(report["passed"], true, "{report}");
    let covered: Vec<&str> = report["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["stage"] == "covered" || s["stage"] == "delete-covered")
        .map(|s| s["detail"].as_str().unwrap())
        .collect();
    assert_eq!(covered.len(), 2, "{report}");
    assert!(
        covered
            .iter()
            .all(|d| d.starts_with("SYNCED by direct batch direct-")),
        "{covered:?}"
    );
    assert_eq!(canary_objects(&stack).await, Vec::<String>::new());
    let documents = stack.emulator().documents(KB, DS).await.unwrap();
    assert!(
        documents
            .iter()
            .all(|d| !d.key.starts_with(CANARY_PREFIX) || d.status == "NOT_FOUND"),
        "{documents:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn canary_fails_at_recorded_when_the_bucket_or_the_rule_sends_no_events() {
    let stack = start(options("canary_no_events")).await;

    // The bucket's EventBridge notifications are off: caught within the early check, not the
    // timeout, and the object is deleted.
    set_bucket_events(&stack, false).await;
    let run = autosync(&stack, &["canary", "--timeout", "120", "--json"]);
    let (stage, checks, text) = failure(&run);
    assert_eq!(stage, "recorded");
    assert_eq!(checks, ["bucket-eventbridge"], "{text}");
    assert!(
        text.contains("does not send events to Amazon EventBridge")
            && text.contains("Amazon EventBridge: On"),
        "{text}"
    );
    assert!(
        run.seconds < 60.0,
        "failed after {:.0}s, not early",
        run.seconds
    );
    assert_eq!(canary_objects(&stack).await, Vec::<String>::new());
    set_bucket_events(&stack, true).await;

    // The rule is disabled. A leftover of an earlier run that died is cleaned up on the way.
    let rule = operate::change_rule(&stack).await.unwrap();
    operate::set_change_rule(&stack, false).await.unwrap();
    put(
        &stack,
        "docs/.kb-autosync-canary/20200101T000000.000Z.txt",
        "left over",
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let run = autosync(&stack, &["canary", "--timeout", "2"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    for text in [
        "FAIL  recorded",
        "cause: eventbridge-rule",
        &format!("EventBridge rule {rule} is disabled"),
        &format!("aws events enable-rule --name {rule}"),
        "deleted s3://kb-autosync-e2e/docs/.kb-autosync-canary/20200101T000000.000Z.txt, left",
        "deleted the canary object",
        "failed at stage recorded",
    ] {
        assert!(
            run.stdout.contains(text),
            "{text:?} missing:\n{}",
            run.stdout
        );
    }
    assert_eq!(canary_objects(&stack).await, Vec::<String>::new());
    assert_interrupted_canary_cleans_up(&stack).await;
    let doctor = autosync(&stack, &["doctor"]);
    assert!(
        doctor.stdout.contains("FAIL  eventbridge-rule"),
        "{}",
        doctor.stdout
    );

    // Enabled again, the same deployment passes.
    operate::set_change_rule(&stack, true).await.unwrap();
    let run = autosync(&stack, &["canary", "--timeout", "60"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);

    assert_roles_are_named_at_their_stage(&stack).await;
}

/// Replaces a role's inline policies with one that allows only `actions`.
async fn narrow_role(iam: &aws_sdk_iam::Client, role: &str, actions: &[&str]) {
    let policies = iam
        .list_role_policies()
        .role_name(role)
        .send()
        .await
        .unwrap();
    for name in policies.policy_names {
        let delete = iam.delete_role_policy().role_name(role).policy_name(name);
        delete.send().await.unwrap();
    }
    let document = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]});
    iam.put_role_policy()
        .role_name(role)
        .policy_name("too-narrow")
        .policy_document(document.to_string())
        .send()
        .await
        .unwrap();
}

/// A role that lacks an action is named at the stage its function serves, and only there. (The
/// local stack does not enforce IAM, so a narrowed role cannot stop a stage by itself here: the
/// bucket's events are turned off to stop `recorded`, and the finding for the role of the
/// function that records changes must come with it; monitor-sync's, whose stages come later,
/// must not.)
async fn assert_roles_are_named_at_their_stage(stack: &LocalStack) {
    let iam = aws_sdk_iam::Client::new(stack.sdk_config());
    let event_processor = [
        "sqs:*",
        "s3:*",
        "bedrock:*",
        "kms:*",
        "dynamodb:BatchGetItem",
        "dynamodb:UpdateItem",
    ];
    narrow_role(
        &iam,
        "kb-autosync-EventProcessorFunction-role",
        &event_processor,
    )
    .await;
    narrow_role(
        &iam,
        "kb-autosync-MonitorSyncFunction-role",
        &["dynamodb:*", "bedrock:*", "kms:*"],
    )
    .await;
    set_bucket_events(stack, false).await;
    let run = autosync(stack, &["canary", "--timeout", "120", "--json"]);
    let (stage, checks, text) = failure(&run);
    assert_eq!(stage, "recorded");
    assert_eq!(checks, ["bucket-eventbridge", "permissions"], "{text}");
    assert!(
        text.contains("event-processor: role kb-autosync-EventProcessorFunction-role does not allow dynamodb:PutItem"),
        "{text}"
    );
    assert!(!text.contains("monitor-sync"), "{text}");
    assert_eq!(canary_objects(stack).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn canary_fails_at_indexed_when_the_data_source_scope_leaves_the_route_out() {
    let mut options = options("canary_scope");
    options.emulator_config = Some(json!({
        "knowledge_bases": [{"id": KB, "name": "e2e-kb", "data_sources": [
            {"id": DS, "name": "elsewhere", "bucket_arn": format!("arn:aws:s3:::{BUCKET}"), "inclusion_prefixes": ["other/"]}
        ]}],
        "jobs": {"starting_seconds": 5, "base_duration_seconds": 20, "per_document_seconds": 0.05, "stopping_seconds": 5}
    }));
    let stack = start(options).await;

    let run = autosync(&stack, &["canary", "--timeout", "60", "--json"]);
    let (stage, checks, text) = failure(&run);
    assert_eq!(stage, "indexed", "{}", run.stdout);
    assert_eq!(checks, ["data-source-scope"], "{text}");
    assert!(
        text.contains("s3://kb-autosync-e2e [other/]") && text.contains("UpdateDataSource"),
        "{text}"
    );
    let reports = run.json();
    let passed: Vec<&str> = reports[0]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["passed"] == true)
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        passed,
        [
            "knowledge-base",
            "uploaded",
            "recorded",
            "sync-requested",
            "execution",
            "covered"
        ]
    );
    assert_eq!(canary_objects(&stack).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn canary_fails_at_the_knowledge_base_when_bedrock_does_not_know_it() {
    // The emulator knows another knowledge base only: the stack's is unknown in the region.
    let mut options = options("canary_unknown_kb");
    options.emulator_config = Some(json!({
        "knowledge_bases": [{"id": "KBOTHER001", "name": "other", "data_sources": [
            {"id": "DSOTHER001", "name": "other", "bucket_arn": format!("arn:aws:s3:::{BUCKET}"), "inclusion_prefixes": [PREFIX]}
        ]}]
    }));
    let stack = start(options).await;

    let run = autosync(&stack, &["canary", "--timeout", "60", "--json"]);
    let (stage, checks, text) = failure(&run);
    assert_eq!(stage, "knowledge-base");
    assert_eq!(checks, ["knowledge-base"], "{text}");
    assert!(
        text.contains(&format!("knowledge base {KB} does not exist in us-east-1")),
        "{text}"
    );
    assert!(
        text.contains("check the stack parameter KnowledgeBaseId"),
        "{text}"
    );

    // --kb of a knowledge base no route syncs, and that Bedrock does not know either.
    let run = autosync(&stack, &["canary", "--kb", "KBMISSING1"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("FAIL  knowledge-base")
            && run.stdout.contains("no route of stack kb-autosync syncs knowledge base KBMISSING1, which does not exist in us-east-1"),
        "{}",
        run.stdout
    );
    // Nothing was written at all.
    assert!(observe::s3_objects(&stack, "").await.unwrap().is_empty());
}

/// Invokes the scheduled canary function as its schedule would; (payload, function error).
async fn invoke_canary_function(stack: &LocalStack) -> (Value, Option<String>) {
    operate::invoke_function(stack, "CanaryFunction")
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn scheduled_canary_emits_its_latency_or_fails_naming_the_stage() {
    let mut options = options("canary_scheduled");
    options.params.push(("CanarySchedule".into(), "15".into()));
    let stack = start(options).await;

    let (payload, error) = invoke_canary_function(&stack).await;
    assert_eq!(error, None, "{payload}");
    assert_eq!(payload[0]["passed"], true, "{payload}");
    let log = stack.function_log("canary");
    let point = log
        .lines()
        .find(|l| l.contains("\"CanaryLatencySeconds\":"))
        .unwrap_or_else(|| panic!("no CanaryLatencySeconds data point in the log:\n{log}"));
    let point: Value = serde_json::from_str(point).unwrap();
    assert_eq!(point["KnowledgeBaseId"], KB);
    assert_eq!(point["DataSourceId"], DS);
    assert!(
        point["CanaryLatencySeconds"].as_f64().unwrap() > 0.0,
        "{point}"
    );

    // A rule turned off: the invocation fails with the stage and the fix, and emits no point.
    operate::set_change_rule(&stack, false).await.unwrap();
    let (payload, error) = invoke_canary_function(&stack).await;
    assert!(error.is_some(), "{payload}");
    let message = payload["errorMessage"].as_str().unwrap_or_default();
    assert!(
        message.contains("at recorded") && message.contains("aws events enable-rule"),
        "{payload}"
    );
    let points = stack
        .function_log("canary")
        .matches("\"CanaryLatencySeconds\":")
        .count();
    assert_eq!(points, 1, "a failed canary emits no data point");
    assert_eq!(canary_objects(&stack).await, Vec::<String>::new());
}

//! The `autosync` operator CLI against the local stack: every command, its tables and JSON, the
//! errors a user meets, and `doctor` catching each setup mistake it knows.

use std::time::Duration;

use kb_autosync_e2e::*;
use kb_autosync_local::LocalStack;
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn status_changes_jobs_and_sync_show_what_happened() {
    let stack = start(options("cli_commands")).await;
    stack
        .emulator()
        .fail_documents("*broken*", "Unsupported file content")
        .await
        .unwrap();
    put(&stack, "docs/alpha.txt", "a").await;
    put(&stack, "docs/beta.txt", "b").await;
    put(&stack, "docs/broken.txt", "x").await;
    settle_count(&stack, 3, Duration::from_secs(60)).await;

    // status: one idle data source, nothing pending, one failed change, the last job COMPLETE.
    let status = autosync(&stack, &["status"]);
    assert_eq!(status.code, 0, "{}", status.stderr);
    for text in ["KNOWLEDGE BASE", KB, DS, "idle", "COMPLETE", "new 2"] {
        assert!(
            status.stdout.contains(text),
            "{text} missing:\n{}",
            status.stdout
        );
    }
    let rows = autosync(&stack, &["status", "--json"]).json();
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    let row = &rows[0];
    assert_eq!(row["state"], "idle");
    assert_eq!(row["pending_changes"], 0);
    assert_eq!(row["failed_changes"], 1);
    assert_eq!(row["last_job"]["status"], "COMPLETE");
    let job_id = row["last_job"]["job_id"].as_str().unwrap().to_string();

    // changes: every change with the job that covered it; the failed one with Bedrock's reason.
    let changes = autosync(&stack, &["changes"]);
    assert_eq!(changes.code, 0, "{}", changes.stderr);
    for text in [
        "docs/alpha.txt",
        "docs/broken.txt",
        "SYNCED",
        "FAILED",
        &job_id,
        "INDEXED",
        "Unsupported file content",
    ] {
        assert!(
            changes.stdout.contains(text),
            "{text} missing:\n{}",
            changes.stdout
        );
    }
    let all = autosync(&stack, &["changes", "--json"]).json();
    assert_eq!(all.as_array().unwrap().len(), 3);
    let alpha = all
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["key"] == "docs/alpha.txt")
        .unwrap();
    assert_eq!(alpha["status"], "SYNCED");
    assert_eq!(alpha["ingestion_job_id"], job_id.as_str());
    assert_eq!(alpha["document_status"], "INDEXED");
    let failed = autosync(&stack, &["changes", "--failed", "--json"]).json();
    assert_eq!(failed.as_array().unwrap().len(), 1, "{failed}");
    assert_eq!(failed[0]["key"], "docs/broken.txt");
    assert!(failed[0]["failure_reason"]
        .as_str()
        .unwrap()
        .contains("Unsupported file content"));
    let pending = autosync(&stack, &["changes", "--pending", "--json"]).json();
    assert_eq!(pending, json!([]));
    let prefixed = autosync(
        &stack,
        &["changes", "--prefix", "docs/b", "--limit", "1", "--json"],
    )
    .json();
    assert_eq!(prefixed.as_array().unwrap().len(), 1, "{prefixed}");
    assert!(prefixed[0]["key"].as_str().unwrap().starts_with("docs/b"));

    // jobs: the job with its statistics.
    let jobs_table = autosync(&stack, &["jobs"]);
    assert!(
        jobs_table.stdout.contains(&job_id) && jobs_table.stdout.contains("failed 1"),
        "{}",
        jobs_table.stdout
    );
    let job_rows = autosync(&stack, &["jobs", "--json"]).json();
    assert_eq!(job_rows.as_array().unwrap().len(), 1);
    assert_eq!(
        job_rows[0]["statistics_parsed"]["numberOfDocumentsFailed"],
        1
    );
    assert_eq!(job_rows[0]["change_count"], 2);
    assert_eq!(job_rows[0]["failed_change_count"], 1);

    // sync: starts a round through the queue; a second request joins it; one more job runs.
    // The job lasts 60 s of Bedrock time (6 s here), so the second request finds it running.
    stack.emulator().slow_jobs(60.0, 1).await.unwrap();
    let started = autosync(&stack, &["sync", "--kb", KB, "--json"]);
    assert_eq!(started.code, 0, "{}", started.stderr);
    let started = started.json();
    assert_eq!(started["outcome"], "started");
    let joined = autosync(&stack, &["sync", "--kb", KB, "--ds", DS]);
    assert_eq!(joined.code, 0, "{}", joined.stderr);
    let execution = started["execution_name"].as_str().unwrap();
    assert!(
        joined.stdout.contains("joined running execution") && joined.stdout.contains(execution),
        "{}",
        joined.stdout
    );
    eventually(
        Duration::from_secs(60),
        "the requested job to complete",
        || async {
            let jobs = autosync(&stack, &["jobs", "--json"]).json();
            jobs.as_array().unwrap().len() == 2 && jobs[0]["status"] == "COMPLETE"
        },
    )
    .await;

    // A job started in the console holds the data source: the new round waits for quota.
    stack
        .emulator()
        .start_foreign_job(KB, DS, 100.0)
        .await
        .unwrap();
    put(&stack, "docs/gamma.txt", "g").await;
    eventually(
        Duration::from_secs(30),
        "status to show the round waiting for quota",
        || async {
            let rows = autosync(&stack, &["status", "--json"]).json();
            rows[0]["state"] == "waiting_for_quota" && rows[0]["pending_changes"] == 1
        },
    )
    .await;
    let waiting = autosync(&stack, &["status"]);
    assert!(
        waiting.stdout.contains("waiting for quota"),
        "{}",
        waiting.stdout
    );
    settle_count(&stack, 4, Duration::from_secs(60)).await;

    // Errors say what is wrong and what to do.
    let unknown = autosync(&stack, &["sync", "--kb", "KBNOTROUTED"]);
    assert_eq!(unknown.code, 2);
    assert!(
        unknown
            .stderr
            .contains("KBNOTROUTED is not synced by stack"),
        "{}",
        unknown.stderr
    );
    let no_stack = autosync(&stack, &["--stack-name", "no-such-stack", "status"]);
    assert_eq!(no_stack.code, 2);
    assert!(
        no_stack.stderr.contains("DescribeStacks")
            && no_stack.stderr.contains("hint: no such stack"),
        "{}",
        no_stack.stderr
    );
    let unreachable = autosync_at(&stack, "http://127.0.0.1:9", &["status"]);
    assert_eq!(unreachable.code, 2);
    assert!(
        unreachable.stderr.contains("could not be reached"),
        "{}",
        unreachable.stderr
    );
}

fn failures(run: &Run) -> Vec<String> {
    run.stdout
        .lines()
        .filter(|l| l.starts_with("FAIL"))
        .map(str::to_string)
        .collect()
}

/// Asserts doctor exits 1 with exactly one failed check, `check`, whose line contains `text`.
fn assert_doctor_fails(stack: &LocalStack, check: &str, text: &str) {
    let run = autosync(stack, &["doctor"]);
    let failed = failures(&run);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(failed.len(), 1, "one failure expected:\n{}", run.stdout);
    assert!(
        failed[0].contains(check) && failed[0].contains(text),
        "expected {check} failing with {text:?}:\n{}",
        run.stdout
    );
    assert!(run.stdout.contains("fix:"), "{}", run.stdout);
}

async fn set_routes(stack: &LocalStack, lambda: &aws_sdk_lambda::Client, routes: &str) {
    let function = "kb-autosync-EventProcessorFunction";
    let config = lambda
        .get_function_configuration()
        .function_name(function)
        .send()
        .await
        .unwrap();
    let mut variables = config.environment.unwrap().variables.unwrap();
    variables.insert("ROUTES".into(), routes.into());
    let environment = aws_sdk_lambda::types::Environment::builder()
        .set_variables(Some(variables))
        .build();
    lambda
        .update_function_configuration()
        .function_name(function)
        .environment(environment)
        .send()
        .await
        .unwrap();
    let _ = stack;
}

fn route(kb: &str, ds: &str) -> String {
    json!([{"bucket": BUCKET, "prefix": PREFIX, "knowledge_base_id": kb, "data_source_id": ds}])
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_catches_each_misconfiguration() {
    // The route names no data source: the service resolves it from the knowledge base.
    let mut options = options("cli_doctor");
    for (key, value) in options.params.iter_mut() {
        if key == "DataSourceId" {
            value.clear();
        }
    }
    let stack = start(options).await;
    let sdk = stack.sdk_config();
    let lambda = aws_sdk_lambda::Client::new(sdk);
    let emulator = stack.emulator();

    let healthy = autosync(&stack, &["doctor"]);
    assert_eq!(healthy.code, 0, "{}\n{}", healthy.stdout, healthy.stderr);
    assert!(failures(&healthy).is_empty(), "{}", healthy.stdout);
    for check in [
        "bucket-eventbridge",
        "knowledge-base",
        "data-source",
        "data-source-scope",
        "ingestion-mode",
        "notifications",
        "dead-letter-queue",
        "permissions",
    ] {
        assert!(
            healthy.stdout.contains(&format!("PASS  {check}")),
            "{check}:\n{}",
            healthy.stdout
        );
    }

    // EventBridge notifications turned off on the bucket.
    let s3 = stack.s3();
    let off = aws_sdk_s3::types::NotificationConfiguration::builder().build();
    s3.put_bucket_notification_configuration()
        .bucket(BUCKET)
        .notification_configuration(off)
        .send()
        .await
        .unwrap();
    assert_doctor_fails(
        &stack,
        "bucket-eventbridge",
        "does not send events to Amazon EventBridge",
    );
    let on = aws_sdk_s3::types::NotificationConfiguration::builder()
        .event_bridge_configuration(aws_sdk_s3::types::EventBridgeConfiguration::builder().build())
        .build();
    s3.put_bucket_notification_configuration()
        .bucket(BUCKET)
        .notification_configuration(on)
        .send()
        .await
        .unwrap();

    // The knowledge base, or the data source, does not exist in the region.
    let original_routes = json!([{"bucket": BUCKET, "prefix": PREFIX, "knowledge_base_id": KB, "data_source_id": ""}]).to_string();
    set_routes(&stack, &lambda, &route("KBMISSING1", "")).await;
    assert_doctor_fails(
        &stack,
        "knowledge-base",
        "KBMISSING1 does not exist in us-east-1",
    );
    set_routes(&stack, &lambda, &route(KB, "DSMISSING1")).await;
    assert_doctor_fails(&stack, "data-source", "DSMISSING1 does not exist");

    // The data source's S3 scope does not cover the watched prefix, or covers more than it.
    emulator
        .add_knowledge_base(json!({"id": "KBNARROW01", "name": "other-prefix", "data_sources": [
            {"id": "DSNARROW01", "name": "other", "bucket_arn": format!("arn:aws:s3:::{BUCKET}"), "inclusion_prefixes": ["other/"]}]}))
        .await
        .unwrap();
    set_routes(&stack, &lambda, &route("KBNARROW01", "DSNARROW01")).await;
    assert_doctor_fails(&stack, "data-source-scope", "does not contain the route");
    emulator
        .add_knowledge_base(json!({"id": "KBWIDE0001", "name": "whole-bucket", "data_sources": [
            {"id": "DSWIDE0001", "name": "all", "bucket_arn": format!("arn:aws:s3:::{BUCKET}"), "inclusion_prefixes": []}]}))
        .await
        .unwrap();
    set_routes(&stack, &lambda, &route("KBWIDE0001", "DSWIDE0001")).await;
    assert_doctor_fails(&stack, "data-source-scope", "wider than the route");

    // The knowledge base has several data sources and the route names none.
    set_routes(&stack, &lambda, &original_routes).await;
    emulator
        .add_data_source(KB, json!({"id": "DSSECOND01", "name": "second", "bucket_arn": format!("arn:aws:s3:::{BUCKET}"), "inclusion_prefixes": ["archive/"]}))
        .await
        .unwrap();
    assert_doctor_fails(&stack, "data-source", "has 2 data sources");
    set_routes(&stack, &lambda, &route(KB, DS)).await;

    // No subscription on the notification topic.
    let sns = aws_sdk_sns::Client::new(sdk);
    let subscriptions = sns
        .list_subscriptions_by_topic()
        .topic_arn(&stack.info.topic_arn)
        .send()
        .await
        .unwrap();
    for s in subscriptions.subscriptions.unwrap_or_default() {
        sns.unsubscribe()
            .subscription_arn(s.subscription_arn.unwrap())
            .send()
            .await
            .unwrap();
    }
    assert_doctor_fails(&stack, "notifications", "has no subscription");
    // An e-mail subscription nobody confirmed (the local stack sends no mail, as AWS would wait).
    sns.subscribe()
        .topic_arn(&stack.info.topic_arn)
        .protocol("email")
        .endpoint("ops@example.com")
        .send()
        .await
        .unwrap();
    assert_doctor_fails(
        &stack,
        "notifications",
        "pending confirmation (ops@example.com)",
    );
    sns.subscribe()
        .topic_arn(&stack.info.topic_arn)
        .protocol("sqs")
        .endpoint("arn:aws:sqs:us-east-1:123456789012:kb-autosync-notifications")
        .send()
        .await
        .unwrap();

    // A message in a dead-letter queue.
    stack
        .sqs()
        .send_message()
        .queue_url(&stack.info.sync_dlq_url)
        .message_body("{\"kind\":\"bogus\"}")
        .send()
        .await
        .unwrap();
    assert_doctor_fails(
        &stack,
        "dead-letter-queue",
        "kb-autosync-SyncDLQ holds 1 message",
    );
    stack
        .sqs()
        .purge_queue()
        .queue_url(&stack.info.sync_dlq_url)
        .send()
        .await
        .unwrap();

    // A function's role without the permissions the function needs.
    let iam = aws_sdk_iam::Client::new(sdk);
    let role = "kb-autosync-MonitorSyncFunction-role";
    let policies = iam
        .list_role_policies()
        .role_name(role)
        .send()
        .await
        .unwrap();
    for name in policies.policy_names {
        iam.delete_role_policy()
            .role_name(role)
            .policy_name(name)
            .send()
            .await
            .unwrap();
    }
    iam.put_role_policy()
        .role_name(role)
        .policy_name("too-narrow")
        .policy_document(json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["dynamodb:*", "bedrock:*", "kms:*"], "Resource": "*"}]}).to_string())
        .send()
        .await
        .unwrap();
    assert_doctor_fails(
        &stack,
        "permissions",
        "monitor-sync: role kb-autosync-MonitorSyncFunction-role does not allow sns:Publish",
    );

    // --json carries the same findings for scripts.
    let findings = autosync(&stack, &["doctor", "--json"]).json();
    let failed: Vec<&Value> = findings
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["passed"] == false)
        .collect();
    assert_eq!(failed.len(), 1, "{findings}");
    assert_eq!(failed[0]["check"], "permissions");
    assert!(failed[0]["fix"].as_str().unwrap().contains("redeploying"));
}

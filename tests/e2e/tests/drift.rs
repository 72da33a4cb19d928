//! `autosync drift` against the local stack: changes the service never saw (bucket notifications
//! off, the most common slip) show up as missing, stale and orphaned documents, a document
//! Bedrock failed as failed; an index equal to S3 is clean.

use std::time::Duration;

use kb_autosync_e2e::*;
use kb_autosync_local::{observe, operate, LocalStack};
use serde_json::{json, Value};

/// `autosync ARGS`: (exit code, stdout); 0 (in sync) and 1 (drift) are the answers expected.
fn run(stack: &LocalStack, args: &[&str]) -> (i32, String) {
    let run = autosync(stack, args);
    assert!(
        run.code == 0 || run.code == 1,
        "autosync {args:?} exited {}: {}\n{}",
        run.code,
        run.stderr,
        run.stdout
    );
    (run.code, run.stdout)
}

fn keys(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            k.as_str()
                .unwrap_or_else(|| k["key"].as_str().unwrap())
                .to_string()
        })
        .collect()
}

async fn notifications(stack: &LocalStack, on: bool) {
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
async fn drift_finds_what_the_service_never_saw_and_reconcile_repairs_it() {
    let mut options = options("drift");
    // Real time: S3's LastModified and the emulator's document timestamps are then comparable,
    // as in AWS.
    options.time_scale = 1.0;
    options.emulator_config = Some(json!({
        "knowledge_bases": single_source_config()["knowledge_bases"],
        "jobs": {"starting_seconds": 1, "base_duration_seconds": 3, "per_document_seconds": 0.01, "stopping_seconds": 1}
    }));
    let stack = start(options).await;
    stack
        .emulator()
        .fail_documents("docs/encrypted.pdf", "The file is encrypted")
        .await
        .unwrap();
    for key in ["docs/a.txt", "docs/b.txt", "docs/encrypted.pdf"] {
        put(&stack, key, "first").await;
    }
    settle_count(&stack, 3, Duration::from_secs(120)).await;
    let (code, out) = run(&stack, &["--json", "drift"]);
    let clean: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(code, 1, "the failed document is drift: {out}");
    assert_eq!(keys(&clean[0]["failed"]), vec!["docs/encrypted.pdf"]);
    assert!(clean[0]["failed"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("encrypted"));
    for category in ["missing", "stale", "orphaned"] {
        assert!(keys(&clean[0][category]).is_empty(), "{category}: {out}");
    }

    // Notifications off: three changes the service never hears of.
    notifications(&stack, false).await;
    tokio::time::sleep(Duration::from_millis(1100)).await; // S3 timestamps have 1 s precision
    put(&stack, "docs/a.txt", "second").await;
    put(&stack, "docs/c.txt", "new").await;
    observe::delete_object(&stack, "docs/b.txt").await.unwrap();
    let (code, out) = run(&stack, &["--json", "drift", "--kb", KB]);
    assert_eq!(code, 1, "{out}");
    let drift: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(drift.as_array().unwrap().len(), 1);
    assert_eq!(keys(&drift[0]["missing"]), vec!["docs/c.txt"]);
    assert_eq!(keys(&drift[0]["stale"]), vec!["docs/a.txt"]);
    assert_eq!(keys(&drift[0]["orphaned"]), vec!["docs/b.txt"]);
    assert_eq!(keys(&drift[0]["failed"]), vec!["docs/encrypted.pdf"]);
    assert_eq!(drift[0]["objects"], 3);

    let (code, table) = run(&stack, &["drift"]);
    assert_eq!(code, 1);
    for expected in [
        "MISSING",
        "docs/c.txt",
        "orphaned (in the index, gone from S3): 1",
        "autosync reconcile",
    ] {
        assert!(table.contains(expected), "{expected}:\n{table}");
    }

    // Reconcile records the three as changes (twice in a row: the second records nothing new),
    // they sync like any other change, and drift is left with the failed document only.
    let (code, out) = run(&stack, &["--json", "reconcile"]);
    assert_eq!(code, 0, "{out}");
    let first: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(first[0]["recorded"], 3, "{out}");
    let (_, out) = run(&stack, &["--json", "reconcile"]);
    let second: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(second[0]["recorded"], 0, "{out}");
    // Still PENDING, they are in flight (once SYNCED, they are no longer drift).
    let untouched =
        second[0]["in_flight"].as_u64().unwrap() + second[0]["already_recorded"].as_u64().unwrap();
    assert_eq!(untouched, 3, "{out}");
    let changes = settle_count(&stack, 6, Duration::from_secs(120)).await;
    let reconciled: Vec<_> = changes
        .iter()
        .filter(|c| c.origin.as_deref() == Some("reconcile"))
        .collect();
    assert_eq!(reconciled.len(), 3, "{changes:?}");
    assert!(reconciled
        .iter()
        .all(|c| c.status == kb_autosync_core::change::ChangeStatus::Synced));
    let (code, out) = run(&stack, &["--json", "drift"]);
    assert_eq!(code, 1, "the failed document stays: {out}");
    let after: Value = serde_json::from_str(&out).unwrap();
    for category in ["missing", "stale", "orphaned"] {
        assert!(keys(&after[0][category]).is_empty(), "{category}: {out}");
    }
    assert_index_matches_s3(&stack, KB, DS, PREFIX).await;
    notifications(&stack, true).await;
}

/// The `DriftedDocuments` data points the drift-check function logged so far, in order.
fn drifted_documents_points(stack: &LocalStack) -> Vec<f64> {
    stack
        .function_log("drift-check")
        .lines()
        .filter(|l| l.contains("\"DriftedDocuments\":"))
        .map(|l| {
            let point: Value = serde_json::from_str(l).unwrap();
            assert_eq!(point["KnowledgeBaseId"], KB, "{point}");
            assert_eq!(point["DataSourceId"], DS, "{point}");
            point["DriftedDocuments"].as_f64().unwrap()
        })
        .collect()
}

async fn drift_notifications(stack: &LocalStack) -> Vec<Value> {
    observe::take_notifications(stack)
        .await
        .unwrap()
        .into_iter()
        .filter(|n| n.subject.contains("Drift"))
        .map(|n| {
            assert_eq!(n.subject, "Bedrock KB Drift REPAIRED");
            n.body
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_scheduled_drift_check_repairs_what_events_never_told_and_reports_it() {
    let mut options = options("drift_scheduled");
    options.time_scale = 1.0;
    options
        .params
        .push(("DriftCheckSchedule".into(), "1440".into()));
    options.emulator_config = Some(json!({
        "knowledge_bases": single_source_config()["knowledge_bases"],
        "jobs": {"starting_seconds": 1, "base_duration_seconds": 3, "per_document_seconds": 0.01, "stopping_seconds": 1}
    }));
    let stack = start(options).await;

    // Objects the service never heard of, as if uploaded before it was deployed: the rule off.
    operate::set_change_rule(&stack, false).await.unwrap();
    put(&stack, "docs/before-1.txt", "old").await;
    put(&stack, "docs/before-2.txt", "old").await;
    let (report, error) = operate::invoke_function(&stack, "DriftCheckFunction")
        .await
        .unwrap();
    assert_eq!(error, None, "{report}");
    assert_eq!(report["notified"], true, "{report}");
    assert_eq!(report["data_sources"][0]["missing"], 2, "{report}");
    assert_eq!(report["data_sources"][0]["recorded_changes"], 2, "{report}");
    assert_eq!(drifted_documents_points(&stack), vec![2.0]);
    let sent = drift_notifications(&stack).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        sent[0]["data_sources"][0]["examples"]["missing"],
        json!(["docs/before-1.txt", "docs/before-2.txt"])
    );
    operate::set_change_rule(&stack, true).await.unwrap();
    let changes = settle_count(&stack, 2, Duration::from_secs(120)).await;
    assert!(changes
        .iter()
        .all(|c| c.origin.as_deref() == Some("reconcile")));
    assert_all_synced(&stack, &changes).await;

    // The rule off again: an overwrite, a delete and a new object go unheard.
    operate::set_change_rule(&stack, false).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await; // S3 timestamps have 1 s precision
    put(&stack, "docs/before-1.txt", "new").await;
    observe::delete_object(&stack, "docs/before-2.txt")
        .await
        .unwrap();
    put(&stack, "docs/later.txt", "new").await;
    let (report, error) = operate::invoke_function(&stack, "DriftCheckFunction")
        .await
        .unwrap();
    assert_eq!(error, None, "{report}");
    let source = &report["data_sources"][0];
    for (category, count) in [("missing", 1), ("stale", 1), ("orphaned", 1)] {
        assert_eq!(source[category], count, "{category}: {report}");
    }
    assert_eq!(source["recorded_changes"], 3, "{report}");
    assert_eq!(drift_notifications(&stack).await.len(), 1);
    operate::set_change_rule(&stack, true).await.unwrap();
    let changes = settle_count(&stack, 5, Duration::from_secs(120)).await;
    assert_all_synced(&stack, &changes).await;

    // Repaired: the next check finds nothing, says so with a zero, and sends nothing.
    let (report, error) = operate::invoke_function(&stack, "DriftCheckFunction")
        .await
        .unwrap();
    assert_eq!(error, None, "{report}");
    assert_eq!(report["notified"], false, "{report}");
    assert_eq!(report["data_sources"], json!([]), "{report}");
    assert_eq!(drifted_documents_points(&stack), vec![2.0, 3.0, 0.0]);
    assert!(drift_notifications(&stack).await.is_empty());
    assert_index_matches_s3(&stack, KB, DS, PREFIX).await;
}

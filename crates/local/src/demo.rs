//! `make demo`: the service end to end on the local stack, as a user would see it.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kb_autosync_core::change::{ChangeRecord, ChangeStatus};
use serde_json::json;

use crate::invariants;
use crate::observe::{self, Notification};
use crate::stack::project_root;
use crate::{LocalStack, StackOptions};

pub const KNOWLEDGE_BASE_ID: &str = "KBDEMO0001";
pub const DATA_SOURCE_ID: &str = "DSDEMO0001";
pub const BUCKET: &str = "kb-autosync-demo";
pub const PREFIX: &str = "docs/";

/// Stack options with timings a person can watch: seconds instead of minutes. The emulator
/// runs 10x faster than Bedrock (a 30 s job takes 3 s; StartIngestionJob allows 1 call/s).
pub fn demo_options(state_dir: PathBuf) -> StackOptions {
    StackOptions {
        state_dir,
        params: [
            ("KnowledgeBaseId", KNOWLEDGE_BASE_ID),
            ("DataSourceId", DATA_SOURCE_ID),
            ("S3BucketName", BUCKET),
            ("S3KeyPrefix", PREFIX),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        env: fast_timings(),
        emulator_config: Some(json!({
            "knowledge_bases": [{"id": KNOWLEDGE_BASE_ID, "name": "demo-kb", "data_sources": [
                {"id": DATA_SOURCE_ID, "name": "demo-docs", "bucket_arn": format!("arn:aws:s3:::{BUCKET}"), "inclusion_prefixes": [PREFIX]}
            ]}],
            "jobs": {"starting_seconds": 5, "base_duration_seconds": 20, "per_document_seconds": 0.2, "stopping_seconds": 5}
        })),
        time_scale: 10.0,
        workers: 2,
        sweep_every_seconds: Some(60),
        overrides: Vec::new(),
    }
}

/// The template's timing parameters have production minimums; locally the functions get
/// second-scale values through their environment instead.
pub fn fast_timings() -> Vec<(String, String)> {
    [
        ("SYNC_DELAY_SECONDS", "2"),
        ("MONITOR_INTERVAL_SECONDS", "1"),
        ("QUOTA_WAIT_SECONDS", "1"),
        ("RETRY_BACKOFF_SECONDS", "1"),
        ("START_JOB_MIN_INTERVAL_SECONDS", "1"),
        ("LEASE_CLAIM_GRACE_SECONDS", "5"),
        ("DIRECT_SYNC_DELAY_SECONDS", "1"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn step(text: &str) {
    println!("\n==> {text}");
}

fn print_notifications(notifications: &[Notification]) {
    for n in notifications {
        let b = &n.body;
        println!(
            "    [SNS] {:<32} job {} changes {} stats new={} modified={} deleted={} failed={}{}",
            n.subject,
            b["job_id"].as_str().unwrap_or("-"),
            b["processed_changes"],
            b["statistics"]["numberOfNewDocumentsIndexed"],
            b["statistics"]["numberOfModifiedDocumentsIndexed"],
            b["statistics"]["numberOfDocumentsDeleted"],
            b["statistics"]["numberOfDocumentsFailed"],
            b["duration_seconds"]
                .as_f64()
                .map(|d| format!(" in {d:.1} s"))
                .unwrap_or_default()
        );
    }
}

fn print_changes(changes: &[ChangeRecord], limit: usize) {
    println!(
        "    {:<34} {:<7} {:<8} {:<14} recorded at",
        "key", "type", "status", "job"
    );
    let skip = changes.len().saturating_sub(limit);
    if skip > 0 {
        println!("    ... {skip} earlier changes");
    }
    for c in &changes[skip..] {
        println!(
            "    {:<34} {:<7} {:<8} {:<14} {}",
            c.key,
            c.change_type.as_str(),
            format!("{:?}", c.status).to_uppercase(),
            c.ingestion_job_id.as_deref().unwrap_or("-"),
            c.timestamp
        );
    }
}

async fn settle(stack: &LocalStack) -> Result<Vec<ChangeRecord>, String> {
    let changes = invariants::wait_until_settled(stack, Duration::from_secs(180)).await?;
    print_notifications(&observe::take_notifications(stack).await?);
    Ok(changes)
}

pub async fn run() -> Result<(), String> {
    let started = Instant::now();
    let state_dir = project_root().join(".local/demo");
    step(
        "starting the local stack (moto, Bedrock Agent emulator, the functions, the state machine)",
    );
    let stack = LocalStack::start(demo_options(state_dir.clone()))
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "    up in {:.1} s; logs in {}",
        started.elapsed().as_secs_f64(),
        stack.info.logs_dir.display()
    );

    step("uploading 5 documents to s3://kb-autosync-demo/docs/");
    for (name, text) in [
        ("guide.md", "# Guide\nHow to use the product."),
        ("faq.txt", "Q: Does it sync? A: Yes."),
        ("pricing.html", "<h1>Pricing</h1>"),
        ("release-notes.md", "## 1.0\nFirst release."),
        ("data.csv", "a,b\n1,2\n"),
    ] {
        observe::put_object(&stack, &format!("{PREFIX}{name}"), text.as_bytes()).await?;
    }
    settle(&stack).await?;

    step("overwriting docs/guide.md and deleting docs/faq.txt");
    observe::put_object(
        &stack,
        "docs/guide.md",
        b"# Guide\nHow to use the product, version 2.",
    )
    .await?;
    observe::delete_object(&stack, "docs/faq.txt").await?;
    settle(&stack).await?;

    step("uploading a burst of 30 documents");
    for i in 0..30 {
        observe::put_object(
            &stack,
            &format!("{PREFIX}burst/note-{i:02}.txt"),
            format!("note {i}").as_bytes(),
        )
        .await?;
    }
    let changes = settle(&stack).await?;

    step("tracking table (latest 12 changes)");
    print_changes(&changes, 12);

    step("checking the guarantees");
    let jobs = stack.emulator().jobs().await?;
    // In `auto` mode (the default) changes after the first job are synced by direct batches.
    let batches = invariants::direct_batches(&observe::job_records(&stack).await?);
    invariants::every_change_synced_by_a_later_job_or_batch(&changes, &jobs, &batches)?;
    invariants::no_overlapping_jobs_per_knowledge_base(&jobs)?;
    let indexed =
        invariants::index_matches_s3(&stack, KNOWLEDGE_BASE_ID, DATA_SOURCE_ID, PREFIX).await?;
    println!(
        "    every change SYNCED by a job or direct batch that started after it was recorded: yes"
    );
    println!("    emulator index == S3 scope: yes ({indexed} documents)");

    let synced = changes
        .iter()
        .filter(|c| c.status == ChangeStatus::Synced)
        .count();
    step("summary");
    println!("    changes recorded: {}", changes.len());
    println!("    changes synced:   {synced}");
    println!(
        "    jobs started:     {}",
        jobs.iter().filter(|j| j.origin == "api").count()
    );
    println!(
        "    wall time:        {:.1} s",
        started.elapsed().as_secs_f64()
    );
    println!("\nTo keep a stack up and drive it yourself: `make up`, then for example");
    println!("    aws --endpoint-url <moto endpoint it prints> s3 cp README.md s3://{BUCKET}/{PREFIX}readme.md");
    drop(stack);
    Ok(())
}

//! How evenly the account's job slots are shared: N data sources (one knowledge base each) on
//! one bucket, S job slots, and a trickle of uploads on every data source at once, in job mode.
//! Prints, per data source, upload -> SYNCED p50 and p99, and the worst data source's p99.
//!
//! `cargo run --release -p kb-autosync-bench --bin fair-share-bench -- --sources 20 --slots 5`

// The bench crate's own nearest-rank percentile (it has no library target).
#[path = "../stats.rs"]
#[allow(dead_code)]
mod stats;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use clap::Parser;
use kb_autosync_core::change::ChangeStatus;
use kb_autosync_local::stack::project_root;
use kb_autosync_local::{invariants, observe, LocalStack, StackOptions};
use serde_json::{json, Value};

const BUCKET: &str = "kb-autosync-bench";

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 20)]
    sources: usize,
    #[arg(long, default_value_t = 5)]
    slots: usize,
    /// Seconds between two uploads to one data source.
    #[arg(long, default_value_t = 20)]
    every: u64,
    /// Seconds the trickle lasts.
    #[arg(long, default_value_t = 300)]
    duration: u64,
    /// Emulated seconds of a job (its base duration); the emulator runs 20x faster.
    #[arg(long, default_value_t = 120.0)]
    job_seconds: f64,
    /// Where the function binaries are (as `make bench` builds them).
    #[arg(long, default_value = "target/release")]
    bin_dir: std::path::PathBuf,
}

fn source(i: usize) -> (String, String, String) {
    (
        format!("KBFAIR{i:04}"),
        format!("DSFAIR{i:04}"),
        format!("s{i:02}/"),
    )
}

fn options(args: &Args) -> StackOptions {
    let (mut knowledge_bases, mut routes) = (Vec::new(), Vec::new());
    for i in 1..=args.sources {
        let (kb, ds, prefix) = source(i);
        knowledge_bases.push(json!({"id": kb, "name": kb, "data_sources": [
            {"id": ds, "name": ds, "bucket_arn": format!("arn:aws:s3:::{BUCKET}"), "inclusion_prefixes": [prefix]}
        ]}));
        routes.push(json!({"bucket": BUCKET, "prefix": prefix, "knowledge_base_id": kb, "data_source_id": ds}));
    }
    let (kb, ds, _) = source(1);
    let env = [
        ("ROUTES", Value::Array(routes).to_string()),
        ("MAX_CONCURRENT_JOBS_PER_ACCOUNT", args.slots.to_string()),
        ("SYNC_DELAY_SECONDS", "5".into()),
        ("MONITOR_INTERVAL_SECONDS", "2".into()),
        ("QUOTA_WAIT_SECONDS", "10".into()),
        ("START_JOB_MIN_INTERVAL_SECONDS", "1".into()),
        ("RETRY_BACKOFF_SECONDS", "2".into()),
        ("LEASE_CLAIM_GRACE_SECONDS", "10".into()),
    ];
    StackOptions {
        state_dir: project_root().join(".local/bench/fair-share"),
        params: [
            ("KnowledgeBaseId", kb.as_str()),
            ("DataSourceId", ds.as_str()),
            ("S3BucketName", BUCKET),
            ("S3KeyPrefix", ""),
            ("IngestionMode", "job"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .to_vec(),
        env: env.map(|(k, v)| (k.to_string(), v)).to_vec(),
        emulator_config: Some(json!({
            "knowledge_bases": knowledge_bases,
            "jobs": {"starting_seconds": 10, "base_duration_seconds": args.job_seconds, "per_document_seconds": 1, "stopping_seconds": 10}
        })),
        time_scale: 20.0,
        workers: 2,
        sweep_every_seconds: None,
        overrides: Vec::new(),
    }
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    // The launcher picks the function binaries from here.
    std::env::set_var("KB_AUTOSYNC_BIN_DIR", project_root().join(&args.bin_dir));
    let mut stack = match LocalStack::start(options(&args)).await {
        Ok(stack) => stack,
        Err(e) => {
            eprintln!("error: the local stack did not start: {e}");
            std::process::exit(1);
        }
    };
    let result = run(&stack, &args).await;
    stack.stop();
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn run(stack: &LocalStack, args: &Args) -> Result<(), String> {
    let started = Instant::now();
    let mut round = 0;
    while started.elapsed() < Duration::from_secs(args.duration) {
        for i in 1..=args.sources {
            let key = format!("{}doc-{round}.txt", source(i).2);
            observe::put_object(stack, &key, key.as_bytes()).await?;
        }
        round += 1;
        tokio::time::sleep(Duration::from_secs(args.every)).await;
    }
    let changes = invariants::wait_until_settled(stack, Duration::from_secs(1800)).await?;
    let jobs = stack.emulator().jobs().await?;
    let throttled = stack.emulator().state().await?["errors_by_operation"]["ListIngestionJobs"]
        ["ThrottlingException"]
        .as_u64()
        .unwrap_or(0);
    let mut by_source: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for change in changes.iter().filter(|c| c.status == ChangeStatus::Synced) {
        let (Some(recorded), Some(synced)) = (
            instant(&change.timestamp),
            change.synced_at.as_deref().and_then(instant),
        ) else {
            continue;
        };
        by_source
            .entry(change.data_source_id.clone())
            .or_default()
            .push((synced - recorded).num_milliseconds() as f64 / 1000.0);
    }
    let all: Vec<f64> = by_source.values().flatten().copied().collect();
    let p99s: Vec<(String, f64)> = by_source
        .iter()
        .map(|(ds, samples)| (ds.clone(), p(samples, 99.0)))
        .collect();
    let worst = p99s
        .iter()
        .cloned()
        .fold((String::new(), 0.0), |a, b| if b.1 > a.1 { b } else { a });
    println!("| data sources | slots | changes | jobs | peak jobs | upload -> SYNCED p50 | p99 | worst data source's p99 | ListIngestionJobs throttled |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {} | {} | {} | {} | {:.0} s | {:.0} s | {:.0} s ({}) | {throttled} |",
        args.sources,
        args.slots,
        all.len(),
        jobs.iter().filter(|j| j.origin == "api").count(),
        invariants::peak_concurrency(&jobs),
        p(&all, 50.0),
        p(&all, 99.0),
        worst.1,
        worst.0
    );
    println!("\nper data source p50 / p99 (s):");
    for (ds, samples) in &by_source {
        println!("  {ds}: {:.0} / {:.0}", p(samples, 50.0), p(samples, 99.0));
    }
    Ok(())
}

fn instant(rfc3339: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// Percentile `q` (0..=100) in seconds, 0 without samples.
fn p(samples: &[f64], q: f64) -> f64 {
    stats::percentile(samples, q).unwrap_or(0.0)
}

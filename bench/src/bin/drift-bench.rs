//! How long `autosync drift` and `autosync reconcile` take, and how much memory drift needs, for
//! a data source of N objects on the local stack. For each N: N objects are uploaded with the
//! change rule off (the service hears of none), one ingestion job indexes them, then 1% are
//! overwritten, 0.5% deleted and 0.5% added, still unheard. `drift` must find exactly those;
//! its wall time and peak RSS (GNU time) are printed, then reconcile's wall time.
//!
//! `cargo run --release -p kb-autosync-bench --bin drift-bench -- --objects 10000,100000`

use std::process::Command;
use std::time::{Duration, Instant};

use clap::Parser;
use kb_autosync_local::stack::project_root;
use kb_autosync_local::{operate, LocalStack, StackOptions};
use serde_json::{json, Value};

const BUCKET: &str = "kb-autosync-bench";
const KB: &str = "KBBENCH001";
const DS: &str = "DSBENCH001";
const PREFIX: &str = "docs/";

#[derive(Parser)]
struct Args {
    /// Object counts, one local stack each.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    objects: Vec<usize>,
    /// Directory of the `autosync` binary (a release build is what a user runs).
    #[arg(long, default_value = "target/release")]
    bin_dir: String,
}

struct Row {
    objects: usize,
    upload_s: f64,
    drift_s: f64,
    drift_rss_mb: f64,
    drifted: u64,
    reconcile_s: f64,
    recorded: u64,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let mut rows = Vec::new();
    for &n in &args.objects {
        match measure(n, &args.bin_dir).await {
            Ok(row) => rows.push(row),
            Err(e) => {
                eprintln!("error: {n} objects: {e}");
                std::process::exit(1);
            }
        }
    }
    println!("| objects | drifted | drift (wall) | drift peak RSS | reconcile (wall) | recorded | upload (set-up) |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {:.1} s | {:.0} MB | {:.1} s | {} | {:.0} s |",
            r.objects, r.drifted, r.drift_s, r.drift_rss_mb, r.reconcile_s, r.recorded, r.upload_s
        );
    }
}

fn options(n: usize) -> StackOptions {
    StackOptions {
        state_dir: project_root().join(format!(".local/bench/drift-{n}")),
        params: [
            ("KnowledgeBaseId", KB),
            ("DataSourceId", DS),
            ("S3BucketName", BUCKET),
            ("S3KeyPrefix", PREFIX),
            ("IngestionMode", "job"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .to_vec(),
        env: kb_autosync_local::demo::fast_timings(),
        emulator_config: Some(json!({
            "knowledge_bases": [{"id": KB, "name": "bench", "data_sources": [
                {"id": DS, "name": "bench", "bucket_arn": format!("arn:aws:s3:::{BUCKET}"), "inclusion_prefixes": [PREFIX]}
            ]}],
            "jobs": {"starting_seconds": 1, "base_duration_seconds": 2, "per_document_seconds": 0.0, "stopping_seconds": 1}
        })),
        time_scale: 1.0,
        workers: 1,
        sweep_every_seconds: None,
        overrides: Vec::new(),
    }
}

async fn measure(n: usize, bin_dir: &str) -> Result<Row, String> {
    let mut stack = LocalStack::start(options(n))
        .await
        .map_err(|e| e.to_string())?;
    operate::set_change_rule(&stack, false).await?;
    let started = Instant::now();
    put_all(
        &stack,
        (0..n).map(|i| format!("{PREFIX}{i:07}.txt")).collect(),
    )
    .await?;
    let upload_s = started.elapsed().as_secs_f64();
    let emulator = stack.emulator();
    let job = emulator.start_foreign_job(KB, DS, 1.0).await?;
    wait_for_job(&stack, &job).await?;
    tokio::time::sleep(Duration::from_millis(1100)).await; // S3 timestamps: whole seconds
    let (changed, gone, added) = (n / 100, n / 200, n / 200);
    put_all(
        &stack,
        (0..changed)
            .map(|i| format!("{PREFIX}{:07}.txt", i * 100))
            .collect(),
    )
    .await?;
    for i in 0..gone {
        let key = format!("{PREFIX}{:07}.txt", i * 200 + 1);
        stack
            .s3()
            .delete_object()
            .bucket(BUCKET)
            .key(&key)
            .send()
            .await
            .map_err(|e| format!("delete {key}: {e:?}"))?;
    }
    put_all(
        &stack,
        (0..added)
            .map(|i| format!("{PREFIX}new-{i:07}.txt"))
            .collect(),
    )
    .await?;
    let (drift_s, drift_rss_mb, drift) = run_timed(&stack, bin_dir, &["--json", "drift"])?;
    let drifted = ["missing", "stale", "orphaned"]
        .iter()
        .map(|c| drift[0][c].as_array().map_or(0, |a| a.len() as u64))
        .sum::<u64>();
    let expected = (changed + gone + added) as u64;
    if drifted != expected {
        return Err(format!(
            "drift found {drifted} documents, {expected} expected"
        ));
    }
    let (reconcile_s, _, reconcile) = run_timed(&stack, bin_dir, &["--json", "reconcile"])?;
    let recorded = reconcile[0]["recorded"].as_u64().unwrap_or(0);
    stack.stop();
    Ok(Row {
        objects: n,
        upload_s,
        drift_s,
        drift_rss_mb,
        drifted,
        reconcile_s,
        recorded,
    })
}

async fn put_all(stack: &LocalStack, keys: Vec<String>) -> Result<(), String> {
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in keys.chunks(keys.len().div_ceil(32).max(1)) {
        let (s3, chunk) = (stack.s3(), chunk.to_vec());
        tasks.spawn(async move {
            for key in chunk {
                s3.put_object()
                    .bucket(BUCKET)
                    .key(&key)
                    .body(key.clone().into_bytes().into())
                    .send()
                    .await
                    .map_err(|e| format!("put {key}: {e:?}"))?;
            }
            Ok::<(), String>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.map_err(|e| e.to_string())??;
    }
    Ok(())
}

async fn wait_for_job(stack: &LocalStack, job_id: &str) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(3600);
    while Instant::now() < deadline {
        let jobs = stack.emulator().jobs().await?;
        if jobs
            .iter()
            .any(|j| j.ingestion_job_id == job_id && j.status == "COMPLETE")
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(format!("job {job_id} did not complete"))
}

/// Runs `autosync ARGS` under GNU time: (wall seconds, peak RSS in MB, JSON output).
fn run_timed(
    stack: &LocalStack,
    bin_dir: &str,
    args: &[&str],
) -> Result<(f64, f64, Value), String> {
    let binary = project_root().join(bin_dir).join("autosync");
    let rss_file = std::env::temp_dir().join("drift-bench-rss");
    let started = Instant::now();
    let output = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(&rss_file)
        .arg(&binary)
        .args(["--endpoint-url", &stack.info.moto_endpoint])
        .args([
            "--bedrock-endpoint-url",
            stack.info.emulator_endpoint.as_deref().unwrap_or_default(),
        ])
        .args(["--region", &stack.info.region])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    let seconds = started.elapsed().as_secs_f64();
    // The last line: GNU time writes "Command exited with non-zero status 1" first when drift
    // finds drift.
    let kb: f64 = std::fs::read_to_string(&rss_file)
        .unwrap_or_default()
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0.0);
    let value = serde_json::from_slice(&output.stdout).map_err(|e| {
        format!(
            "autosync {args:?}: not JSON ({e}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    Ok((seconds, kb / 1024.0, value))
}

//! Shared set-up of the end-to-end suites: a fresh local stack per test, with second-scale
//! timings and a Bedrock emulator running 10x faster than Bedrock.

use std::process::Command;
use std::time::{Duration, Instant};

use kb_autosync_core::change::ChangeRecord;
use kb_autosync_local::emulator::EmulatedJob;
use kb_autosync_local::stack::project_root;
use kb_autosync_local::{invariants, observe, LocalStack, StackOptions};
use serde_json::{json, Value};

pub const BUCKET: &str = "kb-autosync-e2e";
pub const KB: &str = "KBE2E00001";
pub const DS: &str = "DSE2E00001";
pub const PREFIX: &str = "docs/";

/// One knowledge base with one data source on `docs/`.
pub fn single_source_config() -> Value {
    json!({
        "knowledge_bases": [{"id": KB, "name": "e2e-kb", "data_sources": [
            {"id": DS, "name": "e2e-docs", "bucket_arn": format!("arn:aws:s3:::{BUCKET}"), "inclusion_prefixes": [PREFIX]}
        ]}],
        "jobs": {"starting_seconds": 5, "base_duration_seconds": 20, "per_document_seconds": 0.05, "stopping_seconds": 5}
    })
}

pub fn options(test: &str) -> StackOptions {
    let mut env = kb_autosync_local::demo::fast_timings();
    env.push(("MAX_JOB_ATTEMPTS".into(), "2".into()));
    StackOptions {
        state_dir: project_root().join(".local/e2e").join(test),
        params: vec![
            ("KnowledgeBaseId".into(), KB.into()),
            ("DataSourceId".into(), DS.into()),
            ("S3BucketName".into(), BUCKET.into()),
            ("S3KeyPrefix".into(), PREFIX.into()),
            // The suites written before direct ingestion test the job path; `direct.rs` tests
            // `auto` and `direct` (see `direct_options`).
            ("IngestionMode".into(), "job".into()),
        ],
        env,
        emulator_config: Some(single_source_config()),
        time_scale: 10.0,
        workers: 2,
        sweep_every_seconds: None,
        overrides: Vec::new(),
    }
}

/// A stack in ingestion mode `mode` (`auto` or `direct`), with the emulator's document timings.
pub fn direct_options(test: &str, mode: &str) -> StackOptions {
    let mut options = options(test);
    options.params.retain(|(name, _)| name != "IngestionMode");
    options.params.push(("IngestionMode".into(), mode.into()));
    options
}

/// The emulator's count of errors of one type returned by StartIngestionJob.
pub async fn start_job_errors(stack: &LocalStack, error_type: &str) -> u64 {
    let state = stack.emulator().state().await.unwrap();
    let by_op = &state["errors_by_operation"]["StartIngestionJob"];
    by_op[error_type].as_u64().unwrap_or(0)
}

pub async fn start(options: StackOptions) -> LocalStack {
    match LocalStack::start(options).await {
        Ok(stack) => stack,
        Err(e) => panic!("local stack did not start: {e}"),
    }
}

pub async fn put(stack: &LocalStack, key: &str, body: &str) {
    observe::put_object(stack, key, body.as_bytes())
        .await
        .unwrap();
}

pub async fn settle(stack: &LocalStack) -> Vec<ChangeRecord> {
    match invariants::wait_until_settled(stack, Duration::from_secs(240)).await {
        Ok(changes) => changes,
        Err(e) => panic!("{e}\nlogs: {}", stack.info.logs_dir.display()),
    }
}

pub async fn jobs(stack: &LocalStack) -> Vec<EmulatedJob> {
    stack.emulator().jobs().await.unwrap()
}

/// Waits (up to `timeout`) until exactly `count` changes are recorded, then until they settle.
pub async fn settle_count(
    stack: &LocalStack,
    count: usize,
    timeout: Duration,
) -> Vec<ChangeRecord> {
    eventually(
        timeout,
        &format!("{count} changes to be recorded"),
        || async {
            observe::changes(stack)
                .await
                .map(|c| c.len() == count)
                .unwrap_or(false)
        },
    )
    .await;
    settle(stack).await
}

/// Every change SYNCED by a COMPLETE job or a direct batch that started after it; no
/// overlapping jobs per knowledge base.
pub async fn assert_all_synced(stack: &LocalStack, changes: &[ChangeRecord]) {
    let jobs = jobs(stack).await;
    let batches = invariants::direct_batches(&observe::job_records(stack).await.unwrap());
    if let Err(e) =
        invariants::every_change_synced_by_a_later_job_or_batch(changes, &jobs, &batches)
    {
        panic!("lost or unsynced changes:\n{e}");
    }
    invariants::no_overlapping_jobs_per_knowledge_base(&jobs).unwrap();
}

pub async fn assert_index_matches_s3(
    stack: &LocalStack,
    kb: &str,
    ds: &str,
    prefix: &str,
) -> usize {
    invariants::index_matches_s3(stack, kb, ds, prefix)
        .await
        .unwrap()
}

/// Polls `check` every 200 ms until it is true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + timeout;
    while std::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out after {} s waiting for {what}", timeout.as_secs());
}

/// What one run of the `autosync` binary did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub seconds: f64,
}

impl Run {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }
}

/// Runs the built `autosync` binary against the stack, as a user would with the README's flags.
pub fn autosync(stack: &LocalStack, args: &[&str]) -> Run {
    autosync_at(stack, &stack.info.moto_endpoint, args)
}

/// `autosync` with `endpoint` as the AWS endpoint (an unreachable one, for its error).
pub fn autosync_at(stack: &LocalStack, endpoint: &str, args: &[&str]) -> Run {
    let binary = project_root().join("target/debug/autosync");
    assert!(
        binary.exists(),
        "{} is missing: build it with `cargo build -p kb-autosync-cli` (make e2e does)",
        binary.display()
    );
    let started = Instant::now();
    let output = Command::new(&binary)
        .args(["--endpoint-url", endpoint])
        .args([
            "--bedrock-endpoint-url",
            stack.info.emulator_endpoint.as_deref().unwrap(),
        ])
        .args(["--region", &stack.info.region])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("autosync runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        seconds: started.elapsed().as_secs_f64(),
    }
}

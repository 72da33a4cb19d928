//! One workload on a running stack: upload, wait until every change is SYNCED, and turn what
//! the counters, the executions, the emulator and the tracking table show into numbers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use crate::cost::{self, Cost, Usage};
use crate::plan::Timings;
use crate::probe::{Counters, Probe};
use crate::stats::{billed_ms, percentile};

/// Uploads that run at once: enough to keep moto busy, few enough not to starve the functions.
const UPLOAD_CONCURRENCY: usize = 8;

#[derive(Debug, Clone)]
pub enum Workload {
    /// `n` uploads spread evenly over `window` emulated seconds.
    Burst { n: u64, window: f64 },
    /// One upload every `every` emulated seconds for `duration` emulated seconds.
    Trickle { every: f64, duration: f64 },
}

impl Workload {
    pub fn uploads(&self) -> u64 {
        match self {
            Workload::Burst { n, .. } => *n,
            Workload::Trickle { every, duration } => (duration / every).floor().max(1.0) as u64,
        }
    }

    /// Emulated seconds between the first and the last upload, as planned.
    pub fn window(&self) -> f64 {
        match self {
            Workload::Burst { window, .. } => *window,
            Workload::Trickle { every, .. } => every * (self.uploads() - 1) as f64,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Latency {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    fn of(samples: &[f64]) -> Self {
        Self {
            p50: percentile(samples, 50.0).unwrap_or(0.0),
            p99: percentile(samples, 99.0).unwrap_or(0.0),
            max: percentile(samples, 100.0).unwrap_or(0.0),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FunctionRun {
    pub invocations: u64,
    pub events: u64,
    pub errors: u64,
    pub billed_ms: u64,
    /// Not in the JSON (large); the report's handler table keeps what it needs.
    #[serde(skip_serializing, default)]
    pub durations_ms: Vec<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioResult {
    pub name: String,
    pub kind: String,
    pub changes: u64,
    pub timings: Timings,
    pub job_seconds: u64,
    /// Planned and actual span of the uploads, emulated seconds.
    pub window_s: f64,
    pub upload_span_s: f64,
    pub jobs_started: u64,
    pub executions: u64,
    pub transitions: u64,
    pub invocations: BTreeMap<String, FunctionRun>,
    pub dynamodb: BTreeMap<String, u64>,
    pub sqs: BTreeMap<String, u64>,
    pub sns: BTreeMap<String, u64>,
    /// ReceiveMessage calls that returned nothing (idle polling; not in the cost).
    pub empty_receives: u64,
    pub bedrock_calls: BTreeMap<String, u64>,
    /// Every change recorded and SYNCED and no execution running before the timeout.
    pub settled: bool,
    pub synced: u64,
    pub not_synced: u64,
    /// Last upload -> every change SYNCED, emulated seconds, and as a multiple of one job.
    pub freshness_s: f64,
    pub freshness_jobs: f64,
    /// One job duration + SyncDelaySeconds + one poll interval.
    pub freshness_target_s: f64,
    /// Last upload -> last change recorded (the event path's backlog), emulated seconds.
    pub last_recorded_s: f64,
    /// Upload -> change recorded, real milliseconds (the event path end to end).
    pub event_path_ms: Latency,
    /// Upload -> change SYNCED, emulated seconds.
    pub upload_to_synced_s: Latency,
    pub usage: Usage,
    pub cost: Cost,
    pub cost_per_1k: f64,
    pub real_seconds: f64,
}

pub struct Context<'a> {
    pub probe: &'a Probe,
    pub source_key: String,
    pub prefix: String,
    pub timings: Timings,
    pub job_seconds: u64,
    pub memory_mb: u64,
    /// None: from the job duration, the time scale and the number of uploads.
    pub settle_timeout: Option<Duration>,
}

fn as_counts(value: &serde_json::Value) -> BTreeMap<String, u64> {
    value
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
        .collect()
}

/// Uploads on schedule; returns (key, time the PUT returned) of each.
async fn upload(
    ctx: &Context<'_>,
    name: &str,
    offsets: Vec<Duration>,
) -> Result<Vec<(String, chrono::DateTime<chrono::Utc>)>, String> {
    let bucket = crate::BUCKET.to_string();
    let start = tokio::time::Instant::now();
    let permits = Arc::new(Semaphore::new(UPLOAD_CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for (i, offset) in offsets.into_iter().enumerate() {
        let s3 = ctx.probe.s3.clone();
        let bucket = bucket.clone();
        let key = format!("{}{name}/doc-{i:05}.txt", ctx.prefix);
        let permits = permits.clone();
        tasks.spawn(async move {
            tokio::time::sleep_until(start + offset).await;
            let _permit = permits.acquire_owned().await.map_err(|e| e.to_string())?;
            s3.put_object()
                .bucket(&bucket)
                .key(&key)
                .body(format!("document {i} of {key}").into_bytes().into())
                .send()
                .await
                .map_err(|e| format!("put {key}: {e:?}"))?;
            Ok::<_, String>((key, chrono::Utc::now()))
        });
    }
    let mut done = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        done.push(joined.map_err(|e| e.to_string())??);
    }
    Ok(done)
}

pub async fn run(
    ctx: &Context<'_>,
    name: &str,
    workload: &Workload,
) -> Result<ScenarioResult, String> {
    let started = Instant::now();
    let probe = ctx.probe;
    let scale = ctx.timings.time_scale;
    let n = workload.uploads();
    let seq_before = probe.change_seq(&ctx.source_key).await?;
    let executions_before = probe.known_executions().await?;
    let emulator_before = probe.emulator_state().await?;
    let counters_before: Counters = probe.counters().await?;

    let step = if n > 1 {
        workload.window() / scale / (n - 1) as f64
    } else {
        0.0
    };
    let offsets = (0..n)
        .map(|i| Duration::from_secs_f64(step * i as f64))
        .collect();
    let uploads = upload(ctx, name, offsets).await?;
    // Long enough for a few jobs and the local stack's pace (~50 changes/s end to end at worst).
    let timeout = ctx.settle_timeout.unwrap_or(Duration::from_secs_f64(
        120.0 + 3.0 * ctx.job_seconds as f64 / scale + n as f64 / 50.0,
    ));
    let settled = probe
        .wait_settled(&ctx.source_key, seq_before + n, timeout)
        .await?;

    let delta = counters_before.delta(&probe.counters().await?);
    let emulator_after = probe.emulator_state().await?;
    let jobs_before = emulator_before["jobs"].as_array().map_or(0, |j| j.len());
    let jobs_started = emulator_after["jobs"]
        .as_array()
        .into_iter()
        .flatten()
        .skip(jobs_before)
        .filter(|j| j["origin"] == "api")
        .count() as u64;
    let calls_before = as_counts(&emulator_before["calls"]);
    let bedrock_calls = as_counts(&emulator_after["calls"])
        .into_iter()
        .map(|(op, n)| {
            let before = calls_before.get(&op).copied().unwrap_or(0);
            (op, n - before)
        })
        .filter(|(_, n)| *n > 0)
        .collect();
    let mut executions = 0;
    let mut transitions = 0;
    for arn in probe.known_executions().await? {
        if !executions_before.contains(&arn) {
            executions += 1;
            transitions += probe.transitions(&arn).await?;
        }
    }

    // Times: the functions' clocks and ours are the same machine's.
    let changes = probe.changes(&format!("{}{name}/", ctx.prefix)).await?;
    let uploaded: BTreeMap<&str, chrono::DateTime<chrono::Utc>> =
        uploads.iter().map(|(k, t)| (k.as_str(), *t)).collect();
    let first_upload = uploads.iter().map(|(_, t)| *t).min().unwrap_or_default();
    let last_upload = uploads.iter().map(|(_, t)| *t).max().unwrap_or_default();
    let secs = |d: chrono::TimeDelta| d.num_microseconds().unwrap_or(0) as f64 / 1e6;
    let mut event_path = Vec::new();
    let mut to_synced = Vec::new();
    let mut last_synced = last_upload;
    let mut last_recorded = last_upload;
    let mut synced = 0;
    for change in &changes {
        let Some(up) = uploaded.get(change.key.as_str()) else {
            continue;
        };
        event_path.push(secs(change.recorded - *up) * 1000.0);
        last_recorded = last_recorded.max(change.recorded);
        if let (Some(at), "SYNCED") = (change.synced, change.status.as_str()) {
            synced += 1;
            to_synced.push(secs(at - *up) * scale);
            last_synced = last_synced.max(at);
        }
    }
    let freshness_s = secs(last_synced - last_upload) * scale;

    let invocations: BTreeMap<String, FunctionRun> = delta
        .invocations
        .iter()
        .map(|(f, s)| {
            (
                f.clone(),
                FunctionRun {
                    invocations: s.count,
                    events: s.events,
                    errors: s.errors,
                    billed_ms: billed_ms(&s.durations_ms),
                    durations_ms: s.durations_ms.clone(),
                },
            )
        })
        .collect();
    let dynamodb = delta.service_requests("dynamodb");
    let sqs = delta.service_requests("sqs");
    let sns = delta.service_requests("sns");
    let empty_receives = ["functions", "stack"]
        .iter()
        .map(|c| delta.empty_receives.get(*c).copied().unwrap_or(0))
        .sum::<u64>();
    let usage = usage(
        &invocations,
        transitions,
        &dynamodb,
        &sqs,
        &sns,
        empty_receives,
        n,
        ctx.memory_mb,
    );
    let cost = usage.cost();
    let target = (ctx.job_seconds + ctx.timings.sync_delay + ctx.timings.monitor_interval) as f64;
    Ok(ScenarioResult {
        name: name.to_string(),
        kind: match workload {
            Workload::Burst { .. } => "burst",
            Workload::Trickle { .. } => "trickle",
        }
        .to_string(),
        changes: n,
        timings: ctx.timings.clone(),
        job_seconds: ctx.job_seconds,
        window_s: workload.window(),
        upload_span_s: secs(last_upload - first_upload) * scale,
        jobs_started,
        executions,
        transitions,
        invocations,
        dynamodb,
        sqs,
        sns,
        empty_receives,
        bedrock_calls,
        settled,
        synced,
        not_synced: n - synced,
        freshness_s,
        freshness_jobs: freshness_s / ctx.job_seconds as f64,
        freshness_target_s: target,
        last_recorded_s: secs(last_recorded - last_upload) * scale,
        event_path_ms: Latency::of(&event_path),
        upload_to_synced_s: Latency::of(&to_synced),
        cost_per_1k: cost::per_thousand(cost.total, n),
        usage,
        cost,
        real_seconds: started.elapsed().as_secs_f64(),
    })
}

const DYNAMODB_WRITES: [&str; 4] = ["PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"];

/// Billing units from the counts. DynamoDB: one unit per request (items are small), two per
/// transactional write, plus one write unit per change for the pending index entry when the
/// change is recorded and one when it is marked. SQS: every request but idle receives, plus
/// one delivery per S3 event by EventBridge (made inside moto, so not counted by it).
#[allow(clippy::too_many_arguments)]
fn usage(
    invocations: &BTreeMap<String, FunctionRun>,
    transitions: u64,
    dynamodb: &BTreeMap<String, u64>,
    sqs: &BTreeMap<String, u64>,
    sns: &BTreeMap<String, u64>,
    empty_receives: u64,
    changes: u64,
    memory_mb: u64,
) -> Usage {
    let mut write_units = 2 * changes;
    let mut read_units = 0;
    for (action, n) in dynamodb {
        if DYNAMODB_WRITES.contains(&action.as_str()) {
            write_units += n;
        } else if action == "TransactWriteItems" {
            write_units += 2 * n;
        } else {
            read_units += n;
        }
    }
    let publishes = sns.get("Publish").copied().unwrap_or(0);
    Usage {
        lambda_invocations: invocations.values().map(|f| f.invocations).sum(),
        lambda_billed_ms: invocations.values().map(|f| f.billed_ms).sum(),
        lambda_memory_mb: memory_mb,
        state_transitions: transitions,
        dynamodb_write_units: write_units,
        dynamodb_read_units: read_units,
        sqs_requests: sqs.values().sum::<u64>().saturating_sub(empty_receives) + changes,
        sns_publishes: publishes,
        email_deliveries: publishes,
    }
}

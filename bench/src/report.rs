//! The results as markdown (stdout, latest.md), JSON (latest.json) and a chart (latest.png,
//! drawn by bench/chart.py from the JSON).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::cold_start::ColdStart;
use crate::cost::{self, PerChangeDurations};
use crate::scenario::ScenarioResult;
use crate::stats::{billed_ms, percentile};
use crate::Args;

const FUNCTIONS: [&str; 5] = [
    "event-processor",
    "sync-processor",
    "check-quota",
    "start-sync",
    "monitor-sync",
];
const SHORT: [&str; 5] = ["ep", "sp", "cq", "ss", "ms"];
/// The per-change design polls every 60 s.
const PER_CHANGE_POLL_SECONDS: f64 = 60.0;
const COLD_START_TARGET_MS: f64 = 30.0;
const RSS_TARGET_KIB: u64 = 20 * 1024;

#[derive(Debug, Serialize, Deserialize)]
pub struct Handler {
    pub function: String,
    pub invocations: u64,
    pub events: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Events handled per second by one process (events / handler time).
    pub events_per_second: f64,
    pub billed_ms_per_invocation: f64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Comparison {
    pub scenario: String,
    pub service_per_1k: f64,
    pub per_change_per_1k: f64,
    pub ratio: f64,
    pub per_change_usage: cost::Usage,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Report {
    pub generated_at: String,
    pub command: String,
    pub cpu: String,
    pub cpus: usize,
    pub job_seconds: u64,
    pub memory_mb: u64,
    pub real_seconds: f64,
    pub scenarios: Vec<ScenarioResult>,
    pub handlers: Vec<Handler>,
    pub per_change_durations: PerChangeDurations,
    pub comparisons: Vec<Comparison>,
    pub cold_start: Option<ColdStart>,
    pub targets: Vec<(String, String, bool)>,
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "?".into())
}

fn handlers(scenarios: &[ScenarioResult]) -> Vec<Handler> {
    FUNCTIONS
        .iter()
        .map(|f| {
            let (mut invocations, mut events, mut errors, mut durations) = (0, 0, 0, Vec::new());
            for s in scenarios {
                if let Some(run) = s.invocations.get(*f) {
                    invocations += run.invocations;
                    events += run.events;
                    errors += run.errors;
                    durations.extend_from_slice(&run.durations_ms);
                }
            }
            let busy_s: f64 = durations.iter().sum::<f64>() / 1000.0;
            Handler {
                function: f.to_string(),
                invocations,
                events,
                errors,
                p50_ms: percentile(&durations, 50.0).unwrap_or(0.0),
                p99_ms: percentile(&durations, 99.0).unwrap_or(0.0),
                events_per_second: if busy_s > 0.0 {
                    events as f64 / busy_s
                } else {
                    0.0
                },
                billed_ms_per_invocation: if invocations > 0 {
                    billed_ms(&durations) as f64 / invocations as f64
                } else {
                    0.0
                },
            }
        })
        .collect()
}

fn targets(scenarios: &[ScenarioResult], cold: &Option<ColdStart>) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    let default_bursts = || {
        scenarios
            .iter()
            .filter(|s| s.kind == "burst" && !s.name.starts_with("delay-"))
    };
    if let Some(largest) = default_bursts().max_by_key(|s| s.changes) {
        out.push((
            format!("burst of {} -> at most 2 jobs", largest.changes),
            format!("{} jobs", largest.jobs_started),
            largest.jobs_started <= 2 && largest.not_synced == 0,
        ));
    }
    for s in default_bursts() {
        out.push((
            format!(
                "{}: fresh within job + SyncDelaySeconds + poll = {:.0} s",
                s.name, s.freshness_target_s
            ),
            format!(
                "{:.0} s ({:.2} jobs), {} of {} SYNCED",
                s.freshness_s, s.freshness_jobs, s.synced, s.changes
            ),
            s.freshness_s <= s.freshness_target_s && s.not_synced == 0,
        ));
    }
    // Direct ingestion (issue targets): a steady trickle is fresh in seconds and cheap.
    for s in scenarios.iter().filter(|s| s.name == "trickle-auto") {
        let latency = &s.upload_to_synced_s;
        out.push((
            "trickle-auto: upload -> SYNCED p50 <= 30 s, p99 <= 90 s".to_string(),
            format!("{:.0} / {:.0} s", latency.p50, latency.p99),
            latency.p50 <= 30.0 && latency.p99 <= 90.0 && s.not_synced == 0,
        ));
        out.push((
            "trickle-auto: cost per 1,000 changes <= $0.05".to_string(),
            format!("${:.4}", s.cost_per_1k),
            s.cost_per_1k <= 0.05,
        ));
    }
    for f in cold.iter().flat_map(|c| c.functions.iter()) {
        out.push((
            format!("{}: cold start < 30 ms, peak RSS < 20 MiB", f.name),
            format!(
                "median {:.1} ms (p95 {:.1}), {:.1} MiB",
                f.cold_start_ms.median,
                f.cold_start_ms.p95,
                f.peak_rss_kib.max as f64 / 1024.0
            ),
            f.cold_start_ms.median < COLD_START_TARGET_MS && f.peak_rss_kib.max < RSS_TARGET_KIB,
        ));
    }
    out
}

impl Report {
    pub fn new(
        args: &Args,
        scenarios: Vec<ScenarioResult>,
        cold_start: Option<ColdStart>,
        real_seconds: f64,
    ) -> Self {
        let handlers = handlers(&scenarios);
        let mean = |f: &str| {
            handlers
                .iter()
                .find(|h| h.function == f)
                .map_or(0.0, |h| h.billed_ms_per_invocation)
        };
        let per_change_durations = PerChangeDurations {
            trigger_ms: mean("event-processor"),
            start_ms: mean("start-sync"),
            poll_ms: mean("monitor-sync"),
        };
        let comparisons = scenarios
            .iter()
            .map(|s| {
                let usage = cost::per_change_design(
                    s.changes,
                    s.job_seconds as f64,
                    PER_CHANGE_POLL_SECONDS,
                    per_change_durations,
                    args.memory_mb,
                );
                let per_change_per_1k = cost::per_thousand(usage.cost().total, s.changes);
                Comparison {
                    scenario: s.name.clone(),
                    service_per_1k: s.cost_per_1k,
                    per_change_per_1k,
                    ratio: if s.cost_per_1k > 0.0 {
                        per_change_per_1k / s.cost_per_1k
                    } else {
                        0.0
                    },
                    per_change_usage: usage,
                }
            })
            .collect();
        let targets = targets(&scenarios, &cold_start);
        Self {
            generated_at: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            cpu: cpu_model(),
            cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
            job_seconds: args.job_seconds,
            memory_mb: args.memory_mb,
            real_seconds,
            scenarios,
            handlers,
            per_change_durations,
            comparisons,
            cold_start,
            targets,
        }
    }

    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let w = &mut md;
        let _ = writeln!(
            w,
            "## kb-autosync benchmark ({}, {} x {}, {:.0} s)\n",
            self.generated_at, self.cpus, self.cpu, self.real_seconds
        );
        let _ = writeln!(
            w,
            "Emulated seconds (real x time scale); every ingestion job lasts {} s. Requests are those of the service (functions, Step Functions integrations, event source mappings), not of the benchmark.\n",
            self.job_seconds
        );
        self.coalescing(w);
        self.dynamodb_per_change(w);
        self.cost_table(w);
        self.handler_table(w);
        self.cold_table(w);
        let _ = writeln!(w, "### Targets\n");
        let _ = writeln!(w, "| target | measured | met |\n|---|---|---|");
        for (target, measured, met) in &self.targets {
            let _ = writeln!(
                w,
                "| {target} | {measured} | {} |",
                if *met { "yes" } else { "**no**" }
            );
        }
        md
    }

    /// DynamoDB requests per recorded change, by operation: what numbering, recording,
    /// marking and the lease cost each change (the hot-key and cost figure).
    fn dynamodb_per_change(&self, w: &mut String) {
        let _ = writeln!(
            w,
            "### DynamoDB requests per change
"
        );
        let _ = writeln!(
            w,
            "| scenario | changes | DynamoDB requests | per change | by operation (per change) |"
        );
        let _ = writeln!(w, "|---|---:|---:|---:|---|");
        for s in &self.scenarios {
            let total: u64 = s.dynamodb.values().sum();
            let per = |n: u64| n as f64 / s.changes.max(1) as f64;
            let by_operation: Vec<String> = s
                .dynamodb
                .iter()
                .map(|(operation, n)| format!("{operation} {:.2}", per(*n)))
                .collect();
            let _ = writeln!(
                w,
                "| {} | {} | {} | {:.2} | {} |",
                s.name,
                s.changes,
                total,
                per(total),
                by_operation.join(", ")
            );
        }
        let _ = writeln!(w);
    }

    fn coalescing(&self, w: &mut String) {
        let _ = writeln!(w, "### Coalescing and freshness\n");
        let _ = writeln!(
            w,
            "| scenario | changes | scale | SyncDelay s | upload span s | last recorded s | jobs | executions | transitions | Lambda ep/sp/cq/ss/ms | DynamoDB | SQS | SNS | last upload -> all SYNCED s | x job | target s | upload -> recorded p50/p99 ms |"
        );
        let _ = writeln!(
            w,
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|"
        );
        for s in &self.scenarios {
            let lambda: Vec<String> = FUNCTIONS
                .iter()
                .map(|f| {
                    s.invocations
                        .get(*f)
                        .map_or(0, |r| r.invocations)
                        .to_string()
                })
                .collect();
            let sum = |m: &BTreeMap<String, u64>| m.values().sum::<u64>();
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {:.0} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {:.0}{} | {:.2} | {:.0} | {:.0} / {:.0} |",
                s.name,
                s.changes,
                s.timings.time_scale,
                s.timings.sync_delay,
                s.upload_span_s,
                s.last_recorded_s,
                s.jobs_started,
                s.executions,
                s.transitions,
                lambda.join("/"),
                sum(&s.dynamodb),
                s.usage.sqs_requests,
                sum(&s.sns),
                s.freshness_s,
                if s.not_synced > 0 {
                    format!(" ({} not SYNCED)", s.not_synced)
                } else {
                    String::new()
                },
                s.freshness_jobs,
                s.freshness_target_s,
                s.event_path_ms.p50,
                s.event_path_ms.p99
            );
        }
        let _ = writeln!(
            w,
            "\nLast recorded: last upload -> last change recorded (the event path's backlog on the local stack). Lambda: invocations of {} ({}). SQS includes one EventBridge delivery per change and leaves out idle receives. Target: one job + SyncDelaySeconds + one poll interval (MonitorIntervalSeconds).\n",
            SHORT.join("/"),
            FUNCTIONS.join(", ")
        );
        let _ = writeln!(
            w,
            "| scenario | upload -> SYNCED p50 s | p99 s | max s |\n|---|---:|---:|---:|"
        );
        for s in &self.scenarios {
            let l = &s.upload_to_synced_s;
            let _ = writeln!(
                w,
                "| {} | {:.0} | {:.0} | {:.0} |",
                s.name, l.p50, l.p99, l.max
            );
        }
        let _ = writeln!(w);
    }

    fn cost_table(&self, w: &mut String) {
        let _ = writeln!(
            w,
            "### Cost per 1,000 changes (USD, list prices, {} MB arm64)\n",
            self.memory_mb
        );
        let _ = writeln!(
            w,
            "| scenario | Lambda | Step Functions | DynamoDB | SQS | SNS | total | one workflow per change | ratio |"
        );
        let _ = writeln!(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (s, c) in self.scenarios.iter().zip(&self.comparisons) {
            let k = |v: f64| cost::per_thousand(v, s.changes);
            let _ = writeln!(
                w,
                "| {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.1}x |",
                s.name,
                k(s.cost.lambda),
                k(s.cost.step_functions),
                k(s.cost.dynamodb),
                k(s.cost.sqs),
                k(s.cost.sns),
                c.service_per_1k,
                c.per_change_per_1k,
                c.ratio
            );
        }
        let d = &self.per_change_durations;
        let _ = writeln!(
            w,
            "\nOne workflow per change (model, bench/src/cost.rs): per change 4 + 3 x ceil(job / 60 s) transitions, 1 + 1 + ceil(job / 60 s) Lambda invocations (+1/10 trigger) billed at this run's means ({:.1} / {:.1} / {:.1} ms), 2 DynamoDB writes, 1.2 SQS requests, 1 SNS publish and e-mail; optimistic (no waiting for the other changes' jobs).\n",
            d.trigger_ms, d.start_ms, d.poll_ms
        );
    }

    fn handler_table(&self, w: &mut String) {
        let _ = writeln!(
            w,
            "### Handler cost (release builds, against the local stack)\n"
        );
        let _ = writeln!(
            w,
            "| function | invocations | events | errors | p50 ms | p99 ms | events/s per process | billed ms per invocation |"
        );
        let _ = writeln!(w, "|---|---:|---:|---:|---:|---:|---:|---:|");
        for h in &self.handlers {
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} | {:.1} | {:.1} | {:.0} | {:.1} |",
                h.function,
                h.invocations,
                h.events,
                h.errors,
                h.p50_ms,
                h.p99_ms,
                h.events_per_second,
                h.billed_ms_per_invocation
            );
        }
        for s in self.scenarios.iter().filter(|s| s.kind == "trickle") {
            let _ = writeln!(
                w,
                "| event path end to end (upload -> change recorded, {}) | | {} | | {:.0} | {:.0} | | |",
                s.name, s.changes, s.event_path_ms.p50, s.event_path_ms.p99
            );
        }
        let _ = writeln!(w);
    }

    fn cold_table(&self, w: &mut String) {
        let Some(cold) = &self.cold_start else {
            return;
        };
        let _ = writeln!(
            w,
            "### Cold start and peak RSS (bench/cold_start.py, {} runs, {})\n",
            cold.runs, cold.cpu_model
        );
        let _ = writeln!(
            w,
            "| function | binary | cold start median / p95 ms | peak RSS MiB |"
        );
        let _ = writeln!(w, "|---|---:|---:|---:|");
        for f in &cold.functions {
            let _ = writeln!(
                w,
                "| {} | {:.1} MiB | {:.1} / {:.1} | {:.1} |",
                f.name,
                f.size_bytes as f64 / 1048576.0,
                f.cold_start_ms.median,
                f.cold_start_ms.p95,
                f.peak_rss_kib.max as f64 / 1024.0
            );
        }
        let _ = writeln!(w);
    }
}

/// Draws latest.png with bench/chart.py (matplotlib, installed by `make bench`).
pub fn chart(python: &Path, json: &Path, png: &Path) -> Result<(), String> {
    if !python.exists() {
        eprintln!(
            "note: {} not found, no chart (make bench installs it)",
            python.display()
        );
        return Ok(());
    }
    let status = Command::new(python)
        .arg("bench/chart.py")
        .arg(json)
        .arg(png)
        .status()
        .map_err(|e| format!("bench/chart.py: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("bench/chart.py failed ({status})"))
    }
}

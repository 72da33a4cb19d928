//! `make bench`: coalescing, freshness, request counts and cost per 1,000 changes on the local
//! stack, handler cost of each function, cold start and peak RSS of the release binaries.
//! Prints a markdown table and writes it, the raw numbers (JSON) and a chart to `--out`.

mod cold_start;
mod cost;
mod plan;
mod probe;
mod report;
mod scenario;
mod stats;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use kb_autosync_local::stack::project_root;
use kb_autosync_local::{LocalStack, StackOptions};
use serde_json::json;

use crate::plan::Timings;
use crate::scenario::{ScenarioResult, Workload};

pub const KNOWLEDGE_BASE_ID: &str = "KBBENCH001";
pub const DATA_SOURCE_ID: &str = "DSBENCH001";
pub const BUCKET: &str = "kb-autosync-bench";
pub const PREFIX: &str = "docs/";

#[derive(Parser, Debug, Clone)]
#[command(about = "kb-autosync benchmark on the local stack (numbers, not a test)")]
pub struct Args {
    /// Smaller run: bursts up to 1,000, a shorter sweep and trickle, 5 cold-start runs.
    #[arg(long)]
    quick: bool,
    /// Burst sizes (default 1,10,100,1000,10000; --quick: 1,10,100,1000).
    #[arg(long, value_delimiter = ',')]
    sizes: Option<Vec<u64>>,
    /// Emulated seconds a burst's uploads are spread over.
    #[arg(long, default_value_t = 30.0)]
    window: f64,
    /// SyncDelaySeconds values of the sweep (emulated seconds; the default, 60, is the main run).
    #[arg(long, value_delimiter = ',')]
    sync_delays: Option<Vec<u64>>,
    /// Burst size of the SyncDelaySeconds sweep.
    #[arg(long, default_value_t = 100)]
    sweep_size: u64,
    /// Trickle: one upload every this many emulated seconds ...
    #[arg(long, default_value_t = 5.0)]
    trickle_every: f64,
    /// ... for this many emulated seconds (default one hour; --quick: 15 minutes). 0: no trickle.
    #[arg(long)]
    trickle_duration: Option<f64>,
    /// Ingestion modes to run: `job` (the rows without a suffix) and `auto` (rows named
    /// `...-auto`: direct ingestion after the data source's first job).
    #[arg(long, value_delimiter = ',', default_values_t = vec!["job".to_string(), "auto".to_string()])]
    modes: Vec<String>,
    /// Burst sizes of the `auto` rows (default 1,1000,10000; --quick: 1,1000).
    #[arg(long, value_delimiter = ',')]
    auto_sizes: Option<Vec<u64>>,
    /// Fastest time scale of the `auto` rows: a direct round is seconds long, so the local
    /// stack's own overhead (real seconds) must not be multiplied by 10.
    #[arg(long, default_value_t = 3.0)]
    auto_time_scale: f64,
    /// Emulated seconds Bedrock takes to index one directly ingested document.
    #[arg(long, default_value_t = 10.0)]
    document_seconds: f64,
    /// Emulated duration of every ingestion job, seconds.
    #[arg(long, default_value_t = 300)]
    job_seconds: u64,
    /// Fastest time scale (emulated seconds per real second); bigger bursts run slower so that
    /// they stay bursts in emulated time (see plan.rs).
    #[arg(long, default_value_t = 10.0)]
    max_time_scale: f64,
    /// Use this time scale for every stack instead.
    #[arg(long)]
    time_scale: Option<f64>,
    /// Lambda memory size the cost is computed for (MB; the template's default).
    #[arg(long, default_value_t = 128)]
    memory_mb: u64,
    /// Processes per function on the local stack.
    #[arg(long, default_value_t = 2)]
    workers: u32,
    /// Release binaries of the functions and the emulator.
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// Cold-start runs per function (bench/cold_start.py); 0 skips it.
    #[arg(long)]
    cold_start_runs: Option<u32>,
    /// Where latest.md, latest.json and latest.png go.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Python with matplotlib for the chart (make bench installs it).
    #[arg(long, default_value = ".local/bench-venv/bin/python")]
    chart_python: PathBuf,
    /// Only render latest.md and latest.png again from a results file (no stack is started).
    #[arg(long)]
    render: Option<PathBuf>,
    /// Add this run's scenarios to those of an earlier results file (a scenario of the same name
    /// is replaced; cold start is kept unless measured again), e.g. to re-run one burst size.
    #[arg(long)]
    merge: Option<PathBuf>,
    /// Real seconds to wait for a scenario to settle (default: from the job duration, the time
    /// scale and the number of uploads).
    #[arg(long)]
    settle_timeout: Option<u64>,
}

impl Args {
    fn sizes(&self) -> Vec<u64> {
        self.sizes.clone().unwrap_or_else(|| {
            if self.quick {
                vec![1, 10, 100, 1000]
            } else {
                vec![1, 10, 100, 1000, 10_000]
            }
        })
    }

    fn sync_delays(&self) -> Vec<u64> {
        self.sync_delays.clone().unwrap_or_else(|| {
            if self.quick {
                vec![0, 300]
            } else {
                vec![0, 30, 120, 300]
            }
        })
    }

    fn auto_sizes(&self) -> Vec<u64> {
        self.auto_sizes.clone().unwrap_or_else(|| {
            if self.quick {
                vec![1, 1000]
            } else {
                vec![1, 1000, 10_000]
            }
        })
    }

    fn runs(&self, mode: &str) -> bool {
        self.modes.iter().any(|m| m == mode)
    }

    fn trickle_duration(&self) -> f64 {
        self.trickle_duration
            .unwrap_or(if self.quick { 900.0 } else { 3600.0 })
    }

    fn scale_for(&self, n: u64) -> f64 {
        self.time_scale
            .unwrap_or_else(|| plan::scale_for(n, self.max_time_scale))
    }
}

/// One stack: a time scale, a sync delay and an ingestion mode, and the workloads run on it
/// in turn.
struct Group {
    scale: f64,
    sync_delay: u64,
    mode: &'static str,
    workloads: Vec<(String, Workload)>,
}

fn groups(args: &Args) -> Vec<Group> {
    let mut out = if args.runs("job") {
        job_groups(args)
    } else {
        Vec::new()
    };
    if args.runs("auto") {
        out.extend(auto_groups(args));
    }
    // Fast stacks first, so the slow big bursts come last.
    out.sort_by(|a, b| b.scale.total_cmp(&a.scale));
    out
}

/// The `auto` rows: single uploads, the trickle and big bursts with direct ingestion on.
fn auto_groups(args: &Args) -> Vec<Group> {
    let key = |scale: f64| (scale * 1000.0).round() as u64;
    let scale_for = |n: u64| args.scale_for(n).min(args.auto_time_scale);
    let mut by_scale: BTreeMap<u64, Vec<(String, Workload)>> = BTreeMap::new();
    for n in args.auto_sizes() {
        by_scale.entry(key(scale_for(n))).or_default().push((
            format!("burst-{n}-auto"),
            Workload::Burst {
                n,
                window: args.window,
            },
        ));
    }
    let trickle = args.trickle_duration();
    if trickle > 0.0 {
        let workload = Workload::Trickle {
            every: args.trickle_every,
            duration: trickle,
        };
        by_scale
            .entry(key(scale_for(workload.uploads().min(100))))
            .or_default()
            .push(("trickle-auto".into(), workload));
    }
    by_scale
        .into_iter()
        .map(|(scale, workloads)| Group {
            scale: scale as f64 / 1000.0,
            sync_delay: plan::DEFAULT_SYNC_DELAY,
            mode: "auto",
            workloads,
        })
        .collect()
}

fn job_groups(args: &Args) -> Vec<Group> {
    // Keyed by thousandths of the scale (f64 is not Ord).
    let key = |scale: f64| (scale * 1000.0).round() as u64;
    let mut by_scale: BTreeMap<u64, Vec<(String, Workload)>> = BTreeMap::new();
    for n in args.sizes() {
        by_scale.entry(key(args.scale_for(n))).or_default().push((
            format!("burst-{n}"),
            Workload::Burst {
                n,
                window: args.window,
            },
        ));
    }
    let trickle = args.trickle_duration();
    if trickle > 0.0 {
        let workload = Workload::Trickle {
            every: args.trickle_every,
            duration: trickle,
        };
        let scale = args.scale_for(workload.uploads().min(100));
        by_scale
            .entry(key(scale))
            .or_default()
            .push(("trickle".into(), workload));
    }
    let mut out: Vec<Group> = by_scale
        .into_iter()
        .rev()
        .map(|(scale, workloads)| Group {
            scale: scale as f64 / 1000.0,
            sync_delay: plan::DEFAULT_SYNC_DELAY,
            mode: "job",
            workloads,
        })
        .collect();
    for delay in args.sync_delays() {
        if delay == plan::DEFAULT_SYNC_DELAY {
            continue;
        }
        let n = args.sweep_size;
        out.push(Group {
            scale: args.scale_for(n),
            sync_delay: delay,
            mode: "job",
            workloads: vec![(
                format!("delay-{delay}-burst-{n}"),
                Workload::Burst {
                    n,
                    window: args.window,
                },
            )],
        });
    }
    out
}

fn stack_options(args: &Args, group: &Group, timings: &Timings) -> StackOptions {
    let prefix = PREFIX;
    StackOptions {
        state_dir: project_root().join(format!(
            ".local/bench/scale-{}-delay-{}-{}",
            group.scale, group.sync_delay, group.mode
        )),
        params: [
            ("KnowledgeBaseId", KNOWLEDGE_BASE_ID),
            ("DataSourceId", DATA_SOURCE_ID),
            ("S3BucketName", BUCKET),
            ("S3KeyPrefix", prefix),
            ("IngestionMode", group.mode),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        env: timings.env(group.sync_delay),
        emulator_config: Some(json!({
            "knowledge_bases": [{"id": KNOWLEDGE_BASE_ID, "name": "bench-kb", "data_sources": [
                {"id": DATA_SOURCE_ID, "name": "bench-docs", "bucket_arn": format!("arn:aws:s3:::{BUCKET}"), "inclusion_prefixes": [prefix]}
            ]}],
            // Every job takes job_seconds, however many documents it has.
            "jobs": {"starting_seconds": 5, "base_duration_seconds": args.job_seconds, "per_document_seconds": 0, "stopping_seconds": 5},
            "documents": {"direct_ingest_seconds": args.document_seconds, "direct_ingest_starting_seconds": (args.document_seconds / 5.0).min(2.0)}
        })),
        time_scale: group.scale,
        workers: args.workers,
        sweep_every_seconds: Some(timings.sweep_every_real()),
        overrides: Vec::new(),
    }
}

async fn run_group(args: &Args, group: &Group) -> Result<Vec<ScenarioResult>, String> {
    let timings = Timings::new(group.sync_delay, group.scale);
    eprintln!(
        "==> stack: time scale {}, SyncDelaySeconds {} (emulated): {}",
        group.scale,
        timings.sync_delay,
        group
            .workloads
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let stack = LocalStack::start(stack_options(args, group, &timings))
        .await
        .map_err(|e| e.to_string())?;
    let probe = probe::Probe::new(&stack).await;
    let ctx = scenario::Context {
        probe: &probe,
        source_key: format!("{KNOWLEDGE_BASE_ID}#{DATA_SOURCE_ID}"),
        prefix: PREFIX.to_string(),
        timings,
        job_seconds: args.job_seconds,
        memory_mb: args.memory_mb,
        settle_timeout: args.settle_timeout.map(Duration::from_secs),
    };
    if group.mode != "job" {
        first_sync(&ctx).await?;
    }
    let mut results = Vec::new();
    for (name, workload) in &group.workloads {
        eprintln!("    {name}: {} uploads ...", workload.uploads());
        let result = scenario::run(&ctx, name, workload).await?;
        eprintln!(
            "    {name}: {} jobs, {} SYNCED of {}, fresh {:.0} s after the last upload ({:.2} jobs), {:.0} s real",
            result.jobs_started,
            result.synced,
            result.changes,
            result.freshness_s,
            result.freshness_jobs,
            result.real_seconds
        );
        results.push(result);
    }
    drop(stack);
    Ok(results)
}

/// AWS requires a job for a data source's first sync: one upload and its job before the `auto`
/// rows, which then measure a data source in steady state.
async fn first_sync(ctx: &scenario::Context<'_>) -> Result<(), String> {
    eprintln!("    first sync (an ingestion job) ...");
    let seq = ctx.probe.change_seq(&ctx.source_key).await?;
    ctx.probe
        .s3
        .put_object()
        .bucket(BUCKET)
        .key(format!("{}first-sync/seed.txt", ctx.prefix))
        .body(b"first sync".to_vec().into())
        .send()
        .await
        .map_err(|e| format!("put the first-sync object: {e:?}"))?;
    let timeout =
        Duration::from_secs_f64(120.0 + 3.0 * ctx.job_seconds as f64 / ctx.timings.time_scale);
    if !ctx
        .probe
        .wait_settled(&ctx.source_key, seq + 1, timeout)
        .await?
    {
        return Err("the first sync did not settle".into());
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    if let Err(e) = run(args).await {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> Result<(), String> {
    let started = Instant::now();
    let root = project_root();
    std::env::set_current_dir(&root).map_err(|e| format!("{}: {e}", root.display()))?;
    // The launcher picks the function binaries from here (release builds: the handler numbers
    // should be those of the code that ships).
    let bin_dir = root.join(&args.bin_dir);
    std::env::set_var("KB_AUTOSYNC_BIN_DIR", &bin_dir);

    if let Some(path) = &args.render {
        let doc = read_report(path)?;
        write(&args, &doc)?;
        println!("{}", doc.markdown());
        return Ok(());
    }
    let cold_runs = args
        .cold_start_runs
        .unwrap_or(if args.quick { 5 } else { 20 });
    let cold = if cold_runs > 0 {
        eprintln!("==> cold start and peak RSS ({cold_runs} runs per function)");
        Some(cold_start::measure(&bin_dir, cold_runs)?)
    } else {
        None
    };
    let earlier = args.merge.as_deref().map(read_report).transpose()?;
    let cold = cold.or_else(|| earlier.as_ref().and_then(|e| e.cold_start.clone()));
    let earlier_seconds = earlier.as_ref().map_or(0.0, |e| e.real_seconds);
    // Results are written after every stack, so a long run that is stopped still leaves them.
    let mut results = Vec::new();
    let mut doc = report::Report::new(&args, Vec::new(), cold.clone(), 0.0);
    for group in groups(&args) {
        results.extend(run_group(&args, &group).await?);
        doc = report::Report::new(
            &args,
            merged(earlier.as_ref(), &results),
            cold.clone(),
            earlier_seconds + started.elapsed().as_secs_f64(),
        );
        write(&args, &doc)?;
    }
    println!("{}", doc.markdown());
    Ok(())
}

fn read_report(path: &std::path::Path) -> Result<report::Report, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// An earlier run's scenarios, each replaced by this run's scenario of the same name, then this
/// run's new ones.
fn merged(earlier: Option<&report::Report>, results: &[ScenarioResult]) -> Vec<ScenarioResult> {
    let mut out: Vec<ScenarioResult> = earlier
        .map(|e| e.scenarios.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|old| {
            results
                .iter()
                .find(|new| new.name == old.name)
                .cloned()
                .unwrap_or(old)
        })
        .collect();
    for new in results {
        if !out.iter().any(|s| s.name == new.name) {
            out.push(new.clone());
        }
    }
    out
}

fn write(args: &Args, doc: &report::Report) -> Result<(), String> {
    std::fs::create_dir_all(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let md_path = args.out.join("latest.md");
    let json_path = args.out.join("latest.json");
    let png_path = args.out.join("latest.png");
    std::fs::write(&md_path, doc.markdown()).map_err(|e| format!("{}: {e}", md_path.display()))?;
    let json = serde_json::to_string_pretty(doc).map_err(|e| e.to_string())?;
    std::fs::write(&json_path, json).map_err(|e| format!("{}: {e}", json_path.display()))?;
    report::chart(&args.chart_python, &json_path, &png_path)?;
    eprintln!(
        "    wrote {}, {}, {}",
        md_path.display(),
        json_path.display(),
        png_path.display()
    );
    Ok(())
}

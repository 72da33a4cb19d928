//! `scenarios`: seeded fault scenarios on the local stack.
//!
//! scenarios --seed 7            one scenario
//! scenarios --seeds 1..500      a range (soak)
//! scenarios --list fixed        the fixed list `make test` runs
//! scenarios --plan --seed 7     print the plan without running it

mod checks;
mod fixed;
mod plan;
mod run;
mod stack;
mod summary;

use std::sync::Arc;
use std::time::Instant;

use clap::Parser;

#[derive(Parser)]
#[command(about = "Seeded fault scenarios on the local stack")]
struct Args {
    /// One seed.
    #[arg(long, conflicts_with_all = ["seeds", "list"])]
    seed: Option<u64>,
    /// A range of seeds, `A..B` (B excluded), or a comma-separated list.
    #[arg(long, conflicts_with = "list")]
    seeds: Option<String>,
    /// A named list of seeds: `fixed`.
    #[arg(long)]
    list: Option<String>,
    /// Scenarios run at once, each on its own local stack.
    #[arg(long, default_value_t = 2)]
    parallel: usize,
    /// Print the plans and stop.
    #[arg(long)]
    plan: bool,
}

fn parse_seeds(args: &Args) -> Result<Vec<u64>, String> {
    if let Some(seed) = args.seed {
        return Ok(vec![seed]);
    }
    if let Some(list) = &args.list {
        return match list.as_str() {
            "fixed" => Ok(fixed::seeds()),
            other => Err(format!("unknown list {other:?}: the only list is `fixed`")),
        };
    }
    let text = args
        .seeds
        .as_deref()
        .ok_or("give --seed N, --seeds A..B or --list fixed")?;
    if let Some((a, b)) = text.split_once("..") {
        let a: u64 = a
            .trim()
            .parse()
            .map_err(|_| format!("bad range start in {text:?}"))?;
        let b: u64 = b
            .trim()
            .parse()
            .map_err(|_| format!("bad range end in {text:?}"))?;
        return Ok((a..b).collect());
    }
    text.split(',')
        .map(|s| {
            s.trim()
                .parse::<u64>()
                .map_err(|_| format!("bad seed {s:?}"))
        })
        .collect()
}

fn main() {
    let args = Args::parse();
    let seeds = match parse_seeds(&args) {
        Ok(seeds) if !seeds.is_empty() => seeds,
        Ok(_) => fail("no seeds to run"),
        Err(e) => fail(&e),
    };
    if args.plan {
        for seed in seeds {
            let scenario = plan::Scenario::from_seed(seed);
            println!("{scenario}\n  {:?}", scenario.ops);
        }
        return;
    }
    let bin_dir = stack::bin_dir();
    if !bin_dir.join("start-sync").exists() {
        fail(&format!("no scenario build in {}: run `make scenarios`, which builds the functions with crash points", bin_dir.display()));
    }
    // The launcher starts the function binaries from here (set before any thread starts).
    std::env::set_var("KB_AUTOSYNC_BIN_DIR", &bin_dir);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let started = Instant::now();
    let outcomes = runtime.block_on(run_all(seeds, args.parallel.max(1)));
    summary::print(&outcomes, started.elapsed());
    if outcomes.iter().any(|o| !o.passed()) {
        std::process::exit(1);
    }
}

async fn run_all(seeds: Vec<u64>, parallel: usize) -> Vec<checks::Outcome> {
    let limit = Arc::new(tokio::sync::Semaphore::new(parallel));
    let total = seeds.len();
    let mut tasks = tokio::task::JoinSet::new();
    for seed in seeds {
        let limit = limit.clone();
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await.expect("semaphore");
            let scenario = plan::Scenario::from_seed(seed);
            let outcome = run::run(&scenario).await;
            let verdict = if outcome.passed() { "ok" } else { "FAILED" };
            println!(
                "{verdict:>6} {scenario} ({} changes, {} hand-overs, {} s)",
                outcome.changes_checked,
                outcome.hand_overs,
                outcome.wall.as_secs()
            );
            for problem in &outcome.failures {
                println!("         {}", problem.replace('\n', "\n         "));
            }
            if !outcome.passed() {
                println!("         replay: {}", summary::replay_command(seed));
            }
            outcome
        });
    }
    let mut outcomes = Vec::with_capacity(total);
    while let Some(result) = tasks.join_next().await {
        match result {
            Ok(outcome) => outcomes.push(outcome),
            Err(e) => eprintln!("a scenario task failed: {e}"),
        }
    }
    outcomes.sort_by_key(|o| o.seed);
    outcomes
}

fn fail(message: &str) -> ! {
    eprintln!("error: {message}");
    std::process::exit(2);
}

//! The summary table of a run.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::checks::Outcome;

pub fn print(outcomes: &[Outcome], wall: Duration) {
    let mut faults: BTreeMap<&str, usize> = BTreeMap::new();
    for outcome in outcomes {
        for kind in &outcome.faults {
            *faults.entry(kind.as_str()).or_default() += 1;
        }
    }
    let sum = |f: fn(&Outcome) -> usize| outcomes.iter().map(f).sum::<usize>();
    let failed: Vec<u64> = outcomes
        .iter()
        .filter(|o| !o.passed())
        .map(|o| o.seed)
        .collect();
    println!();
    println!("{:<44} {:>8}", "scenarios", outcomes.len());
    println!("{:<44} {:>8}", "scenarios failed", failed.len());
    println!(
        "{:<44} {:>8}",
        "faults injected",
        faults.values().sum::<usize>()
    );
    for (kind, count) in &faults {
        println!("  {:<42} {:>8}", kind, count);
    }
    println!(
        "{:<44} {:>8}",
        "changes checked",
        sum(|o| o.changes_checked)
    );
    println!("{:<44} {:>8}", "lost changes", sum(|o| o.lost_changes));
    println!(
        "{:<44} {:>8}",
        "quota violations",
        sum(|o| o.quota_violations)
    );
    println!("{:<44} {:>8}", "leases left held", sum(|o| o.leases_held));
    println!(
        "{:<44} {:>8}",
        "poison messages without a reason",
        sum(|o| o.poison_without_reason)
    );
    println!(
        "{:<44} {:>8}",
        "execution hand-overs",
        sum(|o| o.hand_overs)
    );
    println!(
        "{:<44} {:>8}",
        "direct ingestion batches (auto-mode seeds)",
        sum(|o| o.direct_batches)
    );
    println!(
        "{:<44} {:>8}",
        "changes repaired by the drift check",
        sum(|o| o.drift_repaired)
    );
    println!("{:<44} {:>7}s", "wall time", wall.as_secs());
    if !failed.is_empty() {
        println!();
        for seed in failed {
            println!("replay: {}", replay_command(seed));
        }
    }
}

pub fn replay_command(seed: u64) -> String {
    format!("make scenarios SEEDS={seed}")
}

//! The local stack a scenario runs on: the topology of its sources, second-scale timings,
//! crash points and queue overrides from the fault plan.

use std::path::PathBuf;

use kb_autosync_local::stack::project_root;
use kb_autosync_local::stack::Limits;
use kb_autosync_local::StackOptions;
use serde_json::json;

use crate::plan::{Fault, Scenario, BUCKET};

/// Where the scenario binaries (built with crash points) are; see `make scenarios`.
pub fn bin_dir() -> PathBuf {
    project_root().join(".local/scenarios/bin")
}

pub fn state_dir(seed: u64) -> PathBuf {
    project_root()
        .join(".local/scenarios/runs")
        .join(format!("seed-{seed}"))
}

/// AWS's limits, with a low execution history limit in the seeds that hand over.
pub fn limits(scenario: &Scenario) -> Limits {
    Limits {
        sfn_history_events: scenario.history_limit.map(|h| h.limit_events),
        ..Limits::default()
    }
}

pub fn options(scenario: &Scenario) -> StackOptions {
    let state_dir = state_dir(scenario.seed);
    let sources = scenario.sources();
    let routes: Vec<_> = sources
        .iter()
        .map(|s| json!({"bucket": BUCKET, "prefix": s.prefix, "knowledge_base_id": s.knowledge_base_id, "data_source_id": s.data_source_id}))
        .collect();
    let mut env = kb_autosync_local::demo::fast_timings();
    env.extend(
        [
            ("ROUTES", serde_json::Value::Array(routes).to_string()),
            ("MAX_JOB_ATTEMPTS", "3".into()),
            (
                "MAX_CONCURRENT_JOBS_PER_ACCOUNT",
                scenario.account_limit.to_string(),
            ),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    let crashes: Vec<String> = scenario
        .faults
        .iter()
        .filter_map(|f| match f {
            Fault::Crash { point, nth } => Some(format!("{point}@{nth}")),
            _ => None,
        })
        .collect();
    if !crashes.is_empty() {
        let crash_dir = state_dir.join("crash-points");
        let _ = std::fs::remove_dir_all(&crash_dir);
        let _ = std::fs::create_dir_all(&crash_dir);
        env.push(("KB_AUTOSYNC_CRASH_POINTS".into(), crashes.join(",")));
        env.push((
            "KB_AUTOSYNC_CRASH_STATE_DIR".into(),
            crash_dir.display().to_string(),
        ));
    }
    if let Some(history) = scenario.history_limit {
        env.push((
            "HANDOVER_AFTER_HISTORY_EVENTS".into(),
            history.hand_over_after.to_string(),
        ));
    }
    let mut overrides = Vec::new();
    if scenario.has(|f| matches!(f, Fault::VisibilityExpiry | Fault::Poison { .. })) {
        // Short enough that poison reaches its DLQ (5 and 10 receives) in seconds.
        overrides.push(("ChangeEventsQueue.VisibilityTimeout".into(), "2".into()));
        overrides.push(("SyncQueue.VisibilityTimeout".into(), "2".into()));
    }
    if scenario.has(|f| matches!(f, Fault::VisibilityExpiry)) {
        // Both queue consumers pause longer than the visibility timeout after their first write:
        // the message is delivered again, to the other process, while still being processed.
        env.push((
            "KB_AUTOSYNC_SLOW_POINTS".into(),
            "event-processor/after-change-write=3000,sync-processor/after-lease-claim=3000".into(),
        ));
    }
    let arn = format!("arn:aws:s3:::{BUCKET}");
    let mut knowledge_bases: Vec<serde_json::Value> = Vec::new();
    for source in sources {
        let ds = json!({"id": source.data_source_id, "name": source.data_source_id, "bucket_arn": arn, "inclusion_prefixes": [source.prefix]});
        match knowledge_bases.iter_mut().find(|kb| kb["id"] == source.knowledge_base_id) {
            Some(kb) => kb["data_sources"].as_array_mut().expect("array").push(ds),
            None => knowledge_bases.push(json!({"id": source.knowledge_base_id, "name": source.knowledge_base_id, "data_sources": [ds]})),
        }
    }
    let mut params: Vec<(String, String)> = vec![
        (
            "KnowledgeBaseId".into(),
            sources[0].knowledge_base_id.into(),
        ),
        ("DataSourceId".into(), sources[0].data_source_id.into()),
        ("S3BucketName".into(), BUCKET.into()),
        ("S3KeyPrefix".into(), "".into()),
        ("IngestionMode".into(), scenario.ingestion_mode.into()),
    ];
    if scenario.dropped_events().is_some() {
        // Deploys the drift-check function; the runner invokes it as its schedule would.
        params.push(("DriftCheckSchedule".into(), "1440".into()));
    }
    StackOptions {
        state_dir,
        params,
        env,
        emulator_config: Some(json!({
            "knowledge_bases": knowledge_bases,
            "jobs": {"starting_seconds": 5, "base_duration_seconds": 15, "per_document_seconds": 0.05, "stopping_seconds": 5}
        })),
        time_scale: 10.0,
        workers: 2,
        sweep_every_seconds: Some(15),
        overrides,
    }
}

//! The invariants a scenario must end with, whatever the faults: no lost change, no
//! self-inflicted quota error, no lease left held, every poison message dead-lettered with a
//! reason in the log.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kb_autosync_core::change::{ChangeRecord, ChangeStatus};
use kb_autosync_local::emulator::EmulatedJob;
use kb_autosync_local::{invariants, observe, operate, LocalStack};

use crate::plan::{Fault, Scenario};

/// What one scenario showed.
#[derive(Debug, Default)]
pub struct Outcome {
    pub seed: u64,
    /// Faults that were really injected, by kind (a crash point counts once it fired).
    pub faults: Vec<String>,
    pub changes_checked: usize,
    pub lost_changes: usize,
    pub quota_violations: usize,
    pub leases_held: usize,
    pub poison_without_reason: usize,
    /// (message id, body) of the malformed messages the runner sent.
    pub poison: Vec<(String, String)>,
    pub stopped_executions: usize,
    /// Executions that handed their lease over to the next round's.
    pub hand_overs: usize,
    /// Direct ingestion batches the service ran (auto-mode seeds).
    pub direct_batches: usize,
    /// Changes the drift check recorded for events dropped on purpose.
    pub drift_repaired: usize,
    pub failures: Vec<String>,
    pub wall: Duration,
}

impl Outcome {
    pub fn new(scenario: &Scenario) -> Self {
        Self {
            seed: scenario.seed,
            ..Self::default()
        }
    }

    pub fn fail(&mut self, problem: impl Into<String>) {
        self.failures.push(problem.into());
    }

    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

pub async fn check(
    stack: &LocalStack,
    scenario: &Scenario,
    outcome: &mut Outcome,
    timeout: Duration,
) {
    if let Err(e) = check_all(stack, scenario, outcome, timeout).await {
        outcome.fail(e);
    }
}

async fn check_all(
    stack: &LocalStack,
    scenario: &Scenario,
    outcome: &mut Outcome,
    timeout: Duration,
) -> Result<(), String> {
    if !outcome.poison.is_empty() {
        wait_for_dead_letters(stack, outcome.poison.len(), Duration::from_secs(120)).await?;
    }
    let changes = invariants::wait_until_settled(stack, timeout).await?;
    // A crash or a stopped execution can leave work for the sweep: settle once more after it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut changes = match invariants::wait_until_settled(stack, timeout).await {
        Ok(again) => again,
        Err(_) => changes,
    };
    if scenario.dropped_events().is_some() {
        changes = repair_dropped_events(stack, outcome, timeout).await?;
    }
    record_faults(stack, scenario, outcome);
    outcome.changes_checked = changes.len();
    let jobs = stack.emulator().jobs().await?;
    let notifications = observe::take_notifications(stack).await?;

    // 1. Every change SYNCED by a COMPLETE job that started after it was recorded, or FAILED
    //    with a reason and a notification that reported failures.
    let synced: Vec<ChangeRecord> = changes
        .iter()
        .filter(|c| c.status != ChangeStatus::Failed)
        .cloned()
        .collect();
    let batches = invariants::direct_batches(&observe::job_records(stack).await?);
    outcome.direct_batches += batches.len();
    if let Err(problems) =
        invariants::every_change_synced_by_a_later_job_or_batch(&synced, &jobs, &batches)
    {
        outcome.lost_changes += problems.lines().count();
        outcome.fail(format!(
            "changes not synced by a later job or direct batch:\n{problems}"
        ));
    }
    // 7. No direct document call while an ingestion job of the same data source ran: none
    //    refused with a conflict, and no job of ours started while direct documents were still
    //    processing. (A console job started between our check and our call is refused by
    //    Bedrock and waited out: allowed when the plan has foreign jobs.)
    let foreign = scenario.has(|f| matches!(f, Fault::ForeignJob { .. }));
    for source in scenario.sources() {
        let activity = stack
            .emulator()
            .direct_document_activity(source.knowledge_base_id, source.data_source_id)
            .await?;
        let conflicts: u64 = activity
            .document_calls
            .values()
            .map(|c| c.errors.get("ConflictException").copied().unwrap_or(0))
            .sum();
        if (conflicts > 0 && !foreign) || activity.job_starts_during_direct_operations > 0 {
            outcome.quota_violations += 1;
            outcome.fail(format!(
                "{}/{}: {conflicts} document call(s) refused because a job ran, {} job(s) started while direct documents were processing",
                source.knowledge_base_id, source.data_source_id, activity.job_starts_during_direct_operations
            ));
        }
    }
    // Job and direct batch notifications (a drift check's has `data_sources`).
    let failure_reported = notifications
        .iter()
        .filter(|n| n.body.get("data_sources").is_none())
        .any(|n| {
            n.body["failed_changes"].as_u64().unwrap_or(0) > 0
                || !matches!(n.body["status"].as_str(), Some("COMPLETE"))
        });
    for change in changes.iter().filter(|c| c.status == ChangeStatus::Failed) {
        if change.failure_reason.as_deref().unwrap_or("").is_empty() || !failure_reported {
            outcome.lost_changes += 1;
            outcome.fail(format!(
                "{} {} FAILED without a reason or a notification",
                change.change_id, change.key
            ));
        }
    }

    // 2. The index equals the S3 scope of every data source.
    for source in scenario.sources() {
        if let Err(e) = invariants::index_matches_s3(
            stack,
            source.knowledge_base_id,
            source.data_source_id,
            source.prefix,
        )
        .await
        {
            outcome.lost_changes += 1;
            outcome.fail(e);
        }
    }

    // 3-5. Quotas: no overlap, the account limit, no error from our own starts racing.
    for problem in overlapping_jobs(&jobs) {
        outcome.quota_violations += 1;
        outcome.fail(problem);
    }
    // 9. A fair share of the job slots: while a change waits for its data source's job, no
    //    other data source starts more than two jobs (three with the race of a round's first
    //    check against a start already decided).
    if scenario.has(|f| matches!(f, Fault::NoisyNeighbour { .. })) {
        if let Err(problems) = invariants::no_data_source_overtakes_more_than(&changes, &jobs, 3) {
            outcome.quota_violations += problems.lines().count();
            outcome.fail(format!("unfair share of job slots:\n{problems}"));
        }
    }
    let peak = invariants::peak_concurrency(&jobs);
    if peak > scenario.account_limit as usize {
        outcome.quota_violations += 1;
        outcome.fail(format!(
            "{peak} of the service's jobs ran at once; the account limit is {}",
            scenario.account_limit
        ));
    }
    for problem in start_errors(stack, scenario).await? {
        outcome.quota_violations += 1;
        outcome.fail(problem);
    }

    // 6. No lease or job slot left held. A lease of an execution stopped by hand is the sweep's
    //    to release (every 15 s here): give it two sweeps.
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut held = held_leases(stack).await?;
    while !held.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        held = held_leases(stack).await?;
    }
    for problem in held {
        outcome.leases_held += 1;
        outcome.fail(problem);
    }

    // 7. Only poison in the DLQs, each with its reason in the function's log.
    check_dead_letters(stack, outcome).await?;

    // 8. No execution failed at Step Functions' history limit: long rounds hand over first.
    let (hand_overs, at_limit) = executions_at_the_history_limit(stack).await?;
    outcome.hand_overs = hand_overs;
    for problem in at_limit {
        outcome.fail(problem);
    }
    Ok(())
}

/// The scheduled drift check, invoked once the heard changes settled, records the changes whose
/// events were dropped; once those settled too, a second check must find nothing left but
/// documents Bedrock failed. Returns the settled changes.
async fn repair_dropped_events(
    stack: &LocalStack,
    outcome: &mut Outcome,
    timeout: Duration,
) -> Result<Vec<ChangeRecord>, String> {
    let (report, error) = operate::invoke_function(stack, "DriftCheckFunction").await?;
    if let Some(error) = error {
        return Err(format!("the drift check failed ({error}): {report}"));
    }
    outcome.drift_repaired = drift_counts(&report, "recorded_changes");
    let changes = invariants::wait_until_settled(stack, timeout).await?;
    let (report, error) = operate::invoke_function(stack, "DriftCheckFunction").await?;
    let left = ["missing", "stale", "orphaned"]
        .map(|category| drift_counts(&report, category))
        .iter()
        .sum::<usize>();
    if error.is_some() || left > 0 {
        outcome.lost_changes += left;
        outcome.fail(format!(
            "after the drift check repaired {} change(s), a second check still finds drift: {report}",
            outcome.drift_repaired
        ));
    }
    Ok(changes)
}

/// The sum of a drift check report's `field` over its data sources.
fn drift_counts(report: &serde_json::Value, field: &str) -> usize {
    report["data_sources"]
        .as_array()
        .map(|sources| {
            sources
                .iter()
                .map(|s| s[field].as_u64().unwrap_or(0) as usize)
                .sum()
        })
        .unwrap_or(0)
}

/// How many executions handed over, and every execution that failed at the history limit.
async fn executions_at_the_history_limit(
    stack: &LocalStack,
) -> Result<(usize, Vec<String>), String> {
    let sfn = stack.sfn();
    let executions: Vec<_> = sfn
        .list_executions()
        .state_machine_arn(&stack.info.state_machine_arn)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .map_err(|e| format!("list executions: {e:?}"))?;
    let (mut hand_overs, mut problems) = (0, Vec::new());
    for execution in executions {
        let events = sfn
            .get_execution_history()
            .execution_arn(&execution.execution_arn)
            .send()
            .await
            .map_err(|e| format!("execution history: {e:?}"))?
            .events;
        hand_overs += usize::from(events.iter().any(|e| {
            e.state_entered_event_details
                .as_ref()
                .is_some_and(|d| d.name == "HandedOver")
        }));
        let failed_at_limit = events.iter().any(|e| {
            e.execution_failed_event_details.as_ref().is_some_and(|d| {
                d.cause
                    .as_deref()
                    .is_some_and(|c| c.contains("maximum number of history events"))
            })
        });
        if failed_at_limit {
            problems.push(format!(
                "execution {} failed at the history limit ({} events)",
                execution.name,
                events.len()
            ));
        }
    }
    Ok((hand_overs, problems))
}

fn record_faults(stack: &LocalStack, scenario: &Scenario, outcome: &mut Outcome) {
    let crash_dir = stack.state_dir.join("crash-points");
    for fault in &scenario.faults {
        let injected = match fault {
            Fault::Crash { point, nth } => crash_dir
                .join(format!("{}.{nth}", point.replace('/', "__")))
                .exists(),
            Fault::StopExecution { .. } => outcome.stopped_executions > 0,
            _ => true,
        };
        if injected {
            outcome.faults.push(fault.kind());
        }
    }
}

/// A job of ours that started while another job of its knowledge base was running.
pub fn overlapping_jobs(jobs: &[EmulatedJob]) -> Vec<String> {
    let mut problems = Vec::new();
    for ours in jobs.iter().filter(|j| j.origin == "api") {
        for other in jobs {
            if other.ingestion_job_id == ours.ingestion_job_id
                || other.knowledge_base_id != ours.knowledge_base_id
            {
                continue;
            }
            let other_end = other.ended_at.clone().unwrap_or_else(|| "9999".into());
            if other.started_at <= ours.started_at && ours.started_at < other_end {
                problems.push(format!(
                    "job {} ({:?}) started at {} while {} job {} ran ({} - {other_end})",
                    ours.ingestion_job_id,
                    ours.knowledge_base_id,
                    ours.started_at,
                    other.origin,
                    other.ingestion_job_id,
                    other.started_at
                ));
            }
        }
    }
    problems
}

/// StartIngestionJob errors the emulator counted that the faults do not explain: a Conflict or
/// quota error without a foreign job, more throttling than was forced.
async fn start_errors(stack: &LocalStack, scenario: &Scenario) -> Result<Vec<String>, String> {
    let state = stack.emulator().state().await?;
    let errors = &state["errors_by_operation"]["StartIngestionJob"];
    let count = |name: &str| errors[name].as_u64().unwrap_or(0);
    let foreign = scenario.has(|f| matches!(f, Fault::ForeignJob { .. }));
    let forced: u64 = scenario
        .faults
        .iter()
        .map(|f| match f {
            Fault::Throttle { count } => u64::from(*count),
            _ => 0,
        })
        .sum();
    let mut problems = Vec::new();
    for name in ["ConflictException", "ServiceQuotaExceededException"] {
        if count(name) > 0 && !foreign {
            problems.push(format!("{} {name} from StartIngestionJob with no job started elsewhere: the service's own starts raced", count(name)));
        }
    }
    if count("ThrottlingException") > forced {
        problems.push(format!("{} ThrottlingException from StartIngestionJob, {forced} forced: the service exceeded the start rate", count("ThrottlingException")));
    }
    Ok(problems)
}

/// Leases still naming an execution, job slots still held.
async fn held_leases(stack: &LocalStack) -> Result<Vec<String>, String> {
    let page = stack
        .dynamodb()
        .scan()
        .table_name(&stack.info.sources_table)
        .consistent_read(true)
        .send()
        .await
        .map_err(|e| format!("scan sources table: {e:?}"))?;
    let mut problems = Vec::new();
    for item in page.items.unwrap_or_default() {
        let key = item
            .get("source_id")
            .and_then(|v| v.as_s().ok())
            .cloned()
            .unwrap_or_default();
        if let Some(execution) = item.get("active_execution").and_then(|v| v.as_s().ok()) {
            problems.push(format!("lease of {key} still held by {execution}"));
        }
        if let Some(holders) = item.get("holders").and_then(|v| v.as_m().ok()) {
            if !holders.is_empty() {
                problems.push(format!(
                    "job slots still held: {:?}",
                    holders.keys().collect::<Vec<_>>()
                ));
            }
        }
    }
    Ok(problems)
}

async fn dead_letter_count(stack: &LocalStack) -> Result<usize, String> {
    let mut total = 0;
    for url in [&stack.info.change_events_dlq_url, &stack.info.sync_dlq_url] {
        let out = stack
            .sqs()
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map_err(|e| format!("queue attributes of {url}: {e:?}"))?;
        total += out
            .attributes
            .and_then(|a| {
                a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
                    .cloned()
            })
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(0);
    }
    Ok(total)
}

async fn wait_for_dead_letters(
    stack: &LocalStack,
    expected: usize,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        let count = dead_letter_count(stack).await?;
        if count >= expected {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{count} of {expected} poison messages reached a DLQ within {} s",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn check_dead_letters(stack: &LocalStack, outcome: &mut Outcome) -> Result<(), String> {
    let mut dead: BTreeMap<String, &str> = BTreeMap::new();
    for (url, function) in [
        (&stack.info.change_events_dlq_url, "event-processor"),
        (&stack.info.sync_dlq_url, "sync-processor"),
    ] {
        for body in observe::peek_queue(stack, url).await? {
            dead.insert(body, function);
        }
    }
    for (body, function) in &dead {
        let Some((id, _)) = outcome.poison.iter().find(|(_, b)| b == body) else {
            outcome.lost_changes += 1;
            outcome.fail(format!(
                "a message that is not poison reached the {function} DLQ: {body}"
            ));
            continue;
        };
        let log = stack.function_log(function);
        let reason = log
            .lines()
            .any(|line| line.contains(id.as_str()) && line.contains("\"error\""));
        if !reason {
            outcome.poison_without_reason += 1;
            outcome.fail(format!(
                "poison message {id} is in the {function} DLQ without a logged reason"
            ));
        }
    }
    for (id, body) in &outcome.poison {
        if !dead.contains_key(body) {
            outcome
                .failures
                .push(format!("poison message {id} ({body}) never reached a DLQ"));
        }
    }
    Ok(())
}

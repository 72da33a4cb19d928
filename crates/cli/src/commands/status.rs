//! `autosync status`: one row per data source — is it in sync, and if not, why and since when.

use std::collections::BTreeMap;

use chrono::Utc;
use kb_autosync_aws::executions::Executions;
use kb_autosync_aws::sources_table::Slots;
use kb_autosync_core::change::ChangeStatus;
use kb_autosync_core::lease::{ExecutionState, LeaseState};
use kb_autosync_core::slot_line::{self, WaitingRound};
use kb_autosync_core::SourceId;
use serde::Serialize;

use crate::cli::StatusArgs;
use crate::commands::{routed_and, Invocation};
use crate::context::sdk_error;
use crate::error::CliError;
use crate::output::{self, or_dash, relative, span};
use crate::records::{JobRecord, Records};

/// What a data source is doing now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceState {
    /// No execution holds the lease and nothing is pending.
    Idle,
    /// Changes are pending and no round runs yet: the sync request waits out SyncDelaySeconds
    /// on the queue so that a burst becomes one job (or the sweep will request it).
    Queued,
    /// The round waits for Bedrock's quotas or for another job on the knowledge base.
    WaitingForQuota,
    /// A job of this data source is running (or being started or checked).
    Syncing,
}

impl SourceState {
    pub fn label(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Queued => "queued",
            Self::WaitingForQuota => "waiting for quota",
            Self::Syncing => "syncing",
        }
    }

    /// From the lease holder's execution status and the state it last entered.
    pub fn of(
        running: bool,
        holds_job_slot: bool,
        current_state: Option<&str>,
        pending: usize,
    ) -> Self {
        if !running {
            return if pending > 0 {
                Self::Queued
            } else {
                Self::Idle
            };
        }
        if holds_job_slot {
            return Self::Syncing;
        }
        match current_state {
            Some("CheckQuota" | "QuotaChoice" | "WaitForQuota" | "WaitBusy") => {
                Self::WaitingForQuota
            }
            _ => Self::Syncing,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct SourceStatus {
    pub knowledge_base_id: String,
    pub data_source_id: String,
    /// `auto`, `job` or `direct` (the route's, else the stack's IngestionMode).
    pub ingestion_mode: String,
    pub state: SourceState,
    /// The state machine state the lease holder last entered.
    pub execution_state: Option<String>,
    pub pending_changes: usize,
    pub failed_changes: usize,
    pub oldest_pending_at: Option<String>,
    pub lease_holder: Option<String>,
    pub last_job: Option<JobRecord>,
    /// Its place in the line for the account's job slots (1: next), while it waits for one.
    pub line_position: Option<usize>,
    /// Why its round waits, as check-quota last said.
    pub waiting_for: Option<String>,
}

pub async fn run(inv: &Invocation, args: &StatusArgs) -> Result<i32, CliError> {
    let spinner = output::Spinner::start(inv.style, "reading data sources, leases and jobs");
    let rows = gather(inv, args).await?;
    drop(spinner);
    if inv.json {
        output::print_json(&rows);
    } else {
        render(&rows, &inv.deployment.routes_from);
    }
    Ok(0)
}

/// One row per known data source. Leases and slots are read once for all rows; executions and
/// changes per data source, since each source's holder and backlog are its own.
async fn gather(inv: &Invocation, args: &StatusArgs) -> Result<Vec<SourceStatus>, CliError> {
    let records = Records::new(&inv.ctx, &inv.deployment)?;
    let executions = Executions::new(
        inv.ctx.clients.sfn.clone(),
        inv.deployment.output("SyncStateMachineArn")?,
    );

    let leases: BTreeMap<String, _> = records
        .leases()
        .await?
        .into_iter()
        .map(|(source, lease)| (source.key(), (source, lease)))
        .collect();
    let sources = routed_and(inv, leases.values().map(|(s, _)| s.clone()).collect()).await?;
    let slots = records.slots().await?;
    let line = Line::of(inv, &slots);

    let mut rows = Vec::with_capacity(sources.len());
    for source in &sources {
        let lease = leases
            .get(&source.key())
            .map(|(_, lease)| lease.clone())
            .unwrap_or_default();
        let holder = lease_holder(inv, &executions, &slots, source, &lease).await?;
        let backlog = backlog(&records, source, args.include_canary).await?;
        rows.push(SourceStatus {
            knowledge_base_id: source.knowledge_base_id.clone(),
            data_source_id: source.data_source_id.clone(),
            ingestion_mode: inv.deployment.ingestion_mode(source).to_string(),
            state: SourceState::of(
                holder.running.is_some(),
                holder.holds_job_slot,
                holder.execution_state.as_deref(),
                backlog.pending,
            ),
            execution_state: holder.execution_state,
            pending_changes: backlog.pending,
            failed_changes: backlog.failed,
            oldest_pending_at: backlog.oldest_pending_at,
            last_job: records.latest_job(source).await?,
            line_position: line.position(source, holder.running.as_deref()),
            waiting_for: line.reason(source, holder.running.as_deref()),
            lease_holder: holder.running,
        });
    }
    Ok(rows)
}

/// The line for the account's job slots (`kb_autosync_core::slot_line`), live entries only.
struct Line {
    entries: Vec<WaitingRound>,
    /// Source keys in line for an account slot, first first.
    order: Vec<String>,
}

impl Line {
    fn of(inv: &Invocation, slots: &Slots) -> Self {
        let quota_wait = inv.deployment.quota_wait_seconds();
        let stale_after = slot_line::stale_after_ms(quota_wait);
        let now = Utc::now().timestamp_millis();
        let entries: Vec<WaitingRound> = slots
            .line
            .iter()
            .flatten()
            .filter(|e| !slot_line::is_stale(e, now, stale_after))
            .cloned()
            .collect();
        let order = slot_line::in_order(&entries, now, stale_after)
            .into_iter()
            .map(|e| e.source_key.clone())
            .collect();
        Self { entries, order }
    }

    /// The entry of `source`'s running round (an entry of another execution is left over).
    fn entry(&self, source: &SourceId, running: Option<&str>) -> Option<&WaitingRound> {
        let key = source.key();
        self.entries
            .iter()
            .find(|e| e.source_key == key && Some(e.execution.as_str()) == running)
    }

    fn position(&self, source: &SourceId, running: Option<&str>) -> Option<usize> {
        let entry = self.entry(source, running)?;
        self.order
            .iter()
            .position(|k| *k == entry.source_key)
            .map(|i| i + 1)
    }

    fn reason(&self, source: &SourceId, running: Option<&str>) -> Option<String> {
        self.entry(source, running).map(|e| e.reason.clone())
    }
}

/// The execution named in a data source's lease, as far as it still acts for the source.
struct LeaseHolder {
    /// The holder's name, only while it runs: a finished execution's name in the lease is stale
    /// and says nothing about what the source is doing.
    running: Option<String>,
    holds_job_slot: bool,
    /// The state the holder last entered (only looked up for a running holder).
    execution_state: Option<String>,
}

async fn lease_holder(
    inv: &Invocation,
    executions: &Executions,
    slots: &Slots,
    source: &SourceId,
    lease: &LeaseState,
) -> Result<LeaseHolder, CliError> {
    let running = match &lease.active_execution {
        Some(name) => matches!(
            executions
                .state(name)
                .await
                .map_err(|e| inv.ctx.fail("stepfunctions", e))?,
            ExecutionState::Running
        ),
        None => false,
    };
    let holds_job_slot = slots.holders.iter().any(|h| {
        h.knowledge_base_id == source.knowledge_base_id
            && Some(&h.execution_name) == lease.active_execution.as_ref()
    });
    let execution_state = match (&lease.active_execution, running) {
        (Some(name), true) => current_state(inv, &executions.execution_arn(name)).await?,
        _ => None,
    };
    Ok(LeaseHolder {
        running: lease.active_execution.clone().filter(|_| running),
        holds_job_slot,
        execution_state,
    })
}

/// A data source's unsynced changes: pending ones will still be synced, failed ones will not
/// without an operator.
struct Backlog {
    pending: usize,
    failed: usize,
    oldest_pending_at: Option<String>,
}

async fn backlog(
    records: &Records,
    source: &SourceId,
    include_canary: bool,
) -> Result<Backlog, CliError> {
    let unsynced: Vec<_> = records
        .unsynced(source)
        .await?
        .into_iter()
        .filter(|c| include_canary || !c.is_canary())
        .collect();
    let pending: Vec<_> = unsynced
        .iter()
        .filter(|c| c.status == ChangeStatus::Pending)
        .collect();
    Ok(Backlog {
        pending: pending.len(),
        failed: unsynced.len() - pending.len(),
        oldest_pending_at: pending.iter().map(|c| c.timestamp.clone()).min(),
    })
}

/// The table; `routes_from` tells an empty result apart from a misread configuration.
fn render(rows: &[SourceStatus], routes_from: &str) {
    if rows.is_empty() {
        println!("no data sources: the routes ({routes_from}) name none and no lease exists yet");
        return;
    }
    let now = Utc::now();
    let mut table = output::table(&[
        "KNOWLEDGE BASE",
        "DATA SOURCE",
        "MODE",
        "STATE",
        "PENDING",
        "OLDEST PENDING",
        "FAILED",
        "LAST JOB / BATCH",
        "JOB STATUS",
        "ENDED",
        "DURATION",
        "STATISTICS",
        "LEASE HOLDER",
    ]);
    for row in rows {
        let job = row.last_job.as_ref();
        table.add_row(vec![
            row.knowledge_base_id.clone(),
            row.data_source_id.clone(),
            row.ingestion_mode.clone(),
            match row.line_position {
                Some(n) => format!("{} (#{n} in line)", row.state.label()),
                None => row.state.label().to_string(),
            },
            row.pending_changes.to_string(),
            row.oldest_pending_at
                .as_deref()
                .map(|t| relative(t, now))
                .unwrap_or_else(|| "-".into()),
            row.failed_changes.to_string(),
            or_dash(job.map(|j| j.job_id.as_str())),
            or_dash(job.map(|j| j.status.as_str())),
            job.and_then(|j| j.ended_at.as_deref())
                .map(|t| relative(t, now))
                .unwrap_or_else(|| "-".into()),
            job.and_then(JobRecord::duration_seconds)
                .map(span)
                .unwrap_or_else(|| "-".into()),
            job.map(JobRecord::statistics_summary)
                .unwrap_or_else(|| "-".into()),
            or_dash(row.lease_holder.as_deref()),
        ]);
    }
    println!("{table}");
    render_waits(rows);
}

/// Why each waiting data source waits, and the rule of the line.
fn render_waits(rows: &[SourceStatus]) {
    let waiting: Vec<&SourceStatus> = rows.iter().filter(|r| r.waiting_for.is_some()).collect();
    if waiting.is_empty() {
        return;
    }
    println!();
    for row in &waiting {
        println!(
            "{}/{} waits: {}",
            row.knowledge_base_id,
            row.data_source_id,
            row.waiting_for.as_deref().unwrap_or_default()
        );
    }
    if waiting.iter().any(|r| r.line_position.is_some()) {
        println!("job slots go first to the data source whose oldest pending change is oldest (#1 in line)");
    }
}

/// The state the execution last entered: the newest StateEntered event of its history.
async fn current_state(inv: &Invocation, execution_arn: &str) -> Result<Option<String>, CliError> {
    let history = inv
        .ctx
        .clients
        .sfn
        .get_execution_history()
        .execution_arn(execution_arn)
        .reverse_order(true)
        .max_results(50)
        .send()
        .await
        .map_err(|e| {
            inv.ctx
                .fail("stepfunctions", sdk_error("GetExecutionHistory", e))
        })?;
    // Newest by event id, whatever order the service returned them in.
    Ok(history
        .events
        .iter()
        .filter_map(|e| Some((e.id, e.state_entered_event_details.as_ref()?.name.clone())))
        .max_by_key(|(id, _)| *id)
        .map(|(_, name)| name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_follows_the_lease_holder() {
        assert_eq!(SourceState::of(false, false, None, 0), SourceState::Idle);
        assert_eq!(SourceState::of(false, false, None, 3), SourceState::Queued);
        assert_eq!(
            SourceState::of(true, true, Some("WaitForJob"), 3),
            SourceState::Syncing
        );
        assert_eq!(
            SourceState::of(true, false, Some("WaitForQuota"), 3),
            SourceState::WaitingForQuota
        );
        assert_eq!(
            SourceState::of(true, false, Some("WaitBusy"), 1),
            SourceState::WaitingForQuota
        );
        assert_eq!(
            SourceState::of(true, false, Some("StartSync"), 1),
            SourceState::Syncing
        );
    }
}

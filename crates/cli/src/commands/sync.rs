//! `autosync sync`: a manual sync request, sent through the sync queue exactly like the ones
//! the event processor sends, so the lease protocol decides whether it joins the running round
//! (which then goes round again) or starts a new one.

use std::time::{Duration, Instant};

use kb_autosync_aws::executions::Executions;
use kb_autosync_aws::sync_queue::SyncQueue;
use kb_autosync_core::lease::{ExecutionState, LeaseState};
use kb_autosync_core::sync_request::SyncRequest;
use kb_autosync_core::SourceId;
use serde::Serialize;

use crate::cli::SyncArgs;
use crate::commands::Invocation;
use crate::error::CliError;
use crate::output;
use crate::records::Records;

#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SyncOutcome {
    /// The request was counted by a round that was already running; it goes round again.
    Joined,
    /// A new round (execution) was started for the request.
    Started,
}

#[derive(Debug, Serialize)]
pub struct SyncResult {
    pub knowledge_base_id: String,
    pub data_source_id: String,
    pub outcome: SyncOutcome,
    pub execution_name: String,
    pub execution_arn: String,
    pub round: u64,
}

/// Joined when the execution that holds the lease now is the one that was running before.
pub fn outcome(before: &LeaseState, was_running: bool, after: &LeaseState) -> SyncOutcome {
    if was_running && before.active_execution == after.active_execution {
        SyncOutcome::Joined
    } else {
        SyncOutcome::Started
    }
}

pub async fn run(inv: &Invocation, args: &SyncArgs) -> Result<i32, CliError> {
    let source = resolve_source(inv, args).await?;
    let result = request_sync(inv, &source, Duration::from_secs(args.wait_seconds)).await?;
    if inv.json {
        output::print_json(&result);
    } else {
        render(&source, &result);
    }
    Ok(0)
}

/// Sends the request and waits until a running round has counted it. The lease is read before
/// sending so that the outcome can tell a round that was already running from a new one.
async fn request_sync(
    inv: &Invocation,
    source: &SourceId,
    wait: Duration,
) -> Result<SyncResult, CliError> {
    let records = Records::new(&inv.ctx, &inv.deployment)?;
    let executions = Executions::new(
        inv.ctx.clients.sfn.clone(),
        inv.deployment.output("SyncStateMachineArn")?,
    );
    let before = records.lease(source).await?;
    let was_running = holder_running(inv, &executions, &before).await?;
    send_request(inv, source).await?;
    let after = wait_for_round(inv, &records, &executions, source, &before, wait).await?;

    let execution_name = after.active_execution.clone().unwrap_or_default();
    Ok(SyncResult {
        knowledge_base_id: source.knowledge_base_id.clone(),
        data_source_id: source.data_source_id.clone(),
        outcome: outcome(&before, was_running, &after),
        execution_arn: executions.execution_arn(&execution_name),
        execution_name,
        round: after.round,
    })
}

/// Whether the execution named in the lease still runs: a finished holder's name stays in the
/// lease until the next round replaces it.
async fn holder_running(
    inv: &Invocation,
    executions: &Executions,
    lease: &LeaseState,
) -> Result<bool, CliError> {
    match &lease.active_execution {
        Some(name) => executions
            .state(name)
            .await
            .map(|s| s == ExecutionState::Running)
            .map_err(|e| inv.ctx.fail("stepfunctions", e)),
        None => Ok(false),
    }
}

/// Through the sync queue, without delay: the same path as the event processor's requests, so
/// the lease protocol treats a manual sync like any other.
async fn send_request(inv: &Invocation, source: &SourceId) -> Result<(), CliError> {
    let queue = SyncQueue::new(
        inv.ctx.clients.sqs.clone(),
        inv.deployment.output("SyncQueueUrl")?,
        0,
    );
    let request = SyncRequest::Sync {
        knowledge_base_id: source.knowledge_base_id.clone(),
        data_source_id: source.data_source_id.clone(),
        change_id: None,
    };
    queue
        .send_all(&[request])
        .await
        .map_err(|e| inv.ctx.fail("sqs", e))
}

/// The lease once the request is counted (requested_seq moved past `before`) and a running
/// execution covers it; an error if that takes longer than `wait`, which points at a stopped
/// sync processor rather than a slow one.
async fn wait_for_round(
    inv: &Invocation,
    records: &Records,
    executions: &Executions,
    source: &SourceId,
    before: &LeaseState,
    wait: Duration,
) -> Result<LeaseState, CliError> {
    let spinner = output::Spinner::start(
        inv.style,
        &format!("sync requested for {source}; waiting for the sync processor"),
    );
    let deadline = Instant::now() + wait;
    loop {
        let lease = records.lease(source).await?;
        if lease.requested_seq > before.requested_seq
            && holder_running(inv, executions, &lease).await?
        {
            return Ok(lease);
        }
        if Instant::now() >= deadline {
            drop(spinner);
            return Err(CliError::Usage(format!(
                "the sync request for {source} was sent but no running round took it up within {} s: \
                 is the sync processor running? Check its logs and the sync DLQ (`autosync doctor`)",
                wait.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn render(source: &SourceId, result: &SyncResult) {
    let verb = match result.outcome {
        SyncOutcome::Joined => "joined running execution",
        SyncOutcome::Started => "started execution",
    };
    println!(
        "{source}: {verb} {} (round {})\n  {}",
        result.execution_name, result.round, result.execution_arn
    );
}

/// The data source to sync: the one given, else the one the routes sync for this knowledge
/// base. Sources the deployment does not route are refused: their changes are not tracked.
async fn resolve_source(inv: &Invocation, args: &SyncArgs) -> Result<SourceId, CliError> {
    let routed: Vec<SourceId> = inv
        .deployment
        .sources(&inv.ctx)
        .await?
        .into_iter()
        .filter_map(|(_, source)| source.ok())
        .filter(|s| s.knowledge_base_id == args.kb)
        .collect();
    let list = |sources: &[SourceId]| {
        sources
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    match &args.ds {
        Some(ds) => {
            let source = SourceId::new(&args.kb, ds);
            if routed.contains(&source) {
                Ok(source)
            } else {
                Err(CliError::Usage(format!(
                    "{source} is not synced by stack {} (its routes sync: {}); pass a data source the stack routes",
                    inv.deployment.stack_name,
                    if routed.is_empty() { "nothing for this knowledge base".into() } else { list(&routed) }
                )))
            }
        }
        None => match routed.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(CliError::Usage(format!(
                "knowledge base {} is not synced by stack {} ({}); check --kb",
                args.kb, inv.deployment.stack_name, inv.deployment.routes_from
            ))),
            several => Err(CliError::Usage(format!(
                "knowledge base {} has several routed data sources ({}): pass --ds",
                args.kb,
                list(several)
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(holder: Option<&str>, requested: u64) -> LeaseState {
        LeaseState {
            requested_seq: requested,
            active_execution: holder.map(str::to_string),
            ..LeaseState::default()
        }
    }

    #[test]
    fn joined_only_when_the_same_execution_was_already_running() {
        assert_eq!(
            outcome(&lease(Some("A-r1"), 3), true, &lease(Some("A-r1"), 4)),
            SyncOutcome::Joined
        );
        assert_eq!(
            outcome(&lease(Some("A-r1"), 3), false, &lease(Some("A-r2"), 4)),
            SyncOutcome::Started
        );
        assert_eq!(
            outcome(&lease(None, 0), false, &lease(Some("A-r1"), 1)),
            SyncOutcome::Started
        );
        // The old round ended and a new one took the request.
        assert_eq!(
            outcome(&lease(Some("A-r1"), 3), true, &lease(Some("A-r2"), 4)),
            SyncOutcome::Started
        );
    }
}

//! `autosync reconcile`: records what `autosync drift` finds (missing, stale, orphaned) as
//! changes with `origin` = `reconcile` and requests their sync through the sync queue, so the
//! lease protocol and the ingestion mode decide job or direct. Idempotent: a second run records
//! nothing new for the same object versions.

use kb_autosync_aws::reconciler::Reconciler;
use kb_autosync_aws::sources_table::SourcesTable;
use kb_autosync_aws::sync_queue::SyncQueue;
use kb_autosync_aws::tracking_table::TrackingTable;
use serde::Serialize;

use crate::cli::ReconcileArgs;
use crate::commands::drift::{list, selected_sources};
use crate::commands::Invocation;
use crate::error::CliError;
use crate::output;

#[derive(Debug, Serialize)]
pub struct SourceReconcile {
    pub knowledge_base_id: String,
    pub data_source_id: String,
    pub missing: usize,
    pub stale: usize,
    pub orphaned: usize,
    /// Failed documents are left alone: ingesting them again fails the same way.
    pub failed: usize,
    /// Drifted keys left alone: a change of theirs is still PENDING (the service is syncing
    /// them).
    pub in_flight: usize,
    /// New changes, each with a sync request.
    pub recorded: usize,
    /// Changes an earlier reconcile already recorded (same object versions).
    pub already_recorded: usize,
}

pub async fn run(inv: &Invocation, args: &ReconcileArgs) -> Result<i32, CliError> {
    let spinner = output::Spinner::start(inv.style, "comparing S3 with the knowledge bases");
    let reconciler = Reconciler {
        tracking: TrackingTable::new(
            inv.ctx.clients.dynamodb.clone(),
            inv.deployment.output("TrackingTableName")?,
        ),
        sources: SourcesTable::new(
            inv.ctx.clients.dynamodb.clone(),
            inv.deployment.output("SourcesTableName")?,
        ),
        // No delay: the changes are already late.
        queue: SyncQueue::new(
            inv.ctx.clients.sqs.clone(),
            inv.deployment.output("SyncQueueUrl")?,
            0,
        ),
        retention_days: inv
            .deployment
            .parameters
            .get("RetentionDays")
            .and_then(|d| d.parse().ok())
            .unwrap_or(30),
    };
    let mut rows = Vec::new();
    for source in selected_sources(inv, args.kb.as_deref(), args.ds.as_deref()).await? {
        let listing = list(inv, &source).await?;
        let done = reconciler
            .reconcile(&source, &listing)
            .await
            .map_err(|e| inv.ctx.fail("dynamodb", e))?;
        rows.push(SourceReconcile {
            knowledge_base_id: done.knowledge_base_id,
            data_source_id: done.data_source_id,
            missing: done.drift.missing.len(),
            stale: done.drift.stale.len(),
            orphaned: done.drift.orphaned.len(),
            failed: done.drift.failed.len(),
            in_flight: done.in_flight,
            recorded: done.recorded.recorded,
            already_recorded: done.recorded.already_recorded,
        });
    }
    drop(spinner);
    if inv.json {
        output::print_json(&rows);
    } else {
        render(&rows);
    }
    Ok(0)
}

fn render(rows: &[SourceReconcile]) {
    let mut table = output::table(&[
        "KNOWLEDGE BASE",
        "DATA SOURCE",
        "MISSING",
        "STALE",
        "ORPHANED",
        "IN FLIGHT",
        "RECORDED",
        "ALREADY RECORDED",
        "FAILED (LEFT ALONE)",
    ]);
    for row in rows {
        table.add_row(vec![
            row.knowledge_base_id.clone(),
            row.data_source_id.clone(),
            row.missing.to_string(),
            row.stale.to_string(),
            row.orphaned.to_string(),
            row.in_flight.to_string(),
            row.recorded.to_string(),
            row.already_recorded.to_string(),
            row.failed.to_string(),
        ]);
    }
    println!("{table}");
    println!("\nthe recorded changes sync like any other: `autosync changes` follows them, `autosync drift` shows what is left");
}

//! The `index-drift` finding: does each data source's index match its S3 scope? Catches the
//! first deployment onto a bucket that already holds documents (never synced: the service only
//! hears of changes made after it) and drift from changes it never heard of. Keys with a change
//! still PENDING are in flight, not drift.

use kb_autosync_aws::knowledge_base::KnowledgeBase;
use kb_autosync_aws::objects::ObjectStore;
use kb_autosync_aws::reconciler::repair_plan;
use kb_autosync_aws::scope_listing::{list_data_source, ListingError};
use kb_autosync_aws::tracking_table::TrackingTable;
use kb_autosync_core::drift::Drift;
use kb_autosync_core::SourceId;

use super::checks::call_failed;
use super::Finding;
use crate::commands::Invocation;

const CHECK: &str = "index-drift";

/// One finding per data source whose listing works; a data source the other checks already
/// fail (unknown knowledge base or data source, not S3) gets none.
pub async fn findings(inv: &Invocation, sources: &[SourceId]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for source in sources {
        if let Some(finding) = finding(inv, source).await {
            findings.push(finding);
        }
    }
    findings
}

async fn finding(inv: &Invocation, source: &SourceId) -> Option<Finding> {
    let kb = KnowledgeBase::new(inv.ctx.clients.bedrock.clone());
    let store = ObjectStore::new(inv.ctx.clients.s3.clone());
    let listing = match list_data_source(&kb, &store, source).await {
        Ok(listing) => listing,
        Err(ListingError::Call { error, .. }) if error.code == "ResourceNotFoundException" => {
            return None
        }
        Err(ListingError::Call { service, error }) => {
            return Some(call_failed(inv, CHECK, service, error))
        }
        Err(_) => return None,
    };
    let tracking = tracking(inv);
    let (drift, plan) = match repair_plan(tracking.as_ref(), source, &listing).await {
        Ok(planned) => planned,
        Err(e) => return Some(call_failed(inv, CHECK, "dynamodb", e)),
    };
    let never_synced = listing.documents.is_empty() && !listing.objects.is_empty();
    Some(verdict(
        source,
        &drift,
        plan.changes.len(),
        plan.in_flight,
        listing.objects.len(),
        never_synced,
    ))
}

fn tracking(inv: &Invocation) -> Option<TrackingTable> {
    let table = inv.deployment.output("TrackingTableName").ok()?;
    Some(TrackingTable::new(inv.ctx.clients.dynamodb.clone(), table))
}

/// The finding for a data source whose comparison found `drift`, of which `to_repair` documents
/// are not in flight.
fn verdict(
    source: &SourceId,
    drift: &Drift,
    to_repair: usize,
    in_flight: usize,
    objects: usize,
    never_synced: bool,
) -> Finding {
    let fix = "`autosync drift` lists them; `autosync reconcile` records them as changes and syncs them (the stack parameter DriftCheckSchedule does it on a schedule)";
    if never_synced {
        return Finding::fail(
            CHECK,
            format!("{source} has never been synced: {objects} object(s) in its S3 scope, none in the index (the service hears only of changes made after it was deployed)"),
            fix,
        );
    }
    let failed = if drift.failed.is_empty() {
        String::new()
    } else {
        format!(
            "; {} document(s) Bedrock could not index (`autosync drift` shows why)",
            drift.failed.len()
        )
    };
    if to_repair > 0 {
        return Finding::fail(
            CHECK,
            format!(
                "{source} has drifted from S3: {} missing, {} stale, {} orphaned{failed}",
                drift.missing.len(),
                drift.stale.len(),
                drift.orphaned.len()
            ),
            fix,
        );
    }
    let in_flight = if in_flight > 0 {
        format!(" ({in_flight} change(s) being synced)")
    } else {
        String::new()
    };
    Finding::pass(
        CHECK,
        format!(
            "{source}: the index matches its S3 scope of {objects} object(s){in_flight}{failed}"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drift(missing: usize, failed: usize) -> Drift {
        Drift {
            missing: (0..missing).map(|i| format!("m{i}")).collect(),
            failed: (0..failed)
                .map(|i| kb_autosync_core::drift::FailedDocument {
                    key: format!("f{i}"),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn never_synced_drifted_in_flight_and_clean_are_told_apart() {
        let source = SourceId::new("KB", "DS");
        let never = verdict(&source, &drift(3, 0), 3, 0, 3, true);
        assert!(!never.passed && never.detail.contains("never been synced: 3 object(s)"));
        let drifted = verdict(&source, &drift(2, 1), 1, 1, 9, false);
        assert!(
            !drifted.passed
                && drifted
                    .detail
                    .contains("2 missing, 0 stale, 0 orphaned; 1 document(s)")
        );
        assert!(drifted.fix.unwrap().contains("autosync reconcile"));
        let in_flight = verdict(&source, &drift(2, 0), 0, 2, 9, false);
        assert!(in_flight.passed && in_flight.detail.contains("2 change(s) being synced"));
        let clean = verdict(&source, &Drift::default(), 0, 0, 9, false);
        assert!(clean.passed && clean.detail.ends_with("scope of 9 object(s)"));
    }
}

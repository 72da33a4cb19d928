//! Records the changes a drift check found (`kb_autosync_core::reconcile`) as event-processor
//! records S3 events: numbered, written once, each announced by a sync request, so the lease
//! protocol and the ingestion mode decide job or direct, and the tracking table, the counts and
//! the notifications show them like any other change.

use kb_autosync_core::change::{change_id, ChangeRecord};
use kb_autosync_core::drift::{compare, Drift};
use kb_autosync_core::event::ObjectChange;
use kb_autosync_core::reconcile::{self, ReconcilePlan};
use kb_autosync_core::sync_request::SyncRequest;
use kb_autosync_core::SourceId;
use serde::Serialize;

use crate::scope_listing::Listing;

use crate::sources_table::SourcesTable;
use crate::sync_queue::SyncQueue;
use crate::tracking_table::{PutOutcome, TrackingTable};
use crate::AwsError;

/// `origin` of the changes a reconcile records.
pub const RECONCILE_ORIGIN: &str = "reconcile";

pub struct Reconciler {
    pub tracking: TrackingTable,
    pub sources: SourcesTable,
    pub queue: SyncQueue,
    pub retention_days: u32,
}

/// What a reconcile of one data source recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Recorded {
    /// New changes, each with a sync request.
    pub recorded: usize,
    /// Changes a previous reconcile already recorded (same object version): nothing new.
    pub already_recorded: usize,
}

/// A data source's drift and what reconciling it recorded.
#[derive(Debug, Clone)]
pub struct SourceReconcile {
    pub knowledge_base_id: String,
    pub data_source_id: String,
    pub objects: usize,
    pub documents: usize,
    pub drift: Drift,
    /// Drifted keys left alone because a change of theirs is still PENDING.
    pub in_flight: usize,
    pub recorded: Recorded,
}

impl SourceReconcile {
    /// Documents that disagreed with S3 (failed ones included): the `DriftedDocuments` metric.
    pub fn drifted(&self) -> usize {
        self.drift.total()
    }
}

/// The drift of `listing` and the changes that would repair it: every drifted key except those
/// with a PENDING change in `tracking` (in flight). The pending index is read only when there is
/// drift. Used by reconcile and by `autosync doctor`, which records nothing.
pub async fn repair_plan(
    tracking: Option<&TrackingTable>,
    source: &SourceId,
    listing: &Listing,
) -> Result<(Drift, ReconcilePlan), AwsError> {
    let drift = compare(&listing.objects, &listing.documents);
    let pending = match tracking {
        Some(tracking) if !drift.is_clean() => tracking.pending_keys(source).await?,
        _ => Vec::new(),
    };
    let plan = reconcile::plan(
        &drift,
        &listing.bucket,
        &listing.objects,
        &listing.documents,
        &pending,
    );
    Ok((drift, plan))
}

impl Reconciler {
    /// Compares `listing` and records the changes that repair it, except for keys in flight.
    pub async fn reconcile(
        &self,
        source: &SourceId,
        listing: &Listing,
    ) -> Result<SourceReconcile, AwsError> {
        let (drift, plan) = repair_plan(Some(&self.tracking), source, listing).await?;
        let recorded = self.record(source, &plan.changes).await?;
        Ok(SourceReconcile {
            knowledge_base_id: source.knowledge_base_id.clone(),
            data_source_id: source.data_source_id.clone(),
            objects: listing.objects.len(),
            documents: listing.documents.len(),
            drift,
            in_flight: plan.in_flight,
            recorded,
        })
    }

    pub async fn record(
        &self,
        source: &SourceId,
        changes: &[ObjectChange],
    ) -> Result<Recorded, AwsError> {
        let ids: Vec<String> = changes.iter().map(change_id).collect();
        let known = self.tracking.recorded_ids(&ids).await?;
        let new: Vec<&ObjectChange> = changes
            .iter()
            .zip(&ids)
            .filter(|(_, id)| !known.contains(*id))
            .map(|(change, _)| change)
            .collect();
        let mut outcome = Recorded {
            recorded: 0,
            already_recorded: changes.len() - new.len(),
        };
        if new.is_empty() {
            return Ok(outcome);
        }
        let last = self
            .sources
            .reserve_change_seqs(source, new.len() as u64)
            .await?;
        let first = last + 1 - new.len() as u64;
        let now = chrono::Utc::now();
        let mut requests = Vec::new();
        for (seq, change) in (first..).zip(new) {
            let mut record = ChangeRecord::pending(change, source, seq, now, self.retention_days);
            record.origin = Some(RECONCILE_ORIGIN.to_string());
            match self.tracking.put_pending(&record).await? {
                PutOutcome::Recorded => {
                    outcome.recorded += 1;
                    requests.push(SyncRequest::for_change(source, &record.change_id));
                }
                PutOutcome::AlreadyRecorded => outcome.already_recorded += 1,
            }
        }
        self.queue.send_all(&requests).await?;
        Ok(outcome)
    }
}

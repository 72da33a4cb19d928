//! Records the changes a drift check found (`kb_autosync_core::reconcile`) as event-processor
//! records S3 events: numbered, written once, each announced by a sync request, so the lease
//! protocol and the ingestion mode decide job or direct, and the tracking table, the counts and
//! the notifications show them like any other change.

use kb_autosync_core::change::{change_id, ChangeRecord};
use kb_autosync_core::event::ObjectChange;
use kb_autosync_core::sync_request::SyncRequest;
use kb_autosync_core::SourceId;

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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recorded {
    /// New changes, each with a sync request.
    pub recorded: usize,
    /// Changes a previous reconcile already recorded (same object version): nothing new.
    pub already_recorded: usize,
}

impl Reconciler {
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

//! Reconcile: the changes that bring an index back to its S3 scope, from a drift check. Missing
//! and stale objects become `create` changes, orphaned documents `delete` changes; failed
//! documents are left alone (re-ingesting them fails the same way). Each change's id is
//! derived from the object's version (its last modification, or the orphaned document's last
//! update), so reconciling twice records nothing new, and a later drift of the same key is a new
//! change. Keys with a change still PENDING are in flight, not drift: the service is already
//! syncing them, and a second change would only ingest them twice.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use crate::direct::plan::document_key;
use crate::drift::{document_versions, Drift, IndexedDocument, ScopeObject};
use crate::event::{ChangeType, EventSource, ObjectChange, ObjectKey};

/// `event_name` of reconciled changes (what `autosync changes` shows as the event).
pub const RECONCILE_EVENT: &str = "Reconcile";

fn change(
    bucket: &str,
    key: &str,
    change_type: ChangeType,
    at: Option<DateTime<Utc>>,
) -> ObjectChange {
    ObjectChange {
        source: EventSource::Reconcile,
        event_id: None,
        event_name: RECONCILE_EVENT.to_string(),
        change_type,
        bucket: bucket.to_string(),
        key: ObjectKey::verbatim(key),
        size: None,
        etag: None,
        version_id: None,
        sequencer: None,
        event_time: at,
        delete_kind: None,
    }
}

/// The changes that repair `drift` of a data source reading `bucket`.
pub fn changes(
    drift: &Drift,
    bucket: &str,
    objects: &[ScopeObject],
    documents: &[IndexedDocument],
) -> Vec<ObjectChange> {
    let modified = document_versions(objects);
    let updated: BTreeMap<&str, Option<DateTime<Utc>>> = documents
        .iter()
        .map(|d| (d.key.as_str(), d.updated_at))
        .collect();
    let creates = drift
        .missing
        .iter()
        .chain(&drift.stale)
        .map(|key| change(bucket, key, ChangeType::Create, modified.get(key).copied()));
    let deletes = drift.orphaned.iter().map(|key| {
        change(
            bucket,
            key,
            ChangeType::Delete,
            updated.get(key.as_str()).copied().flatten(),
        )
    });
    creates.chain(deletes).collect()
}

/// What a reconcile records for one data source.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconcilePlan {
    pub changes: Vec<ObjectChange>,
    /// Drifted keys left out because a change of theirs is still PENDING.
    pub in_flight: usize,
}

/// [`changes`] without the documents that `pending_keys` (keys of PENDING changes, documents or
/// their metadata files) are already bringing up to date.
pub fn plan(
    drift: &Drift,
    bucket: &str,
    objects: &[ScopeObject],
    documents: &[IndexedDocument],
    pending_keys: &[String],
) -> ReconcilePlan {
    let pending: BTreeSet<&str> = pending_keys.iter().map(|k| document_key(k)).collect();
    let (in_flight, changes): (Vec<ObjectChange>, Vec<ObjectChange>) =
        changes(drift, bucket, objects, documents)
            .into_iter()
            .partition(|c| pending.contains(c.key.decoded.as_str()));
    ReconcilePlan {
        changes,
        in_flight: in_flight.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::change_id;
    use crate::drift::compare;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap()
    }

    fn object(key: &str, modified: i64) -> ScopeObject {
        ScopeObject {
            key: key.into(),
            last_modified: at(modified),
        }
    }

    fn document(key: &str, updated: i64) -> IndexedDocument {
        IndexedDocument {
            key: key.into(),
            status: "INDEXED".into(),
            reason: None,
            updated_at: Some(at(updated)),
        }
    }

    #[test]
    fn missing_and_stale_become_creates_and_orphans_deletes() {
        let objects = [
            object("new.txt", 5),
            object("old.txt", 50),
            object("meta.txt", 1),
            object("meta.txt.metadata.json", 60),
        ];
        let documents = [
            document("old.txt", 20),
            document("meta.txt", 20),
            document("gone.txt", 30),
        ];
        let drift = compare(&objects, &documents);
        let changes = changes(&drift, "b", &objects, &documents);
        let summary: Vec<(String, ChangeType, Option<DateTime<Utc>>)> = changes
            .iter()
            .map(|c| (c.key.decoded.clone(), c.change_type, c.event_time))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("new.txt".into(), ChangeType::Create, Some(at(5))),
                ("meta.txt".into(), ChangeType::Create, Some(at(60))),
                ("old.txt".into(), ChangeType::Create, Some(at(50))),
                ("gone.txt".into(), ChangeType::Delete, Some(at(30))),
            ]
        );
        assert!(changes.iter().all(|c| c.source == EventSource::Reconcile));
    }

    #[test]
    fn the_same_drift_gives_the_same_ids_and_a_new_version_a_new_one() {
        let documents = [document("a.txt", 20)];
        let first = changes(
            &compare(&[object("a.txt", 50)], &documents),
            "b",
            &[object("a.txt", 50)],
            &documents,
        );
        let again = changes(
            &compare(&[object("a.txt", 50)], &documents),
            "b",
            &[object("a.txt", 50)],
            &documents,
        );
        let later = changes(
            &compare(&[object("a.txt", 70)], &documents),
            "b",
            &[object("a.txt", 70)],
            &documents,
        );
        assert_eq!(change_id(&first[0]), change_id(&again[0]));
        assert_ne!(change_id(&first[0]), change_id(&later[0]));
    }

    #[test]
    fn keys_with_a_pending_change_are_in_flight_not_recorded() {
        let objects = [object("a.txt", 5), object("b.txt", 5), object("c.txt", 5)];
        let documents = [document("gone.txt", 1)];
        let drift = compare(&objects, &documents);
        let plan = plan(
            &drift,
            "b",
            &objects,
            &documents,
            &[
                "a.txt".into(),
                "b.txt.metadata.json".into(),
                "gone.txt".into(),
            ],
        );
        let keys: Vec<&str> = plan
            .changes
            .iter()
            .map(|c| c.key.decoded.as_str())
            .collect();
        assert_eq!(keys, vec!["c.txt"]);
        assert_eq!(plan.in_flight, 3);
    }
}

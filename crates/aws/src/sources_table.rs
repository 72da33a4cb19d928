//! The sources table: the lease item of each data source (`KB#DS`) and the `SLOTS` item that
//! keeps at most one job per knowledge base, the account limit and the start rate.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use kb_autosync_core::foreign_jobs::ForeignJobsCensus;
use kb_autosync_core::lease::{self, LeaseState};
use kb_autosync_core::slot_line::WaitingRound;
use kb_autosync_core::SourceId;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::applied;
use crate::AwsError;

pub const SLOTS_KEY: &str = "SLOTS";

#[derive(Clone, Debug)]
pub struct SourcesTable {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

/// The counters a job start is pinned to (see `snapshot`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    pub target_seq: u64,
    pub cutoff_seq: u64,
}

/// Who holds the job slot of a knowledge base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotHolder {
    pub knowledge_base_id: String,
    pub execution_name: String,
    pub data_source_id: String,
    pub since_ms: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slots {
    pub holders: Vec<SlotHolder>,
    pub last_start_ms: Option<i64>,
    /// The rounds waiting in check-quota (`kb_autosync_core::slot_line`), one per data source;
    /// `None` while the item has no `line` yet.
    pub line: Option<Vec<WaitingRound>>,
    /// The last count of jobs started elsewhere (`kb_autosync_core::foreign_jobs`).
    pub census: Option<ForeignJobsCensus>,
}

/// What a hand-over of the lease found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandOver {
    Moved,
    /// A retry: the lease already names the successor.
    AlreadyMoved,
    /// Someone else holds it (or nobody): this execution lost it before handing over.
    Lost(Option<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotOutcome {
    Acquired,
    /// The slot, the account limit or the start rate said no; `Slots` is what was seen.
    Busy(Slots),
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}
fn text(item: &HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

/// The pinned counters of one job start, as stored under `snapshots.<token>`.
fn snapshot_value(target_seq: u64, cutoff_seq: u64) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        ("target_seq".to_string(), n(target_seq)),
        ("cutoff_seq".to_string(), n(cutoff_seq)),
    ]))
}

/// One knowledge base's entry in the SLOTS item's `holders`.
fn slot_holder_value(source: &SourceId, execution: &str, since_ms: i64) -> AttributeValue {
    AttributeValue::M(HashMap::from([
        ("execution".to_string(), s(execution)),
        ("data_source_id".to_string(), s(&source.data_source_id)),
        ("since_ms".to_string(), n(since_ms)),
    ]))
}

/// A map of a stored item (the item itself, or a map attribute in it) being read, with what
/// to call it when one of its attributes is malformed.
struct StoredMap<'a> {
    operation: &'static str,
    /// "item KB#DS of table T", "snapshots.TOKEN of item KB#DS of table T".
    name: String,
    map: &'a HashMap<String, AttributeValue>,
}

impl<'a> StoredMap<'a> {
    fn item(
        operation: &'static str,
        table: &str,
        item: &'a HashMap<String, AttributeValue>,
    ) -> Self {
        let key = text(item, "source_id").unwrap_or_else(|| "(no source_id)".into());
        Self {
            operation,
            name: format!("item {key} of table {table}"),
            map: item,
        }
    }

    /// The attribute `name`, `None` when absent. A value of another shape is an error naming
    /// the item and the attribute: read as 0, a malformed counter would silently pass for one
    /// that was never written.
    fn get<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, AwsError> {
        self.map
            .get(name)
            .map(|value| {
                serde_dynamo::from_attribute_value(value.clone()).map_err(|e| {
                    AwsError::new(
                        self.operation,
                        "MalformedItem",
                        format!("attribute {name} of {} is malformed: {e}", self.name),
                    )
                })
            })
            .transpose()
    }
}

/// One knowledge base's entry in the SLOTS item's `holders`, as `slot_holder_value` writes it.
#[derive(Deserialize)]
struct StoredHolder {
    execution: String,
    #[serde(default)]
    data_source_id: String,
    #[serde(default)]
    since_ms: i64,
}

/// The lease of a data source item read by `operation`. Every attribute is absent until its
/// first write (and the holder's after a release), which reads as the default lease.
pub fn lease_from_item(
    operation: &'static str,
    table: &str,
    item: &HashMap<String, AttributeValue>,
) -> Result<LeaseState, AwsError> {
    let item = StoredMap::item(operation, table, item);
    Ok(LeaseState {
        requested_seq: item.get("requested_seq")?.unwrap_or(0),
        change_seq: item.get("change_seq")?.unwrap_or(0),
        round: item.get("round")?.unwrap_or(0),
        active_execution: item.get("active_execution")?,
        claimed_at_ms: item.get("claimed_at_ms")?,
    })
}

/// A value written by an UpdateItem of the SLOTS item (a line entry, the census).
fn update_value(value: impl serde::Serialize) -> Result<AttributeValue, AwsError> {
    serde_dynamo::to_attribute_value(value)
        .map_err(|e| AwsError::new("UpdateItem", "Serialization", e.to_string()))
}

fn slots_from_item(
    operation: &'static str,
    table: &str,
    item: &HashMap<String, AttributeValue>,
) -> Result<Slots, AwsError> {
    let item = StoredMap::item(operation, table, item);
    let holders: HashMap<String, StoredHolder> = item.get("holders")?.unwrap_or_default();
    Ok(Slots {
        holders: holders
            .into_iter()
            .map(|(knowledge_base_id, holder)| SlotHolder {
                knowledge_base_id,
                execution_name: holder.execution,
                data_source_id: holder.data_source_id,
                since_ms: holder.since_ms,
            })
            .collect(),
        last_start_ms: item.get("last_start_ms")?,
        line: item
            .get::<HashMap<String, WaitingRound>>("line")?
            .map(|line| line.into_values().collect()),
        census: item.get("census")?,
    })
}

impl SourcesTable {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Reserves `count` change numbers of `source` with one write (event-processor, for the new
    /// changes of a batch, before it records them) and returns the counter's new value N: the
    /// numbers N-count+1..=N are the caller's (see `kb_autosync_core::numbering`). Numbers
    /// reserved but never written (a crash in between) are skipped, which is harmless.
    pub async fn reserve_change_seqs(
        &self,
        source: &SourceId,
        count: u64,
    ) -> Result<u64, AwsError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("source_id", s(source.key()))
            .update_expression(
                "ADD change_seq :n SET knowledge_base_id = :kb, data_source_id = :ds",
            )
            .expression_attribute_values(":n", n(count))
            .expression_attribute_values(":kb", s(&source.knowledge_base_id))
            .expression_attribute_values(":ds", s(&source.data_source_id))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("UpdateItem", e))?;
        let updated = out.attributes.unwrap_or_default();
        let updated = StoredMap {
            operation: "UpdateItem",
            name: format!("item {} of table {}", source.key(), self.table),
            map: &updated,
        };
        updated.get("change_seq")?.ok_or_else(|| {
            AwsError::new(
                "UpdateItem",
                "MissingAttribute",
                format!("reserving {count} change numbers of {source} returned no change_seq"),
            )
        })
    }

    /// Counts `k` sync requests and returns the lease as it is after the bump.
    pub async fn bump_requested(&self, source: &SourceId, k: u64) -> Result<LeaseState, AwsError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("source_id", s(source.key()))
            .update_expression(
                "ADD requested_seq :k SET knowledge_base_id = :kb, data_source_id = :ds",
            )
            .expression_attribute_values(":k", n(k))
            .expression_attribute_values(":kb", s(&source.knowledge_base_id))
            .expression_attribute_values(":ds", s(&source.data_source_id))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("UpdateItem", e))?;
        lease_from_item(
            "UpdateItem",
            &self.table,
            &out.attributes.unwrap_or_default(),
        )
    }

    pub async fn read(&self, source: &SourceId) -> Result<Option<LeaseState>, AwsError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("source_id", s(source.key()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("GetItem", e))?;
        out.item
            .map(|item| lease_from_item("GetItem", &self.table, &item))
            .transpose()
    }

    /// Claims a free lease for `round`. False when someone else holds it.
    pub async fn claim(
        &self,
        source: &SourceId,
        round: u64,
        execution: &str,
        now_ms: i64,
    ) -> Result<bool, AwsError> {
        self.take_lease(source, round, execution, now_ms, None)
            .await
    }

    /// Takes the lease over from `stale`, an execution that ended without releasing it.
    pub async fn reclaim(
        &self,
        source: &SourceId,
        stale: &str,
        round: u64,
        execution: &str,
        now_ms: i64,
    ) -> Result<bool, AwsError> {
        self.take_lease(source, round, execution, now_ms, Some(stale))
            .await
    }

    async fn take_lease(
        &self,
        source: &SourceId,
        round: u64,
        execution: &str,
        now_ms: i64,
        stale: Option<&str>,
    ) -> Result<bool, AwsError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("source_id", s(source.key()))
            .update_expression("SET active_execution = :exec, #round = :round, claimed_at_ms = :now, snapshots = :empty")
            .expression_attribute_names("#round", "round")
            .expression_attribute_values(":exec", s(execution))
            .expression_attribute_values(":round", n(round))
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":empty", AttributeValue::M(HashMap::new()));
        request = match stale {
            None => request.condition_expression("attribute_not_exists(active_execution)"),
            Some(stale) => request
                .condition_expression("active_execution = :stale")
                .expression_attribute_values(":stale", s(stale)),
        };
        applied("UpdateItem", request.send().await)
    }

    /// Moves the lease from `from` to `to`, the execution of `round` (the hand-over of
    /// `kb_autosync_core::handover`). A retry after the move finds `to` in place and goes on;
    /// the claim time and snapshots are only reset by the move itself, never under a successor
    /// that has already started pinning.
    pub async fn hand_over(
        &self,
        source: &SourceId,
        from: &str,
        round: u64,
        to: &str,
        now_ms: i64,
    ) -> Result<HandOver, AwsError> {
        if self
            .take_lease(source, round, to, now_ms, Some(from))
            .await?
        {
            return Ok(HandOver::Moved);
        }
        let holder = self.read(source).await?.and_then(|l| l.active_execution);
        Ok(match holder {
            Some(holder) if holder == to => HandOver::AlreadyMoved,
            holder => HandOver::Lost(holder),
        })
    }

    /// Forgets the pinned counters of the iterations this execution has finished: only the
    /// current iteration's starts are ever retried, so the lease item holds at most
    /// MaxJobAttempts snapshots however long the execution runs. False if `execution` no longer
    /// holds the lease.
    pub async fn clear_snapshots(
        &self,
        source: &SourceId,
        execution: &str,
    ) -> Result<bool, AwsError> {
        self.update_held_lease(source, execution, "SET snapshots = :empty")
            .await
    }

    /// Applies `update` to the lease item while `execution` holds it. `:empty` is bound to an
    /// empty map for updates that reset one.
    async fn update_held_lease(
        &self,
        source: &SourceId,
        execution: &str,
        update: &str,
    ) -> Result<bool, AwsError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("source_id", s(source.key()))
            .update_expression(update)
            .condition_expression(lease::HELD_BY_ME)
            .expression_attribute_values(":me", s(execution));
        if update.contains(":empty") {
            request =
                request.expression_attribute_values(":empty", AttributeValue::M(HashMap::new()));
        }
        applied("UpdateItem", request.send().await)
    }

    /// Pins the counters a job start covers. The first call for `token` reads `requested_seq`
    /// (the release target) and `change_seq` (the last change the job covers) and stores them;
    /// retries of the same start get the stored values back, never newer ones, so a job never
    /// claims changes recorded after it started. Fails if `execution` no longer holds the lease.
    pub async fn snapshot(
        &self,
        source: &SourceId,
        execution: &str,
        token: &str,
    ) -> Result<Snapshot, AwsError> {
        let current = self.read(source).await?.unwrap_or_default();
        let snap = snapshot_value(current.requested_seq, current.change_seq);
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("source_id", s(source.key()))
            .update_expression("SET snapshots.#token = if_not_exists(snapshots.#token, :snap)")
            .condition_expression("active_execution = :exec AND attribute_exists(snapshots)")
            .expression_attribute_names("#token", token)
            .expression_attribute_values(":snap", snap)
            .expression_attribute_values(":exec", s(execution))
            .return_values(ReturnValue::AllNew)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("UpdateItem", e))?;
        let stored = out
            .attributes
            .as_ref()
            .and_then(|a| a.get("snapshots"))
            .and_then(|m| m.as_m().ok())
            .and_then(|m| m.get(token))
            .and_then(|m| m.as_m().ok())
            .ok_or_else(|| {
                AwsError::new(
                    "UpdateItem",
                    "MissingSnapshot",
                    format!("snapshot {token} of {source} was not stored"),
                )
            })?;
        let stored = StoredMap {
            operation: "UpdateItem",
            name: format!(
                "snapshots.{token} of item {} of table {}",
                source.key(),
                self.table
            ),
            map: stored,
        };
        Ok(Snapshot {
            target_seq: stored.get("target_seq")?.unwrap_or(0),
            cutoff_seq: stored.get("cutoff_seq")?.unwrap_or(0),
        })
    }

    /// Every data source item (the sweep's view). Skips the SLOTS item.
    pub async fn all_sources(&self) -> Result<Vec<(SourceId, LeaseState)>, AwsError> {
        let items = self
            .client
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| AwsError::from_sdk("Scan", e))?;
        items
            .iter()
            .filter_map(|item| {
                let kb = text(item, "knowledge_base_id")?;
                let ds = text(item, "data_source_id")?;
                Some(lease_from_item("Scan", &self.table, item).map(|l| (SourceId::new(kb, ds), l)))
            })
            .collect()
    }

    pub async fn read_slots(&self) -> Result<Slots, AwsError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("source_id", s(SLOTS_KEY))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| AwsError::from_sdk("GetItem", e))?;
        Ok(out
            .item
            .map(|item| slots_from_item("GetItem", &self.table, &item))
            .transpose()?
            .unwrap_or_default())
    }

    async fn ensure_slots_item(&self) -> Result<(), AwsError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("source_id", s(SLOTS_KEY))
            .update_expression("SET holders = :empty")
            .condition_expression("attribute_not_exists(holders)")
            .expression_attribute_values(":empty", AttributeValue::M(HashMap::new()))
            .send()
            .await;
        applied("UpdateItem", result).map(|_| ())
    }

    /// Takes the job slot of the knowledge base for `execution`: atomically checks that no other
    /// execution holds it, that fewer than `max_jobs` slots are held, and that the last start was
    /// at least `min_interval_ms` ago. Holding it already (a retried start) succeeds once the
    /// interval has passed too: Bedrock counts a retried or replayed StartIngestionJob against
    /// its start rate like any other, so a holder retrying at once could be throttled because of
    /// another knowledge base's start.
    ///
    /// The last start is stamped `in_flight_ms` into the future until [`Self::mark_started`]
    /// stamps the time the StartIngestionJob call returned: the interval then runs from the call
    /// itself, and no other start can begin while one is in flight (a slow call, or a crash
    /// between the two writes, only delays the next start by at most `in_flight_ms`).
    pub async fn acquire_slot(
        &self,
        source: &SourceId,
        execution: &str,
        now_ms: i64,
        max_jobs: u32,
        min_interval_ms: i64,
        in_flight_ms: i64,
    ) -> Result<SlotOutcome, AwsError> {
        for first_try in [true, false] {
            let holder = slot_holder_value(source, execution, now_ms);
            let result = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("source_id", s(SLOTS_KEY))
                .update_expression("SET holders.#kb = :holder, last_start_ms = :stamp")
                .condition_expression(
                    "attribute_exists(holders) AND \
                     (attribute_not_exists(last_start_ms) OR last_start_ms <= :cut) AND \
                     (holders.#kb.execution = :exec OR \
                      (attribute_not_exists(holders.#kb) AND size(holders) < :max))",
                )
                .expression_attribute_names("#kb", &source.knowledge_base_id)
                .expression_attribute_values(":holder", holder)
                .expression_attribute_values(":stamp", n(now_ms + in_flight_ms))
                .expression_attribute_values(":exec", s(execution))
                .expression_attribute_values(":max", n(max_jobs))
                .expression_attribute_values(":cut", n(now_ms - min_interval_ms))
                .send()
                .await;
            match result {
                Ok(_) => return Ok(SlotOutcome::Acquired),
                Err(err) => {
                    let err = AwsError::from_sdk("UpdateItem", err);
                    if !err.is_condition_failed() {
                        return Err(err);
                    }
                    let slots = self.read_slots().await?;
                    let item_missing = slots.holders.is_empty() && slots.last_start_ms.is_none();
                    if first_try && item_missing {
                        self.ensure_slots_item().await?;
                        continue;
                    }
                    return Ok(SlotOutcome::Busy(slots));
                }
            }
        }
        Ok(SlotOutcome::Busy(self.read_slots().await?))
    }

    /// Frees the lease of an execution that ended without releasing it (stopped by hand, timed
    /// out) when nothing is left for it to do; the state machine's ReleaseLease, done by the
    /// sweep. False if the lease moved on meanwhile.
    pub async fn release_ended(
        &self,
        source: &SourceId,
        execution: &str,
    ) -> Result<bool, AwsError> {
        self.update_held_lease(source, execution, lease::RELEASE_LEASE)
            .await
    }

    /// Stamps the end of this execution's StartIngestionJob call (whatever it answered: Bedrock
    /// counts every call against its start rate) as the last start. No-op without the slot.
    pub async fn mark_started(
        &self,
        knowledge_base_id: &str,
        execution: &str,
        now_ms: i64,
    ) -> Result<(), AwsError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("source_id", s(SLOTS_KEY))
            .update_expression("SET last_start_ms = :now")
            .condition_expression("holders.#kb.execution = :exec")
            .expression_attribute_names("#kb", knowledge_base_id)
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":exec", s(execution))
            .send()
            .await;
        applied("UpdateItem", result).map(|_| ())
    }

    /// Puts (or refreshes) `round` in the line for job slots.
    pub async fn stand_in_line(&self, round: &WaitingRound) -> Result<(), AwsError> {
        let entry = update_value(round)?;
        for _ in 0..2 {
            let into_line = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("source_id", s(SLOTS_KEY))
                .update_expression("SET line.#src = :entry")
                .condition_expression("attribute_exists(line)")
                .expression_attribute_names("#src", &round.source_key)
                .expression_attribute_values(":entry", entry.clone())
                .send()
                .await;
            if applied("UpdateItem", into_line)? {
                return Ok(());
            }
            // The first round ever to wait: the line itself does not exist yet.
            let new_line = self
                .client
                .update_item()
                .table_name(&self.table)
                .key("source_id", s(SLOTS_KEY))
                .update_expression("SET line = :line")
                .condition_expression("attribute_not_exists(line)")
                .expression_attribute_values(
                    ":line",
                    AttributeValue::M(HashMap::from([(round.source_key.clone(), entry.clone())])),
                )
                .send()
                .await;
            if applied("UpdateItem", new_line)? {
                return Ok(());
            }
        }
        Err(AwsError::new(
            "UpdateItem",
            "ConditionalCheckFailedException",
            "the line of the SLOTS item kept appearing and disappearing",
        ))
    }

    /// Takes `source_key` out of the line if `execution` stands there (no-op otherwise).
    pub async fn leave_line(&self, source_key: &str, execution: &str) -> Result<bool, AwsError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("source_id", s(SLOTS_KEY))
            .update_expression("REMOVE line.#src")
            .condition_expression("line.#src.execution = :exec")
            .expression_attribute_names("#src", source_key)
            .expression_attribute_values(":exec", s(execution))
            .send()
            .await;
        applied("UpdateItem", result)
    }

    /// Removes an entry nobody refreshed since `seen_ms` (its round stopped waiting without
    /// leaving); no-op when it was refreshed meanwhile.
    pub async fn remove_stale_entry(&self, stale: &WaitingRound) -> Result<bool, AwsError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("source_id", s(SLOTS_KEY))
            .update_expression("REMOVE line.#src")
            .condition_expression("line.#src.seen_ms = :seen")
            .expression_attribute_names("#src", &stale.source_key)
            .expression_attribute_values(":seen", n(stale.seen_ms))
            .send()
            .await;
        applied("UpdateItem", result)
    }

    /// Claims the next census of jobs started elsewhere: stamps it `now_ms` (keeping the last
    /// count until the new one is recorded) if nobody claimed one since `previous_at_ms`.
    /// False when another check claimed it first.
    pub async fn claim_census(
        &self,
        previous: Option<&ForeignJobsCensus>,
        now_ms: i64,
    ) -> Result<bool, AwsError> {
        let claimed = ForeignJobsCensus {
            at_ms: now_ms,
            foreign_jobs: ForeignJobsCensus::count(previous),
        };
        let claimed = update_value(claimed)?;
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("source_id", s(SLOTS_KEY))
            .update_expression("SET census = :claimed")
            .expression_attribute_values(":claimed", claimed);
        let request = match previous {
            None => request.condition_expression("attribute_not_exists(census)"),
            Some(previous) => request
                .condition_expression("census.at_ms = :previous")
                .expression_attribute_values(":previous", n(previous.at_ms)),
        };
        applied("UpdateItem", request.send().await)
    }

    /// Records the count of the census claimed at `census.at_ms`; false when a later census
    /// was claimed meanwhile (its count is the newer one).
    pub async fn record_census(&self, census: &ForeignJobsCensus) -> Result<bool, AwsError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("source_id", s(SLOTS_KEY))
            .update_expression("SET census.foreign_jobs = :count")
            .condition_expression("census.at_ms = :at")
            .expression_attribute_values(":count", n(census.foreign_jobs))
            .expression_attribute_values(":at", n(census.at_ms))
            .send()
            .await;
        applied("UpdateItem", result)
    }

    /// Gives the slot back if `execution` holds it (no-op otherwise).
    pub async fn release_slot(
        &self,
        knowledge_base_id: &str,
        execution: &str,
    ) -> Result<bool, AwsError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("source_id", s(SLOTS_KEY))
            .update_expression("REMOVE holders.#kb")
            .condition_expression("holders.#kb.execution = :exec")
            .expression_attribute_names("#kb", knowledge_base_id)
            .expression_attribute_values(":exec", s(execution))
            .send()
            .await;
        applied("UpdateItem", result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item_size::{item_size, ITEM_LIMIT_BYTES};

    /// The template's upper bounds: MaxJobAttempts 10, MaxConcurrentJobsPerAccount 5.
    const MAX_JOB_ATTEMPTS: usize = 10;
    const MAX_JOBS: usize = 5;

    fn lease_item(requested_seq: AttributeValue) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("source_id".to_string(), s("KB#DS")),
            ("requested_seq".to_string(), requested_seq),
            ("change_seq".to_string(), n(7)),
            ("active_execution".to_string(), s("KB-DS-r3")),
            ("snapshots".to_string(), AttributeValue::M(HashMap::new())),
        ])
    }

    #[test]
    fn a_lease_item_reads_with_absent_attributes_as_defaults() {
        let lease = lease_from_item("GetItem", "sources", &lease_item(n(9))).unwrap();
        assert_eq!(
            lease,
            LeaseState {
                requested_seq: 9,
                change_seq: 7,
                round: 0,
                active_execution: Some("KB-DS-r3".into()),
                claimed_at_ms: None,
            }
        );
    }

    #[test]
    fn a_malformed_number_is_an_error_naming_the_item_and_attribute_not_a_zero() {
        for malformed in [n("9x"), n(-1), s("9")] {
            let err = lease_from_item("GetItem", "sources", &lease_item(malformed)).unwrap_err();
            assert_eq!(err.code, "MalformedItem");
            assert!(
                err.message
                    .contains("attribute requested_seq of item KB#DS of table sources"),
                "{err}"
            );
        }
        let holders = HashMap::from([(
            "KB".to_string(),
            AttributeValue::M(HashMap::from([
                ("execution".to_string(), s("KB-DS-r3")),
                ("since_ms".to_string(), n("soon")),
            ])),
        )]);
        let slots = HashMap::from([
            ("source_id".to_string(), s(SLOTS_KEY)),
            ("holders".to_string(), AttributeValue::M(holders)),
        ]);
        let err = slots_from_item("GetItem", "sources", &slots).unwrap_err();
        assert!(
            err.message
                .contains("attribute holders of item SLOTS of table sources"),
            "{err}"
        );
    }

    #[test]
    fn a_malformed_census_is_an_error_naming_it_not_zero_foreign_jobs() {
        let census = AttributeValue::M(HashMap::from([
            ("at_ms".to_string(), n(1)),
            ("foreign_jobs".to_string(), s("two")),
        ]));
        let slots = HashMap::from([
            ("source_id".to_string(), s(SLOTS_KEY)),
            ("census".to_string(), census),
        ]);
        let err = slots_from_item("GetItem", "sources", &slots).unwrap_err();
        assert!(
            err.message
                .contains("attribute census of item SLOTS of table sources"),
            "{err}"
        );
    }

    #[test]
    fn the_slots_item_reads_its_holders() {
        let source = SourceId::new("KB", "DS");
        let slots = HashMap::from([
            ("source_id".to_string(), s(SLOTS_KEY)),
            (
                "holders".to_string(),
                AttributeValue::M(HashMap::from([(
                    "KB".to_string(),
                    slot_holder_value(&source, "KB-DS-r3", 42),
                )])),
            ),
            ("last_start_ms".to_string(), n(40)),
        ]);
        assert_eq!(
            slots_from_item("GetItem", "sources", &slots).unwrap(),
            Slots {
                holders: vec![SlotHolder {
                    knowledge_base_id: "KB".into(),
                    execution_name: "KB-DS-r3".into(),
                    data_source_id: "DS".into(),
                    since_ms: 42,
                }],
                last_start_ms: Some(40),
                line: None,
                census: None,
            }
        );
    }

    fn longest_execution_name(i: usize) -> String {
        format!("{}-r{}", "K".repeat(57), u64::MAX - i as u64)
    }

    #[test]
    fn the_lease_item_stays_far_under_the_item_limit_however_long_its_data_source_runs() {
        // Snapshots are cleared at every new iteration and every hand-over (sync-processor's
        // continue_round), so at most one per attempt of the current iteration: the counters
        // and the number of changes or rounds behind them do not grow the item.
        let snapshots: HashMap<String, AttributeValue> = (0..MAX_JOB_ATTEMPTS)
            .map(|i| {
                (
                    format!("{}-{i}", "t".repeat(250)),
                    snapshot_value(u64::MAX, u64::MAX),
                )
            })
            .collect();
        let source = SourceId::new("K".repeat(10), "D".repeat(10));
        let lease = HashMap::from([
            ("source_id".to_string(), s(source.key())),
            (
                "knowledge_base_id".to_string(),
                s(&source.knowledge_base_id),
            ),
            ("data_source_id".to_string(), s(&source.data_source_id)),
            ("change_seq".to_string(), n(u64::MAX)),
            ("requested_seq".to_string(), n(u64::MAX)),
            ("round".to_string(), n(u64::MAX)),
            ("active_execution".to_string(), s(longest_execution_name(0))),
            ("claimed_at_ms".to_string(), n(i64::MAX)),
            ("snapshots".to_string(), AttributeValue::M(snapshots)),
        ]);
        let size = item_size(&lease);
        assert!(size < ITEM_LIMIT_BYTES / 50, "lease item of {size} bytes");
    }

    #[test]
    fn direct_batches_pinning_again_keep_the_lease_item_far_under_the_item_limit() {
        // A start-sync invocation that goes direct pins once per batch (at most
        // MAX_BATCHES_PER_INVOCATION), in every attempt of the iteration.
        let pins = MAX_JOB_ATTEMPTS * kb_autosync_core::direct::MAX_BATCHES_PER_INVOCATION as usize;
        let snapshots: HashMap<String, AttributeValue> = (0..pins)
            .map(|i| {
                (
                    format!("{}-b{i}", "t".repeat(250)),
                    snapshot_value(u64::MAX, u64::MAX),
                )
            })
            .collect();
        let lease = HashMap::from([
            ("source_id".to_string(), s("K".repeat(21))),
            ("active_execution".to_string(), s(longest_execution_name(0))),
            ("snapshots".to_string(), AttributeValue::M(snapshots)),
        ]);
        let size = item_size(&lease);
        assert!(
            size < ITEM_LIMIT_BYTES / 20,
            "lease item of {size} bytes with {pins} pins"
        );
    }

    #[test]
    fn the_line_for_job_slots_of_500_waiting_data_sources_stays_under_the_item_limit() {
        // One entry per data source, with the longest reason check-quota keeps; the line is
        // read back as written.
        let line: HashMap<String, AttributeValue> = (0..500)
            .map(|i| {
                let source = SourceId::new(format!("KB{i:08}"), format!("DS{i:08}"));
                let entry =
                    WaitingRound::new(source.key(), longest_execution_name(i), i64::MAX, i64::MAX)
                        .waiting(true, &"r".repeat(1_000));
                (
                    source.key(),
                    serde_dynamo::to_attribute_value(&entry).unwrap(),
                )
            })
            .collect();
        let item = HashMap::from([
            ("source_id".to_string(), s(SLOTS_KEY)),
            ("holders".to_string(), AttributeValue::M(HashMap::new())),
            ("line".to_string(), AttributeValue::M(line)),
        ]);
        let size = item_size(&item);
        assert!(
            size < ITEM_LIMIT_BYTES * 3 / 4,
            "SLOTS item of {size} bytes"
        );
        let slots = slots_from_item("GetItem", "sources", &item).unwrap();
        assert_eq!(slots.line.unwrap().len(), 500);
    }

    #[test]
    fn the_slots_item_holds_one_entry_per_running_job_whatever_the_number_of_data_sources() {
        // 50 data sources over 50 knowledge bases: at most MAX_JOBS of them hold a slot at once
        // (acquire_slot's condition), and a freed slot is REMOVEd.
        let holders: HashMap<String, AttributeValue> = (0..MAX_JOBS)
            .map(|i| {
                let source = SourceId::new(format!("KB{i:08}"), format!("DS{i:08}"));
                (
                    source.knowledge_base_id.clone(),
                    slot_holder_value(&source, &longest_execution_name(i), i64::MAX),
                )
            })
            .collect();
        let slots = HashMap::from([
            ("source_id".to_string(), s(SLOTS_KEY)),
            ("holders".to_string(), AttributeValue::M(holders)),
            ("last_start_ms".to_string(), n(i64::MAX)),
        ]);
        let size = item_size(&slots);
        assert!(size < ITEM_LIMIT_BYTES / 100, "SLOTS item of {size} bytes");
    }

    /// What the adapter itself must get right about taking the lease: the condition each
    /// kind of take is guarded by, and a failed condition read as "someone else holds it".
    mod lease_writes {
        use aws_sdk_dynamodb::operation::update_item::UpdateItemOutput;
        use aws_smithy_mocks::{mock, mock_client, RuleMode};

        use super::*;
        use crate::test_util::update_condition_failed;

        fn table(rules: &[&aws_smithy_mocks::Rule]) -> SourcesTable {
            SourcesTable::new(
                mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, rules),
                "t",
            )
        }

        #[tokio::test]
        async fn a_claim_takes_only_a_free_lease_and_resets_its_snapshots() {
            let claim = mock!(aws_sdk_dynamodb::Client::update_item)
                .match_requests(|r| {
                    let values = r.expression_attribute_values().unwrap();
                    r.condition_expression() == Some("attribute_not_exists(active_execution)")
                        && r.update_expression()
                            .is_some_and(|e| e.contains("snapshots = :empty"))
                        && values.get(":exec") == Some(&s("KB-DS-r4"))
                        && values.get(":round") == Some(&n(4))
                })
                .then_output(|| UpdateItemOutput::builder().build());
            let source = SourceId::new("KB", "DS");
            assert!(table(&[&claim])
                .claim(&source, 4, "KB-DS-r4", 1)
                .await
                .unwrap());
            let held =
                mock!(aws_sdk_dynamodb::Client::update_item).then_error(update_condition_failed);
            assert!(!table(&[&held])
                .claim(&source, 4, "KB-DS-r4", 1)
                .await
                .unwrap());
        }

        #[tokio::test]
        async fn a_reclaim_and_a_hand_over_take_the_lease_only_from_the_named_holder() {
            let reclaim = mock!(aws_sdk_dynamodb::Client::update_item)
                .match_requests(|r| {
                    let values = r.expression_attribute_values().unwrap();
                    r.condition_expression() == Some("active_execution = :stale")
                        && values.get(":stale") == Some(&s("KB-DS-r4"))
                        && values.get(":exec") == Some(&s("KB-DS-r5"))
                })
                .then_output(|| UpdateItemOutput::builder().build());
            let source = SourceId::new("KB", "DS");
            let sources = table(&[&reclaim]);
            assert!(sources
                .reclaim(&source, "KB-DS-r4", 5, "KB-DS-r5", 1)
                .await
                .unwrap());
            assert_eq!(
                sources
                    .hand_over(&source, "KB-DS-r4", 5, "KB-DS-r5", 1)
                    .await
                    .unwrap(),
                HandOver::Moved
            );
            assert_eq!(reclaim.num_calls(), 2);
        }
    }
}

//! The line for the account's job slots. Bedrock runs at most `MaxConcurrentJobsPerAccount` jobs
//! at once; when more data sources wait than slots are free, the one whose oldest pending change
//! is oldest goes next. A data source with a constant stream of changes cannot starve the others:
//! once its job ends, its oldest pending change is one recorded during that job, younger than
//! those of the data sources that waited meanwhile.
//!
//! Every round waiting in check-quota stands in the line (the SLOTS item's `line`, one entry per
//! data source) with why it waits, refreshed at each check; only rounds that wait for the
//! account's slots alone count for the order. An entry not refreshed for [`stale_after_ms`]
//! belongs to a round that stopped waiting without leaving (stopped by hand, crashed): it is
//! ignored, and removed by the next check that sees it.

use serde::{Deserialize, Serialize};

/// Longest reason kept in an entry: the SLOTS item holds one entry per waiting data source and
/// must stay far under DynamoDB's 400 KB.
pub const MAX_REASON_CHARS: usize = 160;

/// One data source's place in the line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingRound {
    /// `KB#DS`.
    pub source_key: String,
    pub execution: String,
    /// When its oldest pending change was recorded (ms since the epoch): the order of the line.
    pub waiting_since_ms: i64,
    /// When the round last checked.
    pub seen_ms: i64,
    /// Whether only the account's slots keep it waiting (its data source and knowledge base are
    /// free): only those rounds are in line for a slot.
    pub for_account_slot: bool,
    /// Why it waits, as check-quota said it.
    pub reason: String,
}

impl WaitingRound {
    pub fn new(
        source_key: impl Into<String>,
        execution: impl Into<String>,
        waiting_since_ms: i64,
        seen_ms: i64,
    ) -> Self {
        Self {
            source_key: source_key.into(),
            execution: execution.into(),
            waiting_since_ms,
            seen_ms,
            for_account_slot: false,
            reason: String::new(),
        }
    }

    /// The same round, waiting for `reason`.
    pub fn waiting(mut self, for_account_slot: bool, reason: &str) -> Self {
        self.for_account_slot = for_account_slot;
        self.reason = reason.chars().take(MAX_REASON_CHARS).collect();
        self
    }

    fn order(&self) -> (i64, &str) {
        (self.waiting_since_ms, &self.source_key)
    }
}

/// How long an entry counts without being refreshed: two waits and half a minute for the check.
pub fn stale_after_ms(quota_wait_seconds: u64) -> i64 {
    (2 * quota_wait_seconds as i64 + 30) * 1000
}

pub fn is_stale(entry: &WaitingRound, now_ms: i64, stale_after_ms: i64) -> bool {
    now_ms - entry.seen_ms > stale_after_ms
}

/// How many other data sources, live and in line for an account slot, have waited longer than
/// `me` (ties by key, so two rounds never both think they are first).
pub fn rounds_ahead(
    line: &[WaitingRound],
    me: &WaitingRound,
    now_ms: i64,
    stale_after_ms: i64,
) -> usize {
    line.iter()
        .filter(|other| other.source_key != me.source_key)
        .filter(|other| other.for_account_slot && !is_stale(other, now_ms, stale_after_ms))
        .filter(|other| other.order() < me.order())
        .count()
}

/// The knowledge base of a `KB#DS` key.
fn knowledge_base_of(source_key: &str) -> &str {
    source_key.split('#').next().unwrap_or(source_key)
}

/// A live entry of another data source of `me`'s knowledge base that has waited longer, if
/// any: one job runs per knowledge base, and its data sources take turns oldest pending change
/// first, so a data source that keeps changing cannot keep the slot from its sibling (after its
/// job, its oldest pending change is younger than the sibling's). Whatever the sibling waits
/// for (the account, a job, the start rate), it goes first.
pub fn knowledge_base_ahead<'a>(
    line: &'a [WaitingRound],
    me: &WaitingRound,
    now_ms: i64,
    stale_after_ms: i64,
) -> Option<&'a WaitingRound> {
    let knowledge_base = knowledge_base_of(&me.source_key);
    line.iter()
        .filter(|other| other.source_key != me.source_key)
        .filter(|other| knowledge_base_of(&other.source_key) == knowledge_base)
        .filter(|other| !is_stale(other, now_ms, stale_after_ms))
        .filter(|other| other.order() < me.order())
        .min_by(|a, b| a.order().cmp(&b.order()))
}

/// The place a data source takes in the line: the one its entry already has, unless its oldest
/// pending change (`since_ms`) is older still. Places only move forward, so every check of every
/// round compares the same stored values, and no two rounds can each find the other ahead.
pub fn kept_place(line: &[WaitingRound], source_key: &str, since_ms: i64) -> i64 {
    line.iter()
        .filter(|e| e.source_key == source_key)
        .map(|e| e.waiting_since_ms)
        .fold(since_ms, i64::min)
}

/// The live entries in line for an account slot, first first (for `autosync status`).
pub fn in_order(line: &[WaitingRound], now_ms: i64, stale_after_ms: i64) -> Vec<&WaitingRound> {
    let mut live: Vec<&WaitingRound> = line
        .iter()
        .filter(|e| e.for_account_slot && !is_stale(e, now_ms, stale_after_ms))
        .collect();
    live.sort_by(|a, b| a.order().cmp(&b.order()));
    live
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, since: i64, seen: i64) -> WaitingRound {
        WaitingRound::new(key, format!("{key}-r1"), since, seen).waiting(true, "account busy")
    }

    #[test]
    fn a_sibling_of_the_knowledge_base_that_waited_longer_goes_first_whatever_it_waits_for() {
        let stale = stale_after_ms(60);
        let now = 1_000_000;
        let line = vec![
            WaitingRound::new("KB1#B", "b", 100, now).waiting(false, "account busy"),
            entry("KB2#C", 50, now),
            // Older still, but stopped checking.
            entry("KB1#D", 10, now - stale - 1),
        ];
        let noisy = WaitingRound::new("KB1#A", "a", 200, now);
        let ahead = knowledge_base_ahead(&line, &noisy, now, stale).unwrap();
        assert_eq!(ahead.source_key, "KB1#B");
        let older = WaitingRound::new("KB1#A", "a", 90, now);
        assert_eq!(knowledge_base_ahead(&line, &older, now, stale), None);
    }

    #[test]
    fn the_longest_waiting_goes_first_and_stale_or_blocked_entries_do_not_count() {
        let stale = stale_after_ms(60);
        let now = 1_000_000;
        let line = vec![
            entry("KB1#DS", 100, now - 1_000),
            entry("KB2#DS", 300, now - 1_000),
            // Waited longest, but its round stopped checking long ago.
            entry("KB3#DS", 50, now - stale - 1),
            // Waited long too, but its own knowledge base is busy: not in line for the account.
            WaitingRound::new("KB4#DS", "x", 10, now).waiting(false, "knowledge base busy"),
        ];
        let me = WaitingRound::new("KB5#DS", "KB5-r1", 200, now);
        assert_eq!(rounds_ahead(&line, &me, now, stale), 1);
        let first = WaitingRound::new("KB1#DS", "KB1-r2", 100, now);
        assert_eq!(
            rounds_ahead(&line, &first, now, stale),
            0,
            "its own entry does not count"
        );
        let order: Vec<&str> = in_order(&line, now, stale)
            .iter()
            .map(|e| e.source_key.as_str())
            .collect();
        assert_eq!(order, vec!["KB1#DS", "KB2#DS"]);
    }

    #[test]
    fn equal_ages_are_ordered_by_key_so_exactly_one_is_first() {
        let now = 10_000;
        let a = entry("KB-A#DS", 5, now);
        let b = entry("KB-B#DS", 5, now);
        let stale = stale_after_ms(10);
        assert_eq!(rounds_ahead(std::slice::from_ref(&b), &a, now, stale), 0);
        assert_eq!(rounds_ahead(std::slice::from_ref(&a), &b, now, stale), 1);
    }

    #[test]
    fn reasons_are_bounded() {
        let long = "x".repeat(1_000);
        let e = WaitingRound::new("K#D", "e", 0, 0).waiting(true, &long);
        assert_eq!(e.reason.chars().count(), MAX_REASON_CHARS);
    }

    #[test]
    fn a_place_once_taken_is_kept_so_two_rounds_never_wait_for_each_other() {
        let now = 1_000;
        let stale = stale_after_ms(1);
        // Both stored earlier; since then neither has a pending change left, so each would take
        // "now" as its age and find the other ahead.
        let line = vec![entry("KB-A#DS", 100, now), entry("KB-B#DS", 200, now)];
        let a = WaitingRound::new("KB-A#DS", "a", kept_place(&line, "KB-A#DS", now), now);
        let b = WaitingRound::new("KB-B#DS", "b", kept_place(&line, "KB-B#DS", now), now);
        assert_eq!(rounds_ahead(&line, &a, now, stale), 0);
        assert_eq!(rounds_ahead(&line, &b, now, stale), 1);
        assert_eq!(
            kept_place(&line, "KB-C#DS", 7),
            7,
            "a new round takes its oldest change"
        );
    }
}

//! Bedrock ingestion quotas and the decision "may this data source start a job now".
//!
//! Quotas (none adjustable): 1 running job per data source, 1 per knowledge base, 5 per account;
//! StartIngestionJob 0.1 requests/s. The service waits instead of provoking an error.

use serde::{Deserialize, Serialize};

/// The limits this deployment stays under.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct IngestionQuota {
    /// Account-wide concurrent jobs (Bedrock: 5). The public sample wrote 55.
    pub max_concurrent_jobs_per_account: u32,
    /// Minimum spacing of StartIngestionJob calls, in milliseconds (Bedrock: 0.1/s => 10 000).
    pub start_min_interval_ms: i64,
}

impl Default for IngestionQuota {
    fn default() -> Self {
        Self {
            max_concurrent_jobs_per_account: 5,
            start_min_interval_ms: 10_000,
        }
    }
}

/// What check-quota observed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuotaObservation {
    /// Running jobs (STARTING / IN_PROGRESS / STOPPING) on this data source.
    pub data_source_jobs: Vec<String>,
    /// Running jobs on other data sources of the same knowledge base, as (data source, job).
    pub knowledge_base_jobs: Vec<(String, String)>,
    /// Running jobs across every data source this stack manages (including this one's).
    pub account_jobs: u32,
    /// A job slot of this knowledge base held by another execution of this stack.
    pub slot_held_by: Option<String>,
    /// Job slots held by executions of this stack across the account.
    pub slots_held: u32,
    /// Milliseconds since the last StartIngestionJob this stack made (None: never).
    pub since_last_start_ms: Option<i64>,
    /// The round is expected to go direct (its mode allows it, the data source has completed a
    /// job, few changes are pending): it needs no job slot, so only jobs running on its data
    /// source or knowledge base make it wait, not the account's jobs or the start rate.
    pub direct_expected: bool,
    /// Data sources in line for the account's job slots that have waited longer than this one
    /// (`kb_autosync_core::slot_line`): they go first.
    pub rounds_ahead: usize,
    /// This round's execution already holds its knowledge base's job slot (kept from an earlier
    /// iteration whose release has not happened yet): the line does not apply to it.
    pub holds_slot: bool,
    /// Another data source of the knowledge base that has waited longer
    /// (`slot_line::knowledge_base_ahead`): it takes the knowledge base's job first.
    pub knowledge_base_ahead: Option<String>,
}

impl QuotaObservation {
    /// Whether the round would start a job if the account had a slot for it: its data source and
    /// knowledge base are free and it is not expected to go direct. Only such rounds stand in
    /// line for the account's slots.
    pub fn needs_account_slot(&self) -> bool {
        self.data_source_jobs.is_empty()
            && self.knowledge_base_jobs.is_empty()
            && self.slot_held_by.is_none()
            && !self.direct_expected
            && (self.knowledge_base_ahead.is_none() || self.holds_slot)
    }

    /// Whether the round is near the front of the line for the account (`limit` slots) and
    /// its data source is free: it should check again soon.
    fn at_the_front(&self, limit: u32) -> bool {
        self.data_source_jobs.is_empty()
            && !self.direct_expected
            && self.rounds_ahead < limit as usize
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum QuotaDecision {
    Proceed,
    Wait { wait_seconds: u64, reason: String },
}

impl IngestionQuota {
    /// Decides whether to start now; `busy_wait_seconds` is how long to wait for a busy slot.
    pub fn decide(&self, seen: &QuotaObservation, busy_wait_seconds: u64) -> QuotaDecision {
        self.decide_in_line(seen, busy_wait_seconds, busy_wait_seconds)
    }

    /// [`Self::decide`], with a shorter wait, `front_wait_seconds`, for a round near the front
    /// of the line for the account's slots (fewer rounds ahead of it than the account has
    /// slots): it is next when a job ends, and a slot left idle until its next check would add
    /// a whole wait to every data source behind it.
    pub fn decide_in_line(
        &self,
        seen: &QuotaObservation,
        busy_wait_seconds: u64,
        front_wait_seconds: u64,
    ) -> QuotaDecision {
        match self.decide_once(seen, busy_wait_seconds) {
            QuotaDecision::Wait {
                wait_seconds,
                reason,
            } if seen.at_the_front(self.max_concurrent_jobs_per_account) => QuotaDecision::Wait {
                wait_seconds: wait_seconds.min(front_wait_seconds.max(1)),
                reason,
            },
            decision => decision,
        }
    }

    fn decide_once(&self, seen: &QuotaObservation, busy_wait_seconds: u64) -> QuotaDecision {
        let wait = |reason: String| QuotaDecision::Wait {
            wait_seconds: busy_wait_seconds.max(1),
            reason,
        };
        if !seen.data_source_jobs.is_empty() {
            return wait(format!(
                "data source busy: job {} is running (1 concurrent job per data source)",
                seen.data_source_jobs.join(", ")
            ));
        }
        if let Some((ds, job)) = seen.knowledge_base_jobs.first() {
            return wait(format!(
                "knowledge base busy: job {job} is running on data source {ds} (1 concurrent job per knowledge base)"
            ));
        }
        if let Some(holder) = &seen.slot_held_by {
            return wait(format!(
                "knowledge base busy: execution {holder} holds its job slot"
            ));
        }
        if seen.direct_expected {
            return QuotaDecision::Proceed;
        }
        if let (Some(sibling), false) = (&seen.knowledge_base_ahead, seen.holds_slot) {
            return wait(format!(
                "in line for the knowledge base's job slot: data source {sibling} has older pending changes and goes first"
            ));
        }
        let running = seen.account_jobs.max(seen.slots_held);
        let limit = self.max_concurrent_jobs_per_account;
        let ahead = match seen.rounds_ahead {
            0 => String::new(),
            n => format!("; {n} data source(s) with older pending changes are ahead in line"),
        };
        if running >= limit {
            return wait(format!(
                "account busy: {running} jobs running, limit {limit} (MaxConcurrentJobsPerAccount){ahead}"
            ));
        }
        let free = (limit - running) as usize;
        if seen.rounds_ahead >= free && !seen.holds_slot {
            return wait(format!(
                "in line for the account's job slots: {free} free, {} data source(s) with older pending changes go first",
                seen.rounds_ahead
            ));
        }
        if let Some(since) = seen.since_last_start_ms {
            let remaining = self.start_min_interval_ms - since;
            if remaining > 0 {
                return QuotaDecision::Wait {
                    wait_seconds: (remaining as u64).div_ceil(1000).max(1),
                    reason: format!(
                        "StartIngestionJob rate: last start {since} ms ago, minimum spacing {} ms",
                        self.start_min_interval_ms
                    ),
                };
            }
        }
        QuotaDecision::Proceed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_account_limit_is_five() {
        // Defect 3: the public sample wrote 55.
        assert_eq!(IngestionQuota::default().max_concurrent_jobs_per_account, 5);
    }

    #[test]
    fn idle_proceeds() {
        let quota = IngestionQuota::default();
        assert_eq!(
            quota.decide(&QuotaObservation::default(), 60),
            QuotaDecision::Proceed
        );
        let seen = QuotaObservation {
            since_last_start_ms: Some(10_000),
            account_jobs: 4,
            ..Default::default()
        };
        assert_eq!(quota.decide(&seen, 60), QuotaDecision::Proceed);
    }

    #[test]
    fn a_direct_round_waits_for_its_data_source_and_knowledge_base_but_not_for_the_account() {
        let quota = IngestionQuota::default();
        let account_full = QuotaObservation {
            account_jobs: 5,
            since_last_start_ms: Some(1),
            direct_expected: true,
            ..Default::default()
        };
        assert_eq!(quota.decide(&account_full, 60), QuotaDecision::Proceed);
        let as_job = QuotaObservation {
            direct_expected: false,
            ..account_full.clone()
        };
        assert!(matches!(
            quota.decide(&as_job, 60),
            QuotaDecision::Wait { .. }
        ));
        let console_job = QuotaObservation {
            data_source_jobs: vec!["J1".into()],
            ..account_full.clone()
        };
        assert!(matches!(
            quota.decide(&console_job, 60),
            QuotaDecision::Wait { .. }
        ));
        let kb_job = QuotaObservation {
            knowledge_base_jobs: vec![("DS2".into(), "J2".into())],
            ..account_full
        };
        assert!(matches!(
            quota.decide(&kb_job, 60),
            QuotaDecision::Wait { .. }
        ));
    }

    #[test]
    fn busy_data_source_knowledge_base_and_slot_wait() {
        let quota = IngestionQuota::default();
        let ds = QuotaObservation {
            data_source_jobs: vec!["J1".into()],
            ..Default::default()
        };
        let QuotaDecision::Wait {
            wait_seconds,
            reason,
        } = quota.decide(&ds, 30)
        else {
            panic!()
        };
        assert_eq!(wait_seconds, 30);
        assert!(reason.contains("J1") && reason.contains("data source"));
        let kb = QuotaObservation {
            knowledge_base_jobs: vec![("DS2".into(), "J2".into())],
            ..Default::default()
        };
        assert!(
            matches!(quota.decide(&kb, 30), QuotaDecision::Wait { reason, .. } if reason.contains("DS2"))
        );
        let slot = QuotaObservation {
            slot_held_by: Some("KB-DS2-r1".into()),
            ..Default::default()
        };
        assert!(
            matches!(quota.decide(&slot, 30), QuotaDecision::Wait { reason, .. } if reason.contains("KB-DS2-r1"))
        );
    }

    #[test]
    fn account_limit_counts_jobs_and_slots() {
        let quota = IngestionQuota {
            max_concurrent_jobs_per_account: 2,
            ..Default::default()
        };
        let jobs = QuotaObservation {
            account_jobs: 2,
            ..Default::default()
        };
        assert!(
            matches!(quota.decide(&jobs, 5), QuotaDecision::Wait { reason, .. } if reason.contains("limit 2"))
        );
        let slots = QuotaObservation {
            account_jobs: 0,
            slots_held: 2,
            ..Default::default()
        };
        assert!(matches!(
            quota.decide(&slots, 5),
            QuotaDecision::Wait { .. }
        ));
        let below = QuotaObservation {
            account_jobs: 1,
            slots_held: 1,
            ..Default::default()
        };
        assert_eq!(quota.decide(&below, 5), QuotaDecision::Proceed);
    }

    #[test]
    fn start_rate_waits_for_the_rest_of_the_interval() {
        let quota = IngestionQuota::default();
        let seen = QuotaObservation {
            since_last_start_ms: Some(2_500),
            ..Default::default()
        };
        let QuotaDecision::Wait { wait_seconds, .. } = quota.decide(&seen, 60) else {
            panic!()
        };
        assert_eq!(wait_seconds, 8);
    }

    #[test]
    fn decision_serialises_for_the_state_machine_choice() {
        let json = serde_json::to_value(QuotaDecision::Wait {
            wait_seconds: 3,
            reason: "r".into(),
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({"decision": "WAIT", "wait_seconds": 3, "reason": "r"})
        );
        assert_eq!(
            serde_json::to_value(QuotaDecision::Proceed).unwrap(),
            serde_json::json!({"decision": "PROCEED"})
        );
    }

    #[test]
    fn a_free_slot_goes_to_the_data_sources_that_waited_longer() {
        let quota = IngestionQuota {
            max_concurrent_jobs_per_account: 2,
            ..Default::default()
        };
        let one_free = QuotaObservation {
            account_jobs: 1,
            rounds_ahead: 1,
            ..Default::default()
        };
        let QuotaDecision::Wait { reason, .. } = quota.decide(&one_free, 5) else {
            panic!("a slot taken by a younger round")
        };
        assert!(reason.contains("1 free, 1 data source(s)"), "{reason}");
        let two_free = QuotaObservation {
            account_jobs: 0,
            ..one_free.clone()
        };
        assert_eq!(quota.decide(&two_free, 5), QuotaDecision::Proceed);
        let full = QuotaObservation {
            account_jobs: 2,
            rounds_ahead: 3,
            ..Default::default()
        };
        assert!(
            matches!(quota.decide(&full, 5), QuotaDecision::Wait { reason, .. } if reason.contains("3 data source(s) with older"))
        );
        // A direct round or one whose knowledge base is busy is not in line for the account.
        assert!(one_free.needs_account_slot());
        let direct = QuotaObservation {
            direct_expected: true,
            ..one_free.clone()
        };
        assert!(!direct.needs_account_slot());
        assert_eq!(quota.decide(&direct, 5), QuotaDecision::Proceed);
    }

    #[test]
    fn the_front_of_the_line_checks_again_sooner_than_the_rest() {
        let quota = IngestionQuota {
            max_concurrent_jobs_per_account: 2,
            ..Default::default()
        };
        let full = |ahead| QuotaObservation {
            account_jobs: 2,
            rounds_ahead: ahead,
            ..Default::default()
        };
        let wait = |seen: &QuotaObservation| match quota.decide_in_line(seen, 60, 30) {
            QuotaDecision::Wait { wait_seconds, .. } => wait_seconds,
            QuotaDecision::Proceed => panic!("the account is full"),
        };
        assert_eq!(wait(&full(0)), 30);
        assert_eq!(wait(&full(1)), 30);
        assert_eq!(wait(&full(2)), 60);
        // Its own data source busy (a console job): the usual wait.
        let busy = QuotaObservation {
            data_source_jobs: vec!["CONSOLE1".into()],
            ..full(0)
        };
        assert_eq!(wait(&busy), 60);
    }

    #[test]
    fn a_round_waiting_for_its_knowledge_base_checks_again_soon() {
        let quota = IngestionQuota::default();
        let next = QuotaObservation {
            slot_held_by: Some("KB-DS2-r4".into()),
            ..Default::default()
        };
        assert!(!next.needs_account_slot());
        assert!(matches!(
            quota.decide_in_line(&next, 60, 5),
            QuotaDecision::Wait {
                wait_seconds: 5,
                ..
            }
        ));
    }

    #[test]
    fn a_round_holding_its_slot_is_not_held_back_by_the_line() {
        let quota = IngestionQuota {
            max_concurrent_jobs_per_account: 2,
            ..Default::default()
        };
        // Rounds ahead in line wait for a slot; this round already holds one from its previous
        // iteration, and waiting would keep that slot from everyone.
        let holder = QuotaObservation {
            rounds_ahead: 5,
            account_jobs: 1,
            holds_slot: true,
            ..Default::default()
        };
        assert_eq!(quota.decide(&holder, 60), QuotaDecision::Proceed);
    }
}

//! The per-data-source lease: at most one state machine execution per data source at a time,
//! and no request ever acknowledged without a running execution that will cover it.
//!
//! Protocol (see the README's "Correctness" section; every writer of the lease item and the
//! SLOTS item, with its condition, is listed in `docs/lease-protocol.md`):
//! 1. A sync request bumps `requested_seq`, then looks at `active_execution`.
//! 2. Free: claim it conditionally (`attribute_not_exists(active_execution)`) for round `round+1`
//!    and start the execution named after that round.
//! 3. Held by a running execution: acknowledge; that execution re-reads `requested_seq` before it
//!    releases, and goes round again if the counter moved.
//! 4. Held, execution not started yet: a fresh claim is given time (the request is retried later);
//!    an old one is healed by starting the very execution the lease names (same name and input,
//!    so it cannot start twice).
//! 5. Held by an execution that has ended without releasing (killed, timed out): reclaim
//!    conditionally on the stale holder and start a new round.
//! 6. A round that must go again with a long execution history hands the lease over to the next
//!    round's execution (`crate::handover`); to a request that is a claim like any other (the
//!    successor is running, or not started yet and healed as in 4).

use crate::SourceId;

/// `errorType` of a task whose execution no longer holds the lease (it moved on to another
/// execution): the state machine ends that execution, the holder covers what is pending.
pub const LEASE_MOVED: &str = "LeaseMoved";

/// Frees a lease: what the state machine's ReleaseLease, ReleaseFailedRound and
/// ReleaseLeaseAfterError tasks write, and the sweep's `release_ended` (the test
/// `the_state_machine_releases_the_lease_as_the_rust_code_does` keeps them equal).
pub const RELEASE_LEASE: &str = "REMOVE active_execution, claimed_at_ms, snapshots";
/// The condition of every write by the lease's holder (`:me`: the execution's name).
pub const HELD_BY_ME: &str = "active_execution = :me";
/// The condition of a release after a round: held, and no request counted since the pin
/// (`:target`: the `requested_seq` pinned before the job or direct batch).
pub const HELD_AND_NO_NEW_REQUEST: &str = "active_execution = :me AND requested_seq = :target";

/// The lease item of one data source, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseState {
    pub requested_seq: u64,
    pub change_seq: u64,
    pub round: u64,
    pub active_execution: Option<String>,
    /// Epoch milliseconds of the claim of `active_execution`.
    pub claimed_at_ms: Option<i64>,
}

/// What Step Functions says about the execution named in the lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionState {
    Running,
    /// SUCCEEDED, FAILED, TIMED_OUT, ABORTED, ...
    Ended(String),
    NotFound,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseAction {
    /// Lease is free: claim round `round` and start `execution_name`.
    Claim { round: u64, execution_name: String },
    /// A running execution holds the lease and will see this request's counter bump.
    Acknowledge { execution_name: String },
    /// Claimed moments ago, execution not visible yet: retry the request later.
    RetryLater { reason: String },
    /// Claimed long ago and never started (the claimer crashed): start the named execution.
    StartClaimed { round: u64, execution_name: String },
    /// The holder ended without releasing: take the lease over for a new round.
    Reclaim {
        stale_execution: String,
        round: u64,
        execution_name: String,
    },
}

/// Step Functions execution names: 1-80 characters of `[A-Za-z0-9-_]`. Bedrock client tokens
/// derived from them accept only letters, digits and hyphens, so everything else becomes `-`.
pub fn execution_name(source: &SourceId, round: u64) -> String {
    let sanitize = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect()
    };
    let suffix = format!("-r{round}");
    let mut base = format!(
        "{}-{}",
        sanitize(&source.knowledge_base_id),
        sanitize(&source.data_source_id)
    );
    base.truncate(80 - suffix.len());
    format!("{base}{suffix}")
}

/// Decides what a request does after bumping the counter. `execution` is what Step Functions
/// says about the holder (only consulted when the lease is held).
pub fn decide(
    source: &SourceId,
    lease: &LeaseState,
    execution: Option<&ExecutionState>,
    now_ms: i64,
    claim_grace_ms: i64,
) -> LeaseAction {
    let next_round = lease.round + 1;
    let Some(holder) = &lease.active_execution else {
        return LeaseAction::Claim {
            round: next_round,
            execution_name: execution_name(source, next_round),
        };
    };
    match execution {
        Some(ExecutionState::Running) => LeaseAction::Acknowledge {
            execution_name: holder.clone(),
        },
        Some(ExecutionState::Ended(status)) => {
            tracing::warn!(%source, execution = %holder, %status, "lease held by an execution that ended without releasing it: reclaiming");
            LeaseAction::Reclaim {
                stale_execution: holder.clone(),
                round: next_round,
                execution_name: execution_name(source, next_round),
            }
        }
        None | Some(ExecutionState::NotFound) => {
            let age = lease
                .claimed_at_ms
                .map(|at| now_ms - at)
                .unwrap_or(i64::MAX);
            if age < claim_grace_ms {
                LeaseAction::RetryLater {
                    reason: format!(
                        "lease of {source} was claimed {age} ms ago by {holder}, whose execution has not started yet"
                    ),
                }
            } else {
                LeaseAction::StartClaimed {
                    round: lease.round,
                    execution_name: holder.clone(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> SourceId {
        SourceId::new("KB12345678", "DS12345678")
    }

    fn held(claimed_at_ms: i64) -> LeaseState {
        LeaseState {
            requested_seq: 5,
            change_seq: 5,
            round: 3,
            active_execution: Some("KB12345678-DS12345678-r3".into()),
            claimed_at_ms: Some(claimed_at_ms),
        }
    }

    #[test]
    fn names_are_deterministic_per_round_and_distinct_across_rounds() {
        // Defect 9: names from unix seconds collided for two messages in the same second.
        assert_eq!(execution_name(&source(), 4), "KB12345678-DS12345678-r4");
        assert_ne!(execution_name(&source(), 4), execution_name(&source(), 5));
        let odd = SourceId::new("kb_1.x", "D".repeat(100));
        let name = execution_name(&odd, 12);
        assert!(
            name.len() <= 80 && name.ends_with("-r12") && name.starts_with("kb-1-x-"),
            "{name}"
        );
    }

    #[test]
    fn free_lease_is_claimed_for_the_next_round() {
        let lease = LeaseState {
            round: 3,
            ..Default::default()
        };
        assert_eq!(
            decide(&source(), &lease, None, 0, 1000),
            LeaseAction::Claim {
                round: 4,
                execution_name: "KB12345678-DS12345678-r4".into()
            }
        );
    }

    #[test]
    fn running_holder_acknowledges() {
        let action = decide(
            &source(),
            &held(0),
            Some(&ExecutionState::Running),
            10,
            1000,
        );
        assert!(matches!(action, LeaseAction::Acknowledge { .. }));
    }

    #[test]
    fn fresh_claim_without_execution_is_retried_old_one_is_started() {
        let action = decide(
            &source(),
            &held(1_000),
            Some(&ExecutionState::NotFound),
            1_500,
            1_000,
        );
        assert!(matches!(action, LeaseAction::RetryLater { reason } if reason.contains("500 ms")));
        let action = decide(
            &source(),
            &held(1_000),
            Some(&ExecutionState::NotFound),
            2_500,
            1_000,
        );
        assert_eq!(
            action,
            LeaseAction::StartClaimed {
                round: 3,
                execution_name: "KB12345678-DS12345678-r3".into()
            }
        );
    }

    #[test]
    fn ended_holder_is_reclaimed_for_a_new_round() {
        let action = decide(
            &source(),
            &held(0),
            Some(&ExecutionState::Ended("ABORTED".into())),
            10,
            1000,
        );
        assert_eq!(
            action,
            LeaseAction::Reclaim {
                stale_execution: "KB12345678-DS12345678-r3".into(),
                round: 4,
                execution_name: "KB12345678-DS12345678-r4".into()
            }
        );
    }
}

//! Going round again: in the same execution, or in a fresh one that takes the lease over.
//!
//! A Standard workflow execution fails when its history reaches 25,000 events (a hard quota that
//! no Catch can handle), and a data source that keeps receiving changes keeps its execution going
//! round after round. So when a round must go again, the execution first asks how long its
//! history is; past a bound (`HandOverPolicy::after_history_events`) it hands the lease to the
//! execution of the next round and ends, instead of looping on:
//! 1. the lease moves by one conditional write (`active_execution = :me` -> the next round's
//!    name, `round` + 1), so no request ever sees the lease free in between;
//! 2. the next execution is started with the name of that round (StartExecution is idempotent by
//!    name) and the counters the next job needs (`previous_target`, `previous_cutoff`);
//! 3. this execution succeeds.
//!
//! A crash between 1 and 2 leaves a lease that names an execution that does not exist yet: the
//! existing healing (`lease::decide`, `StartClaimed`) starts it on the next request or sweep,
//! exactly as for a claim whose StartExecution never happened.

use serde::{Deserialize, Serialize};

use crate::lease::execution_name;
use crate::workflow::{RoundInput, WorkflowSettings, WorkflowState};

/// AWS's hard limit on the history of a Standard workflow execution.
pub const HISTORY_EVENT_LIMIT: u64 = 25_000;

/// When an execution hands over instead of going round again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandOverPolicy {
    /// Hand over once the history has this many events. One iteration of a round must fit in
    /// what is left below [`HISTORY_EVENT_LIMIT`]: a poll of a running job costs 9 events, so the
    /// default of 5,000 leaves room for a single job of about 18 hours at 30-second polls.
    pub after_history_events: u64,
}

impl Default for HandOverPolicy {
    fn default() -> Self {
        Self {
            after_history_events: 5_000,
        }
    }
}

impl HandOverPolicy {
    pub fn should_hand_over(&self, history_events: u64) -> bool {
        history_events >= self.after_history_events
    }
}

/// Why the round goes again (the state machine asks after a failed release).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The job ended and sync requests were counted while it ran.
    RequestsDuringJob,
    /// The round failed and sync requests were counted while it did: they get a new iteration
    /// after a pause (`quota_wait_seconds`), not the five-minute sweep.
    RequestsDuringFailure,
}

/// sync-processor's payload from the state machine's ContinueRound and RetryRound tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContinueRequest {
    pub reason: Reason,
    /// `$$.Execution.Id`: whose history is measured.
    pub execution_arn: String,
    pub state: WorkflowState,
}

/// What the state machine does next (stored at `$.continuation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Next {
    /// Go round again in this execution with `state`.
    Continue,
    /// Go round again in this execution with `state`, after `quota_wait_seconds`.
    ContinueAfterWait,
    /// The lease is with another execution: this one ends (succeeds).
    End,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Continuation {
    pub next: Next,
    /// The state of the next iteration (absent when this execution ends).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<WorkflowState>,
    /// The execution that holds the lease now, when this one ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handed_over_to: Option<String>,
    /// History events of this execution when it was measured.
    pub history_events: u64,
}

/// The state the next iteration starts from: the round's input and the counters the previous
/// job was pinned to, so start-sync can skip a job that would find nothing new. After a failure
/// the failed job covered nothing: the counters of the last successful iteration stay.
pub fn next_iteration(state: &WorkflowState, reason: Reason) -> WorkflowState {
    let job = state
        .job
        .as_ref()
        .filter(|_| reason == Reason::RequestsDuringJob);
    WorkflowState {
        input: state.input.clone(),
        quota: None,
        job: None,
        monitor: None,
        previous_target: job
            .map(|j| j.target_seq_text.clone())
            .or_else(|| state.previous_target.clone()),
        previous_cutoff: job.map(|j| j.cutoff_seq).or(state.previous_cutoff),
        error: None,
        iteration: state.iteration + 1,
    }
}

/// The input of the execution that takes the lease over: the next round of the same data
/// source, with the current settings and the counters of the next iteration.
pub fn successor(
    state: &WorkflowState,
    reason: Reason,
    settings: WorkflowSettings,
) -> WorkflowState {
    let source = state.input.source();
    let round = state.input.round + 1;
    let next = next_iteration(state, reason);
    WorkflowState {
        input: RoundInput::new(&source, round, execution_name(&source, round), settings),
        iteration: 0,
        ..next
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state(extra: serde_json::Value) -> WorkflowState {
        let mut doc = json!({
            "knowledge_base_id": "KB", "data_source_id": "DS", "round": 7, "execution_name": "KB-DS-r7", "source_key": "KB#DS",
            "settings": {"monitor_interval_seconds": 30, "quota_wait_seconds": 60, "max_job_attempts": 3, "retry_backoff_seconds": 60},
            "quota": {"decision": "PROCEED"}
        });
        doc.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(doc).unwrap()
    }

    fn job() -> serde_json::Value {
        json!({"job_id": "J9", "attempt": 1, "client_token": "t", "target_seq": 40, "target_seq_text": "40", "cutoff_seq": 33, "started_at": "x", "skipped": false})
    }

    #[test]
    fn the_next_iteration_carries_the_pinned_counters_and_nothing_else() {
        let done = state(
            json!({"job": job(), "monitor": {"next": "DONE", "status": "COMPLETE", "job_id": "J9"}, "previous_target": "12", "previous_cutoff": 10}),
        );
        let next = next_iteration(&done, Reason::RequestsDuringJob);
        assert_eq!(next.previous_target.as_deref(), Some("40"));
        assert_eq!(next.previous_cutoff, Some(33));
        assert!(next.job.is_none() && next.monitor.is_none() && next.quota.is_none());
        assert_eq!(next.input, done.input);
    }

    #[test]
    fn after_a_failure_the_failed_job_does_not_count_as_covering_anything() {
        let failed = state(
            json!({"job": job(), "error": {"Error": "NotRetryable", "Cause": "x"}, "previous_target": "12", "previous_cutoff": 10}),
        );
        let next = next_iteration(&failed, Reason::RequestsDuringFailure);
        assert_eq!(
            (next.previous_target.as_deref(), next.previous_cutoff),
            (Some("12"), Some(10))
        );
        assert!(next.error.is_none());
        // Same counters as the failed iteration, yet a job token of its own.
        assert_eq!(next.iteration, 1);
        assert_ne!(next.client_token(1), failed.client_token(1));
        let first = state(json!({"error": {"Error": "NotRetryable", "Cause": "x"}}));
        let next = next_iteration(&first, Reason::RequestsDuringFailure);
        assert_eq!((next.previous_target, next.previous_cutoff), (None, None));
    }

    #[test]
    fn the_successor_is_the_next_round_with_the_current_settings() {
        let done = state(json!({"job": job()}));
        let settings = WorkflowSettings {
            monitor_interval_seconds: 5,
            quota_wait_seconds: 6,
            max_job_attempts: 2,
            retry_backoff_seconds: 7,
        };
        let next = successor(&done, Reason::RequestsDuringJob, settings);
        assert_eq!(next.input.round, 8);
        assert_eq!(next.input.execution_name, "KB-DS-r8");
        assert_eq!(next.input.source_key, "KB#DS");
        assert_eq!(next.input.settings, settings);
        assert_eq!(next.previous_cutoff, Some(33));
        // The successor's first job gets a token of its own.
        assert_ne!(next.client_token(1), done.client_token(1));
    }

    #[test]
    fn hands_over_at_the_bound() {
        let policy = HandOverPolicy {
            after_history_events: 300,
        };
        assert!(!policy.should_hand_over(299));
        assert!(policy.should_hand_over(300));
        assert!(HandOverPolicy::default().after_history_events < HISTORY_EVENT_LIMIT / 2);
    }

    #[test]
    fn continuation_documents_read_as_the_state_machine_expects() {
        let c = Continuation {
            next: Next::ContinueAfterWait,
            state: None,
            handed_over_to: None,
            history_events: 12,
        };
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            json!({"next": "CONTINUE_AFTER_WAIT", "history_events": 12})
        );
        let request: ContinueRequest = serde_json::from_value(json!({
            "reason": "requests_during_job", "execution_arn": "arn:aws:states:us-east-1:1:execution:sm:KB-DS-r7",
            "state": state(json!({"job": job()}))
        }))
        .unwrap();
        assert_eq!(request.reason, Reason::RequestsDuringJob);
    }
}

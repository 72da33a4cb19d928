//! The state document the state machine carries between tasks. Each task receives the whole
//! document and returns its own part, which the state machine stores under a ResultPath.
//! Waits are read from `settings`, so the same definition runs fast in tests.

use serde::{Deserialize, Serialize};

use crate::job::{NextStep, RetryPolicy};
use crate::quota::QuotaDecision;
use crate::SourceId;

/// Timing and retry settings of one execution, fixed when the execution starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowSettings {
    pub monitor_interval_seconds: u64,
    pub quota_wait_seconds: u64,
    pub max_job_attempts: u32,
    pub retry_backoff_seconds: u64,
}

impl WorkflowSettings {
    /// How the round retries a FAILED or STOPPED job and how often it polls one.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_job_attempts,
            backoff_seconds: self.retry_backoff_seconds,
            poll_seconds: self.monitor_interval_seconds,
        }
    }
}

/// The execution input: what sync-processor starts a round with. Deterministic for a round, so
/// starting the same round twice is idempotent in Step Functions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundInput {
    pub knowledge_base_id: String,
    pub data_source_id: String,
    pub round: u64,
    pub execution_name: String,
    /// `KB#DS`, the lease item key the state machine's DynamoDB tasks address.
    pub source_key: String,
    pub settings: WorkflowSettings,
}

impl RoundInput {
    pub fn new(
        source: &SourceId,
        round: u64,
        execution_name: String,
        settings: WorkflowSettings,
    ) -> Self {
        Self {
            knowledge_base_id: source.knowledge_base_id.clone(),
            data_source_id: source.data_source_id.clone(),
            round,
            execution_name,
            source_key: source.key(),
            settings,
        }
    }

    pub fn source(&self) -> SourceId {
        SourceId::new(&self.knowledge_base_id, &self.data_source_id)
    }
}

/// What start-sync returns (stored at `$.job`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartedJob {
    pub job_id: String,
    /// 1-based attempt within this iteration of the round.
    pub attempt: u32,
    pub client_token: String,
    /// `requested_seq` read before the job started: the lease is released only if it still holds.
    pub target_seq: u64,
    /// The same number as a string, for the DynamoDB task's `N` attribute value.
    pub target_seq_text: String,
    /// `change_seq` read before the job started: the job covers changes numbered up to it.
    pub cutoff_seq: u64,
    pub started_at: String,
    /// True when no job was needed: the round went again, but no change was recorded since the
    /// previous job's counters were pinned, so that job already covered everything.
    #[serde(default)]
    pub skipped: bool,
    /// `direct`: the round's changes went through direct ingestion and `job_id` names the
    /// batch; the state machine releases the lease without waiting for a job.
    #[serde(default)]
    pub method: crate::direct::IngestionMethod,
}

/// What monitor-sync returns after a poll (stored at `$.monitor`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonitorResult {
    #[serde(flatten)]
    pub next: NextStep,
    pub status: String,
    pub job_id: String,
}

/// The error a Catch stored at `$.error`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaughtError {
    #[serde(rename = "Error", default)]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: String,
}

impl CaughtError {
    /// Lambda errors arrive with `Cause` = the function's JSON error; its `errorMessage` is the
    /// readable part.
    pub fn message(&self) -> String {
        serde_json::from_str::<serde_json::Value>(&self.cause)
            .ok()
            .and_then(|v| {
                v.get("errorMessage")
                    .and_then(|m| m.as_str())
                    .map(String::from)
            })
            .unwrap_or_else(|| self.cause.clone())
    }
}

/// What monitor-sync is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MonitorAction {
    /// Poll the job in `$.job`; on a terminal status record it, mark changes and notify.
    Poll,
    /// The round failed with `$.error`: mark its changes FAILED, free the job slot, notify.
    Fail,
}

/// monitor-sync's payload: `{"action": "poll", "state.$": "$"}` in the state machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorRequest {
    pub action: MonitorAction,
    pub state: WorkflowState,
}

/// The whole state document, as each task receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkflowState {
    #[serde(flatten)]
    pub input: RoundInput,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaDecision>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<StartedJob>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitor: Option<MonitorResult>,
    /// `target_seq` of the previous iteration of this round (set when the round goes again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_target: Option<String>,
    /// `cutoff_seq` of the previous iteration's job (set when the round goes again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_cutoff: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<CaughtError>,
    /// Iterations of this round before this one in this execution (set when the round goes
    /// again). Keeps job tokens apart where `previous_target` does not: after a failed
    /// iteration the counters of the last successful one carry over.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub iteration: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl WorkflowState {
    /// The attempt start-sync is about to make: 1 in a new iteration, the monitor's
    /// `next_attempt` after a failed job, the same attempt when a start is retried.
    pub fn next_attempt(&self) -> u32 {
        match (&self.job, &self.monitor) {
            (Some(job), Some(monitor)) if monitor.job_id == job.job_id => match monitor.next {
                NextStep::Retry { next_attempt, .. } => next_attempt,
                _ => job.attempt,
            },
            (Some(job), _) => job.attempt,
            (None, _) => 1,
        }
    }

    /// Idempotency token of the job this state is about to start: the same for every retry of
    /// one start, different for every job. Bedrock accepts 33-256 characters of
    /// `[a-zA-Z0-9](-*[a-zA-Z0-9])*`: a readable part plus a digest that brings short ids to length.
    pub fn client_token(&self, attempt: u32) -> String {
        use sha2::{Digest, Sha256};
        let iteration = match self.iteration {
            0 => String::new(),
            n => format!("-i{n}"),
        };
        let readable = format!(
            "{}-p{}{iteration}-a{}",
            self.input.execution_name,
            self.previous_target.as_deref().unwrap_or("0"),
            attempt
        );
        let digest = hex::encode(&Sha256::digest(readable.as_bytes())[..16]);
        // The input comes from the state machine: keep only characters Bedrock accepts and leave
        // room for the digest, which is what keeps tokens of different jobs apart. (Truncating
        // the whole token by bytes split multi-byte characters and panicked.)
        let readable: String = readable
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .skip_while(|c| *c == '-')
            .take(256 - 1 - digest.len())
            .collect();
        format!("{readable}-{digest}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state(extra: serde_json::Value) -> WorkflowState {
        let mut doc = json!({
            "knowledge_base_id": "KB", "data_source_id": "DS", "round": 2, "execution_name": "KB-DS-r2", "source_key": "KB#DS",
            "settings": {"monitor_interval_seconds": 30, "quota_wait_seconds": 60, "max_job_attempts": 3, "retry_backoff_seconds": 60}
        });
        doc.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(doc).unwrap()
    }

    fn job(attempt: u32) -> serde_json::Value {
        json!({"job_id": "J1", "attempt": attempt, "client_token": "t", "target_seq": 3, "target_seq_text": "3", "cutoff_seq": 3, "started_at": "x", "skipped": false})
    }

    #[test]
    fn attempts_follow_the_monitor() {
        assert_eq!(state(json!({})).next_attempt(), 1);
        let retry = state(
            json!({"job": job(1), "monitor": {"next": "RETRY", "wait_seconds": 5, "next_attempt": 2, "status": "FAILED", "job_id": "J1"}}),
        );
        assert_eq!(retry.next_attempt(), 2);
        let polled = state(
            json!({"job": job(2), "monitor": {"next": "POLL", "wait_seconds": 5, "status": "IN_PROGRESS", "job_id": "J1"}}),
        );
        assert_eq!(polled.next_attempt(), 2);
    }

    #[test]
    fn client_tokens_differ_per_job_and_repeat_per_retry() {
        let first = state(json!({}));
        assert!(first.client_token(1).starts_with("KB-DS-r2-p0-a1-"));
        assert_eq!(first.client_token(1), state(json!({})).client_token(1));
        assert_ne!(first.client_token(1), first.client_token(2));
        let again = state(json!({"previous_target": "7"}));
        assert!(again.client_token(1).starts_with("KB-DS-r2-p7-a1-"));
        // An iteration after a failed one keeps the counters, not the token.
        let retried = state(json!({"previous_target": "7", "iteration": 3}));
        assert!(retried.client_token(1).starts_with("KB-DS-r2-p7-i3-a1-"));
        for token in [first.client_token(1), again.client_token(3)] {
            assert!((33..=256).contains(&token.len()), "{token}");
            assert!(
                token.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
                "{token}"
            );
        }
    }

    #[test]
    fn client_tokens_of_odd_execution_names_stay_valid() {
        // Found by the workflow_state fuzz target: a multi-byte character at byte 256 panicked.
        let mut odd = state(json!({}));
        odd.input.execution_name = format!("a{}", "\u{e9}".repeat(150));
        let token = odd.client_token(1);
        assert!((33..=256).contains(&token.len()), "{token}");
        assert!(token.starts_with('a') && token.is_ascii(), "{token}");
        let mut long = state(json!({}));
        long.input.execution_name = "x".repeat(300);
        let mut longer = long.clone();
        longer.input.execution_name.push('y');
        assert_eq!(long.client_token(1).len(), 256);
        assert_ne!(long.client_token(1), longer.client_token(1));
    }

    #[test]
    fn the_state_document_stays_under_the_payload_limit_whatever_a_round_goes_through() {
        // Step Functions: 256 KB per state or task payload; a caught error's Cause is at most
        // 32,768 characters. The counters behind a round (10,000 changes or 10^19) are numbers,
        // and no list grows with changes, data sources or attempts: the largest document is
        // the one that carries every caught error at once (an earlier busy wait, the failure,
        // the failed handler and the failed release) plus the continuation's copy of the state.
        const PAYLOAD_LIMIT: usize = 256 * 1024;
        let cause = "c".repeat(32_768);
        let caught = json!({"Error": "States.TaskFailed", "Cause": cause});
        let mut doc = serde_json::to_value(state(json!({
            "job": job(10),
            "monitor": {"next": "RETRY", "wait_seconds": 3600, "next_attempt": 10, "status": "FAILED", "job_id": "J".repeat(10)},
            "quota": {"decision": "WAIT", "wait_seconds": 3600, "reason": "r".repeat(300)},
            "previous_target": u64::MAX.to_string(), "previous_cutoff": u64::MAX, "iteration": u32::MAX,
        })))
        .unwrap();
        doc["execution_name"] = json!("x".repeat(80));
        let copy = doc.clone();
        for key in ["busy", "error", "handler_error", "release_error"] {
            doc[key] = caught.clone();
        }
        doc["failure"] = json!({"handled": true, "release_target_text": u64::MAX.to_string()});
        doc["continuation"] =
            json!({"next": "CONTINUE_AFTER_WAIT", "state": copy, "history_events": u64::MAX});
        let task_payload = json!({"action": "fail", "state": doc});
        let size = task_payload.to_string().len();
        assert!(size < PAYLOAD_LIMIT * 6 / 10, "{size} bytes");
        // And it still reads as the state the tasks expect.
        let read: WorkflowState = serde_json::from_value(doc).unwrap();
        assert_eq!(read.iteration, u32::MAX);
    }

    #[test]
    fn the_retry_policy_comes_from_the_execution_settings() {
        let settings = state(json!({})).input.settings;
        let policy = settings.retry_policy();
        assert_eq!(
            (
                policy.max_attempts,
                policy.backoff_seconds,
                policy.poll_seconds
            ),
            (3, 60, 30)
        );
    }

    #[test]
    fn caught_lambda_errors_expose_their_message() {
        let err = CaughtError {
            error: "NotRetryable".into(),
            cause: r#"{"errorType":"NotRetryable","errorMessage":"access denied to KB"}"#.into(),
        };
        assert_eq!(err.message(), "access denied to KB");
        let raw = CaughtError {
            error: "States.Timeout".into(),
            cause: "timed out".into(),
        };
        assert_eq!(raw.message(), "timed out");
    }

    #[test]
    fn monitor_result_flattens_the_next_step() {
        let result = MonitorResult {
            next: NextStep::Done,
            status: "COMPLETE".into(),
            job_id: "J".into(),
        };
        assert_eq!(
            serde_json::to_value(result).unwrap(),
            json!({"next": "DONE", "status": "COMPLETE", "job_id": "J"})
        );
    }
}

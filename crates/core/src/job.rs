//! Ingestion job states and what the workflow does after each poll.

use serde::{Deserialize, Serialize};

/// At most this many of a job's failure reasons are kept, each at most
/// [`MAX_FAILURE_REASON_CHARS`] characters. Bedrock does not document a bound on
/// `failureReasons`, and they are copied into the job item, every covered change's
/// `failure_reason` (DynamoDB: 400 KB per item) and the notification (SNS: 256 KB).
pub const MAX_FAILURE_REASONS: usize = 10;
pub const MAX_FAILURE_REASON_CHARS: usize = 1_000;

/// One reason of Bedrock's (a job's or a document's), cut at [`MAX_FAILURE_REASON_CHARS`].
pub fn bounded_reason(reason: String) -> String {
    if reason.chars().count() <= MAX_FAILURE_REASON_CHARS {
        return reason;
    }
    let cut: String = reason.chars().take(MAX_FAILURE_REASON_CHARS).collect();
    format!("{cut}... (cut at {MAX_FAILURE_REASON_CHARS} characters)")
}

/// Bedrock's failure reasons, bounded: the first [`MAX_FAILURE_REASONS`], each cut at
/// [`MAX_FAILURE_REASON_CHARS`] characters, and a last entry saying how many were left out.
pub fn bounded_failure_reasons(reasons: Vec<String>) -> Vec<String> {
    let total = reasons.len();
    let mut kept: Vec<String> = reasons
        .into_iter()
        .take(MAX_FAILURE_REASONS)
        .map(bounded_reason)
        .collect();
    if total > MAX_FAILURE_REASONS {
        kept.push(format!(
            "... and {} more failure reasons (see the job in the Bedrock console)",
            total - MAX_FAILURE_REASONS
        ));
    }
    kept
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobStatus {
    Starting,
    InProgress,
    Stopping,
    Complete,
    Failed,
    Stopped,
    Other(String),
}

impl JobStatus {
    pub fn parse(status: &str) -> Self {
        match status {
            "STARTING" => Self::Starting,
            "IN_PROGRESS" => Self::InProgress,
            "STOPPING" => Self::Stopping,
            "COMPLETE" => Self::Complete,
            "FAILED" => Self::Failed,
            "STOPPED" => Self::Stopped,
            other => Self::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Starting => "STARTING",
            Self::InProgress => "IN_PROGRESS",
            Self::Stopping => "STOPPING",
            Self::Complete => "COMPLETE",
            Self::Failed => "FAILED",
            Self::Stopped => "STOPPED",
            Self::Other(s) => s,
        }
    }

    pub fn is_running(&self) -> bool {
        matches!(self, Self::Starting | Self::InProgress | Self::Stopping)
    }
}

/// What the state machine does after a poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "next", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NextStep {
    /// Still running: wait the monitor interval and poll again.
    Poll { wait_seconds: u64 },
    /// Finished (COMPLETE, or FAILED/STOPPED after the last attempt): release the lease.
    Done,
    /// FAILED or STOPPED with attempts left: wait, then start attempt `next_attempt`.
    Retry {
        wait_seconds: u64,
        next_attempt: u32,
    },
}

/// The retry policy of one round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub backoff_seconds: u64,
    pub poll_seconds: u64,
}

impl RetryPolicy {
    pub fn next_step(&self, status: &JobStatus, attempt: u32) -> NextStep {
        match status {
            s if s.is_running() => NextStep::Poll {
                wait_seconds: self.poll_seconds.max(1),
            },
            JobStatus::Complete => NextStep::Done,
            _ if attempt < self.max_attempts => NextStep::Retry {
                // Doubles per attempt, capped at an hour.
                wait_seconds: self
                    .backoff_seconds
                    .saturating_mul(1u64 << (attempt.saturating_sub(1)).min(16))
                    .clamp(1, 3600),
                next_attempt: attempt + 1,
            },
            _ => NextStep::Done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        max_attempts: 3,
        backoff_seconds: 10,
        poll_seconds: 30,
    };

    #[test]
    fn running_polls_complete_is_done() {
        assert_eq!(
            POLICY.next_step(&JobStatus::InProgress, 1),
            NextStep::Poll { wait_seconds: 30 }
        );
        assert_eq!(
            POLICY.next_step(&JobStatus::Starting, 1),
            NextStep::Poll { wait_seconds: 30 }
        );
        assert_eq!(POLICY.next_step(&JobStatus::Complete, 1), NextStep::Done);
    }

    #[test]
    fn failures_retry_with_doubling_backoff_until_the_last_attempt() {
        assert_eq!(
            POLICY.next_step(&JobStatus::Failed, 1),
            NextStep::Retry {
                wait_seconds: 10,
                next_attempt: 2
            }
        );
        assert_eq!(
            POLICY.next_step(&JobStatus::Stopped, 2),
            NextStep::Retry {
                wait_seconds: 20,
                next_attempt: 3
            }
        );
        assert_eq!(POLICY.next_step(&JobStatus::Failed, 3), NextStep::Done);
    }

    #[test]
    fn status_round_trips() {
        for s in [
            "STARTING",
            "IN_PROGRESS",
            "STOPPING",
            "COMPLETE",
            "FAILED",
            "STOPPED",
            "NEW",
        ] {
            assert_eq!(JobStatus::parse(s).as_str(), s);
        }
    }

    #[test]
    fn failure_reasons_are_bounded_whatever_bedrock_returns() {
        let few = vec!["a".to_string(), "b".to_string()];
        assert_eq!(bounded_failure_reasons(few.clone()), few);
        let many: Vec<String> = (0..1_000)
            .map(|i| format!("{i}{}", "\u{e9}".repeat(5_000)))
            .collect();
        let kept = bounded_failure_reasons(many);
        assert_eq!(kept.len(), MAX_FAILURE_REASONS + 1);
        assert!(kept[MAX_FAILURE_REASONS].contains("990 more"));
        assert!(
            kept[0].chars().count() < MAX_FAILURE_REASON_CHARS + 40,
            "{}",
            kept[0].len()
        );
        // Joined into one change's failure_reason, they stay far under an item's 400 KB.
        assert!(kept.join("; ").len() < 40 * 1024);
    }
}

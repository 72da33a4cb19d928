//! Dollars from request counts, at AWS list prices, and the model of the design this service
//! replaces (one workflow per change, polling every 60 s).

use serde::{Deserialize, Serialize};

/// AWS list prices, us-east-1, without free tiers. Update them here.
pub mod price {
    /// Lambda, arm64: per GB-second of billed duration and per request.
    pub const LAMBDA_ARM64_GB_SECOND: f64 = 0.000_013_333_4;
    pub const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
    /// Step Functions, standard workflows: per state transition.
    pub const SFN_TRANSITION: f64 = 0.025 / 1e3;
    /// DynamoDB on-demand: per write and read request unit.
    pub const DYNAMODB_WRITE_UNIT: f64 = 0.625 / 1e6;
    pub const DYNAMODB_READ_UNIT: f64 = 0.125 / 1e6;
    /// SQS standard queue: per request (64 KB chunk).
    pub const SQS_REQUEST: f64 = 0.40 / 1e6;
    /// SNS: per publish, and per e-mail delivery.
    pub const SNS_PUBLISH: f64 = 0.50 / 1e6;
    pub const SNS_EMAIL: f64 = 2.00 / 1e5;
}

/// What a run used, in the units AWS bills.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Usage {
    pub lambda_invocations: u64,
    /// Sum of every invocation's duration rounded up to 1 ms.
    pub lambda_billed_ms: u64,
    pub lambda_memory_mb: u64,
    pub state_transitions: u64,
    /// Request units: items under 1 KB (writes) / 4 KB (reads), one unit per request, plus one
    /// write unit per index entry written.
    pub dynamodb_write_units: u64,
    pub dynamodb_read_units: u64,
    pub sqs_requests: u64,
    pub sns_publishes: u64,
    pub email_deliveries: u64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Cost {
    pub lambda: f64,
    pub step_functions: f64,
    pub dynamodb: f64,
    pub sqs: f64,
    pub sns: f64,
    pub total: f64,
}

impl Usage {
    pub fn cost(&self) -> Cost {
        let gb_seconds =
            self.lambda_billed_ms as f64 / 1000.0 * (self.lambda_memory_mb as f64 / 1024.0);
        let lambda = gb_seconds * price::LAMBDA_ARM64_GB_SECOND
            + self.lambda_invocations as f64 * price::LAMBDA_REQUEST;
        let step_functions = self.state_transitions as f64 * price::SFN_TRANSITION;
        let dynamodb = self.dynamodb_write_units as f64 * price::DYNAMODB_WRITE_UNIT
            + self.dynamodb_read_units as f64 * price::DYNAMODB_READ_UNIT;
        let sqs = self.sqs_requests as f64 * price::SQS_REQUEST;
        let sns = self.sns_publishes as f64 * price::SNS_PUBLISH
            + self.email_deliveries as f64 * price::SNS_EMAIL;
        Cost {
            lambda,
            step_functions,
            dynamodb,
            sqs,
            sns,
            total: lambda + step_functions + dynamodb + sqs + sns,
        }
    }
}

/// Dollars per 1,000 changes.
pub fn per_thousand(cost: f64, changes: u64) -> f64 {
    if changes == 0 {
        0.0
    } else {
        cost / changes as f64 * 1000.0
    }
}

/// Mean billed milliseconds of the invocations the per-change design would make, taken from
/// this service's comparable functions.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct PerChangeDurations {
    /// The function an S3 event triggers, which starts the execution (like event-processor).
    pub trigger_ms: f64,
    /// StartIngestionJob (like start-sync).
    pub start_ms: f64,
    /// One GetIngestionJob poll (like monitor-sync).
    pub poll_ms: f64,
}

/// The per-change design, as a model. For every change: an event (EventBridge -> SQS -> a
/// trigger function, batches of 10) starts one standard workflow:
///   StartJob (Task) -> [Wait 60 s -> Poll (Task) -> Choice] x ceil(job / 60 s)
///   -> Mark (DynamoDB task) -> Notify (SNS task) -> Succeed.
/// Transitions: 4 + 3 x polls. Lambda: 1 trigger + 1 start + polls. DynamoDB: the change
/// record and its mark (2 write units). SQS: the delivery, 1/10 receive, 1/10 delete. SNS: one
/// publish and one e-mail per change. It is optimistic: every change's job is assumed to run
/// at once, which Bedrock forbids (one job per data source); waiting for the others' jobs
/// would add polls, and N jobs in a row take N job durations.
pub fn per_change_design(
    changes: u64,
    job_seconds: f64,
    poll_seconds: f64,
    durations: PerChangeDurations,
    memory_mb: u64,
) -> Usage {
    let polls = (job_seconds / poll_seconds).ceil().max(1.0) as u64;
    let per_change_ms =
        durations.trigger_ms / 10.0 + durations.start_ms + durations.poll_ms * polls as f64;
    Usage {
        lambda_invocations: changes.div_ceil(10) + changes * (1 + polls),
        lambda_billed_ms: (per_change_ms * changes as f64).ceil() as u64,
        lambda_memory_mb: memory_mb,
        state_transitions: changes * (4 + 3 * polls),
        dynamodb_write_units: changes * 2,
        dynamodb_read_units: 0,
        sqs_requests: changes + 2 * changes.div_ceil(10),
        sns_publishes: changes,
        email_deliveries: changes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn prices_apply_per_unit() {
        let usage = Usage {
            lambda_invocations: 1_000_000,
            lambda_billed_ms: 1_000_000, // 1,000 s at 1 GB
            lambda_memory_mb: 1024,
            state_transitions: 1000,
            dynamodb_write_units: 1_000_000,
            dynamodb_read_units: 1_000_000,
            sqs_requests: 1_000_000,
            sns_publishes: 1_000_000,
            email_deliveries: 100_000,
        };
        let cost = usage.cost();
        assert!(close(cost.lambda, 0.20 + 1000.0 * 0.000_013_333_4));
        assert!(close(cost.step_functions, 0.025));
        assert!(close(cost.dynamodb, 0.625 + 0.125));
        assert!(close(cost.sqs, 0.40));
        assert!(close(cost.sns, 0.50 + 2.00));
        assert!(close(
            cost.total,
            cost.lambda + cost.step_functions + cost.dynamodb + cost.sqs + cost.sns
        ));
        assert!(close(per_thousand(2.0, 4000), 0.5));
        assert_eq!(per_thousand(1.0, 0), 0.0);
    }

    #[test]
    fn per_change_design_counts() {
        let durations = PerChangeDurations {
            trigger_ms: 20.0,
            start_ms: 10.0,
            poll_ms: 5.0,
        };
        // A 5-minute job polled every 60 s: 5 polls, 19 transitions per change.
        let usage = per_change_design(1000, 300.0, 60.0, durations, 128);
        assert_eq!(usage.state_transitions, 19_000);
        assert_eq!(usage.lambda_invocations, 100 + 6000);
        assert_eq!(usage.lambda_billed_ms, 1000 * (2 + 10 + 25));
        assert_eq!(usage.dynamodb_write_units, 2000);
        assert_eq!(usage.sqs_requests, 1000 + 200);
        assert_eq!(usage.sns_publishes, 1000);
        // Transitions dominate: $0.025 per 1,000.
        let cost = usage.cost();
        assert!(close(cost.step_functions, 19.0 * 0.025));
        assert!(cost.step_functions > cost.total / 2.0);
    }
}

//! Configuration from the environment the template sets. Every missing or invalid variable is an
//! error naming the variable and what it should hold.

use kb_autosync_core::direct::DirectSettings;
use kb_autosync_core::handover::{HandOverPolicy, HISTORY_EVENT_LIMIT};
use kb_autosync_core::quota::IngestionQuota;
use kb_autosync_core::routing::{RouteError, RouteTable};
use kb_autosync_core::workflow::WorkflowSettings;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("missing configuration: environment variable {name} is not set ({meaning})")]
    Missing {
        name: &'static str,
        meaning: &'static str,
    },
    #[error("invalid configuration: {name}={value:?} is not {expected}")]
    Invalid {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("invalid configuration: {0}")]
    Routes(#[from] RouteError),
}

/// Reads one variable; `meaning` goes into the error users see.
pub fn required(name: &'static str, meaning: &'static str) -> Result<String, ConfigError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => Ok(v),
        _ => Err(ConfigError::Missing { name, meaning }),
    }
}

fn number<T: std::str::FromStr>(
    name: &'static str,
    default: T,
    expected: &'static str,
) -> Result<T, ConfigError> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map_err(|_| ConfigError::Invalid {
            name,
            value: v,
            expected,
        }),
        _ => Ok(default),
    }
}

/// The routes, checked against the buckets and knowledge bases the deployment was scoped to
/// (ROUTE_BUCKETS, ROUTE_KNOWLEDGE_BASE_IDS: the template's RouteBuckets and
/// RouteKnowledgeBaseIds; both empty with the single-route parameters).
pub fn routes() -> Result<RouteTable, ConfigError> {
    let json = required(
        "ROUTES",
        "JSON array of {bucket, prefix, knowledge_base_id, data_source_id}",
    )?;
    let table = RouteTable::from_json(&json)?;
    table.check_deployed(
        &comma_list("ROUTE_BUCKETS"),
        &comma_list("ROUTE_KNOWLEDGE_BASE_IDS"),
    )?;
    Ok(table)
}

/// A comma-separated variable as its non-empty items; unset is empty.
fn comma_list(name: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_string)
        .collect()
}

pub fn tracking_table() -> Result<String, ConfigError> {
    required("TRACKING_TABLE_NAME", "DynamoDB table of changes")
}
pub fn metadata_table() -> Result<String, ConfigError> {
    required("METADATA_TABLE_NAME", "DynamoDB table of ingestion jobs")
}
pub fn sources_table() -> Result<String, ConfigError> {
    required("SOURCES_TABLE_NAME", "DynamoDB table of data source leases")
}
pub fn sync_queue_url() -> Result<String, ConfigError> {
    required("SYNC_QUEUE_URL", "URL of the SQS sync request queue")
}
pub fn topic_arn() -> Result<String, ConfigError> {
    required(
        "NOTIFICATION_TOPIC_ARN",
        "ARN of the SNS notification topic",
    )
}
pub fn state_machine_arn() -> Result<String, ConfigError> {
    required("STATE_MACHINE_ARN", "ARN of the sync state machine")
}

pub fn sync_delay_seconds() -> Result<i32, ConfigError> {
    let delay: i32 = number("SYNC_DELAY_SECONDS", 0, "a number of seconds from 0 to 900")?;
    if !(0..=900).contains(&delay) {
        return Err(ConfigError::Invalid {
            name: "SYNC_DELAY_SECONDS",
            value: delay.to_string(),
            expected: "a number of seconds from 0 to 900 (the SQS DelaySeconds range)",
        });
    }
    Ok(delay)
}

pub fn retention_days() -> Result<u32, ConfigError> {
    number("RETENTION_DAYS", 30, "a whole number of days")
}

pub fn lease_claim_grace_ms() -> Result<i64, ConfigError> {
    Ok(number::<i64>("LEASE_CLAIM_GRACE_SECONDS", 60, "a whole number of seconds")? * 1000)
}

pub fn metrics_namespace() -> String {
    std::env::var("METRICS_NAMESPACE").unwrap_or_else(|_| "KbAutoSync".to_string())
}

/// The stack the function belongs to, the `StackName` dimension of its metrics ("kb-autosync"
/// for a function run outside the template, which sets it).
pub fn stack_name() -> String {
    std::env::var("STACK_NAME").unwrap_or_else(|_| "kb-autosync".to_string())
}

/// Where and under which stack the function's metrics go.
pub fn metrics() -> crate::metrics::Metrics {
    crate::metrics::Metrics::new(metrics_namespace(), stack_name())
}

pub fn workflow_settings() -> Result<WorkflowSettings, ConfigError> {
    let settings = WorkflowSettings {
        monitor_interval_seconds: number(
            "MONITOR_INTERVAL_SECONDS",
            30,
            "a whole number of seconds",
        )?,
        quota_wait_seconds: number("QUOTA_WAIT_SECONDS", 60, "a whole number of seconds")?,
        max_job_attempts: number("MAX_JOB_ATTEMPTS", 3, "a whole number of attempts")?,
        retry_backoff_seconds: number("RETRY_BACKOFF_SECONDS", 60, "a whole number of seconds")?,
    };
    if settings.max_job_attempts == 0 {
        return Err(ConfigError::Invalid {
            name: "MAX_JOB_ATTEMPTS",
            value: "0".into(),
            expected: "at least 1",
        });
    }
    Ok(settings)
}

/// When an execution that must go round again hands over to a fresh one (see
/// `kb_autosync_core::handover`).
pub fn hand_over_policy() -> Result<HandOverPolicy, ConfigError> {
    let after_history_events = number(
        "HANDOVER_AFTER_HISTORY_EVENTS",
        HandOverPolicy::default().after_history_events,
        "a whole number of execution history events",
    )?;
    // One iteration must still fit below the hard limit after the bound is reached; 1 hands
    // over at every iteration.
    if !(1..=HISTORY_EVENT_LIMIT / 2).contains(&after_history_events) {
        return Err(ConfigError::Invalid {
            name: "HANDOVER_AFTER_HISTORY_EVENTS",
            value: after_history_events.to_string(),
            expected: "from 1 to 12500 (half of Step Functions' 25,000-event history limit)",
        });
    }
    Ok(HandOverPolicy {
        after_history_events,
    })
}

/// SQS delay of sync requests for data sources in `auto` or `direct` mode.
pub fn direct_sync_delay_seconds() -> Result<i32, ConfigError> {
    let delay: i32 = number(
        "DIRECT_SYNC_DELAY_SECONDS",
        5,
        "a whole number of seconds from 0 to 900",
    )?;
    if !(0..=900).contains(&delay) {
        return Err(ConfigError::Invalid {
            name: "DIRECT_SYNC_DELAY_SECONDS",
            value: delay.to_string(),
            expected: "a whole number of seconds from 0 to 900 (SQS's limit)",
        });
    }
    Ok(delay)
}

/// Direct ingestion: the stack's mode and the bounds of a direct batch.
pub fn direct_settings() -> Result<DirectSettings, ConfigError> {
    let defaults = DirectSettings::default();
    let mode = match std::env::var("INGESTION_MODE") {
        Ok(value) => value.parse().map_err(|_| ConfigError::Invalid {
            name: "INGESTION_MODE",
            value,
            expected: "auto, job or direct",
        })?,
        Err(_) => defaults.mode,
    };
    let settings = DirectSettings {
        mode,
        max_changes: number(
            "DIRECT_INGESTION_MAX_CHANGES",
            defaults.max_changes,
            "a whole number of changes",
        )?,
        wait_seconds: number(
            "DIRECT_INGESTION_WAIT_SECONDS",
            defaults.wait_seconds,
            "a whole number of seconds",
        )?,
        calls_per_second: number(
            "DIRECT_CALLS_PER_SECOND",
            defaults.calls_per_second,
            "a number of calls per second",
        )?,
        pause_seconds: direct_sync_delay_seconds()? as u64,
    };
    if settings.calls_per_second.is_nan() || settings.calls_per_second <= 0.0 {
        return Err(ConfigError::Invalid {
            name: "DIRECT_CALLS_PER_SECOND",
            value: settings.calls_per_second.to_string(),
            expected: "more than 0",
        });
    }
    Ok(settings)
}

pub fn ingestion_quota() -> Result<IngestionQuota, ConfigError> {
    let interval: f64 = number(
        "START_JOB_MIN_INTERVAL_SECONDS",
        10.0,
        "a number of seconds",
    )?;
    let quota = IngestionQuota {
        max_concurrent_jobs_per_account: number(
            "MAX_CONCURRENT_JOBS_PER_ACCOUNT",
            5,
            "a whole number of jobs",
        )?,
        start_min_interval_ms: (interval * 1000.0).round() as i64,
    };
    if quota.max_concurrent_jobs_per_account == 0 {
        return Err(ConfigError::Invalid {
            name: "MAX_CONCURRENT_JOBS_PER_ACCOUNT",
            value: "0".into(),
            expected: "at least 1",
        });
    }
    Ok(quota)
}

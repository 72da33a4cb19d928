//! Direct or job: the rules `auto` and `direct` follow, and the reason a round became a job.

use super::IngestionMode;

/// Direct batches one start-sync invocation runs at most: each pins the counters again, and the
/// lease item keeps one snapshot per pin until the round's next iteration.
pub const MAX_BATCHES_PER_INVOCATION: u32 = 6;

/// Bedrock's limit on one file (50 MB); a larger object is left to a job, which reports it.
pub const DIRECT_MAX_OBJECT_BYTES: i64 = 50 * 1024 * 1024;

/// The stack's direct-ingestion settings (a route may override `mode`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DirectSettings {
    pub mode: IngestionMode,
    /// `auto` takes a job when more changes than this are pending (DirectIngestionMaxChanges).
    pub max_changes: usize,
    /// How long a batch waits for its documents to be terminal before the round falls back to
    /// a job for the rest (capped by the invocation's remaining time).
    pub wait_seconds: u64,
    /// Document calls (ingest, delete, status) per second at most.
    pub calls_per_second: f64,
    /// Pause before a further batch in the same invocation, so requests arriving together share
    /// it (DirectSyncDelaySeconds, the delay their sync requests had).
    pub pause_seconds: u64,
}

impl Default for DirectSettings {
    fn default() -> Self {
        Self {
            mode: IngestionMode::Auto,
            max_changes: 50,
            wait_seconds: 40,
            calls_per_second: 5.0,
            pause_seconds: 5,
        }
    }
}

/// Why a round (or the rest of one) is an ingestion job rather than direct ingestion.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobReason {
    #[error("the route's ingestion mode is job")]
    ModeIsJob,
    #[error("no PENDING change was found up to #{cutoff}: only a job covers a sync requested without one (a manual sync, or changes the index has not shown yet)")]
    NothingListed { cutoff: u64 },
    #[error("{pending} changes are pending, more than DirectIngestionMaxChanges ({max}): one job costs less than {pending} document updates")]
    TooManyChanges { pending: usize, max: usize },
    #[error("the data source has never completed an ingestion job, and AWS requires a job for the first sync of an S3 data source")]
    NeverSynced,
    #[error("s3://{bucket}/{key} is {size} bytes, over the {DIRECT_MAX_OBJECT_BYTES}-byte limit of one document")]
    ObjectTooLarge {
        bucket: String,
        key: String,
        size: i64,
    },
    #[error("the key of s3://{bucket}/{key} could not be settled against S3: {error}")]
    KeyNotSettled {
        bucket: String,
        key: String,
        error: String,
    },
    #[error("{operation} failed with an error that waiting does not fix: {error}")]
    DirectCallRefused { operation: String, error: String },
    #[error(
        "{waiting} document(s) were not indexed or removed within {seconds} s (e.g. {example})"
    )]
    DocumentsStillProcessing {
        waiting: usize,
        seconds: u64,
        example: String,
    },
    #[error("this round's direct batch already ran and left {left} change(s) PENDING")]
    BatchLeftChanges { left: usize },
    #[error("the round's {remaining} remaining document call(s) did not fit in this invocation")]
    OutOfTime { remaining: usize },
}

/// The rule before anything is called: `Ok` means try direct ingestion.
pub fn direct_or_job(
    mode: IngestionMode,
    pending: usize,
    max_changes: usize,
    cutoff: u64,
) -> Result<(), JobReason> {
    match mode {
        IngestionMode::Job => Err(JobReason::ModeIsJob),
        _ if pending == 0 => Err(JobReason::NothingListed { cutoff }),
        IngestionMode::Auto if pending > max_changes => Err(JobReason::TooManyChanges {
            pending,
            max: max_changes,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_goes_direct_up_to_the_threshold_and_takes_a_job_above_it() {
        assert_eq!(direct_or_job(IngestionMode::Auto, 50, 50, 9), Ok(()));
        assert_eq!(
            direct_or_job(IngestionMode::Auto, 51, 50, 9),
            Err(JobReason::TooManyChanges {
                pending: 51,
                max: 50
            })
        );
    }

    #[test]
    fn direct_ignores_the_threshold_and_job_never_goes_direct() {
        assert_eq!(direct_or_job(IngestionMode::Direct, 5_000, 50, 9), Ok(()));
        assert_eq!(
            direct_or_job(IngestionMode::Job, 1, 50, 9),
            Err(JobReason::ModeIsJob)
        );
    }

    #[test]
    fn a_round_without_a_listed_change_is_a_job_in_every_mode() {
        for mode in [IngestionMode::Auto, IngestionMode::Direct] {
            let reason = direct_or_job(mode, 0, 50, 17).unwrap_err();
            assert_eq!(reason, JobReason::NothingListed { cutoff: 17 });
            assert!(reason.to_string().contains("#17"));
        }
    }
}

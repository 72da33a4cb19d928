//! The time model: the Bedrock emulator runs `time_scale` times faster than Bedrock, and the
//! service's own waits are divided by the same factor (whole seconds, at least 1: SQS delays
//! and Step Functions waits take whole seconds). Real seconds measured x time_scale = emulated
//! seconds. Where rounding changes a wait, the wait actually used is reported.

use serde::{Deserialize, Serialize};

/// Production defaults of the template (emulated seconds).
pub const MONITOR_INTERVAL: u64 = 30;
pub const QUOTA_WAIT: u64 = 60;
pub const RETRY_BACKOFF: u64 = 60;
pub const START_JOB_MIN_INTERVAL: u64 = 10;
pub const LEASE_CLAIM_GRACE: u64 = 90;
pub const SWEEP_EVERY: u64 = 300;
pub const DEFAULT_SYNC_DELAY: u64 = 60;
/// DirectSyncDelaySeconds: the sync delay of data sources in `auto` or `direct` mode.
pub const DIRECT_SYNC_DELAY: u64 = 5;

/// A planning figure for how many changes per real second the local stack records (S3 PUT,
/// EventBridge, SQS, event-processor, DynamoDB, all on moto): a burst of N spans about N / RATE
/// real seconds. Measured: 10-50 depending on the machine's load; the report's "last recorded"
/// column shows how far a burst was actually spread.
pub const LOCAL_CHANGES_PER_SECOND: f64 = 100.0;

/// Time scale for a burst of `n`: as fast as `max_scale`, but slow enough that the upload of
/// the burst itself spans at most ~30 emulated seconds (half the default sync delay), so a
/// burst is a burst in emulated time too. Below 1 (emulated time slower than real time: the
/// biggest bursts) it is cut to a tenth, at least 0.1.
pub fn scale_for(n: u64, max_scale: f64) -> f64 {
    let fits = 30.0 * LOCAL_CHANGES_PER_SECOND / n.max(1) as f64;
    if fits >= 1.0 {
        fits.floor().min(max_scale.max(0.1))
    } else {
        ((fits * 10.0).floor() / 10.0).max(0.1)
    }
}

/// A wait of `emulated` seconds in real seconds on the local stack.
pub fn real_wait(emulated: u64, scale: f64) -> u64 {
    if emulated == 0 {
        0
    } else {
        ((emulated as f64 / scale).round() as u64).max(1)
    }
}

/// The service's timings for one stack, in emulated seconds as actually used.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Timings {
    pub time_scale: f64,
    pub sync_delay: u64,
    pub monitor_interval: u64,
    pub quota_wait: u64,
    pub start_job_min_interval: u64,
    pub sweep_every: u64,
}

impl Timings {
    pub fn new(sync_delay: u64, scale: f64) -> Self {
        let used = |e: u64| (real_wait(e, scale) as f64 * scale).round() as u64;
        Self {
            time_scale: scale,
            sync_delay: used(sync_delay),
            monitor_interval: used(MONITOR_INTERVAL),
            quota_wait: used(QUOTA_WAIT),
            start_job_min_interval: used(START_JOB_MIN_INTERVAL),
            sweep_every: used(SWEEP_EVERY),
        }
    }

    /// Function environment overrides (real seconds).
    pub fn env(&self, requested_sync_delay: u64) -> Vec<(String, String)> {
        let s = self.time_scale;
        [
            ("SYNC_DELAY_SECONDS", real_wait(requested_sync_delay, s)),
            ("DIRECT_SYNC_DELAY_SECONDS", real_wait(DIRECT_SYNC_DELAY, s)),
            ("MONITOR_INTERVAL_SECONDS", real_wait(MONITOR_INTERVAL, s)),
            ("QUOTA_WAIT_SECONDS", real_wait(QUOTA_WAIT, s)),
            ("RETRY_BACKOFF_SECONDS", real_wait(RETRY_BACKOFF, s)),
            (
                "START_JOB_MIN_INTERVAL_SECONDS",
                real_wait(START_JOB_MIN_INTERVAL, s),
            ),
            ("LEASE_CLAIM_GRACE_SECONDS", real_wait(LEASE_CLAIM_GRACE, s)),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    pub fn sweep_every_real(&self) -> u64 {
        real_wait(SWEEP_EVERY, self.time_scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_keeps_bursts_short() {
        assert_eq!(scale_for(1, 30.0), 30.0);
        assert_eq!(scale_for(100, 30.0), 30.0);
        assert_eq!(scale_for(1000, 30.0), 3.0);
        assert_eq!(scale_for(3000, 30.0), 1.0);
        // Emulated time slower than real time: 10,000 uploads still span ~30 emulated seconds.
        assert_eq!(scale_for(10_000, 30.0), 0.3);
        assert_eq!(scale_for(1_000_000, 30.0), 0.1);
    }

    #[test]
    fn waits_round_to_whole_seconds() {
        let t = Timings::new(60, 30.0);
        assert_eq!(t.sync_delay, 60);
        assert_eq!(t.monitor_interval, 30);
        assert_eq!(t.start_job_min_interval, 30); // 1 real second is the least
        assert_eq!(Timings::new(0, 30.0).sync_delay, 0);
        assert_eq!(real_wait(30, 1.0), 30);
        let slow = Timings::new(60, 0.3);
        assert_eq!(real_wait(60, 0.3), 200);
        assert_eq!((slow.sync_delay, slow.monitor_interval), (60, 30));
    }
}

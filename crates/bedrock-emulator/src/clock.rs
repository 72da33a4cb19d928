//! Time: a monotonic wall clock and the time scale.
//!
//! Timestamps shown to clients are real wall-clock times (the service under test compares them with
//! its own clock); only *durations* are compressed by the time scale, so a 5-minute job with
//! `--time-scale 100` completes 3 seconds after it started.

use std::sync::Mutex;
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};

/// Source of "now". A trait so unit tests can move time by hand instead of sleeping.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;
}

/// Wall clock anchored once and advanced by a monotonic `Instant`, so a system clock step can never
/// make a job or a token bucket go backwards.
#[derive(Debug)]
pub struct SystemClock {
    anchor_wall: DateTime<Utc>,
    anchor_instant: Instant,
}

impl SystemClock {
    pub fn new() -> Self {
        Self {
            anchor_wall: Utc::now(),
            anchor_instant: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = Duration::from_std(self.anchor_instant.elapsed()).unwrap_or(Duration::zero());
        self.anchor_wall + elapsed
    }
}

/// A clock that only moves when told to; for deterministic tests.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// How many times faster than real Bedrock the emulator runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeScale(f64);

impl TimeScale {
    /// Rejects zero, negative, NaN and infinite factors: each would stall or divide by zero.
    pub fn new(factor: f64) -> Result<Self, String> {
        if factor.is_finite() && factor > 0.0 {
            Ok(Self(factor))
        } else {
            Err(format!(
                "time scale must be a finite number > 0, got {factor}"
            ))
        }
    }

    pub fn factor(self) -> f64 {
        self.0
    }

    /// Real duration of something that takes `emulated_seconds` in Bedrock time.
    pub fn real_duration(self, emulated_seconds: f64) -> Duration {
        let real_seconds = (emulated_seconds.max(0.0)) / self.0;
        // Microsecond precision is plenty; the cap keeps absurd configs from overflowing chrono.
        let micros = (real_seconds * 1_000_000.0).min(1e15) as i64;
        Duration::microseconds(micros)
    }

    /// Rate per real second of something that happens `emulated_rate` times per Bedrock second.
    pub fn real_rate(self, emulated_rate: f64) -> f64 {
        emulated_rate * self.0
    }
}

impl Default for TimeScale {
    fn default() -> Self {
        Self(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_scale_rejects_non_positive_factors() {
        assert!(TimeScale::new(0.0).is_err());
        assert!(TimeScale::new(-1.0).is_err());
        assert!(TimeScale::new(f64::NAN).is_err());
        assert!(TimeScale::new(f64::INFINITY).is_err());
    }

    #[test]
    fn time_scale_compresses_durations_and_speeds_up_rates() {
        let scale = TimeScale::new(100.0).unwrap();
        assert_eq!(scale.real_duration(300.0), Duration::seconds(3));
        assert!((scale.real_rate(0.1) - 10.0).abs() < 1e-9);
    }

    #[test]
    fn system_clock_never_goes_backwards() {
        let clock = SystemClock::new();
        let first = clock.now();
        let second = clock.now();
        assert!(second >= first);
    }
}

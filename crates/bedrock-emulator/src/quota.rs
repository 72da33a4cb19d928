//! Token buckets for Bedrock's request-rate quotas (StartIngestionJob 0.1/s, Get/List 10/s).

use chrono::{DateTime, Utc};

/// A bucket of `capacity` tokens refilled continuously at `refill_per_second` (real seconds: the
/// time scale is applied by whoever builds the bucket). A request takes one token or is throttled.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    refill_per_second: f64,
    tokens: f64,
    last_refill: DateTime<Utc>,
}

impl TokenBucket {
    /// Starts full, like a quota nobody has used yet.
    pub fn new(capacity: u32, refill_per_second: f64, now: DateTime<Utc>) -> Self {
        let capacity = f64::from(capacity.max(1));
        Self {
            capacity,
            refill_per_second: refill_per_second.max(0.0),
            tokens: capacity,
            last_refill: now,
        }
    }

    /// Takes a token if one is available.
    pub fn try_take(&mut self, now: DateTime<Utc>) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    pub fn available(&mut self, now: DateTime<Utc>) -> f64 {
        self.refill(now);
        self.tokens
    }

    fn refill(&mut self, now: DateTime<Utc>) {
        // A clock that did not move (or, defensively, moved back) adds nothing.
        let elapsed_micros = (now - self.last_refill)
            .num_microseconds()
            .unwrap_or(i64::MAX)
            .max(0);
        let elapsed_seconds = elapsed_micros as f64 / 1_000_000.0;
        self.tokens = (self.tokens + elapsed_seconds * self.refill_per_second).min(self.capacity);
        if now > self.last_refill {
            self.last_refill = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn bucket_allows_burst_then_refills_at_rate() {
        let start = Utc::now();
        let mut bucket = TokenBucket::new(2, 0.1, start);
        assert!(bucket.try_take(start));
        assert!(bucket.try_take(start));
        assert!(!bucket.try_take(start));
        assert!(!bucket.try_take(start + Duration::seconds(9)));
        assert!(bucket.try_take(start + Duration::seconds(10)));
        assert!(!bucket.try_take(start + Duration::seconds(10)));
    }

    #[test]
    fn bucket_never_holds_more_than_capacity() {
        let start = Utc::now();
        let mut bucket = TokenBucket::new(1, 1.0, start);
        assert!(bucket.try_take(start));
        let later = start + Duration::hours(1);
        assert!(bucket.try_take(later));
        assert!(!bucket.try_take(later));
    }

    #[test]
    fn clock_going_back_does_not_refill() {
        let start = Utc::now();
        let mut bucket = TokenBucket::new(1, 1.0, start);
        assert!(bucket.try_take(start));
        assert!(!bucket.try_take(start - Duration::seconds(5)));
    }
}

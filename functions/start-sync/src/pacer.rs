//! Spaces calls out to a rate (the DirectCallsPerSecond setting): Bedrock does not publish the
//! document operations' rates, so the service stays under a configured one and waits out
//! throttling on top.

use std::time::Duration;

use tokio::time::Instant;

pub struct Pacer {
    interval: Duration,
    next: Option<Instant>,
}

impl Pacer {
    pub fn per_second(calls: f64) -> Self {
        Self {
            interval: Duration::from_secs_f64(1.0 / calls.max(0.001)),
            next: None,
        }
    }

    /// Returns when the next call may go: at once for the first, then one interval after the
    /// previous call at the earliest.
    pub async fn wait(&mut self) {
        let now = Instant::now();
        let at = self.next.map_or(now, |next| next.max(now));
        tokio::time::sleep_until(at).await;
        self.next = Some(at + self.interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn calls_are_spaced_by_the_rate_and_idle_time_is_not_saved_up() {
        let mut pacer = Pacer::per_second(4.0);
        let start = Instant::now();
        for _ in 0..5 {
            pacer.wait().await;
        }
        assert_eq!(start.elapsed(), Duration::from_millis(1000));
        tokio::time::sleep(Duration::from_secs(10)).await;
        let resumed = Instant::now();
        pacer.wait().await;
        pacer.wait().await;
        assert_eq!(resumed.elapsed(), Duration::from_millis(250));
    }
}

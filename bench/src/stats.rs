//! Percentiles of latency samples.

/// Nearest-rank percentile (`p` in 0..=100) of unsorted samples; None when there are none.
/// Nearest rank, not interpolation: the value reported is one that was measured.
pub fn percentile(samples: &[f64], p: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Lambda bills each invocation's duration rounded up to the next millisecond.
pub fn billed_ms(durations_ms: &[f64]) -> u64 {
    durations_ms.iter().map(|d| d.ceil().max(1.0) as u64).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let samples: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(percentile(&samples, 50.0), Some(50.0));
        assert_eq!(percentile(&samples, 99.0), Some(99.0));
        assert_eq!(percentile(&samples, 100.0), Some(100.0));
        assert_eq!(percentile(&samples, 0.0), Some(1.0));
        assert_eq!(percentile(&[7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&[], 50.0), None);
        // 20 samples: p95 is the 19th smallest.
        let twenty: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(percentile(&twenty, 95.0), Some(19.0));
    }

    #[test]
    fn billing_rounds_each_invocation_up() {
        assert_eq!(billed_ms(&[0.2, 1.0, 1.01, 10.5]), 1 + 1 + 2 + 11);
        assert_eq!(billed_ms(&[]), 0);
    }
}

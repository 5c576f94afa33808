//! The latency histogram: power-of-two buckets kept with relaxed atomics on the hot
//! path, and its point-in-time snapshot. A leaf: it imports nothing from the crate, so
//! the pool records into it and the metrics renderer reads it without the two
//! importing each other.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Number of buckets: upper bounds 1 µs, 2 µs, 4 µs, ... 2^26 µs (~67 s), then +Inf.
pub const BUCKETS: usize = 28;

/// The upper bound of bucket `i`, in nanoseconds (`u64::MAX` for the last).
pub const fn bucket_bound_ns(i: usize) -> u64 {
    if i + 1 >= BUCKETS {
        u64::MAX
    } else {
        1000u64 << i
    }
}

/// A latency histogram with power-of-two buckets, recorded with relaxed atomics.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS],
    sum_ns: AtomicU64,
    max_ns: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    #[inline]
    pub fn record(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let us = ns.div_ceil(1000);
        let i = if us <= 1 {
            0
        } else {
            ((64 - (us - 1).leading_zeros()) as usize).min(BUCKETS - 1)
        };
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(ns, Ordering::Relaxed);
        if ns > self.max_ns.load(Ordering::Relaxed) {
            self.max_ns.fetch_max(ns, Ordering::Relaxed);
        }
    }

    /// A snapshot. `extra_zero` observations of zero are added to the first bucket
    /// (acquires served at once are counted apart, off the hot path).
    pub fn snapshot(&self, extra_zero: u64) -> HistogramSnapshot {
        let mut counts = [0u64; BUCKETS];
        for (c, b) in counts.iter_mut().zip(&self.buckets) {
            *c = b.load(Ordering::Relaxed);
        }
        counts[0] += extra_zero;
        HistogramSnapshot {
            counts,
            sum_ns: self.sum_ns.load(Ordering::Relaxed),
            max_ns: self.max_ns.load(Ordering::Relaxed),
        }
    }
}

/// A point-in-time copy of a [`Histogram`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// Observations per bucket (not cumulative); see [`bucket_bound_ns`].
    pub counts: [u64; BUCKETS],
    /// Sum of all observations, in nanoseconds.
    pub sum_ns: u64,
    /// The largest observation (peak), in nanoseconds.
    pub max_ns: u64,
}

impl HistogramSnapshot {
    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Mean, or zero without observations.
    pub fn avg(&self) -> Duration {
        Duration::from_nanos(self.sum_ns.checked_div(self.count()).unwrap_or(0))
    }

    /// The peak.
    pub fn max(&self) -> Duration {
        Duration::from_nanos(self.max_ns)
    }

    /// The `q` quantile (0..=1), interpolated within its bucket and capped at the peak.
    pub fn quantile(&self, q: f64) -> Duration {
        let n = self.count();
        if n == 0 {
            return Duration::ZERO;
        }
        let rank = (q.clamp(0.0, 1.0) * n as f64).ceil().max(1.0) as u64;
        let mut seen = 0u64;
        for (i, c) in self.counts.iter().enumerate() {
            if *c == 0 {
                continue;
            }
            if seen + c >= rank {
                let lo = if i == 0 { 0 } else { bucket_bound_ns(i - 1) };
                let hi = bucket_bound_ns(i).min(self.max_ns.max(lo));
                let frac = (rank - seen) as f64 / *c as f64;
                let ns = lo as f64 + (hi.saturating_sub(lo)) as f64 * frac;
                return Duration::from_nanos((ns as u64).min(self.max_ns));
            }
            seen += c;
        }
        self.max()
    }

    /// `(upper bound in seconds, cumulative count)` pairs, Prometheus style.
    pub fn cumulative_buckets(&self) -> Vec<(f64, u64)> {
        let mut acc = 0;
        self.counts
            .iter()
            .enumerate()
            .map(|(i, c)| {
                acc += c;
                let b = bucket_bound_ns(i);
                let bound = if b == u64::MAX {
                    f64::INFINITY
                } else {
                    b as f64 / 1e9
                };
                (bound, acc)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_quantiles() {
        let h = Histogram::default();
        for us in [1u64, 3, 3, 100, 5000] {
            h.record(Duration::from_micros(us));
        }
        let s = h.snapshot(5);
        assert_eq!(s.count(), 10);
        assert_eq!(s.max(), Duration::from_micros(5000));
        assert_eq!(s.counts[0], 6, "1us and the five zeros");
        assert_eq!(s.counts[2], 2, "3us lands in (2us, 4us]");
        assert!(s.quantile(0.5) <= Duration::from_micros(1));
        let p99 = s.quantile(0.99);
        assert!(p99 > Duration::from_micros(4096) && p99 <= Duration::from_micros(5000));
        assert_eq!(s.avg(), Duration::from_nanos(5_107_000 / 10));
        let cum = s.cumulative_buckets();
        assert_eq!(cum.last().map(|c| c.1), Some(10));
        assert!(cum.last().is_some_and(|c| c.0.is_infinite()));
    }

    #[test]
    fn huge_values_land_in_the_last_bucket() {
        let h = Histogram::default();
        h.record(Duration::from_secs(1_000_000));
        assert_eq!(h.snapshot(0).counts[BUCKETS - 1], 1);
    }
}

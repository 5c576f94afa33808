//! Reconnect backoff: gRPC's connection backoff by default, or full, equal or
//! decorrelated jitter; and the process-wide cap on reconnects in flight.
//!
//! A pure state machine: [`Backoff::fail`] returns the next delay (randomness is
//! passed in so tests are deterministic), [`Backoff::reset`] forgets the failures.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::config::Config;

/// How delays are randomised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// gRPC: `initial * multiplier^n`, capped, then +/- `jitter`.
    Grpc,
    /// Uniform in `0..=capped` (AWS's "full jitter").
    Full,
    /// `capped/2` plus uniform in `0..=capped/2` ("equal jitter").
    Equal,
    /// Uniform in `initial..=3 * previous`, capped ("decorrelated jitter").
    Decorrelated,
}

/// Backoff settings, from the `backoff.*` keys.
#[derive(Debug, Clone)]
pub struct BackoffSettings {
    /// `backoff.strategy`.
    pub strategy: Strategy,
    /// `backoff.initial`.
    pub initial: Duration,
    /// `backoff.multiplier`.
    pub multiplier: f64,
    /// `backoff.jitter` (grpc only).
    pub jitter: f64,
    /// `backoff.max`.
    pub max: Duration,
    /// `backoff.min_connect_timeout`.
    pub min_connect_timeout: Duration,
}

impl Default for BackoffSettings {
    fn default() -> Self {
        Self::from_config(&Config::new())
    }
}

impl BackoffSettings {
    /// Reads the `backoff.*` keys of `cfg`.
    pub fn from_config(cfg: &Config) -> Self {
        let strategy = match cfg.get("backoff.strategy").unwrap_or("grpc") {
            "full" => Strategy::Full,
            "equal" => Strategy::Equal,
            "decorrelated" => Strategy::Decorrelated,
            _ => Strategy::Grpc,
        };
        BackoffSettings {
            strategy,
            initial: cfg.duration("backoff.initial"),
            multiplier: cfg.f64("backoff.multiplier").max(1.0),
            jitter: cfg.f64("backoff.jitter").clamp(0.0, 1.0),
            max: cfg.duration("backoff.max"),
            min_connect_timeout: cfg.duration("backoff.min_connect_timeout"),
        }
    }
}

/// One endpoint's backoff state.
#[derive(Debug, Clone)]
pub struct Backoff {
    settings: BackoffSettings,
    failures: u32,
    /// The un-jittered delay of the next failure (grpc/full/equal) or the last delay
    /// (decorrelated).
    current: Duration,
}

impl Backoff {
    /// A backoff with no failures.
    pub fn new(settings: BackoffSettings) -> Self {
        let current = settings.initial;
        Backoff {
            settings,
            failures: 0,
            current,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &BackoffSettings {
        &self.settings
    }

    /// Failures since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Records a failed attempt; returns how long to wait before the next one.
    /// `unit` is a random value in `[0, 1)`.
    pub fn fail(&mut self, unit: f64) -> Duration {
        let s = &self.settings;
        let max = s.max.as_secs_f64();
        let unit = unit.clamp(0.0, 1.0);
        let base = self.current.as_secs_f64().min(max);
        let delay = match s.strategy {
            Strategy::Grpc => (base * (1.0 + s.jitter * (2.0 * unit - 1.0))).min(max),
            Strategy::Full => base * unit,
            Strategy::Equal => base / 2.0 + base / 2.0 * unit,
            Strategy::Decorrelated => {
                let lo = s.initial.as_secs_f64();
                let hi = if self.failures == 0 {
                    lo
                } else {
                    (base * 3.0).max(lo)
                };
                (lo + (hi - lo) * unit).min(max)
            }
        };
        let delay = Duration::from_secs_f64(delay.max(0.0));
        self.current = match s.strategy {
            Strategy::Decorrelated => delay,
            _ => Duration::from_secs_f64((base * s.multiplier).min(max)),
        };
        self.failures = self.failures.saturating_add(1);
        delay
    }

    /// Forgets the failures: the next delay is the initial one again.
    pub fn reset(&mut self) {
        self.failures = 0;
        self.current = self.settings.initial;
    }

    /// gRPC's deadline for the next attempt: `max(min_connect_timeout, current
    /// delay)`. The pool bounds it by `pool.connect_timeout`.
    pub fn attempt_deadline(&self) -> Duration {
        self.settings.min_connect_timeout.max(self.current)
    }
}

static RECONNECTS_LIMIT: AtomicUsize = AtomicUsize::new(32);
static RECONNECTS_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Sets the process-wide cap on reconnects in flight
/// (`backoff.max_concurrent_reconnects`).
pub fn set_max_concurrent_reconnects(n: usize) {
    RECONNECTS_LIMIT.store(n.max(1), Ordering::SeqCst);
}

/// Reconnects in flight in this process now.
pub fn reconnects_in_flight() -> usize {
    RECONNECTS_IN_FLIGHT.load(Ordering::SeqCst)
}

/// One reconnect's place under the process-wide cap; freed on drop.
#[derive(Debug)]
pub struct ReconnectPermit(());

impl ReconnectPermit {
    /// Takes a place if the cap allows.
    pub fn try_take() -> Option<ReconnectPermit> {
        let limit = RECONNECTS_LIMIT.load(Ordering::SeqCst);
        RECONNECTS_IN_FLIGHT
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()
            .map(|_| ReconnectPermit(()))
    }
}

impl Drop for ReconnectPermit {
    fn drop(&mut self) {
        RECONNECTS_IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(f: impl FnOnce(&mut Config)) -> Backoff {
        let mut c = Config::new();
        f(&mut c);
        Backoff::new(BackoffSettings::from_config(&c))
    }

    fn secs(d: Duration) -> f64 {
        d.as_secs_f64()
    }

    #[test]
    fn grpc_defaults_grow_by_1_6_with_20_percent_jitter_up_to_120s() {
        let mut b = with(|_| {});
        // unit 0.5 is "no jitter".
        let d: Vec<f64> = (0..13).map(|_| secs(b.fail(0.5))).collect();
        let expect = [1.0, 1.6, 2.56, 4.096, 6.5536];
        for (got, want) in d.iter().zip(expect) {
            assert!((got - want).abs() < 1e-6, "{d:?}");
        }
        assert!((d[12] - 120.0).abs() < 1e-6, "capped at 120 s: {d:?}");
        b.reset();
        assert!((secs(b.fail(0.0)) - 0.8).abs() < 1e-6, "-20%");
        assert!((secs(b.fail(1.0)) - 1.92).abs() < 1e-6, "1.6 s +20%");
        assert_eq!(b.failures(), 2);
        assert_eq!(b.attempt_deadline(), Duration::from_secs(20));
    }

    #[test]
    fn full_equal_and_decorrelated_stay_in_their_ranges() {
        let mut full = with(|c| c.set("backoff.strategy", "full").unwrap());
        let mut equal = with(|c| c.set("backoff.strategy", "equal").unwrap());
        let mut dec = with(|c| {
            c.set("backoff.strategy", "decorrelated").unwrap();
            c.set("backoff.max", "10s").unwrap();
        });
        let mut cap = 1.0f64;
        let mut last_dec = 1.0f64;
        for i in 0..40 {
            let u = f64::from(i % 10) / 10.0;
            let f = secs(full.fail(u));
            let e = secs(equal.fail(u));
            assert!(
                (0.0..=cap.min(120.0) + 1e-9).contains(&f),
                "full {f} cap {cap}"
            );
            assert!((cap.min(120.0) / 2.0 - 1e-9..=cap.min(120.0) + 1e-9).contains(&e));
            cap *= 1.6;
            let d = secs(dec.fail(u));
            let hi = if i == 0 {
                1.0
            } else {
                (3.0 * last_dec).max(1.0)
            };
            assert!(
                d >= 1.0 - 1e-9 && d <= hi.min(10.0) + 1e-9,
                "dec {d} hi {hi}"
            );
            last_dec = d;
        }
    }

    #[test]
    fn the_process_wide_cap_is_enforced() {
        set_max_concurrent_reconnects(2);
        let a = ReconnectPermit::try_take();
        let b = ReconnectPermit::try_take();
        // Other tests in this process may hold places too: at most two in all.
        assert!(ReconnectPermit::try_take().is_none());
        drop(a);
        drop(b);
        assert!(ReconnectPermit::try_take().is_some());
        set_max_concurrent_reconnects(32);
    }
}

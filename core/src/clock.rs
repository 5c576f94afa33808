//! Time for the state machines, injectable so tests move time instead of sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// A source of monotonic time.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> Instant;

    /// The current time at a coarser resolution (a few milliseconds), as a [`Stamp`],
    /// for the hot paths that only need millisecond meaning (idle since, lifetime, lease
    /// time). The real clock reads `CLOCK_MONOTONIC_COARSE` on Linux, several times
    /// cheaper than a precise read; it may lag [`Clock::now`] by up to one kernel tick.
    /// Defaults to `now`.
    #[inline]
    fn coarse_stamp(&self) -> Stamp {
        Stamp::of(self.now())
    }

    /// Whether this is the real clock ([`SystemClock`]), whose coarse stamp hot paths
    /// may read without a call through the trait object ([`system_coarse_stamp`]).
    fn is_system(&self) -> bool {
        false
    }
}

/// [`SystemClock`]'s coarse stamp, without going through a `dyn Clock`.
#[inline]
pub fn system_coarse_stamp() -> Stamp {
    coarse::stamp()
}

/// The real monotonic clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[inline]
    fn now(&self) -> Instant {
        Instant::now()
    }

    #[inline]
    fn coarse_stamp(&self) -> Stamp {
        coarse::stamp()
    }

    fn is_system(&self) -> bool {
        true
    }
}

/// A clock that only moves when told to, for deterministic tests.
///
/// ```
/// use std::time::Duration;
/// use switchboard_core::clock::{Clock, ManualClock};
/// let clock = ManualClock::new();
/// let t0 = clock.now();
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(clock.now() - t0, Duration::from_secs(5));
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock {
    base: Instant,
    offset_ns: Arc<AtomicU64>,
}

impl ManualClock {
    /// A manual clock starting at the real current instant.
    pub fn new() -> Self {
        origin(); // so that every instant of this clock has a stamp of its own
        ManualClock {
            base: Instant::now(),
            offset_ns: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ns = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.offset_ns.fetch_add(ns, Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.base + Duration::from_nanos(self.offset_ns.load(Ordering::SeqCst))
    }
}

/// A point in time as nanoseconds on the monotonic clock (`CLOCK_MONOTONIC`s zero on
/// Linux, a process-wide origin elsewhere): eight bytes, compared
/// and subtracted as integers, for the timestamps a pool keeps on every connection.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamp(u64);

impl Stamp {
    /// Later than any time: "never".
    pub const NEVER: Stamp = Stamp(u64::MAX);

    /// The stamp of an instant (instants before the origin are the origin).
    pub fn of(i: Instant) -> Stamp {
        let (base, base_ns) = *origin();
        Stamp(base_ns.saturating_add(nanos(i.saturating_duration_since(base))))
    }

    /// The time from `earlier` to this stamp (zero if `earlier` is later).
    #[inline]
    pub fn since(self, earlier: Stamp) -> Duration {
        Duration::from_nanos(self.nanos_since(earlier))
    }

    /// Nanoseconds from `earlier` to this stamp (zero if `earlier` is later).
    #[inline]
    pub fn nanos_since(self, earlier: Stamp) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// This stamp moved `d` later (saturating at [`Stamp::NEVER`]).
    #[inline]
    pub fn plus(self, d: Duration) -> Stamp {
        Stamp(self.0.saturating_add(nanos(d)))
    }
}

/// A duration in whole nanoseconds, saturating.
#[inline]
pub fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The origin of stamps: an instant and, on Linux, the `CLOCK_MONOTONIC` reading taken
/// right after it (`Instant` is `CLOCK_MONOTONIC` there, and the coarse clock counts on
/// the same base). Stamps count from `CLOCK_MONOTONIC`'s zero, so that the hot path's
/// coarse reading is a stamp as it is; elsewhere from the origin.
fn origin() -> &'static (Instant, u64) {
    static ORIGIN: OnceLock<(Instant, u64)> = OnceLock::new();
    ORIGIN.get_or_init(|| {
        // A second back, so that the instants a clock read just before (e.g. the one
        // whose stamp is being made) still come after it.
        let (now, ns) = (Instant::now(), coarse::monotonic_ns());
        match now.checked_sub(Duration::from_secs(1)) {
            Some(earlier) if ns >= 1_000_000_000 => (earlier, ns - 1_000_000_000),
            _ => (now, ns),
        }
    })
}

#[cfg(target_os = "linux")]
mod coarse {
    use super::Stamp;

    fn read(id: libc::clockid_t) -> u64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec that outlives the call.
        if unsafe { libc::clock_gettime(id, &mut ts) } != 0 {
            return 0;
        }
        (ts.tv_sec as u64)
            .wrapping_mul(1_000_000_000)
            .wrapping_add(ts.tv_nsec as u64)
    }

    pub(super) fn monotonic_ns() -> u64 {
        read(libc::CLOCK_MONOTONIC)
    }

    #[inline]
    pub(super) fn stamp() -> Stamp {
        // On CLOCK_MONOTONIC's base, as `Stamp::of` counts (it may lag a tick).
        Stamp(read(libc::CLOCK_MONOTONIC_COARSE))
    }
}

#[cfg(not(target_os = "linux"))]
mod coarse {
    pub(super) fn monotonic_ns() -> u64 {
        0
    }

    #[inline]
    pub(super) fn stamp() -> super::Stamp {
        super::Stamp::of(std::time::Instant::now())
    }
}

/// A shared clock handle.
pub type SharedClock = Arc<dyn Clock>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coarse_clock_follows_the_precise_one_within_a_tick() {
        let c = SystemClock;
        for _ in 0..3 {
            let (a, coarse, b) = (Stamp::of(c.now()), c.coarse_stamp(), Stamp::of(c.now()));
            // At most one kernel tick (<= 10 ms at HZ=100) behind, never ahead (but for
            // the microsecond between the origin's two readings).
            assert!(
                coarse.nanos_since(b) < 100_000,
                "coarse {coarse:?} ahead of {b:?}"
            );
            assert!(
                a.since(coarse) <= Duration::from_millis(10),
                "{a:?} {coarse:?}"
            );
            std::thread::sleep(Duration::from_millis(15));
        }
        let t0 = c.coarse_stamp();
        std::thread::sleep(Duration::from_millis(30));
        assert!(c.coarse_stamp().since(t0) >= Duration::from_millis(15));
    }

    #[test]
    fn a_manual_clock_stamps_exactly() {
        let c = ManualClock::new();
        let t0 = c.coarse_stamp();
        c.advance(Duration::from_millis(1500));
        assert_eq!(c.coarse_stamp().since(t0), Duration::from_millis(1500));
        assert_eq!(
            t0.plus(Duration::from_secs(1)).since(t0),
            Duration::from_secs(1)
        );
        assert!(t0 < Stamp::NEVER && t0.since(c.coarse_stamp()).is_zero());
    }
}

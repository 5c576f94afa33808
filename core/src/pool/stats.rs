//! A pool's statistics: the snapshot, the reasons a connection closes, and the
//! counters behind them (updated with relaxed atomics on the hot path).

use std::sync::atomic::{AtomicU64, Ordering};

use super::PoolInner;
use crate::connector::Connector;
use crate::metrics::histogram::{Histogram, HistogramSnapshot};

/// Why a connection was closed; each has its own counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// Failed the liveness check or the probe, or could not be recycled.
    Broken,
    /// Idle longer than `pool.idle_timeout` beyond `min_idle`.
    Idle,
    /// Older than its (jittered) `pool.max_lifetime`.
    Lifetime,
    /// Returned while the pool held more than `max_size` (overflow, or after a resize).
    Overflow,
    /// Closed by `evict_all`.
    Evicted,
    /// Closed by the program (`Lease::discard`).
    Discarded,
    /// The pool or manager closed.
    Closed,
}

impl CloseReason {
    /// Every reason, in counter order.
    pub const ALL: [CloseReason; 7] = [
        CloseReason::Broken,
        CloseReason::Idle,
        CloseReason::Lifetime,
        CloseReason::Overflow,
        CloseReason::Evicted,
        CloseReason::Discarded,
        CloseReason::Closed,
    ];

    /// The label used in metrics: `broken`, `idle`, ...
    pub const fn as_str(self) -> &'static str {
        match self {
            CloseReason::Broken => "broken",
            CloseReason::Idle => "idle",
            CloseReason::Lifetime => "lifetime",
            CloseReason::Overflow => "overflow",
            CloseReason::Evicted => "evicted",
            CloseReason::Discarded => "discarded",
            CloseReason::Closed => "closed",
        }
    }
}

/// Connections closed, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClosedByReason {
    /// [`CloseReason::Broken`]
    pub broken: u64,
    /// [`CloseReason::Idle`]
    pub idle: u64,
    /// [`CloseReason::Lifetime`]
    pub lifetime: u64,
    /// [`CloseReason::Overflow`]
    pub overflow: u64,
    /// [`CloseReason::Evicted`]
    pub evicted: u64,
    /// [`CloseReason::Discarded`]
    pub discarded: u64,
    /// [`CloseReason::Closed`]
    pub closed: u64,
}

impl ClosedByReason {
    /// The sum over all reasons.
    pub fn total(&self) -> u64 {
        self.broken
            + self.idle
            + self.lifetime
            + self.overflow
            + self.evicted
            + self.discarded
            + self.closed
    }

    /// The count for one reason.
    pub fn get(&self, reason: CloseReason) -> u64 {
        match reason {
            CloseReason::Broken => self.broken,
            CloseReason::Idle => self.idle,
            CloseReason::Lifetime => self.lifetime,
            CloseReason::Overflow => self.overflow,
            CloseReason::Evicted => self.evicted,
            CloseReason::Discarded => self.discarded,
            CloseReason::Closed => self.closed,
        }
    }
}

/// A point-in-time snapshot of a pool's state and counters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PoolStats {
    /// The pool's name.
    pub name: String,
    /// `pool.max_size` now.
    pub max_size: usize,
    /// `pool.min_idle` now.
    pub min_idle: usize,
    /// `pool.max_overflow`.
    pub max_overflow: usize,
    /// Open connections plus connects in flight.
    pub size: usize,
    /// Idle connections.
    pub idle: usize,
    /// Connections handed out.
    pub leased: usize,
    /// Callers waiting for a connection.
    pub waiting: usize,
    /// Connects in flight.
    pub connecting: usize,
    /// Connections opened, ever.
    pub created_total: u64,
    /// Connections closed, ever (the sum of `closed_by`).
    pub closed_total: u64,
    /// Connections closed, by reason.
    pub closed_by: ClosedByReason,
    /// Successful acquires (`acquired_direct_total + acquired_waited_total`).
    pub acquired_total: u64,
    /// Acquires served at once from an idle connection.
    pub acquired_direct_total: u64,
    /// Acquires that waited in line.
    pub acquired_waited_total: u64,
    /// Acquires that timed out.
    pub timed_out_total: u64,
    /// Acquires rejected because the wait queue was full.
    pub rejected_total: u64,
    /// Connect attempts that failed.
    pub connect_failed_total: u64,
    /// Probes that failed (the connection was closed as broken).
    pub probe_failed_total: u64,
    /// Time acquires waited (zero for those served at once): avg, peak, percentiles.
    pub wait: HistogramSnapshot,
    /// Time connections were held by leases.
    pub lease: HistogramSnapshot,
    /// Each endpoint's health, breaker and load (see [`super::Pool::health`]).
    pub endpoints: Vec<crate::health::EndpointHealth>,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub created: AtomicU64,
    pub closed: [AtomicU64; 7],
    pub acquired_direct: AtomicU64,
    pub acquired_waited: AtomicU64,
    pub timed_out: AtomicU64,
    pub rejected: AtomicU64,
    pub connect_failed: AtomicU64,
    pub probe_failed: AtomicU64,
    pub wait: Histogram,
    pub lease: Histogram,
}

impl Counters {
    #[inline]
    pub(crate) fn inc(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn closed(&self, reason: CloseReason) {
        let i = CloseReason::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(0);
        Self::inc(&self.closed[i]);
    }

    pub(crate) fn closed_by(&self) -> ClosedByReason {
        let g = |i: usize| self.closed[i].load(Ordering::Relaxed);
        ClosedByReason {
            broken: g(0),
            idle: g(1),
            lifetime: g(2),
            overflow: g(3),
            evicted: g(4),
            discarded: g(5),
            closed: g(6),
        }
    }
}

impl<C: Connector> PoolInner<C> {
    pub(super) fn stats(&self) -> PoolStats {
        let size = self.size.load(Ordering::SeqCst);
        let idle = self.idle.len();
        let connecting = self.connecting.load(Ordering::SeqCst);
        let c = &self.counters;
        let closed_by = c.closed_by();
        let direct = c.acquired_direct.load(Ordering::Relaxed);
        let waited = c.acquired_waited.load(Ordering::Relaxed);
        PoolStats {
            name: self.name.clone(),
            max_size: self.max_size.load(Ordering::SeqCst),
            min_idle: self.min_idle.load(Ordering::SeqCst),
            max_overflow: self.settings.max_overflow,
            size,
            idle,
            leased: size.saturating_sub(idle + connecting),
            waiting: self.waiting(),
            connecting,
            created_total: c.created.load(Ordering::Relaxed),
            closed_total: closed_by.total(),
            closed_by,
            acquired_total: direct + waited,
            acquired_direct_total: direct,
            acquired_waited_total: waited,
            timed_out_total: c.timed_out.load(Ordering::Relaxed),
            rejected_total: c.rejected.load(Ordering::Relaxed),
            connect_failed_total: c.connect_failed.load(Ordering::Relaxed),
            probe_failed_total: c.probe_failed.load(Ordering::Relaxed),
            wait: c.wait.snapshot(direct),
            lease: c.lease.snapshot(0),
            endpoints: self.endpoint_health(),
        }
    }
}

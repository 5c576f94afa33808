//! The connection pool.
//!
//! # How it works
//!
//! Idle connections sit in a lock-free queue. Acquiring an idle connection pops it,
//! runs the connector's cheap liveness check and returns a [`Lease`]; releasing pushes
//! it back. Neither touches a lock nor enters the runtime. A connection idle longer
//! than `validate_after` is probed first (when the connector has a probe); one past its
//! lifetime or evicted is closed instead of handed out.
//!
//! When nothing is idle, the caller registers as a *waiter* (a priority-then-FIFO
//! queue behind a mutex that only the slow path takes) and waits for a grant.
//! Connections are opened by background tasks on the manager's runtime, at most
//! `max_connecting` at a time and only while waiters outnumber connects in flight, so a
//! demand spike opens only the connections that demand needs (a returned connection
//! may serve a waiter before a new one is ready). A released connection goes straight
//! to the first waiter, else to the idle queue.
//!
//! Every resource is a value with a `Drop` that gives it back: a grant sent to a
//! waiter that has gone away (timed out, cancelled) is dropped with the waiter's
//! channel, and that drop returns the connection. So no cancellation can leak a
//! connection or a slot.
//!
//! `size` counts open connections plus connects in flight and never exceeds
//! `max_size + max_overflow`. A background upkeep task closes idle connections past
//! `idle_timeout` (down to `min_idle`) and past their lifetime, probes idle ones, and
//! opens connections up to `min_idle`.
//!
//! # Where each part lives
//!
//! | file | holds |
//! |---|---|
//! | `mod.rs` | [`Pool`] and its state, the operator's calls (resize, evict, drain, breakers), close |
//! | `checkout.rs` | the fast path: taking an idle connection and giving one back |
//! | `waiters.rs` | the slow acquire path: waiting for a grant (timeouts, retries) |
//! | `waitqueue.rs` | the order waiters are served in (priority, then arrival) |
//! | `deadlines.rs` | one task per pool that times out waiters at their deadline |
//! | `connect.rs` | connect slots, background connects, opening and closing a connection |
//! | `upkeep.rs` | the background pass: idle timeout, lifetime, probes, health checks, leaks, `min_idle` |
//! | `lease.rs` | [`Lease`], the checked-out connection |
//! | `dropguard.rs` | the guards that give back what a call held, however it ends |
//! | `settings.rs`, `stats.rs` | [`PoolSettings`]; [`PoolStats`], [`CloseReason`] and the counters |
//! | `endpoints/` | each endpoint's breaker, backoff, health record and load; `choice.rs`: where the next connect goes |
//! | `idle.rs` | the idle queue (lock-free FIFO or LIFO) |
//! | `tests.rs` | the accounting after every kind of exit, on a manual clock |

mod checkout;
mod connect;
mod deadlines;
mod dropguard;
mod endpoints;
mod idle;
mod lease;
mod settings;
mod stats;
#[cfg(test)]
mod tests;
mod upkeep;
mod waiters;
mod waitqueue;

pub(crate) use endpoints::{RemoteVerdict, SharedBreakers};
pub use lease::Lease;
pub use settings::PoolSettings;
pub use stats::{CloseReason, ClosedByReason, PoolStats};

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::breaker::{BreakerOp, BreakerState};
use crate::clock::{SharedClock, Stamp};
use crate::config::Config;
use crate::connector::Connector;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::events::EventBus;
use crate::health::{ConnState, EndpointHealth, HealthReport};
use crate::runtime::RuntimeShared;
use endpoints::Endpoints;
use idle::IdleQueue;
use stats::Counters;
use upkeep::upkeep_task;
use waiters::{Grant, Waiters};

/// The "closed" bit of `PoolInner::state`.
const CLOSED: usize = 1;
/// One waiting caller in `PoolInner::state`.
const WAITER: usize = 2;

/// Options for one acquire.
#[derive(Debug, Clone, Copy, Default)]
pub struct AcquireOptions {
    /// Overrides `pool.acquire_timeout` for this call.
    pub timeout: Option<Duration>,
    /// Higher is served first; equal priorities are served in arrival order.
    pub priority: i32,
}

struct Entry<T> {
    conn: T,
    id: u64,
    /// When it must be retired (`max_lifetime` less its jitter; `NEVER` without one).
    expires: Stamp,
    /// When it last became idle (for `idle_timeout`).
    idle_since: Stamp,
    /// When it last proved alive: returned by a lease or passed a probe
    /// (for `validate_after`).
    proven: Stamp,
    /// The endpoint it is connected to (index into the pool's endpoints).
    ep: u32,
    /// Its endpoint's eviction epoch when it opened; older than the endpoint's now
    /// means evicted (evict_all, drain, or the endpoint's breaker opened).
    epoch: u32,
    /// When its current lease began (for the lease-time histogram).
    leased_at: Stamp,
}

/// A lease for leak detection: when it began, whether a leak was reported, its endpoint.
type LeaseRecord = (Stamp, bool, u32);

pub(crate) struct PoolInner<C: Connector> {
    name: String,
    endpoint_list: Vec<Endpoint>,
    endpoints: Endpoints,
    /// `backoff.initial`, for the jitter before a reconnect.
    backoff_initial: Duration,
    /// `retry.max_attempts` and `retry.max_elapsed` (zero: no limit of its own).
    retry: (u32, Duration),
    connector: C,
    has_check: bool,
    settings: PoolSettings,
    /// `settings.validate_after` and `settings.liveness_bypass` in nanoseconds, for
    /// the checkout's comparisons.
    validate_after_ns: u64,
    liveness_bypass_ns: u64,
    /// The clock is the real one: its coarse stamp is read without a virtual call.
    system_clock: bool,
    /// `pool.scale_ahead` is set: each checkout calls `scale_ahead` (connect.rs).
    scale_ahead_on: bool,
    max_size: AtomicUsize,
    min_idle: AtomicUsize,
    rt: Arc<RuntimeShared>,
    clock: SharedClock,
    idle: IdleQueue<Box<Entry<C::Conn>>>,
    size: AtomicUsize,
    connecting: AtomicUsize,
    /// New connections on their way from a finished connect into the pool.
    delivering: AtomicUsize,
    /// Idle connections the upkeep holds for a moment to look at them (not probes).
    inspecting: AtomicUsize,
    /// One word for what checkout and return look at together: bit 0 is "closed",
    /// the rest counts the callers waiting (`WAITER` each).
    state: AtomicUsize,
    waiters: Mutex<Waiters<C>>,
    deadlines: deadlines::Deadlines,
    next_id: AtomicU64,
    counters: Counters,
    events: Arc<EventBus>,
    /// Leases out, by connection id: when they began and whether a leak was reported.
    /// Only kept when `pool.leak_detection_threshold` is set.
    leases: Option<Mutex<HashMap<u64, LeaseRecord>>>,
    /// Run once when the pool closes (the manager forgets it).
    on_close: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}

/// A pool of connections made by a [`Connector`]. Cheap to clone; all clones share
/// the same pool. Created by [`crate::Manager::pool`] or [`crate::Manager::pool_with`].
pub struct Pool<C: Connector> {
    inner: Arc<PoolInner<C>>,
}

impl<C: Connector> Clone for Pool<C> {
    fn clone(&self) -> Self {
        Pool {
            inner: self.inner.clone(),
        }
    }
}

impl<C: Connector> std::fmt::Debug for Pool<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.stats();
        f.debug_struct("Pool")
            .field("name", &s.name)
            .field("size", &s.size)
            .field("idle", &s.idle)
            .field("leased", &s.leased)
            .field("waiting", &s.waiting)
            .finish()
    }
}

impl<C: Connector> Pool<C> {
    pub(crate) fn new(
        name: String,
        endpoints: Vec<Endpoint>,
        connector: C,
        cfg: &Config,
        rt: Arc<RuntimeShared>,
        clock: SharedClock,
        events: Arc<EventBus>,
    ) -> Self {
        let settings = PoolSettings::from_config(cfg);
        let idle = IdleQueue::new(settings.lifo, settings.max_size + settings.max_overflow);
        let endpoint_list = endpoints.clone();
        let endpoints = Endpoints::new(name.clone(), endpoints, cfg, events.clone(), clock.clone());
        let inner = Arc::new(PoolInner {
            idle,
            events,
            on_close: Mutex::new(None),
            leases: settings.leak_detection.map(|_| Mutex::new(HashMap::new())),
            name,
            endpoint_list,
            endpoints,
            backoff_initial: cfg.duration("backoff.initial"),
            retry: (
                cfg.u64("retry.max_attempts").max(1) as u32,
                cfg.duration("retry.max_elapsed"),
            ),
            has_check: connector.has_check(),
            connector,
            validate_after_ns: crate::clock::nanos(settings.validate_after),
            liveness_bypass_ns: crate::clock::nanos(settings.liveness_bypass),
            scale_ahead_on: settings.scale_ahead > 0.0,
            system_clock: clock.is_system(),
            max_size: AtomicUsize::new(settings.max_size),
            min_idle: AtomicUsize::new(settings.min_idle),
            settings,
            rt,
            clock,
            size: AtomicUsize::new(0),
            connecting: AtomicUsize::new(0),
            delivering: AtomicUsize::new(0),
            inspecting: AtomicUsize::new(0),
            state: AtomicUsize::new(0),
            waiters: Mutex::new(Waiters {
                queue: Default::default(),
                armed: Default::default(),
            }),
            deadlines: Default::default(),
            next_id: AtomicU64::new(1),
            counters: Counters::default(),
        });
        // The upkeep holds only a weak reference, so it ends with the pool.
        let weak = Arc::downgrade(&inner);
        let mut every = inner.settings.upkeep_interval();
        if let Some(h) = inner.endpoints.health.interval {
            // Often enough that health checks keep their interval.
            every = every.min((h / 2).max(Duration::from_millis(10)));
        }
        drop(inner.rt.handle().spawn(upkeep_task(weak.clone(), every)));
        let wake = inner.deadlines.wake.clone();
        drop(
            inner
                .rt
                .handle()
                .spawn(deadlines::deadline_task(weak, wake)),
        );
        Pool { inner }
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The pool's endpoints.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.inner.endpoint_list
    }

    /// The pool's settings as created (see [`Pool::stats`] for the live sizes).
    pub fn settings(&self) -> &PoolSettings {
        &self.inner.settings
    }

    /// The connector.
    pub fn connector(&self) -> &C {
        &self.inner.connector
    }

    /// The manager's runtime, for bindings that spawn async work on it.
    pub fn runtime(&self) -> &Arc<RuntimeShared> {
        &self.inner.rt
    }

    /// Changes `max_size` and `min_idle` on the live pool without dropping leases:
    /// growing lets waiters in at once; shrinking closes surplus idle connections now
    /// and surplus leased ones when they come back.
    pub fn resize(&self, max_size: usize, min_idle: usize) -> Result<()> {
        let inner = &self.inner;
        inner.check_open()?;
        if !(1..=65_535).contains(&max_size) {
            return Err(Error::invalid_argument(format!(
                "pool.max_size must be an integer 1..=65535, got \"{max_size}\""
            )));
        }
        if min_idle > max_size {
            return Err(Error::invalid_argument(format!(
                "pool.min_idle must be an integer 0..=max_size ({max_size}), got \"{min_idle}\""
            )));
        }
        inner.max_size.store(max_size, Ordering::SeqCst);
        inner.min_idle.store(min_idle, Ordering::SeqCst);
        // Shrink: close idle connections beyond the new size now.
        let mut n = inner.idle.len();
        while n > 0 && inner.size.load(Ordering::SeqCst) > max_size {
            n -= 1;
            match inner.idle.pop() {
                Some(e) => inner.close_entry(e, CloseReason::Overflow),
                None => break,
            }
        }
        inner.ensure_connecting();
        inner.fill_min_idle();
        Ok(())
    }

    /// Closes every idle connection now and every leased one when it comes back, e.g.
    /// after a failover. New connections are opened on demand (and up to `min_idle`).
    pub fn evict_all(&self) {
        let inner = &self.inner;
        for slot in &inner.endpoints.slots {
            slot.epoch.fetch_add(1, Ordering::SeqCst);
        }
        inner.sweep_evicted();
        inner.fill_min_idle();
    }

    /// Closes the connections of one endpoint (idle ones now, leased ones when they
    /// come back), e.g. before taking it out of service: the endpoint is
    /// `disconnecting` until the last one closes, then `disconnected`. New connections
    /// go wherever the pool chooses, which may be that endpoint again (force its
    /// breaker open to keep it out).
    pub fn drain(&self, endpoint: &str) -> Result<()> {
        let inner = &self.inner;
        let i = inner.endpoints.find(endpoint)?;
        inner.endpoints.slots[i]
            .epoch
            .fetch_add(1, Ordering::SeqCst);
        inner.endpoints.draining(i);
        inner.sweep_evicted();
        inner.fill_min_idle();
        Ok(())
    }

    /// The pool's health: totals and, for each endpoint, state, breaker, quality,
    /// latency EWMA, success rate, calls, failures, reconnects, last success and
    /// connected-since.
    pub fn health(&self) -> HealthReport {
        self.inner.health()
    }

    /// The endpoints in good standing (breaker not refusing; not failed, reconnecting
    /// after a failure, or disconnected), best quality first.
    pub fn healthy_endpoints(&self) -> Vec<EndpointHealth> {
        let mut v: Vec<EndpointHealth> = self
            .inner
            .health()
            .endpoints
            .into_iter()
            .filter(|e| {
                !e.breaker.blocks()
                    && !matches!(
                        e.state,
                        ConnState::Failed | ConnState::Reconnecting | ConnState::Disconnected
                    )
            })
            .collect();
        v.sort_by(|a, b| b.quality.total_cmp(&a.quality));
        v
    }

    /// Of `candidates` (endpoints of this pool, as written in its target; empty: all),
    /// the one the pool would pick now: power of two choices on in-flight load and
    /// quality, skipping endpoints whose breaker refuses or that are backing off.
    /// Unavailable when none can take a connection; NotFound for an unknown name.
    pub fn select_best(&self, candidates: &[&str]) -> Result<String> {
        let eps = &self.inner.endpoints;
        let all: Vec<usize> = (0..eps.slots.len()).collect();
        let chosen: Vec<usize> = if candidates.is_empty() {
            all.clone()
        } else {
            candidates
                .iter()
                .map(|c| eps.find(c))
                .collect::<Result<_>>()?
        };
        let exclude: Vec<usize> = all.into_iter().filter(|i| !chosen.contains(i)).collect();
        match eps.peek(&exclude) {
            Ok(i) => Ok(eps.slots[i].name.clone()),
            Err(no) => Err(no.error),
        }
    }

    /// The breaker state of `endpoint` (`None`: the pool's only endpoint).
    pub fn breaker_state(&self, endpoint: Option<&str>) -> Result<BreakerState> {
        let eps = &self.inner.endpoints;
        let i = eps.find_or_only(endpoint)?;
        Ok(eps.breaker_state(i))
    }

    /// An operator's command to the breaker of `endpoint` (`None`: every endpoint):
    /// force it open, disable it, set it to metrics only, or reset it to closed.
    pub fn breaker_op(&self, endpoint: Option<&str>, op: BreakerOp) -> Result<()> {
        let inner = &self.inner;
        let eps = &inner.endpoints;
        let targets: Vec<usize> = match endpoint {
            Some(e) => vec![eps.find(e)?],
            None => (0..eps.slots.len()).collect(),
        };
        for i in targets {
            if eps.apply(i, op).evict {
                inner.sweep_evicted();
            }
        }
        if op != BreakerOp::ForceOpen {
            inner.ensure_connecting();
        }
        Ok(())
    }

    /// Publishes this pool's breaker openings to the cluster from now on.
    pub(crate) fn share_breakers(&self, shared: Arc<dyn SharedBreakers>) {
        let _ = self.inner.endpoints.shared.set(shared);
    }

    /// Applies another instance's verdict on `endpoint`'s breaker (NotFound for an
    /// endpoint this pool does not have).
    pub(crate) fn remote_breaker(&self, endpoint: &str, verdict: RemoteVerdict) -> Result<()> {
        let inner = &self.inner;
        let i = inner.endpoints.find(endpoint)?;
        if inner.endpoints.remote(i, verdict).evict {
            inner.sweep_evicted();
        }
        if verdict == RemoteVerdict::Closed {
            inner.ensure_connecting();
        }
        Ok(())
    }

    /// Forgets every endpoint's failures: the next connect may start at once and
    /// later delays start from `backoff.initial` again.
    pub fn reset_backoff(&self) {
        self.inner.endpoints.reset_backoff();
        self.inner.ensure_connecting();
    }

    /// A snapshot of the pool's state and counters.
    pub fn stats(&self) -> PoolStats {
        self.inner.stats()
    }

    /// Closes the pool: waiters fail with Unavailable, idle connections close now and
    /// leased ones when they come back. Closing twice is a no-op.
    pub fn close(&self) {
        self.inner.close();
    }

    /// Whether the pool is closed.
    pub fn is_closed(&self) -> bool {
        self.inner.state.load(Ordering::Acquire) & CLOSED != 0
    }

    pub(crate) fn on_close(&self, f: Box<dyn FnOnce() + Send>) {
        *self
            .inner
            .on_close
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(f);
    }

    /// A reference that does not keep the pool alive.
    pub fn downgrade(&self) -> WeakPool<C> {
        WeakPool(Arc::downgrade(&self.inner))
    }
}

/// A weak reference to a [`Pool`]; see [`Pool::downgrade`].
pub struct WeakPool<C: Connector>(Weak<PoolInner<C>>);

impl<C: Connector> WeakPool<C> {
    /// The pool, if it still exists.
    pub fn upgrade(&self) -> Option<Pool<C>> {
        self.0.upgrade().map(|inner| Pool { inner })
    }
}

impl<C: Connector> Drop for PoolInner<C> {
    /// The last handle and the last lease are gone: close what is idle through the
    /// connector, so custom close callbacks run for every object.
    fn drop(&mut self) {
        self.deadlines.stop();
        while let Some(e) = self.idle.pop() {
            self.connector.close(e.conn);
            self.counters.closed(CloseReason::Closed);
        }
    }
}

impl<C: Connector> PoolInner<C> {
    /// Now, from the coarse clock (see [`crate::clock::Clock::coarse_stamp`]).
    #[inline]
    pub(super) fn coarse_now(&self) -> Stamp {
        if self.system_clock {
            crate::clock::system_coarse_stamp()
        } else {
            self.clock.coarse_stamp()
        }
    }

    /// Whether the pool is closed (read with SeqCst, for the slow paths).
    #[inline]
    pub(super) fn is_shut(&self) -> bool {
        self.state.load(Ordering::SeqCst) & CLOSED != 0
    }

    /// How many callers wait (read with SeqCst, for the slow paths).
    #[inline]
    pub(super) fn waiting(&self) -> usize {
        self.state.load(Ordering::SeqCst) / WAITER
    }

    fn close(self: &Arc<Self>) {
        if self.state.fetch_or(CLOSED, Ordering::SeqCst) & CLOSED != 0 {
            return;
        }
        let waiters: Vec<_> = {
            let mut w = self.lock_waiters();
            let all = w.queue.take_all();
            // Under the waiters' lock, where every count change happens.
            self.state.fetch_and(CLOSED, Ordering::SeqCst);
            all
        };
        for x in waiters {
            let _ = x.tx.send(Grant::Closed);
        }
        self.deadlines.stop();
        self.drain_idle(CloseReason::Closed);
        self.endpoints.closed_all();
        let hook = self
            .on_close
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(hook) = hook {
            hook();
        }
    }
}

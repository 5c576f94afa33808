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

mod endpoints;
pub(crate) use endpoints::{RemoteVerdict, SharedBreakers};
mod idle;
mod settings;

pub use settings::{CloseReason, ClosedByReason, PoolSettings, PoolStats};

use endpoints::{Choice, Endpoints, NoEndpoint};

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::backoff::ReconnectPermit;
use crate::breaker::{BreakerOp, BreakerState};
use crate::clock::SharedClock;
use crate::config::{Config, fmt_duration};
use crate::connector::Connector;
use crate::endpoint::Endpoint;
use crate::error::{Code, Error, Result};
use crate::events::{Event, EventBus, EventKind};
use crate::health::{ConnState, EndpointHealth, HealthReport};
use crate::runtime::RuntimeShared;
use idle::IdleQueue;
use settings::Counters;

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
    /// When it must be retired (`max_lifetime` less its jitter).
    expires: Option<Instant>,
    /// When it last became idle (for `idle_timeout`).
    idle_since: Instant,
    /// When it last proved alive: returned by a lease or passed a probe
    /// (for `validate_after`).
    proven: Instant,
    /// The endpoint it is connected to (index into the pool's endpoints).
    ep: u32,
    /// Its endpoint's eviction epoch when it opened; older than the endpoint's now
    /// means evicted (evict_all, drain, or the endpoint's breaker opened).
    epoch: u32,
    /// When its current lease began (for the lease-time histogram).
    leased_at: Instant,
}

/// What a waiter is woken with.
enum Grant<C: Connector> {
    Conn(Lease<C>),
    Failed(Error),
    Closed,
}

type WaiterKey = (Reverse<i32>, u64);

struct Waiters<C: Connector> {
    queue: BTreeMap<WaiterKey, oneshot::Sender<Grant<C>>>,
    seq: u64,
}

/// What the fast path found.
enum Found<C: Connector> {
    Ready(Entry<C::Conn>),
    /// Idle past `validate_after`: probe before handing it out. Held by a guard that
    /// returns it to the pool if the call ends before the probe starts.
    Check(Held<C>),
    Empty,
}

/// An idle connection taken out for a probe that has not started yet. If the call
/// ends first (an error, a refused block_on, a future dropped before its first poll),
/// dropping the guard puts the connection back, untouched.
struct Held<C: Connector> {
    entry: Option<Entry<C::Conn>>,
    pool: Arc<PoolInner<C>>,
}

impl<C: Connector> Drop for Held<C> {
    fn drop(&mut self) {
        if let Some(e) = self.entry.take() {
            self.pool.give_back(e, false);
        }
    }
}

/// Why a connect did not produce a connection.
enum ConnectError {
    /// No endpoint could take it (breakers refusing, backing off).
    NoEndpoint(NoEndpoint),
    /// The connect to endpoint `.0` failed.
    Failed(usize, Error),
}

/// Returns an endpoint's permit if a connect is abandoned before its result.
struct ChoiceGuard<'a, C: Connector> {
    pool: &'a PoolInner<C>,
    choice: Option<Choice>,
}

impl<C: Connector> Drop for ChoiceGuard<'_, C> {
    fn drop(&mut self) {
        if let Some(c) = self.choice.take() {
            self.pool.endpoints.cancel(&c);
        }
    }
}

/// A lease for leak detection: when it began, whether a leak was reported, its endpoint.
type LeaseRecord = (Instant, bool, u32);

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
    max_size: AtomicUsize,
    min_idle: AtomicUsize,
    rt: Arc<RuntimeShared>,
    clock: SharedClock,
    idle: IdleQueue<Entry<C::Conn>>,
    size: AtomicUsize,
    connecting: AtomicUsize,
    /// Idle connections the upkeep holds for a moment to look at them (not probes).
    inspecting: AtomicUsize,
    num_waiters: AtomicUsize,
    waiters: Mutex<Waiters<C>>,
    closed: AtomicBool,
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
        let idle = IdleQueue::new(settings.lifo);
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
            max_size: AtomicUsize::new(settings.max_size),
            min_idle: AtomicUsize::new(settings.min_idle),
            settings,
            rt,
            clock,
            size: AtomicUsize::new(0),
            connecting: AtomicUsize::new(0),
            inspecting: AtomicUsize::new(0),
            num_waiters: AtomicUsize::new(0),
            waiters: Mutex::new(Waiters {
                queue: BTreeMap::new(),
                seq: 0,
            }),
            closed: AtomicBool::new(false),
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
        drop(inner.rt.handle().spawn(upkeep_task(weak, every)));
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

    /// Takes an idle connection if one is ready, without waiting and without opening
    /// one. `Ok(None)` means none is idle (or others are already waiting, who go
    /// first). Enters the runtime only to probe a connection idle past
    /// `pool.validate_after` (when the connector has a probe); on an async runtime
    /// thread, where it cannot block, such a connection is left for `acquire`.
    #[inline]
    pub fn try_acquire(&self) -> Result<Option<Lease<C>>> {
        let inner = &self.inner;
        inner.check_open()?;
        loop {
            match inner.find_idle() {
                Found::Ready(e) => return Ok(Some(inner.lease(e, false))),
                Found::Empty => return Ok(None),
                Found::Check(held) => {
                    if inner.rt.check_can_block().is_err() {
                        return Ok(None); // dropping `held` puts it back
                    }
                    if let Some(e) = inner.rt.block_on(inner.validate(held))? {
                        return Ok(Some(inner.lease(e, false)));
                    }
                }
            }
        }
    }

    /// Like [`Pool::try_acquire`] but never probes and never enters the runtime: a
    /// connection idle past `pool.validate_after` is left in the pool for `acquire`.
    /// For callers that must not block at all (a JS thread whose check callbacks run
    /// on that same thread).
    #[inline]
    pub fn try_acquire_ready(&self) -> Result<Option<Lease<C>>> {
        let inner = &self.inner;
        inner.check_open()?;
        match inner.find_idle() {
            Found::Ready(e) => Ok(Some(inner.lease(e, false))),
            Found::Empty => Ok(None),
            Found::Check(_held) => Ok(None), // dropping it puts it back
        }
    }

    /// Acquires a connection, waiting up to `pool.acquire_timeout`.
    ///
    /// Cancellation-safe: dropping the future returns anything it had obtained.
    pub async fn acquire(&self) -> Result<Lease<C>> {
        self.acquire_with(AcquireOptions::default()).await
    }

    /// Acquires a connection with per-call options.
    pub async fn acquire_with(&self, opts: AcquireOptions) -> Result<Lease<C>> {
        let inner = &self.inner;
        inner.check_open()?;
        let pending = match inner.find_idle() {
            Found::Ready(e) => return Ok(inner.lease(e, false)),
            Found::Check(held) => Some(held),
            Found::Empty => None,
        };
        let _active = inner.rt.enter_active()?;
        // Polled right here in the caller's task (no hand-off to a worker and back),
        // inside the manager's runtime context so that timers and sockets register
        // with its drivers whatever executor the caller uses. Dropping this future is
        // safe: the waiter guard and the probe guard give everything back.
        InRuntime {
            handle: inner.rt.handle(),
            fut: std::pin::pin!(inner.acquire_slow(pending, opts)),
        }
        .await
    }

    /// Acquires a connection from a task that already runs on the manager's runtime
    /// (see [`crate::runtime::RuntimeShared::spawn`]), without spawning a task of its own.
    /// Bindings use it to report a result through their own callback. Cancellation-safe.
    pub async fn acquire_on_runtime(&self, opts: AcquireOptions) -> Result<Lease<C>> {
        let inner = &self.inner;
        inner.check_open()?;
        if !inner.rt.on_own_thread() {
            return Err(Error::failed_precondition(
                "acquire_on_runtime must run on the manager's runtime; use acquire() elsewhere",
            ));
        }
        let pending = match inner.find_idle() {
            Found::Ready(e) => return Ok(inner.lease(e, false)),
            Found::Check(held) => Some(held),
            Found::Empty => None,
        };
        inner.acquire_slow(pending, opts).await
    }

    /// Acquires a connection, blocking the calling thread (which must not be an async
    /// runtime thread) up to the timeout. The wait happens on the calling thread.
    pub fn acquire_blocking(&self, opts: AcquireOptions) -> Result<Lease<C>> {
        let inner = &self.inner;
        inner.check_open()?;
        let pending = match inner.find_idle() {
            Found::Ready(e) => return Ok(inner.lease(e, false)),
            Found::Check(held) => Some(held),
            Found::Empty => None,
        };
        inner.rt.block_on(inner.acquire_slow(pending, opts))?
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

    /// Runs every endpoint's health check now (see `health.interval`), whether due
    /// or not, and waits for them.
    pub async fn run_health_checks(&self) {
        let me = self.inner.clone();
        if let Ok(task) = self
            .inner
            .rt
            .spawn(async move { me.health_checks(true).await })
        {
            let mut task = AbortOnDrop(task);
            let _ = (&mut task.0).await;
        }
    }

    /// [`Pool::run_health_checks`] for threads that may block.
    pub fn run_health_checks_blocking(&self) -> Result<()> {
        self.inner.rt.block_on(self.inner.health_checks(true))
    }

    /// Opens connections until `min_idle` are idle (or `max_size` is reached) and
    /// returns how many it opened. The first failed connect is returned as the error.
    pub async fn warm(&self) -> Result<usize> {
        let inner = &self.inner;
        inner.check_open()?;
        let me = inner.clone();
        let task = inner.rt.spawn(async move { me.warm().await })?;
        let mut task = AbortOnDrop(task);
        match (&mut task.0).await {
            Ok(r) => r,
            Err(_) => Err(Error::unavailable("the manager is closed")),
        }
    }

    /// [`Pool::warm`] for threads that may block.
    pub fn warm_blocking(&self) -> Result<usize> {
        let inner = &self.inner;
        inner.check_open()?;
        inner.rt.block_on(inner.warm())?
    }

    /// Runs one pass of the background upkeep now: closes idle connections past
    /// `idle_timeout` (keeping `min_idle`) or past their lifetime, probes idle ones
    /// past `validate_after`, and starts connects up to `min_idle`. The pool runs it on
    /// its own; tests that move an injected clock call it to see the effect at once.
    pub async fn run_upkeep(&self) {
        let me = self.inner.clone();
        if let Ok(task) = self.inner.rt.spawn(async move { me.upkeep().await }) {
            let mut task = AbortOnDrop(task);
            let _ = (&mut task.0).await;
        }
    }

    /// [`Pool::run_upkeep`] for threads that may block.
    pub fn run_upkeep_blocking(&self) -> Result<()> {
        self.inner.rt.block_on(self.inner.upkeep())
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
        self.inner.closed.load(Ordering::Acquire)
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
        while let Some(e) = self.idle.pop() {
            self.connector.close(e.conn);
            self.counters.closed(CloseReason::Closed);
        }
    }
}

/// Polls `fut` with the manager's runtime entered, so its timers and I/O find their
/// drivers even when the caller's executor is another runtime or none.
struct InRuntime<'a, F> {
    handle: &'a tokio::runtime::Handle,
    fut: std::pin::Pin<&'a mut F>,
}

impl<F: std::future::Future> std::future::Future for InRuntime<'_, F> {
    type Output = F::Output;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let _entered = self.handle.enter();
        self.fut.as_mut().poll(cx)
    }
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Removes a waiter from the queue when its wait ends, however it ends.
struct WaiterGuard<'a, C: Connector> {
    pool: &'a PoolInner<C>,
    key: WaiterKey,
}

impl<C: Connector> Drop for WaiterGuard<'_, C> {
    fn drop(&mut self) {
        let mut w = self.pool.lock_waiters();
        if w.queue.remove(&self.key).is_some() {
            self.pool.num_waiters.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Owns a connection while it is probed; closes it if the probe is abandoned.
struct Probing<C: Connector> {
    entry: Option<Entry<C::Conn>>,
    pool: Arc<PoolInner<C>>,
}

impl<C: Connector> Drop for Probing<C> {
    fn drop(&mut self) {
        if let Some(e) = self.entry.take() {
            Counters::inc(&self.pool.counters.probe_failed);
            self.pool.close_entry(e, CloseReason::Broken);
        }
    }
}

/// Owns one unit of `size` and one of `connecting` while a connect is in flight.
struct ConnectSlot<C: Connector> {
    pool: Option<Arc<PoolInner<C>>>,
}

impl<C: Connector> ConnectSlot<C> {
    /// The connect succeeded: the slot now belongs to the new connection.
    /// The connect succeeded: `entry` goes to the pool (a waiter, or the idle queue)
    /// before the connect stops counting as in flight, so that a connection is never
    /// in neither count (`warm` and the upkeep's min_idle fill would both open one
    /// more for it).
    fn deliver(mut self, entry: Entry<C::Conn>) {
        if let Some(pool) = self.pool.take() {
            pool.give_back(entry, false);
            pool.connecting.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl<C: Connector> Drop for ConnectSlot<C> {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            pool.connecting.fetch_sub(1, Ordering::SeqCst);
            pool.release_slot();
        }
    }
}

impl<C: Connector> PoolInner<C> {
    #[inline]
    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(Error::unavailable(format!(
                "pool \"{}\" is closed",
                self.name
            )));
        }
        self.rt.check_fork()
    }

    fn lock_waiters(&self) -> MutexGuard<'_, Waiters<C>> {
        // A panic while holding this lock cannot leave the queue inconsistent (every
        // update is a single map operation), so a poisoned lock is still usable.
        self.waiters.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The fast path: an idle connection, if any and if nobody is waiting.
    #[inline]
    fn find_idle(self: &Arc<Self>) -> Found<C> {
        if self.num_waiters.load(Ordering::Relaxed) != 0 {
            return Found::Empty;
        }
        self.pop_idle()
    }

    /// Pops idle connections until one may be handed out, closing the ones that are
    /// evicted, past their lifetime or broken.
    #[inline]
    fn pop_idle(self: &Arc<Self>) -> Found<C> {
        let Some(mut e) = self.idle.pop().or_else(|| self.pop_after_inspection()) else {
            return Found::Empty;
        };
        let now = self.clock.now();
        loop {
            let reason = if self.evicted(&e) {
                Some(CloseReason::Evicted)
            } else if e.expires.is_some_and(|x| now >= x) {
                Some(CloseReason::Lifetime)
            } else if !self.connector.is_alive(&mut e.conn) {
                Some(CloseReason::Broken)
            } else {
                None
            };
            match reason {
                None if self.has_check
                    && now.saturating_duration_since(e.proven) >= self.settings.validate_after =>
                {
                    e.leased_at = now;
                    return Found::Check(self.hold(e));
                }
                None => {
                    e.leased_at = now;
                    return Found::Ready(e);
                }
                Some(r) => self.close_entry(e, r),
            }
            match self.idle.pop() {
                Some(next) => e = next,
                None => return Found::Empty,
            }
        }
    }

    /// The queue was empty: if the upkeep holds idle connections for a look (a few
    /// hundred nanoseconds each), wait for it (bounded) instead of reporting none.
    /// First a short spin; then, since the upkeep's thread may have been preempted
    /// mid-look on a busy machine (for a whole time slice), yield the CPU to it, for
    /// at most `INSPECTION_WAIT`.
    #[cold]
    fn pop_after_inspection(&self) -> Option<Entry<C::Conn>> {
        const INSPECTION_WAIT: Duration = Duration::from_millis(20);
        let mut deadline: Option<Instant> = None;
        for i in 0..1_000_000u32 {
            if self.inspecting.load(Ordering::SeqCst) == 0 {
                return self.idle.pop();
            }
            if let Some(e) = self.idle.pop() {
                return Some(e);
            }
            if i < 2_000 {
                std::hint::spin_loop();
                continue;
            }
            let now = Instant::now();
            if *deadline.get_or_insert(now + INSPECTION_WAIT) <= now {
                break;
            }
            std::thread::yield_now();
        }
        self.idle.pop()
    }

    fn hold(self: &Arc<Self>, e: Entry<C::Conn>) -> Held<C> {
        Held {
            entry: Some(e),
            pool: self.clone(),
        }
    }

    /// Probes a held connection within `validation_timeout`; closes it (as broken) if it fails. If
    /// this future is dropped mid-probe, the guard closes the connection, whose byte
    /// stream is then in an unknown state, and frees its slot.
    async fn validate(self: &Arc<Self>, mut held: Held<C>) -> Option<Entry<C::Conn>> {
        let mut probing = Probing {
            entry: held.entry.take(),
            pool: self.clone(),
        };
        drop(held);
        let t = self.settings.validation_timeout;
        let ep = probing.entry.as_ref()?.ep as usize;
        let conn = &mut probing.entry.as_mut()?.conn;
        let started = Instant::now();
        let r = tokio::time::timeout(t, self.connector.check(conn)).await;
        let elapsed = started.elapsed();
        let why = match &r {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("probe failed: {}", e.message())),
            Err(_) => Some(format!(
                "probe had no answer within {} (pool.validation_timeout)",
                fmt_duration(t)
            )),
        };
        let mut e = probing.entry.take()?;
        if self
            .endpoints
            .record(ep, why.is_none(), elapsed, why.as_deref())
            .evict
        {
            self.sweep_evicted();
        }
        if why.is_none() && !self.evicted(&e) {
            e.proven = self.clock.now();
            Some(e)
        } else {
            Counters::inc(&self.counters.probe_failed);
            self.close_entry(e, CloseReason::Broken);
            None
        }
    }

    /// Records a lease for leak detection (only when it is on).
    #[inline]
    fn track(&self, e: &Entry<C::Conn>) {
        if let Some(t) = &self.leases {
            t.lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(e.id, (e.leased_at, false, e.ep));
        }
    }

    #[inline]
    fn untrack(&self, id: u64) {
        if let Some(t) = &self.leases {
            t.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        }
    }

    /// Emits a `leak_suspected` event for each lease held past the threshold (once).
    fn report_leaks(&self, now: Instant) {
        let (Some(t), Some(limit)) = (&self.leases, self.settings.leak_detection) else {
            return;
        };
        let found: Vec<(u64, Duration, u32)> = {
            let mut map = t.lock().unwrap_or_else(|p| p.into_inner());
            map.iter_mut()
                .filter_map(|(id, (since, reported, ep))| {
                    let age = now.saturating_duration_since(*since);
                    (!*reported && age >= limit).then(|| {
                        *reported = true;
                        (*id, age, *ep)
                    })
                })
                .collect()
        };
        for (id, age, ep) in found {
            self.events.emit(Event {
                pool: self.name.clone(),
                endpoint: Some(self.endpoints.slots[ep as usize].name.clone()),
                connection_id: Some(id),
                age: Some(age),
                ..Event::new(
                    EventKind::LeakSuspected,
                    format!(
                        "pool \"{}\": connection #{id} has been leased for {} (pool.leak_detection_threshold = {}); was it released?",
                        self.name,
                        fmt_duration(age),
                        fmt_duration(limit)
                    ),
                )
            });
        }
    }

    #[inline]
    fn lease(self: &Arc<Self>, entry: Entry<C::Conn>, waited: bool) -> Lease<C> {
        self.track(&entry);
        self.count_leased(&entry, true);
        Counters::inc(if waited {
            &self.counters.acquired_waited
        } else {
            &self.counters.acquired_direct
        });
        Lease {
            entry: Some(entry),
            pool: self.clone(),
        }
    }

    /// Everything after the fast path: probe what it found, then wait in line.
    async fn acquire_slow(
        self: &Arc<Self>,
        pending: Option<Held<C>>,
        opts: AcquireOptions,
    ) -> Result<Lease<C>> {
        let timeout = opts.timeout.unwrap_or(self.settings.acquire_timeout);
        let started = tokio::time::Instant::now();
        let deadline = started + timeout;
        if let Some(e) = pending {
            if let Some(e) = self.validate(e).await {
                return Ok(self.lease(e, false));
            }
        }
        let (max_attempts, max_elapsed) = self.retry;
        let retry_until = if max_elapsed.is_zero() {
            deadline
        } else {
            deadline.min(started + max_elapsed)
        };
        let mut attempt = 1;
        loop {
            let err = match self.wait(deadline, timeout, opts.priority).await {
                Ok(lease) => {
                    self.counters.wait.record(started.elapsed());
                    return Ok(lease);
                }
                Err(e) => e,
            };
            // Retry (retry.max_attempts) only what an endpoint coming back would fix.
            if err.code() != Code::Unavailable
                || attempt >= max_attempts
                || self.closed.load(Ordering::SeqCst)
            {
                return Err(err);
            }
            attempt += 1;
            // Sleep until an endpoint may take a connect again (a little jitter so
            // retriers don't arrive together), unless that is past our deadline.
            let now = self.clock.now();
            let delay = self
                .endpoints
                .next_ready()
                .map_or(Duration::from_millis(10), |t| {
                    t.saturating_duration_since(now)
                })
                .max(Duration::from_millis(1));
            let delay = delay + delay.mul_f64(0.1 * crate::random::unit());
            let wake = tokio::time::Instant::now() + delay;
            if wake > retry_until {
                return Err(err);
            }
            tokio::time::sleep_until(wake).await;
        }
    }

    /// The slow path: wait in line for a connection.
    async fn wait(
        self: &Arc<Self>,
        deadline: tokio::time::Instant,
        timeout: Duration,
        priority: i32,
    ) -> Result<Lease<C>> {
        loop {
            self.check_open()?;
            let (tx, rx) = oneshot::channel();
            let key = self.register(priority, tx)?;
            let guard = WaiterGuard { pool: self, key };
            // Registered first, then look again: a connection released between our
            // first look and the registration went to the idle queue (see give_back).
            match self.pop_idle() {
                Found::Ready(e) => {
                    drop(guard);
                    drop(rx); // returns anything granted to us meanwhile
                    return Ok(self.lease(e, true));
                }
                Found::Check(held) => {
                    drop(guard);
                    drop(rx);
                    // Bounded by validation_timeout; an abandoned probe closes it.
                    match tokio::time::timeout_at(deadline, self.validate(held)).await {
                        Ok(Some(e)) => return Ok(self.lease(e, true)),
                        Ok(None) => continue,
                        Err(_) => return Err(self.timed_out(timeout)),
                    }
                }
                Found::Empty => {}
            }
            // Beyond the connects in flight, a new one is needed: if no endpoint can
            // take it (breakers refusing, backing off), fail fast.
            // (A full pool waits for a release instead.)
            if self.num_waiters.load(Ordering::SeqCst) > self.connecting.load(Ordering::SeqCst)
                && self.size.load(Ordering::SeqCst) < self.hard_limit()
            {
                if let Some(no) = self.endpoints.unavailable() {
                    drop(guard);
                    drop(rx);
                    Counters::inc(&self.counters.rejected);
                    self.events.emit(Event {
                        pool: self.name.clone(),
                        ..Event::new(EventKind::Rejected, no.error.message().to_string())
                    });
                    return Err(no.error);
                }
            }
            self.ensure_connecting();
            let grant = tokio::time::timeout_at(deadline, rx).await;
            drop(guard);
            match grant {
                Ok(Ok(Grant::Conn(mut lease))) => {
                    let alive = lease
                        .entry
                        .as_mut()
                        .is_some_and(|e| self.connector.is_alive(&mut e.conn));
                    if alive {
                        Counters::inc(&self.counters.acquired_waited);
                        if let Some(e) = &lease.entry {
                            self.track(e);
                        }
                        return Ok(lease);
                    }
                    if let Some(e) = lease.entry.take() {
                        self.count_leased(&e, false);
                        self.close_entry(e, CloseReason::Broken);
                    }
                }
                Ok(Ok(Grant::Failed(e))) => return Err(e),
                Ok(Ok(Grant::Closed)) | Ok(Err(_)) => {
                    return Err(Error::unavailable(format!(
                        "pool \"{}\" is closed",
                        self.name
                    )));
                }
                Err(_) => return Err(self.timed_out(timeout)),
            }
        }
    }

    fn timed_out(&self, timeout: Duration) -> Error {
        Counters::inc(&self.counters.timed_out);
        let s = self.stats();
        Error::timeout(format!(
            "pool \"{}\": no connection within {} ({} of max_size {} open, {} leased, {} waiting)",
            self.name,
            fmt_duration(timeout),
            s.size,
            s.max_size,
            s.leased,
            s.waiting,
        ))
    }

    fn register(&self, priority: i32, tx: oneshot::Sender<Grant<C>>) -> Result<WaiterKey> {
        let mut w = self.lock_waiters();
        if w.queue.len() >= self.settings.max_waiters {
            drop(w);
            Counters::inc(&self.counters.rejected);
            let err = Error::new(
                Code::ResourceExhausted,
                format!(
                    "pool \"{}\": {} callers are already waiting (pool.max_waiters = {})",
                    self.name, self.settings.max_waiters, self.settings.max_waiters
                ),
            );
            self.events.emit(Event {
                pool: self.name.clone(),
                ..Event::new(EventKind::Rejected, err.message().to_string())
            });
            return Err(err);
        }
        w.seq += 1;
        let key = (Reverse(priority), w.seq);
        w.queue.insert(key, tx);
        self.num_waiters.fetch_add(1, Ordering::SeqCst);
        Ok(key)
    }

    fn pop_waiter(&self) -> Option<oneshot::Sender<Grant<C>>> {
        let mut w = self.lock_waiters();
        let (_, tx) = w.queue.pop_first()?;
        self.num_waiters.fetch_sub(1, Ordering::SeqCst);
        Some(tx)
    }

    /// Sends `grant` to the first waiter still waiting; gives it back if none is.
    fn grant_first(&self, mut grant: Grant<C>) -> Option<Grant<C>> {
        while let Some(tx) = self.pop_waiter() {
            match tx.send(grant) {
                Ok(()) => return None,
                Err(g) => grant = g,
            }
        }
        Some(grant)
    }

    /// Returns a connection: to the first waiter, else to the idle queue. `used`: it
    /// comes back from a lease (so it is recycled and counts as freshly proven).
    fn give_back(self: &Arc<Self>, mut entry: Entry<C::Conn>, used: bool) {
        let now = self.clock.now();
        if used {
            self.untrack(entry.id);
            self.count_leased(&entry, false);
            self.counters
                .lease
                .record(now.saturating_duration_since(entry.leased_at));
            if !self.connector.recycle(&mut entry.conn) {
                // It broke during the lease: a failed call for the endpoint's breaker.
                let why = "the connection broke during a lease";
                if self
                    .endpoints
                    .record(entry.ep as usize, false, Duration::ZERO, Some(why))
                    .evict
                {
                    self.sweep_evicted();
                }
                self.close_entry(entry, CloseReason::Broken);
                return;
            }
            entry.idle_since = now;
            entry.proven = now;
            if entry.expires.is_some_and(|x| now >= x) {
                self.close_entry(entry, CloseReason::Lifetime);
                return;
            }
        }
        loop {
            if self.closed.load(Ordering::Acquire) {
                self.close_entry(entry, CloseReason::Closed);
                return;
            }
            if self.evicted(&entry) {
                self.close_entry(entry, CloseReason::Evicted);
                return;
            }
            if self.num_waiters.load(Ordering::SeqCst) != 0 {
                entry.leased_at = now;
                // Counted as leased from here: a waiter that has gone away drops the
                // grant, and the Lease's drop gives it back (and un-counts it).
                self.count_leased(&entry, true);
                let lease = Lease {
                    entry: Some(entry),
                    pool: self.clone(),
                };
                match self.grant_first(Grant::Conn(lease)) {
                    None => return,
                    Some(Grant::Conn(mut lease)) => match lease.entry.take() {
                        Some(e) => {
                            self.count_leased(&e, false);
                            entry = e;
                        }
                        None => return,
                    },
                    Some(_) => return,
                }
            }
            // Nobody waits: connections beyond max_size (overflow, or a shrink) close.
            if self.size.load(Ordering::SeqCst) > self.max_size.load(Ordering::Relaxed) {
                self.close_entry(entry, CloseReason::Overflow);
                return;
            }
            self.idle.push(entry);
            fence(Ordering::SeqCst);
            if self.closed.load(Ordering::SeqCst) {
                self.drain_idle(CloseReason::Closed);
                return;
            }
            // A waiter may have registered after we looked and before it saw our push.
            if self.num_waiters.load(Ordering::SeqCst) == 0 {
                return;
            }
            match self.idle.pop() {
                Some(e) => entry = e,
                None => return,
            }
        }
    }

    /// Closes a connection and frees its slot.
    fn close_entry(self: &Arc<Self>, entry: Entry<C::Conn>, reason: CloseReason) {
        let (ep, id) = (entry.ep as usize, entry.id);
        self.connector.close(entry.conn);
        self.counters.closed(reason);
        let broken = reason == CloseReason::Broken;
        self.endpoints.closed_one(ep, broken);
        self.events.emit(Event {
            pool: self.name.clone(),
            endpoint: Some(self.endpoints.slots[ep].name.clone()),
            connection_id: Some(id),
            old_state: Some(ConnState::Connected.as_str()),
            new_state: Some(if broken {
                ConnState::Failed.as_str()
            } else {
                ConnState::Disconnected.as_str()
            }),
            ..Event::new(
                EventKind::ConnectionState,
                format!("connection #{id} closed: {}", reason.as_str()),
            )
        });
        self.release_slot();
    }

    /// Whether `e`'s endpoint has evicted it (evict_all, drain, breaker opened).
    #[inline]
    fn evicted(&self, e: &Entry<C::Conn>) -> bool {
        e.epoch
            != self.endpoints.slots[e.ep as usize]
                .epoch
                .load(Ordering::Relaxed)
    }

    /// Counts leases per endpoint, for the load-aware choice (several endpoints only).
    #[inline]
    fn count_leased(&self, e: &Entry<C::Conn>, out: bool) {
        if self.endpoints.multi {
            let l = &self.endpoints.slots[e.ep as usize].leased;
            if out {
                l.fetch_add(1, Ordering::Relaxed);
            } else {
                l.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Closes the idle connections that were evicted (their endpoint's epoch moved).
    fn sweep_evicted(self: &Arc<Self>) {
        let mut n = self.idle.len();
        while n > 0 {
            n -= 1;
            self.inspecting.fetch_add(1, Ordering::SeqCst);
            let Some(e) = self.idle.pop() else {
                self.inspecting.fetch_sub(1, Ordering::SeqCst);
                break;
            };
            if self.evicted(&e) {
                self.inspecting.fetch_sub(1, Ordering::SeqCst);
                self.close_entry(e, CloseReason::Evicted);
            } else {
                self.give_back(e, false);
                self.inspecting.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// Fails the waiters beyond the first `keep` with `err` (no endpoint can take a
    /// connect: fail fast; the first `keep` are served by connects in flight).
    fn fail_waiters(&self, err: &Error, keep: usize) {
        let waiters: Vec<_> = {
            let mut w = self.lock_waiters();
            let mut out = Vec::new();
            while w.queue.len() > keep {
                if let Some((_, tx)) = w.queue.pop_last() {
                    out.push(tx);
                }
            }
            self.num_waiters.fetch_sub(out.len(), Ordering::SeqCst);
            out
        };
        if !waiters.is_empty() {
            Counters::add(&self.counters.rejected, waiters.len() as u64);
            self.events.emit(Event {
                pool: self.name.clone(),
                ..Event::new(
                    EventKind::Rejected,
                    format!(
                        "{} waiting callers failed fast: {}",
                        waiters.len(),
                        err.message()
                    ),
                )
            });
        }
        for tx in waiters {
            let _ = tx.send(Grant::Failed(err.clone()));
        }
    }

    /// Frees one unit of `size`; if someone is waiting, a replacement connect starts.
    fn release_slot(self: &Arc<Self>) {
        self.size.fetch_sub(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if self.num_waiters.load(Ordering::SeqCst) != 0 {
            self.ensure_connecting();
        }
    }

    /// Reserves one unit of `size` within `limit`.
    fn try_reserve(&self, limit: usize) -> bool {
        self.size
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |s| {
                (s < limit).then_some(s + 1)
            })
            .is_ok()
    }

    fn hard_limit(&self) -> usize {
        self.max_size.load(Ordering::SeqCst) + self.settings.max_overflow
    }

    /// Reserves a connect slot (`connecting` and `size`) if `want(connecting)` allows.
    fn reserve_connect(self: &Arc<Self>, limit: usize) -> Option<ConnectSlot<C>> {
        loop {
            let connecting = self.connecting.load(Ordering::SeqCst);
            if connecting >= self.settings.max_connecting {
                return None;
            }
            if self
                .connecting
                .compare_exchange(
                    connecting,
                    connecting + 1,
                    Ordering::SeqCst,
                    Ordering::SeqCst,
                )
                .is_err()
            {
                continue;
            }
            if !self.try_reserve(limit) {
                self.connecting.fetch_sub(1, Ordering::SeqCst);
                return None;
            }
            return Some(ConnectSlot {
                pool: Some(self.clone()),
            });
        }
    }

    /// Starts connects while waiters outnumber connects in flight, within
    /// `max_connecting` and `max_size + max_overflow`.
    fn ensure_connecting(self: &Arc<Self>) {
        loop {
            if self.closed.load(Ordering::SeqCst) {
                return;
            }
            let waiting = self.num_waiters.load(Ordering::SeqCst);
            if waiting <= self.connecting.load(Ordering::SeqCst) {
                return;
            }
            let Some(slot) = self.reserve_connect(self.hard_limit()) else {
                return;
            };
            // If the runtime is gone the task is dropped unrun, and the slot with it.
            drop(self.rt.handle().spawn(connect_task(slot)));
        }
    }

    /// Starts connects (in the background) until idle + connecting reaches
    /// `min_idle`, within `max_size`.
    fn fill_min_idle(self: &Arc<Self>) {
        loop {
            if self.closed.load(Ordering::SeqCst) {
                return;
            }
            let want = self.min_idle.load(Ordering::SeqCst);
            let have = self.idle.len() + self.connecting.load(Ordering::SeqCst);
            if have >= want {
                return;
            }
            let Some(slot) = self.reserve_connect(self.max_size.load(Ordering::SeqCst)) else {
                return;
            };
            drop(self.rt.handle().spawn(connect_task(slot)));
        }
    }

    async fn warm(self: &Arc<Self>) -> Result<usize> {
        let mut opened = 0;
        loop {
            self.check_open()?;
            let want = self.min_idle.load(Ordering::SeqCst);
            let idle = self.idle.len();
            if idle >= want {
                return Ok(opened);
            }
            if idle + self.connecting.load(Ordering::SeqCst) >= want {
                // Connects in flight (the upkeep's, or others') will make up the rest.
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            }
            let Some(slot) = self.reserve_connect(self.max_size.load(Ordering::SeqCst)) else {
                // At max_size, or others are connecting: done once they finish.
                if self.connecting.load(Ordering::SeqCst) == 0 {
                    return Ok(opened);
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
                continue;
            };
            match self.connect(&[]).await {
                Ok(entry) => {
                    slot.deliver(entry);
                    opened += 1;
                }
                Err(ConnectError::NoEndpoint(no)) => {
                    drop(slot);
                    return Err(no.error);
                }
                Err(ConnectError::Failed(_, e)) => {
                    drop(slot);
                    return Err(e);
                }
            }
        }
    }

    /// Chooses an endpoint (skipping `exclude`), opens one connection to it and
    /// records the result in the endpoint's breaker, backoff and health.
    async fn connect(
        self: &Arc<Self>,
        exclude: &[usize],
    ) -> std::result::Result<Entry<C::Conn>, ConnectError> {
        let choice = self
            .endpoints
            .choose(exclude)
            .map_err(ConnectError::NoEndpoint)?;
        let mut guard = ChoiceGuard {
            pool: self,
            choice: Some(choice),
        };
        let Some(choice) = guard.choice.as_ref() else {
            return Err(ConnectError::NoEndpoint(NoEndpoint {
                error: Error::internal("connect lost its endpoint"),
                retry_at: None,
            }));
        };
        let i = choice.index;
        let _reconnect = if choice.reconnect {
            // Spread reconnects that start together (jitter on the first attempt),
            // then wait for a place under the process-wide cap (bounded).
            let b = self.backoff_initial;
            tokio::time::sleep(b.mul_f64(0.2 * crate::random::unit())).await;
            let deadline = tokio::time::Instant::now() + self.settings.connect_timeout;
            loop {
                if let Some(p) = ReconnectPermit::try_take() {
                    break Some(p);
                }
                if tokio::time::Instant::now() >= deadline {
                    break None;
                }
                let pause = 2.0 + 8.0 * crate::random::unit();
                tokio::time::sleep(Duration::from_micros((pause * 1000.0) as u64)).await;
            }
        } else {
            None
        };
        let timeout = self.settings.connect_timeout.min(choice.backoff_deadline);
        let endpoint = self.endpoints.slots[i].endpoint.clone();
        let started = Instant::now();
        let r = self.open(&endpoint, i, timeout).await;
        let elapsed = started.elapsed();
        let Some(choice) = guard.choice.take() else {
            return Err(ConnectError::Failed(
                i,
                Error::internal("connect lost its endpoint"),
            ));
        };
        let effect = self
            .endpoints
            .on_connect(&choice, r.as_ref().map(|_| ()), elapsed);
        match r {
            Ok(entry) => {
                self.events.emit(Event {
                    pool: self.name.clone(),
                    endpoint: Some(self.endpoints.slots[i].name.clone()),
                    connection_id: Some(entry.id),
                    old_state: Some(ConnState::Connecting.as_str()),
                    new_state: Some(ConnState::Connected.as_str()),
                    age: Some(elapsed),
                    ..Event::new(
                        EventKind::ConnectionState,
                        format!("connection #{} opened to {endpoint}", entry.id),
                    )
                });
                if effect.evict {
                    // A slow connect opened the breaker: this connection goes too.
                    self.sweep_evicted();
                }
                Ok(entry)
            }
            Err(e) => {
                Counters::inc(&self.counters.connect_failed);
                self.events.emit(Event {
                    pool: self.name.clone(),
                    endpoint: Some(self.endpoints.slots[i].name.clone()),
                    old_state: Some(ConnState::Connecting.as_str()),
                    new_state: Some(ConnState::Failed.as_str()),
                    age: Some(elapsed),
                    ..Event::new(EventKind::ConnectionState, e.message().to_string())
                });
                if effect.evict {
                    self.sweep_evicted();
                }
                Err(ConnectError::Failed(i, e))
            }
        }
    }

    /// Opens one connection to endpoint `i` within `timeout`.
    async fn open(
        &self,
        endpoint: &Endpoint,
        i: usize,
        timeout: Duration,
    ) -> Result<Entry<C::Conn>> {
        let conn = match tokio::time::timeout(timeout, self.connector.connect(endpoint)).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(Error::timeout(format!(
                    "connect to {endpoint}: no answer within {} (pool.connect_timeout)",
                    fmt_duration(timeout)
                )));
            }
        };
        Counters::inc(&self.counters.created);
        let now = self.clock.now();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let expires = self.settings.max_lifetime.map(|l| {
            // Up to 2.5% shorter, so connections opened together don't expire together.
            now + l.mul_f64(1.0 - 0.025 * crate::random::unit())
        });
        Ok(Entry {
            conn,
            id,
            expires,
            idle_since: now,
            proven: now,
            ep: i as u32,
            epoch: self.endpoints.slots[i].epoch.load(Ordering::SeqCst),
            leased_at: now,
        })
    }

    /// One health pass: for each endpoint due (or all, `force`), probe an idle
    /// connection of it, or, if it has none and has been failing, try to reconnect
    /// (auto-recovery, within its backoff and breaker).
    async fn health_checks(self: &Arc<Self>, force: bool) {
        if self.closed.load(Ordering::SeqCst) {
            return;
        }
        let due = self.endpoints.due_checks(force);
        if due.is_empty() {
            return;
        }
        let timeout = self.endpoints.health.timeout;
        let mut checked = vec![false; self.endpoints.slots.len()];
        // Idle connections of the due endpoints: probe one each.
        let mut n = self.idle.len();
        while n > 0 && due.iter().any(|i| !checked[*i]) {
            n -= 1;
            self.inspecting.fetch_add(1, Ordering::SeqCst);
            let Some(mut e) = self.idle.pop() else {
                self.inspecting.fetch_sub(1, Ordering::SeqCst);
                break;
            };
            let ep = e.ep as usize;
            if !due.contains(&ep) || checked[ep] || self.evicted(&e) {
                self.give_back(e, false);
                self.inspecting.fetch_sub(1, Ordering::SeqCst);
                continue;
            }
            checked[ep] = true;
            if !self.has_check {
                let ok = self.connector.is_alive(&mut e.conn);
                let why = if ok {
                    "idle connection alive"
                } else {
                    "idle connection closed by the peer"
                };
                self.endpoints.on_check(ep, None, ok, Duration::ZERO, why);
                if ok {
                    self.give_back(e, false);
                } else {
                    self.close_entry(e, CloseReason::Broken);
                }
                self.inspecting.fetch_sub(1, Ordering::SeqCst);
                continue;
            }
            self.inspecting.fetch_sub(1, Ordering::SeqCst);
            // If this pass is abandoned mid-probe, the guard closes the connection.
            let mut probing = Probing {
                entry: Some(e),
                pool: self.clone(),
            };
            let Some(conn) = probing.entry.as_mut().map(|e| &mut e.conn) else {
                continue;
            };
            let started = Instant::now();
            let r = tokio::time::timeout(timeout, self.connector.check(conn)).await;
            let elapsed = started.elapsed();
            let (ok, why) = match r {
                Ok(Ok(())) => (true, "probe answered".to_string()),
                Ok(Err(err)) => (false, format!("probe failed: {}", err.message())),
                Err(_) => (
                    false,
                    format!(
                        "probe had no answer within {} (health.timeout)",
                        fmt_duration(timeout)
                    ),
                ),
            };
            let effect = self.endpoints.on_check(ep, None, ok, elapsed, &why);
            if let Some(mut e) = probing.entry.take() {
                if ok {
                    e.proven = self.clock.now();
                    self.give_back(e, false);
                } else {
                    Counters::inc(&self.counters.probe_failed);
                    self.close_entry(e, CloseReason::Broken);
                }
            }
            if effect.evict {
                self.sweep_evicted();
            }
        }
        // Endpoints with nothing idle to probe: reconnect the failing ones.
        for i in due {
            if checked[i] {
                continue;
            }
            let st = self.endpoints.state(i);
            if !matches!(st, ConnState::Reconnecting | ConnState::Failed) {
                continue;
            }
            let Some(slot) = self.reserve_connect(self.max_size.load(Ordering::SeqCst)) else {
                continue;
            };
            let Some(choice) = self.endpoints.choose_one(i) else {
                continue; // backing off or breaker refusing: the next pass tries again
            };
            // Gives the permit back if this pass is abandoned mid-connect.
            let mut guard = ChoiceGuard {
                pool: self,
                choice: Some(choice),
            };
            let endpoint = self.endpoints.slots[i].endpoint.clone();
            let started = Instant::now();
            let t = timeout.min(self.settings.connect_timeout);
            let r = self.open(&endpoint, i, t).await;
            let elapsed = started.elapsed();
            let Some(choice) = guard.choice.take() else {
                continue;
            };
            let effect = self
                .endpoints
                .on_connect(&choice, r.as_ref().map(|_| ()), elapsed);
            let why = match &r {
                Ok(_) => "reconnected".to_string(),
                Err(e) => e.message().to_string(),
            };
            self.events.emit(Event {
                pool: self.name.clone(),
                endpoint: Some(self.endpoints.slots[i].name.clone()),
                new_state: Some(if r.is_ok() { "ok" } else { "failed" }),
                age: Some(elapsed),
                ..Event::new(EventKind::HealthCheck, why)
            });
            match r {
                Ok(entry) => slot.deliver(entry),
                Err(_) => {
                    Counters::inc(&self.counters.connect_failed);
                    drop(slot);
                }
            }
            if effect.evict {
                self.sweep_evicted();
            }
        }
        self.ensure_connecting();
    }

    fn health(&self) -> HealthReport {
        HealthReport::from_endpoints(self.name.clone(), self.endpoint_health())
    }

    /// Each endpoint's health; a pool of one endpoint takes its in-flight load from
    /// the pool's own count (the fast path keeps per-endpoint counts only for several).
    fn endpoint_health(&self) -> Vec<EndpointHealth> {
        let mut eps: Vec<EndpointHealth> = (0..self.endpoints.slots.len())
            .map(|i| self.endpoints.snapshot(i))
            .collect();
        if let [only] = eps.as_mut_slice() {
            let size = self.size.load(Ordering::SeqCst);
            let idle = self.idle.len();
            let connecting = self.connecting.load(Ordering::SeqCst);
            only.in_flight = size.saturating_sub(idle + connecting);
        }
        eps
    }

    fn drain_idle(self: &Arc<Self>, reason: CloseReason) {
        while let Some(e) = self.idle.pop() {
            self.close_entry(e, reason);
        }
    }

    /// One upkeep pass; see [`Pool::run_upkeep`].
    async fn upkeep(self: &Arc<Self>) {
        if self.closed.load(Ordering::SeqCst) {
            return;
        }
        let now = self.clock.now();
        let min_idle = self.min_idle.load(Ordering::SeqCst);
        // Each connection is out of the queue only while it is looked at (or probed),
        // so acquirers racing the upkeep still find the others.
        let mut n = self.idle.len();
        let mut idle_left = n;
        while n > 0 {
            n -= 1;
            self.inspecting.fetch_add(1, Ordering::SeqCst);
            let Some(mut e) = self.idle.pop() else {
                self.inspecting.fetch_sub(1, Ordering::SeqCst);
                break;
            };
            let idle_for = now.saturating_duration_since(e.idle_since);
            let reason = if self.evicted(&e) {
                Some(CloseReason::Evicted)
            } else if e.expires.is_some_and(|x| now >= x) {
                Some(CloseReason::Lifetime)
            } else if self
                .settings
                .idle_timeout
                .is_some_and(|t| idle_for >= t && idle_left > min_idle)
            {
                Some(CloseReason::Idle)
            } else if !self.connector.is_alive(&mut e.conn) {
                Some(CloseReason::Broken)
            } else {
                None
            };
            match reason {
                Some(r) => {
                    self.inspecting.fetch_sub(1, Ordering::SeqCst);
                    idle_left -= 1;
                    self.close_entry(e, r);
                }
                None if self.has_check
                    && now.saturating_duration_since(e.proven) >= self.settings.validate_after =>
                {
                    // A probe takes a while: the connection is busy, not hidden.
                    self.inspecting.fetch_sub(1, Ordering::SeqCst);
                    match self.validate(self.hold(e)).await {
                        Some(e) => self.give_back(e, false),
                        None => idle_left -= 1,
                    }
                }
                None => {
                    self.give_back(e, false);
                    self.inspecting.fetch_sub(1, Ordering::SeqCst);
                }
            }
        }
        self.report_leaks(now);
        self.health_checks(false).await;
        self.fill_min_idle();
    }

    fn close(self: &Arc<Self>) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        let waiters: Vec<_> = {
            let mut w = self.lock_waiters();
            let all = std::mem::take(&mut w.queue);
            self.num_waiters.store(0, Ordering::SeqCst);
            all.into_values().collect()
        };
        for tx in waiters {
            let _ = tx.send(Grant::Closed);
        }
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

    fn stats(&self) -> PoolStats {
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
            waiting: self.num_waiters.load(Ordering::SeqCst),
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

async fn upkeep_task<C: Connector>(pool: Weak<PoolInner<C>>, every: Duration) {
    // Warm up to min_idle at once, then keep up on a schedule with a little jitter.
    let mut first = true;
    loop {
        if !first {
            let jitter = every.mul_f64(0.1 * crate::random::unit());
            tokio::time::sleep(every + jitter).await;
        }
        first = false;
        let Some(p) = pool.upgrade() else { return };
        if p.closed.load(Ordering::SeqCst) {
            return;
        }
        p.upkeep().await;
    }
}

async fn connect_task<C: Connector>(slot: ConnectSlot<C>) {
    let Some(pool) = slot.pool.clone() else {
        return;
    };
    // Try each endpoint at most once: a failed one backs off and the next is chosen.
    let mut tried: Vec<usize> = Vec::new();
    let mut last: Option<Error> = None;
    loop {
        match pool.connect(&tried).await {
            Ok(entry) => {
                slot.deliver(entry);
                break;
            }
            Err(ConnectError::Failed(i, err)) => {
                tried.push(i);
                last = Some(err);
            }
            Err(ConnectError::NoEndpoint(no)) => {
                match last.take() {
                    // Fail the first waiter before freeing the slot, so the freed
                    // slot does not start another connect on its behalf.
                    Some(err) => {
                        pool.grant_first(Grant::Failed(err));
                    }
                    // Nothing could even be tried: everyone waiting fails fast.
                    None => {
                        let others = pool.connecting.load(Ordering::SeqCst).saturating_sub(1);
                        pool.fail_waiters(&no.error, others);
                    }
                }
                drop(slot);
                break;
            }
        }
    }
    pool.ensure_connecting();
}

/// A checked-out connection. Dereferences to the connection. Returned to the pool by
/// [`Lease::release`] or by drop; closed instead by [`Lease::discard`].
pub struct Lease<C: Connector> {
    entry: Option<Entry<C::Conn>>,
    pool: Arc<PoolInner<C>>,
}

impl<C: Connector> Lease<C> {
    /// The connection's id, unique within its pool and never reused.
    pub fn id(&self) -> u64 {
        self.entry.as_ref().map_or(0, |e| e.id)
    }

    /// The name of the pool it came from.
    pub fn pool_name(&self) -> &str {
        &self.pool.name
    }

    /// The manager's runtime, for bindings that run async I/O on the lease.
    pub fn runtime(&self) -> &Arc<RuntimeShared> {
        &self.pool.rt
    }

    /// The endpoint it is connected to, as written in the pool's target.
    pub fn endpoint(&self) -> &str {
        let ep = self.entry.as_ref().map_or(0, |e| e.ep as usize);
        &self.pool.endpoints.slots[ep].name
    }

    /// Reports the result of a call made on this connection, for the endpoint's
    /// breaker, success rate and latency EWMA (and so its quality score). A failure
    /// that opens the breaker evicts the endpoint's connections, this one included
    /// when it comes back.
    pub fn report(&self, success: bool, latency: Duration) {
        let ep = self.entry.as_ref().map_or(0, |e| e.ep as usize);
        let why = (!success).then_some("a call on the connection failed (reported)");
        if self.pool.endpoints.record(ep, success, latency, why).evict {
            self.pool.sweep_evicted();
        }
    }

    /// Returns the connection to the pool (same as dropping the lease).
    pub fn release(self) {
        drop(self);
    }

    /// Closes the connection instead of returning it, e.g. after an error on it.
    pub fn discard(mut self) {
        if let Some(e) = self.entry.take() {
            self.pool.untrack(e.id);
            self.pool.count_leased(&e, false);
            let held = self.pool.clock.now().saturating_duration_since(e.leased_at);
            self.pool.counters.lease.record(held);
            self.pool.close_entry(e, CloseReason::Discarded);
        }
    }
}

impl<C: Connector> Deref for Lease<C> {
    type Target = C::Conn;
    fn deref(&self) -> &C::Conn {
        match &self.entry {
            Some(e) => &e.conn,
            // The entry is only taken by release/discard, which consume the lease.
            None => unreachable!("lease used after release"),
        }
    }
}

impl<C: Connector> DerefMut for Lease<C> {
    fn deref_mut(&mut self) -> &mut C::Conn {
        match &mut self.entry {
            Some(e) => &mut e.conn,
            None => unreachable!("lease used after release"),
        }
    }
}

impl<C: Connector> Drop for Lease<C> {
    #[inline]
    fn drop(&mut self) {
        if let Some(e) = self.entry.take() {
            self.pool.give_back(e, true);
        }
    }
}

impl<C: Connector> std::fmt::Debug for Lease<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("pool", &self.pool.name)
            .field("id", &self.id())
            .finish()
    }
}

//! The connection pool.
//!
//! # How it works
//!
//! Idle connections sit in a lock-free queue. Acquiring an idle connection pops it,
//! runs the connector's cheap liveness check and returns a [`Lease`]; releasing pushes
//! it back. Neither touches a lock nor enters the runtime.
//!
//! When nothing is idle, the caller registers as a *waiter* (a priority-then-FIFO
//! queue behind a mutex that only the slow path takes) and waits for a [`Grant`].
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
//! `max_size`.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use tokio::sync::oneshot;

use crate::clock::SharedClock;
use crate::config::{Config, fmt_duration};
use crate::connector::Connector;
use crate::endpoint::Endpoint;
use crate::error::{Code, Error, Result};
use crate::runtime::RuntimeShared;

/// Settings of one pool, read from the `pool.*` keys.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// `pool.max_size`
    pub max_size: usize,
    /// `pool.acquire_timeout`
    pub acquire_timeout: Duration,
    /// `pool.connect_timeout`
    pub connect_timeout: Duration,
    /// `pool.max_waiters`
    pub max_waiters: usize,
    /// Connects in flight at once per pool.
    pub max_connecting: usize,
}

impl PoolSettings {
    /// Reads the `pool.*` keys of `cfg`.
    pub fn from_config(cfg: &Config) -> Self {
        PoolSettings {
            max_size: cfg.u64("pool.max_size") as usize,
            acquire_timeout: cfg.duration("pool.acquire_timeout"),
            connect_timeout: cfg.duration("pool.connect_timeout"),
            max_waiters: cfg.u64("pool.max_waiters") as usize,
            max_connecting: 2,
        }
    }
}

/// Options for one acquire.
#[derive(Debug, Clone, Copy, Default)]
pub struct AcquireOptions {
    /// Overrides `pool.acquire_timeout` for this call.
    pub timeout: Option<Duration>,
    /// Higher is served first; equal priorities are served in arrival order.
    pub priority: i32,
}

/// A point-in-time snapshot of a pool's state and counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// The pool's name.
    pub name: String,
    /// `pool.max_size`.
    pub max_size: usize,
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
    /// Connections closed, ever.
    pub closed_total: u64,
    /// Successful acquires.
    pub acquired_total: u64,
    /// Acquires that timed out.
    pub timed_out_total: u64,
    /// Acquires rejected because the wait queue was full.
    pub rejected_total: u64,
    /// Connect attempts that failed.
    pub connect_failed_total: u64,
}

#[derive(Debug, Default)]
struct Counters {
    created: AtomicU64,
    closed: AtomicU64,
    acquired: AtomicU64,
    timed_out: AtomicU64,
    rejected: AtomicU64,
    connect_failed: AtomicU64,
}

struct Entry<T> {
    conn: T,
    id: u64,
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

pub(crate) struct PoolInner<C: Connector> {
    name: String,
    endpoints: Vec<Endpoint>,
    next_endpoint: AtomicUsize,
    connector: C,
    settings: PoolSettings,
    rt: Arc<RuntimeShared>,
    #[allow(dead_code)]
    clock: SharedClock,
    idle: ArrayQueue<Entry<C::Conn>>,
    size: AtomicUsize,
    connecting: AtomicUsize,
    num_waiters: AtomicUsize,
    waiters: Mutex<Waiters<C>>,
    closed: AtomicBool,
    next_id: AtomicU64,
    counters: Counters,
}

/// A pool of connections made by a [`Connector`]. Cheap to clone; all clones share
/// the same pool. Created by [`crate::Manager::pool`].
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
        settings: PoolSettings,
        rt: Arc<RuntimeShared>,
        clock: SharedClock,
    ) -> Self {
        let inner = PoolInner {
            name,
            endpoints,
            next_endpoint: AtomicUsize::new(0),
            connector,
            idle: ArrayQueue::new(settings.max_size.max(1)),
            settings,
            rt,
            clock,
            size: AtomicUsize::new(0),
            connecting: AtomicUsize::new(0),
            num_waiters: AtomicUsize::new(0),
            waiters: Mutex::new(Waiters {
                queue: BTreeMap::new(),
                seq: 0,
            }),
            closed: AtomicBool::new(false),
            next_id: AtomicU64::new(1),
            counters: Counters::default(),
        };
        Pool {
            inner: Arc::new(inner),
        }
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The pool's endpoints.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.inner.endpoints
    }

    /// The pool's settings.
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

    /// Takes an idle connection if one is ready, without waiting, without opening one,
    /// and without entering the runtime. `Ok(None)` means none is idle (or others are
    /// already waiting, who go first).
    #[inline]
    pub fn try_acquire(&self) -> Result<Option<Lease<C>>> {
        self.inner.check_open()?;
        Ok(self.inner.try_idle())
    }

    /// Acquires a connection, waiting up to `pool.acquire_timeout`.
    ///
    /// Cancellation-safe: dropping the future returns anything it had obtained.
    pub async fn acquire(&self) -> Result<Lease<C>> {
        self.acquire_with(AcquireOptions::default()).await
    }

    /// Acquires a connection with per-call options.
    pub async fn acquire_with(&self, opts: AcquireOptions) -> Result<Lease<C>> {
        self.inner.check_open()?;
        if let Some(lease) = self.inner.try_idle() {
            return Ok(lease);
        }
        // The wait runs on the manager's runtime, whatever executor the caller uses;
        // the guard aborts it if the caller's future is dropped.
        let inner = self.inner.clone();
        let task = self.inner.rt.spawn(async move { inner.wait(opts).await })?;
        let mut task = AbortOnDrop(task);
        match (&mut task.0).await {
            Ok(r) => r,
            Err(e) if e.is_cancelled() => Err(Error::unavailable("the manager is closed")),
            Err(e) => Err(Error::internal(format!("acquire task failed: {e}"))),
        }
    }

    /// Acquires a connection from a task that already runs on the manager's runtime
    /// (see [`crate::runtime::RuntimeShared::spawn`]), without spawning a task of its own.
    /// Bindings use it to report a result through their own callback. Cancellation-safe.
    pub async fn acquire_on_runtime(&self, opts: AcquireOptions) -> Result<Lease<C>> {
        self.inner.check_open()?;
        if let Some(lease) = self.inner.try_idle() {
            return Ok(lease);
        }
        if !self.inner.rt.on_own_thread() {
            return Err(Error::failed_precondition(
                "acquire_on_runtime must run on the manager's runtime; use acquire() elsewhere",
            ));
        }
        self.inner.wait(opts).await
    }

    /// Acquires a connection, blocking the calling thread (which must not be an async
    /// runtime thread) up to the timeout. The wait happens on the calling thread.
    pub fn acquire_blocking(&self, opts: AcquireOptions) -> Result<Lease<C>> {
        self.inner.check_open()?;
        if let Some(lease) = self.inner.try_idle() {
            return Ok(lease);
        }
        let inner = &self.inner;
        inner.rt.block_on(inner.wait(opts))?
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

/// Owns one unit of `size` and one of `connecting` while a connect is in flight.
struct ConnectSlot<C: Connector> {
    pool: Option<Arc<PoolInner<C>>>,
}

impl<C: Connector> ConnectSlot<C> {
    /// The connect succeeded: the slot now belongs to the new connection.
    fn into_connection(mut self) -> Arc<PoolInner<C>> {
        let pool = self.pool.take().expect("slot used once");
        pool.connecting.fetch_sub(1, Ordering::SeqCst);
        pool
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
    fn try_idle(self: &Arc<Self>) -> Option<Lease<C>> {
        if self.num_waiters.load(Ordering::Relaxed) != 0 {
            return None;
        }
        self.pop_alive().map(|e| self.lease(e))
    }

    #[inline]
    fn pop_alive(self: &Arc<Self>) -> Option<Entry<C::Conn>> {
        while let Some(mut e) = self.idle.pop() {
            if self.connector.is_alive(&mut e.conn) {
                return Some(e);
            }
            self.close_entry(e);
        }
        None
    }

    #[inline]
    fn lease(self: &Arc<Self>, entry: Entry<C::Conn>) -> Lease<C> {
        self.counters.acquired.fetch_add(1, Ordering::Relaxed);
        Lease {
            entry: Some(entry),
            pool: self.clone(),
        }
    }

    /// The slow path: wait in line for a connection.
    async fn wait(self: &Arc<Self>, opts: AcquireOptions) -> Result<Lease<C>> {
        let timeout = opts.timeout.unwrap_or(self.settings.acquire_timeout);
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            self.check_open()?;
            let (tx, rx) = oneshot::channel();
            let key = self.register(opts.priority, tx)?;
            let guard = WaiterGuard { pool: self, key };
            // Registered first, then look again: a connection released between our
            // first look and the registration went to the idle queue (see give_back).
            if let Some(e) = self.pop_alive() {
                drop(guard);
                drop(rx); // returns anything granted to us meanwhile
                return Ok(self.lease(e));
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
                        self.counters.acquired.fetch_add(1, Ordering::Relaxed);
                        return Ok(lease);
                    }
                    lease.discard();
                }
                Ok(Ok(Grant::Failed(e))) => return Err(e),
                Ok(Ok(Grant::Closed)) | Ok(Err(_)) => {
                    return Err(Error::unavailable(format!(
                        "pool \"{}\" is closed",
                        self.name
                    )));
                }
                Err(_) => {
                    self.counters.timed_out.fetch_add(1, Ordering::Relaxed);
                    let s = self.stats();
                    return Err(Error::timeout(format!(
                        "pool \"{}\": no connection within {} ({} of max_size {} open, {} leased, {} waiting)",
                        self.name,
                        fmt_duration(timeout),
                        s.size,
                        s.max_size,
                        s.leased,
                        s.waiting,
                    )));
                }
            }
        }
    }

    fn register(&self, priority: i32, tx: oneshot::Sender<Grant<C>>) -> Result<WaiterKey> {
        let mut w = self.lock_waiters();
        if w.queue.len() >= self.settings.max_waiters {
            drop(w);
            self.counters.rejected.fetch_add(1, Ordering::Relaxed);
            return Err(Error::new(
                Code::ResourceExhausted,
                format!(
                    "pool \"{}\": {} callers are already waiting (pool.max_waiters = {})",
                    self.name, self.settings.max_waiters, self.settings.max_waiters
                ),
            ));
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

    /// Returns a connection: to the first waiter, else to the idle queue.
    fn give_back(self: &Arc<Self>, mut entry: Entry<C::Conn>) {
        if !self.connector.recycle(&mut entry.conn) {
            self.close_entry(entry);
            return;
        }
        loop {
            if self.closed.load(Ordering::Acquire) {
                self.close_entry(entry);
                return;
            }
            if self.num_waiters.load(Ordering::SeqCst) != 0 {
                let lease = Lease {
                    entry: Some(entry),
                    pool: self.clone(),
                };
                match self.grant_first(Grant::Conn(lease)) {
                    None => return,
                    Some(Grant::Conn(mut lease)) => match lease.entry.take() {
                        Some(e) => entry = e,
                        None => return,
                    },
                    Some(_) => return,
                }
            }
            if let Err(e) = self.idle.push(entry) {
                // Cannot happen (capacity is max_size), but never lose a slot.
                self.close_entry(e);
                return;
            }
            fence(Ordering::SeqCst);
            if self.closed.load(Ordering::SeqCst) {
                self.drain_idle();
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
    fn close_entry(self: &Arc<Self>, entry: Entry<C::Conn>) {
        self.connector.close(entry.conn);
        self.counters.closed.fetch_add(1, Ordering::Relaxed);
        self.release_slot();
    }

    /// Frees one unit of `size`; if someone is waiting, a replacement connect starts.
    fn release_slot(self: &Arc<Self>) {
        self.size.fetch_sub(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if self.num_waiters.load(Ordering::SeqCst) != 0 {
            self.ensure_connecting();
        }
    }

    fn try_reserve(&self) -> bool {
        let max = self.settings.max_size;
        self.size
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |s| {
                (s < max).then_some(s + 1)
            })
            .is_ok()
    }

    /// Starts connects while waiters outnumber connects in flight, within
    /// `max_connecting` and `max_size`.
    fn ensure_connecting(self: &Arc<Self>) {
        loop {
            if self.closed.load(Ordering::SeqCst) {
                return;
            }
            let waiting = self.num_waiters.load(Ordering::SeqCst);
            let connecting = self.connecting.load(Ordering::SeqCst);
            if waiting <= connecting || connecting >= self.settings.max_connecting {
                return;
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
            if !self.try_reserve() {
                self.connecting.fetch_sub(1, Ordering::SeqCst);
                return;
            }
            let slot = ConnectSlot {
                pool: Some(self.clone()),
            };
            // If the runtime is gone the task is dropped unrun, and the slot with it.
            drop(self.rt.handle().spawn(connect_task(slot)));
        }
    }

    fn pick_endpoint(&self) -> &Endpoint {
        let i = self.next_endpoint.fetch_add(1, Ordering::Relaxed);
        &self.endpoints[i % self.endpoints.len()]
    }

    fn drain_idle(self: &Arc<Self>) {
        while let Some(e) = self.idle.pop() {
            self.close_entry(e);
        }
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
        self.drain_idle();
    }

    fn stats(&self) -> PoolStats {
        let size = self.size.load(Ordering::SeqCst);
        let idle = self.idle.len();
        let connecting = self.connecting.load(Ordering::SeqCst);
        let c = &self.counters;
        PoolStats {
            name: self.name.clone(),
            max_size: self.settings.max_size,
            size,
            idle,
            leased: size.saturating_sub(idle + connecting),
            waiting: self.num_waiters.load(Ordering::SeqCst),
            connecting,
            created_total: c.created.load(Ordering::Relaxed),
            closed_total: c.closed.load(Ordering::Relaxed),
            acquired_total: c.acquired.load(Ordering::Relaxed),
            timed_out_total: c.timed_out.load(Ordering::Relaxed),
            rejected_total: c.rejected.load(Ordering::Relaxed),
            connect_failed_total: c.connect_failed.load(Ordering::Relaxed),
        }
    }
}

async fn connect_task<C: Connector>(slot: ConnectSlot<C>) {
    let Some(pool) = slot.pool.clone() else {
        return;
    };
    let endpoint = pool.pick_endpoint().clone();
    let timeout = pool.settings.connect_timeout;
    let result = match tokio::time::timeout(timeout, pool.connector.connect(&endpoint)).await {
        Ok(r) => r,
        Err(_) => Err(Error::timeout(format!(
            "connect to {endpoint}: no answer within {} (pool.connect_timeout)",
            fmt_duration(timeout)
        ))),
    };
    match result {
        Ok(conn) => {
            let pool = slot.into_connection();
            pool.counters.created.fetch_add(1, Ordering::Relaxed);
            let id = pool.next_id.fetch_add(1, Ordering::Relaxed);
            pool.give_back(Entry { conn, id });
        }
        Err(err) => {
            pool.counters.connect_failed.fetch_add(1, Ordering::Relaxed);
            // Fail the first waiter before freeing the slot, so the freed slot does not
            // start another connect on its behalf.
            pool.grant_first(Grant::Failed(err));
            drop(slot);
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

    /// Returns the connection to the pool (same as dropping the lease).
    pub fn release(self) {
        drop(self);
    }

    /// Closes the connection instead of returning it, e.g. after an error on it.
    pub fn discard(mut self) {
        if let Some(e) = self.entry.take() {
            self.pool.close_entry(e);
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
            self.pool.give_back(e);
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

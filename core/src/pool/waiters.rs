//! The waiters: callers that found nothing idle wait in a priority-then-FIFO queue
//! (behind a mutex only the slow path takes) for a grant: a connection handed over by
//! a release or a new connect, a connect failure, or the pool closing.

use std::sync::atomic::Ordering;
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use tokio::sync::oneshot;

use super::checkout::Found;
use super::deadlines::{Armed, Waiter};
use super::dropguard::{Held, WaiterGuard};
use super::stats::{CloseReason, Counters};
use super::waitqueue::WaitQueue;
use super::{AcquireOptions, Lease, Pool, PoolInner, WAITER};
use crate::config::fmt_duration;
use crate::connector::Connector;
use crate::error::{Code, Error, Result};
use crate::events::{Event, EventKind};

/// What a waiter is woken with.
pub(super) enum Grant<C: Connector> {
    Conn(Lease<C>),
    Failed(Error),
    /// The deadline passed (sent by the deadline task).
    TimedOut,
    Closed,
}

pub(super) use super::waitqueue::WaiterKey;

pub(super) struct Waiters<C: Connector> {
    pub(super) queue: WaitQueue<Waiter<C>>,
    pub(super) armed: Armed,
}

impl<C: Connector> Pool<C> {
    /// Acquires a connection, waiting up to `pool.acquire_timeout`.
    ///
    /// Cancellation-safe: dropping the future returns anything it had obtained.
    pub async fn acquire(&self) -> Result<Lease<C>> {
        self.acquire_with(AcquireOptions::default()).await
    }

    /// Acquires a connection with per-call options.
    pub async fn acquire_with(&self, opts: AcquireOptions) -> Result<Lease<C>> {
        let inner = &self.inner;
        let pending = match inner.find_idle()? {
            Found::Ready(e) => return Ok(inner.lease(e, false)),
            Found::Check(held) => Some(held),
            Found::Empty => None,
        };
        let _active = inner.rt.enter_active()?;
        // Polled right here in the caller's task (no hand-off to a worker and back),
        // whatever executor the caller uses: the wait itself needs no runtime (the
        // deadline task times it out), and the steps that use timers or sockets (a
        // probe, a retry's pause) run inside the manager's runtime context. Dropping
        // this future is safe: the waiter guard and the probe guard give everything
        // back.
        OutOfLine(std::pin::pin!(inner.acquire_slow(pending, opts))).await
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
        let pending = match inner.find_idle()? {
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
        let pending = match inner.find_idle()? {
            Found::Ready(e) => return Ok(inner.lease(e, false)),
            Found::Check(held) => Some(held),
            Found::Empty => None,
        };
        inner.rt.block_on(inner.acquire_slow(pending, opts))?
    }
}

impl<C: Connector> PoolInner<C> {
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
            if let Some(e) = self.in_runtime(std::pin::pin!(self.validate(e))).await {
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
            if err.code() != Code::Unavailable || attempt >= max_attempts || self.is_shut() {
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
            let pause = {
                let _rt = self.rt.handle().enter(); // the timer is the manager's
                tokio::time::sleep_until(wake)
            };
            pause.await;
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
            let key = self.register(priority, tx, deadline)?;
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
                    let probe = {
                        let _rt = self.rt.handle().enter(); // the timer is the manager's
                        tokio::time::timeout_at(deadline, self.validate(held))
                    };
                    match self.in_runtime(std::pin::pin!(probe)).await {
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
            if self.waiting() > self.connecting.load(Ordering::SeqCst)
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
            // No timer of our own: the deadline task sends TimedOut at the deadline.
            let grant = rx.await;
            if grant.is_ok() {
                // A grant is only sent to a waiter taken out of the queue (and counted
                // out) by the sender: there is nothing for the guard to remove.
                guard.served();
            } else {
                drop(guard);
            }
            match grant {
                Ok(Grant::Conn(mut lease)) => {
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
                Ok(Grant::Failed(e)) => return Err(e),
                Ok(Grant::TimedOut) => return Err(self.timed_out(timeout)),
                Ok(Grant::Closed) | Err(_) => {
                    return Err(Error::unavailable(format!(
                        "pool \"{}\" is closed",
                        self.name
                    )));
                }
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

    pub(super) fn lock_waiters(&self) -> MutexGuard<'_, Waiters<C>> {
        // A panic while holding this lock cannot leave the queue inconsistent (every
        // update is a single map operation), so a poisoned lock is still usable.
        self.waiters.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn register(
        &self,
        priority: i32,
        tx: oneshot::Sender<Grant<C>>,
        deadline: tokio::time::Instant,
    ) -> Result<WaiterKey> {
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
        let key = w.queue.push(priority, Waiter { tx, deadline });
        self.deadlines.added(&mut w.armed, deadline);
        self.state.fetch_add(WAITER, Ordering::SeqCst);
        Ok(key)
    }

    fn pop_waiter(&self) -> Option<oneshot::Sender<Grant<C>>> {
        let mut w = self.lock_waiters();
        let tx = w.queue.pop_first()?.tx;
        self.state.fetch_sub(WAITER, Ordering::SeqCst);
        Some(tx)
    }

    /// Sends `grant` to the first waiter still waiting; gives it back if none is.
    pub(super) fn grant_first(&self, mut grant: Grant<C>) -> Option<Grant<C>> {
        while let Some(tx) = self.pop_waiter() {
            match tx.send(grant) {
                Ok(()) => return None,
                Err(g) => grant = g,
            }
        }
        Some(grant)
    }

    /// Fails the waiters beyond the first `keep` with `err` (no endpoint can take a
    /// connect: fail fast; the first `keep` are served by connects in flight).
    pub(super) fn fail_waiters(&self, err: &Error, keep: usize) {
        let waiters: Vec<_> = {
            let mut w = self.lock_waiters();
            let mut out = Vec::new();
            while w.queue.len() > keep {
                if let Some(x) = w.queue.pop_last() {
                    out.push(x.tx);
                }
            }
            self.state.fetch_sub(out.len() * WAITER, Ordering::SeqCst);
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
}

impl<C: Connector> PoolInner<C> {
    /// `fut`, polled with the manager's runtime entered.
    fn in_runtime<'a, F: std::future::Future>(
        &'a self,
        fut: std::pin::Pin<&'a mut F>,
    ) -> InRuntime<'a, F> {
        InRuntime {
            handle: self.rt.handle(),
            fut,
        }
    }
}

/// Polls the slow path in a function of its own, so that the fast path's caller does
/// not carry its frame.
struct OutOfLine<'a, F>(std::pin::Pin<&'a mut F>);

impl<F: std::future::Future> std::future::Future for OutOfLine<'_, F> {
    type Output = F::Output;
    #[inline(never)]
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        self.0.as_mut().poll(cx)
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

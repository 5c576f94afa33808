//! Checkout and return, the fast path: taking an idle connection (closing the
//! evicted, expired and broken ones it meets, probing one idle past
//! `validate_after`) and giving one back, to the first waiter or the idle queue.

use std::sync::Arc;
use std::sync::atomic::{Ordering, fence};
use std::time::{Duration, Instant};

use super::dropguard::{Held, Probing};
use super::stats::{CloseReason, Counters};
use super::waiters::Grant;
use super::{CLOSED, Entry, Lease, Pool, PoolInner, WAITER};
use crate::config::fmt_duration;
use crate::connector::Connector;
use crate::error::{Error, Result};

/// What the fast path found.
pub(super) enum Found<C: Connector> {
    Ready(Box<Entry<C::Conn>>),
    /// Idle past `validate_after`: probe before handing it out. Held by a guard that
    /// returns it to the pool if the call ends before the probe starts.
    Check(Held<C>),
    Empty,
}

impl<C: Connector> Pool<C> {
    /// Takes an idle connection if one is ready, without waiting and without opening
    /// one. `Ok(None)` means none is idle (or others are already waiting, who go
    /// first). Enters the runtime only to probe a connection idle past
    /// `pool.validate_after` (when the connector has a probe); on an async runtime
    /// thread, where it cannot block, such a connection is left for `acquire`.
    #[inline]
    pub fn try_acquire(&self) -> Result<Option<Lease<C>>> {
        let inner = &self.inner;
        loop {
            match inner.find_idle()? {
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
        match inner.find_idle()? {
            Found::Ready(e) => Ok(Some(inner.lease(e, false))),
            Found::Empty => Ok(None),
            Found::Check(_held) => Ok(None), // dropping it puts it back
        }
    }
}

impl<C: Connector> PoolInner<C> {
    #[inline]
    pub(super) fn check_open(&self) -> Result<()> {
        if self.state.load(Ordering::Relaxed) & CLOSED != 0 {
            return Err(self.closed_error());
        }
        self.rt.check_fork()
    }

    #[cold]
    fn closed_error(&self) -> Error {
        Error::unavailable(format!("pool \"{}\" is closed", self.name))
    }

    /// The fast path: an idle connection, if any and if nobody is waiting; an error if
    /// the pool is closed. Reads the state word once for both.
    #[inline]
    pub(super) fn find_idle(self: &Arc<Self>) -> Result<Found<C>> {
        let state = self.state.load(Ordering::Relaxed);
        if state & CLOSED != 0 {
            return Err(self.closed_error());
        }
        self.rt.check_fork()?;
        if state >= WAITER {
            return Ok(Found::Empty);
        }
        Ok(self.pop_idle())
    }

    /// Pops idle connections until one may be handed out, closing the ones that are
    /// evicted, past their lifetime or broken.
    #[inline]
    pub(super) fn pop_idle(self: &Arc<Self>) -> Found<C> {
        let popped = match self.idle.pop() {
            Some(e) => Some(e),
            None if self.inspecting.load(Ordering::SeqCst) != 0 => self.pop_after_inspection(),
            None => None,
        };
        let Some(mut e) = popped else {
            return Found::Empty;
        };
        let now = self.coarse_now();
        loop {
            let reason = if self.evicted(&e) {
                Some(CloseReason::Evicted)
            } else if e.expires <= now {
                Some(CloseReason::Lifetime)
            } else if now.nanos_since(e.proven) >= self.liveness_bypass_ns
                && !self.connector.is_alive(&mut e.conn)
            {
                // (Within pool.liveness_bypass of its return, it is taken as alive.)
                Some(CloseReason::Broken)
            } else {
                None
            };
            match reason {
                None if self.has_check && now.nanos_since(e.proven) >= self.validate_after_ns => {
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
    fn pop_after_inspection(&self) -> Option<Box<Entry<C::Conn>>> {
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

    pub(super) fn hold(self: &Arc<Self>, e: Box<Entry<C::Conn>>) -> Held<C> {
        Held {
            entry: Some(e),
            pool: self.clone(),
        }
    }

    /// Probes a held connection within `validation_timeout`; closes it (as broken) if it fails. If
    /// this future is dropped mid-probe, the guard closes the connection, whose byte
    /// stream is then in an unknown state, and frees its slot.
    pub(super) async fn validate(
        self: &Arc<Self>,
        mut held: Held<C>,
    ) -> Option<Box<Entry<C::Conn>>> {
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
            e.proven = self.coarse_now();
            Some(e)
        } else {
            Counters::inc(&self.counters.probe_failed);
            self.close_entry(e, CloseReason::Broken);
            None
        }
    }

    #[inline(always)]
    pub(super) fn lease(self: &Arc<Self>, entry: Box<Entry<C::Conn>>, waited: bool) -> Lease<C> {
        if self.scale_ahead_on {
            self.scale_ahead();
        }
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

    /// Returns a connection: to the first waiter, else to the idle queue. `used`: it
    /// comes back from a lease (so it is recycled and counts as freshly proven).
    pub(super) fn give_back(self: &Arc<Self>, mut entry: Box<Entry<C::Conn>>, used: bool) {
        let now = self.coarse_now();
        if used {
            self.untrack(entry.id);
            self.count_leased(&entry, false);
            self.counters.lease.record(now.since(entry.leased_at));
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
            if entry.expires <= now {
                self.close_entry(entry, CloseReason::Lifetime);
                return;
            }
        }
        loop {
            let state = self.state.load(Ordering::SeqCst);
            if state & CLOSED != 0 {
                self.close_entry(entry, CloseReason::Closed);
                return;
            }
            if self.evicted(&entry) {
                self.close_entry(entry, CloseReason::Evicted);
                return;
            }
            if state >= WAITER {
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
            let state = self.state.load(Ordering::SeqCst);
            if state & CLOSED != 0 {
                self.drain_idle(CloseReason::Closed);
                return;
            }
            // A waiter may have registered after we looked and before it saw our push.
            if state < WAITER {
                return;
            }
            match self.idle.pop() {
                Some(e) => entry = e,
                None => return,
            }
        }
    }

    /// Whether `e`'s endpoint has evicted it (evict_all, drain, breaker opened).
    #[inline]
    pub(super) fn evicted(&self, e: &Entry<C::Conn>) -> bool {
        e.epoch
            != self.endpoints.slots[e.ep as usize]
                .epoch
                .load(Ordering::Relaxed)
    }

    /// Counts leases per endpoint, for the load-aware choice (several endpoints only).
    #[inline]
    pub(super) fn count_leased(&self, e: &Entry<C::Conn>, out: bool) {
        if self.endpoints.multi {
            let l = &self.endpoints.slots[e.ep as usize].leased;
            if out {
                l.fetch_add(1, Ordering::Relaxed);
            } else {
                l.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

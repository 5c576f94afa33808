//! Opening connections: connect slots within `max_connecting` and
//! `max_size + max_overflow`, the background connects that serve waiters, the choice
//! of endpoint and its bookkeeping, and closing a connection (which frees its slot).

use std::sync::Arc;
use std::sync::atomic::{Ordering, fence};
use std::time::{Duration, Instant};

use super::dropguard::{ChoiceGuard, ConnectSlot};
use super::endpoints::NoEndpoint;
use super::stats::{CloseReason, Counters};
use super::waiters::Grant;
use super::{Entry, PoolInner};
use crate::backoff::ReconnectPermit;
use crate::clock::Stamp;
use crate::config::fmt_duration;
use crate::connector::Connector;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::events::{Event, EventKind};
use crate::health::ConnState;

/// Why a connect did not produce a connection.
pub(super) enum ConnectError {
    /// No endpoint could take it (breakers refusing, backing off).
    NoEndpoint(NoEndpoint),
    /// The connect to endpoint `.0` failed.
    Failed(usize, Error),
}

impl<C: Connector> PoolInner<C> {
    /// Reserves a connect slot (`connecting` and `size`) if `want(connecting)` allows.
    pub(super) fn reserve_connect(self: &Arc<Self>, limit: usize) -> Option<ConnectSlot<C>> {
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

    /// Reserves a connect slot only if no connect is in flight (`connecting` 0 -> 1),
    /// within `limit`: two checkouts racing into `scale_ahead` start one connect.
    fn reserve_only_connect(self: &Arc<Self>, limit: usize) -> Option<ConnectSlot<C>> {
        self.connecting
            .compare_exchange(0, 1, Ordering::SeqCst, Ordering::SeqCst)
            .ok()?;
        if !self.try_reserve(limit) {
            self.connecting.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(ConnectSlot {
            pool: Some(self.clone()),
        })
    }

    /// Reserves one unit of `size` within `limit`.
    fn try_reserve(&self, limit: usize) -> bool {
        self.size
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |s| {
                (s < limit).then_some(s + 1)
            })
            .is_ok()
    }

    pub(super) fn hard_limit(&self) -> usize {
        self.max_size.load(Ordering::SeqCst) + self.settings.max_overflow
    }

    /// Starts connects while waiters outnumber connects in flight, within
    /// `max_connecting` and `max_size + max_overflow`.
    pub(super) fn ensure_connecting(self: &Arc<Self>) {
        loop {
            if self.is_shut() {
                return;
            }
            let waiting = self.waiting();
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

    /// `pool.scale_ahead`: called on every checkout when it is set (never otherwise),
    /// after the connection being handed out has left the idle queue, and at the end
    /// of each background connect.
    ///
    /// When nothing is left idle, nothing is on its way (no connect in flight, none
    /// being delivered) and the leased connections have reached `scale_ahead` of
    /// `max_size`, one connect starts in the background, so the next caller finds a
    /// connection instead of waiting for one. Only one at a time: it is the next
    /// connection, opened early, not a burst; and it takes a place under
    /// `max_connecting` like any other, so a demand spike still opens only a few
    /// (the waiters' own connects start only while waiters outnumber the connects in
    /// flight, this one included). Never beyond `max_size` (overflow is for demand).
    ///
    /// Reads atomics only, cheapest first; the connect itself is a spawned task.
    #[cold]
    pub(super) fn scale_ahead(self: &Arc<Self>) {
        if self.idle.len() != 0
            || self.connecting.load(Ordering::Relaxed) != 0
            || self.delivering.load(Ordering::Relaxed) != 0
        {
            return;
        }
        let max = self.max_size.load(Ordering::Relaxed);
        // Nothing idle and nothing connecting: every open connection is leased.
        let leased = self.size.load(Ordering::Relaxed);
        if leased >= max || (leased as f64) < self.settings.scale_ahead * max as f64 {
            return;
        }
        if self.is_shut() {
            return;
        }
        let Some(slot) = self.reserve_only_connect(max) else {
            return;
        };
        // If the runtime is gone the task is dropped unrun, and the slot with it.
        drop(self.rt.handle().spawn(connect_task(slot)));
    }

    /// Chooses an endpoint (skipping `exclude`), opens one connection to it and
    /// records the result in the endpoint's breaker, backoff and health.
    pub(super) async fn connect(
        self: &Arc<Self>,
        exclude: &[usize],
    ) -> std::result::Result<Box<Entry<C::Conn>>, ConnectError> {
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
    pub(super) async fn open(
        &self,
        endpoint: &Endpoint,
        i: usize,
        timeout: Duration,
    ) -> Result<Box<Entry<C::Conn>>> {
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
        let now = self.clock.coarse_stamp();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let expires = self.settings.max_lifetime.map_or(Stamp::NEVER, |l| {
            // Up to 2.5% shorter, so connections opened together don't expire together.
            now.plus(l.mul_f64(1.0 - 0.025 * crate::random::unit()))
        });
        Ok(Box::new(Entry {
            conn,
            id,
            expires,
            idle_since: now,
            proven: now,
            ep: i as u32,
            epoch: self.endpoints.slots[i].epoch.load(Ordering::SeqCst),
            leased_at: now,
        }))
    }

    /// Closes a connection and frees its slot.
    // Connections live boxed from open to close: a pointer moves, not the entry.
    #[allow(clippy::boxed_local)]
    pub(super) fn close_entry(self: &Arc<Self>, entry: Box<Entry<C::Conn>>, reason: CloseReason) {
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

    /// Frees one unit of `size`; if someone is waiting, a replacement connect starts.
    pub(super) fn release_slot(self: &Arc<Self>) {
        self.size.fetch_sub(1, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if self.waiting() != 0 {
            self.ensure_connecting();
        }
    }
}

pub(super) async fn connect_task<C: Connector>(slot: ConnectSlot<C>) {
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
    if pool.scale_ahead_on {
        // A checkout that took this connection while it was still counted as
        // delivering saw it on its way and did not scale ahead: look again now that
        // it has arrived (also after a connect handed straight to a waiter, which
        // takes no checkout path). Demand's connects, started just above, go first.
        pool.scale_ahead();
    }
}

//! The upkeep: the background pass that closes idle connections past `idle_timeout`
//! or their lifetime and those evicted, probes idle ones, runs the endpoints' health
//! checks (reconnecting failed endpoints), reports leaked leases and opens
//! connections up to `min_idle`.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::connect::{ConnectError, connect_task};
use super::dropguard::{AbortOnDrop, ChoiceGuard, Probing};
use super::stats::{CloseReason, Counters};
use super::{Entry, Pool, PoolInner};
use crate::clock::Stamp;
use crate::config::fmt_duration;
use crate::connector::Connector;
use crate::error::{Error, Result};
use crate::events::{Event, EventKind};
use crate::health::{ConnState, EndpointHealth, HealthReport};

impl<C: Connector> Pool<C> {
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
}

impl<C: Connector> PoolInner<C> {
    /// One upkeep pass; see [`Pool::run_upkeep`].
    async fn upkeep(self: &Arc<Self>) {
        if self.is_shut() {
            return;
        }
        let now = Stamp::of(self.clock.now());
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
            let idle_for = now.since(e.idle_since);
            let reason = if self.evicted(&e) {
                Some(CloseReason::Evicted)
            } else if e.expires <= now {
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
                None if self.has_check && now.since(e.proven) >= self.settings.validate_after => {
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

    /// Closes the idle connections that were evicted (their endpoint's epoch moved).
    pub(super) fn sweep_evicted(self: &Arc<Self>) {
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

    pub(super) fn drain_idle(self: &Arc<Self>, reason: CloseReason) {
        while let Some(e) = self.idle.pop() {
            self.close_entry(e, reason);
        }
    }

    /// One health pass: for each endpoint due (or all, `force`), probe an idle
    /// connection of it, or, if it has none and has been failing, try to reconnect
    /// (auto-recovery, within its backoff and breaker).
    async fn health_checks(self: &Arc<Self>, force: bool) {
        if self.is_shut() {
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
                    e.proven = Stamp::of(self.clock.now());
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

    pub(super) fn health(&self) -> HealthReport {
        HealthReport::from_endpoints(self.name.clone(), self.endpoint_health())
    }

    /// Each endpoint's health; a pool of one endpoint takes its in-flight load from
    /// the pool's own count (the fast path keeps per-endpoint counts only for several).
    pub(super) fn endpoint_health(&self) -> Vec<EndpointHealth> {
        let min_idle = self.min_idle.load(Ordering::SeqCst);
        let mut eps: Vec<EndpointHealth> = (0..self.endpoints.slots.len())
            .map(|i| self.endpoints.snapshot(i, min_idle))
            .collect();
        if let [only] = eps.as_mut_slice() {
            let size = self.size.load(Ordering::SeqCst);
            let idle = self.idle.len();
            let connecting = self.connecting.load(Ordering::SeqCst);
            only.in_flight = size.saturating_sub(idle + connecting);
        }
        eps
    }

    /// Records a lease for leak detection (only when it is on).
    #[inline]
    pub(super) fn track(&self, e: &Entry<C::Conn>) {
        if let Some(t) = &self.leases {
            t.lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(e.id, (e.leased_at, false, e.ep));
        }
    }

    #[inline]
    pub(super) fn untrack(&self, id: u64) {
        if let Some(t) = &self.leases {
            t.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
        }
    }

    /// Emits a `leak_suspected` event for each lease held past the threshold (once).
    fn report_leaks(&self, now: Stamp) {
        let (Some(t), Some(limit)) = (&self.leases, self.settings.leak_detection) else {
            return;
        };
        let found: Vec<(u64, Duration, u32)> = {
            let mut map = t.lock().unwrap_or_else(|p| p.into_inner());
            map.iter_mut()
                .filter_map(|(id, (since, reported, ep))| {
                    let age = now.since(*since);
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

    /// Starts connects (in the background) until idle + connecting reaches
    /// `min_idle`, within `max_size`.
    /// Connections that will be idle soon: connects in flight and finished ones on
    /// their way into the queue.
    fn on_the_way(&self) -> usize {
        self.connecting.load(Ordering::SeqCst) + self.delivering.load(Ordering::SeqCst)
    }

    pub(super) fn fill_min_idle(self: &Arc<Self>) {
        loop {
            if self.is_shut() {
                return;
            }
            let want = self.min_idle.load(Ordering::SeqCst);
            let have = self.idle.len() + self.on_the_way();
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
            if idle + self.on_the_way() >= want {
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
}

pub(super) async fn upkeep_task<C: Connector>(pool: Weak<PoolInner<C>>, every: Duration) {
    // Warm up to min_idle at once, then keep up on a schedule with a little jitter.
    let mut first = true;
    loop {
        if !first {
            let jitter = every.mul_f64(0.1 * crate::random::unit());
            tokio::time::sleep(every + jitter).await;
        }
        first = false;
        let Some(p) = pool.upgrade() else { return };
        if p.is_shut() {
            return;
        }
        p.upkeep().await;
    }
}

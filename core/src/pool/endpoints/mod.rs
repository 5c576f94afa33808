//! A pool's endpoints: for each, its breaker, backoff, health record, state and load;
//! choosing where the next connection goes (power of two choices on in-flight load
//! and quality, skipping endpoints whose breaker refuses or that are backing off);
//! and the events all of that produces. The choice itself is in `choice.rs`.

mod choice;

use std::sync::atomic::{AtomicU8, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::backoff::{Backoff, BackoffSettings};
use crate::breaker::{Breaker, BreakerOp, BreakerSettings, BreakerState, Permit, Transition};
use crate::clock::SharedClock;
use crate::config::{Config, fmt_duration};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::events::{Event, EventBus, EventKind};
use crate::health::{ConnState, EndpointHealth, HealthRecord, HealthSettings, Warming};

/// One endpoint of a pool.
pub(crate) struct Slot {
    pub(crate) endpoint: Endpoint,
    pub(crate) name: String,
    /// [`ConnState`] as a number.
    state: AtomicU8,
    /// The breaker's state as a number (a mirror, for lock-free reads).
    breaker_state: AtomicU8,
    /// Bumped to evict every connection of this endpoint (breaker opened, drain,
    /// evict_all); a connection opened in an older epoch is closed when seen.
    pub(crate) epoch: AtomicU32,
    /// Connections open to it.
    pub(crate) open: AtomicUsize,
    /// Of them, leased (counted only for pools of several endpoints; a pool of one
    /// reports its `leased` instead).
    pub(crate) leased: AtomicUsize,
    /// Connects in flight to it.
    pub(crate) connecting: AtomicUsize,
    inner: Mutex<SlotInner>,
}

struct SlotInner {
    breaker: Breaker,
    backoff: Backoff,
    /// No connect before this (backing off after a failure).
    next_attempt: Option<Instant>,
    /// When the next health check is due.
    next_check: Option<Instant>,
    health: HealthRecord,
}

/// Why no endpoint can take a connect now, and when one may.
#[derive(Debug, Clone)]
pub(crate) struct NoEndpoint {
    pub(crate) error: Error,
    /// The earliest time an endpoint may admit a connect by itself.
    #[allow(dead_code)] // kept for reports; the retry loop asks next_ready()
    pub(crate) retry_at: Option<Instant>,
}

/// A connect the endpoints allowed.
#[derive(Debug)]
pub(crate) struct Choice {
    pub(crate) index: usize,
    pub(crate) permit: Permit,
    /// A connect to an endpoint that failed before (counts against the
    /// process-wide reconnect cap).
    pub(crate) reconnect: bool,
    /// This attempt's deadline from the backoff (gRPC's min connect timeout).
    pub(crate) backoff_deadline: Duration,
}

/// What a result did to the endpoint.
#[derive(Debug, Default)]
pub(crate) struct Effect {
    /// The breaker now refuses calls: the endpoint's connections should go.
    pub(crate) evict: bool,
}

/// Where a pool's breaker openings and closings are published for the other
/// instances of a cluster (`cluster.redis_url`), and read back from them.
pub(crate) trait SharedBreakers: Send + Sync {
    /// This instance's breaker of `endpoint` opened for `wait`.
    fn opened(&self, pool: &str, endpoint: &str, wait: Duration);
    /// This instance's breaker of `endpoint` closed after an opening (its probes
    /// succeeded, or an operator reset it).
    fn closed(&self, pool: &str, endpoint: &str);
}

/// Another instance's verdict on an endpoint's breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RemoteVerdict {
    /// It opened its breaker for this long.
    Opened(Duration),
    /// It closed it.
    Closed,
}

pub(crate) struct Endpoints {
    pub(crate) slots: Vec<Slot>,
    /// Set when the manager is in a cluster.
    pub(crate) shared: OnceLock<Arc<dyn SharedBreakers>>,
    pool: String,
    events: Arc<EventBus>,
    clock: SharedClock,
    pub(crate) health: HealthSettings,
    pub(crate) multi: bool,
}

impl Endpoints {
    pub(crate) fn new(
        pool: String,
        endpoints: Vec<Endpoint>,
        cfg: &Config,
        events: Arc<EventBus>,
        clock: SharedClock,
    ) -> Self {
        let breaker = BreakerSettings::from_config(cfg);
        let backoff = BackoffSettings::from_config(cfg);
        let health = HealthSettings::from_config(cfg);
        let multi = endpoints.len() > 1;
        let slots = endpoints
            .into_iter()
            .map(|endpoint| {
                let b = Breaker::new(breaker.clone());
                Slot {
                    name: endpoint.to_string(),
                    endpoint,
                    state: AtomicU8::new(ConnState::Idle as u8),
                    breaker_state: AtomicU8::new(b.state() as u8),
                    epoch: AtomicU32::new(0),
                    open: AtomicUsize::new(0),
                    leased: AtomicUsize::new(0),
                    connecting: AtomicUsize::new(0),
                    inner: Mutex::new(SlotInner {
                        breaker: b,
                        backoff: Backoff::new(backoff.clone()),
                        next_attempt: None,
                        next_check: None,
                        health: HealthRecord::default(),
                    }),
                }
            })
            .collect();
        Endpoints {
            slots,
            shared: OnceLock::new(),
            pool,
            events,
            clock,
            health,
            multi,
        }
    }

    fn lock(&self, i: usize) -> MutexGuard<'_, SlotInner> {
        // Every update under this lock is a plain assignment; a panic cannot leave
        // it half done, so a poisoned lock is still usable.
        self.slots[i]
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The index of the endpoint written `name` (as in the target, or parsed equal).
    pub(crate) fn find(&self, name: &str) -> Result<usize> {
        let name = name.trim();
        self.slots
            .iter()
            .position(|s| {
                s.name == name || Endpoint::parse(name, true).is_ok_and(|e| e == s.endpoint)
            })
            .ok_or_else(|| {
                let known: Vec<&str> = self.slots.iter().map(|s| s.name.as_str()).collect();
                Error::not_found(format!(
                    "pool \"{}\" has no endpoint \"{}\"; its endpoints are {}",
                    self.pool,
                    name.escape_default(),
                    known.join(", ")
                ))
            })
    }

    /// `None`: the only endpoint, or an error naming them if there are several.
    pub(crate) fn find_or_only(&self, name: Option<&str>) -> Result<usize> {
        match name {
            Some(n) => self.find(n),
            None if self.slots.len() == 1 => Ok(0),
            None => Err(Error::invalid_argument(format!(
                "pool \"{}\" has {} endpoints; name one of them",
                self.pool,
                self.slots.len()
            ))),
        }
    }

    pub(crate) fn state(&self, i: usize) -> ConnState {
        ConnState::from_u8(self.slots[i].state.load(Ordering::Relaxed)).unwrap_or(ConnState::Idle)
    }

    pub(crate) fn breaker_state(&self, i: usize) -> BreakerState {
        BreakerState::from_u8(self.slots[i].breaker_state.load(Ordering::Relaxed))
            .unwrap_or(BreakerState::Closed)
    }

    /// Records a connect's result. `Ok(())`: a connection is now open to it.
    pub(crate) fn on_connect(
        &self,
        choice: &Choice,
        result: std::result::Result<(), &Error>,
        elapsed: Duration,
    ) -> Effect {
        let i = choice.index;
        // Counted open before it stops counting as connecting, so that a health
        // record read in between never sees the endpoint cold.
        if result.is_ok() {
            self.slots[i].open.fetch_add(1, Ordering::SeqCst);
        }
        self.slots[i].connecting.fetch_sub(1, Ordering::SeqCst);
        let now = self.clock.now();
        let (transition, backoff) = {
            let mut g = self.lock(i);
            let ok = result.is_ok();
            g.health.record(ok, elapsed, now);
            let backoff = match result {
                Ok(()) => {
                    g.backoff.reset();
                    g.next_attempt = None;
                    None
                }
                Err(e) => {
                    g.health.last_error = Some(e.message().to_string());
                    let d = g.backoff.fail(crate::random::unit());
                    g.next_attempt = Some(now + d);
                    Some(d)
                }
            };
            (
                g.breaker.on_result(choice.permit, ok, elapsed, now),
                backoff,
            )
        };
        let effect = self.after_transition(i, transition);
        match (result, backoff) {
            (Ok(()), _) => self.set_state(i, ConnState::Connected, "connected"),
            (Err(e), d) => {
                let state = if self.breaker_state(i).blocks() {
                    ConnState::Failed
                } else {
                    ConnState::Reconnecting
                };
                let retry = d.map(|d| format!("; next try in {}", fmt_duration(d)));
                self.set_state(
                    i,
                    state,
                    &format!("{}{}", e.message(), retry.unwrap_or_default()),
                );
            }
        }
        effect
    }

    /// A connect given up before it started (the permit is returned unused).
    pub(crate) fn cancel(&self, choice: &Choice) {
        self.slots[choice.index]
            .connecting
            .fetch_sub(1, Ordering::SeqCst);
        self.lock(choice.index).breaker.cancel(choice.permit);
    }

    /// Records a call's result on an existing connection (a probe, a health check,
    /// a call the program reports).
    pub(crate) fn record(
        &self,
        i: usize,
        ok: bool,
        elapsed: Duration,
        why: Option<&str>,
    ) -> Effect {
        let now = self.clock.now();
        let transition = {
            let mut g = self.lock(i);
            g.health.record(ok, elapsed, now);
            if let (false, Some(w)) = (ok, why) {
                g.health.last_error = Some(w.to_string());
            }
            g.breaker.on_result(Permit::UNSOLICITED, ok, elapsed, now)
        };
        self.after_transition(i, transition)
    }

    /// Records a health check's result, with its event.
    pub(crate) fn on_check(
        &self,
        i: usize,
        permit: Option<Permit>,
        ok: bool,
        elapsed: Duration,
        why: &str,
    ) -> Effect {
        let now = self.clock.now();
        let transition = {
            let mut g = self.lock(i);
            g.health.checks += 1;
            if !ok {
                g.health.checks_failed += 1;
            }
            g.health.last_check_latency = Some(elapsed);
            g.health.record(ok, elapsed, now);
            if !ok {
                g.health.last_error = Some(why.to_string());
            }
            g.breaker
                .on_result(permit.unwrap_or(Permit::UNSOLICITED), ok, elapsed, now)
        };
        self.events.emit(Event {
            pool: self.pool.clone(),
            endpoint: Some(self.slots[i].name.clone()),
            new_state: Some(if ok { "ok" } else { "failed" }),
            age: Some(elapsed),
            ..Event::new(EventKind::HealthCheck, why.to_string())
        });
        self.after_transition(i, transition)
    }

    /// Endpoints whose health check is due now (and schedules their next one).
    pub(crate) fn due_checks(&self, force: bool) -> Vec<usize> {
        let Some(every) = self.health.interval else {
            if force {
                return (0..self.slots.len()).collect();
            }
            return Vec::new();
        };
        let now = self.clock.now();
        let mut due = Vec::new();
        for i in 0..self.slots.len() {
            let mut g = self.lock(i);
            let next = *g.next_check.get_or_insert_with(|| now + every);
            if force || now >= next {
                let jitter = every.mul_f64(0.1 * crate::random::unit());
                g.next_check = Some(now + every + jitter);
                due.push(i);
            }
        }
        due
    }

    pub(crate) fn reset_backoff(&self) {
        for i in 0..self.slots.len() {
            let mut g = self.lock(i);
            g.backoff.reset();
            g.next_attempt = None;
        }
    }

    /// Applies an operator's command to endpoint `i`.
    pub(crate) fn apply(&self, i: usize, op: BreakerOp) -> Effect {
        let now = self.clock.now();
        let t = self.lock(i).breaker.apply(op, now);
        self.after_transition(i, t)
    }

    /// A connection of endpoint `i` closed.
    pub(crate) fn closed_one(&self, i: usize, broken: bool) {
        let left = self.slots[i]
            .open
            .fetch_sub(1, Ordering::SeqCst)
            .saturating_sub(1);
        if left != 0 {
            return;
        }
        match self.state(i) {
            ConnState::Connected if broken => {
                self.set_state(i, ConnState::Reconnecting, "its last connection broke");
            }
            ConnState::Disconnecting => {
                self.set_state(
                    i,
                    ConnState::Disconnected,
                    "drained: its last connection closed",
                );
            }
            _ => {}
        }
    }

    /// An operator drains endpoint `i`: DISCONNECTING until its last connection closes.
    pub(crate) fn draining(&self, i: usize) {
        if self.slots[i].open.load(Ordering::SeqCst) == 0 {
            self.set_state(
                i,
                ConnState::Disconnected,
                "drained (no connection was open)",
            );
        } else {
            self.set_state(i, ConnState::Disconnecting, "drained by the operator");
        }
    }

    /// The pool closed: every endpoint is disconnected.
    pub(crate) fn closed_all(&self) {
        for i in 0..self.slots.len() {
            self.set_state(i, ConnState::Disconnected, "the pool closed");
        }
    }

    pub(crate) fn set_state(&self, i: usize, to: ConnState, why: &str) {
        let from = self.slots[i].state.swap(to as u8, Ordering::SeqCst);
        let from = ConnState::from_u8(from).unwrap_or(ConnState::Idle);
        if from == to {
            return;
        }
        self.events.emit(Event {
            pool: self.pool.clone(),
            endpoint: Some(self.slots[i].name.clone()),
            old_state: Some(from.as_str()),
            new_state: Some(to.as_str()),
            ..Event::new(EventKind::EndpointState, why.to_string())
        });
    }

    fn report_transitions(&self, i: usize, transitions: Vec<Transition>) {
        for t in transitions {
            self.after_transition(i, Some(t));
        }
    }

    /// Applies another instance's verdict on endpoint `i`'s breaker (see
    /// [`Breaker::remote_open`]); nothing of it is published again.
    pub(crate) fn remote(&self, i: usize, verdict: RemoteVerdict) -> Effect {
        let now = self.clock.now();
        let t = {
            let mut g = self.lock(i);
            match verdict {
                RemoteVerdict::Opened(wait) => g.breaker.remote_open(now, wait),
                RemoteVerdict::Closed => g.breaker.remote_close(),
            }
        };
        self.mirror(i, t, false)
    }

    /// Mirrors a breaker change, emits its event and says whether to evict.
    fn after_transition(&self, i: usize, t: Option<Transition>) -> Effect {
        self.mirror(i, t, true)
    }

    /// Publishes this instance's own openings and closings to the cluster.
    fn publish(&self, i: usize, from: BreakerState, to: BreakerState) {
        let Some(shared) = self.shared.get() else {
            return;
        };
        let name = &self.slots[i].name;
        if to == BreakerState::Open {
            let (remote, until) = {
                let g = self.lock(i);
                (g.breaker.is_remote(), g.breaker.open_until())
            };
            if let (false, Some(until)) = (remote, until) {
                let wait = until.saturating_duration_since(self.clock.now());
                shared.opened(&self.pool, name, wait);
            }
        } else if to == BreakerState::Closed
            && matches!(from, BreakerState::Open | BreakerState::HalfOpen)
        {
            shared.closed(&self.pool, name);
        }
    }

    fn mirror(&self, i: usize, t: Option<Transition>, own: bool) -> Effect {
        let Some((from, to, why)) = t else {
            return Effect::default();
        };
        if own {
            self.publish(i, from, to);
        }
        self.slots[i]
            .breaker_state
            .store(to as u8, Ordering::SeqCst);
        self.events.emit(Event {
            pool: self.pool.clone(),
            endpoint: Some(self.slots[i].name.clone()),
            old_state: Some(from.as_str()),
            new_state: Some(to.as_str()),
            ..Event::new(EventKind::BreakerState, why)
        });
        let evict = to.blocks() && !from.blocks();
        if evict {
            self.slots[i].epoch.fetch_add(1, Ordering::SeqCst);
            self.set_state(i, ConnState::Failed, "its breaker opened");
        } else if to == BreakerState::Closed && self.slots[i].open.load(Ordering::SeqCst) > 0 {
            self.set_state(i, ConnState::Connected, "its breaker closed");
        }
        Effect { evict }
    }

    /// Endpoint `i`'s share of a pool-wide `min_idle` (rounded down: the endpoints
    /// share connections by load and quality, not evenly, so a rounded-up share could
    /// stay out of reach).
    pub(crate) fn min_idle_share(&self, min_idle: usize) -> usize {
        min_idle / self.slots.len().max(1)
    }

    /// Endpoint `i`'s warming state, given its share of `min_idle`.
    pub(crate) fn warming(&self, i: usize, share: usize) -> Warming {
        let s = &self.slots[i];
        // Connecting first: a connect that finishes between the two loads is then
        // seen as open (on_connect counts it open before it stops connecting).
        let connecting = s.connecting.load(Ordering::SeqCst);
        let open = s.open.load(Ordering::SeqCst);
        Warming::of(open, connecting, share)
    }

    /// Endpoint `i`'s health now; `min_idle` is the pool's (for its warming state).
    pub(crate) fn snapshot(&self, i: usize, min_idle: usize) -> EndpointHealth {
        let now = self.clock.now();
        let s = &self.slots[i];
        let warming = self.warming(i, self.min_idle_share(min_idle));
        let g = self.lock(i);
        let breaker = g.breaker.state();
        let counts = g.breaker.counts();
        EndpointHealth {
            endpoint: s.name.clone(),
            state: self.state(i),
            warming,
            breaker,
            quality: g.health.quality(breaker),
            latency_ewma: g.health.latency_ewma.map(Duration::from_secs_f64),
            success_rate: g.health.success_ewma.unwrap_or(1.0),
            calls: g.health.calls,
            failures: g.health.failures,
            reconnects: g.health.reconnects,
            checks: g.health.checks,
            checks_failed: g.health.checks_failed,
            breaker_opened: counts.opened_total,
            breaker_transitions: counts.transitions_total,
            breaker_rejected: counts.rejected_total,
            open_connections: s.open.load(Ordering::SeqCst),
            in_flight: s.leased.load(Ordering::SeqCst),
            last_success: g.health.last_success,
            connected_since: g.health.connected_since,
            last_error: g.health.last_error.clone(),
            backoff_remaining: g
                .next_attempt
                .filter(|t| *t > now)
                .map(|t| t.saturating_duration_since(now)),
        }
    }

    /// When the earliest endpoint may take a connect again, if any is waiting.
    pub(crate) fn next_ready(&self) -> Option<Instant> {
        let now = self.clock.now();
        let mut at: Option<Instant> = None;
        for i in 0..self.slots.len() {
            let g = self.lock(i);
            let t = match g.breaker.state() {
                BreakerState::Open => g.breaker.open_until(),
                BreakerState::ForcedOpen => None,
                _ => Some(g.next_attempt.unwrap_or(now)),
            };
            if let Some(t) = t {
                at = Some(at.map_or(t, |a| a.min(t)));
            }
        }
        at
    }
}

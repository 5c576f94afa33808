//! Choosing where the next connection goes: power of two choices on in-flight load
//! and quality among the endpoints whose breaker and backoff admit a connect, the
//! breaker permit taken for it, and why none can when none can.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{Choice, Endpoints, NoEndpoint};
use crate::breaker::BreakerState;
use crate::config::fmt_duration;
use crate::error::Error;
use crate::health::ConnState;

impl Endpoints {
    /// Picks an endpoint for a connect and takes its breaker permit. `exclude`:
    /// endpoints already tried by this connect.
    pub(crate) fn choose(&self, exclude: &[usize]) -> std::result::Result<Choice, NoEndpoint> {
        let now = self.clock.now();
        let mut candidates = self.candidates(exclude, now);
        while !candidates.is_empty() {
            let pick = self.two_choices(&candidates);
            let i = candidates.swap_remove(pick);
            if let Some(choice) = self.take_permit(i, now) {
                return Ok(choice);
            }
        }
        Err(self.no_endpoint(exclude, now))
    }

    /// The endpoint [`Endpoints::choose`] would pick now, without taking anything
    /// (no permit, no state change).
    pub(crate) fn peek(&self, exclude: &[usize]) -> std::result::Result<usize, NoEndpoint> {
        let now = self.clock.now();
        let candidates = self.candidates(exclude, now);
        if candidates.is_empty() {
            return Err(self.no_endpoint(exclude, now));
        }
        Ok(candidates[self.two_choices(&candidates)])
    }

    /// The endpoints not in `exclude` whose breaker and backoff admit a connect now.
    fn candidates(&self, exclude: &[usize], now: Instant) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|i| !exclude.contains(i) && self.admits(*i, now))
            .collect()
    }

    /// Power of two choices: of two random candidates, the position of the one with
    /// less in-flight load per unit of quality. `candidates` is not empty.
    fn two_choices(&self, candidates: &[usize]) -> usize {
        if candidates.len() < 2 {
            return 0;
        }
        let n = candidates.len();
        let a = ((crate::random::unit() * n as f64) as usize).min(n - 1);
        let mut b = ((crate::random::unit() * (n - 1) as f64) as usize).min(n - 2);
        if b >= a {
            b += 1;
        }
        if self.cost(candidates[b]) < self.cost(candidates[a]) {
            b
        } else {
            a
        }
    }

    /// `None` if some endpoint can take a connect now; else why none can.
    pub(crate) fn unavailable(&self) -> Option<NoEndpoint> {
        let now = self.clock.now();
        if (0..self.slots.len()).any(|i| self.admits(i, now)) {
            return None;
        }
        // The caller is refused: count it against each breaker that refused.
        for i in 0..self.slots.len() {
            let mut g = self.lock(i);
            if g.breaker.state().blocks() || g.breaker.state() == BreakerState::HalfOpen {
                g.breaker.count_rejection();
            }
        }
        Some(self.no_endpoint(&[], now))
    }

    /// Takes a permit to connect to endpoint `i` now, if its breaker and backoff allow.
    pub(crate) fn choose_one(&self, i: usize) -> Option<Choice> {
        let now = self.clock.now();
        self.take_permit(i, now)
    }

    fn admits(&self, i: usize, now: Instant) -> bool {
        let mut transitions = Vec::new();
        let ok = {
            let mut g = self.lock(i);
            g.next_attempt.is_none_or(|t| now >= t) && g.breaker.would_admit(now, &mut transitions)
        };
        self.report_transitions(i, transitions);
        ok
    }

    fn take_permit(&self, i: usize, now: Instant) -> Option<Choice> {
        let mut transitions = Vec::new();
        let choice = {
            let mut g = self.lock(i);
            if g.next_attempt.is_some_and(|t| now < t) {
                None
            } else {
                g.breaker
                    .try_acquire(now, &mut transitions)
                    .ok()
                    .map(|permit| Choice {
                        index: i,
                        permit,
                        reconnect: g.backoff.failures() > 0,
                        backoff_deadline: g.backoff.attempt_deadline(),
                    })
            }
        };
        self.report_transitions(i, transitions);
        if let Some(c) = &choice {
            self.slots[i].connecting.fetch_add(1, Ordering::SeqCst);
            if c.reconnect {
                self.lock(i).health.reconnects += 1;
            } else if self.state(i) == ConnState::Idle {
                self.set_state(i, ConnState::Connecting, "first connect");
            }
        }
        choice
    }

    fn cost(&self, i: usize) -> f64 {
        let s = &self.slots[i];
        let load = s.leased.load(Ordering::Relaxed) + s.connecting.load(Ordering::Relaxed);
        let q = self.lock(i).health.quality(self.breaker_state(i));
        (load as f64 + 1.0) / q.max(0.01)
    }

    fn no_endpoint(&self, exclude: &[usize], now: Instant) -> NoEndpoint {
        let mut reasons = Vec::new();
        let mut retry_at: Option<Instant> = None;
        for (i, s) in self.slots.iter().enumerate() {
            if exclude.contains(&i) {
                continue;
            }
            let g = self.lock(i);
            let st = g.breaker.state();
            let mut when = None;
            let why = if st.blocks() {
                when = g.breaker.open_until();
                match when {
                    Some(t) => format!(
                        "breaker {} for {} more",
                        st.as_str(),
                        fmt_duration(t.saturating_duration_since(now))
                    ),
                    None => format!("breaker {}", st.as_str()),
                }
            } else if st == BreakerState::HalfOpen {
                format!(
                    "breaker half_open with all {} probes in flight",
                    g.breaker.settings().half_open_probes
                )
            } else if let Some(t) = g.next_attempt.filter(|t| now < *t) {
                when = Some(t);
                format!(
                    "backing off for {} more",
                    fmt_duration(t.saturating_duration_since(now))
                )
            } else {
                "unavailable".to_string()
            };
            let last = g
                .health
                .last_error
                .as_deref()
                .map(|e| format!(" after: {e}"))
                .unwrap_or_default();
            reasons.push(format!("{}: {why}{last}", s.name));
            if let Some(t) = when {
                retry_at = Some(retry_at.map_or(t, |r| r.min(t)));
            }
        }
        NoEndpoint {
            error: Error::unavailable(format!(
                "pool \"{}\": no endpoint can take a connection now ({})",
                self.pool,
                reasons.join("; ")
            )),
            retry_at,
        }
    }
}

//! The circuit breaker: a pure state machine, one per endpoint, driven by the results
//! of calls (connects, probes, health checks, calls the program reports) and by time
//! from the injectable clock.
//!
//! ```text
//!            trips (consecutive failures, failure or slow-call rate)
//!   CLOSED ────────────────────────────────────────────────▶ OPEN
//!     ▲                                                      │ open wait passed
//!     │ every probe succeeded                                ▼
//!     └────────────────────────────────────────────────── HALF_OPEN
//!                 a probe failed or passed its deadline ──▶ OPEN (longer wait)
//! ```
//!
//! HALF_OPEN hands out at most `half_open_probes` permits, each with a deadline
//! (`probe_timeout`); a permit whose result never comes counts as a failure once its
//! deadline passes, so the breaker can never stay HALF_OPEN (resilience4j #903/#1090,
//! Polly #2381). Operators can force it open, disable it (never trips, records
//! nothing), or set it to metrics only (records, reports, never blocks).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::error::{Error, Result};

/// A breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum BreakerState {
    /// Calls pass; results are recorded.
    Closed = 0,
    /// Calls are refused until the open wait has passed.
    Open = 1,
    /// A bounded number of probe calls pass; their results decide.
    HalfOpen = 2,
    /// Operator: refuse everything until reset.
    ForcedOpen = 3,
    /// Operator: allow everything, record nothing.
    Disabled = 4,
    /// Operator: allow everything, record and report, never block.
    MetricsOnly = 5,
}

impl BreakerState {
    /// Every state, in the order of their numbers.
    pub const ALL: [BreakerState; 6] = [
        BreakerState::Closed,
        BreakerState::Open,
        BreakerState::HalfOpen,
        BreakerState::ForcedOpen,
        BreakerState::Disabled,
        BreakerState::MetricsOnly,
    ];

    /// The stable name used in every language: `closed`, `open`, `half_open`,
    /// `forced_open`, `disabled`, `metrics_only`.
    pub const fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
            BreakerState::ForcedOpen => "forced_open",
            BreakerState::Disabled => "disabled",
            BreakerState::MetricsOnly => "metrics_only",
        }
    }

    /// The state with number `n` (as returned by `as u8`).
    pub fn from_u8(n: u8) -> Option<BreakerState> {
        Self::ALL.get(usize::from(n)).copied()
    }

    /// Whether calls are refused in this state (before time is considered).
    pub fn blocks(self) -> bool {
        matches!(self, BreakerState::Open | BreakerState::ForcedOpen)
    }
}

/// An operator's command to a breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerOp {
    /// Refuse every call until reset (FORCED_OPEN).
    ForceOpen,
    /// Allow every call and record nothing (DISABLED).
    Disable,
    /// Allow every call, record and report, never block (METRICS_ONLY).
    MetricsOnly,
    /// Back to CLOSED with an empty window and the first open wait.
    Reset,
}

impl std::str::FromStr for BreakerOp {
    type Err = Error;
    fn from_str(s: &str) -> Result<BreakerOp> {
        match s {
            "force_open" | "forced_open" => Ok(BreakerOp::ForceOpen),
            "disable" | "disabled" => Ok(BreakerOp::Disable),
            "metrics_only" => Ok(BreakerOp::MetricsOnly),
            "reset" | "close" | "closed" => Ok(BreakerOp::Reset),
            _ => Err(Error::invalid_argument(format!(
                "breaker operation \"{}\" is unknown; expected one of force_open | disable | metrics_only | reset",
                s.escape_default()
            ))),
        }
    }
}

/// Breaker settings, from the `breaker.*` keys.
#[derive(Debug, Clone)]
pub struct BreakerSettings {
    /// `breaker.mode`: the state a new breaker starts in.
    pub initial: BreakerState,
    /// `breaker.failure_threshold` (0: off).
    pub failure_threshold: u32,
    /// `breaker.failure_rate_threshold` in percent (0: off).
    pub failure_rate: f64,
    /// `breaker.slow_call_rate_threshold` in percent (0: off).
    pub slow_rate: f64,
    /// `breaker.slow_call_duration`.
    pub slow_call: Duration,
    /// `breaker.window_type = time`.
    pub time_window: bool,
    /// `breaker.window_size`: calls, or seconds for a time window.
    pub window_size: u32,
    /// `breaker.minimum_calls`.
    pub minimum_calls: u32,
    /// `breaker.open_wait`.
    pub open_wait: Duration,
    /// `breaker.open_wait_multiplier`.
    pub open_wait_multiplier: f64,
    /// `breaker.max_open_wait`.
    pub max_open_wait: Duration,
    /// `breaker.half_open_probes`.
    pub half_open_probes: u32,
    /// `breaker.probe_timeout`.
    pub probe_timeout: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self::from_config(&Config::new())
    }
}

impl BreakerSettings {
    /// Reads the `breaker.*` keys of `cfg`.
    pub fn from_config(cfg: &Config) -> Self {
        let initial = match cfg.get("breaker.mode").unwrap_or("normal") {
            "disabled" => BreakerState::Disabled,
            "metrics_only" => BreakerState::MetricsOnly,
            "forced_open" => BreakerState::ForcedOpen,
            _ => BreakerState::Closed,
        };
        BreakerSettings {
            initial,
            failure_threshold: cfg.u64("breaker.failure_threshold") as u32,
            failure_rate: cfg.f64("breaker.failure_rate_threshold"),
            slow_rate: cfg.f64("breaker.slow_call_rate_threshold"),
            slow_call: cfg.duration("breaker.slow_call_duration"),
            time_window: cfg.get("breaker.window_type").is_ok_and(|w| w == "time"),
            window_size: cfg.u64("breaker.window_size").max(1) as u32,
            minimum_calls: cfg.u64("breaker.minimum_calls").max(1) as u32,
            open_wait: cfg.duration("breaker.open_wait"),
            open_wait_multiplier: cfg.f64("breaker.open_wait_multiplier").max(1.0),
            max_open_wait: cfg.duration("breaker.max_open_wait"),
            half_open_probes: cfg.u64("breaker.half_open_probes").max(1) as u32,
            probe_timeout: cfg.duration("breaker.probe_timeout"),
        }
    }
}

/// Permission to make one call, from [`Breaker::try_acquire`]. Hand it back with the
/// result to [`Breaker::on_result`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permit {
    /// A HALF_OPEN probe (its result decides the state).
    pub probe: bool,
    /// The breaker's generation when it was granted; a result from an older
    /// generation (the state changed meanwhile) is recorded but decides nothing.
    generation: u64,
}

impl Permit {
    /// A permit for a result that was not asked for first (a health check on an
    /// existing connection, a call the program reports).
    pub const UNSOLICITED: Permit = Permit {
        probe: false,
        generation: u64::MAX,
    };
}

/// A state change: (from, to, why).
pub type Transition = (BreakerState, BreakerState, String);

/// A refusal: the state, and when it may admit calls again (`None`: not by itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The state that refused.
    pub state: BreakerState,
    /// When the breaker will next let a probe through, if it will by itself.
    pub retry_at: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Outcome {
    at: Instant,
    failed: bool,
    slow: bool,
}

/// Counts of the breaker's sliding window and lifetime.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BreakerCounts {
    /// Calls in the window.
    pub window_calls: u32,
    /// Failures in the window.
    pub window_failures: u32,
    /// Slow calls in the window.
    pub window_slow: u32,
    /// Consecutive failures now.
    pub consecutive_failures: u32,
    /// Times the breaker opened (OPEN entered from CLOSED or HALF_OPEN).
    pub opened_total: u64,
    /// Every state change.
    pub transitions_total: u64,
    /// Calls refused.
    pub rejected_total: u64,
}

/// One endpoint's circuit breaker. Not thread-safe by itself: the pool keeps it
/// behind the endpoint's own lock, taken only on results and refusals, never on the
/// fast path of an idle checkout.
#[derive(Debug)]
pub struct Breaker {
    settings: BreakerSettings,
    state: BreakerState,
    window: VecDeque<Outcome>,
    window_failures: u32,
    window_slow: u32,
    consecutive_failures: u32,
    /// Openings in a row without a close (drives the open wait's growth).
    reopenings: u32,
    open_until: Option<Instant>,
    /// HALF_OPEN: deadlines of probes handed out and not yet answered.
    probes: Vec<Instant>,
    probe_successes: u32,
    generation: u64,
    counts: BreakerCounts,
    /// The current OPEN came from another instance of the cluster (its opening was
    /// published), not from this breaker's own counts.
    remote: bool,
}

impl Breaker {
    /// A breaker in the settings' initial state.
    pub fn new(settings: BreakerSettings) -> Self {
        Breaker {
            state: settings.initial,
            settings,
            window: VecDeque::new(),
            window_failures: 0,
            window_slow: 0,
            consecutive_failures: 0,
            reopenings: 0,
            open_until: None,
            probes: Vec::new(),
            probe_successes: 0,
            generation: 0,
            counts: BreakerCounts::default(),
            remote: false,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &BreakerSettings {
        &self.settings
    }

    /// The state as of the last call (time does not move it; [`Breaker::tick`] does).
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// When an OPEN breaker will admit probes.
    pub fn open_until(&self) -> Option<Instant> {
        self.open_until
    }

    /// Whether the current OPEN (or the HALF_OPEN after it) came from another
    /// instance's published opening rather than from this breaker's own counts.
    pub fn is_remote(&self) -> bool {
        self.remote
    }

    /// Another instance of the cluster opened this endpoint's breaker for `wait`: a
    /// CLOSED (or HALF_OPEN) breaker opens at once, without counting failures of its
    /// own, until `now + wait + breaker.probe_timeout` (the opener probes meanwhile
    /// and publishes its verdict; with no verdict by then, this breaker probes by
    /// itself). An OPEN one is held open at least that long. Operator states and
    /// METRICS_ONLY are left alone.
    pub fn remote_open(&mut self, now: Instant, wait: Duration) -> Option<Transition> {
        let until = now + wait + self.settings.probe_timeout;
        match self.state {
            BreakerState::Closed | BreakerState::HalfOpen => {
                self.clear_window();
                self.probes.clear();
                self.probe_successes = 0;
                self.open_until = Some(until);
                let t = self.go(
                    BreakerState::Open,
                    format!(
                        "another instance of the cluster opened it; open for {}",
                        crate::config::fmt_duration(wait)
                    ),
                );
                self.remote = true;
                Some(t)
            }
            BreakerState::Open => {
                if self.open_until.is_none_or(|t| t < until) {
                    self.open_until = Some(until);
                }
                None
            }
            _ => None,
        }
    }

    /// The instance whose opening this breaker followed closed its breaker (its probes
    /// succeeded): this one closes too. A breaker that opened by its own counts keeps
    /// its own course.
    pub fn remote_close(&mut self) -> Option<Transition> {
        if !self.remote || !matches!(self.state, BreakerState::Open | BreakerState::HalfOpen) {
            return None;
        }
        self.reopenings = 0;
        self.open_until = None;
        self.probes.clear();
        self.probe_successes = 0;
        self.clear_window();
        Some(self.go(
            BreakerState::Closed,
            "the instance of the cluster that opened it closed it".to_string(),
        ))
    }

    /// The window and lifetime counts.
    pub fn counts(&self) -> BreakerCounts {
        BreakerCounts {
            window_calls: self.window.len() as u32,
            window_failures: self.window_failures,
            window_slow: self.window_slow,
            consecutive_failures: self.consecutive_failures,
            ..self.counts.clone()
        }
    }

    /// Applies what time alone changes: OPEN becomes HALF_OPEN once its wait has
    /// passed; a HALF_OPEN probe past its deadline fails (reopening the breaker).
    pub fn tick(&mut self, now: Instant) -> Option<Transition> {
        match self.state {
            BreakerState::Open if self.open_until.is_some_and(|t| now >= t) => {
                self.probes.clear();
                self.probe_successes = 0;
                Some(self.go(BreakerState::HalfOpen, "the open wait has passed".into()))
            }
            BreakerState::HalfOpen => {
                let timeout = self.settings.probe_timeout;
                if self.probes.iter().any(|d| now >= *d) {
                    Some(self.open(
                        now,
                        format!(
                            "a probe had no result within {} (breaker.probe_timeout)",
                            crate::config::fmt_duration(timeout)
                        ),
                    ))
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    /// Asks to make one call now. On refusal, says until when (if it will change by
    /// itself). May change state (OPEN → HALF_OPEN, a stuck probe → OPEN); the
    /// transitions are returned for the caller to report.
    pub fn try_acquire(
        &mut self,
        now: Instant,
        transitions: &mut Vec<Transition>,
    ) -> std::result::Result<Permit, Refusal> {
        // At most two steps (a stuck probe reopens; it cannot also have waited).
        for _ in 0..2 {
            match self.tick(now) {
                Some(t) => transitions.push(t),
                None => break,
            }
        }
        let permit = Permit {
            probe: false,
            generation: self.generation,
        };
        match self.state {
            BreakerState::Closed | BreakerState::Disabled | BreakerState::MetricsOnly => Ok(permit),
            BreakerState::HalfOpen
                if (self.probes.len() as u32 + self.probe_successes)
                    < self.settings.half_open_probes =>
            {
                self.probes.push(now + self.settings.probe_timeout);
                Ok(Permit {
                    probe: true,
                    ..permit
                })
            }
            BreakerState::HalfOpen => {
                self.counts.rejected_total += 1;
                // Free again when a probe answers or passes its deadline.
                let retry_at = self.probes.iter().min().copied();
                Err(Refusal {
                    state: self.state,
                    retry_at,
                })
            }
            BreakerState::Open | BreakerState::ForcedOpen => {
                self.counts.rejected_total += 1;
                Err(Refusal {
                    state: self.state,
                    retry_at: self.open_until.filter(|_| self.state == BreakerState::Open),
                })
            }
        }
    }

    /// Whether a call would be admitted now, without taking a permit.
    pub fn would_admit(&mut self, now: Instant, transitions: &mut Vec<Transition>) -> bool {
        if let Some(t) = self.tick(now) {
            transitions.push(t);
        }
        match self.state {
            BreakerState::Closed | BreakerState::Disabled | BreakerState::MetricsOnly => true,
            BreakerState::HalfOpen => {
                (self.probes.len() as u32 + self.probe_successes) < self.settings.half_open_probes
            }
            BreakerState::Open | BreakerState::ForcedOpen => false,
        }
    }

    /// Counts a call refused without asking for a permit (the pool failed a caller
    /// fast because this breaker would not admit it).
    pub fn count_rejection(&mut self) {
        self.counts.rejected_total += 1;
    }

    /// Gives back a permit whose call never happened (nothing is recorded).
    pub fn cancel(&mut self, permit: Permit) {
        if permit.probe && permit.generation == self.generation {
            // Any one of the outstanding deadlines: they are interchangeable.
            self.probes.pop();
        }
    }

    /// Records a call's result. `elapsed` decides whether it was slow. Returns the
    /// state change it caused, if any.
    pub fn on_result(
        &mut self,
        permit: Permit,
        ok: bool,
        elapsed: Duration,
        now: Instant,
    ) -> Option<Transition> {
        if self.state == BreakerState::Disabled {
            return None;
        }
        let slow = elapsed >= self.settings.slow_call;
        let current = permit.generation == self.generation;
        if permit.probe && current && self.state == BreakerState::HalfOpen {
            // A probe's deadline is gone either way.
            self.probes.pop();
            if !ok || (slow && self.settings.slow_rate > 0.0) {
                let why = if ok {
                    format!(
                        "a probe was slow ({})",
                        crate::config::fmt_duration(elapsed)
                    )
                } else {
                    "a probe failed".to_string()
                };
                return Some(self.open(now, why));
            }
            self.probe_successes += 1;
            if self.probe_successes >= self.settings.half_open_probes {
                self.reopenings = 0;
                self.clear_window();
                return Some(self.go(
                    BreakerState::Closed,
                    format!("{} probes succeeded", self.probe_successes),
                ));
            }
            return None;
        }
        if !matches!(self.state, BreakerState::Closed | BreakerState::MetricsOnly) {
            // OPEN / FORCED_OPEN / HALF_OPEN: a late result of an earlier call
            // decides nothing.
            return None;
        }
        self.record(Outcome {
            at: now,
            failed: !ok,
            slow,
        });
        if ok {
            self.consecutive_failures = 0;
        } else {
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        }
        let why = self.trip_reason(now)?;
        if self.state == BreakerState::MetricsOnly {
            // Reports what would have happened, blocks nothing.
            return None;
        }
        Some(self.open(now, why))
    }

    /// Whether the breaker would trip now (also in METRICS_ONLY, for reports).
    pub fn would_trip(&mut self, now: Instant) -> bool {
        self.trip_reason(now).is_some()
    }

    /// Applies an operator's command.
    pub fn apply(&mut self, op: BreakerOp, now: Instant) -> Option<Transition> {
        let _ = now;
        let to = match op {
            BreakerOp::ForceOpen => BreakerState::ForcedOpen,
            BreakerOp::Disable => BreakerState::Disabled,
            BreakerOp::MetricsOnly => BreakerState::MetricsOnly,
            BreakerOp::Reset => BreakerState::Closed,
        };
        self.clear_window();
        self.reopenings = 0;
        self.open_until = None;
        self.probes.clear();
        self.probe_successes = 0;
        if self.state == to {
            return None;
        }
        Some(self.go(to, format!("operator: {op:?}")))
    }

    fn go(&mut self, to: BreakerState, why: String) -> Transition {
        let from = self.state;
        // A remote OPEN's wait passing keeps it remote (a late verdict still closes
        // it); any other change is this breaker's own.
        self.remote &= from == BreakerState::Open && to == BreakerState::HalfOpen;
        self.state = to;
        self.generation += 1;
        self.counts.transitions_total += 1;
        (from, to, why)
    }

    fn open(&mut self, now: Instant, why: String) -> Transition {
        let s = &self.settings;
        let grown = s.open_wait.as_secs_f64() * s.open_wait_multiplier.powi(self.reopenings as i32);
        let capped = grown.min(s.max_open_wait.as_secs_f64());
        // 20% jitter downwards keeps the cap a cap.
        let wait = capped * (1.0 - 0.2 * crate::random::unit());
        self.reopenings = self.reopenings.saturating_add(1);
        self.open_until = Some(now + Duration::from_secs_f64(wait.max(0.0)));
        self.probes.clear();
        self.probe_successes = 0;
        self.counts.opened_total += 1;
        self.clear_window();
        let why = format!(
            "{why}; open for {}",
            crate::config::fmt_duration(Duration::from_secs_f64(wait))
        );
        self.go(BreakerState::Open, why)
    }

    fn clear_window(&mut self) {
        self.window.clear();
        self.window_failures = 0;
        self.window_slow = 0;
        self.consecutive_failures = 0;
    }

    fn record(&mut self, o: Outcome) {
        self.window.push_back(o);
        self.window_failures += u32::from(o.failed);
        self.window_slow += u32::from(o.slow);
        if !self.settings.time_window {
            while self.window.len() > self.settings.window_size as usize {
                self.pop_oldest();
            }
        }
    }

    fn pop_oldest(&mut self) {
        if let Some(old) = self.window.pop_front() {
            self.window_failures -= u32::from(old.failed);
            self.window_slow -= u32::from(old.slow);
        }
    }

    fn trip_reason(&mut self, now: Instant) -> Option<String> {
        if self.settings.time_window {
            let span = Duration::from_secs(u64::from(self.settings.window_size));
            while self
                .window
                .front()
                .is_some_and(|o| now.saturating_duration_since(o.at) > span)
            {
                self.pop_oldest();
            }
        }
        let s = &self.settings;
        if s.failure_threshold > 0 && self.consecutive_failures >= s.failure_threshold {
            return Some(format!(
                "{} consecutive failures (breaker.failure_threshold = {})",
                self.consecutive_failures, s.failure_threshold
            ));
        }
        let n = self.window.len() as u32;
        if n < s.minimum_calls {
            return None;
        }
        let pct = |k: u32| 100.0 * f64::from(k) / f64::from(n);
        if s.failure_rate > 0.0 && pct(self.window_failures) >= s.failure_rate {
            return Some(format!(
                "failure rate {:.0}% over {n} calls (breaker.failure_rate_threshold = {}%)",
                pct(self.window_failures),
                s.failure_rate
            ));
        }
        if s.slow_rate > 0.0 && pct(self.window_slow) >= s.slow_rate {
            return Some(format!(
                "slow-call rate {:.0}% over {n} calls (breaker.slow_call_rate_threshold = {}%, breaker.slow_call_duration = {})",
                pct(self.window_slow),
                s.slow_rate,
                crate::config::fmt_duration(s.slow_call)
            ));
        }
        None
    }
}

#[cfg(test)]
#[path = "breaker_tests.rs"]
mod tests;

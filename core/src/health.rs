//! Health of endpoints: states, the record of calls (latency EWMA, success rate), the
//! quality score and the report snapshot.

use std::time::{Duration, Instant, SystemTime};

use crate::breaker::BreakerState;
use crate::config::Config;

/// The state of a connection or an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ConnState {
    /// Nothing open and nothing happening (an endpoint before its first connect);
    /// for a connection: open and idle in the pool.
    Idle = 0,
    /// A first connect is in flight.
    Connecting = 1,
    /// Open and usable.
    Connected = 2,
    /// A connect failed; reconnects go on with backoff.
    Reconnecting = 3,
    /// Being closed (drained).
    Disconnecting = 4,
    /// Closed on purpose (pool closed, drained, evicted, idle, lifetime).
    Disconnected = 5,
    /// Failed: broken, or refused by an open breaker.
    Failed = 6,
}

impl ConnState {
    /// Every state, in the order of their numbers.
    pub const ALL: [ConnState; 7] = [
        ConnState::Idle,
        ConnState::Connecting,
        ConnState::Connected,
        ConnState::Reconnecting,
        ConnState::Disconnecting,
        ConnState::Disconnected,
        ConnState::Failed,
    ];

    /// The stable name used in every language: `idle`, `connecting`, `connected`,
    /// `reconnecting`, `disconnecting`, `disconnected`, `failed`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ConnState::Idle => "idle",
            ConnState::Connecting => "connecting",
            ConnState::Connected => "connected",
            ConnState::Reconnecting => "reconnecting",
            ConnState::Disconnecting => "disconnecting",
            ConnState::Disconnected => "disconnected",
            ConnState::Failed => "failed",
        }
    }

    /// The state with number `n`.
    pub fn from_u8(n: u8) -> Option<ConnState> {
        Self::ALL.get(usize::from(n)).copied()
    }
}

/// How ready an endpoint is to serve without a caller paying for a connect (seed 001's
/// connection warming), in its health record.
///
/// Decided from the endpoint's counts when the record is read ([`Warming::of`]):
/// - `Cold`: no connection is open to it and none is being opened, so the next
///   caller that needs it waits for a whole connect;
/// - `Warming`: connects to it are in flight, or fewer connections are open than its
///   share of the pool's `min_idle` (`min_idle / endpoints`, rounded down);
/// - `Warm`: at least one connection is open, its share of `min_idle` is met and
///   nothing is being opened.
///
/// A warm endpoint goes back to warming while the pool opens more (a demand spike,
/// `pool.scale_ahead`) and to cold when its last connection closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Warming {
    /// Nothing open and nothing being opened.
    Cold = 0,
    /// Connects in flight, or below its share of `min_idle`.
    Warming = 1,
    /// Open, its share of `min_idle` met, nothing being opened.
    Warm = 2,
}

impl Warming {
    /// Every state, in the order of their numbers.
    pub const ALL: [Warming; 3] = [Warming::Cold, Warming::Warming, Warming::Warm];

    /// The stable name used in every language: `cold`, `warming`, `warm`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Warming::Cold => "cold",
            Warming::Warming => "warming",
            Warming::Warm => "warm",
        }
    }

    /// The state with number `n`.
    pub fn from_u8(n: u8) -> Option<Warming> {
        Self::ALL.get(usize::from(n)).copied()
    }

    /// The state of an endpoint with `open` connections and `connecting` connects in
    /// flight, whose share of the pool's `min_idle` is `share`.
    ///
    /// ```
    /// use switchboard_core::Warming;
    /// assert_eq!(Warming::of(0, 0, 3), Warming::Cold);
    /// assert_eq!(Warming::of(0, 1, 3), Warming::Warming);
    /// assert_eq!(Warming::of(2, 0, 3), Warming::Warming);
    /// assert_eq!(Warming::of(3, 0, 3), Warming::Warm);
    /// assert_eq!(Warming::of(1, 0, 0), Warming::Warm);
    /// ```
    pub const fn of(open: usize, connecting: usize, share: usize) -> Warming {
        if open == 0 && connecting == 0 {
            Warming::Cold
        } else if connecting != 0 || open < share {
            Warming::Warming
        } else {
            Warming::Warm
        }
    }
}

/// Health-check settings, from the `health.*` keys.
#[derive(Debug, Clone)]
pub struct HealthSettings {
    /// `health.interval`; `None`: no checks.
    pub interval: Option<Duration>,
    /// `health.timeout`.
    pub timeout: Duration,
}

impl HealthSettings {
    /// Reads the `health.*` keys of `cfg`.
    pub fn from_config(cfg: &Config) -> Self {
        let interval = cfg.duration("health.interval");
        HealthSettings {
            interval: (!interval.is_zero()).then_some(interval),
            timeout: cfg.duration("health.timeout"),
        }
    }
}

/// Weight of the newest sample in the latency and success EWMAs.
pub const EWMA_ALPHA: f64 = 0.2;
/// Latency at which quality halves (for a perfect success rate).
pub const QUALITY_LATENCY_REF: Duration = Duration::from_millis(100);

/// What one endpoint has seen. Kept behind the endpoint's lock.
#[derive(Debug, Clone, Default)]
pub struct HealthRecord {
    /// Calls recorded (connects, probes, health checks, reported calls).
    pub calls: u64,
    /// Of them, failed.
    pub failures: u64,
    /// Reconnect attempts (connects after a failure).
    pub reconnects: u64,
    /// Health checks run.
    pub checks: u64,
    /// Of them, failed.
    pub checks_failed: u64,
    /// Latency EWMA in seconds (`None` before the first success).
    pub latency_ewma: Option<f64>,
    /// Success EWMA in [0, 1] (1 before the first call).
    pub success_ewma: Option<f64>,
    /// Last health-check latency.
    pub last_check_latency: Option<Duration>,
    /// Last successful call (wall clock).
    pub last_success: Option<SystemTime>,
    /// Last failure's message.
    pub last_error: Option<String>,
    /// Since when the endpoint has been connected without a failure in between.
    pub connected_since: Option<SystemTime>,
    /// Monotonic time of the last success (for tests and ordering).
    pub last_success_at: Option<Instant>,
}

impl HealthRecord {
    /// Records one call.
    pub fn record(&mut self, ok: bool, latency: Duration, now: Instant) {
        self.calls += 1;
        let s = if ok { 1.0 } else { 0.0 };
        self.success_ewma = Some(match self.success_ewma {
            None => s,
            Some(v) => v + EWMA_ALPHA * (s - v),
        });
        if ok {
            let l = latency.as_secs_f64();
            self.latency_ewma = Some(match self.latency_ewma {
                None => l,
                Some(v) => v + EWMA_ALPHA * (l - v),
            });
            self.last_success = Some(SystemTime::now());
            self.last_success_at = Some(now);
            if self.connected_since.is_none() {
                self.connected_since = self.last_success;
            }
        } else {
            self.failures += 1;
            self.connected_since = None;
        }
    }

    /// The quality score in [0, 1]: success EWMA times `ref / (ref + latency EWMA)`;
    /// 0 while the breaker refuses calls.
    pub fn quality(&self, breaker: BreakerState) -> f64 {
        if breaker.blocks() {
            return 0.0;
        }
        let success = self.success_ewma.unwrap_or(1.0);
        let r = QUALITY_LATENCY_REF.as_secs_f64();
        let latency = self.latency_ewma.unwrap_or(0.0);
        (success * r / (r + latency)).clamp(0.0, 1.0)
    }
}

/// One endpoint's health, as reported by [`crate::Pool::health`].
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointHealth {
    /// The endpoint, as written in the target.
    pub endpoint: String,
    /// Its state.
    pub state: ConnState,
    /// How warm it is: cold, warming or warm (see [`Warming`]).
    pub warming: Warming,
    /// Its breaker's state.
    pub breaker: BreakerState,
    /// Quality score in [0, 1] (higher is better).
    pub quality: f64,
    /// Latency EWMA of successful calls.
    pub latency_ewma: Option<Duration>,
    /// Success rate (EWMA) in [0, 1].
    pub success_rate: f64,
    /// Calls recorded.
    pub calls: u64,
    /// Of them, failed.
    pub failures: u64,
    /// Reconnect attempts.
    pub reconnects: u64,
    /// Health checks run, and failed.
    pub checks: u64,
    /// Health checks failed.
    pub checks_failed: u64,
    /// Times the breaker opened.
    pub breaker_opened: u64,
    /// Breaker state changes.
    pub breaker_transitions: u64,
    /// Calls the breaker refused.
    pub breaker_rejected: u64,
    /// Connections open to it now.
    pub open_connections: usize,
    /// Of them, leased now (the "in-flight load").
    pub in_flight: usize,
    /// Last successful call.
    pub last_success: Option<SystemTime>,
    /// Connected without a failure since.
    pub connected_since: Option<SystemTime>,
    /// Last failure's message.
    pub last_error: Option<String>,
    /// When the next reconnect may start, if backing off (from now).
    pub backoff_remaining: Option<Duration>,
}

/// A pool's health: totals and each endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthReport {
    /// The pool's name.
    pub pool: String,
    /// Calls over all endpoints.
    pub calls: u64,
    /// Failures over all endpoints.
    pub failures: u64,
    /// `1 - failures / calls` (1 with no calls).
    pub success_rate: f64,
    /// Reconnect attempts over all endpoints.
    pub reconnects: u64,
    /// The latest success of any endpoint.
    pub last_success: Option<SystemTime>,
    /// The earliest `connected_since` of the endpoints that are connected.
    pub connected_since: Option<SystemTime>,
    /// Each endpoint, in target order.
    pub endpoints: Vec<EndpointHealth>,
}

impl HealthReport {
    /// Builds the totals from the endpoints.
    pub fn from_endpoints(pool: String, endpoints: Vec<EndpointHealth>) -> Self {
        let calls = endpoints.iter().map(|e| e.calls).sum();
        let failures = endpoints.iter().map(|e| e.failures).sum();
        HealthReport {
            pool,
            calls,
            failures,
            success_rate: if calls == 0 {
                1.0
            } else {
                1.0 - failures as f64 / calls as f64
            },
            reconnects: endpoints.iter().map(|e| e.reconnects).sum(),
            last_success: endpoints.iter().filter_map(|e| e.last_success).max(),
            connected_since: endpoints.iter().filter_map(|e| e.connected_since).min(),
            endpoints,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_falls_with_failures_and_latency_and_is_zero_when_open() {
        let now = Instant::now();
        let mut fast = HealthRecord::default();
        let mut slow = HealthRecord::default();
        let mut flaky = HealthRecord::default();
        for i in 0..20 {
            fast.record(true, Duration::from_millis(1), now);
            slow.record(true, Duration::from_millis(300), now);
            flaky.record(i % 2 == 0, Duration::from_millis(1), now);
        }
        let q = |r: &HealthRecord| r.quality(BreakerState::Closed);
        assert!(q(&fast) > 0.95, "{}", q(&fast));
        assert!(q(&slow) < 0.3, "{}", q(&slow));
        assert!(q(&flaky) < 0.7 && q(&flaky) > 0.2, "{}", q(&flaky));
        assert_eq!(fast.quality(BreakerState::Open), 0.0);
        assert_eq!(HealthRecord::default().quality(BreakerState::Closed), 1.0);
        assert_eq!(flaky.failures, 10);
        assert!(flaky.connected_since.is_none(), "its last call failed");
        assert!(fast.connected_since.is_some());
    }

    #[test]
    fn warming_names_and_numbers_are_stable() {
        for (i, w) in Warming::ALL.into_iter().enumerate() {
            assert_eq!(w as usize, i);
            assert_eq!(Warming::from_u8(i as u8), Some(w));
        }
        assert_eq!(Warming::from_u8(3), None);
        let names: Vec<&str> = Warming::ALL.iter().map(|w| w.as_str()).collect();
        assert_eq!(names, ["cold", "warming", "warm"]);
        // Connects in flight make a cold endpoint warming, and a warm one too.
        assert_eq!(Warming::of(5, 1, 3), Warming::Warming);
        assert_eq!(Warming::of(5, 0, 3), Warming::Warm);
    }
}

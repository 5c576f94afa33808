//! Endpoint health and pool health reports as JS objects (camelCase; durations in
//! milliseconds; times as milliseconds since the Unix epoch, which `index.js` turns
//! into `Date`s).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use napi_derive::napi;
use switchboard_core::{EndpointHealth, HealthReport};

/// A duration in milliseconds, as JS objects carry it.
pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Milliseconds since the Unix epoch (0 for a time before it).
pub fn epoch_ms(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).map(ms).unwrap_or(0.0)
}

/// One endpoint's health (core's `EndpointHealth`).
#[napi(object)]
pub struct NativeEndpointHealth {
    /// The endpoint, as written in the pool's target.
    pub endpoint: String,
    /// `idle`, `connecting`, `connected`, `reconnecting`, `disconnecting`,
    /// `disconnected` or `failed`.
    pub state: String,
    /// `cold`, `warming` or `warm`.
    pub warming: String,
    /// `closed`, `open`, `half_open`, `forced_open`, `disabled` or `metrics_only`.
    pub breaker: String,
    /// Quality score in [0, 1], higher is better.
    pub quality: f64,
    /// Latency EWMA of successful calls, in milliseconds.
    pub latency_ewma: Option<f64>,
    /// Success rate (EWMA) in [0, 1].
    pub success_rate: f64,
    pub calls: f64,
    pub failures: f64,
    pub reconnects: f64,
    pub checks: f64,
    pub checks_failed: f64,
    pub breaker_opened: f64,
    pub breaker_transitions: f64,
    pub breaker_rejected: f64,
    pub open_connections: f64,
    pub in_flight: f64,
    /// Milliseconds since the Unix epoch.
    pub last_success: Option<f64>,
    /// Milliseconds since the Unix epoch.
    pub connected_since: Option<f64>,
    pub last_error: Option<String>,
    /// Milliseconds until the next reconnect may start, if backing off.
    pub backoff_remaining: Option<f64>,
}

impl From<&EndpointHealth> for NativeEndpointHealth {
    fn from(e: &EndpointHealth) -> Self {
        NativeEndpointHealth {
            endpoint: e.endpoint.clone(),
            state: e.state.as_str().to_string(),
            warming: e.warming.as_str().to_string(),
            breaker: e.breaker.as_str().to_string(),
            quality: e.quality,
            latency_ewma: e.latency_ewma.map(ms),
            success_rate: e.success_rate,
            calls: e.calls as f64,
            failures: e.failures as f64,
            reconnects: e.reconnects as f64,
            checks: e.checks as f64,
            checks_failed: e.checks_failed as f64,
            breaker_opened: e.breaker_opened as f64,
            breaker_transitions: e.breaker_transitions as f64,
            breaker_rejected: e.breaker_rejected as f64,
            open_connections: e.open_connections as f64,
            in_flight: e.in_flight as f64,
            last_success: e.last_success.map(epoch_ms),
            connected_since: e.connected_since.map(epoch_ms),
            last_error: e.last_error.clone(),
            backoff_remaining: e.backoff_remaining.map(ms),
        }
    }
}

/// Every endpoint's health, in target order.
pub fn endpoint_list(eps: &[EndpointHealth]) -> Vec<NativeEndpointHealth> {
    eps.iter().map(NativeEndpointHealth::from).collect()
}

/// A pool's health (core's `HealthReport`).
#[napi(object)]
pub struct NativeHealthReport {
    pub pool: String,
    pub calls: f64,
    pub failures: f64,
    pub success_rate: f64,
    pub reconnects: f64,
    /// Milliseconds since the Unix epoch.
    pub last_success: Option<f64>,
    /// Milliseconds since the Unix epoch.
    pub connected_since: Option<f64>,
    pub endpoints: Vec<NativeEndpointHealth>,
}

impl From<HealthReport> for NativeHealthReport {
    fn from(h: HealthReport) -> Self {
        NativeHealthReport {
            endpoints: endpoint_list(&h.endpoints),
            pool: h.pool,
            calls: h.calls as f64,
            failures: h.failures as f64,
            success_rate: h.success_rate,
            reconnects: h.reconnects as f64,
            last_success: h.last_success.map(epoch_ms),
            connected_since: h.connected_since.map(epoch_ms),
        }
    }
}

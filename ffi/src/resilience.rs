//! Resilience of a pool's endpoints: circuit breakers (`sb_breaker_state`,
//! `sb_pool_breaker_op`), backoff (`sb_pool_reset_backoff`), health
//! (`sb_pool_get_health`, `sb_endpoint_health`, `sb_pool_healthy_endpoints`,
//! `sb_pool_run_health_checks`) and the choice among endpoints
//! (`sb_pool_select_best`, `sb_pool_drain`). Translation only: the breakers, backoff
//! and health records live in core, one set per endpoint.

use std::ffi::c_char;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use switchboard_core::{
    BreakerOp, BreakerState, ConnState, EndpointHealth, Error, HealthReport, Warming,
};

use crate::args::{
    check_out, copy_str, copy_str_out, str_arg, struct_room, write_out, write_prefix,
};
use crate::error::{guard, null_arg, sb_status};
use crate::handles::addr;
use crate::pool::{POOLS, sb_pool};

/// The state of an endpoint's circuit breaker. The numbers are stable; the names
/// (`sb_breaker_state_str`) are the same in every language.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum sb_breaker_state {
    /// Calls pass; their results are recorded ("closed").
    SB_BREAKER_CLOSED = 0,
    /// Tripped: no connection is opened to the endpoint until the open wait has passed
    /// ("open").
    SB_BREAKER_OPEN = 1,
    /// After the open wait: `breaker.half_open_probes` probe connects pass, their
    /// results decide ("half_open").
    SB_BREAKER_HALF_OPEN = 2,
    /// Operator: refuses everything until reset ("forced_open").
    SB_BREAKER_FORCED_OPEN = 3,
    /// Operator: allows everything, records nothing ("disabled").
    SB_BREAKER_DISABLED = 4,
    /// Operator: allows everything, records and reports, never blocks
    /// ("metrics_only").
    SB_BREAKER_METRICS_ONLY = 5,
}

impl From<BreakerState> for sb_breaker_state {
    fn from(s: BreakerState) -> Self {
        use sb_breaker_state::*;
        match s {
            BreakerState::Closed => SB_BREAKER_CLOSED,
            BreakerState::Open => SB_BREAKER_OPEN,
            BreakerState::HalfOpen => SB_BREAKER_HALF_OPEN,
            BreakerState::ForcedOpen => SB_BREAKER_FORCED_OPEN,
            BreakerState::Disabled => SB_BREAKER_DISABLED,
            BreakerState::MetricsOnly => SB_BREAKER_METRICS_ONLY,
        }
    }
}

/// The state of an endpoint (or a connection). The numbers are stable; the names
/// (`sb_conn_state_str`) are the same in every language.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum sb_conn_state {
    /// Nothing open and nothing happening, e.g. before the first connect ("idle").
    SB_CONN_IDLE = 0,
    /// A first connect is in flight ("connecting").
    SB_CONN_CONNECTING = 1,
    /// Open and usable ("connected").
    SB_CONN_CONNECTED = 2,
    /// A connect failed; reconnects go on with backoff ("reconnecting").
    SB_CONN_RECONNECTING = 3,
    /// Being closed, e.g. drained ("disconnecting").
    SB_CONN_DISCONNECTING = 4,
    /// Closed on purpose ("disconnected").
    SB_CONN_DISCONNECTED = 5,
    /// Broken, or refused by an open breaker ("failed").
    SB_CONN_FAILED = 6,
}

impl From<ConnState> for sb_conn_state {
    fn from(s: ConnState) -> Self {
        use sb_conn_state::*;
        match s {
            ConnState::Idle => SB_CONN_IDLE,
            ConnState::Connecting => SB_CONN_CONNECTING,
            ConnState::Connected => SB_CONN_CONNECTED,
            ConnState::Reconnecting => SB_CONN_RECONNECTING,
            ConnState::Disconnecting => SB_CONN_DISCONNECTING,
            ConnState::Disconnected => SB_CONN_DISCONNECTED,
            ConnState::Failed => SB_CONN_FAILED,
        }
    }
}

/// How warm an endpoint is (`sb_endpoint_health.warming`): whether the next caller
/// finds a connection open to it or pays for a connect. The numbers are stable; the
/// names (`sb_warming_state_str`) are the same in every language.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum sb_warming_state {
    /// No connection open to it and none being opened ("cold").
    SB_WARMING_COLD = 0,
    /// Connects to it are in flight, or fewer are open than its share of the pool's
    /// `pool.min_idle` (`min_idle / endpoints`, rounded down) ("warming").
    SB_WARMING_WARMING = 1,
    /// Open, its share of `pool.min_idle` met, nothing being opened ("warm").
    SB_WARMING_WARM = 2,
}

impl From<Warming> for sb_warming_state {
    fn from(w: Warming) -> Self {
        use sb_warming_state::*;
        match w {
            Warming::Cold => SB_WARMING_COLD,
            Warming::Warming => SB_WARMING_WARMING,
            Warming::Warm => SB_WARMING_WARM,
        }
    }
}

/// An operator's command to circuit breakers (`sb_pool_breaker_op`). The numbers are
/// stable.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum sb_breaker_op {
    /// Refuse every connect until reset (state `SB_BREAKER_FORCED_OPEN`); the
    /// endpoint's idle connections are closed, leased ones when released.
    SB_BREAKER_OP_FORCE_OPEN = 1,
    /// Allow every connect and record nothing (`SB_BREAKER_DISABLED`).
    SB_BREAKER_OP_DISABLE = 2,
    /// Allow every connect, record and report, never block
    /// (`SB_BREAKER_METRICS_ONLY`).
    SB_BREAKER_OP_METRICS_ONLY = 3,
    /// Back to `SB_BREAKER_CLOSED` with an empty window and the first open wait.
    SB_BREAKER_OP_RESET = 4,
}

/// Size of `sb_endpoint_health.endpoint` in bytes, NUL included. Longer names are
/// truncated (use `sb_pool_select_best` or `sb_lease_endpoint` for a whole name).
pub const SB_ENDPOINT_LEN: usize = 256;
/// Size of `sb_endpoint_health.last_error` in bytes, NUL included. Longer messages
/// are truncated.
pub const SB_ENDPOINT_ERROR_LEN: usize = 512;

pub(crate) fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn unix_ns(t: Option<SystemTime>) -> u64 {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, ns)
}

/// One endpoint's health, filled by value by `sb_pool_endpoint_health` and
/// `sb_pool_healthy_endpoints` (no pointers inside; nothing to free). Strings are
/// copied into the fixed arrays, truncated at a UTF-8 character boundary, always
/// NUL-terminated. Times are wall-clock nanoseconds since the Unix epoch, 0 for
/// "never"; durations are nanoseconds.
///
/// Versioning as for `sb_pool_stats`: set `struct_size = sizeof(sb_endpoint_health)`
/// before the call; the library fills only the fields that fit and sets `struct_size`
/// to the number of bytes it filled. Fields are only ever added at the end.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct sb_endpoint_health {
    /// In: the size of the caller's struct (`sizeof(sb_endpoint_health)`). Out: the
    /// number of bytes filled.
    pub struct_size: usize,
    /// The endpoint as written in the pool's target (`tcp://host:port`).
    pub endpoint: [c_char; SB_ENDPOINT_LEN],
    /// Its state (an `sb_conn_state`).
    pub state: sb_conn_state,
    /// Its breaker's state (an `sb_breaker_state`).
    pub breaker: sb_breaker_state,
    /// Quality score in [0, 1], higher is better: success rate and latency together.
    pub quality: f64,
    /// Success rate (moving average) in [0, 1].
    pub success_rate: f64,
    /// Moving average of the latency of successful calls, in nanoseconds; 0 before
    /// the first.
    pub latency_ewma_ns: u64,
    /// Calls recorded (connects, probes, health checks, reported calls).
    pub calls: u64,
    /// Of them, failed.
    pub failures: u64,
    /// Reconnect attempts.
    pub reconnects: u64,
    /// Health checks run.
    pub checks: u64,
    /// Of them, failed.
    pub checks_failed: u64,
    /// Times the breaker opened.
    pub breaker_opened: u64,
    /// Breaker state changes.
    pub breaker_transitions: u64,
    /// Connects the breaker refused.
    pub breaker_rejected: u64,
    /// Connections open to the endpoint now.
    pub open_connections: u64,
    /// Of them, leased now.
    pub in_flight: u64,
    /// When the last call succeeded (0: never).
    pub last_success_unix_ns: u64,
    /// Connected without a failure since (0: not connected).
    pub connected_since_unix_ns: u64,
    /// How long until the next reconnect may start, when backing off (0: not backing
    /// off).
    pub backoff_remaining_ns: u64,
    /// The last failure's message ("" when none).
    pub last_error: [c_char; SB_ENDPOINT_ERROR_LEN],
    /// How warm it is (an `sb_warming_state`). Appended after `last_error`: a caller
    /// built against an older header has a smaller `struct_size` and does not get it.
    pub warming: sb_warming_state,
}

impl From<&EndpointHealth> for sb_endpoint_health {
    fn from(e: &EndpointHealth) -> Self {
        let mut out = sb_endpoint_health {
            struct_size: std::mem::size_of::<sb_endpoint_health>(),
            endpoint: [0; SB_ENDPOINT_LEN],
            state: e.state.into(),
            breaker: e.breaker.into(),
            quality: e.quality,
            success_rate: e.success_rate,
            latency_ewma_ns: e.latency_ewma.map_or(0, ns),
            calls: e.calls,
            failures: e.failures,
            reconnects: e.reconnects,
            checks: e.checks,
            checks_failed: e.checks_failed,
            breaker_opened: e.breaker_opened,
            breaker_transitions: e.breaker_transitions,
            breaker_rejected: e.breaker_rejected,
            open_connections: e.open_connections as u64,
            in_flight: e.in_flight as u64,
            last_success_unix_ns: unix_ns(e.last_success),
            connected_since_unix_ns: unix_ns(e.connected_since),
            backoff_remaining_ns: e.backoff_remaining.map_or(0, ns),
            last_error: [0; SB_ENDPOINT_ERROR_LEN],
            warming: e.warming.into(),
        };
        copy_str(&mut out.endpoint, &e.endpoint);
        copy_str(&mut out.last_error, e.last_error.as_deref().unwrap_or(""));
        out
    }
}

fn write_endpoint(out: *mut sb_endpoint_health, src: &sb_endpoint_health, room: usize) {
    write_prefix!(
        sb_endpoint_health,
        out,
        src,
        room,
        [
            struct_size,
            endpoint,
            state,
            breaker,
            quality,
            success_rate,
            latency_ewma_ns,
            calls,
            failures,
            reconnects,
            checks,
            checks_failed,
            breaker_opened,
            breaker_transitions,
            breaker_rejected,
            open_connections,
            in_flight,
            last_success_unix_ns,
            connected_since_unix_ns,
            backoff_remaining_ns,
            last_error,
            warming,
        ]
    );
}

/// A pool's health totals, filled by value by `sb_pool_get_health`; the endpoints
/// themselves come from `sb_pool_endpoint_health`. Versioned like
/// `sb_endpoint_health` (set `struct_size` first).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct sb_pool_health {
    /// In: the size of the caller's struct (`sizeof(sb_pool_health)`). Out: the
    /// number of bytes filled.
    pub struct_size: usize,
    /// How many endpoints the pool has (the valid indexes of
    /// `sb_pool_endpoint_health` are 0 to `endpoint_count - 1`, in target order).
    pub endpoint_count: u64,
    /// Calls recorded over all endpoints.
    pub calls: u64,
    /// Of them, failed.
    pub failures: u64,
    /// `1 - failures / calls` (1 with no calls).
    pub success_rate: f64,
    /// Reconnect attempts over all endpoints.
    pub reconnects: u64,
    /// The latest success of any endpoint (0: never).
    pub last_success_unix_ns: u64,
    /// The earliest `connected_since` of the connected endpoints (0: none connected).
    pub connected_since_unix_ns: u64,
}

impl From<&HealthReport> for sb_pool_health {
    fn from(h: &HealthReport) -> Self {
        sb_pool_health {
            struct_size: std::mem::size_of::<sb_pool_health>(),
            endpoint_count: h.endpoints.len() as u64,
            calls: h.calls,
            failures: h.failures,
            success_rate: h.success_rate,
            reconnects: h.reconnects,
            last_success_unix_ns: unix_ns(h.last_success),
            connected_since_unix_ns: unix_ns(h.connected_since),
        }
    }
}

/// An optional endpoint name argument: NULL is `None`.
///
/// # Safety
///
/// `p` must be NULL or a NUL-terminated string valid for `'a`.
unsafe fn opt_endpoint<'a>(p: *const c_char) -> Result<Option<&'a str>, Error> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded caller's contract.
        unsafe { str_arg(p, "endpoint") }.map(Some)
    }
}

/// Fills `*out` with the pool's health totals and its number of endpoints (set
/// `out->struct_size = sizeof *out` first). Does not wait; may be called from any
/// thread, including callbacks, and on a closed pool.
///
/// Returns `SB_INVALID_ARGUMENT` when `out` is NULL or `out->struct_size` is not set.
///
/// # Safety
///
/// `out` must be NULL (rejected) or point to `out->struct_size` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_pool_get_health(
    pool: *const sb_pool,
    out: *mut sb_pool_health,
) -> sb_status {
    guard("sb_pool_get_health", || {
        let p = POOLS.get(addr(pool))?;
        check_out(out, "out")?;
        // SAFETY: non-NULL; readable struct_size by the caller's contract.
        let room = unsafe { struct_room(out, "sb_pool_health") }?;
        let mut full = sb_pool_health::from(&p.0.health());
        let filled = room.min(std::mem::size_of::<sb_pool_health>());
        full.struct_size = filled;
        write_prefix!(
            sb_pool_health,
            out,
            &full,
            filled,
            [
                struct_size,
                endpoint_count,
                calls,
                failures,
                success_rate,
                reconnects,
                last_success_unix_ns,
                connected_since_unix_ns,
            ]
        );
        Ok(())
    })
}

/// Fills `*out` with the health of the pool's endpoint number `index` (0-based, in
/// the order of the pool's target; `sb_pool_get_health` gives the count). Set
/// `out->struct_size = sizeof *out` first. Does not wait.
///
/// Returns `SB_NOT_FOUND` when `index` is not below the number of endpoints,
/// `SB_INVALID_ARGUMENT` when `out` is NULL or `out->struct_size` is not set.
///
/// # Safety
///
/// `out` must be NULL (rejected) or point to `out->struct_size` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_pool_endpoint_health(
    pool: *const sb_pool,
    index: usize,
    out: *mut sb_endpoint_health,
) -> sb_status {
    guard("sb_pool_endpoint_health", || {
        let p = POOLS.get(addr(pool))?;
        check_out(out, "out")?;
        // SAFETY: non-NULL; readable struct_size by the caller's contract.
        let room = unsafe { struct_room(out, "sb_endpoint_health") }?;
        let report = p.0.health();
        let Some(e) = report.endpoints.get(index) else {
            return Err(Error::not_found(format!(
                "pool \"{}\" has no endpoint number {index}; it has {} (indexes 0 to {})",
                report.pool,
                report.endpoints.len(),
                report.endpoints.len().saturating_sub(1)
            )));
        };
        let mut full = sb_endpoint_health::from(e);
        let filled = room.min(std::mem::size_of::<sb_endpoint_health>());
        full.struct_size = filled;
        write_endpoint(out, &full, filled);
        Ok(())
    })
}

/// Fills `out[0..*count]` with the endpoints that can take connections now (breaker
/// not refusing, not failed), best quality first. `out` is an array of `cap`
/// structs; set `out[0].struct_size = sizeof out[0]` first: it is the size of each
/// element (the array's stride), and every filled element gets the filled size.
///
/// `*count` always receives how many endpoints are healthy. When more than `cap`
/// are, returns `SB_RESOURCE_EXHAUSTED` and fills nothing: call again with a larger
/// array (`endpoint_count` of `sb_pool_get_health` is always enough). `out` may be NULL
/// when `cap` is 0, to ask for the count. Does not wait.
///
/// Returns `SB_INVALID_ARGUMENT` for a NULL `count`, a NULL `out` with `cap > 0` or
/// an unset `out[0].struct_size`.
///
/// # Safety
///
/// `out` must be NULL with `cap` 0, or point to `cap` structs of
/// `out[0].struct_size` writable bytes each; `count` must be NULL (rejected) or point
/// to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_pool_healthy_endpoints(
    pool: *const sb_pool,
    out: *mut sb_endpoint_health,
    cap: usize,
    count: *mut usize,
) -> sb_status {
    guard("sb_pool_healthy_endpoints", || {
        let p = POOLS.get(addr(pool))?;
        check_out(count, "count")?;
        if out.is_null() && cap > 0 {
            return Err(null_arg("out"));
        }
        let stride = if cap > 0 {
            // SAFETY: non-NULL; out[0].struct_size readable by the caller's contract.
            unsafe { struct_room(out, "sb_endpoint_health") }?
        } else {
            0
        };
        let healthy = p.0.healthy_endpoints();
        // SAFETY: checked non-NULL above; writable by the caller's contract.
        unsafe { write_out(count, healthy.len()) };
        if healthy.len() > cap {
            return Err(Error::new(
                switchboard_core::Code::ResourceExhausted,
                format!(
                    "{} endpoints are healthy; out has room for {cap}",
                    healthy.len()
                ),
            ));
        }
        let filled = stride.min(std::mem::size_of::<sb_endpoint_health>());
        for (i, e) in healthy.iter().enumerate() {
            let mut full = sb_endpoint_health::from(e);
            full.struct_size = filled;
            // SAFETY: i < cap elements of `stride` bytes each by the caller's
            // contract; the element may be unaligned for a caller's odd stride,
            // which write_prefix handles (unaligned writes).
            let elem = unsafe { out.cast::<u8>().add(i * stride) }.cast::<sb_endpoint_health>();
            write_endpoint(elem, &full, filled);
        }
        Ok(())
    })
}

/// Copies into `buf` the name of the endpoint the pool would pick now for a new
/// connection among `candidates` (`n` endpoint names as written in the pool's target;
/// `n` 0: all its endpoints): power of two choices on in-flight load and quality,
/// skipping endpoints whose breaker refuses or that are backing off. Nothing is
/// connected or reserved.
///
/// `*written` (if not NULL) always receives the size the name needs with its NUL;
/// when that exceeds `len`, returns `SB_RESOURCE_EXHAUSTED` and copies nothing.
///
/// Returns `SB_NOT_FOUND` for a candidate that is not an endpoint of the pool,
/// `SB_UNAVAILABLE` when none of them can take a connection now (the message says
/// why for each), `SB_INVALID_ARGUMENT` for a NULL `candidates` with `n > 0` or a
/// NULL among them.
///
/// # Safety
///
/// `candidates` must be NULL with `n` 0, or point to `n` pointers that are NULL
/// (rejected) or NUL-terminated strings; `buf` must point to `len` writable bytes
/// (or `len` be 0); `written` must be NULL or point to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_pool_select_best(
    pool: *const sb_pool,
    candidates: *const *const c_char,
    n: usize,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> sb_status {
    guard("sb_pool_select_best", || {
        let p = POOLS.get(addr(pool))?;
        if candidates.is_null() && n > 0 {
            return Err(null_arg("candidates"));
        }
        if buf.is_null() && len > 0 {
            return Err(null_arg("buf"));
        }
        let mut names = Vec::with_capacity(n.min(1024));
        for i in 0..n {
            // SAFETY: `n` readable pointers by the caller's contract.
            let c = unsafe { *candidates.add(i) };
            // SAFETY: NULL or NUL-terminated by the caller's contract.
            names.push(unsafe { str_arg(c, &format!("candidates[{i}]")) }?);
        }
        let best = p.0.select_best(&names)?;
        // SAFETY: forwarded caller's contract for buf, len and written.
        unsafe { copy_str_out(&best, buf, len, written, "the endpoint name") }
    })
}

/// Stores the breaker state of `endpoint` (a name as written in the pool's target;
/// NULL: the pool's only endpoint) in `*out`. Does not wait.
///
/// Returns `SB_NOT_FOUND` for an endpoint that is not the pool's (the message lists
/// them), `SB_INVALID_ARGUMENT` for NULL when the pool has several endpoints, or a
/// NULL `out`.
///
/// # Safety
///
/// `endpoint` must be NULL or a NUL-terminated string; `out` must be NULL (rejected)
/// or point to a writable `sb_breaker_state`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_pool_breaker_state(
    pool: *const sb_pool,
    endpoint: *const c_char,
    out: *mut sb_breaker_state,
) -> sb_status {
    guard("sb_pool_breaker_state", || {
        let p = POOLS.get(addr(pool))?;
        // SAFETY: forwarded caller's contract.
        let endpoint = unsafe { opt_endpoint(endpoint) }?;
        check_out(out, "out")?;
        let state = p.0.breaker_state(endpoint)?;
        // SAFETY: checked non-NULL above; writable by the caller's contract.
        unsafe { write_out(out, state.into()) };
        Ok(())
    })
}

/// An operator's command `op` (an `sb_breaker_op`) to the breaker of `endpoint` (a
/// name as written in the pool's target; NULL: every endpoint of the pool): force it
/// open, disable it, set it to metrics only, or reset it to closed. Takes effect at
/// once; emits `breaker_state` events. Does not wait.
///
/// Returns `SB_INVALID_ARGUMENT` for an `op` that is not an `sb_breaker_op` (the
/// parameter is a plain integer so that any value is safe), `SB_NOT_FOUND` for an
/// endpoint that is not the pool's.
///
/// # Safety
///
/// `endpoint` must be NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_pool_breaker_op(
    pool: *mut sb_pool,
    endpoint: *const c_char,
    op: i32,
) -> sb_status {
    guard("sb_pool_breaker_op", || {
        let p = POOLS.get(addr(pool))?;
        // SAFETY: forwarded caller's contract.
        let endpoint = unsafe { opt_endpoint(endpoint) }?;
        use sb_breaker_op::*;
        let op = match op {
            x if x == SB_BREAKER_OP_FORCE_OPEN as i32 => BreakerOp::ForceOpen,
            x if x == SB_BREAKER_OP_DISABLE as i32 => BreakerOp::Disable,
            x if x == SB_BREAKER_OP_METRICS_ONLY as i32 => BreakerOp::MetricsOnly,
            x if x == SB_BREAKER_OP_RESET as i32 => BreakerOp::Reset,
            _ => {
                return Err(Error::invalid_argument(format!(
                    "op {op} is not an sb_breaker_op; expected SB_BREAKER_OP_FORCE_OPEN (1), \
                     SB_BREAKER_OP_DISABLE (2), SB_BREAKER_OP_METRICS_ONLY (3) or \
                     SB_BREAKER_OP_RESET (4)"
                )));
            }
        };
        p.0.breaker_op(endpoint, op)
    })
}

/// Forgets every endpoint's connect failures: the next connect may start at once, and
/// later delays start from `backoff.initial` again (e.g. after the program learns
/// that a server is back). Breakers are not changed (`sb_pool_breaker_op` with
/// `SB_BREAKER_OP_RESET` does that). Does not wait.
#[unsafe(no_mangle)]
pub extern "C" fn sb_pool_reset_backoff(pool: *mut sb_pool) -> sb_status {
    guard("sb_pool_reset_backoff", || {
        POOLS.get(addr(pool))?.0.reset_backoff();
        Ok(())
    })
}

/// Closes the connections of one endpoint (a name as written in the pool's target):
/// idle ones now, leased ones when they are released, e.g. before taking it out of
/// service. New connections go wherever the pool chooses, which may be that endpoint
/// again. Does not wait.
///
/// Returns `SB_NOT_FOUND` for an endpoint that is not the pool's,
/// `SB_INVALID_ARGUMENT` for NULL.
///
/// # Safety
///
/// `endpoint` must be NULL (rejected) or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_pool_drain(pool: *mut sb_pool, endpoint: *const c_char) -> sb_status {
    guard("sb_pool_drain", || {
        let p = POOLS.get(addr(pool))?;
        // SAFETY: forwarded caller's contract.
        let endpoint = unsafe { str_arg(endpoint, "endpoint") }?;
        p.0.drain(endpoint)
    })
}

/// Runs every endpoint's health check now, on the calling thread, and waits for them
/// (the pool runs them on its own every `health.interval`): probes an idle connection
/// of each endpoint (`probe.send`/`probe.expect`, the check callback of a custom
/// pool, or the liveness check of a socket), or reconnects an endpoint that is
/// reconnecting or failed when its backoff and breaker allow. Results go to the
/// endpoints' health records and breakers, and `health_check` events are emitted.
/// A failed check is not an error of this call.
///
/// Returns `SB_FAILED_PRECONDITION` when called from a callback on switchboard's
/// threads, `SB_UNAVAILABLE` once the manager is closed.
#[unsafe(no_mangle)]
pub extern "C" fn sb_pool_run_health_checks(pool: *mut sb_pool) -> sb_status {
    guard("sb_pool_run_health_checks", || {
        POOLS.get(addr(pool))?.0.run_health_checks_blocking()
    })
}

/// The stable name of a breaker state (`"closed"`, `"open"`, `"half_open"`,
/// `"forced_open"`, `"disabled"`, `"metrics_only"`; the same in every language, and
/// in `sb_event.old_state` / `new_state`), or `"unknown"`. Static: never free it.
#[unsafe(no_mangle)]
pub extern "C" fn sb_breaker_state_str(state: i32) -> *const c_char {
    let s: &'static [u8] = match u8::try_from(state).ok().and_then(BreakerState::from_u8) {
        Some(BreakerState::Closed) => b"closed\0",
        Some(BreakerState::Open) => b"open\0",
        Some(BreakerState::HalfOpen) => b"half_open\0",
        Some(BreakerState::ForcedOpen) => b"forced_open\0",
        Some(BreakerState::Disabled) => b"disabled\0",
        Some(BreakerState::MetricsOnly) => b"metrics_only\0",
        None => b"unknown\0",
    };
    s.as_ptr().cast()
}

/// The stable name of an endpoint or connection state (`"idle"`, `"connecting"`,
/// `"connected"`, `"reconnecting"`, `"disconnecting"`, `"disconnected"`,
/// `"failed"`; the same in every language and in events), or `"unknown"`. Static:
/// never free it.
#[unsafe(no_mangle)]
pub extern "C" fn sb_conn_state_str(state: i32) -> *const c_char {
    let s: &'static [u8] = match u8::try_from(state).ok().and_then(ConnState::from_u8) {
        Some(ConnState::Idle) => b"idle\0",
        Some(ConnState::Connecting) => b"connecting\0",
        Some(ConnState::Connected) => b"connected\0",
        Some(ConnState::Reconnecting) => b"reconnecting\0",
        Some(ConnState::Disconnecting) => b"disconnecting\0",
        Some(ConnState::Disconnected) => b"disconnected\0",
        Some(ConnState::Failed) => b"failed\0",
        None => b"unknown\0",
    };
    s.as_ptr().cast()
}

/// The stable name of a warming state (`"cold"`, `"warming"`, `"warm"`; the same in
/// every language), or `"unknown"`. Static: never free it.
#[unsafe(no_mangle)]
pub extern "C" fn sb_warming_state_str(state: i32) -> *const c_char {
    let s: &'static [u8] = match u8::try_from(state).ok().and_then(Warming::from_u8) {
        Some(Warming::Cold) => b"cold\0",
        Some(Warming::Warming) => b"warming\0",
        Some(Warming::Warm) => b"warm\0",
        None => b"unknown\0",
    };
    s.as_ptr().cast()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn state_names_are_cores() {
        for s in BreakerState::ALL {
            let c = sb_breaker_state::from(s) as i32;
            assert_eq!(c, s as i32);
            // SAFETY: static NUL-terminated strings.
            let name = unsafe { CStr::from_ptr(sb_breaker_state_str(c)) };
            assert_eq!(name.to_str().unwrap(), s.as_str());
        }
        for s in ConnState::ALL {
            let c = sb_conn_state::from(s) as i32;
            assert_eq!(c, s as i32);
            // SAFETY: static NUL-terminated strings.
            let name = unsafe { CStr::from_ptr(sb_conn_state_str(c)) };
            assert_eq!(name.to_str().unwrap(), s.as_str());
        }
        for bad in [-1, 6, 7, 255, 256, i32::MAX] {
            // SAFETY: static NUL-terminated strings.
            let b = unsafe { CStr::from_ptr(sb_breaker_state_str(bad)) };
            assert_eq!(b.to_str().unwrap(), "unknown");
        }
        // SAFETY: static NUL-terminated string.
        let c = unsafe { CStr::from_ptr(sb_conn_state_str(7)) };
        assert_eq!(c.to_str().unwrap(), "unknown");
        for w in Warming::ALL {
            let c = sb_warming_state::from(w) as i32;
            assert_eq!(c, w as i32);
            // SAFETY: static NUL-terminated strings.
            let name = unsafe { CStr::from_ptr(sb_warming_state_str(c)) };
            assert_eq!(name.to_str().unwrap(), w.as_str());
        }
        for bad in [-1, 3, 256] {
            // SAFETY: static NUL-terminated strings.
            let w = unsafe { CStr::from_ptr(sb_warming_state_str(bad)) };
            assert_eq!(w.to_str().unwrap(), "unknown");
        }
    }
}

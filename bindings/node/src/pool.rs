//! `NativePool`: one pool of built-in sockets or of the program's own objects.

use std::sync::Arc;

use napi::Env;
use napi::bindgen_prelude::{Either, Object};
use napi_derive::napi;
use switchboard_core::metrics::HistogramSnapshot;
use switchboard_core::{AcquireOptions, AnyConnector, BreakerOp, Pool};

use crate::custom::Bridge;
use crate::error::{Result, guard, sb_error, to_napi};
use crate::health::{NativeEndpointHealth, NativeHealthReport, endpoint_list, ms};
use crate::lease::NativeLease;
use crate::manager::duration;
use crate::settle::Settle;

/// The pool type for both kinds: custom connections are ids into `index.js`'s map.
pub type CorePool = Pool<AnyConnector<u64>>;

/// Connections closed, by reason (core's `ClosedByReason`).
#[napi(object)]
pub struct ClosedBy {
    /// Found dead on checkout, or a failed check/probe.
    pub broken: f64,
    /// Idle past `pool.idle_timeout`.
    pub idle: f64,
    /// Past `pool.max_lifetime`.
    pub lifetime: f64,
    /// Beyond `max_size` on return (`pool.max_overflow`, or after a shrinking resize).
    pub overflow: f64,
    /// By `evictAll()`.
    pub evicted: f64,
    /// By `lease.discard()`.
    pub discarded: f64,
    /// By closing the pool or manager.
    pub closed: f64,
}

/// A latency summary of one of core's histograms, in milliseconds (fractional).
#[napi(object)]
pub struct LatencySummary {
    /// Observations.
    pub count: f64,
    /// Mean, 0 without observations.
    pub avg: f64,
    /// The largest observation.
    pub peak: f64,
    /// Median (interpolated within its histogram bucket, capped at `peak`).
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl From<&HistogramSnapshot> for LatencySummary {
    fn from(h: &HistogramSnapshot) -> Self {
        LatencySummary {
            count: h.count() as f64,
            avg: ms(h.avg()),
            peak: ms(h.max()),
            p50: ms(h.quantile(0.5)),
            p90: ms(h.quantile(0.9)),
            p99: ms(h.quantile(0.99)),
        }
    }
}

/// A snapshot of a pool's state and counters (core's `PoolStats`, camelCase in JS).
#[napi(object)]
pub struct PoolStats {
    /// The pool's name.
    pub name: String,
    /// `pool.max_size` now.
    pub max_size: u32,
    /// `pool.min_idle` now.
    pub min_idle: u32,
    /// `pool.max_overflow`.
    pub max_overflow: u32,
    /// Open connections plus connects in flight.
    pub size: u32,
    /// Idle connections.
    pub idle: u32,
    /// Connections handed out.
    pub leased: u32,
    /// Callers waiting for a connection.
    pub waiting: u32,
    /// Connects in flight.
    pub connecting: u32,
    /// Connections opened, ever.
    pub created_total: f64,
    /// Connections closed, ever (the sum of `closedBy`).
    pub closed_total: f64,
    /// Connections closed, by reason.
    pub closed_by: ClosedBy,
    /// Successful acquires (`acquiredDirectTotal + acquiredWaitedTotal`).
    pub acquired_total: f64,
    /// Acquires served at once from an idle connection.
    pub acquired_direct_total: f64,
    /// Acquires that waited in line.
    pub acquired_waited_total: f64,
    /// Acquires that timed out.
    pub timed_out_total: f64,
    /// Acquires rejected because the wait queue was full.
    pub rejected_total: f64,
    /// Connect attempts that failed.
    pub connect_failed_total: f64,
    /// Checks or probes that failed (the connection was closed as broken).
    pub probe_failed_total: f64,
    /// How long successful acquires waited.
    pub wait: LatencySummary,
    /// How long leases were held (recorded when they come back).
    pub lease: LatencySummary,
    /// Each endpoint's health, in target order (same as `health().endpoints`).
    pub endpoints: Vec<NativeEndpointHealth>,
}

fn n32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The native pool.
#[napi]
pub struct NativePool {
    pool: CorePool,
    /// The way into JS of a custom pool's callbacks.
    bridge: Option<Arc<Bridge>>,
}

impl NativePool {
    pub fn new(pool: CorePool, bridge: Option<Arc<Bridge>>) -> Self {
        NativePool { pool, bridge }
    }

    /// `try_acquire` that never blocks the JS thread: a connection idle past
    /// `validate_after` is not checked here (a custom check runs on this very thread,
    /// which would wait for itself) but left for `acquire`, which checks it on the
    /// runtime (core's `try_acquire_ready`).
    fn try_acquire_now(&self) -> Result<Option<NativeLease>> {
        let lease = self.pool.try_acquire_ready().map_err(to_napi)?;
        Ok(lease.map(|l| NativeLease::new(l, self.pool.runtime().clone())))
    }
}

/// Per-call acquire options from JS (the timeout as a duration string).
fn acquire_options(timeout: Option<String>, priority: Option<i32>) -> Result<AcquireOptions> {
    let timeout = match timeout {
        None => None,
        Some(t) => Some(duration("acquire timeout", &t)?),
    };
    Ok(AcquireOptions {
        timeout,
        priority: priority.unwrap_or(0),
    })
}

#[napi]
impl NativePool {
    /// The pool's name.
    #[napi(getter)]
    pub fn name(&self) -> String {
        self.pool.name().to_string()
    }

    /// Whether the pool is closed.
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.pool.is_closed()
    }

    /// An idle connection if one is ready now, else `null`; never waits, never
    /// connects, never enters the runtime.
    #[napi]
    pub fn try_acquire(&self) -> Result<Option<NativeLease>> {
        guard(|| self.try_acquire_now())
    }

    /// Acquires a connection: an idle one at once (returned as a `NativeLease`, no
    /// promise), else a promise settled from the manager's runtime with a `NativeLease`
    /// or an `SB_*` error.
    #[napi]
    pub fn acquire<'env>(
        &self,
        env: &'env Env,
        timeout: Option<String>,
        priority: Option<i32>,
    ) -> Result<Either<NativeLease, Object<'env>>> {
        guard(|| {
            let opts = acquire_options(timeout, priority)?;
            if let Some(lease) = self.try_acquire_now()? {
                return Ok(Either::A(lease));
            }
            let (settle, promise) = Settle::<NativeLease>::new(env)?;
            let pool = self.pool.clone();
            let rt = pool.runtime().clone();
            let task_rt = rt.clone();
            // If the task cannot be spawned (manager closed) it is dropped unrun, and
            // the settling half with it, which rejects the promise with SB_UNAVAILABLE.
            let _ = rt.spawn(async move {
                let r = pool.acquire_on_runtime(opts).await;
                // If the promise's value is never used, the lease object's finalizer
                // returns the connection.
                settle.settle(r, move |_, lease| NativeLease::new(lease, task_rt));
            });
            Ok(Either::B(promise))
        })
    }

    /// A snapshot of the pool's state and counters.
    #[napi]
    pub fn stats(&self) -> PoolStats {
        let s = self.pool.stats();
        PoolStats {
            name: s.name,
            max_size: n32(s.max_size),
            min_idle: n32(s.min_idle),
            max_overflow: n32(s.max_overflow),
            size: n32(s.size),
            idle: n32(s.idle),
            leased: n32(s.leased),
            waiting: n32(s.waiting),
            connecting: n32(s.connecting),
            created_total: s.created_total as f64,
            closed_total: s.closed_total as f64,
            closed_by: ClosedBy {
                broken: s.closed_by.broken as f64,
                idle: s.closed_by.idle as f64,
                lifetime: s.closed_by.lifetime as f64,
                overflow: s.closed_by.overflow as f64,
                evicted: s.closed_by.evicted as f64,
                discarded: s.closed_by.discarded as f64,
                closed: s.closed_by.closed as f64,
            },
            acquired_total: s.acquired_total as f64,
            acquired_direct_total: s.acquired_direct_total as f64,
            acquired_waited_total: s.acquired_waited_total as f64,
            timed_out_total: s.timed_out_total as f64,
            rejected_total: s.rejected_total as f64,
            connect_failed_total: s.connect_failed_total as f64,
            probe_failed_total: s.probe_failed_total as f64,
            wait: LatencySummary::from(&s.wait),
            lease: LatencySummary::from(&s.lease),
            endpoints: endpoint_list(&s.endpoints),
        }
    }

    /// Changes `max_size` and `min_idle` on the live pool without dropping leases.
    #[napi]
    pub fn resize(&self, max_size: f64, min_idle: f64) -> Result<()> {
        guard(|| {
            let max = whole("resize() maxSize", max_size)?;
            let min = whole("resize() minIdle", min_idle)?;
            self.pool.resize(max, min).map_err(to_napi)
        })
    }

    /// Closes idle connections now and leased ones when they come back.
    #[napi]
    pub fn evict_all(&self) -> Result<()> {
        guard(|| {
            self.pool.evict_all();
            Ok(())
        })
    }

    /// Opens connections up to `min_idle`; resolves with how many it opened.
    #[napi]
    pub fn warm<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        guard(|| {
            let (settle, promise) = Settle::<u32>::new(env)?;
            let pool = self.pool.clone();
            let _ = self.pool.runtime().spawn(async move {
                let r = pool.warm().await;
                settle.settle(r, |_, n| n32(n));
            });
            Ok(promise)
        })
    }

    /// Runs one pass of the background upkeep now; resolves when it is done.
    #[napi]
    pub fn run_upkeep<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        guard(|| {
            let (settle, promise) = Settle::<()>::new(env)?;
            let pool = self.pool.clone();
            let _ = self.pool.runtime().spawn(async move {
                pool.run_upkeep().await;
                settle.resolve(|_| ());
            });
            Ok(promise)
        })
    }

    /// The pool's health: totals and each endpoint.
    #[napi]
    pub fn health(&self) -> Result<NativeHealthReport> {
        guard(|| Ok(NativeHealthReport::from(self.pool.health())))
    }

    /// The endpoints in good standing, best quality first.
    #[napi]
    pub fn healthy_endpoints(&self) -> Result<Vec<NativeEndpointHealth>> {
        guard(|| Ok(endpoint_list(&self.pool.healthy_endpoints())))
    }

    /// Of `candidates` (empty: every endpoint), the one the pool would pick now.
    #[napi]
    pub fn select_best(&self, candidates: Vec<String>) -> Result<String> {
        guard(|| {
            let names: Vec<&str> = candidates.iter().map(String::as_str).collect();
            self.pool.select_best(&names).map_err(to_napi)
        })
    }

    /// The breaker state of `endpoint` (`None`: the pool's only endpoint).
    #[napi]
    pub fn breaker_state(&self, endpoint: Option<String>) -> Result<String> {
        guard(|| {
            self.pool
                .breaker_state(endpoint.as_deref())
                .map(|s| s.as_str().to_string())
                .map_err(to_napi)
        })
    }

    /// An operator's command (`force_open`, `disable`, `metrics_only`, `reset`) to the
    /// breaker of `endpoint` (`None`: every endpoint).
    #[napi]
    pub fn breaker(&self, op: String, endpoint: Option<String>) -> Result<()> {
        guard(|| {
            let op: BreakerOp = op.parse().map_err(to_napi)?;
            self.pool
                .breaker_op(endpoint.as_deref(), op)
                .map_err(to_napi)
        })
    }

    /// Forgets every endpoint's failed connects: the next connect may start at once.
    #[napi]
    pub fn reset_backoff(&self) -> Result<()> {
        guard(|| {
            self.pool.reset_backoff();
            Ok(())
        })
    }

    /// Closes `endpoint`'s connections: idle ones now, leased ones when they come back.
    #[napi]
    pub fn drain(&self, endpoint: String) -> Result<()> {
        guard(|| self.pool.drain(&endpoint).map_err(to_napi))
    }

    /// Runs every endpoint's health check now on the manager's runtime; resolves when
    /// they are done (rejects with SB_UNAVAILABLE if the manager closes first).
    #[napi]
    pub fn run_health_checks<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        guard(|| {
            let (settle, promise) = Settle::<()>::new(env)?;
            let pool = self.pool.clone();
            // Not spawned (manager closed): the settling half rejects when dropped.
            let _ = self.pool.runtime().spawn(async move {
                pool.run_health_checks().await;
                settle.resolve(|_| ());
            });
            Ok(promise)
        })
    }

    /// Custom pools: queues a barrier call with `token` behind every callback queued so
    /// far; false when there is nothing to wait for (a built-in pool, or released).
    #[napi]
    pub fn flush(&self, token: f64) -> bool {
        match &self.bridge {
            Some(b) if token >= 1.0 && token.fract() == 0.0 => b.flush(token as u64),
            _ => false,
        }
    }

    /// Custom pools: releases the threadsafe function; no callback runs afterwards.
    #[napi]
    pub fn release_callbacks(&self) {
        if let Some(b) = &self.bridge {
            b.release();
        }
    }

    /// Closes the pool: waiters fail with SB_UNAVAILABLE, idle connections close now,
    /// leased ones when they come back. Closing twice is a no-op. Never blocks.
    #[napi]
    pub fn close(&self) {
        self.pool.close();
    }
}

/// A non-negative whole number from JS as usize.
fn whole(what: &str, v: f64) -> Result<usize> {
    if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= 1e15 {
        Ok(v as usize)
    } else {
        Err(sb_error(
            switchboard_core::Code::InvalidArgument,
            format!("{what} must be a non-negative integer, got {v}"),
        ))
    }
}

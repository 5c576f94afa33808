//! `_native.Pool` and `_native.AcquireTask`: a core pool, with a blocking acquire that
//! releases the GIL and an async acquire that reports through a callback.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::prelude::*;
use pyo3::types::PyDict;
use switchboard_core::metrics::HistogramSnapshot;
use switchboard_core::{
    AcquireOptions, BreakerOp, Code, EndpointHealth, Error, HealthReport, Manager, PoolStats,
};
use tokio::task::AbortHandle;

use crate::config;
use crate::custom::{Causes, CoreLease, CorePool};
use crate::errors::{self, OrRaise};
use crate::lease::PyLease;
use crate::manager::{drop_detached, epoch_seconds};

/// The native pool. Python code uses `switchboard.Pool`, which wraps it.
#[pyclass(frozen, name = "Pool", module = "switchboard._native")]
pub struct PyPool {
    pool: CorePool,
    /// Keeps the manager (and its runtime) alive as long as a pool of it is reachable
    /// from Python, even if the `Manager` object itself was dropped. `Option` only so
    /// that `Drop` can move it out and drop it with the GIL released.
    manager: Option<Manager>,
    target: String,
    name: Arc<str>,
    /// For a custom pool: the Python exceptions behind recent callback failures.
    causes: Option<Arc<Causes>>,
    /// Whether the connector has a check (probe or check callback): then even taking an
    /// idle connection may run it, so the GIL is released first.
    has_check: bool,
}

impl PyPool {
    pub(crate) fn new(
        pool: CorePool,
        manager: Manager,
        target: String,
        causes: Option<Arc<Causes>>,
    ) -> Self {
        use switchboard_core::Connector;
        PyPool {
            name: Arc::from(pool.name()),
            has_check: pool.connector().has_check(),
            pool,
            manager: Some(manager),
            target,
            causes,
        }
    }

    /// `err` as a Python exception, with the callback's own exception as `__cause__`
    /// when a custom connect or check raised it.
    fn error(&self, py: Python<'_>, err: &Error) -> PyErr {
        to_pyerr_with_cause(py, err, self.causes.as_deref())
    }

    fn lease(&self, lease: CoreLease) -> PyLease {
        PyLease::new(lease, self.name.clone())
    }
}

pub(crate) fn to_pyerr_with_cause(py: Python<'_>, err: &Error, causes: Option<&Causes>) -> PyErr {
    let exc = errors::to_pyerr(py, err);
    if let Some(cause) = causes.and_then(|c| c.take(py, err)) {
        exc.set_cause(py, Some(PyErr::from_value(cause.into_bound(py))));
    }
    exc
}

fn options(py: Python<'_>, timeout: Option<f64>, priority: i32) -> PyResult<AcquireOptions> {
    Ok(AcquireOptions {
        timeout: config::seconds(py, "timeout", timeout)?,
        priority,
    })
}

#[pymethods]
impl PyPool {
    /// The pool's name.
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// The target it was created with.
    #[getter]
    fn target(&self) -> &str {
        &self.target
    }

    /// Whether the pool (or its manager) is closed.
    #[getter]
    fn closed(&self) -> bool {
        self.pool.is_closed()
    }

    /// Acquires a connection, waiting up to `timeout` seconds (default: the pool's
    /// `acquire_timeout`) on the calling thread with the GIL released.
    #[pyo3(signature = (timeout=None, priority=0))]
    fn acquire(&self, py: Python<'_>, timeout: Option<f64>, priority: i32) -> PyResult<PyLease> {
        let opts = options(py, timeout, priority)?;
        // An idle connection is handed out without waiting, so without releasing the
        // GIL (unless taking it may run a probe or a Python check).
        if !self.has_check {
            if let Some(lease) = self.pool.try_acquire().map_err(|e| self.error(py, &e))? {
                return Ok(self.lease(lease));
            }
        }
        let pool = &self.pool;
        let lease = py
            .detach(|| pool.acquire_blocking(opts))
            .map_err(|e| self.error(py, &e))?;
        Ok(self.lease(lease))
    }

    /// An idle connection if one is ready now, else `None`. Never waits for one (it
    /// may probe or check an idle connection first, with the GIL released).
    fn try_acquire(&self, py: Python<'_>) -> PyResult<Option<PyLease>> {
        let lease = if self.has_check {
            let pool = &self.pool;
            py.detach(|| pool.try_acquire())
        } else {
            self.pool.try_acquire()
        };
        let lease = lease.map_err(|e| self.error(py, &e))?;
        Ok(lease.map(|l| self.lease(l)))
    }

    /// Starts an acquire on the manager's runtime and returns at once. When it ends,
    /// `callback(lease, None)` or `callback(None, exception)` is called on a runtime
    /// thread with the GIL held; it is called exactly once, also when the task is
    /// cancelled (with `Cancelled`) or the manager closes under it (`Unavailable`).
    /// A lease the callback does not keep is returned to the pool when it is
    /// garbage-collected, so the callback should release it explicitly when unwanted.
    #[pyo3(signature = (timeout, priority, callback))]
    fn acquire_async(
        &self,
        py: Python<'_>,
        timeout: Option<f64>,
        priority: i32,
        callback: Py<PyAny>,
    ) -> PyResult<PyAcquireTask> {
        let opts = options(py, timeout, priority)?;
        let cancelled = Arc::new(AtomicBool::new(false));
        let mut reply = Reply {
            callback: Some(callback),
            cancelled: cancelled.clone(),
            pool_name: self.name.clone(),
            causes: self.causes.clone(),
        };
        let pool = self.pool.clone();
        let spawned = self.pool.runtime().spawn(async move {
            let result = pool.acquire_on_runtime(opts).await;
            reply.send(result);
        });
        // If the runtime is closed the task was dropped unrun, and its `Reply` has
        // already reported Unavailable through the callback.
        Ok(PyAcquireTask {
            abort: spawned.ok().map(|h| h.abort_handle()),
            cancelled,
        })
    }

    /// A snapshot of the pool's state and counters, as a dict (the package turns it
    /// into `switchboard.PoolStats`).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        stats_dict(py, self.pool.stats())
    }

    /// Changes `max_size` and `min_idle` on the live pool without dropping leases.
    #[pyo3(signature = (max_size, min_idle=0))]
    fn resize(&self, py: Python<'_>, max_size: i64, min_idle: i64) -> PyResult<()> {
        let size = |key: &str, v: i64| {
            usize::try_from(v)
                .map_err(|_| {
                    Error::invalid_argument(format!(
                        "pool.{key} must be a non-negative integer, got {v}"
                    ))
                })
                .or_raise(py)
        };
        let (max_size, min_idle) = (size("max_size", max_size)?, size("min_idle", min_idle)?);
        let pool = &self.pool;
        py.detach(|| pool.resize(max_size, min_idle)).or_raise(py)
    }

    /// Closes idle connections now and leased ones when they come back.
    fn evict_all(&self, py: Python<'_>) {
        let pool = &self.pool;
        py.detach(|| pool.evict_all());
    }

    /// Opens connections until `min_idle` are idle; returns how many it opened. Waits
    /// on the calling thread with the GIL released.
    fn warm(&self, py: Python<'_>) -> PyResult<usize> {
        let pool = &self.pool;
        py.detach(|| pool.warm_blocking())
            .map_err(|e| self.error(py, &e))
    }

    /// Starts `warm()` on the manager's runtime; `callback(opened, None)` or
    /// `callback(None, exception)` is called once on a runtime thread with the GIL held
    /// (with `Unavailable` if the manager closes first).
    fn warm_async(&self, callback: Py<PyAny>) {
        let mut reply = WarmReply {
            callback: Some(callback),
            causes: self.causes.clone(),
        };
        let pool = self.pool.clone();
        // If the runtime is closed the task is dropped unrun and its `WarmReply` has
        // already reported Unavailable through the callback.
        drop(self.pool.runtime().spawn(async move {
            let result = pool.warm().await;
            reply.send(result);
        }));
    }

    /// The pool's health: totals and one dict per endpoint (the package turns it into
    /// `switchboard.HealthReport`).
    fn health<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let pool = &self.pool;
        health_dict(py, py.detach(|| pool.health()))
    }

    /// The endpoints that can take connections now, best quality first.
    fn healthy_endpoints<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let pool = &self.pool;
        py.detach(|| pool.healthy_endpoints())
            .iter()
            .map(|e| endpoint_dict(py, e))
            .collect()
    }

    /// Of `candidates` (endpoint names as written in the target; empty: all), the one
    /// the pool would pick now.
    fn select_best(&self, py: Python<'_>, candidates: Vec<String>) -> PyResult<String> {
        let pool = &self.pool;
        py.detach(|| {
            let names: Vec<&str> = candidates.iter().map(String::as_str).collect();
            pool.select_best(&names)
        })
        .or_raise(py)
    }

    /// The breaker state of `endpoint` (`None`: the pool's only endpoint) as core's
    /// name (`"closed"`, `"open"`, `"half_open"`, ...).
    #[pyo3(signature = (endpoint=None))]
    fn breaker_state(&self, py: Python<'_>, endpoint: Option<String>) -> PyResult<&'static str> {
        let pool = &self.pool;
        py.detach(|| pool.breaker_state(endpoint.as_deref()))
            .map(|s| s.as_str())
            .or_raise(py)
    }

    /// An operator's command (`"force_open"`, `"disable"`, `"metrics_only"`,
    /// `"reset"`) to the breaker of `endpoint` (`None`: every endpoint).
    #[pyo3(signature = (op, endpoint=None))]
    fn breaker_op(&self, py: Python<'_>, op: String, endpoint: Option<String>) -> PyResult<()> {
        let op: BreakerOp = op.parse().or_raise(py)?;
        let pool = &self.pool;
        py.detach(|| pool.breaker_op(endpoint.as_deref(), op))
            .or_raise(py)
    }

    /// Forgets every endpoint's failed connects: the next connect may start at once.
    fn reset_backoff(&self, py: Python<'_>) {
        let pool = &self.pool;
        py.detach(|| pool.reset_backoff());
    }

    /// Closes the connections of one endpoint (idle ones now, leased ones on release).
    fn drain(&self, py: Python<'_>, endpoint: String) -> PyResult<()> {
        let pool = &self.pool;
        py.detach(|| pool.drain(&endpoint)).or_raise(py)
    }

    /// Runs every endpoint's health check now and waits for them, GIL released.
    fn run_health_checks(&self, py: Python<'_>) -> PyResult<()> {
        let pool = &self.pool;
        py.detach(|| pool.run_health_checks_blocking())
            .map_err(|e| self.error(py, &e))
    }

    /// Starts `run_health_checks()` on the manager's runtime; `callback(None)` or
    /// `callback(exception)` is called once on a runtime thread with the GIL held
    /// (with `Unavailable` if the manager closes first).
    fn run_health_checks_async(&self, callback: Py<PyAny>) {
        let mut reply = DoneReply::new(
            callback,
            "the manager was closed while running the health checks",
        );
        let pool = self.pool.clone();
        // If the runtime is closed the task is dropped unrun and its `DoneReply` has
        // already reported Unavailable through the callback.
        drop(self.pool.runtime().spawn(async move {
            pool.run_health_checks().await;
            reply.send(Ok(()));
        }));
    }

    /// One pass of the background upkeep now (closes idle connections past their idle
    /// timeout or lifetime, checks idle ones, opens up to `min_idle`). GIL released.
    fn _run_upkeep(&self, py: Python<'_>) -> PyResult<()> {
        let pool = &self.pool;
        py.detach(|| pool.run_upkeep_blocking()).or_raise(py)
    }

    /// Whether this pool holds the program's objects (made by a connect callable).
    #[getter]
    fn custom(&self) -> bool {
        self.causes.is_some()
    }

    /// Closes the pool: waiters fail with Unavailable, idle connections close now and
    /// leased ones when they come back. Safe to call twice.
    fn close(&self, py: Python<'_>) {
        let pool = &self.pool;
        py.detach(|| pool.close());
    }
}

impl Drop for PyPool {
    fn drop(&mut self) {
        drop_detached(self.manager.take());
    }
}

/// Delivers the result of an async acquire to its Python callback, exactly once:
/// explicitly when the acquire ends, or from `Drop` when the task is cancelled or the
/// runtime shuts down.
struct Reply {
    callback: Option<Py<PyAny>>,
    cancelled: Arc<AtomicBool>,
    pool_name: Arc<str>,
    causes: Option<Arc<Causes>>,
}

impl Reply {
    fn send(&mut self, result: Result<CoreLease, Error>) {
        let Some(callback) = self.callback.take() else {
            return;
        };
        // If the interpreter is shutting down the closure is dropped unrun: the lease
        // in `result` goes back to the pool and the callback is simply forgotten.
        let pool_name = self.pool_name.clone();
        let causes = self.causes.clone();
        let _ = Python::try_attach(move |py| {
            let args = match result {
                Ok(lease) => match Py::new(py, PyLease::new(lease, pool_name)) {
                    Ok(obj) => (obj.into_any(), py.None()),
                    Err(e) => (py.None(), e.into_value(py).into_any()),
                },
                Err(err) => (
                    py.None(),
                    to_pyerr_with_cause(py, &err, causes.as_deref())
                        .into_value(py)
                        .into_any(),
                ),
            };
            if let Err(e) = callback.call1(py, args) {
                e.write_unraisable(py, Some(callback.bind(py)));
            }
        });
    }
}

/// Delivers the result of `warm_async` to its callback, exactly once (from `Drop`
/// with Unavailable if the runtime shuts down first).
struct WarmReply {
    callback: Option<Py<PyAny>>,
    causes: Option<Arc<Causes>>,
}

impl WarmReply {
    fn send(&mut self, result: Result<usize, Error>) {
        let Some(callback) = self.callback.take() else {
            return;
        };
        let causes = self.causes.clone();
        let _ = Python::try_attach(move |py| {
            let args = match result {
                Ok(n) => match n.into_pyobject(py) {
                    Ok(n) => (n.into_any().unbind(), py.None()),
                    Err(never) => match never {},
                },
                Err(err) => (
                    py.None(),
                    to_pyerr_with_cause(py, &err, causes.as_deref())
                        .into_value(py)
                        .into_any(),
                ),
            };
            if let Err(e) = callback.call1(py, args) {
                e.write_unraisable(py, Some(callback.bind(py)));
            }
        });
    }
}

impl Drop for WarmReply {
    fn drop(&mut self) {
        if self.callback.is_some() {
            self.send(Err(Error::unavailable(
                "the manager was closed while warming the pool",
            )));
        }
    }
}

/// Delivers the end of a task with no value (`run_health_checks_async`, a resource's
/// `ready_async`) to its callback, exactly once (from `Drop` with Unavailable, saying
/// `closed`, if the runtime shuts down or the task is aborted first).
pub(crate) struct DoneReply {
    callback: Option<Py<PyAny>>,
    closed: &'static str,
}

impl DoneReply {
    pub(crate) fn new(callback: Py<PyAny>, closed: &'static str) -> Self {
        DoneReply {
            callback: Some(callback),
            closed,
        }
    }

    pub(crate) fn send(&mut self, result: Result<(), Error>) {
        let Some(callback) = self.callback.take() else {
            return;
        };
        let _ = Python::try_attach(move |py| {
            let arg = match result {
                Ok(()) => py.None(),
                Err(err) => errors::to_pyerr(py, &err).into_value(py).into_any(),
            };
            if let Err(e) = callback.call1(py, (arg,)) {
                e.write_unraisable(py, Some(callback.bind(py)));
            }
        });
    }
}

impl Drop for DoneReply {
    fn drop(&mut self) {
        if self.callback.is_some() {
            self.send(Err(Error::unavailable(self.closed)));
        }
    }
}

/// A health report as the dict `switchboard.HealthReport` is built from (times in
/// seconds since the Unix epoch).
fn health_dict(py: Python<'_>, h: HealthReport) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("pool", h.pool)?;
    d.set_item("calls", h.calls)?;
    d.set_item("failures", h.failures)?;
    d.set_item("success_rate", h.success_rate)?;
    d.set_item("reconnects", h.reconnects)?;
    d.set_item("last_success", h.last_success.map(epoch_seconds))?;
    d.set_item("connected_since", h.connected_since.map(epoch_seconds))?;
    d.set_item("endpoints", endpoint_list(py, &h.endpoints)?)?;
    Ok(d)
}

fn endpoint_list<'py>(
    py: Python<'py>,
    eps: &[EndpointHealth],
) -> PyResult<Vec<Bound<'py, PyDict>>> {
    eps.iter().map(|e| endpoint_dict(py, e)).collect()
}

/// One endpoint's health as the dict `switchboard.EndpointHealth` is built from
/// (durations in seconds, times in seconds since the Unix epoch).
fn endpoint_dict<'py>(py: Python<'py>, e: &EndpointHealth) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("endpoint", &e.endpoint)?;
    d.set_item("state", e.state.as_str())?;
    d.set_item("warming", e.warming.as_str())?;
    d.set_item("breaker", e.breaker.as_str())?;
    d.set_item("quality", e.quality)?;
    d.set_item("latency_ewma", e.latency_ewma.map(|l| l.as_secs_f64()))?;
    d.set_item("success_rate", e.success_rate)?;
    d.set_item("calls", e.calls)?;
    d.set_item("failures", e.failures)?;
    d.set_item("reconnects", e.reconnects)?;
    d.set_item("checks", e.checks)?;
    d.set_item("checks_failed", e.checks_failed)?;
    d.set_item("breaker_opened", e.breaker_opened)?;
    d.set_item("breaker_transitions", e.breaker_transitions)?;
    d.set_item("breaker_rejected", e.breaker_rejected)?;
    d.set_item("open_connections", e.open_connections)?;
    d.set_item("in_flight", e.in_flight)?;
    d.set_item("last_success", e.last_success.map(epoch_seconds))?;
    d.set_item("connected_since", e.connected_since.map(epoch_seconds))?;
    d.set_item("last_error", e.last_error.as_deref())?;
    d.set_item(
        "backoff_remaining",
        e.backoff_remaining.map(|b| b.as_secs_f64()),
    )?;
    Ok(d)
}

/// A stats snapshot as the dict `switchboard.PoolStats` is built from.
fn stats_dict(py: Python<'_>, s: PoolStats) -> PyResult<Bound<'_, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("name", s.name)?;
    d.set_item("max_size", s.max_size)?;
    d.set_item("min_idle", s.min_idle)?;
    d.set_item("max_overflow", s.max_overflow)?;
    d.set_item("size", s.size)?;
    d.set_item("idle", s.idle)?;
    d.set_item("leased", s.leased)?;
    d.set_item("waiting", s.waiting)?;
    d.set_item("connecting", s.connecting)?;
    d.set_item("created_total", s.created_total)?;
    d.set_item("closed_total", s.closed_total)?;
    let by = PyDict::new(py);
    let c = s.closed_by;
    by.set_item("broken", c.broken)?;
    by.set_item("idle", c.idle)?;
    by.set_item("lifetime", c.lifetime)?;
    by.set_item("overflow", c.overflow)?;
    by.set_item("evicted", c.evicted)?;
    by.set_item("discarded", c.discarded)?;
    by.set_item("closed", c.closed)?;
    d.set_item("closed_by", by)?;
    d.set_item("acquired_total", s.acquired_total)?;
    d.set_item("acquired_direct_total", s.acquired_direct_total)?;
    d.set_item("acquired_waited_total", s.acquired_waited_total)?;
    d.set_item("timed_out_total", s.timed_out_total)?;
    d.set_item("rejected_total", s.rejected_total)?;
    d.set_item("connect_failed_total", s.connect_failed_total)?;
    d.set_item("probe_failed_total", s.probe_failed_total)?;
    d.set_item("wait", latency_dict(py, &s.wait)?)?;
    d.set_item("lease", latency_dict(py, &s.lease)?)?;
    d.set_item("endpoints", endpoint_list(py, &s.endpoints)?)?;
    Ok(d)
}

/// A latency histogram as the dict `switchboard.LatencyStats` is built from (seconds).
fn latency_dict<'py>(py: Python<'py>, h: &HistogramSnapshot) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("count", h.count())?;
    d.set_item("avg", h.avg().as_secs_f64())?;
    d.set_item("peak", h.max().as_secs_f64())?;
    d.set_item("p50", h.quantile(0.50).as_secs_f64())?;
    d.set_item("p90", h.quantile(0.90).as_secs_f64())?;
    d.set_item("p99", h.quantile(0.99).as_secs_f64())?;
    Ok(d)
}

impl Drop for Reply {
    fn drop(&mut self) {
        if self.callback.is_some() {
            let err = if self.cancelled.load(Ordering::Acquire) {
                Error::new(Code::Cancelled, "the acquire was cancelled")
            } else {
                Error::unavailable("the manager was closed while acquiring")
            };
            self.send(Err(err));
        }
    }
}

/// A running async acquire, so the awaiting side can cancel it.
#[pyclass(frozen, name = "AcquireTask", module = "switchboard._native")]
pub struct PyAcquireTask {
    abort: Option<AbortHandle>,
    cancelled: Arc<AtomicBool>,
}

impl PyAcquireTask {
    /// The handle of another waiting task (a resource's `ready_async`), to cancel it.
    pub(crate) fn running(abort: Option<AbortHandle>) -> Self {
        PyAcquireTask {
            abort,
            cancelled: Arc::new(AtomicBool::new(false)),
        }
    }
}

#[pymethods]
impl PyAcquireTask {
    /// Stops the acquire. Whatever it had obtained goes back to the pool; the callback
    /// is still called once (with `Cancelled`, or with a lease if it had already won).
    fn cancel(&self) {
        self.cancelled.store(true, Ordering::Release);
        if let Some(abort) = &self.abort {
            abort.abort();
        }
    }

    /// Whether the task has finished (and its callback has been called).
    fn done(&self) -> bool {
        self.abort.as_ref().is_none_or(AbortHandle::is_finished)
    }
}

//! `_native.Pool` and `_native.AcquireTask`: a core pool, with a blocking acquire that
//! releases the GIL and an async acquire that reports through a callback.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use pyo3::prelude::*;
use pyo3::types::PyDict;
use switchboard_core::{AcquireOptions, Code, Error, Lease, Manager, Pool, TcpConnector};
use tokio::task::AbortHandle;

use crate::config;
use crate::errors::{self, OrRaise};
use crate::lease::PyLease;
use crate::manager::drop_detached;

/// The native pool. Python code uses `switchboard.Pool`, which wraps it.
#[pyclass(frozen, name = "Pool", module = "switchboard._native")]
pub struct PyPool {
    pool: Pool<TcpConnector>,
    /// Keeps the manager (and its runtime) alive as long as a pool of it is reachable
    /// from Python, even if the `Manager` object itself was dropped. `Option` only so
    /// that `Drop` can move it out and drop it with the GIL released.
    manager: Option<Manager>,
    target: String,
    name: Arc<str>,
}

impl PyPool {
    pub(crate) fn new(pool: Pool<TcpConnector>, manager: Manager, target: String) -> Self {
        PyPool {
            name: Arc::from(pool.name()),
            pool,
            manager: Some(manager),
            target,
        }
    }
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
        // An idle connection is handed out without waiting, so without releasing the GIL.
        if let Some(lease) = self.pool.try_acquire().or_raise(py)? {
            return Ok(PyLease::new(lease, self.name.clone()));
        }
        let pool = &self.pool;
        let lease = py.detach(|| pool.acquire_blocking(opts)).or_raise(py)?;
        Ok(PyLease::new(lease, self.name.clone()))
    }

    /// An idle connection if one is ready now, else `None`. Never waits.
    fn try_acquire(&self, py: Python<'_>) -> PyResult<Option<PyLease>> {
        let lease = self.pool.try_acquire().or_raise(py)?;
        Ok(lease.map(|l| PyLease::new(l, self.name.clone())))
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
        };
        let pool = self.pool.clone();
        let spawned = self.pool.runtime().spawn(async move {
            let result = pool.acquire_with(opts).await;
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
        let s = self.pool.stats();
        let d = PyDict::new(py);
        d.set_item("name", s.name)?;
        d.set_item("max_size", s.max_size)?;
        d.set_item("size", s.size)?;
        d.set_item("idle", s.idle)?;
        d.set_item("leased", s.leased)?;
        d.set_item("waiting", s.waiting)?;
        d.set_item("connecting", s.connecting)?;
        d.set_item("created_total", s.created_total)?;
        d.set_item("closed_total", s.closed_total)?;
        d.set_item("acquired_total", s.acquired_total)?;
        d.set_item("timed_out_total", s.timed_out_total)?;
        d.set_item("rejected_total", s.rejected_total)?;
        d.set_item("connect_failed_total", s.connect_failed_total)?;
        Ok(d)
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
}

impl Reply {
    fn send(&mut self, result: Result<Lease<TcpConnector>, Error>) {
        let Some(callback) = self.callback.take() else {
            return;
        };
        // If the interpreter is shutting down the closure is dropped unrun: the lease
        // in `result` goes back to the pool and the callback is simply forgotten.
        let pool_name = self.pool_name.clone();
        let _ = Python::try_attach(move |py| {
            let args = match result {
                Ok(lease) => match Py::new(py, PyLease::new(lease, pool_name)) {
                    Ok(obj) => (obj.into_any(), py.None()),
                    Err(e) => (py.None(), e.into_value(py).into_any()),
                },
                Err(err) => (py.None(), errors::exception(py, &err).unbind()),
            };
            if let Err(e) = callback.call1(py, args) {
                e.write_unraisable(py, Some(callback.bind(py)));
            }
        });
    }
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

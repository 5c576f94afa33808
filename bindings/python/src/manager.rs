//! `_native.Manager`: owns a core `Manager` (and with it the tokio runtime).

use pyo3::prelude::*;
use pyo3::types::PyDict;
use switchboard_core::{Error, Event, Manager};

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::cluster::PyCluster;
use crate::config;
use crate::custom::{self, Causes};
use crate::errors::OrRaise;
use crate::pool::PyPool;
use crate::registry::{self, PyRegistry};
use crate::resources::PyResources;
use crate::server::PyHub;
use crate::sessions::PySessions;

/// Drops `value` with the GIL released. Needed for anything that may hold the last
/// clone of a core `Manager`: its drop closes the manager, which joins runtime
/// threads, and one of them may be waiting for the GIL to run a callback.
pub(crate) fn drop_detached<T: Send>(value: T) {
    // If the interpreter is shutting down, `try_attach` does not run the closure and
    // `value` is dropped right here; runtime threads do not wait for the GIL then
    // either (they use `try_attach` too).
    let _ = Python::try_attach(move |py| py.detach(move || drop(value)));
}

/// An event as the dict `switchboard.Event` is built from: `kind`, `pool`,
/// `endpoint`, `connection_id`, `session_id`, `stream`, `old_state`, `new_state`,
/// `topic`, `user`, `reason`, `resource` (each `None` when it does not apply), `age` (seconds or None), `message`, `time`
/// (seconds since the Unix epoch).
fn event_dict<'py>(py: Python<'py>, e: &Event) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("kind", e.kind.as_str())?;
    d.set_item("pool", &e.pool)?;
    d.set_item("endpoint", e.endpoint.as_deref())?;
    d.set_item("connection_id", e.connection_id)?;
    d.set_item("session_id", e.session_id)?;
    d.set_item("stream", e.stream.as_deref())?;
    d.set_item("old_state", e.old_state)?;
    d.set_item("new_state", e.new_state)?;
    d.set_item("age", e.age.map(|a| a.as_secs_f64()))?;
    d.set_item("topic", e.topic.as_deref())?;
    d.set_item("user", e.user.as_deref())?;
    d.set_item("reason", e.reason.as_deref())?;
    d.set_item("resource", e.resource.as_deref())?;
    d.set_item("message", &e.message)?;
    d.set_item("time", epoch_seconds(e.time))?;
    Ok(d)
}

/// A wall-clock time as seconds since the Unix epoch (`time.time()` style); 0.0 for
/// a time before the epoch.
pub(crate) fn epoch_seconds(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The native manager. Python code uses `switchboard.Manager`, which wraps it.
#[pyclass(frozen, name = "Manager", module = "switchboard._native")]
pub struct PyManager {
    /// Always `Some` until dropped; an `Option` only so `Drop` can move it out.
    manager: Option<Manager>,
}

impl PyManager {
    fn manager(&self, py: Python<'_>) -> PyResult<&Manager> {
        self.manager
            .as_ref()
            .ok_or_else(|| Error::internal("the native manager was already dropped"))
            .or_raise(py)
    }
}

#[pymethods]
impl PyManager {
    /// Creates a manager from `(key, value)` string pairs (section `runtime` by default).
    #[new]
    fn new(py: Python<'_>, config: Vec<(String, String)>) -> PyResult<Self> {
        let cfg = config::build(py, config, "runtime")?;
        let manager = py.detach(move || Manager::new(&cfg)).or_raise(py)?;
        registry::install_round_hook(&manager);
        Ok(PyManager {
            manager: Some(manager),
        })
    }

    /// Creates a pool (`config` keys default to section `pool`): of built-in sockets,
    /// or, with `connect`, of the objects the `connect` callable returns (checked by
    /// `check` and closed by `close`, both optional). The callables must be synchronous;
    /// the package wraps coroutine functions.
    #[pyo3(signature = (name, target, config, connect=None, check=None, close=None))]
    #[allow(clippy::too_many_arguments)]
    fn pool(
        &self,
        py: Python<'_>,
        name: String,
        target: String,
        config: Vec<(String, String)>,
        connect: Option<Py<PyAny>>,
        check: Option<Py<PyAny>>,
        close: Option<Py<PyAny>>,
    ) -> PyResult<PyPool> {
        let manager = self.manager(py)?;
        let cfg = config::build(py, config, "pool")?;
        let (connector, causes) = match connect {
            Some(connect) => {
                let causes = Arc::new(Causes::default());
                let c = custom::connector(connect, check, close, causes.clone());
                (Some(c), Some(causes))
            }
            None if check.is_some() || close.is_some() => {
                return Err(Error::invalid_argument(
                    "check= and close= need connect=: they apply to the objects a connect callable makes",
                ))
                .or_raise(py);
            }
            None => (None, None),
        };
        let pool = manager
            .pool_any(&name, &target, &cfg, connector)
            .or_raise(py)?;
        Ok(PyPool::new(pool, manager.clone(), target, causes))
    }

    /// Closes the manager, waiting up to `timeout` seconds for leases to come back,
    /// then clears the event callback (so a callback that refers to the manager does
    /// not keep it alive in a cycle the garbage collector cannot see).
    fn close(&self, py: Python<'_>, timeout: f64) -> PyResult<()> {
        let timeout = config::seconds(py, "timeout", Some(timeout))?.unwrap_or_default();
        let manager = self.manager(py)?;
        py.detach(|| {
            let closed = manager.close(timeout);
            if closed.is_ok() {
                drop(manager.set_event_callback(None));
            }
            closed
        })
        .or_raise(py)
    }

    /// The manager's sessions and stream offsets.
    fn sessions(&self, py: Python<'_>) -> PyResult<PySessions> {
        Ok(PySessions::new(self.manager(py)?.clone()))
    }

    /// The manager's live-connection registry.
    fn registry(&self, py: Python<'_>) -> PyResult<PyRegistry> {
        Ok(PyRegistry::new(self.manager(py)?.clone()))
    }

    /// The manager's cluster membership; `None` when `cluster.redis_url` is not set.
    fn cluster(&self, py: Python<'_>) -> PyResult<Option<PyCluster>> {
        Ok(PyCluster::of(self.manager(py)?))
    }

    /// The manager's named shared connections.
    fn resources(&self, py: Python<'_>) -> PyResult<PyResources> {
        Ok(PyResources::new(self.manager(py)?.clone()))
    }

    /// The embedded server's bound address as `"host:port"` (the port picked when
    /// `server.listen` asked for 0); `None` when `server.listen` is off.
    #[getter]
    fn server_address(&self) -> Option<String> {
        self.manager
            .as_ref()
            .and_then(Manager::server_address)
            .map(|a| a.to_string())
    }

    /// The gRPC sessions service's address as `"host:port"`: `server.grpc_listen`'s,
    /// or the server's own when gRPC shares its port; `None` when the server is off.
    #[getter]
    fn grpc_address(&self) -> Option<String> {
        self.manager
            .as_ref()
            .and_then(Manager::grpc_address)
            .map(|a| a.to_string())
    }

    /// The hub's inbound side: what the server's WebSocket clients send.
    fn hub(&self, py: Python<'_>) -> PyResult<PyHub> {
        Ok(PyHub::new(self.manager(py)?.clone()))
    }

    /// Moves a manual clock (`runtime.clock = manual`) forward by `seconds`;
    /// FailedPrecondition on the system clock.
    fn advance_clock(&self, py: Python<'_>, seconds: f64) -> PyResult<()> {
        let by = config::seconds(py, "seconds", Some(seconds))?.unwrap_or_default();
        self.manager(py)?.advance_clock(by).or_raise(py)
    }

    /// The metrics of every open pool as Prometheus/OpenMetrics text.
    fn metrics_text(&self, py: Python<'_>) -> PyResult<String> {
        let manager = self.manager(py)?;
        Ok(py.detach(|| manager.metrics_text()))
    }

    /// The next queued event as a dict, waiting up to `timeout` seconds (0: don't wait)
    /// with the GIL released; `None` if none came. Events are queued while no callback
    /// is set.
    fn poll_event<'py>(
        &self,
        py: Python<'py>,
        timeout: f64,
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let timeout = config::seconds(py, "timeout", Some(timeout))?.unwrap_or_default();
        let manager = self.manager(py)?;
        match py.detach(|| manager.poll_event(timeout)) {
            Some(e) => event_dict(py, &e).map(Some),
            None => Ok(None),
        }
    }

    /// Events dropped because the queue was full and nobody polled.
    fn events_dropped(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.manager(py)?.events_dropped())
    }

    /// Sets (or with `None` clears) the event callback: `callback(event_dict)` runs on
    /// a runtime thread (or the thread running an upkeep pass) with the GIL taken;
    /// what it raises goes to `sys.unraisablehook`. While one is set, events are not
    /// queued for `poll_event`.
    #[pyo3(signature = (callback))]
    fn set_event_callback(&self, py: Python<'_>, callback: Option<Py<PyAny>>) -> PyResult<()> {
        let manager = self.manager(py)?;
        let cb: Option<switchboard_core::events::EventCallback> = callback.map(|f| {
            let f = custom::Held::new(f);
            let cb: switchboard_core::events::EventCallback = Arc::new(move |e: &Event| {
                // An interpreter that is shutting down is not waited for.
                let _ = Python::try_attach(|py| {
                    let f = f.get(py);
                    let res = event_dict(py, e).and_then(|d| f.call1(py, (d,)));
                    if let Err(err) = res {
                        err.write_unraisable(py, Some(f.bind(py)));
                    }
                });
            });
            cb
        });
        // Swap and drop the previous callback with the GIL released: a runtime thread
        // may be inside the old callback, waiting for the GIL.
        py.detach(|| drop(manager.set_event_callback(cb)));
        Ok(())
    }

    /// Whether `close()` has been called.
    #[getter]
    fn closed(&self) -> bool {
        self.manager.as_ref().is_none_or(Manager::is_closed)
    }

    /// The names of the open pools, sorted.
    fn pool_names(&self) -> Vec<String> {
        self.manager
            .as_ref()
            .map(|m| m.pool_stats().into_iter().map(|s| s.name).collect())
            .unwrap_or_default()
    }

    /// The config keys set explicitly, as `(key, value)` pairs with full key names.
    fn config(&self) -> Vec<(String, String)> {
        self.manager
            .as_ref()
            .map(|m| {
                m.config()
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for PyManager {
    fn drop(&mut self) {
        drop_detached(self.manager.take());
    }
}

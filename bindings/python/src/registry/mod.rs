//! `_native.Registry` and `_native.Outbox`: the manager's live-connection registry
//! (core's `Registry`) and its pull sinks.
//!
//! Threads and the GIL:
//! - send callbacks run on core's delivery tasks (runtime threads). The round hook
//!   installed on every Python manager ([`sink::GilRound`]) takes the GIL once per delivery
//!   round (up to a few hundred connections), so 10,000 callbacks don't each wait for
//!   it; inside a round each callback re-enters the GIL for free;
//! - a callback that returns an awaitable (an `async def` send) hands it to the
//!   connection's `schedule` function (the package's per-connection lane on the event
//!   loop that was running at register), and core is told `Pending`; the lane reports
//!   the result with `report_send`;
//! - the authenticate/authorize hooks run on the caller's thread (core calls them from
//!   register and subscribe), taking the GIL if the caller released it;
//! - runtime threads reach Python only through `Python::try_attach`; the Python objects
//!   a sink holds are plain `Py` references, whose drop without the GIL is deferred by
//!   pyo3, so dropping a connection never waits for the GIL.
//!
//! Calls that only touch the registry's in-memory tables (register, subscribe,
//! broadcast: a fan-out that queues and never waits on a client) keep the GIL;
//! `Outbox.next` waits, and releases it.

mod auth;
mod convert;
mod envelope;
mod message;
mod outbox;
mod sink;

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use switchboard_core::registry::{Registry, SharedAuthenticator};
use switchboard_core::{Error, Manager};

pub(crate) use envelope::{envelope_decode, envelope_encode};
pub use outbox::PyOutbox;
pub(crate) use sink::install_round_hook;

use auth::PyAuth;
use convert::registration;
pub(crate) use convert::{info_dict, list_filter, report_tuple, stats_dict, target};
pub(crate) use message::message;
use sink::PySink;

use crate::errors::OrRaise;
use crate::manager::drop_detached;

/// The text of a Python exception, for a refusal or a failed delivery.
fn exc_text(py: Python<'_>, err: &PyErr) -> String {
    let value = err.value(py);
    let text = value.str().map(|s| s.to_string()).unwrap_or_default();
    if !text.is_empty() {
        return text;
    }
    value
        .get_type()
        .qualname()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "exception".to_string())
}

const SHUTTING_DOWN: &str = "the Python interpreter is shutting down";

// ---- the registry ------------------------------------------------------------------

/// The native registry. Python code uses `switchboard.Registry`, which wraps it.
#[pyclass(frozen, name = "Registry", module = "switchboard._native")]
pub struct PyRegistry {
    /// Keeps the manager alive as long as this is reachable. `Option` only so that
    /// `Drop` can drop it with the GIL released.
    manager: Option<Manager>,
}

impl PyRegistry {
    pub(crate) fn new(manager: Manager) -> Self {
        PyRegistry {
            manager: Some(manager),
        }
    }

    fn manager(&self, py: Python<'_>) -> PyResult<&Manager> {
        self.manager
            .as_ref()
            .ok_or_else(|| Error::internal("the native registry object was already dropped"))
            .or_raise(py)
    }

    fn registry(&self, py: Python<'_>) -> PyResult<&Registry> {
        self.manager(py).map(Manager::registry)
    }
}

impl Drop for PyRegistry {
    fn drop(&mut self) {
        drop_detached(self.manager.take());
    }
}

#[pymethods]
impl PyRegistry {
    /// Registers a connection whose messages go to `send(msg)`; returns its id.
    #[pyo3(signature = (send, user, metadata, topics, token, on_ping, on_close, schedule))]
    #[allow(clippy::too_many_arguments)]
    fn register(
        &self,
        py: Python<'_>,
        send: Py<PyAny>,
        user: Option<String>,
        metadata: Vec<(String, String)>,
        topics: Vec<String>,
        token: Option<String>,
        on_ping: Option<Py<PyAny>>,
        on_close: Option<Py<PyAny>>,
        schedule: Option<Py<PyAny>>,
    ) -> PyResult<u64> {
        let sink = Arc::new(PySink {
            send,
            ping: on_ping,
            closed: on_close,
            schedule,
        });
        self.registry(py)?
            .register(registration(user, metadata, topics, token), sink)
            .or_raise(py)
    }

    /// Registers a connection whose messages the program pulls from the returned outbox.
    #[pyo3(signature = (user, metadata, topics, token))]
    fn register_outbox(
        &self,
        py: Python<'_>,
        user: Option<String>,
        metadata: Vec<(String, String)>,
        topics: Vec<String>,
        token: Option<String>,
    ) -> PyResult<PyOutbox> {
        let manager = self.manager(py)?;
        let outbox = manager
            .registry()
            .register_outbox(registration(user, metadata, topics, token))
            .or_raise(py)?;
        Ok(PyOutbox::new(outbox, manager.runtime().clone()))
    }

    /// Removes connection `id` for `reason` (empty: `unregistered`).
    fn unregister(&self, py: Python<'_>, id: u64, reason: &str) -> PyResult<()> {
        self.registry(py)?.unregister(id, reason).or_raise(py)
    }

    /// A snapshot of connection `id`, as a dict.
    fn get<'py>(&self, py: Python<'py>, id: u64) -> PyResult<Bound<'py, PyDict>> {
        let info = self.registry(py)?.get(id).or_raise(py)?;
        info_dict(py, &info)
    }

    /// Whether connection `id` is registered.
    fn contains(&self, py: Python<'_>, id: u64) -> PyResult<bool> {
        Ok(self.registry(py)?.contains(id))
    }

    /// Connections registered now.
    fn len(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.registry(py)?.len())
    }

    /// Records traffic from connection `id` now.
    fn touch(&self, py: Python<'_>, id: u64) -> PyResult<()> {
        self.registry(py)?.touch(id).or_raise(py)
    }

    /// Subscribes `id` to `topic`; `False` if it already was.
    fn subscribe(&self, py: Python<'_>, id: u64, topic: &str) -> PyResult<bool> {
        self.registry(py)?.subscribe(id, topic).or_raise(py)
    }

    /// Unsubscribes `id` from `topic`; `False` if it was not subscribed.
    fn unsubscribe(&self, py: Python<'_>, id: u64, topic: &str) -> PyResult<bool> {
        self.registry(py)?.unsubscribe(id, topic).or_raise(py)
    }

    /// Sets (or with `None` removes) one metadata entry.
    #[pyo3(signature = (id, key, value))]
    fn set_metadata(
        &self,
        py: Python<'_>,
        id: u64,
        key: &str,
        value: Option<&str>,
    ) -> PyResult<()> {
        self.registry(py)?.set_metadata(id, key, value).or_raise(py)
    }

    /// Queues `msg` for every connection the target matches; returns the report as
    /// `(recipients, queued, dropped, disconnected, elapsed_seconds)`.
    #[pyo3(signature = (msg, all, topics, users, ids, exclude))]
    #[allow(clippy::too_many_arguments)]
    fn broadcast(
        &self,
        py: Python<'_>,
        msg: &Bound<'_, PyAny>,
        all: bool,
        topics: Vec<String>,
        users: Vec<String>,
        ids: Vec<u64>,
        exclude: Vec<u64>,
    ) -> PyResult<(u64, u64, u64, u64, f64)> {
        let msg = message(py, msg)?;
        let t = target(all, topics, users, ids, exclude);
        self.registry(py)?
            .broadcast(&t, msg)
            .map(|r| report_tuple(&r))
            .or_raise(py)
    }

    /// Queues `msg` for connection `id` alone.
    fn send(
        &self,
        py: Python<'_>,
        id: u64,
        msg: &Bound<'_, PyAny>,
    ) -> PyResult<(u64, u64, u64, u64, f64)> {
        let msg = message(py, msg)?;
        self.registry(py)?
            .send(id, msg)
            .map(|r| report_tuple(&r))
            .or_raise(py)
    }

    /// One page of connections: `(list of dicts, next_cursor)`.
    #[pyo3(signature = (user, topic, meta, state, min_idle, limit, cursor))]
    #[allow(clippy::too_many_arguments)]
    fn list<'py>(
        &self,
        py: Python<'py>,
        user: Option<String>,
        topic: Option<String>,
        meta: Option<(String, String)>,
        state: Option<&str>,
        min_idle: Option<f64>,
        limit: usize,
        cursor: Option<u64>,
    ) -> PyResult<(Vec<Bound<'py, PyDict>>, Option<u64>)> {
        let filter = list_filter(py, user, topic, meta, state, min_idle, limit, cursor)?;
        let page = self.registry(py)?.list(&filter).or_raise(py)?;
        let conns = page
            .connections
            .iter()
            .map(|c| info_dict(py, c))
            .collect::<PyResult<Vec<_>>>()?;
        Ok((conns, page.next_cursor))
    }

    /// Removes every connection the target matches for `reason`; returns how many.
    #[pyo3(signature = (all, topics, users, ids, exclude, reason))]
    #[allow(clippy::too_many_arguments)]
    fn disconnect(
        &self,
        py: Python<'_>,
        all: bool,
        topics: Vec<String>,
        users: Vec<String>,
        ids: Vec<u64>,
        exclude: Vec<u64>,
        reason: &str,
    ) -> PyResult<u64> {
        let t = target(all, topics, users, ids, exclude);
        self.registry(py)?.disconnect(&t, reason).or_raise(py)
    }

    /// The registry's statistics, as a dict.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.registry(py)?.stats().or_raise(py)?;
        stats_dict(py, &s)
    }

    /// Runs the heartbeat and cleanup pass now: `(removed, pinged)`.
    fn cleanup(&self, py: Python<'_>) -> PyResult<(u64, u64)> {
        let r = self.registry(py)?.cleanup().or_raise(py)?;
        Ok((r.removed, r.pinged))
    }

    /// Sets (or with `authenticate=None` clears) the authentication hook.
    #[pyo3(signature = (authenticate, authorize))]
    fn set_authenticator(
        &self,
        py: Python<'_>,
        authenticate: Option<Py<PyAny>>,
        authorize: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        let registry = self.registry(py)?;
        let hook: Option<SharedAuthenticator> = authenticate.map(|a| {
            let hook: SharedAuthenticator = Arc::new(PyAuth {
                authenticate: a,
                authorize,
            });
            hook
        });
        // The previous hook may be in use on a thread that waits for the GIL.
        py.detach(|| drop(registry.set_authenticator(hook)));
        Ok(())
    }

    /// Reports the result of an awaitable a send callback returned (`None`: sent).
    #[pyo3(signature = (id, error))]
    fn report_send(&self, py: Python<'_>, id: u64, error: Option<String>) -> PyResult<()> {
        let result = match error {
            None => Ok(()),
            Some(why) => Err(why),
        };
        self.registry(py)?.report_send(id, result).or_raise(py)
    }
}

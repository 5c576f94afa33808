//! `_native.Hub`: the embedded server's hub as core hands it to the program (what hub
//! clients send). The server itself needs no binding: it starts from the manager's
//! config (`server.*` keys) and its addresses are the manager's two getters.
//!
//! A message crosses as the tuple `(connection_id, user, type, topic, text)`; the
//! package builds `switchboard.HubMessage` from it.

use std::time::{Duration, Instant};

use pyo3::prelude::*;
use switchboard_core::server::{Hub, HubMessage};
use switchboard_core::{Error, Manager};

use crate::config;
use crate::errors::{self, OrRaise};
use crate::manager::drop_detached;
use crate::pool::PyAcquireTask;

/// How long one detached wait of `recv` lasts before it looks at signals again, so
/// Ctrl-C interrupts a long (or endless) wait within this time.
const SLICE: Duration = Duration::from_millis(50);

/// A hub message as it crosses: `(connection_id, user, type, topic, text)`.
type MessageTuple = (u64, Option<String>, String, Option<String>, String);

fn tuple(m: HubMessage) -> MessageTuple {
    (m.connection_id, m.user, m.kind, m.topic, m.text)
}

/// The native hub. Python code uses `switchboard.Hub`, which wraps it.
#[pyclass(frozen, name = "Hub", module = "switchboard._native")]
pub struct PyHub {
    /// Keeps the manager (its runtime, for `next_async`) alive while this is reachable.
    /// `Option` only so that `Drop` can drop it with the GIL released.
    manager: Option<Manager>,
}

impl PyHub {
    pub(crate) fn new(manager: Manager) -> Self {
        PyHub {
            manager: Some(manager),
        }
    }

    fn manager(&self, py: Python<'_>) -> PyResult<&Manager> {
        self.manager
            .as_ref()
            .ok_or_else(|| Error::internal("the native hub was already dropped"))
            .or_raise(py)
    }

    fn hub(&self, py: Python<'_>) -> PyResult<&Hub> {
        self.manager(py).map(Manager::hub)
    }
}

impl Drop for PyHub {
    fn drop(&mut self) {
        drop_detached(self.manager.take());
    }
}

#[pymethods]
impl PyHub {
    /// The next message, waiting up to `timeout` seconds (`None`: until one comes)
    /// with the GIL released; `None` when none came in time. The wait is cut in short
    /// slices between which signals are checked, so Ctrl-C (KeyboardInterrupt)
    /// interrupts it. Unavailable once the manager is closed.
    #[pyo3(signature = (timeout=None))]
    fn recv(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<MessageTuple>> {
        let timeout = config::seconds(py, "timeout", timeout)?;
        let hub = self.hub(py)?;
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        loop {
            let slice = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
                // No deadline (None, or one too far to represent): wait for ever.
                None => SLICE,
            };
            if let Some(m) = py.detach(|| hub.recv(slice)).or_raise(py)? {
                return Ok(Some(tuple(m)));
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
            py.check_signals()?;
        }
    }

    /// Starts waiting for the next message on the manager's runtime and returns at
    /// once. `callback(message_tuple, None)` or `callback(None, exception)` is called
    /// exactly once on a runtime thread with the GIL held: Unavailable when the
    /// manager closes first, Cancelled when the task is cancelled before a message
    /// came. A message taken by a task that is cancelled after taking it still goes
    /// to the callback (the package keeps it for the next call).
    fn next_async(&self, py: Python<'_>, callback: Py<PyAny>) -> PyResult<PyAcquireTask> {
        let manager = self.manager(py)?;
        let hub = manager.hub().clone();
        let mut reply = NextReply {
            callback: Some(callback),
        };
        let spawned = manager.runtime().spawn(async move {
            let result = hub.next().await;
            reply.send(result);
        });
        // If the runtime is closed the task was dropped unrun, and its `NextReply` has
        // already reported Unavailable through the callback.
        Ok(PyAcquireTask::running(
            spawned.ok().map(|h| h.abort_handle()),
        ))
    }

    /// Messages dropped because the queue (`server.hub_queue`) was full.
    #[getter]
    fn dropped(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.hub(py)?.dropped())
    }

    /// Messages waiting in the queue.
    #[getter]
    fn queued(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.hub(py)?.queued())
    }
}

/// Delivers the end of a `next_async` to its callback, exactly once (from `Drop` when
/// the task is aborted or the runtime shuts down before it ended).
struct NextReply {
    callback: Option<Py<PyAny>>,
}

impl NextReply {
    fn send(&mut self, result: Result<HubMessage, Error>) {
        let Some(callback) = self.callback.take() else {
            return;
        };
        // An interpreter that is shutting down is not waited for.
        let _ = Python::try_attach(move |py| {
            let args = match result {
                Ok(m) => match tuple(m).into_pyobject(py) {
                    Ok(t) => (t.into_any().unbind(), py.None()),
                    Err(e) => (py.None(), e.into_value(py).into_any()),
                },
                Err(err) => (
                    py.None(),
                    errors::to_pyerr(py, &err).into_value(py).into_any(),
                ),
            };
            if let Err(e) = callback.call1(py, args) {
                e.write_unraisable(py, Some(callback.bind(py)));
            }
        });
    }
}

impl Drop for NextReply {
    fn drop(&mut self) {
        if self.callback.is_some() {
            // Aborted (cancelled by the awaiting side) or dropped unrun by a runtime
            // that is shutting down: the awaiting side tells the two apart itself.
            self.send(Err(Error::unavailable(
                "the manager was closed while waiting for a hub message",
            )));
        }
    }
}

//! `_native.Outbox`: a pull sink, read on a thread (`next`, the GIL released) or
//! from asyncio (`next_async`, on switchboard's runtime).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use switchboard_core::registry::{Item, Outbox};
use switchboard_core::runtime::RuntimeShared;

use super::message::to_python;
use crate::config;
use crate::errors::OrRaise;

static PING: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

fn ping_object(py: Python<'_>) -> PyResult<Py<PyAny>> {
    PING.get_or_try_init(py, || {
        py.import("switchboard._registry_types")?
            .getattr("PING")
            .map(Bound::unbind)
    })
    .map(|p| p.clone_ref(py))
}

/// The native outbox. Python code uses `switchboard.Outbox`, which wraps it.
#[pyclass(frozen, name = "Outbox", module = "switchboard._native")]
pub struct PyOutbox {
    outbox: Arc<Outbox>,
    runtime: Arc<RuntimeShared>,
    closed_reason: Mutex<Option<String>>,
    /// The task of a `next_async` in progress (aborted by `close`).
    waiting: Mutex<Option<tokio::task::AbortHandle>>,
}

/// The longest the GIL is released in one wait of `next`, so that Ctrl-C is noticed.
const SLICE: Duration = Duration::from_millis(100);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl PyOutbox {
    /// The native outbox of a connection just registered on a manager with `runtime`.
    pub(super) fn new(outbox: Outbox, runtime: Arc<RuntimeShared>) -> Self {
        PyOutbox {
            outbox: Arc::new(outbox),
            runtime,
            closed_reason: Mutex::new(None),
            waiting: Mutex::new(None),
        }
    }

    /// An item as Python sees it: the message, `PING`, or `None` for the close (whose
    /// reason is then kept in `closed_reason`).
    fn item(&self, py: Python<'_>, item: Item) -> PyResult<Option<Py<PyAny>>> {
        Ok(match item {
            Item::Message(m) => Some(to_python(py, &m)),
            Item::Ping => Some(ping_object(py)?),
            Item::Closed(reason) => {
                *lock(&self.closed_reason) = Some(reason);
                None
            }
        })
    }
}

/// Hands the result of a `next_async` to its callback exactly once: from `Drop`
/// with `None` if the task ends unrun (the runtime shut down).
struct NextReply {
    callback: Option<Py<PyAny>>,
    outbox: Py<PyOutbox>,
}

impl NextReply {
    fn send(&mut self, item: Option<Item>) {
        let Some(callback) = self.callback.take() else {
            return;
        };
        let outbox = &self.outbox;
        let _ = Python::try_attach(|py| {
            let value = match item {
                Some(item) => outbox.get().item(py, item),
                None => Ok(None),
            };
            let res = match value {
                Ok(v) => callback.call1(py, (v, py.None())),
                Err(e) => callback.call1(py, (py.None(), e.into_value(py))),
            };
            if let Err(e) = res {
                e.write_unraisable(py, Some(callback.bind(py)));
            }
        });
    }
}

impl Drop for NextReply {
    fn drop(&mut self) {
        self.send(None);
    }
}

#[pymethods]
impl PyOutbox {
    /// The connection's id.
    #[getter]
    fn id(&self) -> u64 {
        self.outbox.id()
    }

    /// Why the connection left, once the close was read; else `None`.
    #[getter]
    fn closed_reason(&self) -> Option<String> {
        lock(&self.closed_reason).clone()
    }

    /// The next item, waiting up to `timeout` seconds (`None`: until one comes) with
    /// the GIL released; `None` when none came in time or the connection left.
    #[pyo3(signature = (timeout))]
    fn next(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<Option<Py<PyAny>>> {
        let timeout = config::seconds(py, "timeout", timeout)?;
        let deadline = timeout.map(|t| Instant::now() + t);
        let outbox = &self.outbox;
        loop {
            let slice = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()).min(SLICE),
                None => SLICE,
            };
            let got = py.detach(|| outbox.next_within(slice, None)).or_raise(py)?;
            if let Some(item) = got {
                return self.item(py, item);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
            py.check_signals()?;
        }
    }

    /// The next item if one is queued, without waiting.
    fn try_next(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        match self.outbox.try_next() {
            Some(item) => self.item(py, item),
            None => Ok(None),
        }
    }

    /// Waits for the next item on switchboard's runtime and calls
    /// `callback(item, None)` (item `None`: the connection left) or
    /// `callback(None, exc)` on a runtime thread.
    fn next_async(slf: &Bound<'_, Self>, callback: Py<PyAny>) -> PyResult<()> {
        let py = slf.py();
        let this = slf.get();
        let mut reply = NextReply {
            callback: Some(callback),
            outbox: slf.clone().unbind(),
        };
        let outbox = this.outbox.clone();
        let spawned = this.runtime.spawn(async move {
            let item = outbox.next().await;
            reply.send(Some(item));
        });
        match spawned {
            Ok(handle) => {
                let old = lock(&this.waiting).replace(handle.abort_handle());
                drop(old);
                Ok(())
            }
            Err(e) => Err(e).or_raise(py),
        }
    }

    /// Records traffic from the client now.
    fn touch(&self) {
        self.outbox.touch();
    }

    /// Closes the outbox (later deliveries fail) and ends a `next_async` in progress.
    fn close(&self) {
        self.outbox.close();
        if let Some(h) = lock(&self.waiting).take() {
            h.abort();
        }
    }
}

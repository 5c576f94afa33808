//! Custom connectors: a pool of the program's own Python objects, made, checked and
//! closed by Python callables through core's `FnConnector`.
//!
//! Threads: `connect` and `check` run on the runtime's blocking thread pool
//! (`FnConnector::blocking` / `with_blocking_check`), which takes the GIL there;
//! `close` runs on whichever thread lets the connection go (a thread releasing a
//! lease, a runtime worker, the thread closing the pool or manager) and takes the GIL
//! there too. Every Python object this module holds is dropped with the GIL held.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use pyo3::exceptions::PyTimeoutError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyBool;
use switchboard_core::{AnyConnector, Code, Endpoint, Error, FnConnector, Lease, Pool};

/// A Python object owned from Rust: dropped with the GIL held (so its finalizer runs
/// at once, on a thread that holds the GIL), or, if the interpreter is already gone,
/// left to pyo3's deferred release.
pub(crate) struct Held(Option<Py<PyAny>>);

impl Held {
    pub(crate) fn new(obj: Py<PyAny>) -> Self {
        Held(Some(obj))
    }

    /// A new reference to the object.
    pub(crate) fn get(&self, py: Python<'_>) -> Py<PyAny> {
        match &self.0 {
            Some(o) => o.clone_ref(py),
            None => py.None(),
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(obj) = self.0.take() {
            let _ = Python::try_attach(move |_py| drop(obj));
        }
    }
}

/// The program's object as the pool holds it (a cheap clone for `check`).
pub(crate) type Obj = Arc<Held>;
/// The connector of every Python pool: built-in sockets or Python callables.
pub(crate) type Conn = AnyConnector<Obj>;
/// A pool of the Python package.
pub(crate) type CorePool = Pool<Conn>;
/// A lease of the Python package.
pub(crate) type CoreLease = Lease<Conn>;

/// The Python exceptions behind recent connect/check failures, so the exception an
/// acquirer gets can carry the callback's own exception as `__cause__`. Keyed by the
/// core error's message; bounded, oldest dropped first.
#[derive(Default)]
pub(crate) struct Causes {
    recent: Mutex<VecDeque<(String, Obj)>>,
}

const MAX_CAUSES: usize = 32;

impl Causes {
    fn remember(&self, message: &str, exc: Obj) {
        let dropped = {
            let mut q = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            q.push_back((message.to_string(), exc));
            if q.len() > MAX_CAUSES {
                q.pop_front()
            } else {
                None
            }
        };
        drop(dropped); // outside the lock: its drop takes the GIL
    }

    /// The Python exception behind `err`, if a callback raised it recently: the
    /// error is the callback's own, or names it (a fast failure while the endpoint
    /// backs off quotes the connect error that started the backoff). Kept for later
    /// errors that quote it again; the oldest causes are dropped first.
    pub(crate) fn take(&self, py: Python<'_>, err: &Error) -> Option<Py<PyAny>> {
        let q = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let msg = err.message();
        q.iter()
            .rev()
            .find(|(m, _)| m == msg)
            .or_else(|| q.iter().rev().find(|(m, _)| msg.contains(m.as_str())))
            .map(|(_, exc)| exc.get(py))
    }
}

static SB_ERROR: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// A core error for an exception raised by a callback: switchboard's own exceptions
/// keep their code and message; `TimeoutError` becomes Timeout; anything else is
/// Unavailable (the object could not be made or is not usable), its message naming the
/// callback, the endpoint and the exception.
fn from_callback(
    py: Python<'_>,
    causes: &Causes,
    what: &str,
    endpoint: &str,
    err: PyErr,
    remember: bool,
) -> Error {
    let value = err.value(py);
    let sb_class = SB_ERROR
        .get_or_try_init(py, || {
            py.import("switchboard._errors")?
                .getattr("SwitchboardError")
                .map(Bound::unbind)
        })
        .ok()
        .map(|c| c.bind(py).clone());
    let own_code = sb_class
        .filter(|c| value.is_instance(c).unwrap_or(false))
        .and_then(|_| value.getattr("code").ok())
        .and_then(|c| c.extract::<String>().ok())
        .and_then(|name| Code::ALL.into_iter().find(|c| c.sb_name() == name));
    let text = value
        .str()
        .map(|s| s.to_string())
        .unwrap_or_else(|_| "<unprintable exception>".to_string());
    let error = match own_code {
        Some(code) => Error::new(code, text),
        None => {
            let kind = value
                .get_type()
                .qualname()
                .map(|n| n.to_string())
                .unwrap_or_else(|_| "exception".to_string());
            let code = if err.is_instance_of::<PyTimeoutError>(py) {
                Code::Timeout
            } else {
                Code::Unavailable
            };
            Error::new(
                code,
                format!("{what} callback for \"{endpoint}\" raised {kind}: {text}"),
            )
        }
    };
    if remember {
        // Only connect errors reach an acquirer (a failed check just replaces the object).
        let exc = Arc::new(Held::new(value.clone().into_any().unbind()));
        causes.remember(error.message(), exc);
    }
    error
}

fn interpreter_gone(what: &str) -> Error {
    Error::unavailable(format!(
        "the {what} callback cannot run: the Python interpreter is shutting down"
    ))
}

type CloseObj = Arc<dyn Fn(Obj) + Send + Sync>;

fn call_connect(connect: &Held, causes: &Causes, name: &str) -> Result<Obj, Error> {
    Python::try_attach(|py| match connect.get(py).call1(py, (name,)) {
        Ok(obj) => Ok(Arc::new(Held::new(obj))),
        Err(e) => Err(from_callback(py, causes, "connect", name, e, true)),
    })
    .unwrap_or_else(|| Err(interpreter_gone("connect")))
}

/// Builds the core connector from the Python callables.
pub(crate) fn connector(
    connect: Py<PyAny>,
    check: Option<Py<PyAny>>,
    close: Option<Py<PyAny>>,
    causes: Arc<Causes>,
) -> FnConnector<Obj> {
    let close = close.map(Held::new);
    let close: CloseObj = Arc::new(move |obj: Obj| {
        // Runs once per object the pool lets go; the object is dropped with the GIL
        // held either way.
        let _ = Python::try_attach(|py| {
            if let Some(close) = &close {
                let close = close.get(py);
                if let Err(e) = close.call1(py, (obj.get(py),)) {
                    e.write_unraisable(py, Some(close.bind(py)));
                }
            }
            drop(obj);
        });
    });
    let connect = Held::new(connect);
    let connect_causes = causes.clone();
    // The callable runs on the blocking thread pool; core closes an object made after
    // the pool stopped waiting for it (connect timeout, shutdown) with `close` below.
    let mut fc = FnConnector::blocking(move |ep: &Endpoint| {
        call_connect(&connect, &connect_causes, &ep.to_string())
    });
    if let Some(check) = check {
        let check = Held::new(check);
        fc = fc.with_blocking_check(move |obj: Obj| -> Result<(), Error> {
            Python::try_attach(|py| {
                let result = check.get(py).call1(py, (obj.get(py),));
                drop(obj);
                match result {
                    Ok(v) => {
                        let v = v.bind(py);
                        if v.is_instance_of::<PyBool>() && !v.is_truthy().unwrap_or(true) {
                            Err(Error::unavailable(
                                "the check callback returned False: the object was closed and will be replaced",
                            ))
                        } else {
                            Ok(())
                        }
                    }
                    Err(e) => Err(from_callback(py, &causes, "check", "object", e, false)),
                }
            })
            .unwrap_or_else(|| Err(interpreter_gone("check")))
        });
    }
    fc.with_close(move |obj: Obj| close(obj))
}

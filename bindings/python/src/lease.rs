//! `_native.Lease`: a checked-out connection, with socket-style helpers.
//!
//! The core lease sits behind an `RwLock`: sends and receives share it (a socket may be
//! read on one thread and written on another), release and discard take it out. Every
//! wait for the lock or the socket happens with the GIL released.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, TryLockError};

use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyMemoryView, PyString};
use switchboard_core::{Error, Socket};

use crate::config;
use crate::custom::CoreLease;
use crate::errors::OrRaise;

/// The most one `recv` reads at once (it may always return fewer bytes than asked).
pub(crate) const MAX_RECV: usize = 16 << 20;
/// `timeout_bits` value for "no timeout" (an f64 NaN pattern no `settimeout` stores).
pub(crate) const NO_TIMEOUT: u64 = u64::MAX;

/// A checked-out connection. Created by `Pool.acquire`, `try_acquire` and the async
/// acquire; returned to the pool by `release()`, by leaving a `with` block, or when
/// garbage-collected.
#[pyclass(frozen, name = "Lease", module = "switchboard._native")]
pub struct PyLease {
    lease: RwLock<Option<CoreLease>>,
    released: AtomicBool,
    /// The `settimeout` value as f64 bits, or `NO_TIMEOUT`.
    timeout_bits: AtomicU64,
    id: u64,
    /// The socket's fd, or `None` for a custom connection (the program's object).
    fd: Option<i32>,
    pool_name: Arc<str>,
}

impl PyLease {
    /// Wraps `lease`; `pool_name` is shared with the pool (no allocation per acquire).
    pub(crate) fn new(lease: CoreLease, pool_name: Arc<str>) -> Self {
        PyLease {
            id: lease.id(),
            fd: lease.socket().ok().map(Socket::fd),
            pool_name,
            lease: RwLock::new(Some(lease)),
            released: AtomicBool::new(false),
            timeout_bits: AtomicU64::new(NO_TIMEOUT),
        }
    }

    fn released_error(&self) -> Error {
        Error::failed_precondition(format!(
            "lease {} of pool \"{}\" was already released; acquire a new connection from the pool",
            self.id, self.pool_name
        ))
    }

    fn check(&self, py: Python<'_>) -> PyResult<()> {
        if self.released.load(Ordering::Acquire) {
            return Err(self.released_error()).or_raise(py);
        }
        Ok(())
    }

    fn read(&self) -> RwLockReadGuard<'_, Option<CoreLease>> {
        // Every update of the slot is a single `take`, so a poisoned lock is still sound.
        self.lease.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `op` on the socket with the GIL released.
    fn io<T: Send>(
        &self,
        py: Python<'_>,
        op: impl FnOnce(&Socket) -> Result<T, Error> + Send,
    ) -> PyResult<T> {
        self.check(py)?;
        py.detach(|| match self.read().as_deref() {
            Some(conn) => op(conn.socket()?),
            None => Err(self.released_error()),
        })
        .or_raise(py)
    }

    /// Takes the core lease out, waiting (GIL released) for sends and receives in
    /// other threads to finish.
    fn take(&self, py: Python<'_>) -> Option<CoreLease> {
        self.released.store(true, Ordering::Release);
        let taken = match self.lease.try_write() {
            Ok(mut slot) => slot.take(),
            Err(TryLockError::Poisoned(p)) => p.into_inner().take(),
            Err(TryLockError::WouldBlock) => {
                py.detach(|| self.lease.write().unwrap_or_else(|p| p.into_inner()).take())
            }
        };
        // The socket's timeout belongs to this lease; the pool resets it on return
        // (core's `recycle`), so only the value reported by gettimeout() is cleared.
        self.timeout_bits.store(NO_TIMEOUT, Ordering::Release);
        taken
    }
}

/// Bytes to send, from any bytes-like object: `bytes` is shared without a copy (it is
/// immutable), `bytearray` and other buffers (`memoryview`, `array`) are copied, so the
/// data cannot change while the GIL is released.
pub(crate) fn bytes_arg(data: &Bound<'_, PyAny>) -> PyResult<PyBackedBytes> {
    if let Ok(b) = data.extract::<PyBackedBytes>() {
        return Ok(b);
    }
    // memoryview() accepts exactly the objects that support the buffer protocol and
    // raises TypeError ("a bytes-like object is required") for the rest.
    let view = PyMemoryView::from(data)?;
    let copy = view.call_method0("tobytes")?.cast_into::<PyBytes>()?;
    Ok(PyBackedBytes::from(copy))
}

#[pymethods]
impl PyLease {
    /// The connection's id, unique within its pool and never reused.
    #[getter]
    fn id(&self) -> u64 {
        self.id
    }

    /// The name of the pool it came from.
    #[getter]
    fn pool_name(&self) -> &str {
        &self.pool_name
    }

    /// Whether it was released or discarded.
    #[getter]
    fn released(&self) -> bool {
        self.released.load(Ordering::Acquire)
    }

    /// The endpoint it is connected to, as written in the pool's target
    /// (`"tcp://127.0.0.1:6379"`; for a custom pool, the name handed to `connect`).
    #[getter]
    fn endpoint(&self, py: Python<'_>) -> PyResult<String> {
        self.check(py)?;
        match self.read().as_ref() {
            Some(lease) => Ok(lease.endpoint().to_string()),
            None => Err(self.released_error()),
        }
        .or_raise(py)
    }

    /// Reports the result of work done on this connection outside the socket helpers
    /// (`latency` in seconds), for its endpoint's breaker, success rate and quality.
    #[pyo3(signature = (success, latency))]
    fn report(&self, py: Python<'_>, success: bool, latency: f64) -> PyResult<()> {
        let latency = config::seconds(py, "latency", Some(latency))?.unwrap_or_default();
        self.check(py)?;
        // A report that opens the breaker evicts connections (a custom close may run),
        // and a callback may get the event on this thread: GIL released.
        py.detach(|| match self.read().as_ref() {
            Some(lease) => {
                lease.report(success, latency);
                Ok(())
            }
            None => Err(self.released_error()),
        })
        .or_raise(py)
    }

    /// The socket's file descriptor (blocking mode while leased; stays owned by the pool).
    fn fileno(&self, py: Python<'_>) -> PyResult<i32> {
        self.check(py)?;
        match self.fd {
            Some(fd) => Ok(fd),
            None => self.io(py, |s| Ok(s.fd())),
        }
    }

    /// The program's object, for a lease of a pool made with a `connect` callable
    /// (raises `FailedPrecondition` for a built-in socket).
    #[getter]
    fn obj(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.check(py)?;
        let slot = self.read();
        match slot.as_deref() {
            Some(conn) => conn.custom().map(|o| o.get(py)),
            None => Err(self.released_error()),
        }
        .or_raise(py)
    }

    /// Sends some of `data`; returns how many bytes went.
    #[pyo3(signature = (data, /))]
    fn send(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<usize> {
        let data = bytes_arg(data)?;
        self.io(py, |s| s.send(&data))
    }

    /// Sends all of `data`.
    #[pyo3(signature = (data, /))]
    fn sendall(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let data = bytes_arg(data)?;
        self.io(py, |s| s.send_all(&data))
    }

    /// Receives up to `bufsize` bytes, waiting for at least one; `b""` means the peer
    /// closed the connection.
    #[pyo3(signature = (bufsize, /))]
    fn recv<'py>(&self, py: Python<'py>, bufsize: i64) -> PyResult<Bound<'py, PyBytes>> {
        let n = usize::try_from(bufsize)
            .map_err(|_| {
                Error::invalid_argument(format!("recv: bufsize must be >= 0, got {bufsize}"))
            })
            .or_raise(py)?;
        if n == 0 {
            self.check(py)?;
            return Ok(PyBytes::new(py, b""));
        }
        let buf = self.io(py, |s| {
            let mut buf = vec![0u8; n.min(MAX_RECV)];
            let got = s.recv(&mut buf)?;
            buf.truncate(got);
            Ok(buf)
        })?;
        Ok(PyBytes::new(py, &buf))
    }

    /// Sets the timeout of each send and recv in seconds (`None`: wait forever), like
    /// `socket.settimeout`. A call that passes it raises `switchboard.Timeout`. The
    /// setting ends with the lease.
    #[pyo3(signature = (timeout, /))]
    fn settimeout(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
        let duration = config::seconds(py, "timeout", timeout)?;
        self.io(py, |s| s.set_timeout(duration))?;
        let bits = timeout.map_or(NO_TIMEOUT, f64::to_bits);
        self.timeout_bits.store(bits, Ordering::Release);
        Ok(())
    }

    /// The timeout set by `settimeout`, in seconds, or `None`.
    fn gettimeout(&self) -> Option<f64> {
        match self.timeout_bits.load(Ordering::Acquire) {
            NO_TIMEOUT => None,
            bits => Some(f64::from_bits(bits)),
        }
    }

    /// Returns the connection to the pool. Safe to call twice.
    fn release(&self, py: Python<'_>) {
        drop(self.take(py));
    }

    /// Closes the connection instead of returning it (after an error on it, or when
    /// the conversation on it is in an unknown state). Safe to call twice.
    fn discard(&self, py: Python<'_>) {
        if let Some(lease) = self.take(py) {
            lease.discard();
        }
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    /// Leaving a `with` block releases the connection, or discards it if the block
    /// raised (what was sent or left unread on it is unknown).
    #[pyo3(signature = (exc_type, _exc_value, _traceback))]
    fn __exit__(
        &self,
        py: Python<'_>,
        exc_type: Option<Bound<'_, PyAny>>,
        _exc_value: Option<Bound<'_, PyAny>>,
        _traceback: Option<Bound<'_, PyAny>>,
    ) -> bool {
        if exc_type.is_some() {
            self.discard(py);
        } else {
            self.release(py);
        }
        false
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let pool = PyString::new(py, &self.pool_name).repr()?;
        Ok(if self.released() {
            format!("<switchboard.Lease pool={pool} id={} released>", self.id)
        } else if let Some(fd) = self.fd {
            format!("<switchboard.Lease pool={pool} id={} fd={fd}>", self.id)
        } else {
            format!("<switchboard.Lease pool={pool} id={} custom>", self.id)
        })
    }
}

//! `_native.ResourceHandle`: one consumer's share of a resource, socket-like for the
//! built-in types (`fileno`, `send`, `sendall`, `recv`, `settimeout`), the program's
//! object for a registered type.
//!
//! Every I/O call goes through core's handle, so it uses the resource's current socket
//! (it changes across reconnects and updates) and is counted in the resource's bytes;
//! each runs with the GIL released.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};
use switchboard_core::{Error, Manager, ResourceHandle};

use crate::config;
use crate::custom::Obj;
use crate::errors::OrRaise;
use crate::lease::{MAX_RECV, NO_TIMEOUT, bytes_arg};
use crate::manager::drop_detached;
use crate::pool::{DoneReply, PyAcquireTask};

/// A consumer's handle. Created by `Resources.attach` and `attach_anonymous`; detached
/// by `detach()`, by leaving a `with` block, or when garbage-collected.
#[pyclass(frozen, name = "ResourceHandle", module = "switchboard._native")]
pub struct PyResourceHandle {
    /// `Option` only so that `Drop` can drop it (a detach, which may close an
    /// anonymous resource's connection) with the GIL released.
    handle: Option<Arc<ResourceHandle>>,
    /// For `ready_async`'s task, and so the manager outlives its handles.
    manager: Option<Manager>,
    /// This consumer's `settimeout` value as f64 bits, or `NO_TIMEOUT`.
    timeout_bits: AtomicU64,
}

impl PyResourceHandle {
    pub(crate) fn new(handle: ResourceHandle, manager: Manager) -> Self {
        PyResourceHandle {
            handle: Some(Arc::new(handle)),
            manager: Some(manager),
            timeout_bits: AtomicU64::new(NO_TIMEOUT),
        }
    }

    fn h(&self, py: Python<'_>) -> PyResult<&Arc<ResourceHandle>> {
        self.handle
            .as_ref()
            .ok_or_else(|| Error::internal("the native resource handle was already dropped"))
            .or_raise(py)
    }

    fn timeout(&self) -> Option<Duration> {
        match self.timeout_bits.load(Ordering::Acquire) {
            NO_TIMEOUT => None,
            bits => Duration::try_from_secs_f64(f64::from_bits(bits)).ok(),
        }
    }

    /// Runs `op` on core's handle with the GIL released, after giving the current
    /// socket this consumer's timeout (the socket is shared: each call sets its own).
    fn io<T: Send>(
        &self,
        py: Python<'_>,
        op: impl FnOnce(&ResourceHandle) -> Result<T, Error> + Send,
    ) -> PyResult<T> {
        let h = self.h(py)?;
        let timeout = self.timeout();
        py.detach(|| {
            h.socket()?.set_timeout(timeout)?;
            op(h)
        })
        .or_raise(py)
    }
}

impl Drop for PyResourceHandle {
    fn drop(&mut self) {
        drop_detached((self.handle.take(), self.manager.take()));
    }
}

#[pymethods]
impl PyResourceHandle {
    /// The resource's id (`anonymous-<n>` for an anonymous one).
    #[getter]
    fn id(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.h(py)?.id().to_string())
    }

    /// This consumer's name.
    #[getter]
    fn consumer(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.h(py)?.consumer().to_string())
    }

    /// The resource's status now.
    #[getter]
    fn status(&self, py: Python<'_>) -> PyResult<&'static str> {
        Ok(self.h(py)?.status().as_str())
    }

    /// The current socket's file descriptor (it changes across reconnects: take it
    /// again for each use).
    fn fileno(&self, py: Python<'_>) -> PyResult<i32> {
        let h = self.h(py)?;
        h.socket().map(|s| s.fd()).or_raise(py)
    }

    /// Sends all of `data` on the current socket; returns its length.
    #[pyo3(signature = (data, /))]
    fn send(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<usize> {
        let data = bytes_arg(data)?;
        self.io(py, |h| h.send_all(&data).map(|()| data.len()))
    }

    /// Sends all of `data` on the current socket.
    #[pyo3(signature = (data, /))]
    fn sendall(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let data = bytes_arg(data)?;
        self.io(py, |h| h.send_all(&data))
    }

    /// Receives up to `bufsize` bytes from the current socket; `b""` means the peer
    /// closed it.
    #[pyo3(signature = (bufsize, /))]
    fn recv<'py>(&self, py: Python<'py>, bufsize: i64) -> PyResult<Bound<'py, PyBytes>> {
        let n = usize::try_from(bufsize)
            .map_err(|_| {
                Error::invalid_argument(format!("recv: bufsize must be >= 0, got {bufsize}"))
            })
            .or_raise(py)?;
        let buf = self.io(py, |h| {
            let mut buf = vec![0u8; n.min(MAX_RECV)];
            let got = if n == 0 { 0 } else { h.recv(&mut buf)? };
            buf.truncate(got);
            Ok(buf)
        })?;
        Ok(PyBytes::new(py, &buf))
    }

    /// Sets this consumer's timeout of each send and recv in seconds (`None`: wait
    /// forever).
    #[pyo3(signature = (timeout, /))]
    fn settimeout(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
        config::seconds(py, "timeout", timeout)?;
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

    /// Waits up to `timeout` seconds (GIL released) until the resource is connected.
    fn wait_ready(&self, py: Python<'_>, timeout: f64) -> PyResult<()> {
        let timeout = config::seconds(py, "timeout", Some(timeout))?.unwrap_or_default();
        let h = self.h(py)?;
        py.detach(|| h.wait_ready(timeout)).or_raise(py)
    }

    /// Starts `wait_ready(timeout)` on the manager's runtime; `callback(None)` or
    /// `callback(exception)` is called once on a runtime thread with the GIL held. The
    /// returned task's `cancel()` stops the wait (the callback then gets Unavailable).
    fn ready_async(
        &self,
        py: Python<'_>,
        timeout: f64,
        callback: Py<PyAny>,
    ) -> PyResult<PyAcquireTask> {
        let timeout = config::seconds(py, "timeout", Some(timeout))?.unwrap_or_default();
        let h = self.h(py)?.clone();
        let manager = self
            .manager
            .as_ref()
            .ok_or_else(|| Error::internal("the native resource handle was already dropped"))
            .or_raise(py)?;
        let mut reply = DoneReply::new(
            callback,
            "the wait for the resource ended before it was ready (cancelled, or the manager closed)",
        );
        // If the runtime is closed the task is dropped unrun and its reply has
        // reported Unavailable through the callback.
        let spawned = manager.runtime().spawn(async move {
            let result = h.ready(timeout).await;
            reply.send(result);
        });
        Ok(PyAcquireTask::running(
            spawned.ok().map(|j| j.abort_handle()),
        ))
    }

    /// Tells the resource this consumer saw an error: it checks the connection now.
    fn report_failure(&self, py: Python<'_>) -> PyResult<()> {
        self.h(py)?.report_failure();
        Ok(())
    }

    /// The program's object, for a resource of a registered type.
    fn object(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let obj: Obj = self.h(py)?.object::<Obj>().or_raise(py)?;
        Ok(obj.get(py))
    }

    /// Lets go of the resource. Safe to call twice.
    fn detach(&self, py: Python<'_>) -> PyResult<()> {
        let h = self.h(py)?;
        py.detach(|| h.detach());
        Ok(())
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let h = self.h(py)?;
        let id = PyString::new(py, h.id()).repr()?;
        let consumer = PyString::new(py, h.consumer()).repr()?;
        Ok(format!(
            "<switchboard.ResourceHandle {id} consumer={consumer} {}>",
            h.status().as_str()
        ))
    }
}

//! `_native.Resources` and `_native.ResourceHandle`: the manager's named shared
//! connections (core's `Resources`) and one consumer's share of one.
//!
//! Only translation: props arrive as `(key, value)` strings (the package converts
//! Python values; core resolves natural key spellings, validates and names a bad key),
//! snapshots leave as dicts, and every call that may wait (create and update write the
//! store, update dials, delete closes connections, wait_ready waits) runs with the GIL
//! released. Custom types reuse the connector custom pools are built on
//! ([`crate::custom::connector`]): `connect` and `check` run on the runtime's blocking
//! threads and take the GIL there; `close` runs where the last holder lets go.

mod handle;

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use switchboard_core::{Error, Manager, ResourceInfo, Resources};

pub use handle::PyResourceHandle;

use crate::config;
use crate::custom::{self, Causes, Obj};
use crate::errors::OrRaise;
use crate::manager::drop_detached;

/// Props as core takes them.
fn props(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// A snapshot as the dict `switchboard.ResourceInfo` is built from (`type` is core's
/// `kind`; `connected_for` in seconds or None).
fn info_dict<'py>(py: Python<'py>, i: &ResourceInfo) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("id", &i.id)?;
    d.set_item("type", &i.kind)?;
    d.set_item("endpoint", &i.endpoint)?;
    d.set_item("anonymous", i.anonymous)?;
    d.set_item("status", i.status.as_str())?;
    d.set_item("last_error", i.last_error.as_deref())?;
    d.set_item("stopped", i.stopped)?;
    d.set_item("consumers", &i.consumers)?;
    d.set_item("reconnects", i.reconnects)?;
    d.set_item("bytes_in", i.bytes_in)?;
    d.set_item("bytes_out", i.bytes_out)?;
    d.set_item("connected_for", i.connected_for.map(|d| d.as_secs_f64()))?;
    Ok(d)
}

/// The native resources. Python code uses `switchboard.Resources`, which wraps it.
#[pyclass(frozen, name = "Resources", module = "switchboard._native")]
pub struct PyResources {
    /// Keeps the manager alive as long as this is reachable. `Option` only so that
    /// `Drop` can drop it with the GIL released.
    manager: Option<Manager>,
}

impl PyResources {
    pub(crate) fn new(manager: Manager) -> Self {
        PyResources {
            manager: Some(manager),
        }
    }

    fn manager(&self, py: Python<'_>) -> PyResult<&Manager> {
        self.manager
            .as_ref()
            .ok_or_else(|| Error::internal("the native resources object was already dropped"))
            .or_raise(py)
    }

    fn resources(&self, py: Python<'_>) -> PyResult<&Resources> {
        self.manager(py).map(Manager::resources)
    }

    fn handle(
        &self,
        py: Python<'_>,
        handle: switchboard_core::ResourceHandle,
    ) -> PyResult<PyResourceHandle> {
        Ok(PyResourceHandle::new(handle, self.manager(py)?.clone()))
    }
}

impl Drop for PyResources {
    fn drop(&mut self) {
        drop_detached(self.manager.take());
    }
}

#[pymethods]
impl PyResources {
    /// Creates resource `id` of type `kind` with `props` (`endpoint` and pool keys).
    fn create(
        &self,
        py: Python<'_>,
        id: &str,
        kind: &str,
        props: Vec<(String, String)>,
    ) -> PyResult<()> {
        let r = self.resources(py)?;
        py.detach(|| r.create(id, kind, &self::props(&props)))
            .or_raise(py)
    }

    /// Attaches consumer `consumer` to resource `id`.
    fn attach(&self, py: Python<'_>, id: &str, consumer: &str) -> PyResult<PyResourceHandle> {
        let h = self.resources(py)?.attach(id, consumer).or_raise(py)?;
        self.handle(py, h)
    }

    /// Attaches to the unnamed resource of `kind` with `props`, shared by equal props.
    fn attach_anonymous(
        &self,
        py: Python<'_>,
        kind: &str,
        props: Vec<(String, String)>,
        consumer: &str,
    ) -> PyResult<PyResourceHandle> {
        let r = self.resources(py)?;
        let h = py
            .detach(|| r.attach_anonymous(kind, &self::props(&props), consumer))
            .or_raise(py)?;
        self.handle(py, h)
    }

    /// Updates resource `id` to `props`: dials the new connection (GIL released),
    /// then swaps it in for every consumer.
    fn update(&self, py: Python<'_>, id: &str, props: Vec<(String, String)>) -> PyResult<()> {
        let r = self.resources(py)?;
        py.detach(|| r.update(id, &self::props(&props)))
            .or_raise(py)
    }

    /// Deletes resource `id` (FailedPrecondition while attached, unless `force`).
    fn delete(&self, py: Python<'_>, id: &str, force: bool) -> PyResult<()> {
        let r = self.resources(py)?;
        py.detach(|| r.delete(id, force)).or_raise(py)
    }

    /// A snapshot of resource `id`, as a dict.
    fn get<'py>(&self, py: Python<'py>, id: &str) -> PyResult<Bound<'py, PyDict>> {
        let info = self.resources(py)?.get(id).or_raise(py)?;
        info_dict(py, &info)
    }

    /// Every resource, sorted by id, as dicts.
    fn list<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let all = self.resources(py)?.list().or_raise(py)?;
        all.iter().map(|i| info_dict(py, i)).collect()
    }

    /// Waits up to `timeout` seconds (GIL released) until resource `id` is connected.
    fn wait_ready(&self, py: Python<'_>, id: &str, timeout: f64) -> PyResult<()> {
        let timeout = config::seconds(py, "timeout", Some(timeout))?.unwrap_or_default();
        let r = self.resources(py)?;
        py.detach(|| r.wait_ready(id, timeout)).or_raise(py)
    }

    /// A consumer of resource `id` saw an error: check (and probe) it now.
    fn report_failure(&self, py: Python<'_>, id: &str) -> PyResult<()> {
        self.resources(py)?.report_failure(id).or_raise(py)
    }

    /// Registers type `name` of the program's objects, made by `connect(endpoint)`,
    /// checked by `check(obj)` and closed by `close(obj)` (the callables custom pools
    /// take; the package wraps coroutine functions).
    #[pyo3(signature = (name, connect, check=None, close=None))]
    fn register_type(
        &self,
        py: Python<'_>,
        name: &str,
        connect: Py<PyAny>,
        check: Option<Py<PyAny>>,
        close: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        let r = self.resources(py)?;
        // A resource's connect errors reach the program as `last_error` text, not as
        // an exception, so the causes are not kept for anyone.
        let connector = custom::connector(connect, check, close, Arc::new(Causes::default()));
        // Stored resources of this type are recreated now (their dials start).
        py.detach(|| r.register_type::<Obj>(name, connector))
            .or_raise(py)
    }
}

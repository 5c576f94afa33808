//! `_native.Cluster`: the manager's membership in its cluster (core's `Cluster`,
//! docs/cluster.md), present when `cluster.redis_url` is set.
//!
//! Every cluster-wide call waits for the other instances' answers, up to
//! `cluster.request_timeout`: the blocking forms run with the GIL released, and the
//! `*_async` forms run core's futures on the manager's runtime and hand the result to
//! a callback (`callback(value, None)` or `callback(None, exception)`, once, on a
//! runtime thread with the GIL held), which the package turns into an asyncio future.
//! Targets, filters and messages are converted as the registry's calls convert them;
//! results are the dicts and tuples the package's dataclasses are built from.

use std::future::Future;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use switchboard_core::cluster::{
    Answered, Cluster, ClusterBroadcast, ClusterCount, ClusterList, ClusterResource, ClusterStats,
    Member,
};
use switchboard_core::{Error, Manager};

use crate::errors::{self, OrRaise};
use crate::manager::drop_detached;
use crate::pool::PyAcquireTask;
use crate::registry::{info_dict, list_filter, message, report_tuple, stats_dict, target};

/// The native cluster. Python code uses `switchboard.Cluster`, which wraps it.
#[pyclass(frozen, name = "Cluster", module = "switchboard._native")]
pub struct PyCluster {
    /// Core's cluster and the manager it belongs to (kept alive as long as this is
    /// reachable). `Option` only so that `Drop` can drop them with the GIL released.
    inner: Option<(Cluster, Manager)>,
}

impl PyCluster {
    /// The cluster of `manager`, or `None` when `cluster.redis_url` is not set.
    pub(crate) fn of(manager: &Manager) -> Option<PyCluster> {
        let cluster = manager.cluster()?.clone();
        Some(PyCluster {
            inner: Some((cluster, manager.clone())),
        })
    }

    fn parts(&self, py: Python<'_>) -> PyResult<&(Cluster, Manager)> {
        self.inner
            .as_ref()
            .ok_or_else(|| Error::internal("the native cluster object was already dropped"))
            .or_raise(py)
    }

    fn cluster(&self, py: Python<'_>) -> PyResult<&Cluster> {
        self.parts(py).map(|(c, _)| c)
    }

    /// Runs `call(cluster)`, a future of core's, on the manager's runtime and reports
    /// its result, converted by `convert`, to `callback`; the returned task cancels it.
    fn spawn<T, F>(
        &self,
        py: Python<'_>,
        what: &'static str,
        callback: Py<PyAny>,
        convert: Convert<T>,
        call: impl FnOnce(Cluster) -> F,
    ) -> PyResult<PyAcquireTask>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, Error>> + Send + 'static,
    {
        let (cluster, manager) = self.parts(py)?;
        let fut = call(cluster.clone());
        let mut reply = Reply {
            callback: Some(callback),
            convert,
            what,
        };
        // If the runtime is closed the task is dropped unrun and its reply has
        // reported Unavailable through the callback.
        let spawned = manager.runtime().spawn(async move {
            let result = fut.await;
            reply.send(result);
        });
        Ok(PyAcquireTask::running(
            spawned.ok().map(|j| j.abort_handle()),
        ))
    }
}

impl Drop for PyCluster {
    fn drop(&mut self) {
        drop_detached(self.inner.take());
    }
}

/// Turns a core result into the Python value the package expects.
type Convert<T> = for<'py> fn(Python<'py>, T) -> PyResult<Bound<'py, PyAny>>;

/// Delivers the result of an `*_async` call to its callback, exactly once (from
/// `Drop` with Unavailable if the runtime shuts down or the task is cancelled first).
struct Reply<T> {
    callback: Option<Py<PyAny>>,
    convert: Convert<T>,
    what: &'static str,
}

impl<T> Reply<T> {
    fn send(&mut self, result: Result<T, Error>) {
        let Some(callback) = self.callback.take() else {
            return;
        };
        let convert = self.convert;
        // An interpreter that is shutting down is not waited for.
        let _ = Python::try_attach(move |py| {
            let args = match result.map_err(|e| errors::to_pyerr(py, &e)) {
                Ok(value) => match convert(py, value) {
                    Ok(v) => (v.unbind(), py.None()),
                    Err(e) => (py.None(), e.into_value(py).into_any()),
                },
                Err(e) => (py.None(), e.into_value(py).into_any()),
            };
            if let Err(e) = callback.call1(py, args) {
                e.write_unraisable(py, Some(callback.bind(py)));
            }
        });
    }
}

impl<T> Drop for Reply<T> {
    fn drop(&mut self) {
        if self.callback.is_some() {
            let what = self.what;
            self.send(Err(Error::unavailable(format!(
                "the cluster {what} ended before it was answered (cancelled, or the manager closed)"
            ))));
        }
    }
}

// ---- results as dicts --------------------------------------------------------------

/// A member as the dict `switchboard.Member` is built from (`last_seen` in seconds).
fn member_dict<'py>(py: Python<'py>, m: &Member) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("node_id", &m.node_id)?;
    d.set_item("number", m.number)?;
    d.set_item("address", &m.address)?;
    d.set_item("connections", m.connections)?;
    d.set_item("pools", m.pools)?;
    d.set_item("last_seen", m.last_seen.as_secs_f64())?;
    d.set_item("local", m.local)?;
    Ok(d)
}

/// A dict with `answered`'s two lists (`nodes`, `missing`), for a result to add to.
fn answered_dict<'py>(py: Python<'py>, a: &Answered) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("nodes", &a.nodes)?;
    d.set_item("missing", &a.missing)?;
    Ok(d)
}

/// `{local: report tuple, remote: [(node, recipients)], unacknowledged}`.
fn broadcast_any(py: Python<'_>, b: ClusterBroadcast) -> PyResult<Bound<'_, PyAny>> {
    let d = PyDict::new(py);
    d.set_item("local", report_tuple(&b.local))?;
    d.set_item("remote", &b.remote)?;
    d.set_item("unacknowledged", b.unacknowledged)?;
    Ok(d.into_any())
}

/// `{connections: [(node, conn dict)], next_cursor, nodes, missing}`.
fn list_any(py: Python<'_>, l: ClusterList) -> PyResult<Bound<'_, PyAny>> {
    let d = answered_dict(py, &l.answered)?;
    let conns = l
        .connections
        .iter()
        .map(|(node, c)| Ok((node.as_str(), info_dict(py, c)?)))
        .collect::<PyResult<Vec<_>>>()?;
    d.set_item("connections", conns)?;
    d.set_item("next_cursor", l.next_cursor)?;
    Ok(d.into_any())
}

/// `{total, by_node: [(node, count)], nodes, missing}`.
fn count_any(py: Python<'_>, c: ClusterCount) -> PyResult<Bound<'_, PyAny>> {
    let d = answered_dict(py, &c.answered)?;
    d.set_item("total", c.total)?;
    d.set_item("by_node", &c.by_node)?;
    Ok(d.into_any())
}

/// `{total: stats dict, by_node: [(node, stats dict)], nodes, missing}`.
fn stats_any(py: Python<'_>, s: ClusterStats) -> PyResult<Bound<'_, PyAny>> {
    let d = answered_dict(py, &s.answered)?;
    d.set_item("total", stats_dict(py, &s.total)?)?;
    let by_node = s
        .by_node
        .iter()
        .map(|(node, st)| Ok((node.as_str(), stats_dict(py, st)?)))
        .collect::<PyResult<Vec<_>>>()?;
    d.set_item("by_node", by_node)?;
    Ok(d.into_any())
}

/// `{id, by_node: [(node, status)], nodes, missing}`.
fn resource_any(py: Python<'_>, r: ClusterResource) -> PyResult<Bound<'_, PyAny>> {
    let d = answered_dict(py, &r.answered)?;
    d.set_item("id", &r.id)?;
    d.set_item("by_node", &r.by_node)?;
    Ok(d.into_any())
}

// ---- the calls ---------------------------------------------------------------------

#[pymethods]
impl PyCluster {
    /// `cluster.name`.
    #[getter]
    fn name(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.cluster(py)?.name().to_string())
    }

    /// This instance's `cluster.node_id`.
    #[getter]
    fn node_id(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.cluster(py)?.node_id().to_string())
    }

    /// This instance's number (the top bits of its connection ids).
    #[getter]
    fn node_number(&self, py: Python<'_>) -> PyResult<u64> {
        Ok(self.cluster(py)?.node_number())
    }

    /// Whether Redis is reachable and this instance takes part.
    #[getter]
    fn joined(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(self.cluster(py)?.is_joined())
    }

    /// The live members as of the last heartbeat, as dicts (non-blocking).
    fn members<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        self.cluster(py)?
            .members()
            .iter()
            .map(|m| member_dict(py, m))
            .collect()
    }

    /// A broadcast to every instance that waits for their acknowledgements (GIL
    /// released).
    #[pyo3(signature = (msg, all, topics, users, ids, exclude))]
    #[allow(clippy::too_many_arguments)]
    fn broadcast<'py>(
        &self,
        py: Python<'py>,
        msg: &Bound<'_, PyAny>,
        all: bool,
        topics: Vec<String>,
        users: Vec<String>,
        ids: Vec<u64>,
        exclude: Vec<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let msg = message(py, msg)?;
        let t = target(all, topics, users, ids, exclude);
        let cluster = self.cluster(py)?;
        let got = py.detach(|| cluster.broadcast(&t, msg)).or_raise(py)?;
        broadcast_any(py, got)
    }

    /// `broadcast` on the runtime; the result goes to `callback(value, error)`.
    #[pyo3(signature = (msg, all, topics, users, ids, exclude, callback))]
    #[allow(clippy::too_many_arguments)]
    fn broadcast_async(
        &self,
        py: Python<'_>,
        msg: &Bound<'_, PyAny>,
        all: bool,
        topics: Vec<String>,
        users: Vec<String>,
        ids: Vec<u64>,
        exclude: Vec<u64>,
        callback: Py<PyAny>,
    ) -> PyResult<PyAcquireTask> {
        let msg = message(py, msg)?;
        let t = target(all, topics, users, ids, exclude);
        self.spawn(py, "broadcast", callback, broadcast_any, |c| async move {
            c.broadcast_async(&t, msg).await
        })
    }

    /// One page of the connections of every live member (GIL released).
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
    ) -> PyResult<Bound<'py, PyAny>> {
        let filter = list_filter(py, user, topic, meta, state, min_idle, limit, cursor)?;
        let cluster = self.cluster(py)?;
        let got = py.detach(|| cluster.list(&filter)).or_raise(py)?;
        list_any(py, got)
    }

    /// `list` on the runtime; the result goes to `callback(value, error)`.
    #[pyo3(signature = (user, topic, meta, state, min_idle, limit, cursor, callback))]
    #[allow(clippy::too_many_arguments)]
    fn list_async(
        &self,
        py: Python<'_>,
        user: Option<String>,
        topic: Option<String>,
        meta: Option<(String, String)>,
        state: Option<&str>,
        min_idle: Option<f64>,
        limit: usize,
        cursor: Option<u64>,
        callback: Py<PyAny>,
    ) -> PyResult<PyAcquireTask> {
        let filter = list_filter(py, user, topic, meta, state, min_idle, limit, cursor)?;
        self.spawn(py, "list", callback, list_any, |c| async move {
            c.list_async(&filter).await
        })
    }

    /// Disconnects what the target matches on every live member (GIL released).
    #[pyo3(signature = (all, topics, users, ids, exclude, reason))]
    #[allow(clippy::too_many_arguments)]
    fn disconnect<'py>(
        &self,
        py: Python<'py>,
        all: bool,
        topics: Vec<String>,
        users: Vec<String>,
        ids: Vec<u64>,
        exclude: Vec<u64>,
        reason: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let t = target(all, topics, users, ids, exclude);
        let cluster = self.cluster(py)?;
        let got = py.detach(|| cluster.disconnect(&t, reason)).or_raise(py)?;
        count_any(py, got)
    }

    /// `disconnect` on the runtime; the result goes to `callback(value, error)`.
    #[pyo3(signature = (all, topics, users, ids, exclude, reason, callback))]
    #[allow(clippy::too_many_arguments)]
    fn disconnect_async(
        &self,
        py: Python<'_>,
        all: bool,
        topics: Vec<String>,
        users: Vec<String>,
        ids: Vec<u64>,
        exclude: Vec<u64>,
        reason: String,
        callback: Py<PyAny>,
    ) -> PyResult<PyAcquireTask> {
        let t = target(all, topics, users, ids, exclude);
        self.spawn(py, "disconnect", callback, count_any, |c| async move {
            c.disconnect_async(&t, &reason).await
        })
    }

    /// The registry statistics of every live member, and their sum (GIL released).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let cluster = self.cluster(py)?;
        let got = py.detach(|| cluster.stats()).or_raise(py)?;
        stats_any(py, got)
    }

    /// `stats` on the runtime; the result goes to `callback(value, error)`.
    fn stats_async(&self, py: Python<'_>, callback: Py<PyAny>) -> PyResult<PyAcquireTask> {
        self.spawn(py, "stats", callback, stats_any, |c| async move {
            c.stats_async().await
        })
    }

    /// Named resource `id`'s status on every live member (GIL released).
    fn resource_status<'py>(&self, py: Python<'py>, id: &str) -> PyResult<Bound<'py, PyAny>> {
        let cluster = self.cluster(py)?;
        let got = py.detach(|| cluster.resource_status(id)).or_raise(py)?;
        resource_any(py, got)
    }

    /// `resource_status` on the runtime; the result goes to `callback(value, error)`.
    fn resource_status_async(
        &self,
        py: Python<'_>,
        id: String,
        callback: Py<PyAny>,
    ) -> PyResult<PyAcquireTask> {
        self.spawn(
            py,
            "resource_status",
            callback,
            resource_any,
            |c| async move { c.resource_status_async(&id).await },
        )
    }
}

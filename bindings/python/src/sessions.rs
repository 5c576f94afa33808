//! `_native.Sessions`: a manager's sessions and stream offsets (core's `Sessions`).
//!
//! Calls that may touch the offset store's file (open, resume, add_stream, close,
//! commit, seek, committed, flush) run with the GIL released; the counters (record_read,
//! deliver, record_router, position) are a few atomic adds and keep the GIL.

use pyo3::prelude::*;
use pyo3::types::PyDict;
use switchboard_core::sessions::{SessionDetails, SessionInfo, Sessions, StreamInfo};
use switchboard_core::{Error, Manager};

use crate::errors::OrRaise;
use crate::manager::drop_detached;

/// The native sessions object. Python code uses `switchboard.Sessions`, which wraps it.
#[pyclass(frozen, name = "Sessions", module = "switchboard._native")]
pub struct PySessions {
    /// Keeps the manager (its sessions and store) alive as long as this is reachable.
    /// `Option` only so that `Drop` can drop it with the GIL released.
    manager: Option<Manager>,
}

impl PySessions {
    pub(crate) fn new(manager: Manager) -> Self {
        PySessions {
            manager: Some(manager),
        }
    }

    fn sessions(&self, py: Python<'_>) -> PyResult<&Sessions> {
        self.manager
            .as_ref()
            .map(Manager::sessions)
            .ok_or_else(|| Error::internal("the native sessions object was already dropped"))
            .or_raise(py)
    }
}

impl Drop for PySessions {
    fn drop(&mut self) {
        drop_detached(self.manager.take());
    }
}

#[pymethods]
impl PySessions {
    /// Registers a data source's session key; `True` if it was new.
    fn register(&self, py: Python<'_>, data_source: &str, session_key: &str) -> PyResult<bool> {
        self.sessions(py)?
            .register(data_source, session_key)
            .or_raise(py)
    }

    /// Removes a session key from the catalog; `True` if it was there.
    fn unregister(&self, py: Python<'_>, data_source: &str, session_key: &str) -> PyResult<bool> {
        self.sessions(py)?
            .unregister(data_source, session_key)
            .or_raise(py)
    }

    /// Whether the session key of the data source is registered.
    fn is_registered(
        &self,
        py: Python<'_>,
        data_source: &str,
        session_key: &str,
    ) -> PyResult<bool> {
        self.sessions(py)?
            .is_registered(data_source, session_key)
            .or_raise(py)
    }

    /// The registered `(data_source, session_key)` pairs, sorted.
    fn catalog(&self, py: Python<'_>) -> PyResult<Vec<(String, String)>> {
        self.sessions(py)?.catalog().or_raise(py)
    }

    /// Opens a session; returns its id. GIL released (reads the offset store).
    fn open(
        &self,
        py: Python<'_>,
        data_source: String,
        session_key: String,
        streams: Vec<String>,
        stream_offsets: Vec<i64>,
        exclude_main_stream: bool,
    ) -> PyResult<u64> {
        let sessions = self.sessions(py)?;
        let details = SessionDetails {
            data_source,
            session_key,
            streams,
            stream_offsets,
            exclude_main_stream,
        };
        py.detach(|| sessions.open(&details)).or_raise(py)
    }

    /// Opens a session whose streams start at their committed offsets. GIL released.
    fn resume(
        &self,
        py: Python<'_>,
        data_source: String,
        session_key: String,
        streams: Vec<String>,
        exclude_main_stream: bool,
    ) -> PyResult<u64> {
        let sessions = self.sessions(py)?;
        py.detach(|| {
            let names: Vec<&str> = streams.iter().map(String::as_str).collect();
            sessions.resume(&data_source, &session_key, &names, exclude_main_stream)
        })
        .or_raise(py)
    }

    /// Session `id` as a dict (the package turns it into `switchboard.SessionInfo`).
    fn get<'py>(&self, py: Python<'py>, id: u64) -> PyResult<Bound<'py, PyDict>> {
        let info = self.sessions(py)?.get(id).or_raise(py)?;
        session_dict(py, &info)
    }

    /// Closes session `id` (commits nothing). GIL released.
    fn close(&self, py: Python<'_>, id: u64) -> PyResult<()> {
        let sessions = self.sessions(py)?;
        py.detach(|| sessions.close(id)).or_raise(py)
    }

    /// Open sessions, sorted by id, optionally of one data source and/or key.
    #[pyo3(signature = (data_source=None, session_key=None))]
    fn list<'py>(
        &self,
        py: Python<'py>,
        data_source: Option<&str>,
        session_key: Option<&str>,
    ) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let all = self
            .sessions(py)?
            .list(data_source, session_key)
            .or_raise(py)?;
        all.iter().map(|s| session_dict(py, s)).collect()
    }

    /// Sessions open now.
    fn open_count(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.sessions(py)?.open_count())
    }

    /// Adds a stream to a live session at `offset`. GIL released.
    fn add_stream(&self, py: Python<'_>, id: u64, stream: String, offset: i64) -> PyResult<()> {
        let sessions = self.sessions(py)?;
        py.detach(|| sessions.add_stream(id, &stream, offset))
            .or_raise(py)
    }

    /// Removes a stream from a live session.
    fn remove_stream(&self, py: Python<'_>, id: u64, stream: &str) -> PyResult<()> {
        self.sessions(py)?.remove_stream(id, stream).or_raise(py)
    }

    /// Counts packets read from the source for a stream.
    fn record_read(
        &self,
        py: Python<'_>,
        id: u64,
        stream: &str,
        packets: u64,
        bytes: u64,
        essential: u64,
    ) -> PyResult<()> {
        self.sessions(py)?
            .record_read(id, stream, packets, bytes, essential)
            .or_raise(py)
    }

    /// Counts packets delivered and advances the stream's position; returns it.
    fn deliver(
        &self,
        py: Python<'_>,
        id: u64,
        stream: &str,
        packets: u64,
        bytes: u64,
        essential: u64,
    ) -> PyResult<i64> {
        self.sessions(py)?
            .deliver(id, stream, packets, bytes, essential)
            .or_raise(py)
    }

    /// Counts router (control) messages received on a session.
    fn record_router(&self, py: Python<'_>, id: u64, messages: u64, bytes: u64) -> PyResult<()> {
        self.sessions(py)?
            .record_router(id, messages, bytes)
            .or_raise(py)
    }

    /// The stream's position (next offset to deliver).
    fn position(&self, py: Python<'_>, id: u64, stream: &str) -> PyResult<i64> {
        self.sessions(py)?.position(id, stream).or_raise(py)
    }

    /// Commits `offset` for a stream (never backwards). GIL released: with a durable
    /// store this writes and syncs the file.
    fn commit(&self, py: Python<'_>, id: u64, stream: String, offset: i64) -> PyResult<()> {
        let sessions = self.sessions(py)?;
        py.detach(|| sessions.commit(id, &stream, offset))
            .or_raise(py)
    }

    /// Moves a stream's position and lets the next commit go down to `offset`. GIL
    /// released (it waits for a commit of the same session in progress).
    fn seek(&self, py: Python<'_>, id: u64, stream: String, offset: i64) -> PyResult<()> {
        let sessions = self.sessions(py)?;
        py.detach(|| sessions.seek(id, &stream, offset))
            .or_raise(py)
    }

    /// The offset committed in the store, or `None`. GIL released.
    fn committed(
        &self,
        py: Python<'_>,
        data_source: String,
        session_key: String,
        stream: String,
    ) -> PyResult<Option<i64>> {
        let sessions = self.sessions(py)?;
        py.detach(|| sessions.committed(&data_source, &session_key, &stream))
            .or_raise(py)
    }

    /// Writes buffered commits (`offsets.sync = interval`) now. GIL released.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        let sessions = self.sessions(py)?;
        py.detach(|| sessions.flush()).or_raise(py)
    }

    /// `"memory"` or `"durable"`.
    fn store_kind(&self, py: Python<'_>) -> PyResult<&'static str> {
        Ok(self.sessions(py)?.store_kind())
    }

    /// Commits accepted but not yet on disk (interval mode; else 0).
    fn buffered_commits(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.sessions(py)?.buffered_commits())
    }
}

/// A session as the dict `switchboard.SessionInfo` is built from.
fn session_dict<'py>(py: Python<'py>, s: &SessionInfo) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("id", s.id)?;
    d.set_item("data_source", &s.data_source)?;
    d.set_item("session_key", &s.session_key)?;
    d.set_item("exclude_main_stream", s.exclude_main_stream)?;
    let streams = s
        .streams
        .iter()
        .map(|st| stream_dict(py, st))
        .collect::<PyResult<Vec<_>>>()?;
    d.set_item("streams", streams)?;
    d.set_item("router_messages_received", s.router_messages_received)?;
    d.set_item("router_bytes_received", s.router_bytes_received)?;
    Ok(d)
}

/// A stream of a session as the dict `switchboard.StreamInfo` is built from.
fn stream_dict<'py>(py: Python<'py>, s: &StreamInfo) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let c = &s.counters;
    d.set_item("name", &s.name)?;
    d.set_item("position", s.position)?;
    d.set_item("committed", s.committed)?;
    d.set_item("data_packets_read", c.data_packets_read)?;
    d.set_item("data_bytes_read", c.data_bytes_read)?;
    d.set_item("data_packets_delivered", c.data_packets_delivered)?;
    d.set_item("data_bytes_delivered", c.data_bytes_delivered)?;
    d.set_item("essential_packets_read", c.essential_packets_read)?;
    d.set_item("essential_packets_delivered", c.essential_packets_delivered)?;
    Ok(d)
}

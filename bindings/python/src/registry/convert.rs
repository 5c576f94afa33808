//! Core values as the tuples and dicts the package's dataclasses are built from, and
//! the native calls' arguments as core's `Target` and `Registration`.

use pyo3::prelude::*;
use pyo3::types::PyDict;
use switchboard_core::registry::{
    BroadcastReport, ConnInfo, ConnState, ListFilter, Registration, RegistryStats, Target,
};

use crate::config;
use crate::errors::OrRaise;

/// A broadcast report as `(recipients, queued, dropped, disconnected, elapsed_seconds)`.
pub(crate) fn report_tuple(r: &BroadcastReport) -> (u64, u64, u64, u64, f64) {
    (
        r.recipients,
        r.queued,
        r.dropped,
        r.disconnected,
        r.elapsed.as_secs_f64(),
    )
}

/// The registry's statistics as the dict `switchboard.RegistryStats` is built from.
pub(crate) fn stats_dict<'py>(py: Python<'py>, s: &RegistryStats) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("connections", s.connections)?;
    d.set_item("active", s.active)?;
    d.set_item("topics", s.topics)?;
    d.set_item("users", s.users)?;
    d.set_item("topic_counts", &s.topic_counts)?;
    d.set_item("registered_total", s.registered_total)?;
    d.set_item("broadcasts", s.broadcasts)?;
    d.set_item("messages_queued", s.messages_queued)?;
    d.set_item("messages_sent", s.messages_sent)?;
    d.set_item("messages_dropped", s.messages_dropped)?;
    d.set_item("messages_failed", s.messages_failed)?;
    d.set_item("disconnects", &s.disconnects)?;
    d.set_item("rejections", &s.rejections)?;
    d.set_item("cleanup_runs", s.cleanup_runs)?;
    Ok(d)
}

/// A connection as the dict `switchboard.ConnInfo` is built from.
pub(crate) fn info_dict<'py>(py: Python<'py>, c: &ConnInfo) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("id", c.id)?;
    d.set_item("user", c.user.as_deref())?;
    let meta = PyDict::new(py);
    for (k, v) in &c.metadata {
        meta.set_item(k, v)?;
    }
    d.set_item("metadata", meta)?;
    d.set_item("topics", &c.topics)?;
    d.set_item("state", c.state.as_str())?;
    d.set_item("sink", c.sink)?;
    d.set_item("age", c.age.as_secs_f64())?;
    d.set_item("idle", c.idle.as_secs_f64())?;
    d.set_item("queued_messages", c.queued_messages)?;
    d.set_item("queued_bytes", c.queued_bytes)?;
    d.set_item("sent", c.sent)?;
    d.set_item("dropped", c.dropped)?;
    d.set_item("failed", c.failed)?;
    Ok(d)
}

/// A broadcast or disconnect target.
pub(crate) fn target(
    all: bool,
    topics: Vec<String>,
    users: Vec<String>,
    ids: Vec<u64>,
    except: Vec<u64>,
) -> Target {
    Target {
        all,
        topics,
        users,
        ids,
        except,
    }
}

/// A list call's filter (the registry's and the cluster's): `state` by its name,
/// `min_idle` in seconds.
#[allow(clippy::too_many_arguments)]
pub(crate) fn list_filter(
    py: Python<'_>,
    user: Option<String>,
    topic: Option<String>,
    meta: Option<(String, String)>,
    state: Option<&str>,
    min_idle: Option<f64>,
    limit: usize,
    cursor: Option<u64>,
) -> PyResult<ListFilter> {
    let state = match state {
        None => None,
        Some(s) => Some(ConnState::parse_arg(s).or_raise(py)?),
    };
    Ok(ListFilter {
        user,
        topic,
        meta,
        state,
        min_idle: config::seconds(py, "min_idle", min_idle)?,
        limit,
        cursor,
    })
}

/// What a register call gives besides its sink.
pub(super) fn registration(
    user: Option<String>,
    metadata: Vec<(String, String)>,
    topics: Vec<String>,
    token: Option<String>,
) -> Registration {
    Registration {
        user,
        metadata,
        topics,
        token,
    }
}

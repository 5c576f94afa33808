//! `_native.Registry` and `_native.Outbox`: the manager's live-connection registry
//! (core's `Registry`) and its pull sinks.
//!
//! Threads and the GIL:
//! - send callbacks run on core's delivery tasks (runtime threads). The round hook
//!   installed on every Python manager ([`GilRound`]) takes the GIL once per delivery
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

use std::cell::RefCell;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyMemoryView, PyString};
use switchboard_core::registry::{
    AuthGrant, Authenticator, BroadcastReport, ConnId, ConnInfo, ConnState, Item, ListFilter,
    Message, Outbox, Registration, Registry, RoundHook, SendOutcome, SharedAuthenticator, Sink,
    Target,
};
use switchboard_core::runtime::RuntimeShared;
use switchboard_core::{Error, Manager, envelope};

use crate::config;
use crate::errors::OrRaise;
use crate::manager::drop_detached;

// ---- messages ----------------------------------------------------------------------

/// A Python message as a core message: `str` is a text message, `bytes` (or any
/// bytes-like object, copied) a binary one.
fn message(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<Message> {
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Message::text(&s.to_cow()?));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Message::binary(b.as_bytes()));
    }
    if let Ok(view) = PyMemoryView::from(obj) {
        let copy = view.call_method0("tobytes")?;
        if let Ok(b) = copy.cast::<PyBytes>() {
            return Ok(Message::binary(b.as_bytes()));
        }
    }
    let kind = obj
        .get_type()
        .qualname()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".to_string());
    Err(Error::invalid_argument(format!(
        "a message must be str (a text message) or bytes (a binary one), got {kind}"
    )))
    .or_raise(py)
}

/// A core message as the Python object a send callback or an outbox reader gets.
fn to_python(py: Python<'_>, msg: &Message) -> Py<PyAny> {
    match msg.as_text() {
        Some(text) => PyString::new(py, text).into_any().unbind(),
        None => PyBytes::new(py, msg.data()).into_any().unbind(),
    }
}

thread_local! {
    /// The last message converted on this delivery thread with its Python object: one
    /// broadcast reaches many connections with the same (shared) bytes, and Python's
    /// `bytes`/`str` are immutable, so one object serves them all. The core message is
    /// kept alongside so its allocation (the key) cannot be reused meanwhile. Cleared at
    /// the end of each round, with the GIL held.
    static LAST: RefCell<Option<(Message, Py<PyAny>)>> = const { RefCell::new(None) };
}

fn shared_python(py: Python<'_>, msg: &Message) -> Py<PyAny> {
    LAST.with(|cell| {
        let mut slot = cell.borrow_mut();
        if let Some((m, obj)) = &*slot {
            if m.ptr_eq(msg) {
                return obj.clone_ref(py);
            }
        }
        let obj = to_python(py, msg);
        let old = slot.replace((msg.clone(), obj.clone_ref(py)));
        drop(slot);
        drop(old);
        obj
    })
}

fn clear_shared() {
    let old = LAST.with(|cell| cell.borrow_mut().take());
    drop(old);
}

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

// ---- the round hook ----------------------------------------------------------------

/// Takes the GIL once around each delivery round (installed on every Python manager).
pub(crate) struct GilRound;

impl RoundHook for GilRound {
    fn run(&self, round: &mut dyn FnMut()) {
        let ran = Python::try_attach(|_py| {
            round();
            clear_shared();
        });
        if ran.is_none() {
            // The interpreter is going away: run the round anyway, so the queues drain
            // (each callback fails without Python, and the close callbacks are skipped).
            round();
        }
    }
}

/// Installs [`GilRound`] on `manager`'s registry.
pub(crate) fn install_round_hook(manager: &Manager) {
    drop(manager.registry().set_round_hook(Some(Arc::new(GilRound))));
}

// ---- send-callback sinks -----------------------------------------------------------

/// What the package's lane reports for a scheduled awaitable.
const REPORT_ALL: u8 = 1;
const REPORT_FAILURE: u8 = 2;
const REPORT_NONE: u8 = 0;

/// A connection's Python callbacks.
struct PySink {
    send: Py<PyAny>,
    ping: Option<Py<PyAny>>,
    closed: Option<Py<PyAny>>,
    /// `schedule(id, awaitable, report)`: runs an awaitable a callback returned on the
    /// event loop, after the connection's earlier ones; `None` when register was
    /// called with no running loop.
    schedule: Option<Py<PyAny>>,
}

impl PySink {
    /// What a callback's return value means: an awaitable is scheduled (Pending when
    /// its result is reported), anything else is done.
    fn outcome(
        &self,
        py: Python<'_>,
        id: ConnId,
        value: Bound<'_, PyAny>,
        report: u8,
    ) -> SendOutcome {
        if value.is_none() || !value.hasattr("__await__").unwrap_or(false) {
            return SendOutcome::Sent;
        }
        let Some(schedule) = &self.schedule else {
            let _ = value.call_method0("close");
            return SendOutcome::Failed(
                "the callback returned an awaitable, but the connection was registered with no running event loop to run it on: register inside the event loop (in an async def), or use a plain function".to_string(),
            );
        };
        match schedule.call1(py, (id, value, report)) {
            Ok(_) if report == REPORT_ALL => SendOutcome::Pending,
            Ok(_) => SendOutcome::Sent,
            Err(e) => SendOutcome::Failed(exc_text(py, &e)),
        }
    }
}

impl Sink for PySink {
    /// An `async def` callback's coroutine runs on the event loop's thread, which may
    /// report it (with the GIL, which the round lets go of between bytecodes) before
    /// `send` has returned Pending: core must be ready for that.
    fn may_pend(&self) -> bool {
        self.schedule.is_some()
    }

    fn send(&self, id: ConnId, msg: &Message) -> SendOutcome {
        Python::try_attach(|py| {
            let m = shared_python(py, msg);
            match self.send.call1(py, (m,)) {
                Ok(r) => self.outcome(py, id, r.into_bound(py), REPORT_ALL),
                Err(e) => SendOutcome::Failed(exc_text(py, &e)),
            }
        })
        .unwrap_or_else(|| SendOutcome::Failed(SHUTTING_DOWN.to_string()))
    }

    fn ping(&self, id: ConnId) -> SendOutcome {
        let Some(ping) = &self.ping else {
            return SendOutcome::Sent;
        };
        Python::try_attach(|py| match ping.call0(py) {
            Ok(r) => self.outcome(py, id, r.into_bound(py), REPORT_FAILURE),
            Err(e) => SendOutcome::Failed(exc_text(py, &e)),
        })
        .unwrap_or_else(|| SendOutcome::Failed(SHUTTING_DOWN.to_string()))
    }

    fn closed(&self, id: ConnId, reason: &str) {
        let Some(closed) = &self.closed else {
            return;
        };
        let _ = Python::try_attach(|py| match closed.call1(py, (reason,)) {
            Ok(r) => {
                // Fails only when no loop can run an awaitable (then it was closed).
                let _ = self.outcome(py, id, r.into_bound(py), REPORT_NONE);
            }
            Err(e) => e.write_unraisable(py, Some(closed.bind(py))),
        });
    }
}

// ---- the authentication hook -------------------------------------------------------

/// The package's normalised hooks: `authenticate(token) -> (user, [(k, v)])` and
/// `authorize(id, user, topic) -> None`, each raising to refuse.
struct PyAuth {
    authenticate: Py<PyAny>,
    authorize: Option<Py<PyAny>>,
}

impl Authenticator for PyAuth {
    fn authenticate(&self, token: &str) -> Result<AuthGrant, String> {
        Python::try_attach(|py| {
            let got = self
                .authenticate
                .call1(py, (token,))
                .map_err(|e| exc_text(py, &e))?;
            let (user, metadata): (Option<String>, Vec<(String, String)>) =
                got.extract(py).map_err(|e: PyErr| exc_text(py, &e))?;
            Ok(AuthGrant { user, metadata })
        })
        .unwrap_or_else(|| Err(SHUTTING_DOWN.to_string()))
    }

    fn authorize_subscribe(
        &self,
        id: ConnId,
        user: Option<&str>,
        topic: &str,
    ) -> Result<(), String> {
        let Some(authorize) = &self.authorize else {
            return Ok(());
        };
        Python::try_attach(|py| {
            authorize
                .call1(py, (id, user, topic))
                .map(drop)
                .map_err(|e| exc_text(py, &e))
        })
        .unwrap_or_else(|| Err(SHUTTING_DOWN.to_string()))
    }
}

// ---- dicts -------------------------------------------------------------------------

fn report_tuple(r: &BroadcastReport) -> (u64, u64, u64, u64, f64) {
    (
        r.recipients,
        r.queued,
        r.dropped,
        r.disconnected,
        r.elapsed.as_secs_f64(),
    )
}

/// A connection as the dict `switchboard.ConnInfo` is built from.
fn info_dict<'py>(py: Python<'py>, c: &ConnInfo) -> PyResult<Bound<'py, PyDict>> {
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

fn target(
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

fn registration(
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
        Ok(PyOutbox {
            outbox: Arc::new(outbox),
            runtime: manager.runtime().clone(),
            closed_reason: Mutex::new(None),
            waiting: Mutex::new(None),
        })
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
        let state = match state {
            None => None,
            Some(s) => Some(
                ConnState::parse(s)
                    .ok_or_else(|| {
                        Error::invalid_argument(format!(
                            "state must be one of active | idle, got \"{s}\""
                        ))
                    })
                    .or_raise(py)?,
            ),
        };
        let min_idle = config::seconds(py, "min_idle", min_idle)?;
        let filter = ListFilter {
            user,
            topic,
            meta,
            state,
            min_idle,
            limit,
            cursor,
        };
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
        let d = PyDict::new(py);
        d.set_item("connections", s.connections)?;
        d.set_item("active", s.active)?;
        d.set_item("topics", s.topics)?;
        d.set_item("users", s.users)?;
        d.set_item("topic_counts", s.topic_counts)?;
        d.set_item("registered_total", s.registered_total)?;
        d.set_item("broadcasts", s.broadcasts)?;
        d.set_item("messages_queued", s.messages_queued)?;
        d.set_item("messages_sent", s.messages_sent)?;
        d.set_item("messages_dropped", s.messages_dropped)?;
        d.set_item("messages_failed", s.messages_failed)?;
        d.set_item("disconnects", s.disconnects)?;
        d.set_item("rejections", s.rejections)?;
        d.set_item("cleanup_runs", s.cleanup_runs)?;
        Ok(d)
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

// ---- outboxes ----------------------------------------------------------------------

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

// ---- the envelope ------------------------------------------------------------------

/// Encodes seed 004's JSON envelope (`data_json` is JSON text), stamped now.
#[pyfunction]
#[pyo3(signature = (kind, topic, data_json, error))]
pub(crate) fn envelope_encode(
    py: Python<'_>,
    kind: &str,
    topic: Option<&str>,
    data_json: Option<&str>,
    error: Option<&str>,
) -> PyResult<String> {
    envelope::encode(kind, topic, data_json, error).or_raise(py)
}

/// Decodes an envelope: `(type, topic, data_json, timestamp, error)`.
#[pyfunction]
#[allow(clippy::type_complexity)]
pub(crate) fn envelope_decode(
    py: Python<'_>,
    text: &str,
) -> PyResult<(
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
)> {
    let e = envelope::decode(text).or_raise(py)?;
    let data = e.data_json();
    Ok((e.kind, e.topic, data, e.timestamp, e.error))
}

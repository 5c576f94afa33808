//! Events: what happened, delivered to a callback or a queue the program polls.
//!
//! Programs get events two ways, like librdkafka: a callback (it runs on a runtime
//! thread, with no library lock held) or [`crate::Manager::poll_event`] from their own
//! thread. The queue is bounded: when it is full, new events are dropped and counted
//! (back pressure never blocks the pool).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use crossbeam_channel::{Receiver, Sender, TrySendError};

/// What kind of event this is. The names ([`EventKind::as_str`]) are the same in every
/// language; new kinds may be added, so programs should ignore kinds they don't know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// A lease has been held longer than `pool.leak_detection_threshold`.
    LeakSuspected,
    /// A connection changed state (`old_state` -> `new_state`).
    ConnectionState,
    /// An endpoint changed state (`old_state` -> `new_state`).
    EndpointState,
    /// An endpoint's circuit breaker changed state (`old_state` -> `new_state`).
    BreakerState,
    /// A health check of an endpoint finished (`new_state` is "ok" or "failed").
    HealthCheck,
    /// A caller was turned away (breaker open, too many waiters, ...).
    Rejected,
    /// A session was opened.
    SessionOpened,
    /// A session was closed.
    SessionClosed,
    /// A stream was added to a live session.
    StreamAdded,
    /// A stream was removed from a live session.
    StreamRemoved,
    /// An offset commit could not be stored.
    CommitFailed,
    /// A connection joined the registry (`connection_id`, `user`).
    Registered,
    /// A connection left the registry (`connection_id`, `user`, `reason`).
    Unregistered,
    /// A registered connection subscribed to `topic`.
    Subscribed,
    /// A registered connection unsubscribed from `topic` (or left while subscribed).
    Unsubscribed,
    /// A registered connection's queue filled up; `reason` is the policy's outcome
    /// (`drop_oldest`, `drop_new` or `disconnect`).
    SlowConsumer,
    /// A named resource's status changed (`resource`, `old_state` -> `new_state`,
    /// `reason` the error that caused it, if one).
    ResourceState,
    /// A consumer was detached from a resource deleted with force (`resource`).
    ResourceDetached,
    /// A resource was updated: its consumers now use a new connection (`resource`,
    /// `endpoint` the new one).
    ResourceRebound,
    /// The manager joined its cluster (`cluster.redis_url`), at start or again after
    /// losing Redis; `reason` is `joined` or `rejoined`.
    ClusterJoined,
    /// The manager lost its cluster's Redis and serves locally (its breakers are
    /// local, broadcasts reach this instance only) until it rejoins; `reason` says why.
    ClusterLost,
}

impl EventKind {
    /// Every kind, in the order of their stable numbers (C's `sb_event_kind` is the
    /// position here plus one).
    pub const ALL: [EventKind; 21] = [
        EventKind::LeakSuspected,
        EventKind::ConnectionState,
        EventKind::EndpointState,
        EventKind::BreakerState,
        EventKind::HealthCheck,
        EventKind::Rejected,
        EventKind::SessionOpened,
        EventKind::SessionClosed,
        EventKind::StreamAdded,
        EventKind::StreamRemoved,
        EventKind::CommitFailed,
        EventKind::Registered,
        EventKind::Unregistered,
        EventKind::Subscribed,
        EventKind::Unsubscribed,
        EventKind::SlowConsumer,
        EventKind::ResourceState,
        EventKind::ResourceDetached,
        EventKind::ResourceRebound,
        EventKind::ClusterJoined,
        EventKind::ClusterLost,
    ];

    /// The stable name used in every language: `leak_suspected`, `breaker_state`, ...
    pub const fn as_str(self) -> &'static str {
        match self {
            EventKind::LeakSuspected => "leak_suspected",
            EventKind::ConnectionState => "connection_state",
            EventKind::EndpointState => "endpoint_state",
            EventKind::BreakerState => "breaker_state",
            EventKind::HealthCheck => "health_check",
            EventKind::Rejected => "rejected",
            EventKind::SessionOpened => "session_opened",
            EventKind::SessionClosed => "session_closed",
            EventKind::StreamAdded => "stream_added",
            EventKind::StreamRemoved => "stream_removed",
            EventKind::CommitFailed => "commit_failed",
            EventKind::Registered => "registered",
            EventKind::Unregistered => "unregistered",
            EventKind::Subscribed => "subscribed",
            EventKind::Unsubscribed => "unsubscribed",
            EventKind::SlowConsumer => "slow_consumer",
            EventKind::ResourceState => "resource_state",
            EventKind::ResourceDetached => "resource_detached",
            EventKind::ResourceRebound => "resource_rebound",
            EventKind::ClusterJoined => "cluster_joined",
            EventKind::ClusterLost => "cluster_lost",
        }
    }
}

/// One event. Fields that do not apply to its kind are empty (`None` or "").
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// When it happened (wall clock, for logs).
    pub time: SystemTime,
    /// What happened.
    pub kind: EventKind,
    /// The pool it concerns ("" when none, e.g. session events).
    pub pool: String,
    /// The endpoint it concerns, as written in the target (`tcp://host:port`).
    pub endpoint: Option<String>,
    /// The connection it concerns, if one.
    pub connection_id: Option<u64>,
    /// The session it concerns, if one.
    pub session_id: Option<u64>,
    /// The stream it concerns, if one.
    pub stream: Option<String>,
    /// For state changes: the state before (`"closed"`, `"connecting"`, ...).
    pub old_state: Option<&'static str>,
    /// For state changes: the state after; for health checks `"ok"` or `"failed"`.
    pub new_state: Option<&'static str>,
    /// How long the lease has been held, for [`EventKind::LeakSuspected`]; how long
    /// the check took, for [`EventKind::HealthCheck`].
    pub age: Option<Duration>,
    /// The registry topic it concerns, if one.
    pub topic: Option<String>,
    /// The user of the registry connection it concerns, if it has one.
    pub user: Option<String>,
    /// A short machine-readable reason: why a registry connection left (`stale`,
    /// `send_failed`, `slow_consumer`, or the program's own), which policy a slow
    /// consumer met, or which limit refused a call (`registry.max_total_connections`).
    pub reason: Option<String>,
    /// The named resource it concerns, if one.
    pub resource: Option<String>,
    /// The reason, as a sentence for humans.
    pub message: String,
}

impl Event {
    /// An event of `kind` now, with `message` and every other field empty.
    pub fn new(kind: EventKind, message: impl Into<String>) -> Event {
        Event {
            time: SystemTime::now(),
            kind,
            pool: String::new(),
            endpoint: None,
            connection_id: None,
            session_id: None,
            stream: None,
            old_state: None,
            new_state: None,
            age: None,
            topic: None,
            user: None,
            reason: None,
            resource: None,
            message: message.into(),
        }
    }
}

/// An event callback.
pub type EventCallback = Arc<dyn Fn(&Event) + Send + Sync>;
type Callback = EventCallback;

/// The manager's event fan-out: an optional callback and a bounded queue.
pub struct EventBus {
    tx: Sender<Event>,
    rx: Receiver<Event>,
    callback: RwLock<Option<Callback>>,
    dropped: AtomicU64,
    closed: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus")
            .field("queued", &self.rx.len())
            .field("dropped", &self.dropped())
            .finish()
    }
}

/// Events the queue holds at most before dropping new ones.
pub const QUEUE_CAPACITY: usize = 10_000;

impl Default for EventBus {
    fn default() -> Self {
        let (tx, rx) = crossbeam_channel::bounded(QUEUE_CAPACITY);
        EventBus {
            tx,
            rx,
            callback: RwLock::new(None),
            dropped: AtomicU64::new(0),
            closed: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl EventBus {
    /// Delivers `event`: to the callback if one is set, else to the queue.
    pub fn emit(&self, event: Event) {
        let cb = self
            .callback
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match cb {
            // Called with no lock held, so it may call back into the library.
            Some(cb) => cb(&event),
            None => {
                if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
                    self.tx.try_send(event)
                {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Sets (or with `None` clears) the callback; returns the previous one, which the
    /// caller drops where it is safe to (a binding may need to release a lock first).
    pub fn set_callback(&self, cb: Option<Callback>) -> Option<Callback> {
        let mut slot = self.callback.write().unwrap_or_else(|p| p.into_inner());
        std::mem::replace(&mut *slot, cb)
    }

    /// The next queued event, waiting up to `timeout` (zero: don't wait). A wait
    /// ends early (with what is queued, else `None`) once the manager closes.
    pub fn poll(&self, timeout: Duration) -> Option<Event> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Ok(e) = self.rx.try_recv() {
                return Some(e);
            }
            let now = std::time::Instant::now();
            if self.closed.load(Ordering::SeqCst) || now >= deadline {
                return None;
            }
            // Wake at least every 20 ms to notice a close.
            let slice = (deadline - now).min(Duration::from_millis(20));
            if let Ok(e) = self.rx.recv_timeout(slice) {
                return Some(e);
            }
        }
    }

    /// Ends every wait in [`EventBus::poll`], now and later.
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

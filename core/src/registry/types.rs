//! The registry's values: what a program passes in (registrations, targets, filters)
//! and the snapshots it gets back (connection records, reports, statistics).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// A registered connection's id: unique within the process, never reused.
pub type ConnId = u64;

/// A message for one or many clients: bytes, shared (not copied) by every recipient.
/// `text` says the bytes are UTF-8 text (a WebSocket text frame, a Python `str`, a JS
/// string); the registry never looks inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    data: Arc<[u8]>,
    text: bool,
}

impl Message {
    /// A binary message.
    pub fn binary(data: impl Into<Arc<[u8]>>) -> Message {
        Message {
            data: data.into(),
            text: false,
        }
    }

    /// A text message (UTF-8 by construction).
    pub fn text(data: &str) -> Message {
        Message {
            data: Arc::from(data.as_bytes()),
            text: true,
        }
    }

    /// Bytes already known to be UTF-8 text (a binding that checked them).
    pub fn from_parts(data: impl Into<Arc<[u8]>>, text: bool) -> Message {
        Message {
            data: data.into(),
            text,
        }
    }

    /// The bytes.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The bytes as text, when the message is text.
    pub fn as_text(&self) -> Option<&str> {
        if self.text {
            std::str::from_utf8(&self.data).ok()
        } else {
            None
        }
    }

    /// Whether the message is text.
    pub fn is_text(&self) -> bool {
        self.text
    }

    /// Whether `other` is this very message (the same shared bytes, as every
    /// recipient of one broadcast gets), not merely equal bytes. A binding converts a
    /// broadcast's message once per delivery round by asking this.
    pub fn ptr_eq(&self, other: &Message) -> bool {
        Arc::ptr_eq(&self.data, &other.data) && self.text == other.text
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether it has no bytes.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// What an outbox yields to the program's writer (see [`crate::registry::Outbox`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A message to write to the client.
    Message(Message),
    /// The registry asks the program to ping the client (`registry.heartbeat_interval`).
    Ping,
    /// The connection left the registry for `reason` (`stale`, `send_failed`,
    /// `slow_consumer`, `manager_closed` or the program's own); the last item.
    Closed(String),
}

/// What a send callback did with one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// Handed to the client's transport.
    Sent,
    /// Could not be delivered (the reason is counted, and after
    /// `registry.max_send_failures` in a row the connection is removed).
    Failed(String),
    /// The sink finishes later (a Promise, a coroutine) and reports the result with
    /// [`crate::registry::Registry::report_send`]. Until it does, the connection's
    /// later items wait in its queue (one item in flight per connection), so the
    /// queue's limits and policy apply to async sinks too; the close callback comes
    /// after the report.
    Pending,
}

/// A connection to register: its user, metadata, initial topics, and an optional
/// token for the authenticate hook.
///
/// ```
/// use switchboard_core::registry::Registration;
/// let r = Registration::new().user("alice").meta("ip", "10.0.0.7").topics(["news", "chat"]);
/// assert_eq!(r.topics.len(), 2);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registration {
    /// The user this connection belongs to, if known.
    pub user: Option<String>,
    /// String key/value metadata (a key given twice keeps the last value).
    pub metadata: Vec<(String, String)>,
    /// Topics to subscribe at once (limits and the authorize hook apply).
    pub topics: Vec<String>,
    /// A credential for the authenticate hook; its grant's user and metadata are
    /// merged over the fields above.
    pub token: Option<String>,
}

impl Registration {
    /// An anonymous connection with no metadata and no topics.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the user.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Adds one metadata entry.
    pub fn meta(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.push((key.into(), value.into()));
        self
    }

    /// Sets the initial topics.
    pub fn topics<I, S>(mut self, topics: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.topics = topics.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the token for the authenticate hook.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }
}

/// What the authenticate hook grants a token: the user and metadata to record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthGrant {
    /// The user the token belongs to.
    pub user: Option<String>,
    /// Metadata to record with the connection (merged over the registration's).
    pub metadata: Vec<(String, String)>,
}

/// Who a broadcast (or a disconnect) is for: the union of topics, users and ids, or
/// everyone, minus an except set (Socket.IO's rooms + except). A connection matched
/// twice is counted and served once.
///
/// ```
/// use switchboard_core::registry::Target;
/// let t = Target::topic("news").and_user("bob").except([7, 9]);
/// assert_eq!((t.topics.len(), t.users.len(), t.except.len()), (1, 1, 2));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// Everyone registered (the other fields but `except` are then ignored).
    pub all: bool,
    /// Subscribers of any of these topics.
    pub topics: Vec<String>,
    /// Connections of any of these users.
    pub users: Vec<String>,
    /// These connections.
    pub ids: Vec<ConnId>,
    /// Never these connections.
    pub except: Vec<ConnId>,
}

impl Target {
    /// Every registered connection.
    pub fn all() -> Self {
        Target {
            all: true,
            ..Self::default()
        }
    }

    /// The subscribers of `topic`.
    pub fn topic(topic: impl Into<String>) -> Self {
        Target {
            topics: vec![topic.into()],
            ..Self::default()
        }
    }

    /// The connections of `user`.
    pub fn user(user: impl Into<String>) -> Self {
        Target {
            users: vec![user.into()],
            ..Self::default()
        }
    }

    /// These connections.
    pub fn ids(ids: impl IntoIterator<Item = ConnId>) -> Self {
        Target {
            ids: ids.into_iter().collect(),
            ..Self::default()
        }
    }

    /// Adds a topic.
    pub fn and_topic(mut self, topic: impl Into<String>) -> Self {
        self.topics.push(topic.into());
        self
    }

    /// Adds a user.
    pub fn and_user(mut self, user: impl Into<String>) -> Self {
        self.users.push(user.into());
        self
    }

    /// Excludes these connections.
    pub fn except(mut self, ids: impl IntoIterator<Item = ConnId>) -> Self {
        self.except.extend(ids);
        self
    }

    /// Whether it names nobody (no topic, user or id, and not `all`).
    pub fn is_empty(&self) -> bool {
        !self.all && self.topics.is_empty() && self.users.is_empty() && self.ids.is_empty()
    }
}

/// What one broadcast did, counted by the time it returned. Deliveries by send
/// callbacks happen after it (on the manager's runtime); their failures show in
/// [`RegistryStats`] and remove a connection after `registry.max_send_failures`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BroadcastReport {
    /// Connections the target matched (after the except set).
    pub recipients: u64,
    /// Messages queued for delivery (one per recipient that took it).
    pub queued: u64,
    /// Messages dropped because a queue was full (`drop_new`, and the queued
    /// messages that `drop_oldest` discarded).
    pub dropped: u64,
    /// Recipients removed as too slow (`disconnect` policy).
    pub disconnected: u64,
    /// How long the fan-out took.
    pub elapsed: Duration,
}

/// A connection's liveness, for listing: `active` when heard from within
/// `registry.heartbeat_interval` (or when heartbeats are off), else `idle`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnState {
    /// Heard from within the heartbeat interval.
    Active,
    /// Silent for longer: pinged, and removed at `registry.connection_timeout`.
    Idle,
}

impl ConnState {
    /// `active` or `idle`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ConnState::Active => "active",
            ConnState::Idle => "idle",
        }
    }

    /// Parses `active` / `idle`.
    pub fn parse(s: &str) -> Option<ConnState> {
        match s {
            "active" => Some(ConnState::Active),
            "idle" => Some(ConnState::Idle),
            _ => None,
        }
    }

    /// Parses a list filter's state: InvalidArgument naming the accepted words (one
    /// message for every binding).
    pub fn parse_arg(s: &str) -> crate::Result<ConnState> {
        Self::parse(s).ok_or_else(|| {
            crate::Error::invalid_argument(format!(
                "state must be one of active | idle, got \"{}\"",
                s.escape_default()
            ))
        })
    }
}

/// A snapshot of one registered connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInfo {
    /// Its id.
    pub id: ConnId,
    /// Its user, if it has one.
    pub user: Option<String>,
    /// Its metadata, sorted by key.
    pub metadata: BTreeMap<String, String>,
    /// Its topics, sorted.
    pub topics: Vec<String>,
    /// `active` or `idle`.
    pub state: ConnState,
    /// `outbox` or `callback`.
    pub sink: &'static str,
    /// Time since it registered (by the manager's clock).
    pub age: Duration,
    /// Time since it was last touched (registered, or `touch`ed on client traffic).
    pub idle: Duration,
    /// Messages waiting in its queue.
    pub queued_messages: u64,
    /// Bytes waiting in its queue.
    pub queued_bytes: u64,
    /// Messages handed to its sink.
    pub sent: u64,
    /// Messages dropped for it (full queue).
    pub dropped: u64,
    /// Failed deliveries to it (all, not only in a row).
    pub failed: u64,
}

/// Which connections [`crate::registry::Registry::list`] returns. Every set field must
/// match. Pages are in id order; pass the returned cursor to get the next page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Only this user's connections.
    pub user: Option<String>,
    /// Only subscribers of this topic.
    pub topic: Option<String>,
    /// Only connections whose metadata has this key with this value.
    pub meta: Option<(String, String)>,
    /// Only connections in this state.
    pub state: Option<ConnState>,
    /// Only connections silent for at least this long.
    pub min_idle: Option<Duration>,
    /// Most records to return (0 means the default, 100).
    pub limit: usize,
    /// Only ids above this one (the previous page's `next_cursor`).
    pub cursor: Option<ConnId>,
}

/// One page of [`crate::registry::Registry::list`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    /// The records, in id order.
    pub connections: Vec<ConnInfo>,
    /// Pass as `cursor` for the next page; `None` when this was the last one.
    pub next_cursor: Option<ConnId>,
}

/// What one cleanup pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// Connections removed with reason `stale`.
    pub removed: u64,
    /// Connections asked to ping their client.
    pub pinged: u64,
}

/// The registry's statistics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryStats {
    /// Connections registered now.
    pub connections: u64,
    /// Of those, heard from within the heartbeat interval.
    pub active: u64,
    /// Topics with at least one subscriber.
    pub topics: u64,
    /// Distinct users with at least one connection.
    pub users: u64,
    /// Subscribers per topic, largest first (every topic).
    pub topic_counts: Vec<(String, u64)>,
    /// Connections ever registered.
    pub registered_total: u64,
    /// Broadcasts (and direct sends) made.
    pub broadcasts: u64,
    /// Messages queued for delivery.
    pub messages_queued: u64,
    /// Messages handed to sinks (callbacks that returned, items an outbox yielded).
    pub messages_sent: u64,
    /// Messages dropped by full queues, or discarded when their connection left.
    pub messages_dropped: u64,
    /// Failed deliveries.
    pub messages_failed: u64,
    /// Connections removed, by reason.
    pub disconnects: BTreeMap<String, u64>,
    /// Register and subscribe calls refused by a limit, by the limit's key.
    pub rejections: BTreeMap<String, u64>,
    /// Cleanup passes run.
    pub cleanup_runs: u64,
}

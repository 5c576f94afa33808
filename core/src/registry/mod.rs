//! The live-connection registry: the table of clients a server holds (WebSocket
//! servers, brokers, game servers), done once: ids, users, metadata, topic
//! subscriptions, broadcast with an except set, bounded per-connection queues with a
//! slow-consumer policy, heartbeats and stale cleanup, limits, an authentication hook,
//! admin listing and disconnect, statistics, events and metrics. The transport stays
//! the program's: the registry never parses its protocol; it hands messages to the
//! program's sink (a send callback or an outbox the program drains).
//!
//! ```
//! use switchboard_core::{Config, Manager};
//! use switchboard_core::registry::{Item, Message, Registration, Target};
//! let manager = Manager::new(&Config::new())?;
//! let registry = manager.registry();
//! let alice = registry.register_outbox(Registration::new().user("alice").topics(["news"]))?;
//! let bob = registry.register_outbox(Registration::new().user("bob").topics(["news"]))?;
//! let report = registry.broadcast(&Target::topic("news").except([bob.id()]), Message::text("hi"))?;
//! assert_eq!((report.recipients, report.queued), (1, 1));
//! assert_eq!(alice.try_next(), Some(Item::Message(Message::text("hi"))));
//! assert_eq!(bob.try_next(), None);
//! # Ok::<(), switchboard_core::Error>(())
//! ```
//!
//! Thread safety: every method takes `&self` and may be called from any thread at
//! once. Lookups and broadcasts share a read lock on the indexes; register,
//! subscribe and removals take it for writing, briefly. Hooks and callbacks are
//! called with no registry lock held.

mod admin;
mod auth;
mod broadcast;
mod conn;
mod delivery;
mod index;
pub(crate) mod links;
mod metrics;
mod pending;
mod settings;
mod subscriptions;
mod types;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use crate::clock::SharedClock;
use crate::config::Config;
use crate::error::{Code, Error, Result};
use crate::events::{Event, EventBus, EventKind};
use crate::runtime::RuntimeShared;

use conn::{Conn, SinkKind, lock};
use index::Index;

pub use auth::{Authenticator, SharedAuthenticator};
pub use delivery::{FnSink, Outbox, RoundHook, Sink};
pub use settings::Policy;
pub use types::{
    AuthGrant, BroadcastReport, CleanupReport, ConnId, ConnInfo, ConnState, Item, ListFilter,
    ListPage, Message, Registration, RegistryStats, SendOutcome, Target,
};

/// Connection ids come from one counter for the whole process: never reused.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) registered: AtomicU64,
    pub(crate) broadcasts: AtomicU64,
    pub(crate) queued: AtomicU64,
    pub(crate) sent: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) cleanup_runs: AtomicU64,
    pub(crate) disconnects: Mutex<BTreeMap<String, u64>>,
    pub(crate) rejections: Mutex<BTreeMap<String, u64>>,
}

/// Distinct disconnect reasons counted by name; others are counted as `other`, so a
/// program's free-text reasons cannot grow the statistics (and metrics) without bound.
const MAX_REASONS: usize = 32;

pub(crate) struct Inner {
    pub(crate) settings: settings::Settings,
    index: RwLock<Index>,
    pub(crate) ready: delivery::Ready,
    pub(crate) counters: Counters,
    events: Arc<EventBus>,
    clock: SharedClock,
    base: Instant,
    auth: RwLock<Option<SharedAuthenticator>>,
    /// Connections with an item in flight (their sink returned Pending), by id: found
    /// by `report_send` even after they left the index, so their close still follows.
    pending: Mutex<HashMap<ConnId, Arc<Conn>>>,
    hook: RwLock<Option<Arc<dyn RoundHook>>>,
    pub(crate) closed: AtomicBool,
    rt: OnceLock<Arc<RuntimeShared>>,
    /// The node number in the top bits of clustered ids (0 when not clustered).
    id_base: AtomicU64,
    /// Where broadcasts go to reach the cluster's other instances.
    remote: OnceLock<Arc<dyn links::FanOutRemote>>,
}

/// The manager's live-connection registry ([`crate::Manager::registry`]). Cheap to
/// clone.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("connections", &self.len())
            .finish()
    }
}

fn non_empty(what: &str, s: &str) -> Result<()> {
    if s.is_empty() {
        return Err(Error::invalid_argument(format!(
            "{what} must be a non-empty string"
        )));
    }
    Ok(())
}

impl Registry {
    pub(crate) fn new(
        config: &Config,
        events: Arc<EventBus>,
        clock: SharedClock,
    ) -> Result<Registry> {
        let base = clock.now();
        let settings = settings::Settings::from_config(config);
        settings.check()?;
        Ok(Registry {
            inner: Arc::new(Inner {
                settings,
                index: RwLock::new(Index::default()),
                ready: delivery::Ready::default(),
                counters: Counters::default(),
                events,
                clock,
                base,
                auth: RwLock::new(None),
                pending: Mutex::new(HashMap::new()),
                hook: RwLock::new(None),
                closed: AtomicBool::new(false),
                rt: OnceLock::new(),
                id_base: AtomicU64::new(0),
                remote: OnceLock::new(),
            }),
        })
    }

    /// Starts the delivery tasks (one per runtime worker) and the background pass.
    pub(crate) fn start_background(&self, rt: &Arc<RuntimeShared>, workers: usize) -> Result<()> {
        let _ = self.inner.rt.set(rt.clone());
        for _ in 0..workers.max(1) {
            rt.spawn(delivery::deliver_forever(self.inner.clone()))?;
        }
        if let Some(period) = self.inner.settings.pass_period() {
            let weak = Arc::downgrade(&self.inner);
            rt.spawn(async move {
                loop {
                    // 10% jitter so that many managers don't sweep in step.
                    let factor = 0.95 + 0.1 * crate::random::unit();
                    tokio::time::sleep(period.mul_f64(factor)).await;
                    let Some(inner) = weak.upgrade() else { return };
                    if inner.closed.load(Ordering::Acquire) {
                        return;
                    }
                    Registry { inner }.sweep();
                }
            })?;
        }
        Ok(())
    }

    /// Stops: removes every connection with reason `manager_closed` (their close
    /// callbacks run, outboxes yield the close item) and waits up to `timeout` for the
    /// close callbacks; later calls fail with Unavailable.
    pub(crate) fn shutdown(&self, timeout: Duration) {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        let ids: Vec<ConnId> = self.inner.read().conns.keys().copied().collect();
        for id in ids {
            self.inner
                .remove(id, "manager_closed", "the manager closed");
        }
        let deadline = Instant::now() + timeout;
        while (!self.inner.ready.is_empty() || !lock(&self.inner.pending).is_empty())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        // What the delivery tasks did not reach in time (and sends never reported) is
        // let go of here.
        self.inner.ready.clear();
        lock(&self.inner.pending).clear();
        self.inner.ready.notify.notify_waiters();
    }

    fn check_open(&self) -> Result<()> {
        self.inner.check_open()
    }

    // ---- register and look up ----

    /// Registers a connection whose messages go to `sink` (a send callback; see
    /// [`Sink`]). Returns its id.
    ///
    /// Fails with InvalidArgument (an empty user, topic or metadata key),
    /// Unauthenticated (the authenticate hook refused the token), FailedPrecondition
    /// (a token but no hook), PermissionDenied (the hook refused a topic),
    /// ResourceExhausted (a limit, named with its value) or Unavailable (closed).
    pub fn register(&self, reg: Registration, sink: Arc<dyn Sink>) -> Result<ConnId> {
        Ok(self.register_kind(reg, SinkKind::Callback(sink), None)?.id)
    }

    /// [`Registry::register`] with `auth` as the hook for this call.
    pub fn register_with_auth(
        &self,
        reg: Registration,
        sink: Arc<dyn Sink>,
        auth: &dyn Authenticator,
    ) -> Result<ConnId> {
        Ok(self
            .register_kind(reg, SinkKind::Callback(sink), Some(auth))?
            .id)
    }

    /// Registers a connection whose messages the program pulls from the returned
    /// [`Outbox`]. Fails as [`Registry::register`] does.
    pub fn register_outbox(&self, reg: Registration) -> Result<Outbox> {
        self.register_outbox_auth(reg, None)
    }

    /// [`Registry::register_outbox`] with `auth` as the hook for this call.
    pub fn register_outbox_with_auth(
        &self,
        reg: Registration,
        auth: &dyn Authenticator,
    ) -> Result<Outbox> {
        self.register_outbox_auth(reg, Some(auth))
    }

    fn register_outbox_auth(
        &self,
        reg: Registration,
        auth: Option<&dyn Authenticator>,
    ) -> Result<Outbox> {
        let conn = self.register_kind(reg, SinkKind::Outbox(tokio::sync::Notify::new()), auth)?;
        Ok(Outbox {
            inner: self.inner.clone(),
            conn,
        })
    }

    fn register_kind(
        &self,
        reg: Registration,
        sink: SinkKind,
        call_auth: Option<&dyn Authenticator>,
    ) -> Result<Arc<Conn>> {
        let installed = self.authenticator();
        let auth: Option<&dyn Authenticator> = match call_auth {
            Some(a) => Some(a),
            None => installed.as_deref().map(|a| a as &dyn Authenticator),
        };
        self.check_open()?;
        let Registration {
            mut user,
            mut metadata,
            topics,
            token,
        } = reg;
        if let Some(token) = token {
            let Some(auth) = auth else {
                return Err(Error::failed_precondition(
                    "register was given a token but no authenticate hook is set; set one with set_authenticator, or register without a token",
                ));
            };
            match auth.authenticate(&token) {
                Ok(grant) => {
                    if grant.user.is_some() {
                        user = grant.user;
                    }
                    metadata.extend(grant.metadata);
                }
                Err(why) => {
                    return Err(Error::new(
                        Code::Unauthenticated,
                        format!("the authenticate hook refused the token: {why}"),
                    ));
                }
            }
        }
        if let Some(u) = &user {
            non_empty("user", u)?;
        }
        let mut meta: Vec<(Box<str>, Box<str>)> = Vec::with_capacity(metadata.len());
        for (k, v) in metadata {
            non_empty("a metadata key", &k)?;
            match meta.iter_mut().find(|(mk, _)| **mk == *k) {
                Some(slot) => slot.1 = v.into(),
                None => meta.push((k.into(), v.into())),
            }
        }
        meta.sort();
        let mut names: Vec<String> = Vec::with_capacity(topics.len());
        for (i, t) in topics.into_iter().enumerate() {
            non_empty(&format!("topics[{i}]"), &t)?;
            if !names.contains(&t) {
                names.push(t);
            }
        }
        names.sort();
        let s = &self.inner.settings;
        if names.len() > s.max_topics_per_conn {
            return Err(self.inner.limit(
                "registry.max_topics_per_connection",
                s.max_topics_per_conn,
                format!(
                    "a connection may subscribe to at most {} topics, and register named {}",
                    s.max_topics_per_conn,
                    names.len()
                ),
            ));
        }
        let id = self.inner.next_id();
        if let Some(auth) = auth {
            for t in &names {
                if let Err(why) = auth.authorize_subscribe(id, user.as_deref(), t) {
                    return Err(Error::new(
                        Code::PermissionDenied,
                        format!("the authorize hook refused topic \"{t}\": {why}"),
                    ));
                }
            }
        }
        let now = self.inner.now_ns();
        let conn = {
            let mut ix = self.inner.write();
            if ix.conns.len() >= s.max_total {
                drop(ix);
                return Err(self.inner.limit(
                    "registry.max_total_connections",
                    s.max_total,
                    format!("{} connections are registered", s.max_total),
                ));
            }
            if let Some(u) = &user {
                if ix.user_len(u) >= s.max_per_user {
                    drop(ix);
                    return Err(self.inner.limit(
                        "registry.max_connections_per_user",
                        s.max_per_user,
                        format!("user \"{u}\" already has {} connections", s.max_per_user),
                    ));
                }
            }
            if let Some(t) = names.iter().find(|t| ix.topic_len(t) >= s.max_per_topic) {
                let t = t.clone();
                drop(ix);
                return Err(self.inner.limit(
                    "registry.max_connections_per_topic",
                    s.max_per_topic,
                    format!("topic \"{t}\" already has {} subscribers", s.max_per_topic),
                ));
            }
            let topics: Vec<Arc<str>> = names.iter().map(|t| ix.intern_topic(t)).collect();
            let user = user.as_deref().map(|u| ix.intern_user(u));
            let conn = Arc::new(Conn::new(id, user, meta, topics.clone(), sink, now));
            ix.insert(&conn, &topics);
            conn
        };
        self.inner
            .counters
            .registered
            .fetch_add(1, Ordering::Relaxed);
        let user = conn.user.as_deref().map(str::to_string);
        self.inner.emit(
            EventKind::Registered,
            id,
            user.clone(),
            None,
            None,
            format!("connection {id} registered"),
        );
        for t in &names {
            self.inner.emit(
                EventKind::Subscribed,
                id,
                user.clone(),
                Some(t.clone()),
                None,
                format!("connection {id} subscribed to \"{t}\""),
            );
        }
        Ok(conn)
    }

    /// Removes connection `id` for `reason` (empty: `unregistered`): its queue is
    /// discarded, its close callback runs (an outbox yields the close item), and an
    /// `unregistered` event names the reason. NotFound when it is not registered.
    pub fn unregister(&self, id: ConnId, reason: &str) -> Result<()> {
        self.check_open()?;
        let reason = if reason.is_empty() {
            "unregistered"
        } else {
            reason
        };
        if self.inner.remove(
            id,
            reason,
            &format!("connection {id} unregistered: {reason}"),
        ) {
            Ok(())
        } else {
            Err(not_found(id))
        }
    }

    /// A snapshot of connection `id`; NotFound when it is not registered.
    pub fn get(&self, id: ConnId) -> Result<ConnInfo> {
        self.check_open()?;
        let conn = self.inner.conn(id)?;
        Ok(self.inner.info(&conn, self.inner.now_ns()))
    }

    /// Whether connection `id` is registered.
    pub fn contains(&self, id: ConnId) -> bool {
        self.inner.read().conns.contains_key(&id)
    }

    /// Connections registered now.
    pub fn len(&self) -> usize {
        self.inner.read().conns.len()
    }

    /// Whether no connection is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records traffic from connection `id` now (call it on every message from the
    /// client, a pong included): it is then `active` and not stale.
    pub fn touch(&self, id: ConnId) -> Result<()> {
        self.check_open()?;
        let now = self.inner.now_ns();
        match self.inner.read().conns.get(&id) {
            Some(c) => {
                c.touch(now);
                Ok(())
            }
            None => Err(not_found(id)),
        }
    }

    /// Sets (or clears) the hook that wraps each round of callback deliveries (for
    /// bindings: see [`RoundHook`]).
    pub fn set_round_hook(&self, hook: Option<Arc<dyn RoundHook>>) -> Option<Arc<dyn RoundHook>> {
        let mut slot = self.inner.hook.write().unwrap_or_else(|p| p.into_inner());
        std::mem::replace(&mut *slot, hook)
    }

    /// Reports the result of the item a sink returned [`SendOutcome::Pending`] for
    /// (a message or a ping): `Err` counts a failed delivery. The connection's next
    /// items (or its close callback) follow. NotFound when nothing of connection `id`
    /// is in flight (it was reported already, or never pending); a failure report for a
    /// registered connection with nothing in flight still counts as a failure.
    pub fn report_send(&self, id: ConnId, result: std::result::Result<(), String>) -> Result<()> {
        self.inner.report(id, result)
    }

    /// [`Registry::report_send`] of `Ok` for many connections at once (a binding that
    /// reports a whole round of successful sends in one call). Ids with nothing in
    /// flight are skipped; returns how many were reported.
    pub fn report_sent_many(&self, ids: &[ConnId]) -> usize {
        self.inner.report_many_ok(ids)
    }

    // ---- broadcast ----

    /// Queues `msg` for every connection `target` matches (each once), minus its
    /// except set. Never blocks on a client: a full queue meets
    /// `registry.queue_full_policy`. InvalidArgument for a target that names nobody.
    pub fn broadcast(&self, target: &Target, msg: Message) -> Result<BroadcastReport> {
        self.check_open()?;
        if target.is_empty() {
            return Err(Error::invalid_argument(
                "a broadcast target must name at least one topic, user or connection id, or all",
            ));
        }
        let report = self.inner.fan_out(target, &msg);
        if let Some(remote) = self.inner.remote.get() {
            remote.publish(target, &msg);
        }
        Ok(report)
    }

    /// Queues `msg` for connection `id` alone; NotFound when it is not registered.
    pub fn send(&self, id: ConnId, msg: Message) -> Result<BroadcastReport> {
        self.check_open()?;
        let report = self.inner.fan_out(&Target::ids([id]), &msg);
        if report.recipients == 0 {
            return Err(not_found(id));
        }
        Ok(report)
    }
}

fn not_found(id: ConnId) -> Error {
    Error::not_found(format!(
        "no registered connection with id {id} (it left, or was never registered)"
    ))
}

impl Inner {
    /// A new connection id: the process-wide counter, with the node number in the
    /// top bits when clustered (the counter's low 32 bits then).
    fn next_id(&self) -> ConnId {
        let n = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        match self.id_base.load(Ordering::Acquire) {
            0 => n,
            base => base | (n & 0xFFFF_FFFF),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn index_is_empty(&self) -> bool {
        self.read().conns.is_empty()
    }

    pub(crate) fn round_hook(&self) -> Option<Arc<dyn RoundHook>> {
        self.hook.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::unavailable(
                "the manager is closed; the registry is no longer available",
            ));
        }
        match self.rt.get() {
            Some(rt) => rt.check_fork(),
            None => Ok(()),
        }
    }

    pub(crate) fn runtime(&self) -> Result<&Arc<RuntimeShared>> {
        self.rt
            .get()
            .ok_or_else(|| Error::failed_precondition("the registry's runtime is not running"))
    }

    pub(crate) fn now_ns(&self) -> u64 {
        let d = self.clock.now().saturating_duration_since(self.base);
        u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
    }

    fn conn(&self, id: ConnId) -> Result<Arc<Conn>> {
        self.read()
            .conns
            .get(&id)
            .cloned()
            .ok_or_else(|| not_found(id))
    }

    /// Counts a refusal by a limit, emits a `rejected` event and builds the error.
    fn limit(&self, key: &'static str, value: usize, detail: String) -> Error {
        *lock(&self.counters.rejections)
            .entry(key.to_string())
            .or_default() += 1;
        let message = format!("{key} ({value}) reached: {detail}");
        self.events.emit(Event {
            reason: Some(key.to_string()),
            ..Event::new(EventKind::Rejected, message.clone())
        });
        Error::resource_exhausted(message)
    }

    fn emit(
        &self,
        kind: EventKind,
        id: ConnId,
        user: Option<String>,
        topic: Option<String>,
        reason: Option<String>,
        message: String,
    ) {
        self.events.emit(Event {
            connection_id: Some(id),
            user,
            topic,
            reason,
            ..Event::new(kind, message)
        });
    }

    /// Removes connection `id` (if it is still there) for `reason`; returns whether
    /// this call removed it.
    pub(crate) fn remove(&self, id: ConnId, reason: &str, message: &str) -> bool {
        let Some(conn) = self.write().remove(id) else {
            return false;
        };
        if conn.leaving.swap(true, Ordering::AcqRel) {
            return false;
        }
        let reason: Arc<str> = Arc::from(reason);
        let (discarded, schedule) = conn.close(&reason);
        if discarded > 0 {
            self.counters
                .dropped
                .fetch_add(discarded, Ordering::Relaxed);
        }
        {
            let mut d = lock(&self.counters.disconnects);
            let key = if d.contains_key(&*reason) || d.len() < MAX_REASONS {
                reason.to_string()
            } else {
                "other".to_string()
            };
            *d.entry(key).or_default() += 1;
        }
        let user = conn.user.as_deref().map(str::to_string);
        if schedule {
            self.ready.push(conn);
        }
        self.emit(
            EventKind::Unregistered,
            id,
            user,
            None,
            Some(reason.to_string()),
            message.to_string(),
        );
        true
    }

    /// Counts what a sink did with one item; removes the connection after
    /// `registry.max_send_failures` failures in a row.
    pub(crate) fn record_outcome(&self, conn: &Conn, outcome: SendOutcome, message: bool) {
        match outcome {
            SendOutcome::Sent => {
                if message {
                    conn.sent.fetch_add(1, Ordering::Relaxed);
                }
                conn.fails_in_row.store(0, Ordering::Relaxed);
            }
            SendOutcome::Pending => {}
            SendOutcome::Failed(why) => {
                conn.failed.fetch_add(1, Ordering::Relaxed);
                self.counters.failed.fetch_add(1, Ordering::Relaxed);
                let n = conn.fails_in_row.fetch_add(1, Ordering::AcqRel) + 1;
                if n >= self.settings.max_send_failures {
                    self.remove(
                        conn.id,
                        "send_failed",
                        &format!("connection {} removed after {n} failed deliveries in a row; the last: {why}", conn.id),
                    );
                }
            }
        }
    }
}

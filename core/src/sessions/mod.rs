//! Streaming sessions: logical client connections to a data source's session, each
//! reading several streams from its own offset, with Kafka's distinction between the
//! position (next to deliver) and the committed offset (safe to resume from).
//!
//! Reach it through [`crate::Manager::sessions`]:
//!
//! ```
//! use switchboard_core::{Config, Manager, SessionDetails};
//! let manager = Manager::new(&Config::new())?;
//! let sessions = manager.sessions();
//! sessions.register("quotes", "eu")?;
//! let id = sessions.open(&SessionDetails::new("quotes", "eu").streams(["trades", "book"]))?;
//! sessions.deliver(id, "trades", 10, 1500, 0)?; // position 0 -> 10
//! sessions.commit(id, "trades", 10)?;           // safe to resume from 10
//! sessions.close(id)?;
//! let again = sessions.resume("quotes", "eu", &["trades", "book"], false)?;
//! assert_eq!(sessions.get(again)?.stream("trades").map(|s| s.position), Some(10));
//! # Ok::<(), switchboard_core::Error>(())
//! ```
//!
//! Thread safety: every method takes `&self` and may be called from any thread at
//! once. Sessions are kept in 64 shards by id, each behind its own mutex, so the
//! counting calls ([`Sessions::record_read`], [`Sessions::deliver`], ...) of different
//! sessions rarely meet, and a [`StreamHandle`] counts with atomics alone. Only
//! [`Sessions::commit`] (and `open`/`add_stream`, which read committed offsets) wait on
//! the offset store, which with a durable store means a disk write and fsync.

mod catalog;
mod metrics;
mod offsets;
pub mod redis_store;
pub mod store;
mod types;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use crate::config::Config;
use crate::error::{Code, Error, Result};
use crate::events::{Event, EventBus, EventKind};
use crate::runtime::RuntimeShared;

pub use redis_store::RedisStore;
pub use store::{DurableStore, MemoryStore, OffsetKey, OffsetStore, SyncMode};
pub use types::{SessionDetails, SessionInfo, StreamCounters, StreamInfo};

/// Session ids come from one counter for the whole process, so an id is never reused,
/// not even by another manager.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

const SHARDS: usize = 64;

/// A registered (data source, session key) pair: its open count and its metrics.
#[derive(Debug)]
struct KeyEntry {
    data_source: Arc<str>,
    session_key: Arc<str>,
    open: AtomicUsize,
    opened_total: AtomicU64,
}

/// "No committed offset" in [`StreamState::committed`].
const NONE: i64 = -1;

const READ_P: usize = 0;
const READ_B: usize = 1;
const DELIV_P: usize = 2;
const DELIV_B: usize = 3;
const ESS_R: usize = 4;
const ESS_D: usize = 5;

#[derive(Debug)]
struct StreamState {
    name: Box<str>,
    position: AtomicI64,
    /// Changed only under the session's commit lock; `NONE` when none.
    committed: AtomicI64,
    /// The lowest offset a commit may name: the last commit, or the offset the stream
    /// started at or was last seeked to. Changed only under the commit lock.
    floor: AtomicI64,
    counters: [AtomicU64; 6],
}

impl StreamState {
    fn new(name: &str, position: i64, committed: Option<i64>) -> Self {
        StreamState {
            name: name.into(),
            position: AtomicI64::new(position),
            committed: AtomicI64::new(committed.unwrap_or(NONE)),
            floor: AtomicI64::new(position),
            counters: Default::default(),
        }
    }

    #[inline]
    fn add(&self, i: usize, n: u64) {
        if n != 0 {
            self.counters[i].fetch_add(n, Ordering::Relaxed);
        }
    }

    #[inline]
    fn record_read(&self, packets: u64, bytes: u64, essential: u64) {
        self.add(READ_P, packets);
        self.add(READ_B, bytes);
        self.add(ESS_R, essential);
    }

    #[inline]
    fn deliver(&self, packets: u64, bytes: u64, essential: u64) -> i64 {
        self.add(DELIV_P, packets);
        self.add(DELIV_B, bytes);
        self.add(ESS_D, essential);
        let n = i64::try_from(packets).unwrap_or(i64::MAX);
        self.position
            .fetch_add(n, Ordering::AcqRel)
            .saturating_add(n)
    }

    fn info(&self) -> StreamInfo {
        let c = |i: usize| self.counters[i].load(Ordering::Relaxed);
        let committed = self.committed.load(Ordering::Acquire);
        StreamInfo {
            name: self.name.to_string(),
            position: self.position.load(Ordering::Acquire),
            committed: (committed != NONE).then_some(committed),
            counters: StreamCounters {
                data_packets_read: c(READ_P),
                data_bytes_read: c(READ_B),
                data_packets_delivered: c(DELIV_P),
                data_bytes_delivered: c(DELIV_B),
                essential_packets_read: c(ESS_R),
                essential_packets_delivered: c(ESS_D),
            },
        }
    }
}

#[derive(Debug)]
struct SessionState {
    id: u64,
    key: Arc<KeyEntry>,
    exclude_main_stream: bool,
    streams: RwLock<Vec<Arc<StreamState>>>,
    /// Serialises commits and seeks of this session (not of others), so that two
    /// commits of one stream reach the store in the order they were checked.
    commit_lock: Mutex<()>,
    router_messages: AtomicU64,
    router_bytes: AtomicU64,
}

impl SessionState {
    fn stream(&self, name: &str) -> Option<Arc<StreamState>> {
        let streams = self.streams.read().unwrap_or_else(|p| p.into_inner());
        streams.iter().find(|s| &*s.name == name).cloned()
    }

    fn info(&self) -> SessionInfo {
        let streams = self.streams.read().unwrap_or_else(|p| p.into_inner());
        SessionInfo {
            id: self.id,
            data_source: self.key.data_source.to_string(),
            session_key: self.key.session_key.to_string(),
            exclude_main_stream: self.exclude_main_stream,
            streams: streams.iter().map(|s| s.info()).collect(),
            router_messages_received: self.router_messages.load(Ordering::Relaxed),
            router_bytes_received: self.router_bytes.load(Ordering::Relaxed),
        }
    }
}

/// A counting handle on one stream of a session, for Rust hot paths: its calls are
/// atomic adds, with no lookup and no lock. It keeps counting after its session is
/// closed or the stream removed (into counters nobody reads any more).
#[derive(Debug, Clone)]
pub struct StreamHandle {
    session_id: u64,
    state: Arc<StreamState>,
}

impl StreamHandle {
    /// The session's id.
    pub fn session_id(&self) -> u64 {
        self.session_id
    }

    /// The stream's name.
    pub fn name(&self) -> &str {
        &self.state.name
    }

    /// Counts packets read from the source; see [`Sessions::record_read`].
    #[inline]
    pub fn record_read(&self, packets: u64, bytes: u64, essential_packets: u64) {
        self.state.record_read(packets, bytes, essential_packets)
    }

    /// Counts packets delivered and advances the position by `packets`; returns the
    /// new position. See [`Sessions::deliver`].
    #[inline]
    pub fn deliver(&self, packets: u64, bytes: u64, essential_packets: u64) -> i64 {
        self.state.deliver(packets, bytes, essential_packets)
    }

    /// The next offset to deliver.
    pub fn position(&self) -> i64 {
        self.state.position.load(Ordering::Acquire)
    }
}

/// Open sessions whose id falls in one of the 64 shards.
type Shard = Mutex<HashMap<u64, Arc<SessionState>>>;

type Catalog = HashMap<Arc<str>, HashMap<Arc<str>, Arc<KeyEntry>>>;

/// The manager's sessions, their catalog of data sources and session keys, and the
/// offset store. Get it with [`crate::Manager::sessions`].
pub struct Sessions {
    shards: Box<[Shard]>,
    catalog: RwLock<Catalog>,
    open_total: AtomicUsize,
    max_total: usize,
    max_per_key: usize,
    store: Arc<dyn OffsetStore>,
    events: Arc<EventBus>,
    closed: AtomicBool,
    sync_interval: Option<Duration>,
    /// The manager's runtime, for the fork check.
    rt: OnceLock<Arc<RuntimeShared>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("open", &self.open_total.load(Ordering::Relaxed))
            .field("store", &self.store.kind())
            .finish()
    }
}

fn non_empty(field: &str, v: &str) -> Result<()> {
    if v.is_empty() {
        return Err(Error::invalid_argument(format!(
            "{field} must be a non-empty string"
        )));
    }
    Ok(())
}

fn non_negative(field: &str, v: i64) -> Result<()> {
    if v < 0 {
        return Err(Error::invalid_argument(format!(
            "{field} must be a non-negative offset (0..=9223372036854775807), got {v}"
        )));
    }
    Ok(())
}

fn limit(v: u64) -> usize {
    if v == 0 {
        usize::MAX
    } else {
        usize::try_from(v).unwrap_or(usize::MAX)
    }
}

/// Adds one to `n` unless it is already `max`.
fn try_take(n: &AtomicUsize, max: usize) -> bool {
    n.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| {
        (v < max).then_some(v + 1)
    })
    .is_ok()
}

impl Sessions {
    /// Sessions configured by `config` (`sessions.*`, `offsets.*`): opens the durable
    /// store when `offsets.path` is set.
    pub(crate) fn new(
        config: &Config,
        events: Arc<EventBus>,
        handle: &tokio::runtime::Handle,
    ) -> Result<Sessions> {
        let path = config.bytes("offsets.path");
        let mode = SyncMode::parse(config.get("offsets.sync")?).unwrap_or(SyncMode::EveryCommit);
        let interval = config.duration("offsets.sync_interval");
        let kind = match config.get("offsets.store")? {
            "auto" if path.is_empty() => "memory",
            "auto" => "durable",
            k => k,
        };
        if kind != "memory" && mode == SyncMode::Interval && interval.is_zero() {
            return Err(Error::invalid_argument(
                "offsets.sync_interval must be a duration above 0 when offsets.sync is interval, got \"0\"",
            ));
        }
        let store: Arc<dyn OffsetStore> = match kind {
            "memory" => Arc::new(MemoryStore::new()),
            "redis" => {
                let url = config.get("offsets.redis_url")?;
                if url.is_empty() {
                    return Err(Error::invalid_argument(
                        "offsets.store = redis needs offsets.redis_url, e.g. redis://127.0.0.1:6379/0",
                    ));
                }
                Arc::new(RedisStore::open(
                    url,
                    config.get("offsets.prefix")?,
                    mode,
                    config
                        .duration("offsets.redis_timeout")
                        .max(Duration::from_millis(1)),
                    handle.clone(),
                )?)
            }
            _ => {
                if path.is_empty() {
                    return Err(Error::invalid_argument(
                        "offsets.store = durable needs offsets.path, the file of the embedded store",
                    ));
                }
                let path = String::from_utf8(path).map_err(|_| {
                    Error::invalid_argument("offsets.path must be a UTF-8 file path")
                })?;
                Arc::new(DurableStore::open(path, mode)?)
            }
        };
        let sync_interval =
            (mode == SyncMode::Interval && store.kind() != "memory").then_some(interval);
        Ok(Sessions {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            catalog: RwLock::new(HashMap::new()),
            open_total: AtomicUsize::new(0),
            max_total: limit(config.u64("sessions.max_total")),
            max_per_key: limit(config.u64("sessions.max_per_key")),
            store,
            events,
            closed: AtomicBool::new(false),
            sync_interval,
            rt: OnceLock::new(),
        })
    }

    /// Remembers the manager's runtime (for the fork check) and starts the background
    /// flush of an `offsets.sync = interval` store.
    pub(crate) fn start_background(&self, rt: &Arc<RuntimeShared>) -> Result<()> {
        let _ = self.rt.set(rt.clone());
        let Some(every) = self.sync_interval else {
            return Ok(());
        };
        let store = Arc::downgrade(&self.store);
        let events = Arc::downgrade(&self.events);
        rt.spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(s) = store.upgrade() else { return };
                let flushed = tokio::task::spawn_blocking(move || s.flush()).await;
                if let (Ok(Err(e)), Some(ev)) = (flushed, events.upgrade()) {
                    ev.emit(Event::new(
                        EventKind::CommitFailed,
                        format!("background flush of buffered commits failed: {e}"),
                    ));
                }
            }
        })?;
        Ok(())
    }

    /// Stops: later calls fail with Unavailable; flushes and closes the store; forgets
    /// every session (without events).
    pub(crate) fn shutdown(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        let flushed = self.store.close();
        for shard in self.shards.iter() {
            let gone = std::mem::take(&mut *shard.lock().unwrap_or_else(|p| p.into_inner()));
            drop(gone);
        }
        self.catalog
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.open_total.store(0, Ordering::Release);
        flushed
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::unavailable(
                "the manager is closed; sessions are no longer available",
            ));
        }
        match self.rt.get() {
            // After a fork the store's file lock and the counters belong to the parent.
            Some(rt) => rt.check_fork(),
            None => Ok(()),
        }
    }

    fn shard(&self, id: u64) -> &Shard {
        &self.shards[(id % SHARDS as u64) as usize]
    }

    fn not_found(id: u64) -> Error {
        Error::new(
            Code::NotFound,
            format!("no open session with id {id} (it was closed, or never opened)"),
        )
    }

    /// Runs `f` on session `id` under its shard's lock (keep `f` short).
    fn with_session<R>(&self, id: u64, f: impl FnOnce(&Arc<SessionState>) -> R) -> Result<R> {
        self.check_open()?;
        let shard = self.shard(id).lock().unwrap_or_else(|p| p.into_inner());
        shard.get(&id).map(f).ok_or_else(|| Self::not_found(id))
    }

    fn session(&self, id: u64) -> Result<Arc<SessionState>> {
        self.with_session(id, Arc::clone)
    }

    fn stream_not_found(id: u64, stream: &str) -> Error {
        Error::new(
            Code::NotFound,
            format!("session {id} has no stream named \"{stream}\""),
        )
    }

    fn emit(&self, kind: EventKind, id: u64, stream: Option<&str>, message: String) {
        self.events.emit(Event {
            session_id: Some(id),
            stream: stream.map(str::to_string),
            ..Event::new(kind, message)
        });
    }

    // ---- sessions ----

    fn validate(details: &SessionDetails) -> Result<()> {
        non_empty("data_source", &details.data_source)?;
        non_empty("session_key", &details.session_key)?;
        for (i, name) in details.streams.iter().enumerate() {
            if name.is_empty() {
                return Err(Error::invalid_argument(format!(
                    "streams[{i}] must be a non-empty stream name"
                )));
            }
            if let Some(j) = details.streams[..i].iter().position(|n| n == name) {
                return Err(Error::invalid_argument(format!(
                    "streams[{i}] \"{name}\" repeats streams[{j}]; stream names must be unique within a session"
                )));
            }
        }
        let (n, m) = (details.stream_offsets.len(), details.streams.len());
        if n != 0 && n != m {
            return Err(Error::invalid_argument(format!(
                "stream_offsets has {n} entries but streams has {m}; give one offset per stream, or none to start every stream at 0"
            )));
        }
        for (i, off) in details.stream_offsets.iter().enumerate() {
            non_negative(&format!("stream_offsets[{i}]"), *off)?;
        }
        Ok(())
    }

    /// Opens a session: validates `details` (InvalidArgument naming the field), checks
    /// that its session key is registered (FailedPrecondition) and the limits
    /// `sessions.max_total` / `sessions.max_per_key` (ResourceExhausted), reads the
    /// streams' committed offsets from the store, and returns the new session's id.
    /// Each stream's position starts at its `stream_offsets` entry (0 if empty).
    /// Emits [`EventKind::SessionOpened`].
    pub fn open(&self, details: &SessionDetails) -> Result<u64> {
        self.check_open()?;
        Self::validate(details)?;
        self.open_validated(details, false)
    }

    /// Opens a session whose streams start at their committed offsets (0 for a stream
    /// that was never committed), e.g. after a restart. Same checks and event as
    /// [`Sessions::open`].
    pub fn resume(
        &self,
        data_source: &str,
        session_key: &str,
        streams: &[&str],
        exclude_main_stream: bool,
    ) -> Result<u64> {
        self.check_open()?;
        let details = SessionDetails {
            data_source: data_source.to_string(),
            session_key: session_key.to_string(),
            streams: streams.iter().map(|s| s.to_string()).collect(),
            stream_offsets: Vec::new(),
            exclude_main_stream,
        };
        Self::validate(&details)?;
        self.open_validated(&details, true)
    }

    fn open_validated(&self, d: &SessionDetails, resume: bool) -> Result<u64> {
        let key = {
            let cat = self.catalog.read().unwrap_or_else(|p| p.into_inner());
            let entry = cat
                .get(d.data_source.as_str())
                .and_then(|k| k.get(d.session_key.as_str()))
                .ok_or_else(|| {
                    Error::failed_precondition(format!(
                        "data source \"{}\" has no registered session key \"{}\"; register it first",
                        d.data_source, d.session_key
                    ))
                })?;
            // Counted under the catalog's read lock, so unregister (write lock) sees it.
            if !try_take(&entry.open, self.max_per_key) {
                return Err(Error::new(
                    Code::ResourceExhausted,
                    format!(
                        "session key \"{}\" of data source \"{}\" already has {} open sessions, the most sessions.max_per_key allows",
                        d.session_key, d.data_source, self.max_per_key
                    ),
                ));
            }
            if !try_take(&self.open_total, self.max_total) {
                entry.open.fetch_sub(1, Ordering::AcqRel);
                return Err(Error::new(
                    Code::ResourceExhausted,
                    format!(
                        "{} sessions are open, the most sessions.max_total allows",
                        self.max_total
                    ),
                ));
            }
            entry.clone()
        };
        let release = || {
            key.open.fetch_sub(1, Ordering::AcqRel);
            self.open_total.fetch_sub(1, Ordering::AcqRel);
        };
        let mut streams = Vec::with_capacity(d.streams.len());
        for (i, name) in d.streams.iter().enumerate() {
            let committed = match self.store.get(&OffsetKey {
                data_source: &d.data_source,
                session_key: &d.session_key,
                stream: name,
            }) {
                Ok(c) => c,
                Err(e) => {
                    release();
                    return Err(e);
                }
            };
            let start = if resume {
                committed.unwrap_or(0)
            } else {
                d.stream_offsets.get(i).copied().unwrap_or(0)
            };
            streams.push(Arc::new(StreamState::new(name, start, committed)));
        }
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(SessionState {
            id,
            key: key.clone(),
            exclude_main_stream: d.exclude_main_stream,
            streams: RwLock::new(streams),
            commit_lock: Mutex::new(()),
            router_messages: AtomicU64::new(0),
            router_bytes: AtomicU64::new(0),
        });
        self.shard(id)
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, state);
        key.opened_total.fetch_add(1, Ordering::Relaxed);
        self.emit(
            EventKind::SessionOpened,
            id,
            None,
            format!(
                "session {id} {} on data source \"{}\" key \"{}\" with {} stream(s)",
                if resume { "resumed" } else { "opened" },
                d.data_source,
                d.session_key,
                d.streams.len()
            ),
        );
        Ok(id)
    }

    /// The session's details, positions, committed offsets and counters; NotFound if
    /// no session `id` is open.
    pub fn get(&self, id: u64) -> Result<SessionInfo> {
        self.with_session(id, |s| s.info())
    }

    /// Closes session `id` (NotFound if it is not open). Its committed offsets stay in
    /// the store; nothing is committed on close. Emits [`EventKind::SessionClosed`].
    pub fn close(&self, id: u64) -> Result<()> {
        self.check_open()?;
        let gone = {
            let mut shard = self.shard(id).lock().unwrap_or_else(|p| p.into_inner());
            let gone = shard.remove(&id).ok_or_else(|| Self::not_found(id))?;
            // Give memory back after a burst of sessions has gone (amortised: only
            // when three quarters of the table are empty).
            if shard.capacity() > 64 && shard.len() * 4 < shard.capacity() {
                let keep = shard.len() * 2;
                shard.shrink_to(keep);
            }
            gone
        };
        gone.key.open.fetch_sub(1, Ordering::AcqRel);
        self.open_total.fetch_sub(1, Ordering::AcqRel);
        self.emit(
            EventKind::SessionClosed,
            id,
            None,
            format!(
                "session {id} on data source \"{}\" key \"{}\" closed",
                gone.key.data_source, gone.key.session_key
            ),
        );
        Ok(())
    }

    /// Open sessions, sorted by id, optionally only those of `data_source` and/or
    /// `session_key`.
    pub fn list(
        &self,
        data_source: Option<&str>,
        session_key: Option<&str>,
    ) -> Result<Vec<SessionInfo>> {
        self.check_open()?;
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.lock().unwrap_or_else(|p| p.into_inner());
            for s in shard.values() {
                if data_source.is_some_and(|d| *s.key.data_source != *d)
                    || session_key.is_some_and(|k| *s.key.session_key != *k)
                {
                    continue;
                }
                out.push(s.info());
            }
        }
        out.sort_by_key(|s| s.id);
        Ok(out)
    }

    /// Open sessions now.
    pub fn open_count(&self) -> usize {
        self.open_total.load(Ordering::Acquire)
    }

    /// Adds stream `stream` to live session `id`, positioned at `offset` (≥ 0).
    /// InvalidArgument for an empty name, a negative offset or a name the session
    /// already has (as for duplicates in [`Sessions::open`]); NotFound for an unknown
    /// session. Emits
    /// [`EventKind::StreamAdded`].
    pub fn add_stream(&self, id: u64, stream: &str, offset: i64) -> Result<()> {
        self.check_open()?;
        non_empty("stream", stream)?;
        non_negative("offset", offset)?;
        let s = self.session(id)?;
        let committed = self.store.get(&OffsetKey {
            data_source: &s.key.data_source,
            session_key: &s.key.session_key,
            stream,
        })?;
        {
            let mut streams = s.streams.write().unwrap_or_else(|p| p.into_inner());
            if streams.iter().any(|x| &*x.name == stream) {
                return Err(Error::invalid_argument(format!(
                    "stream \"{stream}\" is already in session {id}; stream names must be unique within a session"
                )));
            }
            streams.push(Arc::new(StreamState::new(stream, offset, committed)));
        }
        self.emit(
            EventKind::StreamAdded,
            id,
            Some(stream),
            format!("stream \"{stream}\" added to session {id} at offset {offset}"),
        );
        Ok(())
    }

    /// Removes stream `stream` from live session `id` (NotFound if either is unknown).
    /// Its committed offset stays in the store. Emits [`EventKind::StreamRemoved`].
    pub fn remove_stream(&self, id: u64, stream: &str) -> Result<()> {
        let s = self.session(id)?;
        {
            let mut streams = s.streams.write().unwrap_or_else(|p| p.into_inner());
            let i = streams
                .iter()
                .position(|x| &*x.name == stream)
                .ok_or_else(|| Self::stream_not_found(id, stream))?;
            streams.remove(i);
        }
        self.emit(
            EventKind::StreamRemoved,
            id,
            Some(stream),
            format!("stream \"{stream}\" removed from session {id}"),
        );
        Ok(())
    }

    // ---- counting (hot path) ----

    fn with_stream<R>(
        &self,
        id: u64,
        stream: &str,
        f: impl FnOnce(&Arc<StreamState>) -> R,
    ) -> Result<R> {
        self.with_session(id, |s| {
            let streams = s.streams.read().unwrap_or_else(|p| p.into_inner());
            streams.iter().find(|x| &*x.name == stream).map(f)
        })?
        .ok_or_else(|| Self::stream_not_found(id, stream))
    }

    /// Counts `packets` data packets of `bytes` bytes read from the source for
    /// `stream`, `essential_packets` of them essential. Does not move the position.
    pub fn record_read(
        &self,
        id: u64,
        stream: &str,
        packets: u64,
        bytes: u64,
        essential_packets: u64,
    ) -> Result<()> {
        self.with_stream(id, stream, |s| {
            s.record_read(packets, bytes, essential_packets)
        })
    }

    /// Counts `packets` data packets of `bytes` bytes delivered to the client on
    /// `stream` (`essential_packets` of them essential) and advances the stream's
    /// position by `packets`; returns the new position.
    pub fn deliver(
        &self,
        id: u64,
        stream: &str,
        packets: u64,
        bytes: u64,
        essential_packets: u64,
    ) -> Result<i64> {
        self.with_stream(id, stream, |s| s.deliver(packets, bytes, essential_packets))
    }

    /// Counts `messages` router (control) messages of `bytes` bytes received on
    /// session `id`.
    pub fn record_router(&self, id: u64, messages: u64, bytes: u64) -> Result<()> {
        self.with_session(id, |s| {
            s.router_messages.fetch_add(messages, Ordering::Relaxed);
            s.router_bytes.fetch_add(bytes, Ordering::Relaxed);
        })
    }

    /// A [`StreamHandle`] that counts on `stream` of session `id` without lookups.
    pub fn stream_handle(&self, id: u64, stream: &str) -> Result<StreamHandle> {
        let state = self.with_stream(id, stream, Arc::clone)?;
        Ok(StreamHandle {
            session_id: id,
            state,
        })
    }

    /// The next offset to deliver on `stream`.
    pub fn position(&self, id: u64, stream: &str) -> Result<i64> {
        self.with_stream(id, stream, |s| s.position.load(Ordering::Acquire))
    }

    /// A snapshot for the Prometheus text.
    pub(crate) fn collector(&self) -> metrics::SessionsCollector {
        if self.closed.load(Ordering::Acquire) {
            return metrics::SessionsCollector::default();
        }
        let keys = {
            let cat = self.catalog.read().unwrap_or_else(|p| p.into_inner());
            cat.values()
                .flat_map(|k| k.values())
                .map(|e| metrics::KeyRow {
                    data_source: e.data_source.to_string(),
                    session_key: e.session_key.to_string(),
                    opened_total: e.opened_total.load(Ordering::Relaxed),
                    open: e.open.load(Ordering::Relaxed),
                })
                .collect()
        };
        let sessions = self.list(None, None).unwrap_or_default();
        metrics::SessionsCollector { keys, sessions }
    }
}

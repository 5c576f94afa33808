//! JS arguments as core values, and core's snapshots and reports as JS objects.
//!
//! The cluster (`crate::cluster`) takes the registry's targets and list filters and
//! returns its snapshots, reports and statistics, so those converters are
//! `pub(crate)` (re-exported by `registry/mod.rs`); the rest serve this module only.

use std::time::Duration;

use napi::bindgen_prelude::{Buffer, Either};
use napi_derive::napi;
use switchboard_core::Code;
use switchboard_core::registry::{
    BroadcastReport, CleanupReport, ConnId, ConnInfo, ConnState, ListFilter, ListPage, Message,
    RegistryStats, Target,
};

use crate::error::{Result, sb_error, to_napi};
use crate::health::ms;
use crate::sessions::count;

/// `[key, value]` pairs from JS (built by `registry.js`, so always pairs).
pub(super) fn pairs(v: Vec<Vec<String>>) -> Result<Vec<(String, String)>> {
    v.into_iter()
        .map(|p| match <[String; 2]>::try_from(p) {
            Ok([k, v]) => Ok((k, v)),
            Err(p) => Err(sb_error(
                Code::InvalidArgument,
                format!(
                    "metadata entries must be [key, value] pairs, got {} strings",
                    p.len()
                ),
            )),
        })
        .collect()
}

pub(super) fn conn_id(v: f64) -> Result<ConnId> {
    count("connection id", v)
}

fn ids(what: &str, v: Vec<f64>) -> Result<Vec<ConnId>> {
    v.into_iter()
        .enumerate()
        .map(|(i, x)| count(&format!("{what}[{i}]"), x))
        .collect()
}

/// A message from JS: a string is a text message, a Buffer a binary one.
pub(crate) fn message(data: Either<String, Buffer>) -> Message {
    match data {
        Either::A(s) => Message::text(&s),
        Either::B(b) => Message::binary(b.to_vec()),
    }
}

/// A message for JS, the other way round.
pub(super) fn js_message(m: &Message) -> Either<String, Buffer> {
    match m.as_text() {
        Some(t) => Either::A(t.to_string()),
        None => Either::B(Buffer::from(m.data().to_vec())),
    }
}

/// A connection id that JS reports a delivery for (`registry.js` only reports ids it
/// was given, so anything else is skipped rather than named).
pub(super) fn reported_id(v: f64) -> Option<ConnId> {
    (v >= 1.0 && v.fract() == 0.0).then_some(v as ConnId)
}

/// What one broadcast (or send) did (core's `BroadcastReport`).
#[napi(object)]
pub struct NativeBroadcastReport {
    pub recipients: f64,
    pub queued: f64,
    pub dropped: f64,
    pub disconnected: f64,
    pub elapsed_ms: f64,
}

impl From<BroadcastReport> for NativeBroadcastReport {
    fn from(r: BroadcastReport) -> Self {
        NativeBroadcastReport {
            recipients: r.recipients as f64,
            queued: r.queued as f64,
            dropped: r.dropped as f64,
            disconnected: r.disconnected as f64,
            elapsed_ms: ms(r.elapsed),
        }
    }
}

/// A snapshot of one connection (core's `ConnInfo`), in the shape `registry.js`
/// returns (absent user: `null`) but for `metadata`, which it turns into an object.
#[napi(object, use_nullable = true)]
pub struct NativeConnInfo {
    pub id: f64,
    pub user: Option<String>,
    /// `[key, value]` pairs sorted by key.
    pub metadata: Vec<(String, String)>,
    pub topics: Vec<String>,
    pub state: String,
    pub sink: String,
    pub age_ms: f64,
    pub idle_ms: f64,
    pub queued_messages: f64,
    pub queued_bytes: f64,
    pub sent: f64,
    pub dropped: f64,
    pub failed: f64,
}

impl From<ConnInfo> for NativeConnInfo {
    fn from(c: ConnInfo) -> Self {
        NativeConnInfo {
            id: c.id as f64,
            user: c.user,
            metadata: c.metadata.into_iter().collect(),
            topics: c.topics,
            state: c.state.as_str().to_string(),
            sink: c.sink.to_string(),
            age_ms: ms(c.age),
            idle_ms: ms(c.idle),
            queued_messages: c.queued_messages as f64,
            queued_bytes: c.queued_bytes as f64,
            sent: c.sent as f64,
            dropped: c.dropped as f64,
            failed: c.failed as f64,
        }
    }
}

/// One page of `list` (core's `ListPage`; last page: `nextCursor` is `null`).
#[napi(object, use_nullable = true)]
pub struct NativeListPage {
    pub connections: Vec<NativeConnInfo>,
    pub next_cursor: Option<f64>,
}

impl From<ListPage> for NativeListPage {
    fn from(p: ListPage) -> Self {
        NativeListPage {
            connections: p
                .connections
                .into_iter()
                .map(NativeConnInfo::from)
                .collect(),
            next_cursor: p.next_cursor.map(|c| c as f64),
        }
    }
}

/// `(name, count)` pairs: a topic's subscribers, disconnects by reason, a cluster's
/// counts by node id, ...
pub(crate) fn counts(it: impl IntoIterator<Item = (String, u64)>) -> Vec<(String, f64)> {
    it.into_iter().map(|(name, n)| (name, n as f64)).collect()
}

/// The registry's statistics (core's `RegistryStats`). `disconnects` and `rejections`
/// are pairs, which `registry.js` turns into objects.
#[napi(object)]
pub struct NativeRegistryStats {
    pub connections: f64,
    pub active: f64,
    pub topics: f64,
    pub users: f64,
    pub topic_counts: Vec<(String, f64)>,
    pub registered_total: f64,
    pub broadcasts: f64,
    pub messages_queued: f64,
    pub messages_sent: f64,
    pub messages_dropped: f64,
    pub messages_failed: f64,
    pub disconnects: Vec<(String, f64)>,
    pub rejections: Vec<(String, f64)>,
    pub cleanup_runs: f64,
}

impl From<RegistryStats> for NativeRegistryStats {
    fn from(s: RegistryStats) -> Self {
        NativeRegistryStats {
            connections: s.connections as f64,
            active: s.active as f64,
            topics: s.topics as f64,
            users: s.users as f64,
            topic_counts: counts(s.topic_counts),
            registered_total: s.registered_total as f64,
            broadcasts: s.broadcasts as f64,
            messages_queued: s.messages_queued as f64,
            messages_sent: s.messages_sent as f64,
            messages_dropped: s.messages_dropped as f64,
            messages_failed: s.messages_failed as f64,
            disconnects: counts(s.disconnects),
            rejections: counts(s.rejections),
            cleanup_runs: s.cleanup_runs as f64,
        }
    }
}

/// What one cleanup pass did.
#[napi(object)]
pub struct NativeCleanupReport {
    pub removed: f64,
    pub pinged: f64,
}

impl From<CleanupReport> for NativeCleanupReport {
    fn from(r: CleanupReport) -> Self {
        NativeCleanupReport {
            removed: r.removed as f64,
            pinged: r.pinged as f64,
        }
    }
}

/// A target as `registry.js`'s `targetFrom` builds it (`topic`/`user`/`id` folded
/// into the lists), for the registry's and the cluster's broadcast and disconnect.
#[napi(object)]
pub struct NativeTarget {
    pub all: bool,
    pub topics: Vec<String>,
    pub users: Vec<String>,
    pub ids: Vec<f64>,
    pub except: Vec<f64>,
}

/// Core's `Target` of one from JS.
pub(crate) fn target(t: NativeTarget) -> Result<Target> {
    Ok(Target {
        all: t.all,
        topics: t.topics,
        users: t.users,
        ids: ids("ids", t.ids)?,
        except: ids("except", t.except)?,
    })
}

/// A list filter as `registry.js`'s `listFilterFrom` builds it (absent fields:
/// `null`), for the registry's and the cluster's `list`.
#[napi(object, use_nullable = true)]
pub struct NativeListFilter {
    pub user: Option<String>,
    pub topic: Option<String>,
    pub meta_key: Option<String>,
    pub meta_value: Option<String>,
    pub state: Option<String>,
    pub min_idle_ms: Option<f64>,
    pub limit: Option<f64>,
    pub cursor: Option<f64>,
}

/// Core's `ListFilter` of one from JS.
pub(crate) fn list_filter(f: NativeListFilter) -> Result<ListFilter> {
    let state = match f.state {
        None => None,
        Some(s) => Some(ConnState::parse_arg(&s).map_err(to_napi)?),
    };
    let min_idle = match f.min_idle_ms {
        None => None,
        // try_: a finite number too large for a Duration (1e300) is refused with the
        // others, not a panic.
        Some(v) => Some(
            Duration::try_from_secs_f64(v / 1000.0)
                .ok()
                .filter(|_| v >= 0.0)
                .ok_or_else(|| {
                    sb_error(
                        Code::InvalidArgument,
                        format!("minIdleMs must be a number of milliseconds >= 0, got {v}"),
                    )
                })?,
        ),
    };
    let limit = match f.limit {
        None => 0,
        Some(v) => usize::try_from(count("limit", v)?).unwrap_or(usize::MAX),
    };
    Ok(ListFilter {
        user: f.user,
        topic: f.topic,
        meta: f.meta_key.map(|k| (k, f.meta_value.unwrap_or_default())),
        state,
        min_idle,
        limit,
        cursor: f.cursor.map(|c| count("cursor", c)).transpose()?,
    })
}

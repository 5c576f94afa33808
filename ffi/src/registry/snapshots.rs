//! The registry's snapshots, the only things here the library allocates for the
//! caller: `sb_conn_info` (`sb_registry_get`), `sb_conn_list` (`sb_registry_list`,
//! filtered by `sb_list_filter`) and `sb_registry_stats` (`sb_registry_get_stats`),
//! each with its `_free`.

use std::ffi::c_char;
use std::time::Duration;

use switchboard_core::Result;
use switchboard_core::registry::{ConnInfo, ConnState, ListFilter, RegistryStats};

use super::ns;
use crate::args::{check_out, opt_str, read_versioned, write_out};
use crate::error::{guard, null_arg, sb_status};
use crate::handles::addr;
use crate::manager::{MANAGERS, sb_manager};
use crate::snapshot_table::{SnapshotTable, Strings, not_live};

/// Which connections `sb_registry_list` returns; every set field must match. Set
/// `struct_size = sizeof(sb_list_filter)`; unset fields are NULL / 0.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct sb_list_filter {
    /// `sizeof(sb_list_filter)`.
    pub struct_size: usize,
    /// Only this user's connections (NULL: any).
    pub user: *const c_char,
    /// Only subscribers of this topic (NULL: any).
    pub topic: *const c_char,
    /// Only connections whose metadata has this key (NULL: any) ...
    pub meta_key: *const c_char,
    /// ... with this value (required with `meta_key`).
    pub meta_value: *const c_char,
    /// Only connections in this state, `"active"` or `"idle"` (NULL: any).
    pub state: *const c_char,
    /// Only connections silent for at least this many milliseconds (0: any).
    pub min_idle_ms: u64,
    /// Most records to return (0: the default, 100; more than 10,000 counts as 10,000).
    pub limit: usize,
    /// Only ids above this one: the previous page's `next_cursor` (0: from the start).
    pub cursor: u64,
}

/// A snapshot of one connection (`sb_registry_get`, or an element of
/// `sb_conn_list.connections`). Its strings and arrays live as long as the snapshot.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct sb_conn_info {
    /// The size of this struct as allocated by the library.
    pub struct_size: usize,
    /// Its id.
    pub id: u64,
    /// Its user, or NULL.
    pub user: *const c_char,
    /// How many metadata entries.
    pub meta_len: usize,
    /// Metadata keys, sorted (NULL when none).
    pub meta_keys: *const *const c_char,
    /// Metadata values, `meta_values[i]` for `meta_keys[i]`.
    pub meta_values: *const *const c_char,
    /// How many topics.
    pub topics_len: usize,
    /// Its topics, sorted (NULL when none).
    pub topics: *const *const c_char,
    /// `"active"` or `"idle"` (static).
    pub state: *const c_char,
    /// `"callback"` or `"outbox"` (static).
    pub sink: *const c_char,
    /// Time since it registered, in nanoseconds (by the manager's clock).
    pub age_ns: u64,
    /// Time since it was last touched, in nanoseconds.
    pub idle_ns: u64,
    /// Messages waiting in its queue.
    pub queued_messages: u64,
    /// Bytes waiting in its queue.
    pub queued_bytes: u64,
    /// Messages handed to its sink.
    pub sent: u64,
    /// Messages dropped for it.
    pub dropped: u64,
    /// Failed deliveries to it.
    pub failed: u64,
}

/// One page of `sb_registry_list`, freed (once) by `sb_conn_list_free`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug)]
pub struct sb_conn_list {
    /// How many records.
    pub len: usize,
    /// The records, in id order (NULL when none). Never extended per element.
    pub connections: *const sb_conn_info,
    /// Whether there is a next page.
    pub has_next: bool,
    /// Pass as `cursor` for the next page (0 when this was the last one).
    pub next_cursor: u64,
}

/// The registry's statistics (`sb_registry_get_stats`), freed (once) by
/// `sb_registry_stats_free`. Fields may be added at the end (`struct_size`).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug)]
pub struct sb_registry_stats {
    /// The size of this struct as allocated by the library.
    pub struct_size: usize,
    /// Connections registered now.
    pub connections: u64,
    /// Of those, heard from within the heartbeat interval.
    pub active: u64,
    /// Topics with at least one subscriber.
    pub topics: u64,
    /// Distinct users with at least one connection.
    pub users: u64,
    /// Connections ever registered.
    pub registered_total: u64,
    /// Broadcasts (and direct sends) made.
    pub broadcasts: u64,
    /// Messages queued for delivery.
    pub messages_queued: u64,
    /// Messages handed to sinks.
    pub messages_sent: u64,
    /// Messages dropped by full queues, or discarded when their connection left.
    pub messages_dropped: u64,
    /// Failed deliveries.
    pub messages_failed: u64,
    /// Cleanup passes run.
    pub cleanup_runs: u64,
    /// How many topics `topic_names` / `topic_counts` hold (every topic).
    pub topic_counts_len: usize,
    /// Topic names, largest first.
    pub topic_names: *const *const c_char,
    /// Subscribers of `topic_names[i]`.
    pub topic_counts: *const u64,
    /// How many disconnect reasons.
    pub disconnects_len: usize,
    /// Reasons connections were removed for (sorted).
    pub disconnect_reasons: *const *const c_char,
    /// How many were removed for `disconnect_reasons[i]`.
    pub disconnect_counts: *const u64,
    /// How many limit keys refused calls.
    pub rejections_len: usize,
    /// The limit keys (sorted), e.g. `registry.max_total_connections`.
    pub rejection_keys: *const *const c_char,
    /// Calls refused by `rejection_keys[i]`.
    pub rejection_counts: *const u64,
}

/// What a snapshot pointer handed to C is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Snapshot {
    Info,
    List,
    Stats,
}

/// Snapshots handed out and not yet freed.
static LIVE: SnapshotTable<Snapshot> = SnapshotTable::new();

fn state_str(s: ConnState) -> *const c_char {
    let b: &'static [u8] = match s {
        ConnState::Active => b"active\0",
        ConnState::Idle => b"idle\0",
    };
    b.as_ptr().cast()
}

fn sink_str(s: &str) -> *const c_char {
    let b: &'static [u8] = if s == "outbox" {
        b"outbox\0"
    } else {
        b"callback\0"
    };
    b.as_ptr().cast()
}

/// One connection's snapshot, its strings kept in `st` (also an element of
/// `sb_cluster_conn_list`).
pub(crate) fn conn_info(c: &ConnInfo, st: &mut Strings) -> sb_conn_info {
    let user = c.user.as_deref().map_or(std::ptr::null(), |u| st.add(u));
    let (meta_keys, meta_len) = st.array(c.metadata.keys().map(String::as_str));
    let (meta_values, _) = st.array(c.metadata.values().map(String::as_str));
    let (topics, topics_len) = st.array(c.topics.iter().map(String::as_str));
    sb_conn_info {
        struct_size: std::mem::size_of::<sb_conn_info>(),
        id: c.id,
        user,
        meta_len,
        meta_keys,
        meta_values,
        topics_len,
        topics,
        state: state_str(c.state),
        sink: sink_str(c.sink),
        age_ns: ns(c.age),
        idle_ns: ns(c.idle),
        queued_messages: c.queued_messages,
        queued_bytes: c.queued_bytes,
        sent: c.sent,
        dropped: c.dropped,
        failed: c.failed,
    }
}

#[repr(C)]
struct InfoBox {
    info: sb_conn_info,
    _st: Strings,
}

#[repr(C)]
struct ListBox {
    list: sb_conn_list,
    _infos: Vec<sb_conn_info>,
    _st: Strings,
}

#[repr(C)]
struct StatsBox {
    stats: sb_registry_stats,
    _st: Strings,
}

// SAFETY: the raw pointers in a snapshot point into the box's own immutable strings
// and vectors; nothing is shared with other objects.
unsafe impl Send for InfoBox {}
// SAFETY: as above.
unsafe impl Send for ListBox {}
// SAFETY: as above.
unsafe impl Send for StatsBox {}

/// Stores in `*out` a snapshot of connection `id`; free it with `sb_conn_info_free`
/// (once). `SB_NOT_FOUND` when it is not registered.
///
/// # Safety
///
/// `out` NULL (rejected) or a writable `sb_conn_info *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_registry_get(
    manager: *const sb_manager,
    id: u64,
    out: *mut *mut sb_conn_info,
) -> sb_status {
    guard("sb_registry_get", || {
        let m = MANAGERS.get(addr(manager))?;
        check_out(out, "out")?;
        let info = m.registry().get(id)?;
        let mut st = Strings::default();
        let info = conn_info(&info, &mut st);
        let p = Box::into_raw(Box::new(InfoBox { info, _st: st })).cast::<sb_conn_info>();
        LIVE.remember(p as usize, Snapshot::Info);
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(out, p) };
        Ok(())
    })
}

/// Frees a snapshot made by `sb_registry_get`. NULL is a no-op; a pointer that is not
/// one (freed already) returns `SB_INVALID_HANDLE` and frees nothing.
#[unsafe(no_mangle)]
pub extern "C" fn sb_conn_info_free(info: *mut sb_conn_info) -> sb_status {
    guard("sb_conn_info_free", || {
        if info.is_null() {
            return Ok(());
        }
        if !LIVE.forget(info as usize, Snapshot::Info) {
            return Err(not_live("sb_conn_info", "sb_registry_get"));
        }
        // SAFETY: made by Box::into_raw in sb_registry_get and not freed since (it was
        // in the table); `info` is the first field of the repr(C) InfoBox.
        drop(unsafe { Box::from_raw(info.cast::<InfoBox>()) });
        Ok(())
    })
}

/// An `sb_list_filter` from C (NULL: every connection), for `sb_registry_list` and
/// `sb_cluster_list`. `SB_INVALID_ARGUMENT` for an unknown state or a `meta_key`
/// without `meta_value` (or the reverse).
///
/// # Safety
///
/// `filter` NULL or a valid `sb_list_filter` whose pointers follow its documentation.
pub(crate) unsafe fn list_filter(filter: *const sb_list_filter) -> Result<ListFilter> {
    let mut lf = ListFilter::default();
    if filter.is_null() {
        return Ok(lf);
    }
    // SAFETY: non-NULL, struct_size readable bytes by the caller's contract.
    let f = unsafe { read_versioned(filter, "sb_list_filter") }?;
    // SAFETY: each pointer follows the struct's documentation.
    unsafe {
        lf.user = opt_str(f.user, "user")?.map(str::to_string);
        lf.topic = opt_str(f.topic, "topic")?.map(str::to_string);
        let key = opt_str(f.meta_key, "meta_key")?;
        let value = opt_str(f.meta_value, "meta_value")?;
        lf.meta = match (key, value) {
            (Some(k), Some(v)) => Some((k.to_string(), v.to_string())),
            (None, None) => None,
            (Some(_), None) => return Err(null_arg("meta_value (with meta_key set)")),
            (None, Some(_)) => return Err(null_arg("meta_key (with meta_value set)")),
        };
        if let Some(s) = opt_str(f.state, "state")? {
            lf.state = Some(ConnState::parse_arg(s)?);
        }
    }
    if f.min_idle_ms > 0 {
        lf.min_idle = Some(Duration::from_millis(f.min_idle_ms));
    }
    lf.limit = f.limit;
    if f.cursor > 0 {
        lf.cursor = Some(f.cursor);
    }
    Ok(lf)
}

/// Stores in `*out` one page of the connections `filter` matches (NULL: all), in id
/// order; free it with `sb_conn_list_free` (once). Pass `next_cursor` as the next
/// call's `filter->cursor` while `has_next`. `SB_INVALID_ARGUMENT` for an unknown
/// state or a `meta_key` without `meta_value`.
///
/// # Safety
///
/// `filter` NULL or a valid `sb_list_filter`; `out` NULL (rejected) or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_registry_list(
    manager: *const sb_manager,
    filter: *const sb_list_filter,
    out: *mut *mut sb_conn_list,
) -> sb_status {
    guard("sb_registry_list", || {
        let m = MANAGERS.get(addr(manager))?;
        check_out(out, "out")?;
        // SAFETY: forwarded caller's contract.
        let lf = unsafe { list_filter(filter) }?;
        let page = m.registry().list(&lf)?;
        let mut st = Strings::default();
        let infos: Vec<sb_conn_info> = page
            .connections
            .iter()
            .map(|c| conn_info(c, &mut st))
            .collect();
        let b = Box::new(ListBox {
            list: sb_conn_list {
                len: infos.len(),
                connections: if infos.is_empty() {
                    std::ptr::null()
                } else {
                    infos.as_ptr()
                },
                has_next: page.next_cursor.is_some(),
                next_cursor: page.next_cursor.unwrap_or(0),
            },
            _infos: infos,
            _st: st,
        });
        let p = Box::into_raw(b).cast::<sb_conn_list>();
        LIVE.remember(p as usize, Snapshot::List);
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(out, p) };
        Ok(())
    })
}

/// Frees a page made by `sb_registry_list`. NULL is a no-op; a pointer that is not
/// one returns `SB_INVALID_HANDLE`.
#[unsafe(no_mangle)]
pub extern "C" fn sb_conn_list_free(list: *mut sb_conn_list) -> sb_status {
    guard("sb_conn_list_free", || {
        if list.is_null() {
            return Ok(());
        }
        if !LIVE.forget(list as usize, Snapshot::List) {
            return Err(not_live("sb_conn_list", "sb_registry_list"));
        }
        // SAFETY: made by Box::into_raw in sb_registry_list, not freed since.
        drop(unsafe { Box::from_raw(list.cast::<ListBox>()) });
        Ok(())
    })
}

/// One registry's statistics, their strings and arrays kept in `st` (also the
/// members' and their sum in `sb_cluster_stats`).
pub(crate) fn registry_stats(s: &RegistryStats, st: &mut Strings) -> sb_registry_stats {
    let (topic_names, topic_counts_len) = st.array(s.topic_counts.iter().map(|(t, _)| t.as_str()));
    let topic_counts = st.nums(s.topic_counts.iter().map(|(_, n)| *n).collect());
    let (disconnect_reasons, disconnects_len) = st.array(s.disconnects.keys().map(String::as_str));
    let disconnect_counts = st.nums(s.disconnects.values().copied().collect());
    let (rejection_keys, rejections_len) = st.array(s.rejections.keys().map(String::as_str));
    let rejection_counts = st.nums(s.rejections.values().copied().collect());
    sb_registry_stats {
        struct_size: std::mem::size_of::<sb_registry_stats>(),
        connections: s.connections,
        active: s.active,
        topics: s.topics,
        users: s.users,
        registered_total: s.registered_total,
        broadcasts: s.broadcasts,
        messages_queued: s.messages_queued,
        messages_sent: s.messages_sent,
        messages_dropped: s.messages_dropped,
        messages_failed: s.messages_failed,
        cleanup_runs: s.cleanup_runs,
        topic_counts_len,
        topic_names,
        topic_counts,
        disconnects_len,
        disconnect_reasons,
        disconnect_counts,
        rejections_len,
        rejection_keys,
        rejection_counts,
    }
}

fn stats_box(s: &RegistryStats) -> Box<StatsBox> {
    let mut st = Strings::default();
    let stats = registry_stats(s, &mut st);
    Box::new(StatsBox { stats, _st: st })
}

/// Stores in `*out` the registry's statistics; free them with
/// `sb_registry_stats_free` (once).
///
/// # Safety
///
/// `out` NULL (rejected) or a writable `sb_registry_stats *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_registry_get_stats(
    manager: *const sb_manager,
    out: *mut *mut sb_registry_stats,
) -> sb_status {
    guard("sb_registry_get_stats", || {
        let m = MANAGERS.get(addr(manager))?;
        check_out(out, "out")?;
        let s = m.registry().stats()?;
        let p = Box::into_raw(stats_box(&s)).cast::<sb_registry_stats>();
        LIVE.remember(p as usize, Snapshot::Stats);
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(out, p) };
        Ok(())
    })
}

/// Frees statistics made by `sb_registry_get_stats`. NULL is a no-op; a pointer that
/// is not one returns `SB_INVALID_HANDLE`.
#[unsafe(no_mangle)]
pub extern "C" fn sb_registry_stats_free(stats: *mut sb_registry_stats) -> sb_status {
    guard("sb_registry_stats_free", || {
        if stats.is_null() {
            return Ok(());
        }
        if !LIVE.forget(stats as usize, Snapshot::Stats) {
            return Err(not_live("sb_registry_stats", "sb_registry_get_stats"));
        }
        // SAFETY: made by Box::into_raw in sb_registry_get_stats, not freed since.
        drop(unsafe { Box::from_raw(stats.cast::<StatsBox>()) });
        Ok(())
    })
}

//! The registry's C translations the cluster's calls take the same way: `sb_target`,
//! a message, `sb_list_filter` in; `sb_conn_info` and `sb_registry_stats` out.
//!
//! Copies of private functions of `crate::registry` (`broadcast::target`,
//! `broadcast::message`, the filter part of `sb_registry_list`,
//! `snapshots::conn_info`, `snapshots::stats_box`), which this module's owner could not
//! change when the cluster's C API was written. They are to be made `pub(crate)`
//! there and this file deleted: one translation per C type.

use std::ffi::c_char;
use std::time::Duration;

use switchboard_core::registry::{ConnInfo, ConnState, ListFilter, Message, RegistryStats, Target};
use switchboard_core::{Error, Result};

use crate::args::{bytes, num_array, opt_str, read_versioned, str_array};
use crate::error::null_arg;
use crate::registry::{sb_conn_info, sb_list_filter, sb_registry_stats, sb_target};
use crate::resilience::ns;
use crate::snapshot_table::Strings;

/// A message from C: `len` bytes at `data`, text when `is_text` (then UTF-8).
///
/// # Safety
///
/// `data` must point to `len` readable bytes (or be NULL with 0).
pub(super) unsafe fn message(data: *const u8, len: usize, is_text: bool) -> Result<Message> {
    // SAFETY: forwarded caller's contract.
    let b = unsafe { bytes(data, len, "data") }?;
    if is_text && let Err(e) = std::str::from_utf8(b) {
        return Err(Error::invalid_argument(format!(
            "data is marked as text but is not UTF-8: byte {} is not",
            e.valid_up_to()
        )));
    }
    Ok(Message::from_parts(b, is_text))
}

/// # Safety
///
/// `t` non-NULL and a valid `sb_target` whose pointers follow its documentation.
pub(super) unsafe fn target(t: *const sb_target) -> Result<Target> {
    if t.is_null() {
        return Err(null_arg("target"));
    }
    // SAFETY: non-NULL, struct_size readable bytes by the caller's contract.
    let t = unsafe { read_versioned(t, "sb_target") }?;
    let owned = |v: Vec<&str>| v.into_iter().map(str::to_string).collect();
    // SAFETY: each pointer follows the struct's documentation by the caller's contract.
    unsafe {
        Ok(Target {
            all: t.all,
            topics: owned(str_array(t.topics, t.topics_len, "topics")?),
            users: owned(str_array(t.users, t.users_len, "users")?),
            ids: num_array(t.ids, t.ids_len, "ids")?,
            except: num_array(t.except, t.except_len, "except")?,
        })
    }
}

/// # Safety
///
/// `filter` NULL (every connection) or a valid `sb_list_filter`.
pub(super) unsafe fn list_filter(filter: *const sb_list_filter) -> Result<ListFilter> {
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
        lf.meta = match (
            opt_str(f.meta_key, "meta_key")?,
            opt_str(f.meta_value, "meta_value")?,
        ) {
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

fn static_str(b: &'static [u8]) -> *const c_char {
    b.as_ptr().cast()
}

/// One connection's snapshot, its strings kept in `st`.
pub(super) fn conn_info(c: &ConnInfo, st: &mut Strings) -> sb_conn_info {
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
        state: match c.state {
            ConnState::Active => static_str(b"active\0"),
            ConnState::Idle => static_str(b"idle\0"),
        },
        sink: if c.sink == "outbox" {
            static_str(b"outbox\0")
        } else {
            static_str(b"callback\0")
        },
        age_ns: ns(c.age),
        idle_ns: ns(c.idle),
        queued_messages: c.queued_messages,
        queued_bytes: c.queued_bytes,
        sent: c.sent,
        dropped: c.dropped,
        failed: c.failed,
    }
}

/// One registry's statistics, their strings and arrays kept in `st`.
pub(super) fn registry_stats(s: &RegistryStats, st: &mut Strings) -> sb_registry_stats {
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

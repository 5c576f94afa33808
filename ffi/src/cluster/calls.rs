//! The cluster-wide calls: each asks every live member on Redis and waits on the
//! calling thread for their answers, up to `cluster.request_timeout`; the members
//! that did not answer in time are named in the result's `answered.missing` (partial
//! results never fail the call). From one of the manager's own threads (a callback)
//! they fail with `SB_FAILED_PRECONDITION`. Each result is a snapshot with its `_free`.

use std::ffi::c_char;

use switchboard_core::cluster::{
    ClusterBroadcast, ClusterCount, ClusterList, ClusterResource, ClusterStats,
};

use super::{Snapshot, answered, hand_out, sb_cluster_answered, take_back, with_cluster};
use crate::args::{check_out, opt_str, str_arg};
use crate::error::{guard, sb_status};
use crate::manager::sb_manager;
use crate::registry::{
    conn_info, list_filter, message, registry_stats, sb_broadcast_report, sb_conn_info,
    sb_list_filter, sb_registry_stats, sb_target, target,
};
use crate::snapshot_table::Strings;

/// What an acknowledged cluster broadcast reached (`sb_cluster_broadcast`), freed
/// (once) by `sb_cluster_broadcast_report_free`. Fields may be added at the end
/// (`struct_size`).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug)]
pub struct sb_cluster_broadcast_report {
    /// The size of this struct as allocated by the library.
    pub struct_size: usize,
    /// The fan-out on this instance, as `sb_registry_broadcast` reports it.
    pub local: sb_broadcast_report,
    /// How many other members acknowledged it.
    pub remote_len: usize,
    /// Their node ids (NULL when none).
    pub remote_nodes: *const *const c_char,
    /// The recipients on `remote_nodes[i]`.
    pub remote_recipients: *const u64,
    /// Copies published that no member acknowledged within `cluster.request_timeout`
    /// (a member that left, or one too slow to answer).
    pub unacknowledged: u64,
    /// Recipients on every instance that acknowledged, this one included.
    pub recipients: u64,
}

/// One page of a cluster-wide list (`sb_cluster_list`), freed (once) by
/// `sb_cluster_conn_list_free`. Fields may be added at the end (`struct_size`).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug)]
pub struct sb_cluster_conn_list {
    /// The size of this struct as allocated by the library.
    pub struct_size: usize,
    /// How many records.
    pub len: usize,
    /// The records of every member that answered, in id order (ids are unique across
    /// the cluster; NULL when none). Never extended per element.
    pub connections: *const sb_conn_info,
    /// `nodes[i]`: the node id of the member `connections[i]` is registered on.
    pub nodes: *const *const c_char,
    /// Whether there is a next page.
    pub has_next: bool,
    /// Pass as `cursor` for the next page (0 when this was the last one).
    pub next_cursor: u64,
    /// Who answered.
    pub answered: sb_cluster_answered,
}

/// A cluster-wide count (`sb_cluster_disconnect`), freed (once) by
/// `sb_cluster_count_free`. Fields may be added at the end (`struct_size`).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug)]
pub struct sb_cluster_count {
    /// The size of this struct as allocated by the library.
    pub struct_size: usize,
    /// The sum over the members that answered.
    pub total: u64,
    /// How many members answered with a count.
    pub by_node_len: usize,
    /// Their node ids (NULL when none).
    pub nodes: *const *const c_char,
    /// The count on `nodes[i]`.
    pub counts: *const u64,
    /// Who answered.
    pub answered: sb_cluster_answered,
}

/// Cluster-wide registry statistics (`sb_cluster_get_stats`), freed (once) by
/// `sb_cluster_stats_free`. Fields may be added at the end (`struct_size`).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug)]
pub struct sb_cluster_stats {
    /// The size of this struct as allocated by the library.
    pub struct_size: usize,
    /// The members' statistics added up (`users` and `topics` count per member, so a
    /// user connected to two members counts twice; `topic_counts` is summed by topic).
    pub total: sb_registry_stats,
    /// How many members answered.
    pub by_node_len: usize,
    /// Their node ids (NULL when none).
    pub nodes: *const *const c_char,
    /// The statistics of `nodes[i]` (NULL when none). Never extended per element.
    pub by_node: *const sb_registry_stats,
    /// Who answered.
    pub answered: sb_cluster_answered,
}

/// A named resource's status on each member (`sb_cluster_resource_status`), freed
/// (once) by `sb_cluster_resource_free`. Fields may be added at the end
/// (`struct_size`).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug)]
pub struct sb_cluster_resource {
    /// The size of this struct as allocated by the library.
    pub struct_size: usize,
    /// The resource's id.
    pub id: *const c_char,
    /// How many members answered.
    pub by_node_len: usize,
    /// Their node ids (NULL when none).
    pub nodes: *const *const c_char,
    /// The status on `nodes[i]`: a state name as `sb_resource_state_str` gives
    /// (`"connected"`, `"connecting"`, ...), or `"absent"` where it is not created.
    pub statuses: *const *const c_char,
    /// Who answered.
    pub answered: sb_cluster_answered,
}

#[repr(C)]
struct BroadcastBox {
    report: sb_cluster_broadcast_report,
    _st: Strings,
}

#[repr(C)]
struct ListBox {
    list: sb_cluster_conn_list,
    _infos: Vec<sb_conn_info>,
    _st: Strings,
}

#[repr(C)]
struct CountBox {
    count: sb_cluster_count,
    _st: Strings,
}

#[repr(C)]
struct StatsBox {
    stats: sb_cluster_stats,
    _by_node: Vec<sb_registry_stats>,
    _st: Strings,
}

#[repr(C)]
struct ResourceBox {
    resource: sb_cluster_resource,
    _st: Strings,
}

// SAFETY: the raw pointers in a snapshot point into the box's own immutable strings
// and vectors; nothing is shared with other objects.
unsafe impl Send for BroadcastBox {}
// SAFETY: as above.
unsafe impl Send for ListBox {}
// SAFETY: as above.
unsafe impl Send for CountBox {}
// SAFETY: as above.
unsafe impl Send for StatsBox {}
// SAFETY: as above.
unsafe impl Send for ResourceBox {}

/// Node ids and their numbers, as two parallel arrays kept in `st`.
fn by_node(v: &[(String, u64)], st: &mut Strings) -> (*const *const c_char, *const u64, usize) {
    let (nodes, n) = st.array(v.iter().map(|(node, _)| node.as_str()));
    let nums = st.nums(v.iter().map(|(_, k)| *k).collect());
    (nodes, nums, n)
}

fn broadcast_box(r: &ClusterBroadcast) -> BroadcastBox {
    let mut st = Strings::default();
    let (remote_nodes, remote_recipients, remote_len) = by_node(&r.remote, &mut st);
    BroadcastBox {
        report: sb_cluster_broadcast_report {
            struct_size: std::mem::size_of::<sb_cluster_broadcast_report>(),
            local: crate::registry::broadcast_report(&r.local),
            remote_len,
            remote_nodes,
            remote_recipients,
            unacknowledged: r.unacknowledged,
            recipients: r.recipients(),
        },
        _st: st,
    }
}

/// Broadcasts one message (`len` bytes at `data`, text when `is_text`, which must
/// then be UTF-8) to what `target` matches on every member, this one included, and
/// waits for the other members' acknowledgements up to `cluster.request_timeout`;
/// `*out` says what each reached. Free it with `sb_cluster_broadcast_report_free`
/// (once). A plain `sb_registry_broadcast` reaches the other members too, without
/// waiting. Ids in `target->ids` and `target->except` may be any member's.
/// `SB_INVALID_ARGUMENT` for a target that names nobody; `SB_NOT_FOUND` when the
/// manager is not in a cluster.
///
/// # Safety
///
/// `target` a valid `sb_target`; `data` `len` readable bytes (or NULL with 0); `out`
/// NULL (rejected) or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_cluster_broadcast(
    manager: *mut sb_manager,
    target: *const sb_target,
    data: *const u8,
    len: usize,
    is_text: bool,
    out: *mut *mut sb_cluster_broadcast_report,
) -> sb_status {
    guard("sb_cluster_broadcast", || {
        check_out(out, "out")?;
        // SAFETY: forwarded caller's contract.
        let (t, msg) = unsafe { (self::target(target)?, message(data, len, is_text)?) };
        let r = with_cluster(manager, |c| c.broadcast(&t, msg))?;
        // SAFETY: checked non-NULL; the box is repr(C) with the report first.
        unsafe { hand_out(broadcast_box(&r), Snapshot::Broadcast, out) };
        Ok(())
    })
}

/// Frees a report made by `sb_cluster_broadcast`. NULL is a no-op; a pointer that is
/// not one returns `SB_INVALID_HANDLE`.
#[unsafe(no_mangle)]
pub extern "C" fn sb_cluster_broadcast_report_free(
    report: *mut sb_cluster_broadcast_report,
) -> sb_status {
    guard("sb_cluster_broadcast_report_free", || {
        // A live Broadcast snapshot is a BroadcastBox.
        take_back::<BroadcastBox, _>(
            report,
            Snapshot::Broadcast,
            "sb_cluster_broadcast_report",
            "sb_cluster_broadcast",
        )
    })
}

fn list_box(l: &ClusterList) -> ListBox {
    let mut st = Strings::default();
    let infos: Vec<sb_conn_info> = l
        .connections
        .iter()
        .map(|(_, c)| conn_info(c, &mut st))
        .collect();
    let (nodes, _) = st.array(l.connections.iter().map(|(n, _)| n.as_str()));
    let answered = answered(&l.answered, &mut st);
    ListBox {
        list: sb_cluster_conn_list {
            struct_size: std::mem::size_of::<sb_cluster_conn_list>(),
            len: infos.len(),
            connections: if infos.is_empty() {
                std::ptr::null()
            } else {
                infos.as_ptr()
            },
            nodes,
            has_next: l.next_cursor.is_some(),
            next_cursor: l.next_cursor.unwrap_or(0),
            answered,
        },
        _infos: infos,
        _st: st,
    }
}

/// Stores in `*out` one page of the connections `filter` matches (NULL: all) on every
/// member that answered, in id order, as `sb_registry_list` does for this instance:
/// pass `next_cursor` as the next call's `filter->cursor` while `has_next`. Free it
/// with `sb_cluster_conn_list_free` (once). `SB_INVALID_ARGUMENT` as for
/// `sb_registry_list`; `SB_NOT_FOUND` when the manager is not in a cluster.
///
/// # Safety
///
/// `filter` NULL or a valid `sb_list_filter`; `out` NULL (rejected) or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_cluster_list(
    manager: *mut sb_manager,
    filter: *const sb_list_filter,
    out: *mut *mut sb_cluster_conn_list,
) -> sb_status {
    guard("sb_cluster_list", || {
        check_out(out, "out")?;
        // SAFETY: forwarded caller's contract.
        let f = unsafe { list_filter(filter) }?;
        let l = with_cluster(manager, |c| c.list(&f))?;
        // SAFETY: checked non-NULL; the box is repr(C) with the list first.
        unsafe { hand_out(list_box(&l), Snapshot::List, out) };
        Ok(())
    })
}

/// Frees a page made by `sb_cluster_list`. NULL is a no-op; a pointer that is not one
/// returns `SB_INVALID_HANDLE`.
#[unsafe(no_mangle)]
pub extern "C" fn sb_cluster_conn_list_free(list: *mut sb_cluster_conn_list) -> sb_status {
    guard("sb_cluster_conn_list_free", || {
        // A live List snapshot is a ListBox.
        take_back::<ListBox, _>(
            list,
            Snapshot::List,
            "sb_cluster_conn_list",
            "sb_cluster_list",
        )
    })
}

fn count_box(c: &ClusterCount) -> CountBox {
    let mut st = Strings::default();
    let (nodes, counts, by_node_len) = by_node(&c.by_node, &mut st);
    let answered = answered(&c.answered, &mut st);
    CountBox {
        count: sb_cluster_count {
            struct_size: std::mem::size_of::<sb_cluster_count>(),
            total: c.total,
            by_node_len,
            nodes,
            counts,
            answered,
        },
        _st: st,
    }
}

/// Removes what `target` matches (minus its except set) on every member, for `reason`
/// (NULL or "": `disconnected`), as `sb_registry_disconnect` does on each, and stores
/// in `*out` how many per member. Free it with `sb_cluster_count_free` (once).
/// `SB_NOT_FOUND` when the manager is not in a cluster.
///
/// # Safety
///
/// `target` a valid `sb_target`; `reason` NULL or NUL-terminated; `out` NULL
/// (rejected) or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_cluster_disconnect(
    manager: *mut sb_manager,
    target: *const sb_target,
    reason: *const c_char,
    out: *mut *mut sb_cluster_count,
) -> sb_status {
    guard("sb_cluster_disconnect", || {
        check_out(out, "out")?;
        // SAFETY: forwarded caller's contract.
        let (t, reason) = unsafe { (self::target(target)?, opt_str(reason, "reason")?) };
        let n = with_cluster(manager, |c| c.disconnect(&t, reason.unwrap_or("")))?;
        // SAFETY: checked non-NULL; the box is repr(C) with the count first.
        unsafe { hand_out(count_box(&n), Snapshot::Count, out) };
        Ok(())
    })
}

/// Frees a count made by `sb_cluster_disconnect`. NULL is a no-op; a pointer that is
/// not one returns `SB_INVALID_HANDLE`.
#[unsafe(no_mangle)]
pub extern "C" fn sb_cluster_count_free(count: *mut sb_cluster_count) -> sb_status {
    guard("sb_cluster_count_free", || {
        // A live Count snapshot is a CountBox.
        take_back::<CountBox, _>(
            count,
            Snapshot::Count,
            "sb_cluster_count",
            "sb_cluster_disconnect",
        )
    })
}

fn stats_box(s: &ClusterStats) -> StatsBox {
    let mut st = Strings::default();
    let total = registry_stats(&s.total, &mut st);
    let v: Vec<sb_registry_stats> = s
        .by_node
        .iter()
        .map(|(_, r)| registry_stats(r, &mut st))
        .collect();
    let (nodes, by_node_len) = st.array(s.by_node.iter().map(|(n, _)| n.as_str()));
    let answered = answered(&s.answered, &mut st);
    StatsBox {
        stats: sb_cluster_stats {
            struct_size: std::mem::size_of::<sb_cluster_stats>(),
            total,
            by_node_len,
            nodes,
            by_node: if v.is_empty() {
                std::ptr::null()
            } else {
                v.as_ptr()
            },
            answered,
        },
        _by_node: v,
        _st: st,
    }
}

/// Stores in `*out` the registry statistics of every member that answered, and their
/// sum. Free them with `sb_cluster_stats_free` (once). `SB_NOT_FOUND` when the
/// manager is not in a cluster.
///
/// # Safety
///
/// `out` NULL (rejected) or a writable `sb_cluster_stats *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_cluster_get_stats(
    manager: *mut sb_manager,
    out: *mut *mut sb_cluster_stats,
) -> sb_status {
    guard("sb_cluster_get_stats", || {
        check_out(out, "out")?;
        let s = with_cluster(manager, |c| c.stats())?;
        // SAFETY: checked non-NULL; the box is repr(C) with the stats first.
        unsafe { hand_out(stats_box(&s), Snapshot::Stats, out) };
        Ok(())
    })
}

/// Frees statistics made by `sb_cluster_get_stats`. NULL is a no-op; a pointer that
/// is not one returns `SB_INVALID_HANDLE`.
#[unsafe(no_mangle)]
pub extern "C" fn sb_cluster_stats_free(stats: *mut sb_cluster_stats) -> sb_status {
    guard("sb_cluster_stats_free", || {
        // A live Stats snapshot is a StatsBox.
        take_back::<StatsBox, _>(
            stats,
            Snapshot::Stats,
            "sb_cluster_stats",
            "sb_cluster_get_stats",
        )
    })
}

fn resource_box(r: &ClusterResource) -> ResourceBox {
    let mut st = Strings::default();
    let id = st.add(&r.id);
    let (nodes, by_node_len) = st.array(r.by_node.iter().map(|(n, _)| n.as_str()));
    let (statuses, _) = st.array(r.by_node.iter().map(|(_, s)| s.as_str()));
    let answered = answered(&r.answered, &mut st);
    ResourceBox {
        resource: sb_cluster_resource {
            struct_size: std::mem::size_of::<sb_cluster_resource>(),
            id,
            by_node_len,
            nodes,
            statuses,
            answered,
        },
        _st: st,
    }
}

/// Stores in `*out` named resource `id`'s status on every member that answered
/// (`"absent"` where it is not created). Free it with `sb_cluster_resource_free`
/// (once). `SB_NOT_FOUND` when the manager is not in a cluster.
///
/// # Safety
///
/// `id` NUL-terminated; `out` NULL (rejected) or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_cluster_resource_status(
    manager: *mut sb_manager,
    id: *const c_char,
    out: *mut *mut sb_cluster_resource,
) -> sb_status {
    guard("sb_cluster_resource_status", || {
        check_out(out, "out")?;
        // SAFETY: forwarded caller's contract.
        let id = unsafe { str_arg(id, "id") }?;
        let r = with_cluster(manager, |c| c.resource_status(id))?;
        // SAFETY: checked non-NULL; the box is repr(C) with the resource first.
        unsafe { hand_out(resource_box(&r), Snapshot::Resource, out) };
        Ok(())
    })
}

/// Frees a status made by `sb_cluster_resource_status`. NULL is a no-op; a pointer
/// that is not one returns `SB_INVALID_HANDLE`.
#[unsafe(no_mangle)]
pub extern "C" fn sb_cluster_resource_free(resource: *mut sb_cluster_resource) -> sb_status {
    guard("sb_cluster_resource_free", || {
        // A live Resource snapshot is a ResourceBox.
        take_back::<ResourceBox, _>(
            resource,
            Snapshot::Resource,
            "sb_cluster_resource",
            "sb_cluster_resource_status",
        )
    })
}

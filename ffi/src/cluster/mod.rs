//! `sb_cluster_*`: the manager's membership in a cluster of instances through Redis
//! (issue 12; `cluster.redis_url`, docs/cluster.md). Like the registry, the cluster
//! lives in a manager and every call takes the `sb_manager`: `SB_NOT_FOUND` when the
//! manager is not in a cluster (`cluster.redis_url` empty). Every check, message and
//! error code comes from core's `Cluster`; these modules only translate:
//!
//! - this module: the node's name, id, number and whether it is joined, the member
//!   list (`sb_cluster_members`), and `sb_cluster_answered`;
//! - `calls`: the cluster-wide calls (broadcast with acknowledgements, list,
//!   disconnect, stats, resource status), which wait for the other members up to
//!   `cluster.request_timeout` on the calling thread, and their snapshots. Their
//!   inputs and the registry records in their snapshots are translated by the
//!   registry's own functions (`crate::registry::{target, message, list_filter,
//!   conn_info, registry_stats}`).

use std::ffi::c_char;

use switchboard_core::cluster::{Answered, Cluster, Member};
use switchboard_core::{Code, Error, Manager, Result};

use crate::args::{check_out, copy_str_out, write_out};
use crate::error::{guard, sb_status};
use crate::handles::addr;
use crate::manager::{MANAGERS, sb_manager};
use crate::resilience::ns;
use crate::snapshot_table::{SnapshotTable, Strings, not_live};

// In the order of their functions in the header (blank lines keep rustfmt from
// sorting them).
mod calls;

pub use calls::{
    sb_cluster_broadcast, sb_cluster_broadcast_report, sb_cluster_broadcast_report_free,
    sb_cluster_conn_list, sb_cluster_conn_list_free, sb_cluster_count, sb_cluster_count_free,
    sb_cluster_disconnect, sb_cluster_get_stats, sb_cluster_list, sb_cluster_resource,
    sb_cluster_resource_free, sb_cluster_resource_status, sb_cluster_stats, sb_cluster_stats_free,
};

/// Which live members answered a cluster-wide call, embedded in each of its results.
/// A member that did not answer within `cluster.request_timeout` is named in `missing`
/// and its part is absent: partial results never fail the call.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct sb_cluster_answered {
    /// How many members answered.
    pub nodes_len: usize,
    /// Their node ids, this instance first (NULL when none).
    pub nodes: *const *const c_char,
    /// How many live members did not answer.
    pub missing_len: usize,
    /// Their node ids (NULL when none).
    pub missing: *const *const c_char,
}

/// One member of the cluster, from its last heartbeat (an element of
/// `sb_cluster_member_list.members`).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct sb_cluster_member {
    /// The size of this struct as allocated by the library.
    pub struct_size: usize,
    /// Its `cluster.node_id`.
    pub node_id: *const c_char,
    /// Its node number (bits 32 and up of its connection ids).
    pub number: u64,
    /// Its embedded server's address, `host:port` ("" when it has none).
    pub address: *const c_char,
    /// Its registered connections at its last heartbeat.
    pub connections: u64,
    /// Its open pools at its last heartbeat.
    pub pools: u64,
    /// Time since its last heartbeat, in nanoseconds (by Redis's clock).
    pub last_seen_ns: u64,
    /// Whether it is this instance.
    pub local: bool,
}

/// The live members (`sb_cluster_members`), freed (once) by
/// `sb_cluster_member_list_free`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug)]
pub struct sb_cluster_member_list {
    /// How many members.
    pub len: usize,
    /// The members, by node id (NULL when none). Never extended per element.
    pub members: *const sb_cluster_member,
}

/// What a snapshot pointer handed to C is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Snapshot {
    Members,
    Broadcast,
    List,
    Count,
    Stats,
    Resource,
}

/// Snapshots handed out and not yet freed.
static LIVE: SnapshotTable<Snapshot> = SnapshotTable::new();

/// The cluster of `m`, or NotFound naming the key that turns it on.
fn cluster_of(m: &Manager) -> Result<Cluster> {
    m.cluster().cloned().ok_or_else(|| {
        Error::new(
            Code::NotFound,
            "the manager is not in a cluster (cluster.redis_url is not set)",
        )
    })
}

/// Runs `f` with the cluster of `manager`.
fn with_cluster<T>(manager: *const sb_manager, f: impl FnOnce(&Cluster) -> Result<T>) -> Result<T> {
    let m = MANAGERS.get(addr(manager))?;
    f(&cluster_of(&m)?)
}

/// `a` for C, its strings kept in `st`.
fn answered(a: &Answered, st: &mut Strings) -> sb_cluster_answered {
    let (nodes, nodes_len) = st.array(a.nodes.iter().map(String::as_str));
    let (missing, missing_len) = st.array(a.missing.iter().map(String::as_str));
    sb_cluster_answered {
        nodes_len,
        nodes,
        missing_len,
        missing,
    }
}

/// Hands `b` (whose first field is the public struct `T`) to C as a live snapshot.
///
/// # Safety
///
/// `out` checked non-NULL and writable; `B` repr(C) with a `T` first.
unsafe fn hand_out<B, T>(b: B, kind: Snapshot, out: *mut *mut T) {
    let p = Box::into_raw(Box::new(b)).cast::<T>();
    LIVE.remember(p as usize, kind);
    // SAFETY: checked non-NULL by the caller; writable by the C caller's contract.
    unsafe { write_out(out, p) };
}

/// Frees a snapshot `p` of `kind` (NULL: nothing), made by `maker` as a box `B`; any
/// other pointer is refused. Each kind is handed out as one box type: `B` must be the
/// one `hand_out` was given for `kind`.
fn take_back<B, T>(p: *mut T, kind: Snapshot, ty: &str, maker: &str) -> Result<()> {
    if p.is_null() {
        return Ok(());
    }
    if !LIVE.forget(p as usize, kind) {
        return Err(not_live(ty, maker));
    }
    // SAFETY: made by Box::into_raw of a `B` in `hand_out` and not freed since (it was
    // in the table under `kind`, which only `B` uses); `T` is its first field.
    drop(unsafe { Box::from_raw(p.cast::<B>()) });
    Ok(())
}

/// Copies the cluster's name (`cluster.name`) into `buf` with a NUL. `*written` (if
/// not NULL) receives the size it needs with its NUL; when that exceeds `len`,
/// returns `SB_RESOURCE_EXHAUSTED` and copies nothing (`buf[0]` is set to NUL when
/// `len > 0`). `buf` may be NULL when `len` is 0, to ask for the size. `SB_NOT_FOUND`
/// when the manager is not in a cluster.
///
/// # Safety
///
/// `buf` `len` writable bytes (or `len` 0); `written` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_cluster_name(
    manager: *const sb_manager,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> sb_status {
    guard("sb_cluster_name", || {
        with_cluster(manager, |c| {
            // SAFETY: forwarded caller's contract.
            unsafe { copy_str_out(c.name(), buf, len, written, "the cluster name") }
        })
    })
}

/// Copies this instance's node id (`cluster.node_id`) into `buf`, as
/// `sb_cluster_name` does.
///
/// # Safety
///
/// As `sb_cluster_name`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_cluster_node_id(
    manager: *const sb_manager,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> sb_status {
    guard("sb_cluster_node_id", || {
        with_cluster(manager, |c| {
            // SAFETY: forwarded caller's contract.
            unsafe { copy_str_out(c.node_id(), buf, len, written, "the node id") }
        })
    })
}

/// Stores in `*out` this instance's node number, taken when it joined: bits 32 and up
/// of every connection id it registers (`id >> 32`), so ids are unique across the
/// cluster and stay below 2^53. `SB_NOT_FOUND` when the manager is not in a cluster.
///
/// # Safety
///
/// `out` NULL (rejected) or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_cluster_node_number(
    manager: *const sb_manager,
    out: *mut u64,
) -> sb_status {
    guard("sb_cluster_node_number", || {
        check_out(out, "out")?;
        let n = with_cluster(manager, |c| Ok(c.node_number()))?;
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(out, n) };
        Ok(())
    })
}

/// Stores in `*out` whether this instance takes part in its cluster now: false while
/// Redis cannot be reached (it then serves locally: breakers are local and broadcasts
/// reach this instance only; `SB_EVENT_CLUSTER_LOST`) until it rejoins
/// (`SB_EVENT_CLUSTER_JOINED`). `SB_NOT_FOUND` when the manager is not in a cluster.
///
/// # Safety
///
/// `out` NULL (rejected) or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_cluster_is_joined(
    manager: *const sb_manager,
    out: *mut bool,
) -> sb_status {
    guard("sb_cluster_is_joined", || {
        check_out(out, "out")?;
        let j = with_cluster(manager, |c| Ok(c.is_joined()))?;
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(out, j) };
        Ok(())
    })
}

#[repr(C)]
struct MembersBox {
    list: sb_cluster_member_list,
    _members: Vec<sb_cluster_member>,
    _st: Strings,
}

// SAFETY: the raw pointers in a snapshot point into the box's own immutable strings
// and vectors; nothing is shared with other objects.
unsafe impl Send for MembersBox {}

fn member(m: &Member, st: &mut Strings) -> sb_cluster_member {
    sb_cluster_member {
        struct_size: std::mem::size_of::<sb_cluster_member>(),
        node_id: st.add(&m.node_id),
        number: m.number,
        address: st.add(&m.address),
        connections: m.connections,
        pools: m.pools,
        last_seen_ns: ns(m.last_seen),
        local: m.local,
    }
}

/// Stores in `*out` the live members as of the last heartbeat (every
/// `cluster.heartbeat_interval`), this instance included when joined, by node id; a
/// member silent for three heartbeats is gone. Does not wait. Free it with
/// `sb_cluster_member_list_free` (once). `SB_NOT_FOUND` when the manager is not in a
/// cluster.
///
/// # Safety
///
/// `out` NULL (rejected) or a writable `sb_cluster_member_list *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_cluster_members(
    manager: *const sb_manager,
    out: *mut *mut sb_cluster_member_list,
) -> sb_status {
    guard("sb_cluster_members", || {
        check_out(out, "out")?;
        let members = with_cluster(manager, |c| Ok(c.members()))?;
        let mut st = Strings::default();
        let v: Vec<sb_cluster_member> = members.iter().map(|m| member(m, &mut st)).collect();
        let b = MembersBox {
            list: sb_cluster_member_list {
                len: v.len(),
                members: if v.is_empty() {
                    std::ptr::null()
                } else {
                    v.as_ptr()
                },
            },
            _members: v,
            _st: st,
        };
        // SAFETY: checked non-NULL; MembersBox is repr(C) with the list first.
        unsafe { hand_out(b, Snapshot::Members, out) };
        Ok(())
    })
}

/// Frees a member list made by `sb_cluster_members`. NULL is a no-op; a pointer that
/// is not one (freed already) returns `SB_INVALID_HANDLE` and frees nothing.
#[unsafe(no_mangle)]
pub extern "C" fn sb_cluster_member_list_free(list: *mut sb_cluster_member_list) -> sb_status {
    guard("sb_cluster_member_list_free", || {
        // A live Members snapshot is a MembersBox.
        take_back::<MembersBox, _>(
            list,
            Snapshot::Members,
            "sb_cluster_member_list",
            "sb_cluster_members",
        )
    })
}

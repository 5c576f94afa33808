//! A resource's state, and its snapshots: `sb_resource_info` (`sb_resource_get`) and
//! `sb_resource_info_list` (`sb_resource_list`), each with its `_free`.

use std::ffi::c_char;

use switchboard_core::{ResourceInfo, ResourceStatus};

use crate::args::{check_out, str_arg, write_out};
use crate::error::{guard, sb_status};
use crate::handles::addr;
use crate::manager::{MANAGERS, sb_manager};
use crate::resilience::ns;
use crate::snapshot_table::{SnapshotTable, Strings, not_live};

/// Where a resource's one connection is. The numbers are stable.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum sb_resource_state {
    /// The first dial is in progress (retried with backoff while it fails).
    SB_RESOURCE_CONNECTING = 1,
    /// Connected: consumers can use it.
    SB_RESOURCE_CONNECTED = 2,
    /// The connection was lost and is being redialled.
    SB_RESOURCE_RECOVERING = 3,
    /// Stopped: a configuration error (no more retries), deleted, or the manager
    /// closed.
    SB_RESOURCE_DISCONNECTED = 4,
}

impl From<ResourceStatus> for sb_resource_state {
    fn from(s: ResourceStatus) -> Self {
        match s {
            ResourceStatus::Connecting => sb_resource_state::SB_RESOURCE_CONNECTING,
            ResourceStatus::Connected => sb_resource_state::SB_RESOURCE_CONNECTED,
            ResourceStatus::Recovering => sb_resource_state::SB_RESOURCE_RECOVERING,
            ResourceStatus::Disconnected => sb_resource_state::SB_RESOURCE_DISCONNECTED,
        }
    }
}

/// The name of a resource state (`"connecting"`, `"connected"`, `"recovering"`,
/// `"disconnected"`: the `old_state` / `new_state` of `SB_EVENT_RESOURCE_STATE`), or
/// `"unknown"`. Static: never free it.
#[unsafe(no_mangle)]
pub extern "C" fn sb_resource_state_str(state: i32) -> *const c_char {
    let s: &'static [u8] = match state {
        1 => b"connecting\0",
        2 => b"connected\0",
        3 => b"recovering\0",
        4 => b"disconnected\0",
        _ => b"unknown\0",
    };
    s.as_ptr().cast()
}

/// A snapshot of one resource (`sb_resource_get`, or an element of
/// `sb_resource_info_list.resources`). Its strings and arrays live as long as the
/// snapshot.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct sb_resource_info {
    /// The size of this struct as allocated by the library.
    pub struct_size: usize,
    /// Its id (`anonymous-<n>` for an anonymous one).
    pub id: *const c_char,
    /// Its type: `tcp`, `unix` or a registered one.
    pub kind: *const c_char,
    /// The endpoint it connects to, as written (`tcp://host:port`).
    pub endpoint: *const c_char,
    /// Whether it was made by `sb_resource_attach_anonymous`.
    pub anonymous: bool,
    /// Where its connection is.
    pub state: sb_resource_state,
    /// The last connect or check error, or NULL.
    pub last_error: *const c_char,
    /// Whether it stopped retrying (a configuration error).
    pub stopped: bool,
    /// How many consumers are attached.
    pub consumers_len: usize,
    /// Their names, in attach order (NULL when none).
    pub consumers: *const *const c_char,
    /// Connections lost and redialled.
    pub reconnects: u64,
    /// Bytes read through `sb_resource_recv` (not through the fd).
    pub bytes_in: u64,
    /// Bytes written through `sb_resource_send_all`.
    pub bytes_out: u64,
    /// How long the current connection has been up, in nanoseconds (0 unless
    /// connected).
    pub connected_for_ns: u64,
}

/// Every resource of a manager (`sb_resource_list`), freed (once) by
/// `sb_resource_info_list_free`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug)]
pub struct sb_resource_info_list {
    /// How many resources.
    pub len: usize,
    /// The resources, named and anonymous, sorted by id (NULL when none).
    pub resources: *const sb_resource_info,
}

/// What a snapshot pointer handed to C is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Snapshot {
    Info,
    List,
}

/// Snapshots handed out and not yet freed.
static LIVE: SnapshotTable<Snapshot> = SnapshotTable::new();

fn info(r: &ResourceInfo, st: &mut Strings) -> sb_resource_info {
    let (consumers, consumers_len) = st.array(r.consumers.iter().map(String::as_str));
    sb_resource_info {
        struct_size: std::mem::size_of::<sb_resource_info>(),
        id: st.add(&r.id),
        kind: st.add(&r.kind),
        endpoint: st.add(&r.endpoint),
        anonymous: r.anonymous,
        state: r.status.into(),
        last_error: r
            .last_error
            .as_deref()
            .map_or(std::ptr::null(), |e| st.add(e)),
        stopped: r.stopped,
        consumers_len,
        consumers,
        reconnects: r.reconnects,
        bytes_in: r.bytes_in,
        bytes_out: r.bytes_out,
        connected_for_ns: r.connected_for.map_or(0, ns),
    }
}

#[repr(C)]
struct InfoBox {
    info: sb_resource_info,
    _st: Strings,
}

#[repr(C)]
struct ListBox {
    list: sb_resource_info_list,
    _infos: Vec<sb_resource_info>,
    _st: Strings,
}

// SAFETY: the raw pointers in a snapshot point into the box's own immutable strings
// and vectors; nothing is shared with other objects.
unsafe impl Send for InfoBox {}
// SAFETY: as above.
unsafe impl Send for ListBox {}

/// Stores in `*out` a snapshot of resource `id` (named, or an anonymous one's
/// `anonymous-<n>`); free it with `sb_resource_info_free` (once). `SB_NOT_FOUND`
/// for an unknown id, `SB_UNAVAILABLE` once the manager is closed.
///
/// # Safety
///
/// `id` must be a NUL-terminated string; `out` NULL (rejected) or a writable
/// `sb_resource_info *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_resource_get(
    manager: *const sb_manager,
    id: *const c_char,
    out: *mut *mut sb_resource_info,
) -> sb_status {
    guard("sb_resource_get", || {
        let m = MANAGERS.get(addr(manager))?;
        // SAFETY: NUL-terminated by the caller's contract.
        let id = unsafe { str_arg(id, "id") }?;
        check_out(out, "out")?;
        let r = m.resources().get(id)?;
        let mut st = Strings::default();
        let info = info(&r, &mut st);
        let p = Box::into_raw(Box::new(InfoBox { info, _st: st })).cast::<sb_resource_info>();
        LIVE.remember(p as usize, Snapshot::Info);
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(out, p) };
        Ok(())
    })
}

/// Frees a snapshot made by `sb_resource_get`. NULL is a no-op; a pointer that is not
/// one (freed already) returns `SB_INVALID_HANDLE` and frees nothing.
#[unsafe(no_mangle)]
pub extern "C" fn sb_resource_info_free(info: *mut sb_resource_info) -> sb_status {
    guard("sb_resource_info_free", || {
        if info.is_null() {
            return Ok(());
        }
        if !LIVE.forget(info as usize, Snapshot::Info) {
            return Err(not_live("sb_resource_info", "sb_resource_get"));
        }
        // SAFETY: made by Box::into_raw in sb_resource_get and not freed since (it was
        // in the table); `info` is the first field of the repr(C) InfoBox.
        drop(unsafe { Box::from_raw(info.cast::<InfoBox>()) });
        Ok(())
    })
}

/// Stores in `*out` every resource of the manager, named and anonymous, sorted by
/// id; free it with `sb_resource_info_list_free` (once).
///
/// # Safety
///
/// `out` NULL (rejected) or a writable `sb_resource_info_list *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_resource_list(
    manager: *const sb_manager,
    out: *mut *mut sb_resource_info_list,
) -> sb_status {
    guard("sb_resource_list", || {
        let m = MANAGERS.get(addr(manager))?;
        check_out(out, "out")?;
        let all = m.resources().list()?;
        let mut st = Strings::default();
        let infos: Vec<sb_resource_info> = all.iter().map(|r| info(r, &mut st)).collect();
        let b = Box::new(ListBox {
            list: sb_resource_info_list {
                len: infos.len(),
                resources: if infos.is_empty() {
                    std::ptr::null()
                } else {
                    infos.as_ptr()
                },
            },
            _infos: infos,
            _st: st,
        });
        let p = Box::into_raw(b).cast::<sb_resource_info_list>();
        LIVE.remember(p as usize, Snapshot::List);
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(out, p) };
        Ok(())
    })
}

/// Frees a list made by `sb_resource_list`. NULL is a no-op; a pointer that is not
/// one returns `SB_INVALID_HANDLE`.
#[unsafe(no_mangle)]
pub extern "C" fn sb_resource_info_list_free(list: *mut sb_resource_info_list) -> sb_status {
    guard("sb_resource_info_list_free", || {
        if list.is_null() {
            return Ok(());
        }
        if !LIVE.forget(list as usize, Snapshot::List) {
            return Err(not_live("sb_resource_info_list", "sb_resource_list"));
        }
        // SAFETY: made by Box::into_raw in sb_resource_list, not freed since.
        drop(unsafe { Box::from_raw(list.cast::<ListBox>()) });
        Ok(())
    })
}

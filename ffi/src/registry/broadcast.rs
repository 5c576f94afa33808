//! Who a call is for (`sb_target`) and the calls that fan out: broadcast, send,
//! disconnect, with their `sb_broadcast_report`; and the heartbeat/stale cleanup pass.

use std::ffi::c_char;

use switchboard_core::registry::{Message, Target};
use switchboard_core::{Error, Result};

use super::ns;
use crate::args::{bytes, num_array, opt_str, read_versioned, str_array, write_opt, write_prefix};
use crate::error::{guard, null_arg, sb_status};
use crate::handles::addr;
use crate::manager::{MANAGERS, sb_manager};

/// Who a broadcast or a disconnect is for: the union of `topics`, `users` and `ids`,
/// or everyone with `all`, minus `except`. A connection matched twice is served once.
/// Set `struct_size = sizeof(sb_target)`; fields beyond a shorter struct_size count as
/// NULL / 0 / false.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct sb_target {
    /// `sizeof(sb_target)`.
    pub struct_size: usize,
    /// Everyone registered (then topics, users and ids are ignored).
    pub all: bool,
    /// `topics_len` topics: their subscribers.
    pub topics: *const *const c_char,
    /// How many topics.
    pub topics_len: usize,
    /// `users_len` users: their connections.
    pub users: *const *const c_char,
    /// How many users.
    pub users_len: usize,
    /// `ids_len` connection ids.
    pub ids: *const u64,
    /// How many ids.
    pub ids_len: usize,
    /// `except_len` connection ids never served.
    pub except: *const u64,
    /// How many except ids.
    pub except_len: usize,
}

/// What one broadcast (or `sb_registry_send`) did, counted by the time it returned.
/// Filled by value: set `struct_size = sizeof(sb_broadcast_report)` first; the library
/// fills the fields that fit and sets `struct_size` to the bytes filled.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct sb_broadcast_report {
    /// In: `sizeof(sb_broadcast_report)`. Out: the bytes filled.
    pub struct_size: usize,
    /// Connections the target matched (after the except set).
    pub recipients: u64,
    /// Messages queued for delivery.
    pub queued: u64,
    /// Messages dropped by full queues (`drop_new`, and those `drop_oldest` discarded).
    pub dropped: u64,
    /// Recipients removed as too slow (`disconnect` policy).
    pub disconnected: u64,
    /// How long the fan-out took, in nanoseconds.
    pub elapsed_ns: u64,
}

/// A message from C: `len` bytes at `data`, text when `is_text` (then it must be
/// UTF-8: a WebSocket text frame, a Python `str`, a JS string downstream). Also the
/// cluster's (`sb_cluster_broadcast`).
///
/// # Safety
///
/// `data` must point to `len` readable bytes (or be NULL with 0).
pub(crate) unsafe fn message(data: *const u8, len: usize, is_text: bool) -> Result<Message> {
    // SAFETY: forwarded caller's contract.
    let b = unsafe { bytes(data, len, "data") }?;
    if is_text {
        if let Err(e) = std::str::from_utf8(b) {
            return Err(Error::invalid_argument(format!(
                "data is marked as text but is not UTF-8: byte {} is not",
                e.valid_up_to()
            )));
        }
    }
    Ok(Message::from_parts(b, is_text))
}

/// An `sb_target` from C (the registry's calls and the cluster's).
///
/// # Safety
///
/// `t` non-NULL and a valid `sb_target` whose pointers follow its documentation.
pub(crate) unsafe fn target(t: *const sb_target) -> Result<Target> {
    if t.is_null() {
        return Err(null_arg("target"));
    }
    // SAFETY: non-NULL, struct_size readable bytes by the caller's contract.
    let t = unsafe { read_versioned(t, "sb_target") }?;
    // SAFETY: each pointer follows the struct's documentation by the caller's contract.
    unsafe {
        Ok(Target {
            all: t.all,
            topics: str_array(t.topics, t.topics_len, "topics")?
                .into_iter()
                .map(str::to_string)
                .collect(),
            users: str_array(t.users, t.users_len, "users")?
                .into_iter()
                .map(str::to_string)
                .collect(),
            ids: num_array(t.ids, t.ids_len, "ids")?,
            except: num_array(t.except, t.except_len, "except")?,
        })
    }
}

/// # Safety
///
/// `out` NULL or a `sb_broadcast_report` with `struct_size` writable bytes.
/// A broadcast's report as C's struct (whole: `struct_size` is the full size).
pub(crate) fn report(r: &switchboard_core::registry::BroadcastReport) -> sb_broadcast_report {
    sb_broadcast_report {
        struct_size: std::mem::size_of::<sb_broadcast_report>(),
        recipients: r.recipients,
        queued: r.queued,
        dropped: r.dropped,
        disconnected: r.disconnected,
        elapsed_ns: ns(r.elapsed),
    }
}

unsafe fn report_out(
    out: *mut sb_broadcast_report,
    r: &switchboard_core::registry::BroadcastReport,
) -> Result<()> {
    if out.is_null() {
        return Ok(());
    }
    // SAFETY: non-NULL; struct_size readable by the caller's contract.
    let room = unsafe { crate::args::struct_room(out, "sb_broadcast_report") }?;
    let filled = room.min(std::mem::size_of::<sb_broadcast_report>());
    let full = sb_broadcast_report {
        struct_size: filled,
        ..report(r)
    };
    write_prefix!(
        sb_broadcast_report,
        out,
        &full,
        filled,
        [
            struct_size,
            recipients,
            queued,
            dropped,
            disconnected,
            elapsed_ns
        ]
    );
    Ok(())
}

/// Queues one message (`len` bytes at `data`, copied once and shared by every
/// recipient; text when `is_text`, which must then be UTF-8) for every connection
/// `target` matches, minus its except set, and fills `*report` (NULL: not wanted; set
/// its `struct_size`). Never blocks on a client: a full queue meets
/// `registry.queue_full_policy`. Send callbacks run after it returns, on the runtime.
/// `SB_INVALID_ARGUMENT` for a target that names nobody.
///
/// # Safety
///
/// `target` a valid `sb_target`; `data` `len` readable bytes (or NULL with 0);
/// `report` NULL or writable as documented.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_registry_broadcast(
    manager: *mut sb_manager,
    target: *const sb_target,
    data: *const u8,
    len: usize,
    is_text: bool,
    report: *mut sb_broadcast_report,
) -> sb_status {
    guard("sb_registry_broadcast", || {
        let m = MANAGERS.get(addr(manager))?;
        // SAFETY: forwarded caller's contract.
        let (t, msg) = unsafe { (self::target(target)?, message(data, len, is_text)?) };
        if !report.is_null() {
            // SAFETY: as below; checked before the broadcast, so a bad struct_size has
            // no side effect.
            unsafe { crate::args::struct_room(report, "sb_broadcast_report") }?;
        }
        let r = m.registry().broadcast(&t, msg)?;
        // SAFETY: forwarded caller's contract.
        unsafe { report_out(report, &r) }
    })
}

/// Queues one message for connection `id` alone, as `sb_registry_broadcast` does.
/// `SB_NOT_FOUND` when it is not registered.
///
/// # Safety
///
/// As `sb_registry_broadcast`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_registry_send(
    manager: *mut sb_manager,
    id: u64,
    data: *const u8,
    len: usize,
    is_text: bool,
    report: *mut sb_broadcast_report,
) -> sb_status {
    guard("sb_registry_send", || {
        let m = MANAGERS.get(addr(manager))?;
        // SAFETY: forwarded caller's contract.
        let msg = unsafe { message(data, len, is_text) }?;
        if !report.is_null() {
            // SAFETY: forwarded caller's contract.
            unsafe { crate::args::struct_room(report, "sb_broadcast_report") }?;
        }
        let r = m.registry().send(id, msg)?;
        // SAFETY: forwarded caller's contract.
        unsafe { report_out(report, &r) }
    })
}

/// Removes every connection `target` matches (minus its except set) for `reason`
/// (NULL or "": `disconnected`); their `closed` callbacks get the reason. `*removed`
/// (if not NULL) receives how many.
///
/// # Safety
///
/// `target` a valid `sb_target`; `reason` NULL or NUL-terminated; `removed` NULL or
/// writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_registry_disconnect(
    manager: *mut sb_manager,
    target: *const sb_target,
    reason: *const c_char,
    removed: *mut u64,
) -> sb_status {
    guard("sb_registry_disconnect", || {
        let m = MANAGERS.get(addr(manager))?;
        // SAFETY: forwarded caller's contract.
        let (t, reason) = unsafe { (self::target(target)?, opt_str(reason, "reason")?) };
        let n = m.registry().disconnect(&t, reason.unwrap_or(""))?;
        // SAFETY: NULL or writable by the caller's contract.
        unsafe { write_opt(removed, n) };
        Ok(())
    })
}

/// Runs the heartbeat and stale pass now (the background one runs every
/// `registry.cleanup_interval`): connections silent past `registry.connection_timeout`
/// are removed (`stale`), those silent past `registry.heartbeat_interval` are asked to
/// ping. `*removed` and `*pinged` (each if not NULL) receive the counts.
///
/// # Safety
///
/// `removed` and `pinged` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_registry_cleanup(
    manager: *mut sb_manager,
    removed: *mut u64,
    pinged: *mut u64,
) -> sb_status {
    guard("sb_registry_cleanup", || {
        let m = MANAGERS.get(addr(manager))?;
        let r = m.registry().cleanup()?;
        // SAFETY: NULL or writable by the caller's contract.
        unsafe {
            write_opt(removed, r.removed);
            write_opt(pinged, r.pinged);
        }
        Ok(())
    })
}

//! The calls on one registered connection by id: unregister, touch, contains, len,
//! subscribe, unsubscribe and metadata.

use std::ffi::c_char;

use crate::args::{check_out, opt_str, str_arg, write_opt, write_out};
use crate::error::{guard, sb_status};
use crate::handles::addr;
use crate::manager::{MANAGERS, sb_manager};

/// Removes connection `id` for `reason` (NULL or "": `unregistered`): its queue is
/// discarded, its `closed` callback runs (an outbox yields `SB_ITEM_CLOSED`).
/// `SB_NOT_FOUND` when it is not registered.
///
/// # Safety
///
/// `reason` NULL or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_registry_unregister(
    manager: *mut sb_manager,
    id: u64,
    reason: *const c_char,
) -> sb_status {
    guard("sb_registry_unregister", || {
        let m = MANAGERS.get(addr(manager))?;
        // SAFETY: NULL or NUL-terminated by the caller's contract.
        let reason = unsafe { opt_str(reason, "reason") }?.unwrap_or("");
        m.registry().unregister(id, reason)
    })
}

/// Records traffic from connection `id` now: call it on every message from the client
/// (a pong included); it is then `active` and not stale. `SB_NOT_FOUND` when gone.
#[unsafe(no_mangle)]
pub extern "C" fn sb_registry_touch(manager: *mut sb_manager, id: u64) -> sb_status {
    guard("sb_registry_touch", || {
        MANAGERS.get(addr(manager))?.registry().touch(id)
    })
}

/// Stores in `*out` whether connection `id` is registered.
///
/// # Safety
///
/// `out` NULL (rejected) or a writable `bool`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_registry_contains(
    manager: *const sb_manager,
    id: u64,
    out: *mut bool,
) -> sb_status {
    guard("sb_registry_contains", || {
        let m = MANAGERS.get(addr(manager))?;
        check_out(out, "out")?;
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(out, m.registry().contains(id)) };
        Ok(())
    })
}

/// Stores in `*out` how many connections are registered.
///
/// # Safety
///
/// `out` NULL (rejected) or a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_registry_len(manager: *const sb_manager, out: *mut usize) -> sb_status {
    guard("sb_registry_len", || {
        let m = MANAGERS.get(addr(manager))?;
        check_out(out, "out")?;
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(out, m.registry().len()) };
        Ok(())
    })
}

/// Subscribes `id` to `topic`; `*added` (if not NULL) is false when it already was.
/// `SB_RESOURCE_EXHAUSTED` for a limit, `SB_PERMISSION_DENIED` when the authorize hook
/// refuses, `SB_NOT_FOUND`, `SB_INVALID_ARGUMENT` for an empty topic.
///
/// # Safety
///
/// `topic` NULL (rejected) or NUL-terminated; `added` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_registry_subscribe(
    manager: *mut sb_manager,
    id: u64,
    topic: *const c_char,
    added: *mut bool,
) -> sb_status {
    guard("sb_registry_subscribe", || {
        let m = MANAGERS.get(addr(manager))?;
        // SAFETY: NUL-terminated by the caller's contract.
        let topic = unsafe { str_arg(topic, "topic") }?;
        let new = m.registry().subscribe(id, topic)?;
        // SAFETY: NULL or writable by the caller's contract.
        unsafe { write_opt(added, new) };
        Ok(())
    })
}

/// Unsubscribes `id` from `topic`; `*removed` (if not NULL) is false when it was not
/// subscribed.
///
/// # Safety
///
/// As `sb_registry_subscribe`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_registry_unsubscribe(
    manager: *mut sb_manager,
    id: u64,
    topic: *const c_char,
    removed: *mut bool,
) -> sb_status {
    guard("sb_registry_unsubscribe", || {
        let m = MANAGERS.get(addr(manager))?;
        // SAFETY: NUL-terminated by the caller's contract.
        let topic = unsafe { str_arg(topic, "topic") }?;
        let gone = m.registry().unsubscribe(id, topic)?;
        // SAFETY: NULL or writable by the caller's contract.
        unsafe { write_opt(removed, gone) };
        Ok(())
    })
}

/// Sets metadata `key` of connection `id` to `value` (NULL: removes the key).
///
/// # Safety
///
/// `key` NULL (rejected) or NUL-terminated; `value` NULL or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_registry_set_metadata(
    manager: *mut sb_manager,
    id: u64,
    key: *const c_char,
    value: *const c_char,
) -> sb_status {
    guard("sb_registry_set_metadata", || {
        let m = MANAGERS.get(addr(manager))?;
        // SAFETY: NUL-terminated strings by the caller's contract.
        let (key, value) = unsafe { (str_arg(key, "key")?, opt_str(value, "value")?) };
        m.registry().set_metadata(id, key, value)
    })
}

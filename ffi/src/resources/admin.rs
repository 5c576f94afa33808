//! Creating, updating and deleting resources by id, and registering a connector type
//! of the program's own objects.

use std::ffi::c_char;

use crate::args::str_arg;
use crate::connector::sb_connector;
use crate::error::{guard, null_arg, sb_status};
use crate::handles::addr;
use crate::manager::{MANAGERS, sb_manager};

use super::props;

/// Creates resource `id` of type `kind` (`"tcp"`, `"unix"`, or a type registered with
/// `sb_resource_register_type`) with `n` props `keys[i] = values[i]`: `endpoint`
/// (`tcp://host:port` or `host:port`; `unix:///path` or `/path`; any non-empty string
/// for a registered type) and any pool keys, as for `sb_config_set`
/// (`connect_timeout`, `backoff.*`, `health.interval`, `probe.send`, `tcp.*`,
/// `resources.on_connect`, ...), over the manager's. Its one connection is dialled at
/// once in the background and redialled with backoff while it fails; a
/// configuration error (say, a unix path longer than the OS allows) stops it as
/// `SB_RESOURCE_DISCONNECTED` with the reason in `sb_resource_info.last_error`. Does
/// not wait: see `sb_resource_wait_ready`.
///
/// `resources.on_connect` (C escapes, as `probe.send`) is sent on every new
/// connection before it counts as connected: the session state a server forgets on
/// a reconnect (`"HELLO 3\\r\\nSUBSCRIBE news\\r\\n"` for Redis).
///
/// With the manager's `resources.path` set, the resource is stored on disk by the
/// time this returns, and a manager opened on the same file recreates it.
///
/// Returns `SB_INVALID_ARGUMENT` for a bad prop (the message names its key), an
/// unknown type, an empty id or an id in use; `SB_UNAVAILABLE` once the manager is
/// closed.
///
/// # Safety
///
/// `id` and `kind` must be NUL-terminated strings; `keys` and `values` must each be
/// NULL with `n` 0, or point to `n` NUL-terminated strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_resource_create(
    manager: *mut sb_manager,
    id: *const c_char,
    kind: *const c_char,
    keys: *const *const c_char,
    values: *const *const c_char,
    n: usize,
) -> sb_status {
    guard("sb_resource_create", || {
        let m = MANAGERS.get(addr(manager))?;
        // SAFETY: NUL-terminated strings by the caller's contract.
        let id = unsafe { str_arg(id, "id") }?;
        // SAFETY: as above.
        let kind = unsafe { str_arg(kind, "kind") }?;
        // SAFETY: as above.
        let props = unsafe { props(keys, values, n) }?;
        m.resources().create(id, kind, &props)
    })
}

/// Updates resource `id` to the `n` props given (all of them, as for
/// `sb_resource_create`; the type stays) without dropping its consumers: blocks the
/// calling thread while a connection with the new props is opened (within their
/// `connect_timeout`); if it cannot be, nothing changes and the error says so.
/// Then every consumer is moved to it (an `SB_EVENT_RESOURCE_REBOUND` event):
/// `sb_resource_fd` gives the new descriptor from now on, and the old connection
/// closes once nothing uses it.
///
/// Returns `SB_NOT_FOUND` for an unknown id, `SB_FAILED_PRECONDITION` for an
/// anonymous resource (its props are its identity), `SB_INVALID_ARGUMENT` for a bad
/// prop, or the connect's error (`SB_UNAVAILABLE`, `SB_TIMEOUT`).
///
/// # Safety
///
/// As for `sb_resource_create`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_resource_update(
    manager: *mut sb_manager,
    id: *const c_char,
    keys: *const *const c_char,
    values: *const *const c_char,
    n: usize,
) -> sb_status {
    guard("sb_resource_update", || {
        let m = MANAGERS.get(addr(manager))?;
        // SAFETY: NUL-terminated by the caller's contract.
        let id = unsafe { str_arg(id, "id") }?;
        // SAFETY: as above.
        let props = unsafe { props(keys, values, n) }?;
        m.resources().update(id, &props)
    })
}

/// Deletes resource `id` and closes its connection. While consumers are attached it
/// returns `SB_FAILED_PRECONDITION`, the message naming them, unless `force`: then
/// each consumer gets an `SB_EVENT_RESOURCE_DETACHED` event and its `sb_resource`
/// then fails (`SB_FAILED_PRECONDITION` / `SB_UNAVAILABLE`; it still needs its
/// `sb_resource_detach`). `SB_NOT_FOUND` for an unknown id.
///
/// # Safety
///
/// `id` must be a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_resource_delete(
    manager: *mut sb_manager,
    id: *const c_char,
    force: bool,
) -> sb_status {
    guard("sb_resource_delete", || {
        let m = MANAGERS.get(addr(manager))?;
        // SAFETY: NUL-terminated by the caller's contract.
        let id = unsafe { str_arg(id, "id") }?;
        m.resources().delete(id, force)
    })
}

/// Registers a resource type `name` of the program's own objects (a bus client, an
/// RPC stub), made, checked and closed by `connector` exactly as a custom pool's
/// (`sb_pool_new_custom`, whose documentation of threads and calls allowed inside the
/// callbacks applies): `connect` receives the resource's endpoint prop; `check` is
/// the resource's health check, run every `health.interval` (a failure replaces the
/// object, keeping the id); `close` runs once per object, when the last holder lets
/// go of it (the resource after a reconnect, an update, a delete, or the last detach
/// of an anonymous one). Stored resources of this type (`resources.path`) are
/// recreated now.
///
/// Ownership of `connector->userdata` passes to the library with this call, even on
/// failure: `free_userdata` runs exactly once, after the last callback, once the
/// manager is freed and every `sb_resource` of the type detached.
///
/// Returns `SB_INVALID_ARGUMENT` for a NULL `connect`, an empty name, `tcp`, `unix`
/// or a name already registered.
///
/// # Safety
///
/// `name` must be a NUL-terminated string; `connector` NULL (rejected) or a valid
/// `sb_connector` (see `sb_pool_new_custom`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_resource_register_type(
    manager: *mut sb_manager,
    name: *const c_char,
    connector: *const sb_connector,
) -> sb_status {
    guard("sb_resource_register_type", || {
        if connector.is_null() {
            return Err(null_arg("connector"));
        }
        // Take the userdata first, so that free_userdata runs exactly once whatever
        // fails below. SAFETY: non-NULL and readable by the caller's contract.
        let taken = crate::connector::take(unsafe { &*connector });
        let m = MANAGERS.get(addr(manager))?;
        // SAFETY: NUL-terminated by the caller's contract.
        let name = unsafe { str_arg(name, "name") }?;
        m.resources().register_type(name, taken.into_connector()?)
    })
}

//! `sb_resource`: one consumer's share of a resource, and the calls on it.

use std::ffi::{c_char, c_int, c_void};
use std::time::Duration;

use switchboard_core::ResourceHandle;

use super::props;
use super::snapshots::sb_resource_state;
use crate::args::{bytes, bytes_mut, check_out, copy_str_out, str_arg, write_out};
use crate::connector::CConn;
use crate::error::{guard, sb_status};
use crate::handles::{Slab, Tag, addr, to_ptr};
use crate::manager::{MANAGERS, sb_manager};

/// One consumer's share of a named or anonymous resource (`sb_resource_attach`,
/// `sb_resource_attach_anonymous`), ended by `sb_resource_detach` exactly once.
///
/// The connection is shared by every consumer of the resource: like a lease's, one
/// consumer writes at a time and one reads at a time (the program coordinates its
/// consumers' writes and reads). It also changes: after a reconnect or an
/// `sb_resource_update` the resource holds a new connection, so take its fd
/// (`sb_resource_fd`) or object (`sb_resource_object`) again for each use rather than
/// keeping it. The calls on a handle may run on any thread, concurrently.
#[allow(non_camel_case_types)]
pub struct sb_resource {
    _opaque: [u8; 0],
}

/// The consumers' handles. Dropping one detaches it.
static RESOURCES: Slab<ResourceHandle> = Slab::new(Tag::Resource);

/// Stores `handle` and writes its `sb_resource` to `out` (already checked).
///
/// # Safety
///
/// `out` must be non-NULL and writable.
unsafe fn hand_out(
    handle: ResourceHandle,
    out: *mut *mut sb_resource,
) -> switchboard_core::Result<()> {
    let id = RESOURCES.insert(handle)?;
    // SAFETY: checked non-NULL by the caller; writable by its contract.
    unsafe { write_out(out, to_ptr(id)) };
    Ok(())
}

/// Attaches consumer `consumer` (a name, shown in `sb_resource_info.consumers` and in
/// the refusal of `sb_resource_delete`) to resource `id` and stores its handle in
/// `*out`: it shares the resource's one connection. Does not wait for it to be
/// connected (`sb_resource_wait_ready`). `SB_NOT_FOUND` for an unknown id.
///
/// # Safety
///
/// `id` and `consumer` must be NUL-terminated strings; `out` NULL (rejected) or a
/// writable `sb_resource *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_resource_attach(
    manager: *mut sb_manager,
    id: *const c_char,
    consumer: *const c_char,
    out: *mut *mut sb_resource,
) -> sb_status {
    guard("sb_resource_attach", || {
        let m = MANAGERS.get(addr(manager))?;
        // SAFETY: NUL-terminated strings by the caller's contract.
        let id = unsafe { str_arg(id, "id") }?;
        // SAFETY: as above.
        let consumer = unsafe { str_arg(consumer, "consumer") }?;
        check_out(out, "out")?;
        let h = m.resources().attach(id, consumer)?;
        // SAFETY: checked non-NULL above.
        unsafe { hand_out(h, out) }
    })
}

/// Attaches consumer `consumer` to the unnamed resource of type `kind` with the `n`
/// props given (as for `sb_resource_create`) and stores its handle in `*out`: every
/// caller with equal props shares one resource (made by the first, with the id
/// `anonymous-<n>`, see `sb_resource_id`), closed when its last consumer detaches.
///
/// # Safety
///
/// `kind` and `consumer` must be NUL-terminated strings; `keys` and `values` each
/// NULL with `n` 0 or `n` NUL-terminated strings; `out` NULL (rejected) or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_resource_attach_anonymous(
    manager: *mut sb_manager,
    kind: *const c_char,
    keys: *const *const c_char,
    values: *const *const c_char,
    n: usize,
    consumer: *const c_char,
    out: *mut *mut sb_resource,
) -> sb_status {
    guard("sb_resource_attach_anonymous", || {
        let m = MANAGERS.get(addr(manager))?;
        // SAFETY: NUL-terminated strings by the caller's contract.
        let kind = unsafe { str_arg(kind, "kind") }?;
        // SAFETY: as above.
        let props = unsafe { props(keys, values, n) }?;
        // SAFETY: as above.
        let consumer = unsafe { str_arg(consumer, "consumer") }?;
        check_out(out, "out")?;
        let h = m.resources().attach_anonymous(kind, &props, consumer)?;
        // SAFETY: checked non-NULL above.
        unsafe { hand_out(h, out) }
    })
}

/// Detaches the consumer and ends its handle (the one free of an `sb_resource`; every
/// handle needs it, also after a forced delete or a closed manager). The last detach
/// of an anonymous resource closes its connection. NULL is a no-op (`SB_OK`); a
/// handle already detached returns `SB_INVALID_HANDLE`. A call still running on the
/// handle in another thread (say, `sb_resource_recv`) finishes first.
#[unsafe(no_mangle)]
pub extern "C" fn sb_resource_detach(resource: *mut sb_resource) -> sb_status {
    guard("sb_resource_detach", || {
        if resource.is_null() {
            return Ok(());
        }
        let h = RESOURCES.remove(addr(resource))?;
        // Now, even if another call still holds the handle: the consumer has left.
        h.detach();
        drop(h);
        Ok(())
    })
}

/// Copies the resource's id (`"anonymous-<n>"` for an anonymous one) into `buf` as a
/// NUL-terminated string, as `sb_lease_endpoint` does: `*written` (if not NULL) gets
/// the size needed with its NUL; `SB_RESOURCE_EXHAUSTED` when `len` is too small.
///
/// # Safety
///
/// `buf` must point to `len` writable bytes (or `len` be 0); `written` NULL or a
/// writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_resource_id(
    resource: *const sb_resource,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> sb_status {
    guard("sb_resource_id", || {
        let h = RESOURCES.get(addr(resource))?;
        // SAFETY: forwarded caller's contract.
        unsafe { copy_str_out(h.id(), buf, len, written, "the resource id") }
    })
}

/// Stores the resource's state now in `*out`. Works after a forced delete and on a
/// closed manager (`SB_RESOURCE_DISCONNECTED`).
///
/// # Safety
///
/// `out` NULL (rejected) or a writable `sb_resource_state`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_resource_status(
    resource: *const sb_resource,
    out: *mut sb_resource_state,
) -> sb_status {
    guard("sb_resource_status", || {
        let h = RESOURCES.get(addr(resource))?;
        check_out(out, "out")?;
        // SAFETY: checked non-NULL above; writable by the caller's contract.
        unsafe { write_out(out, h.status().into()) };
        Ok(())
    })
}

/// Blocks the calling thread until the resource is connected, across reconnects,
/// for at most `timeout_ms` milliseconds: `SB_OK`, `SB_TIMEOUT`, or `SB_UNAVAILABLE`
/// if it stopped (a configuration error, deleted, the manager closed). Then take the
/// fd or object. Must not be called from a switchboard callback
/// (`SB_FAILED_PRECONDITION` on its threads).
#[unsafe(no_mangle)]
pub extern "C" fn sb_resource_wait_ready(
    resource: *const sb_resource,
    timeout_ms: u64,
) -> sb_status {
    guard("sb_resource_wait_ready", || {
        RESOURCES
            .get(addr(resource))?
            .wait_ready(Duration::from_millis(timeout_ms))
    })
}

/// Tells the resource this consumer saw an error (a failed send, an unexpected EOF):
/// it checks the connection now (and probes it, when `probe.send` is set) and
/// redials if it is lost, instead of waiting for the next health check. Does not
/// wait.
#[unsafe(no_mangle)]
pub extern "C" fn sb_resource_report_failure(resource: *const sb_resource) -> sb_status {
    guard("sb_resource_report_failure", || {
        RESOURCES.get(addr(resource))?.report_failure();
        Ok(())
    })
}

/// Stores the file descriptor of the resource's current connection (`tcp` and
/// `unix` resources) in `*out`. It stays owned by the resource, in blocking mode:
/// do not close it. The descriptor CHANGES: after a reconnect (`SB_EVENT_RESOURCE_STATE`
/// to "connected") or an `sb_resource_update` (`SB_EVENT_RESOURCE_REBOUND`) the
/// resource holds a new connection, and the old descriptor is closed once nothing
/// uses it, after which its number may be reused by any open(). So take it again for
/// each use, and prefer `sb_resource_send_all` / `sb_resource_recv`, which always use
/// the current connection and count the bytes; the fd is for `poll()`.
///
/// Returns `SB_UNAVAILABLE` while connecting or recovering (naming the last error),
/// `SB_FAILED_PRECONDITION` for a resource of a registered type (use
/// `sb_resource_object`) or a detached consumer (forced delete).
///
/// # Safety
///
/// `out` NULL (rejected) or a writable `int`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_resource_fd(
    resource: *const sb_resource,
    out: *mut c_int,
) -> sb_status {
    guard("sb_resource_fd", || {
        let h = RESOURCES.get(addr(resource))?;
        check_out(out, "out")?;
        let fd = h.socket()?.fd();
        // SAFETY: checked non-NULL above; writable by the caller's contract.
        unsafe { write_out(out, fd) };
        Ok(())
    })
}

/// Stores the current object of a resource of a registered type (made by its
/// `sb_connector` connect callback) in `*out`. It stays owned by the resource, and it
/// changes like a fd: after a failed check, an update or a delete the resource lets
/// go of it and its close callback runs once nothing holds it, so take it again for
/// each use and keep the program's own reference (in the object) if a use may
/// outlast a reconnect.
///
/// Returns `SB_UNAVAILABLE` while connecting or recovering, `SB_FAILED_PRECONDITION`
/// for a `tcp` / `unix` resource (use `sb_resource_fd`).
///
/// # Safety
///
/// `out` NULL (rejected) or a writable `void *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_resource_object(
    resource: *const sb_resource,
    out: *mut *mut c_void,
) -> sb_status {
    guard("sb_resource_object", || {
        let h = RESOURCES.get(addr(resource))?;
        check_out(out, "out")?;
        let ptr = h.object::<CConn>()?.ptr();
        // SAFETY: checked non-NULL above; writable by the caller's contract.
        unsafe { write_out(out, ptr) };
        Ok(())
    })
}

/// Writes all `len` bytes of `buf` to the resource's current connection, blocking
/// (counted in `switchboard_resource_bytes_total{direction="out"}`). Single writer:
/// the program makes sure one consumer writes at a time. On `SB_IO` call
/// `sb_resource_report_failure`, then `sb_resource_wait_ready`, and send again.
///
/// # Safety
///
/// `buf` must point to `len` readable bytes (or `len` be 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_resource_send_all(
    resource: *const sb_resource,
    buf: *const u8,
    len: usize,
) -> sb_status {
    guard("sb_resource_send_all", || {
        let h = RESOURCES.get(addr(resource))?;
        // SAFETY: `len` readable bytes at `buf` by the caller's contract.
        let data = unsafe { bytes(buf, len, "buf") }?;
        h.send_all(data)
    })
}

/// Reads up to `len` bytes from the resource's current connection into `buf`,
/// blocking until at least one arrives (`poll()` its fd first to bound the wait), and
/// stores the count in `*n` (0: the peer closed it; report the failure and wait for
/// it to be ready again). Counted in `switchboard_resource_bytes_total{direction="in"}`.
/// Single reader: one consumer reads at a time.
///
/// # Safety
///
/// `buf` must point to `len` writable bytes (or `len` be 0); `n` NULL (rejected) or a
/// writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_resource_recv(
    resource: *const sb_resource,
    buf: *mut u8,
    len: usize,
    n: *mut usize,
) -> sb_status {
    guard("sb_resource_recv", || {
        let h = RESOURCES.get(addr(resource))?;
        check_out(n, "n")?;
        // SAFETY: `len` writable bytes at `buf` by the caller's contract.
        let dst = unsafe { bytes_mut(buf, len, "buf") }?;
        let got = h.recv(dst)?;
        // SAFETY: checked non-NULL above; writable by the caller's contract.
        unsafe { write_out(n, got) };
        Ok(())
    })
}

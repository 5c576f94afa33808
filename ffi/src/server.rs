//! `sb_manager_server_address`, `sb_manager_grpc_address` and `sb_hub_*`: the embedded
//! server of a manager (issue 11, `server.*` config keys; docs/server.md). The server
//! itself needs no call: it starts with `sb_manager_new` when `server.listen` is set and
//! stops with the manager's close. What C gets is its bound addresses and the hub's
//! inbound side: the messages hub clients send (`sb_hub_recv`), each an
//! `sb_hub_message` snapshot freed by `sb_hub_message_free`. Answers go out through the
//! registry (`sb_registry_send`, `sb_registry_broadcast`): every hub client is a
//! registry connection whose id is the message's `connection_id`.

use std::ffi::c_char;
use std::net::SocketAddr;
use std::time::Duration;

use switchboard_core::server::HubMessage;
use switchboard_core::{Code, Error, Result};

use crate::args::{check_out, copy_str_out, write_out};
use crate::error::{guard, sb_status};
use crate::handles::addr;
use crate::manager::{MANAGERS, sb_manager};
use crate::snapshot_table::{SnapshotTable, Strings, not_live};

/// One message a hub client sent to the program (`sb_hub_recv`), freed (once) by
/// `sb_hub_message_free`. Its strings are NUL-terminated and live as long as the
/// snapshot. Fields may be added at the end (`struct_size`).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug)]
pub struct sb_hub_message {
    /// The size of this struct as allocated by the library.
    pub struct_size: usize,
    /// The registry id of the client that sent it: pass it to `sb_registry_send` to
    /// answer that client alone, or to `sb_registry_get` for its user and topics.
    pub connection_id: u64,
    /// The client's user (from the registry's auth hook), or NULL when anonymous.
    pub user: *const c_char,
    /// The envelope's `type` (`data`, `chat`, ...: never one the hub answers itself,
    /// such as `subscribe` or `ping`).
    pub r#type: *const c_char,
    /// The envelope's `topic`, or NULL when it has none.
    pub topic: *const c_char,
    /// The whole JSON text as the client sent it (decode it with
    /// `sb_envelope_decode`).
    pub text: *const c_char,
    /// `strlen(text)`.
    pub text_len: usize,
}

/// What a snapshot pointer handed to C is (one kind here, kept for the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Snapshot {
    Message,
}

/// Messages handed out and not yet freed.
static LIVE: SnapshotTable<Snapshot> = SnapshotTable::new();

#[repr(C)]
struct MessageBox {
    msg: sb_hub_message,
    _st: Strings,
}

// SAFETY: the raw pointers in a message point into the box's own immutable strings;
// nothing is shared with other objects.
unsafe impl Send for MessageBox {}

fn message_box(m: &HubMessage) -> Box<MessageBox> {
    let mut st = Strings::default();
    let user = m.user.as_deref().map_or(std::ptr::null(), |u| st.add(u));
    let kind = st.add(&m.kind);
    let topic = m.topic.as_deref().map_or(std::ptr::null(), |t| st.add(t));
    let text = st.add(&m.text);
    // SAFETY: `text` was just made by `Strings::add`: a NUL-terminated CString kept in
    // `st`, which the box owns.
    let text_len = unsafe { std::ffi::CStr::from_ptr(text) }.to_bytes().len();
    Box::new(MessageBox {
        msg: sb_hub_message {
            struct_size: std::mem::size_of::<sb_hub_message>(),
            connection_id: m.connection_id,
            user,
            r#type: kind,
            topic,
            text,
            text_len,
        },
        _st: st,
    })
}

/// The error of an address asked of a manager whose server is off.
fn server_off(what: &str) -> Error {
    Error::new(
        Code::NotFound,
        format!("the manager has no {what}: server.listen is not set (the server is off)"),
    )
}

/// Copies `addr` as `host:port` into the caller's buffer.
///
/// # Safety
///
/// As `copy_str_out`.
unsafe fn copy_addr(
    addr: Option<SocketAddr>,
    what: &str,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> Result<()> {
    let a = addr.ok_or_else(|| server_off(what))?;
    // SAFETY: forwarded caller's contract.
    unsafe { copy_str_out(&a.to_string(), buf, len, written, what) }
}

/// Copies the address the manager's server is bound to, `host:port` (for
/// `server.listen = 127.0.0.1:0`, the port picked: `"127.0.0.1:41234"`; an IPv6 host
/// in brackets), into `buf` with a NUL. `SB_NOT_FOUND` when the server is off
/// (`server.listen` not set). `*written` (if not NULL) receives the size it needs with
/// its NUL; when that exceeds `len`, returns `SB_RESOURCE_EXHAUSTED` and copies nothing
/// (`buf[0]` is set to NUL when `len > 0`). `buf` may be NULL when `len` is 0, to ask
/// for the size; 64 bytes always suffice.
///
/// # Safety
///
/// `buf` must point to `len` writable bytes (or `len` be 0); `written` must be NULL or
/// point to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_manager_server_address(
    manager: *const sb_manager,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> sb_status {
    guard("sb_manager_server_address", || {
        let m = MANAGERS.get(addr(manager))?;
        // SAFETY: forwarded caller's contract.
        unsafe { copy_addr(m.server_address(), "server address", buf, len, written) }
    })
}

/// Copies the address of the gRPC sessions service, as `sb_manager_server_address`
/// does: `server.grpc_listen`'s bound address, or the server's own when gRPC shares
/// its port (`server.grpc_listen` not set). `SB_NOT_FOUND` when the server is off.
///
/// # Safety
///
/// As `sb_manager_server_address`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_manager_grpc_address(
    manager: *const sb_manager,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> sb_status {
    guard("sb_manager_grpc_address", || {
        let m = MANAGERS.get(addr(manager))?;
        // SAFETY: forwarded caller's contract.
        unsafe { copy_addr(m.grpc_address(), "gRPC address", buf, len, written) }
    })
}

/// Takes the next message hub clients sent to the program, waiting on the calling
/// thread up to `timeout_ms` milliseconds for one (0: do not wait), and stores it in
/// `*out`: a snapshot to free with `sb_hub_message_free` (once).
///
/// Messages are every envelope a client of `GET /ws` sends whose type the hub does not
/// answer itself (`data`, `chat`, ...; not `subscribe`, `unsubscribe`, `ping`, `pong`,
/// `heartbeat`), oldest first. They wait in a queue of `server.hub_queue` messages
/// (default 10000; beyond it the oldest is dropped, see `sb_hub_dropped`). Several
/// threads may call this on one manager: each message goes to one of them. With no
/// server (`server.listen` not set) nothing ever comes. Do not call it with a long
/// timeout from a callback (it would hold up one of switchboard's threads).
///
/// Returns `SB_OK` with `*out` set, `SB_TIMEOUT` when nothing came within `timeout_ms`
/// (`*out` untouched), `SB_UNAVAILABLE` once the manager is closed (a wait in progress
/// ends with it), `SB_INVALID_ARGUMENT` when `out` is NULL.
///
/// # Safety
///
/// `out` must be NULL (rejected) or point to a writable `sb_hub_message *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_hub_recv(
    manager: *mut sb_manager,
    timeout_ms: u64,
    out: *mut *mut sb_hub_message,
) -> sb_status {
    guard("sb_hub_recv", || {
        let m = MANAGERS.get(addr(manager))?;
        check_out(out, "out")?;
        let Some(msg) = m.hub().recv(Duration::from_millis(timeout_ms))? else {
            return Err(Error::timeout(format!(
                "no hub message within {timeout_ms} ms"
            )));
        };
        let p = Box::into_raw(message_box(&msg)).cast::<sb_hub_message>();
        LIVE.remember(p as usize, Snapshot::Message);
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(out, p) };
        Ok(())
    })
}

/// Frees a message made by `sb_hub_recv`. NULL is a no-op; a pointer that is not one
/// (freed already) returns `SB_INVALID_HANDLE` and frees nothing. A message may be
/// freed after its manager (it holds nothing of the manager's).
#[unsafe(no_mangle)]
pub extern "C" fn sb_hub_message_free(message: *mut sb_hub_message) -> sb_status {
    guard("sb_hub_message_free", || {
        if message.is_null() {
            return Ok(());
        }
        if !LIVE.forget(message as usize, Snapshot::Message) {
            return Err(not_live("sb_hub_message", "sb_hub_recv"));
        }
        // SAFETY: made by Box::into_raw in sb_hub_recv and not freed since (it was in
        // the table); `message` is the first field of the repr(C) MessageBox.
        drop(unsafe { Box::from_raw(message.cast::<MessageBox>()) });
        Ok(())
    })
}

/// Stores in `*out` how many hub messages were dropped because the queue
/// (`server.hub_queue`) was full (nobody called `sb_hub_recv`). Only grows.
///
/// # Safety
///
/// `out` must be NULL (rejected) or point to a writable `uint64_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_hub_dropped(manager: *const sb_manager, out: *mut u64) -> sb_status {
    guard("sb_hub_dropped", || {
        let m = MANAGERS.get(addr(manager))?;
        check_out(out, "out")?;
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(out, m.hub().dropped()) };
        Ok(())
    })
}

//! Registering a connection: the `sb_registration` both register calls take, and the
//! send callbacks (`sb_send_fn`, `sb_ping_fn`, `sb_closed_fn`) that make a connection's
//! sink in `sb_registry_register`.

use std::ffi::{c_char, c_int, c_void};
use std::sync::Arc;

use switchboard_core::Result;
use switchboard_core::registry::{ConnId, Message, Registration, SendOutcome, Sink};

use super::UserPtr;
use crate::args::{c_string, check_out, opt_str, read_versioned, str_array, write_out};
use crate::connector::sb_free_fn;
use crate::error::{guard, null_arg, sb_status};
use crate::handles::addr;
use crate::manager::{MANAGERS, sb_manager};

/// A connection to register (`sb_registry_register`, `sb_registry_register_outbox`).
/// Set `struct_size = sizeof(sb_registration)`; fields beyond a shorter struct_size
/// (an older header) count as NULL / 0. Every field may be NULL / 0.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct sb_registration {
    /// `sizeof(sb_registration)`.
    pub struct_size: usize,
    /// The user this connection belongs to, or NULL.
    pub user: *const c_char,
    /// `meta_len` metadata keys (a key given twice keeps the last value).
    pub meta_keys: *const *const c_char,
    /// `meta_len` metadata values, `meta_values[i]` for `meta_keys[i]`.
    pub meta_values: *const *const c_char,
    /// How many metadata entries.
    pub meta_len: usize,
    /// `topics_len` topics to subscribe at once.
    pub topics: *const *const c_char,
    /// How many topics.
    pub topics_len: usize,
    /// A credential for the authenticate hook (`sb_registry_set_authenticator`), or
    /// NULL. Its grant's user and metadata are merged over the fields above.
    pub token: *const c_char,
}

/// Sends one message to the client: `len` bytes at `data` (valid only during the
/// call), `is_text` for a text message. Return 0 when it was handed to the
/// transport, non-zero when it failed (counted; after `registry.max_send_failures` in
/// a row the connection is removed with reason `send_failed`).
#[allow(non_camel_case_types)]
pub type sb_send_fn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        id: u64,
        data: *const u8,
        len: usize,
        is_text: bool,
    ) -> c_int,
>;

/// Pings the client (heartbeat); returns 0, or non-zero for a failure (counted like a
/// failed send).
#[allow(non_camel_case_types)]
pub type sb_ping_fn = Option<unsafe extern "C" fn(userdata: *mut c_void, id: u64) -> c_int>;

/// The connection left the registry for `reason` (valid only during the call);
/// called once, after its last send. Close the client's transport here.
#[allow(non_camel_case_types)]
pub type sb_closed_fn =
    Option<unsafe extern "C" fn(userdata: *mut c_void, id: u64, reason: *const c_char)>;

struct CSink {
    send: unsafe extern "C" fn(*mut c_void, u64, *const u8, usize, bool) -> c_int,
    ping: sb_ping_fn,
    closed: sb_closed_fn,
    userdata: UserPtr,
    free_userdata: sb_free_fn,
}

fn outcome(rc: c_int, what: &str) -> SendOutcome {
    if rc == 0 {
        SendOutcome::Sent
    } else {
        SendOutcome::Failed(format!("the {what} callback returned {rc}"))
    }
}

impl Sink for CSink {
    fn send(&self, id: ConnId, msg: &Message) -> SendOutcome {
        let d = msg.data();
        // SAFETY: the program's function with its own userdata; the bytes are valid
        // for the call. An extern "C" function cannot unwind.
        let rc = unsafe { (self.send)(self.userdata.0, id, d.as_ptr(), d.len(), msg.is_text()) };
        outcome(rc, "send")
    }

    fn ping(&self, id: ConnId) -> SendOutcome {
        match self.ping {
            // SAFETY: as in send.
            Some(p) => outcome(unsafe { p(self.userdata.0, id) }, "ping"),
            None => SendOutcome::Sent,
        }
    }

    fn closed(&self, id: ConnId, reason: &str) {
        if let Some(c) = self.closed {
            let r = c_string(reason);
            // SAFETY: as in send; the reason is valid for the call.
            unsafe { c(self.userdata.0, id, r.as_ptr()) };
        }
    }
}

impl Drop for CSink {
    fn drop(&mut self) {
        if let Some(free) = self.free_userdata {
            // SAFETY: the program's function, called once (the sink's last reference
            // is going, so no callback runs any more) with its own userdata.
            unsafe { free(self.userdata.0) };
        }
    }
}

/// # Safety
///
/// `reg` NULL or a valid `sb_registration` whose pointers follow its documentation.
pub(super) unsafe fn registration(reg: *const sb_registration) -> Result<Registration> {
    if reg.is_null() {
        return Ok(Registration::new());
    }
    // SAFETY: non-NULL, struct_size readable bytes by the caller's contract.
    let r = unsafe { read_versioned(reg, "sb_registration") }?;
    let mut out = Registration::new();
    // SAFETY: each pointer follows the struct's documentation by the caller's contract.
    unsafe {
        if let Some(u) = opt_str(r.user, "user")? {
            out = out.user(u);
        }
        let keys = str_array(r.meta_keys, r.meta_len, "meta_keys")?;
        let values = str_array(r.meta_values, r.meta_len, "meta_values")?;
        for (k, v) in keys.into_iter().zip(values) {
            out = out.meta(k, v);
        }
        out = out.topics(str_array(r.topics, r.topics_len, "topics")?);
        if let Some(t) = opt_str(r.token, "token")? {
            out = out.token(t);
        }
    }
    Ok(out)
}

/// Registers a connection whose messages go to `send` (and heartbeats to `ping`, NULL:
/// none; its leaving to `closed`, NULL: none), with `reg` (NULL: anonymous, no
/// metadata, no topics), and stores its id in `*id_out`.
///
/// The callbacks run on one of switchboard's runtime threads (a delivery task), never
/// two at once for one connection, in queue order, `closed` once and last; several
/// connections' callbacks may run at once on different threads. No registry lock is
/// held: they may call `sb_registry_*` (say, unregister), but must not block for long
/// (they hold up the other connections of that thread) nor call `sb_manager_close` /
/// `sb_manager_free`. Ownership of `userdata` passes to the library: `free_userdata`
/// (if not NULL) runs once, after `closed`, when the library lets the connection go
/// (on the thread that lets go, often a runtime thread); on failure before this
/// returns.
///
/// Returns `SB_INVALID_ARGUMENT` (NULL `send`, an empty user, topic or metadata key),
/// `SB_UNAUTHENTICATED` (the hook refused the token), `SB_FAILED_PRECONDITION` (a
/// token but no hook), `SB_PERMISSION_DENIED` (the hook refused a topic),
/// `SB_RESOURCE_EXHAUSTED` (a `registry.max_*` limit, named with its value),
/// `SB_UNAVAILABLE` (the manager is closed).
///
/// # Safety
///
/// `reg` NULL or a valid `sb_registration`; the callbacks safe to call from any thread
/// with `userdata`, valid until `free_userdata` runs; `id_out` NULL (rejected) or a
/// writable `uint64_t`.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn sb_registry_register(
    manager: *mut sb_manager,
    reg: *const sb_registration,
    send: sb_send_fn,
    ping: sb_ping_fn,
    closed: sb_closed_fn,
    userdata: *mut c_void,
    free_userdata: sb_free_fn,
    id_out: *mut u64,
) -> sb_status {
    // Owns the userdata from here on.
    let sink = send.map(|send| CSink {
        send,
        ping,
        closed,
        userdata: UserPtr(userdata),
        free_userdata,
    });
    if sink.is_none()
        && let Some(free) = free_userdata
    {
        // SAFETY: the program's function, once: there is no sink to keep it for.
        unsafe { free(userdata) };
    }
    guard("sb_registry_register", move || {
        let Some(sink) = sink else {
            return Err(null_arg("send"));
        };
        let m = MANAGERS.get(addr(manager))?;
        check_out(id_out, "id_out")?;
        // SAFETY: forwarded caller's contract.
        let reg = unsafe { registration(reg) }?;
        let id = m.registry().register(reg, Arc::new(sink))?;
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(id_out, id) };
        Ok(())
    })
}

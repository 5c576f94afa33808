//! `sb_registry_*`: the live-connection registry of a manager (issue 9). Connections
//! are named by `uint64_t` ids (unique in the process, never reused), not handles: an
//! unknown id is `SB_NOT_FOUND`. Every check, message and error code comes from core's
//! `Registry`; this module only translates arguments, the program's callbacks (a send
//! sink and the authentication hook), the outbox table and the snapshots
//! (`sb_conn_info`, `sb_conn_list`, `sb_registry_stats`: the only things here the
//! library allocates for the caller).

use std::collections::HashMap;
use std::ffi::{CString, c_char, c_int, c_void};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_core::registry::{
    AuthGrant, Authenticator, ConnId, ConnInfo, ConnState, Item, ListFilter, Message, Outbox,
    Registration, RegistryStats, SendOutcome, SharedAuthenticator, Sink, Target,
};
use switchboard_core::{Code, Error, Result};

use crate::args::{bytes, bytes_mut, check_out, copy_str_out, str_arg, write_out, write_prefix};
use crate::connector::sb_free_fn;
use crate::error::{guard, null_arg, sb_status};
use crate::handles::addr;
use crate::manager::{MANAGERS, sb_manager};

// ---- argument helpers ----

/// Writes `value` through an optional out-pointer (NULL: not wanted).
///
/// # Safety
///
/// `out` must be NULL or aligned and writable.
unsafe fn write_opt<T>(out: *mut T, value: T) {
    if !out.is_null() {
        // SAFETY: non-NULL and writable by the caller's contract.
        unsafe { write_out(out, value) };
    }
}

/// An optional string argument: NULL is `None`.
///
/// # Safety
///
/// `p` must be NULL or a NUL-terminated string valid for `'a`.
unsafe fn opt_str<'a>(p: *const c_char, what: &str) -> Result<Option<&'a str>> {
    if p.is_null() {
        Ok(None)
    } else {
        // SAFETY: forwarded caller's contract.
        unsafe { str_arg(p, what) }.map(Some)
    }
}

/// `n` strings at `p` (named `what[i]` in messages); `p` may be NULL when `n` is 0.
///
/// # Safety
///
/// `p` must be NULL with `n` 0, or point to `n` pointers that are NULL (rejected) or
/// NUL-terminated strings valid for `'a`.
unsafe fn str_array<'a>(p: *const *const c_char, n: usize, what: &str) -> Result<Vec<&'a str>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if p.is_null() {
        return Err(null_arg(what));
    }
    let mut out = Vec::with_capacity(n.min(4096));
    for i in 0..n {
        // SAFETY: `n` readable pointers by the caller's contract.
        let s = unsafe { *p.add(i) };
        // SAFETY: NULL or NUL-terminated by the caller's contract.
        out.push(unsafe { str_arg(s, &format!("{what}[{i}]")) }?);
    }
    Ok(out)
}

/// `n` ids at `p`; `p` may be NULL when `n` is 0.
///
/// # Safety
///
/// `p` must be NULL with `n` 0, or point to `n` readable `uint64_t`.
unsafe fn id_array(p: *const u64, n: usize, what: &str) -> Result<Vec<u64>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if p.is_null() {
        return Err(null_arg(what));
    }
    if n > isize::MAX as usize / 8 {
        return Err(Error::invalid_argument(format!(
            "{what} length {n} is too large"
        )));
    }
    // SAFETY: non-NULL, `n` readable values by the caller's contract.
    Ok(unsafe { std::slice::from_raw_parts(p, n) }.to_vec())
}

/// A copy of the caller's input struct `T` at `p` (which starts with its
/// `size_t struct_size`): the first `min(struct_size, sizeof(T))` bytes, the rest
/// zero (NULL pointers, false, 0), so a program built against an older header with a
/// shorter struct works. InvalidArgument when `struct_size` was not set.
///
/// # Safety
///
/// `p` must be non-NULL and point to `struct_size` readable bytes; `T` must be a
/// repr(C) struct of integers, bools and raw pointers (valid when zeroed).
unsafe fn read_versioned<T: Copy>(p: *const T, ty: &str) -> Result<T> {
    // SAFETY: non-NULL; its first size_t is readable by the caller's contract.
    let room = unsafe { crate::args::struct_room(p, ty) }?;
    let n = room.min(std::mem::size_of::<T>());
    let mut v = std::mem::MaybeUninit::<T>::zeroed();
    // SAFETY: `n` readable bytes at `p` (the caller's struct_size) and `n` writable in
    // `v`; they cannot overlap.
    unsafe { std::ptr::copy_nonoverlapping(p.cast::<u8>(), v.as_mut_ptr().cast::<u8>(), n) };
    // SAFETY: T is valid zeroed, and the bytes copied are the caller's valid fields.
    Ok(unsafe { v.assume_init() })
}

/// A message from C: `len` bytes at `data`, text when `is_text` (then it must be
/// UTF-8: a WebSocket text frame, a Python `str`, a JS string downstream).
///
/// # Safety
///
/// `data` must point to `len` readable bytes (or be NULL with 0).
unsafe fn message(data: *const u8, len: usize, is_text: bool) -> Result<Message> {
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

/// A C string of `s`; a string with a NUL inside is cut at the NUL.
fn c_string(s: &str) -> CString {
    let cut = s.split('\0').next().unwrap_or("");
    CString::new(cut).unwrap_or_default()
}

// ---- input structs ----

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

/// Which connections `sb_registry_list` returns; every set field must match. Set
/// `struct_size = sizeof(sb_list_filter)`; unset fields are NULL / 0.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct sb_list_filter {
    /// `sizeof(sb_list_filter)`.
    pub struct_size: usize,
    /// Only this user's connections (NULL: any).
    pub user: *const c_char,
    /// Only subscribers of this topic (NULL: any).
    pub topic: *const c_char,
    /// Only connections whose metadata has this key (NULL: any) ...
    pub meta_key: *const c_char,
    /// ... with this value (required with `meta_key`).
    pub meta_value: *const c_char,
    /// Only connections in this state, `"active"` or `"idle"` (NULL: any).
    pub state: *const c_char,
    /// Only connections silent for at least this many milliseconds (0: any).
    pub min_idle_ms: u64,
    /// Most records to return (0: the default, 100; more than 10,000 counts as 10,000).
    pub limit: usize,
    /// Only ids above this one: the previous page's `next_cursor` (0: from the start).
    pub cursor: u64,
}

// ---- out structs ----

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

/// A snapshot of one connection (`sb_registry_get`, or an element of
/// `sb_conn_list.connections`). Its strings and arrays live as long as the snapshot.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct sb_conn_info {
    /// The size of this struct as allocated by the library.
    pub struct_size: usize,
    /// Its id.
    pub id: u64,
    /// Its user, or NULL.
    pub user: *const c_char,
    /// How many metadata entries.
    pub meta_len: usize,
    /// Metadata keys, sorted (NULL when none).
    pub meta_keys: *const *const c_char,
    /// Metadata values, `meta_values[i]` for `meta_keys[i]`.
    pub meta_values: *const *const c_char,
    /// How many topics.
    pub topics_len: usize,
    /// Its topics, sorted (NULL when none).
    pub topics: *const *const c_char,
    /// `"active"` or `"idle"` (static).
    pub state: *const c_char,
    /// `"callback"` or `"outbox"` (static).
    pub sink: *const c_char,
    /// Time since it registered, in nanoseconds (by the manager's clock).
    pub age_ns: u64,
    /// Time since it was last touched, in nanoseconds.
    pub idle_ns: u64,
    /// Messages waiting in its queue.
    pub queued_messages: u64,
    /// Bytes waiting in its queue.
    pub queued_bytes: u64,
    /// Messages handed to its sink.
    pub sent: u64,
    /// Messages dropped for it.
    pub dropped: u64,
    /// Failed deliveries to it.
    pub failed: u64,
}

/// One page of `sb_registry_list`, freed (once) by `sb_conn_list_free`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug)]
pub struct sb_conn_list {
    /// How many records.
    pub len: usize,
    /// The records, in id order (NULL when none). Never extended per element.
    pub connections: *const sb_conn_info,
    /// Whether there is a next page.
    pub has_next: bool,
    /// Pass as `cursor` for the next page (0 when this was the last one).
    pub next_cursor: u64,
}

/// The registry's statistics (`sb_registry_get_stats`), freed (once) by
/// `sb_registry_stats_free`. Fields may be added at the end (`struct_size`).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug)]
pub struct sb_registry_stats {
    /// The size of this struct as allocated by the library.
    pub struct_size: usize,
    /// Connections registered now.
    pub connections: u64,
    /// Of those, heard from within the heartbeat interval.
    pub active: u64,
    /// Topics with at least one subscriber.
    pub topics: u64,
    /// Distinct users with at least one connection.
    pub users: u64,
    /// Connections ever registered.
    pub registered_total: u64,
    /// Broadcasts (and direct sends) made.
    pub broadcasts: u64,
    /// Messages queued for delivery.
    pub messages_queued: u64,
    /// Messages handed to sinks.
    pub messages_sent: u64,
    /// Messages dropped by full queues, or discarded when their connection left.
    pub messages_dropped: u64,
    /// Failed deliveries.
    pub messages_failed: u64,
    /// Cleanup passes run.
    pub cleanup_runs: u64,
    /// How many topics `topic_names` / `topic_counts` hold (every topic).
    pub topic_counts_len: usize,
    /// Topic names, largest first.
    pub topic_names: *const *const c_char,
    /// Subscribers of `topic_names[i]`.
    pub topic_counts: *const u64,
    /// How many disconnect reasons.
    pub disconnects_len: usize,
    /// Reasons connections were removed for (sorted).
    pub disconnect_reasons: *const *const c_char,
    /// How many were removed for `disconnect_reasons[i]`.
    pub disconnect_counts: *const u64,
    /// How many limit keys refused calls.
    pub rejections_len: usize,
    /// The limit keys (sorted), e.g. `registry.max_total_connections`.
    pub rejection_keys: *const *const c_char,
    /// Calls refused by `rejection_keys[i]`.
    pub rejection_counts: *const u64,
}

/// What an `sb_registry_next` item is.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum sb_item_kind {
    /// A binary message, in `buf[0..*n]`.
    SB_ITEM_BINARY = 1,
    /// A text (UTF-8) message, in `buf[0..*n]` (no NUL is added).
    SB_ITEM_TEXT = 2,
    /// Ping the client now (`registry.heartbeat_interval`); `*n` is 0.
    SB_ITEM_PING = 3,
    /// The connection left; the reason (`stale`, `send_failed`, `slow_consumer`,
    /// `manager_closed`, ...) is in `buf[0..*n]` (cut to fit). The last item: every
    /// later call returns it again.
    SB_ITEM_CLOSED = 4,
}

// ---- the snapshot table ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Snapshot {
    Info,
    List,
    Stats,
}

/// Snapshots handed out and not yet freed, so that a double free or a made-up
/// pointer is reported instead of being undefined behaviour.
static LIVE: Mutex<Option<HashMap<usize, Snapshot>>> = Mutex::new(None);

fn remember(p: usize, kind: Snapshot) {
    let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    live.get_or_insert_with(HashMap::new).insert(p, kind);
}

fn forget(p: usize, kind: Snapshot) -> bool {
    let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    let found = match live.as_mut() {
        Some(l) if l.get(&p) == Some(&kind) => l.remove(&p).is_some(),
        _ => false,
    };
    if live.as_ref().is_some_and(|l| l.is_empty()) {
        *live = None;
    }
    found
}

fn not_live(ty: &str, maker: &str) -> Error {
    Error::new(
        Code::InvalidHandle,
        format!("not a live {ty} (freed already, or not made by {maker})"),
    )
}

/// Owns the strings and pointer arrays a snapshot points into (their heap buffers do
/// not move when the vectors are moved).
#[derive(Default)]
struct Strings {
    strings: Vec<CString>,
    ptrs: Vec<Vec<*const c_char>>,
    nums: Vec<Vec<u64>>,
}

impl Strings {
    fn add(&mut self, s: &str) -> *const c_char {
        let c = c_string(s);
        let p = c.as_ptr();
        self.strings.push(c);
        p
    }

    fn array<'a>(&mut self, items: impl Iterator<Item = &'a str>) -> (*const *const c_char, usize) {
        let v: Vec<*const c_char> = items.map(|s| self.add(s)).collect();
        let n = v.len();
        let p = if v.is_empty() {
            std::ptr::null()
        } else {
            v.as_ptr()
        };
        self.ptrs.push(v);
        (p, n)
    }

    fn nums(&mut self, v: Vec<u64>) -> *const u64 {
        let p = if v.is_empty() {
            std::ptr::null()
        } else {
            v.as_ptr()
        };
        self.nums.push(v);
        p
    }
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn state_str(s: ConnState) -> *const c_char {
    let b: &'static [u8] = match s {
        ConnState::Active => b"active\0",
        ConnState::Idle => b"idle\0",
    };
    b.as_ptr().cast()
}

fn sink_str(s: &str) -> *const c_char {
    let b: &'static [u8] = if s == "outbox" {
        b"outbox\0"
    } else {
        b"callback\0"
    };
    b.as_ptr().cast()
}

fn conn_info(c: &ConnInfo, st: &mut Strings) -> sb_conn_info {
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
        state: state_str(c.state),
        sink: sink_str(c.sink),
        age_ns: ns(c.age),
        idle_ns: ns(c.idle),
        queued_messages: c.queued_messages,
        queued_bytes: c.queued_bytes,
        sent: c.sent,
        dropped: c.dropped,
        failed: c.failed,
    }
}

#[repr(C)]
struct InfoBox {
    info: sb_conn_info,
    _st: Strings,
}

#[repr(C)]
struct ListBox {
    list: sb_conn_list,
    _infos: Vec<sb_conn_info>,
    _st: Strings,
}

#[repr(C)]
struct StatsBox {
    stats: sb_registry_stats,
    _st: Strings,
}

// SAFETY: the raw pointers in a snapshot point into the box's own immutable strings
// and vectors; nothing is shared with other objects.
unsafe impl Send for InfoBox {}
// SAFETY: as above.
unsafe impl Send for ListBox {}
// SAFETY: as above.
unsafe impl Send for StatsBox {}

// ---- the send sink ----

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

/// The program's userdata pointer, promised (see `sb_registry_register`) usable from
/// any thread.
struct UserPtr(*mut c_void);

// SAFETY: switchboard never dereferences it; it only passes it back to the program's
// functions, which the header documents run on switchboard's threads.
unsafe impl Send for UserPtr {}
// SAFETY: as above.
unsafe impl Sync for UserPtr {}

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

// ---- the authentication hook ----

/// Size of the `why` buffer the auth callbacks get, NUL included.
pub const SB_AUTH_WHY_LEN: usize = 256;

/// What the authenticate hook grants a token, filled by the callback with
/// `sb_grant_set_user` and `sb_grant_add_meta`. Valid only during the callback.
#[allow(non_camel_case_types)]
pub struct sb_grant {
    _opaque: [u8; 0],
}

/// The Rust side of an `sb_grant *`.
struct GrantBuilder {
    grant: AuthGrant,
    error: Option<Error>,
}

/// Checks `token` (valid only during the call). Return 0 to accept it, after
/// optionally setting the user and metadata on `grant`; non-zero to refuse it, with
/// the reason written NUL-terminated into `why` (`why_len` bytes, zeroed; may be left
/// empty). Runs on the thread calling `sb_registry_register*` with a token.
#[allow(non_camel_case_types)]
pub type sb_authenticate_fn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        token: *const c_char,
        grant: *mut sb_grant,
        why: *mut c_char,
        why_len: usize,
    ) -> c_int,
>;

/// Whether connection `id` of `user` (NULL: none) may subscribe to `topic` (at
/// register and on every subscribe). Return 0 to allow; non-zero to refuse, with the
/// reason in `why` as above. Runs on the thread calling register or subscribe.
#[allow(non_camel_case_types)]
pub type sb_authorize_fn = Option<
    unsafe extern "C" fn(
        userdata: *mut c_void,
        id: u64,
        user: *const c_char,
        topic: *const c_char,
        why: *mut c_char,
        why_len: usize,
    ) -> c_int,
>;

struct CAuth {
    authenticate: sb_authenticate_fn,
    authorize: sb_authorize_fn,
    userdata: UserPtr,
    free_userdata: sb_free_fn,
}

fn why_text(buf: &[c_char; SB_AUTH_WHY_LEN]) -> String {
    // The callback may have filled every byte: never read past the buffer.
    let bytes: Vec<u8> = buf
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    let s = String::from_utf8_lossy(&bytes).into_owned();
    if s.is_empty() {
        "refused".to_string()
    } else {
        s
    }
}

impl Authenticator for CAuth {
    fn authenticate(&self, token: &str) -> std::result::Result<AuthGrant, String> {
        let Some(f) = self.authenticate else {
            return Err("no authenticate callback was set".to_string());
        };
        let token = c_string(token);
        let mut b = GrantBuilder {
            grant: AuthGrant::default(),
            error: None,
        };
        let mut why = [0 as c_char; SB_AUTH_WHY_LEN];
        let gp = std::ptr::addr_of_mut!(b).cast::<sb_grant>();
        // SAFETY: the program's function with its userdata; token, grant and why are
        // valid for the call; an extern "C" function cannot unwind.
        let rc = unsafe {
            f(
                self.userdata.0,
                token.as_ptr(),
                gp,
                why.as_mut_ptr(),
                SB_AUTH_WHY_LEN - 1,
            )
        };
        if rc != 0 {
            return Err(why_text(&why));
        }
        if let Some(e) = b.error {
            return Err(format!("the grant was filled wrongly: {}", e.message()));
        }
        Ok(b.grant)
    }

    fn authorize_subscribe(
        &self,
        id: ConnId,
        user: Option<&str>,
        topic: &str,
    ) -> std::result::Result<(), String> {
        let Some(f) = self.authorize else {
            return Ok(());
        };
        let user = user.map(c_string);
        let topic = c_string(topic);
        let mut why = [0 as c_char; SB_AUTH_WHY_LEN];
        // SAFETY: as in authenticate.
        let rc = unsafe {
            f(
                self.userdata.0,
                id,
                user.as_ref().map_or(std::ptr::null(), |u| u.as_ptr()),
                topic.as_ptr(),
                why.as_mut_ptr(),
                SB_AUTH_WHY_LEN - 1,
            )
        };
        if rc != 0 {
            return Err(why_text(&why));
        }
        Ok(())
    }
}

impl Drop for CAuth {
    fn drop(&mut self) {
        if let Some(free) = self.free_userdata {
            // SAFETY: the program's function, once, with its own userdata: the hook's
            // last reference is going.
            unsafe { free(self.userdata.0) };
        }
    }
}

/// Sets the user of the grant being filled (inside an `sb_authenticate_fn`). Returns
/// `SB_INVALID_ARGUMENT` for a NULL grant or user, or a user that is not UTF-8 (the
/// refusal then names it).
///
/// # Safety
///
/// `grant` must be the pointer passed to the running authenticate callback; `user`
/// NULL (rejected) or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_grant_set_user(grant: *mut sb_grant, user: *const c_char) -> sb_status {
    guard("sb_grant_set_user", || {
        if grant.is_null() {
            return Err(null_arg("grant"));
        }
        // SAFETY: the live builder of the running callback, by the caller's contract.
        let b = unsafe { &mut *grant.cast::<GrantBuilder>() };
        // SAFETY: NUL-terminated by the caller's contract.
        match unsafe { str_arg(user, "user") } {
            Ok(u) => {
                b.grant.user = Some(u.to_string());
                Ok(())
            }
            Err(e) => {
                b.error.get_or_insert(e.clone());
                Err(e)
            }
        }
    })
}

/// Adds one metadata entry to the grant being filled (inside an
/// `sb_authenticate_fn`); merged over the registration's. Errors as
/// `sb_grant_set_user`.
///
/// # Safety
///
/// As `sb_grant_set_user`; `key` and `value` NULL (rejected) or NUL-terminated.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_grant_add_meta(
    grant: *mut sb_grant,
    key: *const c_char,
    value: *const c_char,
) -> sb_status {
    guard("sb_grant_add_meta", || {
        if grant.is_null() {
            return Err(null_arg("grant"));
        }
        // SAFETY: the live builder of the running callback, by the caller's contract.
        let b = unsafe { &mut *grant.cast::<GrantBuilder>() };
        // SAFETY: NUL-terminated by the caller's contract.
        let kv = unsafe { str_arg(key, "key").and_then(|k| Ok((k, str_arg(value, "value")?))) };
        match kv {
            Ok((k, v)) => {
                b.grant.metadata.push((k.to_string(), v.to_string()));
                Ok(())
            }
            Err(e) => {
                b.error.get_or_insert(e.clone());
                Err(e)
            }
        }
    })
}

/// Installs the registry's authentication hook (both callbacks NULL: removes it).
/// `authenticate` checks the token of a registration (a registration with a token and
/// no hook, or no `authenticate`, fails); `authorize` (NULL: allow all) checks each
/// topic at register and every subscribe. A refused token fails the register with
/// `SB_UNAUTHENTICATED` ("the authenticate hook refused the token: <why>"); a refused
/// topic with `SB_PERMISSION_DENIED` ("the authorize hook refused topic "t": <why>").
///
/// The callbacks run on the thread making the register or subscribe call, with no
/// registry lock held (they may call the registry, e.g. `sb_registry_get`); several
/// threads may run them at once. Ownership of `userdata` passes to the library:
/// `free_userdata` (if not NULL) runs once, when the hook is replaced or removed, or
/// when the manager is freed (with both callbacks NULL: before this returns, and on
/// failure too).
///
/// # Safety
///
/// The callbacks must be safe to call from any thread with `userdata`, which must stay
/// valid until `free_userdata` runs.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_registry_set_authenticator(
    manager: *mut sb_manager,
    authenticate: sb_authenticate_fn,
    authorize: sb_authorize_fn,
    userdata: *mut c_void,
    free_userdata: sb_free_fn,
) -> sb_status {
    // Owns the userdata from here on: dropped (freed once) on every path below.
    let hook = CAuth {
        authenticate,
        authorize,
        userdata: UserPtr(userdata),
        free_userdata,
    };
    let hook = if authenticate.is_none() && authorize.is_none() {
        drop(hook);
        None
    } else {
        Some(hook)
    };
    guard("sb_registry_set_authenticator", move || {
        let m = MANAGERS.get(addr(manager))?;
        let new = hook.map(|h| Arc::new(h) as SharedAuthenticator);
        // The previous hook goes here, with no registry lock held.
        drop(m.registry().set_authenticator(new));
        Ok(())
    })
}

// ---- register ----

/// # Safety
///
/// `reg` NULL or a valid `sb_registration` whose pointers follow its documentation.
unsafe fn registration(reg: *const sb_registration) -> Result<Registration> {
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

/// An outbox the program drains with `sb_registry_next`, kept by id until
/// `sb_registry_outbox_free` or the manager is freed.
struct OutboxEntry {
    manager: usize,
    outbox: Outbox,
}

static OUTBOXES: Mutex<Option<HashMap<u64, Arc<OutboxEntry>>>> = Mutex::new(None);

fn outboxes() -> std::sync::MutexGuard<'static, Option<HashMap<u64, Arc<OutboxEntry>>>> {
    OUTBOXES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Lets go of every outbox of manager `manager` (from `sb_manager_free`).
pub(crate) fn forget_manager(manager: usize) {
    let gone: Vec<Arc<OutboxEntry>> = {
        let mut t = outboxes();
        let Some(map) = t.as_mut() else { return };
        let ids: Vec<u64> = map
            .iter()
            .filter(|(_, e)| e.manager == manager)
            .map(|(id, _)| *id)
            .collect();
        let gone = ids.iter().filter_map(|id| map.remove(id)).collect();
        if map.is_empty() {
            *t = None;
        }
        gone
    };
    drop(gone);
}

/// Registers a connection whose messages the program pulls with `sb_registry_next`
/// (from its own writer thread), with `reg` as in `sb_registry_register`, and stores
/// its id in `*id_out`. Free it with `sb_registry_outbox_free` (after it closed, or to
/// stop taking messages); `sb_manager_free` frees the rest. Same errors as
/// `sb_registry_register`.
///
/// # Safety
///
/// `reg` NULL or a valid `sb_registration`; `id_out` NULL (rejected) or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_registry_register_outbox(
    manager: *mut sb_manager,
    reg: *const sb_registration,
    id_out: *mut u64,
) -> sb_status {
    guard("sb_registry_register_outbox", || {
        let m = MANAGERS.get(addr(manager))?;
        check_out(id_out, "id_out")?;
        // SAFETY: forwarded caller's contract.
        let reg = unsafe { registration(reg) }?;
        let outbox = m.registry().register_outbox(reg)?;
        let id = outbox.id();
        let entry = Arc::new(OutboxEntry {
            manager: addr(manager),
            outbox,
        });
        outboxes()
            .get_or_insert_with(HashMap::new)
            .insert(id, entry);
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(id_out, id) };
        Ok(())
    })
}

fn outbox(conn: u64) -> Result<Arc<OutboxEntry>> {
    outboxes()
        .as_ref()
        .and_then(|m| m.get(&conn).cloned())
        .ok_or_else(|| {
            Error::not_found(format!(
                "no outbox with id {conn} (not registered with sb_registry_register_outbox, or freed)"
            ))
        })
}

/// Takes the next item of outbox connection `conn`, waiting on the calling thread up
/// to `timeout_ms` milliseconds (0: do not wait). `*kind` says what it is (see
/// `sb_item_kind`); a message or close reason is copied into `buf` and its length
/// stored in `*n`. Returns `SB_TIMEOUT` when nothing came in time; `SB_INVALID_ARGUMENT`
/// when the next message is longer than `len` (it stays queued; the message names its
/// length: call again with a larger buffer); `SB_NOT_FOUND` for an id that is not an
/// outbox of this process (or was freed). Several threads may call it for one
/// connection; each item goes to one of them. Must not be called from a callback
/// (a runtime thread).
///
/// # Safety
///
/// `buf` must point to `len` writable bytes (or be NULL with 0); `n` and `kind` NULL
/// (rejected) or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_registry_next(
    conn: u64,
    buf: *mut u8,
    len: usize,
    timeout_ms: u64,
    n: *mut usize,
    kind: *mut sb_item_kind,
) -> sb_status {
    guard("sb_registry_next", || {
        check_out(n, "n")?;
        check_out(kind, "kind")?;
        // SAFETY: forwarded caller's contract.
        let dst = unsafe { bytes_mut(buf, len, "buf") }?;
        let entry = outbox(conn)?;
        let item = entry
            .outbox
            .next_within(Duration::from_millis(timeout_ms), Some(len))?;
        let Some(item) = item else {
            return Err(Error::timeout(format!(
                "no item for connection {conn} within {timeout_ms} ms"
            )));
        };
        let (k, data): (sb_item_kind, &[u8]) = match &item {
            Item::Message(m) if m.is_text() => (sb_item_kind::SB_ITEM_TEXT, m.data()),
            Item::Message(m) => (sb_item_kind::SB_ITEM_BINARY, m.data()),
            Item::Ping => (sb_item_kind::SB_ITEM_PING, &[]),
            Item::Closed(r) => {
                let mut cut = r.len().min(dst.len());
                while !r.is_char_boundary(cut) {
                    cut -= 1;
                }
                (sb_item_kind::SB_ITEM_CLOSED, &r.as_bytes()[..cut])
            }
        };
        let Some(slot) = dst.get_mut(..data.len()) else {
            return Err(Error::internal("an item longer than the buffer was taken"));
        };
        slot.copy_from_slice(data);
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe {
            write_out(n, data.len());
            write_out(kind, k);
        }
        Ok(())
    })
}

/// Frees outbox connection `conn`: it stops taking messages (later deliveries fail,
/// and after `registry.max_send_failures` it is removed with `send_failed`; call
/// `sb_registry_unregister` first to leave at once). `SB_NOT_FOUND` when it is not a
/// live outbox. A thread waiting in `sb_registry_next` on it finishes its wait.
#[unsafe(no_mangle)]
pub extern "C" fn sb_registry_outbox_free(conn: u64) -> sb_status {
    guard("sb_registry_outbox_free", || {
        let gone = {
            let mut t = outboxes();
            let gone = t.as_mut().and_then(|m| m.remove(&conn));
            if t.as_ref().is_some_and(|m| m.is_empty()) {
                *t = None;
            }
            gone
        };
        match gone {
            Some(e) => {
                e.outbox.close();
                drop(e);
                Ok(())
            }
            None => Err(outbox(conn)
                .err()
                .unwrap_or_else(|| Error::internal("outbox"))),
        }
    })
}

// ---- per-connection calls ----

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

// ---- broadcast, send, disconnect ----

/// # Safety
///
/// `t` non-NULL and a valid `sb_target` whose pointers follow its documentation.
unsafe fn target(t: *const sb_target) -> Result<Target> {
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
            ids: id_array(t.ids, t.ids_len, "ids")?,
            except: id_array(t.except, t.except_len, "except")?,
        })
    }
}

/// # Safety
///
/// `out` NULL or a `sb_broadcast_report` with `struct_size` writable bytes.
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
        recipients: r.recipients,
        queued: r.queued,
        dropped: r.dropped,
        disconnected: r.disconnected,
        elapsed_ns: ns(r.elapsed),
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

// ---- snapshots ----

/// Stores in `*out` a snapshot of connection `id`; free it with `sb_conn_info_free`
/// (once). `SB_NOT_FOUND` when it is not registered.
///
/// # Safety
///
/// `out` NULL (rejected) or a writable `sb_conn_info *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_registry_get(
    manager: *const sb_manager,
    id: u64,
    out: *mut *mut sb_conn_info,
) -> sb_status {
    guard("sb_registry_get", || {
        let m = MANAGERS.get(addr(manager))?;
        check_out(out, "out")?;
        let info = m.registry().get(id)?;
        let mut st = Strings::default();
        let info = conn_info(&info, &mut st);
        let p = Box::into_raw(Box::new(InfoBox { info, _st: st })).cast::<sb_conn_info>();
        remember(p as usize, Snapshot::Info);
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(out, p) };
        Ok(())
    })
}

/// Frees a snapshot made by `sb_registry_get`. NULL is a no-op; a pointer that is not
/// one (freed already) returns `SB_INVALID_HANDLE` and frees nothing.
#[unsafe(no_mangle)]
pub extern "C" fn sb_conn_info_free(info: *mut sb_conn_info) -> sb_status {
    guard("sb_conn_info_free", || {
        if info.is_null() {
            return Ok(());
        }
        if !forget(info as usize, Snapshot::Info) {
            return Err(not_live("sb_conn_info", "sb_registry_get"));
        }
        // SAFETY: made by Box::into_raw in sb_registry_get and not freed since (it was
        // in the table); `info` is the first field of the repr(C) InfoBox.
        drop(unsafe { Box::from_raw(info.cast::<InfoBox>()) });
        Ok(())
    })
}

/// Stores in `*out` one page of the connections `filter` matches (NULL: all), in id
/// order; free it with `sb_conn_list_free` (once). Pass `next_cursor` as the next
/// call's `filter->cursor` while `has_next`. `SB_INVALID_ARGUMENT` for an unknown
/// state or a `meta_key` without `meta_value`.
///
/// # Safety
///
/// `filter` NULL or a valid `sb_list_filter`; `out` NULL (rejected) or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_registry_list(
    manager: *const sb_manager,
    filter: *const sb_list_filter,
    out: *mut *mut sb_conn_list,
) -> sb_status {
    guard("sb_registry_list", || {
        let m = MANAGERS.get(addr(manager))?;
        check_out(out, "out")?;
        let mut lf = ListFilter::default();
        if !filter.is_null() {
            // SAFETY: non-NULL, struct_size readable bytes by the caller's contract.
            let f = unsafe { read_versioned(filter, "sb_list_filter") }?;
            // SAFETY: each pointer follows the struct's documentation.
            unsafe {
                lf.user = opt_str(f.user, "user")?.map(str::to_string);
                lf.topic = opt_str(f.topic, "topic")?.map(str::to_string);
                let key = opt_str(f.meta_key, "meta_key")?;
                let value = opt_str(f.meta_value, "meta_value")?;
                lf.meta = match (key, value) {
                    (Some(k), Some(v)) => Some((k.to_string(), v.to_string())),
                    (None, None) => None,
                    (Some(_), None) => return Err(null_arg("meta_value (with meta_key set)")),
                    (None, Some(_)) => return Err(null_arg("meta_key (with meta_value set)")),
                };
                if let Some(s) = opt_str(f.state, "state")? {
                    lf.state = Some(ConnState::parse(s).ok_or_else(|| {
                        Error::invalid_argument(format!(
                            "state must be one of active | idle, got \"{s}\""
                        ))
                    })?);
                }
            }
            if f.min_idle_ms > 0 {
                lf.min_idle = Some(Duration::from_millis(f.min_idle_ms));
            }
            lf.limit = f.limit;
            if f.cursor > 0 {
                lf.cursor = Some(f.cursor);
            }
        }
        let page = m.registry().list(&lf)?;
        let mut st = Strings::default();
        let infos: Vec<sb_conn_info> = page
            .connections
            .iter()
            .map(|c| conn_info(c, &mut st))
            .collect();
        let b = Box::new(ListBox {
            list: sb_conn_list {
                len: infos.len(),
                connections: if infos.is_empty() {
                    std::ptr::null()
                } else {
                    infos.as_ptr()
                },
                has_next: page.next_cursor.is_some(),
                next_cursor: page.next_cursor.unwrap_or(0),
            },
            _infos: infos,
            _st: st,
        });
        let p = Box::into_raw(b).cast::<sb_conn_list>();
        remember(p as usize, Snapshot::List);
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(out, p) };
        Ok(())
    })
}

/// Frees a page made by `sb_registry_list`. NULL is a no-op; a pointer that is not
/// one returns `SB_INVALID_HANDLE`.
#[unsafe(no_mangle)]
pub extern "C" fn sb_conn_list_free(list: *mut sb_conn_list) -> sb_status {
    guard("sb_conn_list_free", || {
        if list.is_null() {
            return Ok(());
        }
        if !forget(list as usize, Snapshot::List) {
            return Err(not_live("sb_conn_list", "sb_registry_list"));
        }
        // SAFETY: made by Box::into_raw in sb_registry_list, not freed since.
        drop(unsafe { Box::from_raw(list.cast::<ListBox>()) });
        Ok(())
    })
}

fn stats_box(s: &RegistryStats) -> Box<StatsBox> {
    let mut st = Strings::default();
    let (topic_names, topic_counts_len) = st.array(s.topic_counts.iter().map(|(t, _)| t.as_str()));
    let topic_counts = st.nums(s.topic_counts.iter().map(|(_, n)| *n).collect());
    let (disconnect_reasons, disconnects_len) = st.array(s.disconnects.keys().map(String::as_str));
    let disconnect_counts = st.nums(s.disconnects.values().copied().collect());
    let (rejection_keys, rejections_len) = st.array(s.rejections.keys().map(String::as_str));
    let rejection_counts = st.nums(s.rejections.values().copied().collect());
    Box::new(StatsBox {
        stats: sb_registry_stats {
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
        },
        _st: st,
    })
}

/// Stores in `*out` the registry's statistics; free them with
/// `sb_registry_stats_free` (once).
///
/// # Safety
///
/// `out` NULL (rejected) or a writable `sb_registry_stats *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_registry_get_stats(
    manager: *const sb_manager,
    out: *mut *mut sb_registry_stats,
) -> sb_status {
    guard("sb_registry_get_stats", || {
        let m = MANAGERS.get(addr(manager))?;
        check_out(out, "out")?;
        let s = m.registry().stats()?;
        let p = Box::into_raw(stats_box(&s)).cast::<sb_registry_stats>();
        remember(p as usize, Snapshot::Stats);
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(out, p) };
        Ok(())
    })
}

/// Frees statistics made by `sb_registry_get_stats`. NULL is a no-op; a pointer that
/// is not one returns `SB_INVALID_HANDLE`.
#[unsafe(no_mangle)]
pub extern "C" fn sb_registry_stats_free(stats: *mut sb_registry_stats) -> sb_status {
    guard("sb_registry_stats_free", || {
        if stats.is_null() {
            return Ok(());
        }
        if !forget(stats as usize, Snapshot::Stats) {
            return Err(not_live("sb_registry_stats", "sb_registry_get_stats"));
        }
        // SAFETY: made by Box::into_raw in sb_registry_get_stats, not freed since.
        drop(unsafe { Box::from_raw(stats.cast::<StatsBox>()) });
        Ok(())
    })
}

// ---- the envelope helper ----

/// Encodes seed 004's JSON message envelope, stamped now:
/// `{"type":..,"topic":..,"data":..,"timestamp":..,"error":..}` into `buf` as a
/// NUL-terminated string. `type` is required; `topic`, `data_json` (JSON text: an
/// object, array, string, number ...) and `error` may be NULL (left out). `*written`
/// (if not NULL) always receives the size the text needs with its NUL; when it does
/// not fit in `len`, returns `SB_RESOURCE_EXHAUSTED` (`buf` may be NULL with `len` 0
/// to ask). `SB_INVALID_ARGUMENT` for an empty type or `data_json` that is not JSON.
///
/// # Safety
///
/// Strings NULL or NUL-terminated (`type` NULL is rejected); `buf` `len` writable
/// bytes (or NULL with 0); `written` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_envelope_encode(
    r#type: *const c_char,
    topic: *const c_char,
    data_json: *const c_char,
    error: *const c_char,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> sb_status {
    guard("sb_envelope_encode", || {
        // SAFETY: NULL or NUL-terminated strings by the caller's contract.
        let (kind, topic, data, err) = unsafe {
            (
                str_arg(r#type, "type")?,
                opt_str(topic, "topic")?,
                opt_str(data_json, "data_json")?,
                opt_str(error, "error")?,
            )
        };
        let text = switchboard_core::envelope::encode(kind, topic, data, err)?;
        // SAFETY: forwarded caller's contract.
        unsafe { copy_str_out(&text, buf, len, written, "the envelope") }
    })
}

/// Decodes an envelope's fields into the caller's buffers: `type_buf` receives its
/// type, `topic_buf` its topic ("" when none), `data_buf` its data as JSON text (""
/// when none), each NUL-terminated (a buffer may be NULL with length 0 when not
/// wanted). `SB_INVALID_ARGUMENT` names what is wrong with `text`;
/// `SB_RESOURCE_EXHAUSTED` when a wanted field does not fit.
///
/// # Safety
///
/// `text` NULL (rejected) or NUL-terminated; each buffer its length in writable bytes
/// (or NULL with 0).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn sb_envelope_decode(
    text: *const c_char,
    type_buf: *mut c_char,
    type_len: usize,
    topic_buf: *mut c_char,
    topic_len: usize,
    data_buf: *mut c_char,
    data_len: usize,
) -> sb_status {
    guard("sb_envelope_decode", || {
        // SAFETY: NUL-terminated by the caller's contract.
        let text = unsafe { str_arg(text, "text") }?;
        let env = switchboard_core::envelope::decode(text)?;
        let data = env.data_json().unwrap_or_default();
        // SAFETY: forwarded caller's contract for each buffer.
        unsafe {
            if type_len > 0 {
                copy_str_out(
                    &env.kind,
                    type_buf,
                    type_len,
                    std::ptr::null_mut(),
                    "the type",
                )?;
            }
            if topic_len > 0 {
                let t = env.topic.as_deref().unwrap_or("");
                copy_str_out(t, topic_buf, topic_len, std::ptr::null_mut(), "the topic")?;
            }
            if data_len > 0 {
                copy_str_out(&data, data_buf, data_len, std::ptr::null_mut(), "the data")?;
            }
        }
        Ok(())
    })
}

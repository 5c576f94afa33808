//! `sb_event`: what happened in a manager's pools (leak suspicions, ...), polled by the
//! program from its own thread with `sb_manager_poll_event` or delivered to its
//! callback (`sb_manager_set_event_callback`), and the manager's
//! Prometheus text (`sb_manager_metrics`).

use std::ffi::{c_char, c_void};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use switchboard_core::events::EventCallback;
use switchboard_core::{Code, Error, Event, EventKind};

use crate::connector::sb_free_fn;

use crate::args::{bytes_mut, check_out, copy_str, write_out};
use crate::error::{guard, null_arg, sb_status};
use crate::handles::addr;
use crate::manager::{MANAGERS, sb_manager};

/// What kind of event an `sb_event` is. The numbers are stable and never reused; new
/// kinds may be added, so handle unknown values (`sb_event_kind_str` names them).
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum sb_event_kind {
    /// A lease has been held longer than `pool.leak_detection_threshold`
    /// ("leak_suspected"). Reported once per lease, by the pool's upkeep.
    SB_EVENT_LEAK_SUSPECTED = 1,
    /// A connection changed state ("connection_state").
    SB_EVENT_CONNECTION_STATE = 2,
    /// An endpoint changed state ("endpoint_state").
    SB_EVENT_ENDPOINT_STATE = 3,
    /// An endpoint's circuit breaker changed state ("breaker_state").
    SB_EVENT_BREAKER_STATE = 4,
    /// A health check of an endpoint finished ("health_check").
    SB_EVENT_HEALTH_CHECK = 5,
    /// A caller was turned away ("rejected").
    SB_EVENT_REJECTED = 6,
    /// A session was opened ("session_opened").
    SB_EVENT_SESSION_OPENED = 7,
    /// A session was closed ("session_closed").
    SB_EVENT_SESSION_CLOSED = 8,
    /// A stream was added to a live session ("stream_added").
    SB_EVENT_STREAM_ADDED = 9,
    /// A stream was removed from a live session ("stream_removed").
    SB_EVENT_STREAM_REMOVED = 10,
    /// An offset commit could not be stored ("commit_failed").
    SB_EVENT_COMMIT_FAILED = 11,
    /// A connection joined the registry ("registered"; `connection_id`, `user`).
    SB_EVENT_REGISTERED = 12,
    /// A connection left the registry ("unregistered"; `reason`).
    SB_EVENT_UNREGISTERED = 13,
    /// A registered connection subscribed to `topic` ("subscribed").
    SB_EVENT_SUBSCRIBED = 14,
    /// A registered connection unsubscribed from `topic`, or left while subscribed
    /// ("unsubscribed").
    SB_EVENT_UNSUBSCRIBED = 15,
    /// A registered connection's queue filled up ("slow_consumer"); `reason` is the
    /// policy's outcome (`drop_oldest`, `drop_new` or `disconnect`).
    SB_EVENT_SLOW_CONSUMER = 16,
    /// A named resource changed state ("resource_state"; `resource`, `old_state`,
    /// `new_state` among "connecting", "connected", "recovering", "disconnected",
    /// and `reason` the error that caused it, if one).
    SB_EVENT_RESOURCE_STATE = 17,
    /// A consumer was detached from a resource deleted with force
    /// ("resource_detached"; `resource`). Its `sb_resource` then fails.
    SB_EVENT_RESOURCE_DETACHED = 18,
    /// A resource was updated (`sb_resource_update`) and every consumer now uses the
    /// new connection ("resource_rebound"; `resource`): take the fd again.
    SB_EVENT_RESOURCE_REBOUND = 19,
    /// This instance joined its cluster, or rejoined it after Redis came back
    /// ("cluster_joined"; `reason` "joined" or "rejoined").
    SB_EVENT_CLUSTER_JOINED = 20,
    /// This instance lost its cluster's Redis and serves locally until it rejoins
    /// ("cluster_lost"; `reason` "redis_unavailable").
    SB_EVENT_CLUSTER_LOST = 21,
}

impl From<EventKind> for sb_event_kind {
    fn from(k: EventKind) -> Self {
        use sb_event_kind::*;
        match k {
            EventKind::LeakSuspected => SB_EVENT_LEAK_SUSPECTED,
            EventKind::ConnectionState => SB_EVENT_CONNECTION_STATE,
            EventKind::EndpointState => SB_EVENT_ENDPOINT_STATE,
            EventKind::BreakerState => SB_EVENT_BREAKER_STATE,
            EventKind::HealthCheck => SB_EVENT_HEALTH_CHECK,
            EventKind::Rejected => SB_EVENT_REJECTED,
            EventKind::SessionOpened => SB_EVENT_SESSION_OPENED,
            EventKind::SessionClosed => SB_EVENT_SESSION_CLOSED,
            EventKind::StreamAdded => SB_EVENT_STREAM_ADDED,
            EventKind::StreamRemoved => SB_EVENT_STREAM_REMOVED,
            EventKind::CommitFailed => SB_EVENT_COMMIT_FAILED,
            EventKind::Registered => SB_EVENT_REGISTERED,
            EventKind::Unregistered => SB_EVENT_UNREGISTERED,
            EventKind::Subscribed => SB_EVENT_SUBSCRIBED,
            EventKind::Unsubscribed => SB_EVENT_UNSUBSCRIBED,
            EventKind::SlowConsumer => SB_EVENT_SLOW_CONSUMER,
            EventKind::ResourceState => SB_EVENT_RESOURCE_STATE,
            EventKind::ResourceDetached => SB_EVENT_RESOURCE_DETACHED,
            EventKind::ResourceRebound => SB_EVENT_RESOURCE_REBOUND,
            EventKind::ClusterJoined => SB_EVENT_CLUSTER_JOINED,
            EventKind::ClusterLost => SB_EVENT_CLUSTER_LOST,
            // Kinds added to core before C knows them; never seen in practice, since
            // core and this crate are built together.
            _ => SB_EVENT_REJECTED,
        }
    }
}

/// Size of `sb_event.pool` in bytes, NUL included. Longer names are truncated.
pub const SB_EVENT_POOL_LEN: usize = 128;
/// Size of `sb_event.message` in bytes, NUL included. Longer messages are truncated.
pub const SB_EVENT_MESSAGE_LEN: usize = 512;
/// Size of `sb_event.endpoint` in bytes, NUL included. Longer names are truncated.
pub const SB_EVENT_ENDPOINT_LEN: usize = 256;
/// Size of `sb_event.old_state` and `sb_event.new_state` in bytes, NUL included
/// (every state name fits).
pub const SB_EVENT_STATE_LEN: usize = 32;
/// Size of `sb_event.stream` in bytes, NUL included. Longer names are truncated.
pub const SB_EVENT_STREAM_LEN: usize = 256;
/// Size of `sb_event.topic` in bytes, NUL included. Longer names are truncated.
pub const SB_EVENT_TOPIC_LEN: usize = 256;
/// Size of `sb_event.user` in bytes, NUL included. Longer names are truncated.
pub const SB_EVENT_USER_LEN: usize = 256;
/// Size of `sb_event.reason` in bytes, NUL included. Longer reasons are truncated.
pub const SB_EVENT_REASON_LEN: usize = 256;
/// Size of `sb_event.resource` in bytes, NUL included. Longer ids are truncated.
pub const SB_EVENT_RESOURCE_LEN: usize = 256;

/// One event, filled by value by `sb_manager_poll_event` (no pointers inside; nothing
/// to free). Strings are copied into the fixed arrays, truncated at a UTF-8 character
/// boundary when too long, and always NUL-terminated.
///
/// Versioning as for `sb_pool_stats`: set `struct_size = sizeof(sb_event)` before the
/// call; the library fills only the fields that fit and sets `struct_size` to the
/// number of bytes it filled. Fields are only ever added at the end.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct sb_event {
    /// In: the size of the caller's struct (`sizeof(sb_event)`). Out: the number of
    /// bytes filled.
    pub struct_size: usize,
    /// What happened.
    pub kind: sb_event_kind,
    /// The connection it concerns (the pool's connection id, from 1), or 0 when none.
    pub connection_id: u64,
    /// For `SB_EVENT_LEAK_SUSPECTED`: how long the lease had been held; for
    /// `SB_EVENT_HEALTH_CHECK`: how long the check took; in nanoseconds; 0 when the
    /// kind has no age.
    pub age_ns: u64,
    /// When it happened: wall-clock time in nanoseconds since the Unix epoch (0 if the
    /// clock is before 1970).
    pub time_unix_ns: u64,
    /// The name of the pool it concerns (NUL-terminated, possibly truncated).
    pub pool: [c_char; SB_EVENT_POOL_LEN],
    /// A sentence for humans, the reason (NUL-terminated, possibly truncated).
    pub message: [c_char; SB_EVENT_MESSAGE_LEN],
    /// The endpoint it concerns, as written in the pool's target
    /// (`tcp://host:port`); "" when none. Appended later: check `struct_size`.
    pub endpoint: [c_char; SB_EVENT_ENDPOINT_LEN],
    /// For state changes (`SB_EVENT_CONNECTION_STATE`, `SB_EVENT_ENDPOINT_STATE`,
    /// `SB_EVENT_BREAKER_STATE`): the state before, e.g. "closed" or "connecting"
    /// (the names of `sb_breaker_state_str` and `sb_conn_state_str`); "" when none.
    pub old_state: [c_char; SB_EVENT_STATE_LEN],
    /// For state changes: the state after; for `SB_EVENT_HEALTH_CHECK`: "ok" or
    /// "failed"; "" when none.
    pub new_state: [c_char; SB_EVENT_STATE_LEN],
    /// The session it concerns, or 0 when none.
    pub session_id: u64,
    /// The stream it concerns (NUL-terminated, possibly truncated); "" when none.
    pub stream: [c_char; SB_EVENT_STREAM_LEN],
    /// The registry topic it concerns (`SB_EVENT_SUBSCRIBED`, `SB_EVENT_UNSUBSCRIBED`);
    /// "" when none. Appended later: check `struct_size`.
    pub topic: [c_char; SB_EVENT_TOPIC_LEN],
    /// The registry user it concerns; "" when none.
    pub user: [c_char; SB_EVENT_USER_LEN],
    /// Why: a disconnect reason (`SB_EVENT_UNREGISTERED`), a policy outcome
    /// (`SB_EVENT_SLOW_CONSUMER`), or the limit's key for a registry refusal
    /// (`SB_EVENT_REJECTED`), the error behind a resource's state change
    /// (`SB_EVENT_RESOURCE_STATE`); "" when none.
    pub reason: [c_char; SB_EVENT_REASON_LEN],
    /// The named resource it concerns (`SB_EVENT_RESOURCE_*`; an anonymous one's
    /// `anonymous-<n>`); "" when none. Appended later: check `struct_size`.
    pub resource: [c_char; SB_EVENT_RESOURCE_LEN],
}

impl From<&Event> for sb_event {
    fn from(e: &Event) -> Self {
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let mut out = sb_event {
            struct_size: std::mem::size_of::<sb_event>(),
            kind: e.kind.into(),
            connection_id: e.connection_id.unwrap_or(0),
            age_ns: e.age.map_or(0, ns),
            time_unix_ns: e.time.duration_since(UNIX_EPOCH).map_or(0, ns),
            pool: [0; SB_EVENT_POOL_LEN],
            message: [0; SB_EVENT_MESSAGE_LEN],
            endpoint: [0; SB_EVENT_ENDPOINT_LEN],
            old_state: [0; SB_EVENT_STATE_LEN],
            new_state: [0; SB_EVENT_STATE_LEN],
            session_id: e.session_id.unwrap_or(0),
            stream: [0; SB_EVENT_STREAM_LEN],
            topic: [0; SB_EVENT_TOPIC_LEN],
            user: [0; SB_EVENT_USER_LEN],
            reason: [0; SB_EVENT_REASON_LEN],
            resource: [0; SB_EVENT_RESOURCE_LEN],
        };
        copy_str(&mut out.pool, &e.pool);
        copy_str(&mut out.message, &e.message);
        copy_str(&mut out.endpoint, e.endpoint.as_deref().unwrap_or(""));
        copy_str(&mut out.old_state, e.old_state.unwrap_or(""));
        copy_str(&mut out.new_state, e.new_state.unwrap_or(""));
        copy_str(&mut out.stream, e.stream.as_deref().unwrap_or(""));
        copy_str(&mut out.topic, e.topic.as_deref().unwrap_or(""));
        copy_str(&mut out.user, e.user.as_deref().unwrap_or(""));
        copy_str(&mut out.reason, e.reason.as_deref().unwrap_or(""));
        copy_str(&mut out.resource, e.resource.as_deref().unwrap_or(""));
        out
    }
}

/// Writes the fields of `src` that lie entirely within the first `room` bytes of
/// `out`, field by field (never the padding between them).
fn write_prefix(out: *mut sb_event, src: &sb_event, room: usize) {
    macro_rules! fields {
        ($($f:ident),* $(,)?) => {$(
            let end = std::mem::offset_of!(sb_event, $f) + std::mem::size_of_val(&src.$f);
            if end <= room {
                // SAFETY: the caller of sb_manager_poll_event guarantees `room`
                // writable bytes at `out`, and this field lies within them; the struct
                // is repr(C).
                unsafe { std::ptr::addr_of_mut!((*out).$f).write_unaligned(src.$f) };
            }
        )*};
    }
    fields!(
        struct_size,
        kind,
        connection_id,
        age_ns,
        time_unix_ns,
        pool,
        message,
        endpoint,
        old_state,
        new_state,
        session_id,
        stream,
        topic,
        user,
        reason,
        resource,
    );
}

/// Takes the next event of the manager's queue into `*out`, waiting on the calling
/// thread up to `timeout_ms` milliseconds for one (0: do not wait). Set
/// `out->struct_size = sizeof *out` first.
///
/// Events are queued (up to 10000; newer ones are then dropped and counted, see
/// `sb_manager_events_dropped`) by the pools' upkeep, which runs on switchboard's
/// runtime threads; this call hands them to the program on its own thread, oldest
/// first. Several threads may poll the same manager: each event goes to one of them.
///
/// Returns `SB_OK` with `*out` filled, `SB_TIMEOUT` when no event came within
/// `timeout_ms` (`*out` untouched), `SB_INVALID_ARGUMENT` when `out` is NULL or
/// `out->struct_size` is smaller than `sizeof(size_t)`. Events queued before the
/// manager was closed can still be polled until it is freed.
///
/// # Safety
///
/// `out` must be NULL (rejected) or point to `out->struct_size` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_manager_poll_event(
    manager: *mut sb_manager,
    timeout_ms: u64,
    out: *mut sb_event,
) -> sb_status {
    guard("sb_manager_poll_event", || {
        let m = MANAGERS.get(addr(manager))?;
        check_out(out, "out")?;
        // SAFETY: non-NULL; its first field is readable by the caller's contract.
        let room = unsafe { std::ptr::addr_of!((*out).struct_size).read_unaligned() };
        if room < std::mem::size_of::<usize>() {
            return Err(Error::invalid_argument(format!(
                "out->struct_size must be set to sizeof(sb_event) before the call, got {room}"
            )));
        }
        let Some(event) = m.poll_event(Duration::from_millis(timeout_ms)) else {
            return Err(Error::timeout(format!("no event within {timeout_ms} ms")));
        };
        let mut full = sb_event::from(&event);
        let filled = room.min(std::mem::size_of::<sb_event>());
        full.struct_size = filled;
        write_prefix(out, &full, filled);
        Ok(())
    })
}

/// Stores in `*out` how many events were dropped because the manager's queue was full
/// (nobody polled). Only grows.
///
/// # Safety
///
/// `out` must be NULL (rejected) or point to a writable `uint64_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_manager_events_dropped(
    manager: *const sb_manager,
    out: *mut u64,
) -> sb_status {
    guard("sb_manager_events_dropped", || {
        let m = MANAGERS.get(addr(manager))?;
        check_out(out, "out")?;
        // SAFETY: checked non-NULL above; writable by the caller's contract.
        unsafe { write_out(out, m.events_dropped()) };
        Ok(())
    })
}

/// The stable name of an event kind (`"leak_suspected"`, the same in every language),
/// or `"unknown"` for a number this library does not know. The string is static:
/// never free it.
#[unsafe(no_mangle)]
pub extern "C" fn sb_event_kind_str(kind: i32) -> *const c_char {
    let s: &'static [u8] = match kind {
        1 => b"leak_suspected\0",
        2 => b"connection_state\0",
        3 => b"endpoint_state\0",
        4 => b"breaker_state\0",
        5 => b"health_check\0",
        6 => b"rejected\0",
        7 => b"session_opened\0",
        8 => b"session_closed\0",
        9 => b"stream_added\0",
        10 => b"stream_removed\0",
        11 => b"commit_failed\0",
        12 => b"registered\0",
        13 => b"unregistered\0",
        14 => b"subscribed\0",
        15 => b"unsubscribed\0",
        16 => b"slow_consumer\0",
        17 => b"resource_state\0",
        18 => b"resource_detached\0",
        19 => b"resource_rebound\0",
        20 => b"cluster_joined\0",
        21 => b"cluster_lost\0",
        _ => b"unknown\0",
    };
    s.as_ptr().cast()
}

/// Copies the manager's metrics -- every pool's `switchboard_pool_*` series in the
/// Prometheus / OpenMetrics text format (see the README, "Metrics") -- into `buf` as a
/// NUL-terminated string.
///
/// `*written` (if `written` is not NULL) always receives the size of the whole text
/// including its NUL, whether or not it fit. When it does not fit in `len` bytes,
/// returns `SB_RESOURCE_EXHAUSTED` and copies nothing (`buf[0]` is set to NUL when
/// `len > 0`): call again with a buffer of at least `*written` bytes (a little more,
/// as the text may grow in between). `buf` may be NULL when `len` is 0, to ask for the
/// size. Does not wait; may be called from any thread.
///
/// # Safety
///
/// `buf` must point to `len` writable bytes (or `len` be 0); `written` must be NULL or
/// point to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_manager_metrics(
    manager: *const sb_manager,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> sb_status {
    guard("sb_manager_metrics", || {
        let m = MANAGERS.get(addr(manager))?;
        if buf.is_null() && len > 0 {
            return Err(null_arg("buf"));
        }
        // SAFETY: `len` writable bytes at `buf` (checked non-NULL when len > 0) by the
        // caller's contract.
        let dst = unsafe { bytes_mut(buf.cast::<u8>(), len, "buf") }?;
        let text = m.metrics_text();
        let needed = text.len() + 1;
        if !written.is_null() {
            // SAFETY: non-NULL, writable by the caller's contract.
            unsafe { write_out(written, needed) };
        }
        if needed > dst.len() {
            if let Some(first) = dst.first_mut() {
                *first = 0;
            }
            return Err(Error::new(
                Code::ResourceExhausted,
                format!("the metrics text needs {needed} bytes with its NUL; buf has {len}"),
            ));
        }
        dst[..text.len()].copy_from_slice(text.as_bytes());
        dst[text.len()] = 0;
        Ok(())
    })
}

/// Receives one event (see `sb_manager_set_event_callback`). `event` is valid only
/// during the call: copy what you keep.
#[allow(non_camel_case_types)]
pub type sb_event_fn = Option<unsafe extern "C" fn(userdata: *mut c_void, event: *const sb_event)>;

/// The program's userdata pointer. The program promises (see
/// `sb_manager_set_event_callback`) that it may be used from any thread.
struct UserPtr(*mut c_void);

// SAFETY: the pointer is only passed back to the program's own functions; the header
// documents that the callback and its userdata are used from other threads.
unsafe impl Send for UserPtr {}
// SAFETY: as above; switchboard never dereferences the pointer.
unsafe impl Sync for UserPtr {}

/// A registered callback; dropping the last reference (after the last call) frees the
/// userdata.
struct EventHook {
    cb: unsafe extern "C" fn(*mut c_void, *const sb_event),
    userdata: UserPtr,
    free_userdata: sb_free_fn,
}

impl EventHook {
    fn call(&self, e: &Event) {
        let ev = sb_event::from(e);
        // SAFETY: the program's function with its own userdata and an event valid for
        // the call; an `extern "C"` function cannot unwind.
        unsafe { (self.cb)(self.userdata.0, &ev) }
    }
}

impl Drop for EventHook {
    fn drop(&mut self) {
        if let Some(free) = self.free_userdata {
            // SAFETY: the program's function, called once (this is the last reference,
            // so no call of `cb` runs any more) with the userdata it gave us.
            unsafe { free(self.userdata.0) }
        }
    }
}

/// Sets the function that receives the manager's events instead of the queue of
/// `sb_manager_poll_event` (`cb` NULL: back to the queue). Replaces any previous
/// callback, whose `free_userdata` then runs (see below).
///
/// `cb(userdata, event)` runs on the thread that found the event: one of switchboard's
/// runtime threads (the pools' background upkeep), or the thread calling
/// `sb_pool_run_upkeep`. No library lock is held, and calls of `cb` may run
/// concurrently on several threads. `event` (filled with `struct_size =
/// sizeof(sb_event)`) is valid only during the call. Inside `cb`: non-blocking calls
/// work (`sb_pool_get_stats`, `sb_lease_release`, `sb_manager_metrics`,
/// `sb_manager_set_event_callback`, ...); calls that would wait on the runtime
/// (`sb_pool_acquire` when nothing is idle, `sb_pool_warm`, `sb_pool_run_upkeep`)
/// fail with `SB_FAILED_PRECONDITION` on a runtime thread; never call
/// `sb_manager_close` or `sb_manager_free` from it. Keep it short: it delays the
/// upkeep.
///
/// Ownership of `userdata` passes to the library with this call: `free_userdata` (if
/// not NULL) is called exactly once, after the last call of `cb`, when the callback is
/// replaced or cleared, or when the manager is closed (`sb_manager_close`, or
/// `sb_manager_free` without it); with `cb` NULL or on failure: before this returns.
/// It runs on the thread that lets go last: usually the one making that call, else the
/// thread finishing an in-flight `cb`. A callback set on a closed manager is never
/// called and is let go by `sb_manager_free`.
///
/// Returns `SB_INVALID_HANDLE` for a bad manager.
///
/// # Safety
///
/// `cb` and `free_userdata` must be NULL or functions that may be called from any
/// thread with `userdata`, which must stay valid until `free_userdata` runs (or, without
/// one, until the callback is replaced or cleared and the manager freed).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_manager_set_event_callback(
    manager: *mut sb_manager,
    cb: sb_event_fn,
    userdata: *mut c_void,
    free_userdata: sb_free_fn,
) -> sb_status {
    // Owns the userdata from here on: dropped on every path below (freeing it once).
    let hook = cb.map(|cb| EventHook {
        cb,
        userdata: UserPtr(userdata),
        free_userdata,
    });
    if hook.is_none()
        && let Some(free) = free_userdata
    {
        // SAFETY: the program's function with its own userdata, once: there is no
        // callback to keep it for.
        unsafe { free(userdata) };
    }
    guard("sb_manager_set_event_callback", move || {
        let m = MANAGERS.get(addr(manager))?;
        let new: Option<EventCallback> = hook.map(|h| {
            let h = Arc::new(h);
            Arc::new(move |e: &Event| h.call(e)) as EventCallback
        });
        // The previous hook is dropped here, with no library lock held (a call in
        // flight on another thread keeps it alive until that call returns).
        drop(m.set_event_callback(new));
        Ok(())
    })
}

//! `sb_session_*`: streaming sessions with per-stream offsets (issue 5), on a manager.
//! Sessions are named by `uint64_t` ids, not handles: an unknown or closed id is
//! `SB_NOT_FOUND`. Every check, message and error code comes from core's `Sessions`;
//! this module only translates arguments and the `sb_session_info` / `sb_catalog`
//! snapshots (the only things here the library allocates for the caller).

use std::ffi::c_char;

use switchboard_core::{Error, SessionDetails};

use crate::args::{check_out, num_array, str_arg, str_array, write_opt, write_out};
use crate::error::{guard, sb_status};
use crate::handles::addr;
use crate::manager::{MANAGERS, sb_manager};

mod snapshots;

pub use snapshots::{
    sb_catalog, sb_catalog_free, sb_session_catalog, sb_session_get, sb_session_info,
    sb_session_info_free, sb_session_list, sb_stream_info,
};

/// Registers session key `session_key` of data source `data_source` in the manager's
/// catalog, so that sessions may be opened on it. `*added` (if not NULL) receives
/// true when it is new, false when it was there already.
///
/// Returns `SB_INVALID_ARGUMENT` for an empty or NULL name, `SB_UNAVAILABLE` once the
/// manager is closed.
///
/// # Safety
///
/// `data_source` and `session_key` must be NULL (rejected) or NUL-terminated strings;
/// `added` must be NULL or point to a writable `bool`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_session_register(
    manager: *mut sb_manager,
    data_source: *const c_char,
    session_key: *const c_char,
    added: *mut bool,
) -> sb_status {
    guard("sb_session_register", || {
        let m = MANAGERS.get(addr(manager))?;
        // SAFETY: NUL-terminated strings by the caller's contract.
        let (ds, key) = unsafe {
            (
                str_arg(data_source, "data_source")?,
                str_arg(session_key, "session_key")?,
            )
        };
        let new = m.sessions().register(ds, key)?;
        // SAFETY: NULL or writable by the caller's contract.
        unsafe { write_opt(added, new) };
        Ok(())
    })
}

/// Removes a session key from the catalog. `*removed` (if not NULL) receives true when
/// it was there. Committed offsets stay in the offset store.
///
/// Returns `SB_FAILED_PRECONDITION` while sessions are open on it,
/// `SB_INVALID_ARGUMENT` for an empty or NULL name.
///
/// # Safety
///
/// As `sb_session_register`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_session_unregister(
    manager: *mut sb_manager,
    data_source: *const c_char,
    session_key: *const c_char,
    removed: *mut bool,
) -> sb_status {
    guard("sb_session_unregister", || {
        let m = MANAGERS.get(addr(manager))?;
        // SAFETY: NUL-terminated strings by the caller's contract.
        let (ds, key) = unsafe {
            (
                str_arg(data_source, "data_source")?,
                str_arg(session_key, "session_key")?,
            )
        };
        let gone = m.sessions().unregister(ds, key)?;
        // SAFETY: NULL or writable by the caller's contract.
        unsafe { write_opt(removed, gone) };
        Ok(())
    })
}

/// Stores in `*out` whether the session key is in the catalog.
///
/// # Safety
///
/// `data_source` and `session_key` must be NULL (rejected) or NUL-terminated strings;
/// `out` must be NULL (rejected) or point to a writable `bool`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_session_is_registered(
    manager: *const sb_manager,
    data_source: *const c_char,
    session_key: *const c_char,
    out: *mut bool,
) -> sb_status {
    guard("sb_session_is_registered", || {
        let m = MANAGERS.get(addr(manager))?;
        // SAFETY: NUL-terminated strings by the caller's contract.
        let (ds, key) = unsafe {
            (
                str_arg(data_source, "data_source")?,
                str_arg(session_key, "session_key")?,
            )
        };
        check_out(out, "out")?;
        let yes = m.sessions().is_registered(ds, key)?;
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(out, yes) };
        Ok(())
    })
}

/// Opens a session on `data_source` / `session_key` (registered first with
/// `sb_session_register`) reading `streams_len` streams named in `streams`, each from
/// its offset in `offsets` (`offsets_len` must then equal `streams_len`; 0 and NULL:
/// every stream from 0), and stores its id (unique in the process, never reused) in
/// `*id_out`. `exclude_main_stream` is stored and reported. Emits `session_opened`.
///
/// Returns `SB_INVALID_ARGUMENT` naming the field (empty data source or key, an empty
/// or repeated stream name, an offsets count that does not match, a negative offset),
/// `SB_FAILED_PRECONDITION` for a key that is not registered,
/// `SB_RESOURCE_EXHAUSTED` beyond `sessions.max_total` or `sessions.max_per_key`,
/// `SB_IO` when the durable store cannot be read, `SB_UNAVAILABLE` once the manager is
/// closed. May read the offset store (disk, with `offsets.path`; Redis, with
/// `offsets.store = redis`: then `SB_UNAVAILABLE` or `SB_TIMEOUT` while Redis is away
/// and `SB_FAILED_PRECONDITION` when Redis lost the offsets, its epoch changed).
///
/// # Safety
///
/// `data_source` and `session_key` must be NULL (rejected) or NUL-terminated strings;
/// `streams` must point to `streams_len` such strings (or be NULL with 0); `offsets`
/// must point to `offsets_len` readable `int64_t` (or be NULL with 0); `id_out` must
/// be NULL (rejected) or point to a writable `uint64_t`.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn sb_session_open(
    manager: *mut sb_manager,
    data_source: *const c_char,
    session_key: *const c_char,
    streams: *const *const c_char,
    streams_len: usize,
    offsets: *const i64,
    offsets_len: usize,
    exclude_main_stream: bool,
    id_out: *mut u64,
) -> sb_status {
    guard("sb_session_open", || {
        let m = MANAGERS.get(addr(manager))?;
        // SAFETY: forwarded caller's contract for every pointer argument.
        let (ds, key, names, offs) = unsafe {
            (
                str_arg(data_source, "data_source")?,
                str_arg(session_key, "session_key")?,
                str_array(streams, streams_len, "streams")?,
                num_array(offsets, offsets_len, "stream_offsets")?,
            )
        };
        check_out(id_out, "id_out")?;
        let details = SessionDetails::new(ds, key)
            .streams(names)
            .offsets(offs)
            .exclude_main_stream(exclude_main_stream);
        let id = m.sessions().open(&details)?;
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(id_out, id) };
        Ok(())
    })
}

/// Opens a session like `sb_session_open` with each stream at its committed offset in
/// the offset store (0 for a stream never committed), e.g. after a restart. Same
/// errors; emits `session_opened` (its message says "resumed").
///
/// # Safety
///
/// As `sb_session_open`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_session_resume(
    manager: *mut sb_manager,
    data_source: *const c_char,
    session_key: *const c_char,
    streams: *const *const c_char,
    streams_len: usize,
    exclude_main_stream: bool,
    id_out: *mut u64,
) -> sb_status {
    guard("sb_session_resume", || {
        let m = MANAGERS.get(addr(manager))?;
        // SAFETY: forwarded caller's contract for every pointer argument.
        let (ds, key, names) = unsafe {
            (
                str_arg(data_source, "data_source")?,
                str_arg(session_key, "session_key")?,
                str_array(streams, streams_len, "streams")?,
            )
        };
        check_out(id_out, "id_out")?;
        let id = m.sessions().resume(ds, key, &names, exclude_main_stream)?;
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(id_out, id) };
        Ok(())
    })
}

/// Closes session `id`; its committed offsets stay in the store. Emits
/// `session_closed`. Returns `SB_NOT_FOUND` for an id that is not open.
#[unsafe(no_mangle)]
pub extern "C" fn sb_session_close(manager: *mut sb_manager, id: u64) -> sb_status {
    guard("sb_session_close", || {
        MANAGERS.get(addr(manager))?.sessions().close(id)
    })
}

/// Adds stream `stream` to live session `id`, starting at `offset`. Emits
/// `stream_added`. Returns `SB_INVALID_ARGUMENT` for an empty name, a negative offset
/// or a name already in the session, `SB_NOT_FOUND` for an unknown id.
///
/// # Safety
///
/// `stream` must be NULL (rejected) or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_session_add_stream(
    manager: *mut sb_manager,
    id: u64,
    stream: *const c_char,
    offset: i64,
) -> sb_status {
    guard("sb_session_add_stream", || {
        let m = MANAGERS.get(addr(manager))?;
        // SAFETY: NUL-terminated by the caller's contract.
        let stream = unsafe { str_arg(stream, "stream") }?;
        m.sessions().add_stream(id, stream, offset)
    })
}

/// Removes stream `stream` from session `id`. Emits `stream_removed`. Returns
/// `SB_NOT_FOUND` for an unknown id or stream.
///
/// # Safety
///
/// `stream` must be NULL (rejected) or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_session_remove_stream(
    manager: *mut sb_manager,
    id: u64,
    stream: *const c_char,
) -> sb_status {
    guard("sb_session_remove_stream", || {
        let m = MANAGERS.get(addr(manager))?;
        // SAFETY: NUL-terminated by the caller's contract.
        let stream = unsafe { str_arg(stream, "stream") }?;
        m.sessions().remove_stream(id, stream)
    })
}

/// Counts `packets` data packets of `bytes` bytes read from the source for `stream`
/// of session `id`, `essential` of them essential. Does not move the position.
/// Returns `SB_NOT_FOUND` for an unknown id or stream.
///
/// # Safety
///
/// `stream` must be NULL (rejected) or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_session_record_read(
    manager: *mut sb_manager,
    id: u64,
    stream: *const c_char,
    packets: u64,
    bytes: u64,
    essential: u64,
) -> sb_status {
    guard("sb_session_record_read", || {
        let m = MANAGERS.get(addr(manager))?;
        // SAFETY: NUL-terminated by the caller's contract.
        let stream = unsafe { str_arg(stream, "stream") }?;
        m.sessions()
            .record_read(id, stream, packets, bytes, essential)
    })
}

/// Counts `packets` data packets of `bytes` bytes delivered to the client on `stream`
/// (`essential` of them essential) and advances the stream's position by `packets`;
/// `*position_out` (if not NULL) receives the new position. Returns `SB_NOT_FOUND` for
/// an unknown id or stream.
///
/// # Safety
///
/// `stream` must be NULL (rejected) or a NUL-terminated string; `position_out` must
/// be NULL or point to a writable `int64_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_session_deliver(
    manager: *mut sb_manager,
    id: u64,
    stream: *const c_char,
    packets: u64,
    bytes: u64,
    essential: u64,
    position_out: *mut i64,
) -> sb_status {
    guard("sb_session_deliver", || {
        let m = MANAGERS.get(addr(manager))?;
        // SAFETY: NUL-terminated by the caller's contract.
        let stream = unsafe { str_arg(stream, "stream") }?;
        let pos = m
            .sessions()
            .deliver(id, stream, packets, bytes, essential)?;
        // SAFETY: NULL or writable by the caller's contract.
        unsafe { write_opt(position_out, pos) };
        Ok(())
    })
}

/// Counts `messages` router (control) messages of `bytes` bytes received on session
/// `id`. Returns `SB_NOT_FOUND` for an unknown id.
#[unsafe(no_mangle)]
pub extern "C" fn sb_session_record_router(
    manager: *mut sb_manager,
    id: u64,
    messages: u64,
    bytes: u64,
) -> sb_status {
    guard("sb_session_record_router", || {
        MANAGERS
            .get(addr(manager))?
            .sessions()
            .record_router(id, messages, bytes)
    })
}

/// Stores the position (next offset to deliver) of `stream` of session `id` in
/// `*out`. Returns `SB_NOT_FOUND` for an unknown id or stream.
///
/// # Safety
///
/// `stream` must be NULL (rejected) or a NUL-terminated string; `out` must be NULL
/// (rejected) or point to a writable `int64_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_session_position(
    manager: *const sb_manager,
    id: u64,
    stream: *const c_char,
    out: *mut i64,
) -> sb_status {
    guard("sb_session_position", || {
        let m = MANAGERS.get(addr(manager))?;
        // SAFETY: NUL-terminated by the caller's contract.
        let stream = unsafe { str_arg(stream, "stream") }?;
        check_out(out, "out")?;
        let pos = m.sessions().position(id, stream)?;
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(out, pos) };
        Ok(())
    })
}

/// Commits `offset` for `stream` of session `id`: the offset a resumed session starts
/// from, written to the offset store (keyed by data source, session key and stream).
/// With a durable store (`offsets.path`) and `offsets.sync = every_commit` (the
/// default) it is on disk when this returns `SB_OK`: it blocks on a write and fsync.
///
/// Commits never go backwards: an offset below the stream's last commit in this
/// session (or, before the first, below where it started or was last
/// `sb_session_seek`ed to) returns `SB_FAILED_PRECONDITION` and emits
/// `commit_failed`. Returns `SB_INVALID_ARGUMENT` for a negative offset,
/// `SB_NOT_FOUND` for an unknown id or stream, `SB_IO` when the store fails (also a
/// `commit_failed` event); with `offsets.store = redis`, `SB_UNAVAILABLE` or
/// `SB_TIMEOUT` while Redis is away (nothing acknowledged) and `SB_FAILED_PRECONDITION`
/// when Redis lost the offsets (docs/cluster.md).
///
/// # Safety
///
/// `stream` must be NULL (rejected) or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_session_commit(
    manager: *mut sb_manager,
    id: u64,
    stream: *const c_char,
    offset: i64,
) -> sb_status {
    guard("sb_session_commit", || {
        let m = MANAGERS.get(addr(manager))?;
        // SAFETY: NUL-terminated by the caller's contract.
        let stream = unsafe { str_arg(stream, "stream") }?;
        m.sessions().commit(id, stream, offset)
    })
}

/// Moves the position of `stream` of session `id` to `offset` and lets the next
/// commit go down to it (rewinding on purpose). Stores nothing. Returns
/// `SB_INVALID_ARGUMENT` for a negative offset, `SB_NOT_FOUND` for an unknown id or
/// stream.
///
/// # Safety
///
/// `stream` must be NULL (rejected) or a NUL-terminated string.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_session_seek(
    manager: *mut sb_manager,
    id: u64,
    stream: *const c_char,
    offset: i64,
) -> sb_status {
    guard("sb_session_seek", || {
        let m = MANAGERS.get(addr(manager))?;
        // SAFETY: NUL-terminated by the caller's contract.
        let stream = unsafe { str_arg(stream, "stream") }?;
        m.sessions().seek(id, stream, offset)
    })
}

/// Stores in `*out` the offset committed in the store for `stream` of `data_source` /
/// `session_key`, whether or not a session is open on it; -1 when it was never
/// committed. May read the disk. Returns `SB_IO` when the store cannot be read.
///
/// # Safety
///
/// The strings must be NULL (rejected) or NUL-terminated; `out` must be NULL
/// (rejected) or point to a writable `int64_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_session_committed(
    manager: *const sb_manager,
    data_source: *const c_char,
    session_key: *const c_char,
    stream: *const c_char,
    out: *mut i64,
) -> sb_status {
    guard("sb_session_committed", || {
        let m = MANAGERS.get(addr(manager))?;
        // SAFETY: NUL-terminated strings by the caller's contract.
        let (ds, key, stream) = unsafe {
            (
                str_arg(data_source, "data_source")?,
                str_arg(session_key, "session_key")?,
                str_arg(stream, "stream")?,
            )
        };
        check_out(out, "out")?;
        let v = m.sessions().committed(ds, key, stream)?;
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(out, v.unwrap_or(-1)) };
        Ok(())
    })
}

/// Writes commits buffered by `offsets.sync = interval` to disk now (a no-op
/// otherwise). Blocks on the write. Returns `SB_IO` when the store fails.
#[unsafe(no_mangle)]
pub extern "C" fn sb_session_flush(manager: *mut sb_manager) -> sb_status {
    guard("sb_session_flush", || {
        MANAGERS.get(addr(manager))?.sessions().flush()
    })
}

/// Stores how many sessions are open now in `*out` (0 after the manager closed).
///
/// # Safety
///
/// `out` must be NULL (rejected) or point to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_session_open_count(
    manager: *const sb_manager,
    out: *mut usize,
) -> sb_status {
    guard("sb_session_open_count", || {
        let m = MANAGERS.get(addr(manager))?;
        check_out(out, "out")?;
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(out, m.sessions().open_count()) };
        Ok(())
    })
}

/// Stores how many commits were accepted but are not on disk yet (`offsets.sync =
/// interval`; else 0) in `*out`.
///
/// # Safety
///
/// `out` must be NULL (rejected) or point to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_session_buffered_commits(
    manager: *const sb_manager,
    out: *mut usize,
) -> sb_status {
    guard("sb_session_buffered_commits", || {
        let m = MANAGERS.get(addr(manager))?;
        check_out(out, "out")?;
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(out, m.sessions().buffered_commits()) };
        Ok(())
    })
}

/// Stores the kind of offset store in `*out`: the static string `"memory"`,
/// `"durable"` or `"redis"` (never free it).
///
/// # Safety
///
/// `out` must be NULL (rejected) or point to a writable `const char *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_session_store_kind(
    manager: *const sb_manager,
    out: *mut *const c_char,
) -> sb_status {
    guard("sb_session_store_kind", || {
        let m = MANAGERS.get(addr(manager))?;
        check_out(out, "out")?;
        let s: &'static [u8] = match m.sessions().store_kind() {
            "durable" => b"durable\0",
            "memory" => b"memory\0",
            "redis" => b"redis\0",
            other => {
                return Err(Error::internal(format!(
                    "unknown offset store kind {other}"
                )));
            }
        };
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(out, s.as_ptr().cast()) };
        Ok(())
    })
}

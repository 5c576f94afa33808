//! The sessions' snapshots handed to C: the list of ids, `sb_session_info` (with its
//! streams) and the catalog, each allocated here and freed by its `_free`.

use std::ffi::{CString, c_char};

use switchboard_core::Error;
use switchboard_core::sessions::SessionInfo;

use crate::args::{c_string, check_out, opt_str, write_out};
use crate::error::{guard, null_arg, sb_status};
use crate::handles::addr;
use crate::manager::{MANAGERS, sb_manager};
use crate::snapshot_table::{SnapshotTable, not_live};

/// Stores in `ids[0..*count]` the ids of the open sessions, sorted, only those of
/// `data_source` and/or `session_key` when not NULL. `*count` always receives how
/// many there are; when more than `len`, returns `SB_RESOURCE_EXHAUSTED` and writes
/// no id (ask again with a larger array; `ids` may be NULL with `len` 0 to ask for
/// the count). Details of each come from `sb_session_get`.
///
/// # Safety
///
/// `data_source` and `session_key` must be NULL or NUL-terminated strings; `ids` must
/// point to `len` writable `uint64_t` (or be NULL with 0); `count` must be NULL
/// (rejected) or point to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_session_list(
    manager: *const sb_manager,
    data_source: *const c_char,
    session_key: *const c_char,
    ids: *mut u64,
    len: usize,
    count: *mut usize,
) -> sb_status {
    guard("sb_session_list", || {
        let m = MANAGERS.get(addr(manager))?;
        // SAFETY: NULL or NUL-terminated strings by the caller's contract.
        let (ds, key) = unsafe {
            (
                opt_str(data_source, "data_source")?,
                opt_str(session_key, "session_key")?,
            )
        };
        check_out(count, "count")?;
        if ids.is_null() && len > 0 {
            return Err(null_arg("ids"));
        }
        let found: Vec<u64> = m.sessions().list(ds, key)?.iter().map(|s| s.id).collect();
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(count, found.len()) };
        if found.len() > len {
            return Err(Error::new(
                switchboard_core::Code::ResourceExhausted,
                format!("{} sessions match; ids has room for {len}", found.len()),
            ));
        }
        for (i, id) in found.into_iter().enumerate() {
            // SAFETY: i < len writable values by the caller's contract.
            unsafe { ids.add(i).write(id) };
        }
        Ok(())
    })
}

/// One stream of an `sb_session_info` (see `sb_session_get`). Its strings belong to the
/// snapshot. This struct is never extended (new per-stream data would come as a new
/// array at the end of `sb_session_info`), so `streams[i]` indexing stays valid.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct sb_stream_info {
    /// The stream's name (NUL-terminated).
    pub name: *const c_char,
    /// The next offset to deliver.
    pub position: i64,
    /// The committed offset (safe to resume from): the last one this session committed,
    /// else the one in the store when the stream was opened; -1 when none.
    pub committed: i64,
    /// Data packets read from the source.
    pub data_packets_read: u64,
    /// Bytes of those packets.
    pub data_bytes_read: u64,
    /// Data packets delivered to the client.
    pub data_packets_delivered: u64,
    /// Bytes of those packets.
    pub data_bytes_delivered: u64,
    /// Essential packets read.
    pub essential_packets_read: u64,
    /// Essential packets delivered.
    pub essential_packets_delivered: u64,
}

/// A snapshot of one session, made by `sb_session_get` and freed (once) by
/// `sb_session_info_free`; its strings and `streams` array live as long as it does.
/// Fields may be added at the end in later versions (the library allocates it, so a
/// program built against this header keeps working); `struct_size` says how large the
/// library's struct is.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug)]
pub struct sb_session_info {
    /// The size of this struct as allocated by the library.
    pub struct_size: usize,
    /// The session's id.
    pub id: u64,
    /// The data source (NUL-terminated).
    pub data_source: *const c_char,
    /// The session key (NUL-terminated).
    pub session_key: *const c_char,
    /// Whether the main stream is left out.
    pub exclude_main_stream: bool,
    /// Router (control) messages received on the session.
    pub router_messages_received: u64,
    /// Bytes of those messages.
    pub router_bytes_received: u64,
    /// How many streams `streams` holds.
    pub streams_len: usize,
    /// The streams, in the order they were opened or added (NULL when there are none).
    pub streams: *const sb_stream_info,
}

/// The allocation behind an `sb_session_info *`: the C struct first, then what its
/// pointers point into.
#[repr(C)]
struct InfoBox {
    info: sb_session_info,
    _strings: Vec<CString>,
    _streams: Vec<sb_stream_info>,
}

// SAFETY: the raw pointers in the snapshot point into the box's own, immutable
// strings and vector; nothing is shared with other objects.
unsafe impl Send for InfoBox {}

/// What a snapshot pointer handed to C is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Snapshot {
    Session,
    Catalog,
}

/// Snapshots handed out and not yet freed.
static LIVE: SnapshotTable<Snapshot> = SnapshotTable::new();

fn snapshot(s: &SessionInfo) -> *mut sb_session_info {
    let mut strings = Vec::with_capacity(2 + s.streams.len());
    let ds = c_string(&s.data_source);
    let key = c_string(&s.session_key);
    let (ds_p, key_p) = (ds.as_ptr(), key.as_ptr());
    strings.push(ds);
    strings.push(key);
    let mut streams = Vec::with_capacity(s.streams.len());
    for st in &s.streams {
        let name = c_string(&st.name);
        // The CString's heap buffer does not move when the CString is moved into the
        // vector.
        let name_p = name.as_ptr();
        strings.push(name);
        let c = &st.counters;
        streams.push(sb_stream_info {
            name: name_p,
            position: st.position,
            committed: st.committed.unwrap_or(-1),
            data_packets_read: c.data_packets_read,
            data_bytes_read: c.data_bytes_read,
            data_packets_delivered: c.data_packets_delivered,
            data_bytes_delivered: c.data_bytes_delivered,
            essential_packets_read: c.essential_packets_read,
            essential_packets_delivered: c.essential_packets_delivered,
        });
    }
    let b = Box::new(InfoBox {
        info: sb_session_info {
            struct_size: std::mem::size_of::<sb_session_info>(),
            id: s.id,
            data_source: ds_p,
            session_key: key_p,
            exclude_main_stream: s.exclude_main_stream,
            router_messages_received: s.router_messages_received,
            router_bytes_received: s.router_bytes_received,
            streams_len: streams.len(),
            streams: if streams.is_empty() {
                std::ptr::null()
            } else {
                streams.as_ptr()
            },
        },
        _strings: strings,
        // The vector's buffer does not move when the vector is moved into the box.
        _streams: streams,
    });
    let p = Box::into_raw(b).cast::<sb_session_info>();
    LIVE.remember(p as usize, Snapshot::Session);
    p
}

/// Stores in `*out` a snapshot of session `id`: its data source, key, streams with
/// their positions, committed offsets and counters, and router counters. Free it with
/// `sb_session_info_free` (once). Returns `SB_NOT_FOUND` for an id that is not open.
///
/// # Safety
///
/// `out` must be NULL (rejected) or point to a writable `sb_session_info *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_session_get(
    manager: *const sb_manager,
    id: u64,
    out: *mut *mut sb_session_info,
) -> sb_status {
    guard("sb_session_get", || {
        let m = MANAGERS.get(addr(manager))?;
        check_out(out, "out")?;
        let info = m.sessions().get(id)?;
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(out, snapshot(&info)) };
        Ok(())
    })
}

/// Frees a snapshot made by `sb_session_get`. NULL is a no-op (`SB_OK`); a pointer
/// that is not a live snapshot (freed already, or never one) returns
/// `SB_INVALID_HANDLE` and frees nothing.
#[unsafe(no_mangle)]
pub extern "C" fn sb_session_info_free(info: *mut sb_session_info) -> sb_status {
    guard("sb_session_info_free", || {
        if info.is_null() {
            return Ok(());
        }
        if !LIVE.forget(info as usize, Snapshot::Session) {
            return Err(not_live("sb_session_info", "sb_session_get"));
        }
        // SAFETY: a pointer made by Box::into_raw in `snapshot` (the registry says so)
        // and not freed since (it was still registered); `info` is the first field of
        // the repr(C) InfoBox.
        drop(unsafe { Box::from_raw(info.cast::<InfoBox>()) });
        Ok(())
    })
}

/// The session keys in the manager's catalog, made by `sb_session_catalog` and freed
/// (once) by `sb_catalog_free`. Sorted by data source, then key.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug)]
pub struct sb_catalog {
    /// How many entries there are.
    pub len: usize,
    /// `len` data source names (NUL-terminated; NULL when `len` is 0).
    pub data_sources: *const *const c_char,
    /// `len` session keys, `session_keys[i]` belonging to `data_sources[i]`.
    pub session_keys: *const *const c_char,
}

#[repr(C)]
struct CatalogBox {
    cat: sb_catalog,
    _strings: Vec<CString>,
    _ds: Vec<*const c_char>,
    _keys: Vec<*const c_char>,
}

/// Stores in `*out` the catalog's registered (data source, session key) pairs. Free it
/// with `sb_catalog_free` (once).
///
/// # Safety
///
/// `out` must be NULL (rejected) or point to a writable `sb_catalog *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_session_catalog(
    manager: *const sb_manager,
    out: *mut *mut sb_catalog,
) -> sb_status {
    guard("sb_session_catalog", || {
        let m = MANAGERS.get(addr(manager))?;
        check_out(out, "out")?;
        let pairs = m.sessions().catalog()?;
        let mut strings = Vec::with_capacity(pairs.len() * 2);
        let mut ds = Vec::with_capacity(pairs.len());
        let mut keys = Vec::with_capacity(pairs.len());
        for (d, k) in &pairs {
            let (d, k) = (c_string(d), c_string(k));
            ds.push(d.as_ptr());
            keys.push(k.as_ptr());
            strings.push(d);
            strings.push(k);
        }
        let ptr = |v: &Vec<*const c_char>| {
            if v.is_empty() {
                std::ptr::null()
            } else {
                v.as_ptr()
            }
        };
        let b = Box::new(CatalogBox {
            cat: sb_catalog {
                len: pairs.len(),
                data_sources: ptr(&ds),
                session_keys: ptr(&keys),
            },
            _strings: strings,
            _ds: ds,
            _keys: keys,
        });
        let p = Box::into_raw(b).cast::<sb_catalog>();
        LIVE.remember(p as usize, Snapshot::Catalog);
        // SAFETY: checked non-NULL; writable by the caller's contract.
        unsafe { write_out(out, p) };
        Ok(())
    })
}

/// Frees a catalog made by `sb_session_catalog`. NULL is a no-op (`SB_OK`); a pointer
/// that is not a live catalog returns `SB_INVALID_HANDLE` and frees nothing.
#[unsafe(no_mangle)]
pub extern "C" fn sb_catalog_free(catalog: *mut sb_catalog) -> sb_status {
    guard("sb_catalog_free", || {
        if catalog.is_null() {
            return Ok(());
        }
        if !LIVE.forget(catalog as usize, Snapshot::Catalog) {
            return Err(not_live("sb_catalog", "sb_session_catalog"));
        }
        // SAFETY: made by Box::into_raw in sb_session_catalog and not freed since (it
        // was registered); `cat` is the first field of the repr(C) CatalogBox.
        drop(unsafe { Box::from_raw(catalog.cast::<CatalogBox>()) });
        Ok(())
    })
}

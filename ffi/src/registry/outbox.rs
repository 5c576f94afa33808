//! Outbox connections: registered with `sb_registry_register_outbox`, drained by the
//! program on its own thread with `sb_registry_next`, kept here by id until
//! `sb_registry_outbox_free` or `sb_manager_free` (`forget_manager`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchboard_core::registry::{Item, Outbox};
use switchboard_core::{Error, Result};

use super::register::{registration, sb_registration};
use crate::args::{bytes_mut, check_out, write_out};
use crate::error::{guard, sb_status};
use crate::handles::addr;
use crate::manager::{MANAGERS, sb_manager};

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

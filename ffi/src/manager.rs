//! `sb_manager`: the root object, owning the runtime and the pools.

use std::time::Duration;

use switchboard_core::Manager;

use crate::args::{check_out, write_out};
use crate::config::{sb_config, snapshot};
use crate::error::{guard, sb_status};
use crate::handles::{Slab, Tag, addr, to_ptr};

/// The root object: owns switchboard's runtime (its own threads) and the pools.
/// Create one per process with `sb_manager_new`; free it with `sb_manager_free`.
#[allow(non_camel_case_types)]
pub struct sb_manager {
    _opaque: [u8; 0],
}

pub(crate) static MANAGERS: Slab<Manager> = Slab::new(Tag::Manager);

/// Creates a manager with settings from `cfg` (NULL: all defaults) and stores its
/// handle in `*out`. Its `runtime.*` keys size the runtime; its `pool.*` and `tcp.*`
/// keys are the defaults of every pool it creates. Starts the runtime's threads
/// (`runtime.worker_threads`, default 2).
///
/// # Safety
///
/// `out` must be NULL (rejected) or point to a writable `sb_manager *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_manager_new(
    cfg: *const sb_config,
    out: *mut *mut sb_manager,
) -> sb_status {
    guard("sb_manager_new", || {
        check_out(out, "out")?;
        let config = snapshot(cfg)?;
        let manager = Manager::new(&config)?;
        let id = MANAGERS.insert(manager)?;
        // SAFETY: checked non-NULL above; writable by the caller's contract.
        unsafe { write_out(out, to_ptr(id)) };
        Ok(())
    })
}

/// Closes the manager: new calls on it and on its pools fail with `SB_UNAVAILABLE`,
/// callers waiting in `sb_pool_acquire` are woken with `SB_UNAVAILABLE`, leases still
/// out get up to `timeout_ms` milliseconds to be released, then every connection is
/// closed and the runtime's threads are stopped and joined. Blocks the calling thread
/// for at most about `timeout_ms`. Closing twice is a no-op (`SB_OK`). Once the
/// runtime is stopped, the event callback is let go (its `free_userdata` runs).
/// Returns `SB_FAILED_PRECONDITION` when called on one of the manager's own threads
/// (from a callback).
///
/// The handle stays valid (calls on it fail with `SB_UNAVAILABLE`) until
/// `sb_manager_free`; pool and lease handles still need their own `_free` /
/// `_release`. A lease still out after the timeout keeps its socket until it is
/// released, which then closes it.
#[unsafe(no_mangle)]
pub extern "C" fn sb_manager_close(manager: *mut sb_manager, timeout_ms: u64) -> sb_status {
    guard("sb_manager_close", || {
        let m = MANAGERS.get(addr(manager))?;
        m.close(Duration::from_millis(timeout_ms))
    })
}

/// Frees a manager, closing it first if `sb_manager_close` was not called (without
/// waiting for leases: like `sb_manager_close(manager, 0)`); closing releases the
/// event callback (its `free_userdata` runs). NULL is a no-op
/// (`SB_OK`); a manager already freed returns `SB_INVALID_HANDLE`.
#[unsafe(no_mangle)]
pub extern "C" fn sb_manager_free(manager: *mut sb_manager) -> sb_status {
    guard("sb_manager_free", || {
        if !manager.is_null() {
            let m = MANAGERS.remove(addr(manager))?;
            // Close here, on the caller's thread, even if another thread is still
            // inside a call on this manager (that call then ends with
            // SB_UNAVAILABLE). Closing can only fail on a runtime thread, which a C
            // caller never is; the handle is gone either way.
            let _ = m.close(Duration::ZERO);
            // The registry's outboxes and authentication hook (its free_userdata runs
            // here, on the caller's thread).
            crate::registry::forget_manager(addr(manager));
            drop(m.registry().set_authenticator(None));
            // Closing let go of the event callback; one set after the close is let go
            // here, so that its free_userdata runs by the time this returns (or right
            // after a call still running in another thread's sb_pool_run_upkeep).
            drop(m.set_event_callback(None));
        }
        Ok(())
    })
}

/// Moves the manager's manual clock (`runtime.clock = manual`) forward by `ms`
/// milliseconds: breakers, backoff, health and the registry's heartbeats and
/// staleness see the time pass (then `sb_registry_cleanup` runs the pass at once).
/// Returns `SB_FAILED_PRECONDITION` for a manager on the system clock (the default).
#[unsafe(no_mangle)]
pub extern "C" fn sb_manager_advance_clock(manager: *mut sb_manager, ms: u64) -> sb_status {
    guard("sb_manager_advance_clock", || {
        MANAGERS
            .get(addr(manager))?
            .advance_clock(Duration::from_millis(ms))
    })
}

//! `sb_pool`: a bounded pool of connections to one target.

use std::ffi::c_char;
use std::time::Duration;

use switchboard_core::{AcquireOptions, Pool, TcpConnector};

use crate::args::{check_out, str_arg, write_out};
use crate::config::{sb_config, snapshot};
use crate::error::{guard, sb_status};
use crate::handles::{Slab, Tag, addr, to_ptr};
use crate::lease::{LeaseObj, sb_lease};
use crate::manager::{MANAGERS, sb_manager};

/// A pool of connections to one target, created by `sb_pool_new`, freed by
/// `sb_pool_free`. `sb_pool_acquire` may be called on the same pool from many threads
/// at once.
#[allow(non_camel_case_types)]
pub struct sb_pool {
    _opaque: [u8; 0],
}

/// The pool behind a handle; freeing the handle closes the pool.
pub(crate) struct PoolObj(pub(crate) Pool<TcpConnector>);

impl Drop for PoolObj {
    fn drop(&mut self) {
        self.0.close();
    }
}

pub(crate) static POOLS: Slab<PoolObj> = Slab::new(Tag::Pool);

/// Creates a pool named `name` (unique within the manager) of connections to
/// `target` (`tcp://host:port`, `unix:///path`, or several separated by commas), and
/// stores its handle in `*out`. `cfg` (NULL: none) overrides the manager's `pool.*`
/// and `tcp.*` keys for this pool. No connection is opened until the first acquire.
///
/// Returns `SB_INVALID_ARGUMENT` for a malformed target or a name already in use,
/// `SB_UNAVAILABLE` once the manager is closed.
///
/// # Safety
///
/// `name` and `target` must be NULL (rejected) or NUL-terminated strings; `out` must
/// be NULL (rejected) or point to a writable `sb_pool *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_pool_new(
    manager: *mut sb_manager,
    name: *const c_char,
    target: *const c_char,
    cfg: *const sb_config,
    out: *mut *mut sb_pool,
) -> sb_status {
    guard("sb_pool_new", || {
        let m = MANAGERS.get(addr(manager))?;
        // SAFETY: NUL-terminated strings by the caller's contract.
        let name = unsafe { str_arg(name, "name") }?;
        // SAFETY: as above.
        let target = unsafe { str_arg(target, "target") }?;
        check_out(out, "out")?;
        let config = snapshot(cfg)?;
        let pool = m.pool(name, target, &config)?;
        let id = POOLS.insert(PoolObj(pool))?;
        // SAFETY: checked non-NULL above; writable by the caller's contract.
        unsafe { write_out(out, to_ptr(id)) };
        Ok(())
    })
}

/// Acquires a connection and stores its lease in `*out`: an idle connection at once if
/// there is one, else waits (on the calling thread) for one to be released or
/// opened, up to `timeout_ms` milliseconds (negative: the pool's
/// `pool.acquire_timeout`, default 30 s; 0: do not wait, though a connection may still
/// be opened in the background for a later call).
///
/// Returns `SB_TIMEOUT` when the deadline passes (`sb_last_error` names the pool and
/// its counts), `SB_UNAVAILABLE` or `SB_IO` when the connection cannot be opened (the
/// message names the address), `SB_RESOURCE_EXHAUSTED` when `pool.max_waiters`
/// callers already wait, `SB_UNAVAILABLE` once the pool or its manager is closed.
/// `*out` is written only on `SB_OK`; release the lease with `sb_lease_release` (or
/// `sb_lease_discard`).
///
/// # Safety
///
/// `out` must be NULL (rejected) or point to a writable `sb_lease *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_pool_acquire(
    pool: *mut sb_pool,
    timeout_ms: i64,
    out: *mut *mut sb_lease,
) -> sb_status {
    guard("sb_pool_acquire", || {
        let p = POOLS.get(addr(pool))?;
        check_out(out, "out")?;
        let opts = AcquireOptions {
            timeout: u64::try_from(timeout_ms).ok().map(Duration::from_millis),
            ..AcquireOptions::default()
        };
        let lease = p.0.acquire_blocking(opts)?;
        // If the table is full the lease is dropped here, which releases it.
        let id = crate::lease::LEASES.insert(LeaseObj::new(lease))?;
        // SAFETY: checked non-NULL above; writable by the caller's contract.
        unsafe { write_out(out, to_ptr(id)) };
        Ok(())
    })
}

/// Takes an idle connection if one is ready, without waiting and without opening one.
/// On `SB_OK`, `*out` is the lease, or NULL when no connection was idle (or other
/// callers are already waiting, who go first). `sb_lease_release(NULL)` is a no-op,
/// so the result may be released either way.
///
/// # Safety
///
/// `out` must be NULL (rejected) or point to a writable `sb_lease *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_pool_try_acquire(
    pool: *mut sb_pool,
    out: *mut *mut sb_lease,
) -> sb_status {
    guard("sb_pool_try_acquire", || {
        let p = POOLS.get(addr(pool))?;
        check_out(out, "out")?;
        let handle = match p.0.try_acquire()? {
            Some(lease) => to_ptr(crate::lease::LEASES.insert(LeaseObj::new(lease))?),
            None => std::ptr::null_mut(),
        };
        // SAFETY: checked non-NULL above; writable by the caller's contract.
        unsafe { write_out(out, handle) };
        Ok(())
    })
}

/// Closes and frees a pool: its idle connections close now; leases still out stay
/// valid and their connections close when they are released. Its name may then be
/// reused. NULL is a no-op (`SB_OK`); a pool already freed returns
/// `SB_INVALID_HANDLE`.
#[unsafe(no_mangle)]
pub extern "C" fn sb_pool_free(pool: *mut sb_pool) -> sb_status {
    guard("sb_pool_free", || {
        if !pool.is_null() {
            let p = POOLS.remove(addr(pool))?;
            // Close now, even if another thread is still inside a call on this pool
            // (its acquire then fails with SB_UNAVAILABLE).
            p.0.close();
        }
        Ok(())
    })
}

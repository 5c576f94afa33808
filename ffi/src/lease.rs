//! `sb_lease`: one checked-out connection.

use std::ffi::{c_char, c_int, c_void};
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use switchboard_core::{AnyConn, AnyConnector, Error, Lease, Socket};

use crate::args::{bytes, bytes_mut, check_out, copy_str_out, write_out};
use crate::connector::CConn;
use crate::error::{guard, sb_status};
use crate::handles::{LocalCache, LocalFree, Slab, Tag, addr};

/// A connection checked out of a pool by `sb_pool_acquire`. Use it from one thread at
/// a time; give it back with `sb_lease_release` (or close it with
/// `sb_lease_discard`) exactly once.
#[allow(non_camel_case_types)]
pub struct sb_lease {
    _opaque: [u8; 0],
}

/// The lease behind a handle. Dropping it returns the connection to its pool, or
/// closes it if the handle was discarded. It is dropped where it lies in the handle
/// table (see `handles`), so the ~100-byte lease is copied once per acquire (into the
/// table) and never on release.
pub(crate) struct LeaseObj {
    /// Taken only in `drop`.
    lease: ManuallyDrop<Lease<AnyConnector<CConn>>>,
    discard: AtomicBool,
}

impl LeaseObj {
    #[inline]
    pub(crate) fn new(lease: Lease<AnyConnector<CConn>>) -> Self {
        LeaseObj {
            lease: ManuallyDrop::new(lease),
            discard: AtomicBool::new(false),
        }
    }

    fn conn(&self) -> &AnyConn<CConn> {
        &self.lease
    }

    fn lease(&self) -> &Lease<AnyConnector<CConn>> {
        &self.lease
    }

    /// The socket; FailedPrecondition for a lease of a custom pool.
    fn socket(&self) -> Result<&Socket, Error> {
        self.conn().socket()
    }
}

impl Drop for LeaseObj {
    #[inline]
    fn drop(&mut self) {
        if self.discard.load(Ordering::Acquire) {
            // SAFETY: `lease` is initialised until here and not used after: this is
            // `drop`, and it takes the lease exactly once, on one of the two branches.
            unsafe { ManuallyDrop::take(&mut self.lease) }.discard();
        } else {
            // Released: dropping a `Lease` returns its connection to the pool.
            // SAFETY: as above; dropped in place instead of taken.
            unsafe { ManuallyDrop::drop(&mut self.lease) };
        }
    }
}

// Leases are made and ended on the hot path (every acquire and release), so freed
// lease slots go to a per-thread cache before the shared free list.
thread_local! {
    static LEASE_FREE: LocalFree = const { LocalFree::new(give_back) };
}

fn give_back(slot: *const ()) {
    // SAFETY: only `LEASE_FREE`'s drop calls this, with an address from that cache,
    // which is `LEASES`' alone (`LeaseCache`).
    unsafe { LEASES.give_back(slot) };
}

/// The lease slab's per-thread cache of free slots.
pub(crate) struct LeaseCache;

// SAFETY: `LEASE_FREE` is used by `LEASES` alone, and its `give_back` returns the
// slots to `LEASES`.
unsafe impl LocalCache for LeaseCache {
    #[inline(always)]
    fn with<R>(f: impl FnOnce(&LocalFree) -> R) -> Option<R> {
        LEASE_FREE.try_with(f).ok()
    }
}

pub(crate) static LEASES: Slab<LeaseObj, LeaseCache> = Slab::with_local_cache(Tag::Lease);

/// Stores the connection's id in `*out`: unique within its pool (from 1), never
/// reused; the `connection_id` of events about it (`sb_event`).
///
/// # Safety
///
/// `out` must be NULL (rejected) or point to a writable `uint64_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_lease_id(lease: *const sb_lease, out: *mut u64) -> sb_status {
    guard("sb_lease_id", || {
        let l = LEASES.get(addr(lease))?;
        check_out(out, "out")?;
        let id = l.lease().id();
        // SAFETY: checked non-NULL above; writable by the caller's contract.
        unsafe { write_out(out, id) };
        Ok(())
    })
}

/// Stores the connection's file descriptor in `*out`. The descriptor stays owned by
/// the lease: use it (blocking mode) while you hold the lease; do not close it, and do
/// not use it after `sb_lease_release`. A lease of a custom pool has no descriptor:
/// `SB_FAILED_PRECONDITION` (use `sb_lease_conn`); so do `sb_lease_send*` and
/// `sb_lease_recv` on it.
///
/// # Safety
///
/// `out` must be NULL (rejected) or point to a writable `int`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_lease_fd(lease: *const sb_lease, out: *mut c_int) -> sb_status {
    guard("sb_lease_fd", || {
        let l = LEASES.get(addr(lease))?;
        check_out(out, "out")?;
        let fd = l.socket()?.fd();
        // SAFETY: checked non-NULL above; writable by the caller's contract.
        unsafe { write_out(out, fd) };
        Ok(())
    })
}

/// Stores the program's object (made by the pool's `sb_connector` connect callback)
/// in `*out`. It stays owned by the pool: use it while you hold the lease, and do not
/// close it yourself (`sb_lease_discard` has the pool close it).
///
/// Returns `SB_FAILED_PRECONDITION` for a lease of a socket pool (use `sb_lease_fd`).
///
/// # Safety
///
/// `out` must be NULL (rejected) or point to a writable `void *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_lease_conn(lease: *const sb_lease, out: *mut *mut c_void) -> sb_status {
    guard("sb_lease_conn", || {
        let l = LEASES.get(addr(lease))?;
        check_out(out, "out")?;
        let ptr = l.conn().custom()?.ptr();
        // SAFETY: checked non-NULL above; writable by the caller's contract.
        unsafe { write_out(out, ptr) };
        Ok(())
    })
}

/// Sends bytes from `buf`, blocking until at least one byte is sent, like `send(2)`;
/// `*sent` receives how many (between 1 and `len`; 0 only when `len` is 0). Use
/// `sb_lease_send_all` to send everything.
///
/// # Safety
///
/// `buf` must point to `len` readable bytes (it may be NULL when `len` is 0); `sent`
/// must be NULL (rejected) or point to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_lease_send(
    lease: *mut sb_lease,
    buf: *const u8,
    len: usize,
    sent: *mut usize,
) -> sb_status {
    guard("sb_lease_send", || {
        let l = LEASES.get(addr(lease))?;
        // SAFETY: `len` readable bytes by the caller's contract.
        let data = unsafe { bytes(buf, len, "buf") }?;
        check_out(sent, "sent")?;
        let n = if data.is_empty() {
            0
        } else {
            l.socket()?.send(data)?
        };
        // SAFETY: checked non-NULL above; writable by the caller's contract.
        unsafe { write_out(sent, n) };
        Ok(())
    })
}

/// Sends all `len` bytes of `buf`, blocking until they are all sent. On an error some
/// bytes may have been sent; discard the lease then.
///
/// # Safety
///
/// `buf` must point to `len` readable bytes (it may be NULL when `len` is 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_lease_send_all(
    lease: *mut sb_lease,
    buf: *const u8,
    len: usize,
) -> sb_status {
    guard("sb_lease_send_all", || {
        let l = LEASES.get(addr(lease))?;
        // SAFETY: `len` readable bytes by the caller's contract.
        let data = unsafe { bytes(buf, len, "buf") }?;
        if data.is_empty() {
            return Ok(());
        }
        l.socket()?.send_all(data)
    })
}

/// Receives up to `len` bytes into `buf`, blocking until at least one byte arrives,
/// like `recv(2)`; `*received` receives how many. `*received == 0` means the peer
/// closed the connection (discard the lease then). `len` must be at least 1.
///
/// # Safety
///
/// `buf` must point to `len` writable bytes; `received` must be NULL (rejected) or
/// point to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_lease_recv(
    lease: *mut sb_lease,
    buf: *mut u8,
    len: usize,
    received: *mut usize,
) -> sb_status {
    guard("sb_lease_recv", || {
        let l = LEASES.get(addr(lease))?;
        if len == 0 {
            return Err(Error::invalid_argument(
                "len must be at least 1 (a 0-byte recv could not tell data from end of stream)",
            ));
        }
        // SAFETY: `len` writable bytes, not otherwise accessed, by the caller's contract.
        let data = unsafe { bytes_mut(buf, len, "buf") }?;
        check_out(received, "received")?;
        let n = l.socket()?.recv(data)?;
        // SAFETY: checked non-NULL above; writable by the caller's contract.
        unsafe { write_out(received, n) };
        Ok(())
    })
}

/// Sets the deadline of each blocking `sb_lease_send`, `sb_lease_send_all` and
/// `sb_lease_recv` on this lease to `timeout_ms` milliseconds (0: wait forever, the
/// default). A call that passes it returns `SB_TIMEOUT`; the connection is not marked
/// broken then (whether the exchange left it usable is the program's call:
/// `sb_lease_discard` it if not). The pool clears the timeout when the connection
/// comes back, so the next lease starts without one. Returns `SB_FAILED_PRECONDITION`
/// for a lease of a custom pool.
#[unsafe(no_mangle)]
pub extern "C" fn sb_lease_set_timeout(lease: *mut sb_lease, timeout_ms: u64) -> sb_status {
    guard("sb_lease_set_timeout", || {
        let l = LEASES.get(addr(lease))?;
        let t = (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms));
        l.socket()?.set_timeout(t)
    })
}

/// Copies the endpoint the lease's connection goes to, as written in the pool's
/// target (`tcp://host:port`, or the custom pool's name for it), into `buf` with a
/// NUL. `*written` (if not NULL) always receives the size it needs with its NUL; when
/// that exceeds `len`, returns `SB_RESOURCE_EXHAUSTED` and copies nothing (`buf[0]`
/// is set to NUL when `len > 0`). `buf` may be NULL when `len` is 0, to ask for the
/// size.
///
/// # Safety
///
/// `buf` must point to `len` writable bytes (or `len` be 0); `written` must be NULL or
/// point to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_lease_endpoint(
    lease: *const sb_lease,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> sb_status {
    guard("sb_lease_endpoint", || {
        let l = LEASES.get(addr(lease))?;
        let name = l.lease().endpoint();
        // SAFETY: forwarded caller's contract.
        unsafe { copy_str_out(name, buf, len, written, "the endpoint name") }
    })
}

/// Reports the result of work the program did on this connection outside
/// `sb_lease_send*`/`sb_lease_recv` (a request on a custom pool's object, a
/// request/response over the fd): `success` and how long it took, `latency_ns`
/// nanoseconds. It feeds the endpoint's circuit breaker (failures and calls slower
/// than `breaker.slow_call_duration` count toward tripping it), success rate and
/// latency average, hence its quality score. A report that opens the breaker closes
/// the endpoint's idle connections, and this one when it is released. Does not wait.
#[unsafe(no_mangle)]
pub extern "C" fn sb_lease_report(
    lease: *mut sb_lease,
    success: bool,
    latency_ns: u64,
) -> sb_status {
    guard("sb_lease_report", || {
        let l = LEASES.get(addr(lease))?;
        l.lease().report(success, Duration::from_nanos(latency_ns));
        Ok(())
    })
}

/// Returns the connection to its pool; the handle is invalid afterwards (a second
/// release returns `SB_INVALID_HANDLE`). NULL is a no-op (`SB_OK`), so the result of
/// `sb_pool_try_acquire` may be released either way. If the pool or its manager was
/// closed meanwhile, the connection is closed instead.
///
/// If another thread is still inside a call on this lease (a misuse), the connection
/// goes back when that call returns.
#[unsafe(no_mangle)]
pub extern "C" fn sb_lease_release(lease: *mut sb_lease) -> sb_status {
    guard("sb_lease_release", || {
        if !lease.is_null() {
            LEASES.remove_then(addr(lease), |_| ())?;
        }
        Ok(())
    })
}

/// Closes the connection instead of returning it (after an error on it, or when its
/// state is unknown), freeing its place in the pool. The handle is invalid afterwards.
/// NULL is a no-op (`SB_OK`).
#[unsafe(no_mangle)]
pub extern "C" fn sb_lease_discard(lease: *mut sb_lease) -> sb_status {
    guard("sb_lease_discard", || {
        if !lease.is_null() {
            LEASES.remove_then(addr(lease), |l| l.discard.store(true, Ordering::Release))?;
        }
        Ok(())
    })
}

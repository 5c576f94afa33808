//! `sb_pool`: a bounded pool of connections to one target.

use std::ffi::c_char;
use std::time::Duration;

use switchboard_core::metrics::HistogramSnapshot;
use switchboard_core::{AcquireOptions, AnyConnector, Error, Pool, PoolStats};

use crate::args::{check_out, str_arg, write_out};
use crate::config::{sb_config, snapshot};
use crate::connector::{CConn, sb_connector};
use crate::error::{guard, null_arg, sb_status};
use crate::handles::{Slab, Tag, addr, to_ptr};
use crate::lease::{LeaseObj, sb_lease};
use crate::manager::{MANAGERS, sb_manager};

/// A pool of connections to one target, created by `sb_pool_new` (sockets) or
/// `sb_pool_new_custom` (the program's own objects), freed by `sb_pool_free`. `sb_pool_acquire` may be called on the same pool from many threads
/// at once.
#[allow(non_camel_case_types)]
pub struct sb_pool {
    _opaque: [u8; 0],
}

/// The pool behind a handle (built-in sockets or the program's objects); freeing the
/// handle closes the pool.
pub(crate) struct PoolObj(pub(crate) Pool<AnyConnector<CConn>>);

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
        let pool = m.pool_any(name, target, &config, None)?;
        let id = POOLS.insert(PoolObj(pool))?;
        // SAFETY: checked non-NULL above; writable by the caller's contract.
        unsafe { write_out(out, to_ptr(id)) };
        Ok(())
    })
}

/// Creates a pool named `name` of the program's own connection objects, made by the
/// callbacks in `*connector` (see `sb_connector`), and stores its handle in `*out`.
/// `target` is any non-empty string (or several separated by commas); each entry is
/// passed to `connect` as its `endpoint`. `cfg` (NULL: none) overrides the manager's
/// `pool.*` keys (`probe.*` and `tcp.*` do not apply: the `check` callback is the
/// probe). The struct is copied; it may be freed when this returns. Leases of the pool
/// give the objects through `sb_lease_conn`.
///
/// Ownership of `connector->userdata` passes to the library with this call:
/// `free_userdata` (if not NULL) is called exactly once, after the last `close`. When
/// the call fails, before it returns. Otherwise once all three have let go of the
/// pool: its handle (`sb_pool_free`), its leases (the last release), and its manager
/// (which keeps a closed pool until it creates its next pool, is closed, or is
/// freed). In the usual order -- release leases, free the pool, free the manager --
/// that is during `sb_manager_free` at the latest; it runs on the thread making the
/// call that lets go last.
///
/// Returns `SB_INVALID_ARGUMENT` for a NULL `connector` or `connector->connect`, an
/// empty target or a name already in use, `SB_UNAVAILABLE` once the manager is closed.
///
/// # Safety
///
/// `name` and `target` must be NULL (rejected) or NUL-terminated strings; `connector`
/// must be NULL (rejected) or point to a readable `sb_connector` whose callbacks
/// follow the contract in its documentation; `out` must be NULL (rejected) or point to
/// a writable `sb_pool *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_pool_new_custom(
    manager: *mut sb_manager,
    name: *const c_char,
    target: *const c_char,
    cfg: *const sb_config,
    connector: *const sb_connector,
    out: *mut *mut sb_pool,
) -> sb_status {
    guard("sb_pool_new_custom", || {
        if connector.is_null() {
            return Err(null_arg("connector"));
        }
        // Take the userdata first, so that free_userdata runs exactly once whatever
        // fails below. SAFETY: non-NULL and readable by the caller's contract.
        let taken = crate::connector::take(unsafe { &*connector });
        let m = MANAGERS.get(addr(manager))?;
        // SAFETY: NUL-terminated strings by the caller's contract.
        let name = unsafe { str_arg(name, "name") }?;
        // SAFETY: as above.
        let target = unsafe { str_arg(target, "target") }?;
        check_out(out, "out")?;
        let config = snapshot(cfg)?;
        let fn_connector = taken.into_connector()?;
        let pool = m.pool_any(name, target, &config, Some(fn_connector))?;
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
/// message names the address; for a custom pool, the status and message of its
/// connect callback), `SB_RESOURCE_EXHAUSTED` when `pool.max_waiters`
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
        // SAFETY: forwarded caller's contract.
        unsafe { acquire(pool, timeout_ms, 0, out) }
    })
}

/// `sb_pool_acquire` with a priority: when callers wait, higher priorities are served
/// first and equal priorities in arrival order (`sb_pool_acquire` is priority 0).
/// Negative priorities are allowed.
///
/// # Safety
///
/// `out` must be NULL (rejected) or point to a writable `sb_lease *`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_pool_acquire_prio(
    pool: *mut sb_pool,
    timeout_ms: i64,
    priority: i32,
    out: *mut *mut sb_lease,
) -> sb_status {
    guard("sb_pool_acquire_prio", || {
        // SAFETY: forwarded caller's contract.
        unsafe { acquire(pool, timeout_ms, priority, out) }
    })
}

/// # Safety
///
/// `out` must be NULL (rejected) or point to a writable `sb_lease *`.
#[inline]
unsafe fn acquire(
    pool: *mut sb_pool,
    timeout_ms: i64,
    priority: i32,
    out: *mut *mut sb_lease,
) -> Result<(), Error> {
    let p = POOLS.get(addr(pool))?;
    check_out(out, "out")?;
    let opts = AcquireOptions {
        timeout: u64::try_from(timeout_ms).ok().map(Duration::from_millis),
        priority,
    };
    let lease = p.0.acquire_blocking(opts)?;
    // If the table is full the lease is dropped here, which releases it.
    let id = crate::lease::LEASES.insert(LeaseObj::new(lease))?;
    // SAFETY: checked non-NULL above; writable by the caller's contract.
    unsafe { write_out(out, to_ptr(id)) };
    Ok(())
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

/// Changes the pool's `max_size` (1..=65535) and `min_idle` (0..=max_size) while it
/// is in use, without dropping leases: growing lets waiting callers in at once;
/// shrinking closes surplus idle connections now and surplus leased ones when they
/// are released. `min_idle` connections are then kept open in the background.
///
/// Returns `SB_INVALID_ARGUMENT` for sizes out of range (nothing changes),
/// `SB_UNAVAILABLE` once the pool or its manager is closed.
#[unsafe(no_mangle)]
pub extern "C" fn sb_pool_resize(pool: *mut sb_pool, max_size: u32, min_idle: u32) -> sb_status {
    guard("sb_pool_resize", || {
        let p = POOLS.get(addr(pool))?;
        p.0.resize(max_size as usize, min_idle as usize)
    })
}

/// Closes every idle connection now and every leased one when it is released (e.g.
/// after a failover); new connections are opened on demand and up to `min_idle`.
/// Does not wait.
#[unsafe(no_mangle)]
pub extern "C" fn sb_pool_evict_all(pool: *mut sb_pool) -> sb_status {
    guard("sb_pool_evict_all", || {
        POOLS.get(addr(pool))?.0.evict_all();
        Ok(())
    })
}

/// Opens connections until `pool.min_idle` are idle (or the pool is full), waiting on
/// the calling thread, and stores how many it opened in `*opened` (if `opened` is not
/// NULL). A failed connect stops it and is returned (its message names the address);
/// connections opened before it stay in the pool.
///
/// Returns `SB_FAILED_PRECONDITION` when called from a connector callback (see
/// `sb_connector`), `SB_UNAVAILABLE` once the pool or its manager is closed.
///
/// # Safety
///
/// `opened` must be NULL or point to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_pool_warm(pool: *mut sb_pool, opened: *mut usize) -> sb_status {
    guard("sb_pool_warm", || {
        let p = POOLS.get(addr(pool))?;
        let n = p.0.warm_blocking()?;
        if !opened.is_null() {
            // SAFETY: non-NULL, writable by the caller's contract.
            unsafe { write_out(opened, n) };
        }
        Ok(())
    })
}

/// Runs one pass of the pool's background upkeep now, on the calling thread: closes
/// idle connections past `pool.idle_timeout` (keeping `min_idle`) or past
/// `pool.max_lifetime`, checks idle ones past `pool.validate_after`, and starts
/// connects up to `min_idle`. The pool does this on its own every so often; call it
/// to see the effect at once (tests, or before a burst).
///
/// Returns `SB_FAILED_PRECONDITION` when called from a connector callback,
/// `SB_UNAVAILABLE` once the manager is closed.
#[unsafe(no_mangle)]
pub extern "C" fn sb_pool_run_upkeep(pool: *mut sb_pool) -> sb_status {
    guard("sb_pool_run_upkeep", || {
        POOLS.get(addr(pool))?.0.run_upkeep_blocking()
    })
}

/// A latency summary (part of `sb_pool_stats`): how many observations, their mean, the
/// largest (peak) and three quantiles, all in nanoseconds. The quantiles come from a
/// histogram with power-of-two buckets (1 us, 2 us, 4 us, ...): they are interpolated
/// within their bucket and never above `peak_ns`. All zero without observations.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct sb_latency {
    /// Number of observations.
    pub count: u64,
    /// Mean, in nanoseconds.
    pub avg_ns: u64,
    /// The largest observation, in nanoseconds.
    pub peak_ns: u64,
    /// Median, in nanoseconds.
    pub p50_ns: u64,
    /// 90th percentile, in nanoseconds.
    pub p90_ns: u64,
    /// 99th percentile, in nanoseconds.
    pub p99_ns: u64,
}

impl From<&HistogramSnapshot> for sb_latency {
    fn from(h: &HistogramSnapshot) -> Self {
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        sb_latency {
            count: h.count(),
            avg_ns: ns(h.avg()),
            peak_ns: ns(h.max()),
            p50_ns: ns(h.quantile(0.5)),
            p90_ns: ns(h.quantile(0.9)),
            p99_ns: ns(h.quantile(0.99)),
        }
    }
}

/// A snapshot of a pool's sizes and counters, filled by value by `sb_pool_get_stats` (it
/// holds no pointers; nothing to free). Every field after `struct_size` is a
/// `uint64_t` (or an `sb_latency` of them); counters named `*_total` only grow.
///
/// Versioning: set `struct_size = sizeof(sb_pool_stats)` before the call. The library
/// writes only the fields that fit in `struct_size` bytes and sets `struct_size` to
/// the number of bytes it filled, so a program built against an older or newer header
/// works with this library: fields are only ever added at the end, and a field lies
/// within the filled part if its end offset is at most the returned `struct_size`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct sb_pool_stats {
    /// In: the size of the caller's struct (`sizeof(sb_pool_stats)`). Out: the number
    /// of bytes filled.
    pub struct_size: usize,
    /// `pool.max_size` now (after any `sb_pool_resize`).
    pub max_size: u64,
    /// `pool.min_idle` now.
    pub min_idle: u64,
    /// `pool.max_overflow`.
    pub max_overflow: u64,
    /// Open connections plus connects in flight.
    pub size: u64,
    /// Idle connections.
    pub idle: u64,
    /// Connections leased out.
    pub leased: u64,
    /// Callers waiting for a connection.
    pub waiting: u64,
    /// Connects in flight.
    pub connecting: u64,
    /// Connections opened, ever.
    pub created_total: u64,
    /// Connections closed, ever (the sum of the `closed_*_total` fields).
    pub closed_total: u64,
    /// Closed because they failed the liveness check, the probe or the check callback.
    pub closed_broken_total: u64,
    /// Closed after `pool.idle_timeout` idle (beyond `min_idle`).
    pub closed_idle_total: u64,
    /// Closed at the end of their `pool.max_lifetime`.
    pub closed_lifetime_total: u64,
    /// Closed on release because the pool held more than `max_size` (overflow, or a
    /// shrink).
    pub closed_overflow_total: u64,
    /// Closed by `sb_pool_evict_all`.
    pub closed_evicted_total: u64,
    /// Closed by `sb_lease_discard`.
    pub closed_discarded_total: u64,
    /// Closed because the pool or its manager closed.
    pub closed_closed_total: u64,
    /// Successful acquires (direct + waited).
    pub acquired_total: u64,
    /// Acquires served at once from an idle connection.
    pub acquired_direct_total: u64,
    /// Acquires that waited in line.
    pub acquired_waited_total: u64,
    /// Acquires that timed out.
    pub timed_out_total: u64,
    /// Acquires rejected because `pool.max_waiters` callers were already waiting.
    pub rejected_total: u64,
    /// Connect attempts that failed.
    pub connect_failed_total: u64,
    /// Probes (or check callbacks) that failed; their connections were closed.
    pub probe_failed_total: u64,
    /// How long acquires waited for a connection: one observation per successful
    /// acquire (zero for one served at once). Appended after the counters: check `struct_size`.
    pub wait: sb_latency,
    /// How long connections were held: one observation per lease ended (released or
    /// discarded). Appended after the counters: check `struct_size`.
    pub lease: sb_latency,
    /// How many endpoints the pool has; each one's health, breaker and counters come
    /// from `sb_pool_endpoint_health(pool, index, ...)`. Appended later: check
    /// `struct_size`.
    pub endpoint_count: u64,
}

impl From<&PoolStats> for sb_pool_stats {
    fn from(s: &PoolStats) -> Self {
        let n = |v: usize| v as u64;
        sb_pool_stats {
            struct_size: std::mem::size_of::<sb_pool_stats>(),
            max_size: n(s.max_size),
            min_idle: n(s.min_idle),
            max_overflow: n(s.max_overflow),
            size: n(s.size),
            idle: n(s.idle),
            leased: n(s.leased),
            waiting: n(s.waiting),
            connecting: n(s.connecting),
            created_total: s.created_total,
            closed_total: s.closed_total,
            closed_broken_total: s.closed_by.broken,
            closed_idle_total: s.closed_by.idle,
            closed_lifetime_total: s.closed_by.lifetime,
            closed_overflow_total: s.closed_by.overflow,
            closed_evicted_total: s.closed_by.evicted,
            closed_discarded_total: s.closed_by.discarded,
            closed_closed_total: s.closed_by.closed,
            acquired_total: s.acquired_total,
            acquired_direct_total: s.acquired_direct_total,
            acquired_waited_total: s.acquired_waited_total,
            timed_out_total: s.timed_out_total,
            rejected_total: s.rejected_total,
            connect_failed_total: s.connect_failed_total,
            probe_failed_total: s.probe_failed_total,
            wait: sb_latency::from(&s.wait),
            lease: sb_latency::from(&s.lease),
            endpoint_count: s.endpoints.len() as u64,
        }
    }
}

/// Fills `*out` with a snapshot of the pool's sizes and counters (see the struct
/// `sb_pool_stats`; set `out->struct_size = sizeof *out` first). Does not wait; may be
/// called from any thread, including inside connector callbacks, and on a closed pool.
///
/// Returns `SB_INVALID_ARGUMENT` when `out` is NULL or `out->struct_size` is smaller
/// than `sizeof(size_t)` (not set).
///
/// # Safety
///
/// `out` must be NULL (rejected) or point to `out->struct_size` writable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sb_pool_get_stats(
    pool: *const sb_pool,
    out: *mut sb_pool_stats,
) -> sb_status {
    guard("sb_pool_get_stats", || {
        let p = POOLS.get(addr(pool))?;
        check_out(out, "out")?;
        // SAFETY: non-NULL; its first field is readable by the caller's contract.
        let room = unsafe { std::ptr::addr_of!((*out).struct_size).read() };
        if room < std::mem::size_of::<usize>() {
            return Err(Error::invalid_argument(format!(
                "out->struct_size must be set to sizeof(sb_pool_stats) before the call, got {room}"
            )));
        }
        let mut full = sb_pool_stats::from(&p.0.stats());
        let filled = room.min(std::mem::size_of::<sb_pool_stats>());
        full.struct_size = filled;
        write_prefix(out, &full, filled);
        Ok(())
    })
}

/// Writes the fields of `src` that lie entirely within the first `room` bytes of
/// `out`, field by field (never the padding between them).
fn write_prefix(out: *mut sb_pool_stats, src: &sb_pool_stats, room: usize) {
    macro_rules! fields {
        ($($f:ident),* $(,)?) => {$(
            let end = std::mem::offset_of!(sb_pool_stats, $f) + std::mem::size_of_val(&src.$f);
            if end <= room {
                // SAFETY: the caller of sb_pool_stats guarantees `room` writable bytes
                // at `out`, and this field lies within them; the struct is repr(C).
                unsafe { std::ptr::addr_of_mut!((*out).$f).write_unaligned(src.$f) };
            }
        )*};
    }
    fields!(
        struct_size,
        max_size,
        min_idle,
        max_overflow,
        size,
        idle,
        leased,
        waiting,
        connecting,
        created_total,
        closed_total,
        closed_broken_total,
        closed_idle_total,
        closed_lifetime_total,
        closed_overflow_total,
        closed_evicted_total,
        closed_discarded_total,
        closed_closed_total,
        acquired_total,
        acquired_direct_total,
        acquired_waited_total,
        timed_out_total,
        rejected_total,
        connect_failed_total,
        probe_failed_total,
        wait,
        lease,
        endpoint_count,
    );
}

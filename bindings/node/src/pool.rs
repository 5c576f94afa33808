//! `NativePool`: one pool of built-in TCP connections.

use napi::Env;
use napi::bindgen_prelude::{Either, Object};
use napi_derive::napi;
use switchboard_core::{AcquireOptions, Pool, TcpConnector};

use crate::error::{Result, guard, to_napi};
use crate::lease::NativeLease;
use crate::manager::duration;
use crate::settle::Settle;

/// A snapshot of a pool's state and counters (core's `PoolStats`, camelCase in JS).
#[napi(object)]
pub struct PoolStats {
    /// The pool's name.
    pub name: String,
    /// `pool.max_size`.
    pub max_size: u32,
    /// Open connections plus connects in flight.
    pub size: u32,
    /// Idle connections.
    pub idle: u32,
    /// Connections handed out.
    pub leased: u32,
    /// Callers waiting for a connection.
    pub waiting: u32,
    /// Connects in flight.
    pub connecting: u32,
    /// Connections opened, ever.
    pub created_total: f64,
    /// Connections closed, ever.
    pub closed_total: f64,
    /// Successful acquires.
    pub acquired_total: f64,
    /// Acquires that timed out.
    pub timed_out_total: f64,
    /// Acquires rejected because the wait queue was full.
    pub rejected_total: f64,
    /// Connect attempts that failed.
    pub connect_failed_total: f64,
}

fn n32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The native pool.
#[napi]
pub struct NativePool {
    pool: Pool<TcpConnector>,
}

impl NativePool {
    pub fn new(pool: Pool<TcpConnector>) -> Self {
        NativePool { pool }
    }
}

/// Per-call acquire options from JS (the timeout as a duration string).
fn acquire_options(timeout: Option<String>, priority: Option<i32>) -> Result<AcquireOptions> {
    let timeout = match timeout {
        None => None,
        Some(t) => Some(duration("acquire timeout", &t)?),
    };
    Ok(AcquireOptions {
        timeout,
        priority: priority.unwrap_or(0),
    })
}

#[napi]
impl NativePool {
    /// The pool's name.
    #[napi(getter)]
    pub fn name(&self) -> String {
        self.pool.name().to_string()
    }

    /// Whether the pool is closed.
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.pool.is_closed()
    }

    /// An idle connection if one is ready now, else `null`; never waits, never
    /// connects, never enters the runtime.
    #[napi]
    pub fn try_acquire(&self) -> Result<Option<NativeLease>> {
        guard(|| {
            let lease = self.pool.try_acquire().map_err(to_napi)?;
            Ok(lease.map(|l| NativeLease::new(l, self.pool.runtime().clone())))
        })
    }

    /// Acquires a connection: an idle one at once (returned as a `NativeLease`, no
    /// promise), else a promise settled from the manager's runtime with a `NativeLease`
    /// or an `SB_*` error.
    #[napi]
    pub fn acquire<'env>(
        &self,
        env: &'env Env,
        timeout: Option<String>,
        priority: Option<i32>,
    ) -> Result<Either<NativeLease, Object<'env>>> {
        guard(|| {
            let opts = acquire_options(timeout, priority)?;
            if let Some(lease) = self.pool.try_acquire().map_err(to_napi)? {
                return Ok(Either::A(NativeLease::new(
                    lease,
                    self.pool.runtime().clone(),
                )));
            }
            let (settle, promise) = Settle::<NativeLease>::new(env)?;
            let pool = self.pool.clone();
            let rt = pool.runtime().clone();
            let task_rt = rt.clone();
            // If the task cannot be spawned (manager closed) it is dropped unrun, and
            // the settling half with it, which rejects the promise with SB_UNAVAILABLE.
            let _ = rt.spawn(async move {
                let r = pool.acquire_with(opts).await;
                // If the promise's value is never used, the lease object's finalizer
                // returns the connection.
                settle.settle(r, move |_, lease| NativeLease::new(lease, task_rt));
            });
            Ok(Either::B(promise))
        })
    }

    /// A snapshot of the pool's state and counters.
    #[napi]
    pub fn stats(&self) -> PoolStats {
        let s = self.pool.stats();
        PoolStats {
            name: s.name,
            max_size: n32(s.max_size),
            size: n32(s.size),
            idle: n32(s.idle),
            leased: n32(s.leased),
            waiting: n32(s.waiting),
            connecting: n32(s.connecting),
            created_total: s.created_total as f64,
            closed_total: s.closed_total as f64,
            acquired_total: s.acquired_total as f64,
            timed_out_total: s.timed_out_total as f64,
            rejected_total: s.rejected_total as f64,
            connect_failed_total: s.connect_failed_total as f64,
        }
    }

    /// Closes the pool: waiters fail with SB_UNAVAILABLE, idle connections close now,
    /// leased ones when they come back. Closing twice is a no-op. Never blocks.
    #[napi]
    pub fn close(&self) {
        self.pool.close();
    }
}

//! The pools the benchmarks compare, each managing the same trivial object (a `u64`
//! counter: connecting is instant, every check and recycle succeeds), so what is
//! measured is the pool's own bookkeeping.
//!
//! Shared by `benches/pool.rs` (criterion) and `benches/instr.rs` (callgrind).

#![allow(dead_code)] // each bench binary uses a different part

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use switchboard_core::{Config, Connector, Endpoint, Manager, Pool};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The pool size of every scenario except the fairness one.
pub const POOL_SIZE: usize = 16;

/// Hands out the next number: the "connection" every pool manages.
#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
}

// ---------------------------------------------------------------- switchboard

/// switchboard's side: a custom connector of counters.
#[derive(Default)]
pub struct CounterConnector(Counter);

impl Connector for CounterConnector {
    type Conn = u64;

    async fn connect(&self, _endpoint: &Endpoint) -> switchboard_core::Result<u64> {
        Ok(self.0.next())
    }

    fn is_alive(&self, _conn: &mut u64) -> bool {
        true
    }

    fn recycle(&self, _conn: &mut u64) -> bool {
        true
    }

    fn close(&self, _conn: u64) {}
}

/// A switchboard manager with default settings (2 runtime workers, metrics on).
pub fn switchboard_manager() -> Manager {
    Manager::new(&Config::new()).expect("switchboard manager")
}

/// A switchboard pool of `size` counters (default settings otherwise). Not warmed.
pub fn switchboard_pool(manager: &Manager, name: &str, size: usize) -> Pool<CounterConnector> {
    let mut cfg = Config::new();
    cfg.set("pool.max_size", &size.to_string())
        .expect("pool.max_size");
    manager
        .pool_with(name, "bench://x", &cfg, CounterConnector::default())
        .expect("switchboard pool")
}

// ------------------------------------------------------------------- deadpool

pub struct DeadpoolManager(Counter);

impl deadpool::managed::Manager for DeadpoolManager {
    type Type = u64;
    type Error = Infallible;

    async fn create(&self) -> Result<u64, Infallible> {
        Ok(self.0.next())
    }

    async fn recycle(
        &self,
        _conn: &mut u64,
        _metrics: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<Infallible> {
        Ok(())
    }
}

pub type DeadPool = deadpool::managed::Pool<DeadpoolManager>;

/// A deadpool of `size` counters, default settings (no timeouts). Not warmed.
pub fn deadpool_pool(size: usize) -> DeadPool {
    DeadPool::builder(DeadpoolManager(Counter::default()))
        .max_size(size)
        .build()
        .expect("deadpool")
}

// ------------------------------------------------------------------------ bb8

pub struct Bb8Manager(Counter);

impl bb8::ManageConnection for Bb8Manager {
    type Connection = u64;
    type Error = Infallible;

    async fn connect(&self) -> Result<u64, Infallible> {
        Ok(self.0.next())
    }

    async fn is_valid(&self, _conn: &mut u64) -> Result<(), Infallible> {
        Ok(())
    }

    fn has_broken(&self, _conn: &mut u64) -> bool {
        false
    }
}

/// A bb8 pool of `size` counters, default settings (test on checkout, 30 s timeout).
/// Must be built inside a tokio runtime. Not warmed.
pub fn bb8_pool(size: usize) -> bb8::Pool<Bb8Manager> {
    bb8::Pool::builder()
        .max_size(size as u32)
        .build_unchecked(Bb8Manager(Counter::default()))
}

// ----------------------------------------------------------------------- r2d2

pub struct R2d2Manager(Counter);

#[derive(Debug)]
pub struct NoError;

impl std::fmt::Display for NoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no error")
    }
}

impl std::error::Error for NoError {}

impl r2d2::ManageConnection for R2d2Manager {
    type Connection = u64;
    type Error = NoError;

    fn connect(&self) -> Result<u64, NoError> {
        Ok(self.0.next())
    }

    fn is_valid(&self, _conn: &mut u64) -> Result<(), NoError> {
        Ok(())
    }

    fn has_broken(&self, _conn: &mut u64) -> bool {
        false
    }
}

/// An r2d2 pool of `size` counters, default settings (test on checkout; it opens
/// `size` connections while building).
pub fn r2d2_pool(size: usize) -> r2d2::Pool<R2d2Manager> {
    r2d2::Pool::builder()
        .max_size(size as u32)
        .build(R2d2Manager(Counter::default()))
        .expect("r2d2 pool")
}

// ------------------------------------------------------------ Semaphore + Vec

/// The pool most programs would write by hand: a tokio `Semaphore` bounds the
/// connections out, a `Mutex<Vec<_>>` keeps the idle ones (LIFO). The semaphore is
/// fair (FIFO), so waiters are served in arrival order.
#[derive(Clone)]
pub struct SemPool {
    inner: Arc<SemInner>,
}

struct SemInner {
    permits: Arc<Semaphore>,
    idle: Mutex<Vec<u64>>,
    counter: Counter,
}

pub struct SemLease {
    conn: Option<u64>,
    pool: Arc<SemInner>,
    _permit: OwnedSemaphorePermit,
}

impl SemPool {
    pub fn new(size: usize) -> Self {
        SemPool {
            inner: Arc::new(SemInner {
                permits: Arc::new(Semaphore::new(size)),
                idle: Mutex::new(Vec::with_capacity(size)),
                counter: Counter::default(),
            }),
        }
    }

    pub async fn get(&self) -> SemLease {
        let permit = self
            .inner
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let idle = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop();
        // Nothing idle but a permit: open a connection (instantly, here).
        let conn = idle.unwrap_or_else(|| self.inner.counter.next());
        SemLease {
            conn: Some(conn),
            pool: self.inner.clone(),
            _permit: permit,
        }
    }
}

impl std::ops::Deref for SemLease {
    type Target = u64;
    fn deref(&self) -> &u64 {
        self.conn.as_ref().expect("present until drop")
    }
}

impl Drop for SemLease {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            // Back to the idle list before the permit is released (field order).
            self.pool
                .idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(c);
        }
    }
}

// ----------------------------------------------------------------- ArrayQueue

/// The floor: a bare lock-free bounded queue of counters, pre-filled. Not a pool
/// (no waiting, no accounting), only the cost of moving an object out and back.
pub fn array_queue(size: usize) -> crossbeam_queue::ArrayQueue<u64> {
    let q = crossbeam_queue::ArrayQueue::new(size);
    for i in 0..size as u64 {
        let _ = q.push(i);
    }
    q
}

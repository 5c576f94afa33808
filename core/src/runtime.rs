//! The manager's own tokio runtime, and the rules for entering it.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::runtime::{Builder, Handle, Runtime};

use crate::error::{Error, Result};

/// What pools and bindings need of the manager's runtime: a handle to spawn on, the
/// closed flag, and a count of callers blocked inside it so that closing waits for
/// them before the runtime goes away.
#[derive(Debug)]
pub struct RuntimeShared {
    handle: Handle,
    closed: AtomicBool,
    active: AtomicUsize,
    pid: u32,
    fork_epoch: u64,
}

/// Bumped in the child after every `fork()` (a `pthread_atfork` handler), so that the
/// fast paths detect a fork with one relaxed load instead of a `getpid` call.
static FORK_EPOCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static ATFORK: std::sync::Once = std::sync::Once::new();

extern "C" fn after_fork_in_child() {
    FORK_EPOCH.fetch_add(1, Ordering::Relaxed);
}

fn install_fork_handler() {
    ATFORK.call_once(|| {
        // SAFETY: registers a child handler that only bumps an atomic, which is
        // async-signal-safe and allowed after fork in a multi-threaded process.
        unsafe {
            libc::pthread_atfork(None, None, Some(after_fork_in_child));
        }
    });
}

/// Counts a caller running inside the runtime from outside it; closing the manager
/// waits (bounded) for these before the runtime's drivers go away.
pub struct ActiveGuard<'a>(&'a AtomicUsize);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl RuntimeShared {
    pub(crate) fn build(worker_threads: usize) -> Result<(Runtime, RuntimeShared)> {
        let rt = Builder::new_multi_thread()
            .worker_threads(worker_threads)
            .thread_name("switchboard-rt")
            .enable_all()
            .build()
            .map_err(|e| Error::from_io("start the manager's runtime", &e))?;
        let shared = RuntimeShared {
            handle: rt.handle().clone(),
            closed: AtomicBool::new(false),
            active: AtomicUsize::new(0),
            pid: std::process::id(),
            fork_epoch: {
                install_fork_handler();
                FORK_EPOCH.load(Ordering::Relaxed)
            },
        };
        Ok((rt, shared))
    }

    /// The runtime's handle, for spawning background work.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Whether the manager has begun closing.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    pub(crate) fn mark_closed(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    pub(crate) fn active(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// Fails if the calling thread may not block on this runtime: inside any async
    /// runtime (an event callback, a Rust async task), after a fork, or once closed.
    pub fn check_can_block(&self) -> Result<()> {
        if Handle::try_current().is_ok() {
            return Err(Error::failed_precondition(
                "a blocking switchboard call was made on an async runtime thread (for example inside an event callback); use the async API there",
            ));
        }
        self.check_pid()?;
        if self.is_closed() {
            return Err(Error::unavailable("the manager is closed"));
        }
        Ok(())
    }

    /// Fails after a fork (cheap: one relaxed load); see [`RuntimeShared::check_pid`].
    #[inline]
    pub fn check_fork(&self) -> Result<()> {
        if FORK_EPOCH.load(Ordering::Relaxed) != self.fork_epoch {
            return Err(forked());
        }
        Ok(())
    }

    /// Fails after a fork: the runtime's threads do not exist in the child.
    pub fn check_pid(&self) -> Result<()> {
        self.check_fork()?;
        if std::process::id() != self.pid {
            return Err(forked());
        }
        Ok(())
    }

    /// Runs `fut` to completion on the calling thread (timers and I/O are driven by
    /// the runtime's workers). Costs no hand-off to a worker thread.
    pub fn block_on<F: Future>(&self, fut: F) -> Result<F::Output> {
        self.check_can_block()?;
        self.active.fetch_add(1, Ordering::SeqCst);
        let _guard = ActiveGuard(&self.active);
        if self.is_closed() {
            return Err(Error::unavailable("the manager is closed"));
        }
        Ok(self.handle.block_on(fut))
    }

    /// Registers a caller that will poll runtime-bound futures from its own executor;
    /// fails once the manager is closed.
    pub fn enter_active(&self) -> Result<ActiveGuard<'_>> {
        self.check_pid()?;
        self.active.fetch_add(1, Ordering::SeqCst);
        let guard = ActiveGuard(&self.active);
        if self.is_closed() {
            return Err(Error::unavailable("the manager is closed"));
        }
        Ok(guard)
    }

    /// Spawns `fut` on the runtime; fails once the manager is closed.
    pub fn spawn<F>(&self, fut: F) -> Result<tokio::task::JoinHandle<F::Output>>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.check_pid()?;
        if self.is_closed() {
            return Err(Error::unavailable("the manager is closed"));
        }
        Ok(self.handle.spawn(fut))
    }

    /// Whether the calling thread is one of this runtime's workers.
    pub(crate) fn on_own_thread(&self) -> bool {
        Handle::try_current().is_ok_and(|h| h.id() == self.handle.id())
    }
}

fn forked() -> Error {
    Error::failed_precondition(
        "this manager was created in another process (before a fork); create a new manager in the child",
    )
}

/// Shuts `rt` down: waits up to `timeout` for its tasks, joining its threads, unless
/// the caller is inside an async context, where it can only let go in the background.
pub(crate) fn shutdown(rt: Runtime, timeout: Duration) {
    if Handle::try_current().is_ok() {
        rt.shutdown_background();
    } else {
        rt.shutdown_timeout(timeout);
    }
}

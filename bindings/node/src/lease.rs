//! `NativeLease`: one checked-out connection, with promise-based read and write.
//!
//! # Concurrency
//!
//! The core lease lives in a small state cell. A read or write takes it out for the
//! duration of the call (on the manager's runtime) and puts it back before its promise
//! settles, so JS sees the lease usable again as soon as `await` returns. One call at a
//! time: a second read/write while one is pending is rejected with
//! SB_FAILED_PRECONDITION.
//!
//! `release()`/`discard()` never block the JS thread. With no call in flight they act
//! at once. With one in flight they cancel it (its promise rejects with SB_CANCELLED)
//! and the connection is closed rather than returned, because an interrupted read or
//! write leaves the byte stream in an unknown state; if the call had already finished,
//! the release is performed as asked.
//!
//! A lease object that is garbage-collected without release returns its connection
//! (after any call in flight ends).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use napi::Env;
use napi::bindgen_prelude::{Buffer, Object};
use napi_derive::napi;
use switchboard_core::runtime::RuntimeShared;
use switchboard_core::{AnyConnector, Code, Error, Lease};
use tokio::sync::oneshot;

use crate::error::{Result, guard, sb_error, to_napi};
use crate::settle::Settle;

type CoreLease = Lease<AnyConnector<u64>>;

/// What the lease holds: a built-in socket's fd, or the id of the program's object in
/// `index.js`'s map; the other kind's accessor fails with core's message.
enum Kind {
    Socket(i32),
    Custom(u64),
}

/// The largest `read(n)`: one buffer of this size is allocated per read.
const MAX_READ: u32 = 64 * 1024 * 1024;
/// `read()` without a size.
const DEFAULT_READ: u32 = 64 * 1024;

/// Why a lease can no longer be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gone {
    Released,
    Discarded,
    Interrupted,
}

impl Gone {
    fn error(self) -> napi::Error<crate::SbStatus> {
        let msg = match self {
            Gone::Released => "this lease was released; acquire a new one",
            Gone::Discarded => "this lease was discarded; acquire a new one",
            Gone::Interrupted => {
                "this lease's connection was closed because a read or write on it was interrupted (the manager closed); acquire a new one"
            }
        };
        sb_error(Code::FailedPrecondition, msg)
    }
}

#[derive(Default)]
struct State {
    /// The core lease, unless a call has it or the lease is gone.
    lease: Option<CoreLease>,
    /// A read or write has the lease.
    busy: bool,
    /// Set once by release/discard/interruption/finalization.
    gone: Option<Gone>,
    /// Close the connection instead of returning it when the call in flight ends.
    discard: bool,
    /// Cancels the call in flight.
    cancel: Option<oneshot::Sender<()>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // Every update of the state is a few plain assignments that cannot panic midway,
    // so a poisoned lock still holds a consistent state.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

fn let_go(lease: CoreLease, discard: bool) {
    if discard {
        lease.discard();
    } else {
        lease.release();
    }
}

/// A read or write in flight: owns the core lease until it ends, however it ends.
struct Op {
    state: Arc<Mutex<State>>,
    lease: Option<CoreLease>,
}

impl Op {
    /// Puts the lease back (or performs the release asked for meanwhile). `completed`
    /// is false when the call was interrupted, which closes the connection.
    fn end(&mut self, completed: bool) {
        let Some(lease) = self.lease.take() else {
            return;
        };
        let mut s = lock(&self.state);
        s.busy = false;
        s.cancel = None;
        if !completed {
            s.gone.get_or_insert(Gone::Interrupted);
            s.discard = true;
        }
        if s.gone.is_some() {
            let discard = s.discard;
            drop(s);
            let_go(lease, discard);
        } else {
            s.lease = Some(lease);
        }
    }
}

impl Drop for Op {
    fn drop(&mut self) {
        // Dropped before it ended: the task was dropped unrun or mid-way (the manager's
        // runtime shut down).
        self.end(false);
    }
}

async fn cancelled(rx: &mut oneshot::Receiver<()>) {
    if rx.await.is_err() {
        // The sender went away without cancelling: never cancel.
        std::future::pending::<()>().await;
    }
}

fn cancelled_error(what: &str) -> Error {
    Error::new(
        Code::Cancelled,
        format!(
            "{what} cancelled: the lease was released while the {what} was in progress, so its connection was closed"
        ),
    )
}

/// A read or write timeout from JS (a duration string), if given.
fn call_timeout(what: &str, timeout: Option<String>) -> Result<Option<Duration>> {
    timeout
        .map(|t| crate::manager::duration(what, &t))
        .transpose()
}

/// The native lease.
#[napi]
pub struct NativeLease {
    state: Arc<Mutex<State>>,
    rt: Arc<RuntimeShared>,
    id: u64,
    kind: Kind,
    pool_name: String,
    endpoint: String,
}

impl NativeLease {
    pub fn new(lease: CoreLease, rt: Arc<RuntimeShared>) -> Self {
        let id = lease.id();
        let kind = match lease.custom() {
            Ok(&obj) => Kind::Custom(obj),
            Err(_) => Kind::Socket(lease.socket().map_or(-1, |s| s.fd())),
        };
        let pool_name = lease.pool_name().to_string();
        let endpoint = lease.endpoint().to_string();
        NativeLease {
            state: Arc::new(Mutex::new(State {
                lease: Some(lease),
                ..State::default()
            })),
            rt,
            id,
            kind,
            pool_name,
            endpoint,
        }
    }

    /// Core's error for using a custom lease as a socket, or the reverse.
    fn wrong_kind(&self, want_socket: bool) -> Option<napi::Error<crate::SbStatus>> {
        let s = lock(&self.state);
        let lease = s.lease.as_ref()?;
        let r = if want_socket {
            lease.socket().err()
        } else {
            lease.custom().err()
        };
        r.map(to_napi)
    }

    /// Takes the lease out for one call.
    fn begin(&self) -> Result<(Op, oneshot::Receiver<()>)> {
        if matches!(self.kind, Kind::Custom(_))
            && let Some(e) = self.wrong_kind(true)
        {
            return Err(e);
        }
        let mut s = lock(&self.state);
        if let Some(g) = s.gone {
            return Err(g.error());
        }
        if s.busy {
            return Err(sb_error(
                Code::FailedPrecondition,
                "a read or write is already in progress on this lease; await it before starting another",
            ));
        }
        let lease = s.lease.take().ok_or_else(|| Gone::Released.error())?;
        let (tx, rx) = oneshot::channel();
        s.busy = true;
        s.cancel = Some(tx);
        drop(s);
        Ok((
            Op {
                state: self.state.clone(),
                lease: Some(lease),
            },
            rx,
        ))
    }

    /// Ends the lease: returns (or closes) the connection now, or cancels the call in
    /// flight, which then closes it. Safe to call twice.
    fn finish(&self, discard: bool) {
        let mut s = lock(&self.state);
        if s.gone.is_some() {
            return;
        }
        s.gone = Some(if discard {
            Gone::Discarded
        } else {
            Gone::Released
        });
        s.discard = discard;
        if let Some(tx) = s.cancel.take() {
            let _ = tx.send(());
        }
        let lease = s.lease.take();
        drop(s);
        if let Some(l) = lease {
            let_go(l, discard);
        }
    }
}

#[napi]
impl NativeLease {
    /// The connection's id, unique within its pool and never reused.
    #[napi(getter)]
    pub fn id(&self) -> f64 {
        self.id as f64
    }

    /// The name of the pool it came from.
    #[napi(getter)]
    pub fn pool_name(&self) -> String {
        self.pool_name.clone()
    }

    /// The endpoint it is connected to, as written in the pool's target.
    #[napi(getter)]
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// Records the result of work done on this connection (`latency_ms` in
    /// milliseconds) for its endpoint's breaker, success rate and quality.
    #[napi]
    pub fn report(&self, success: bool, latency_ms: f64) -> Result<()> {
        guard(|| {
            if !(latency_ms.is_finite() && (0.0..=1e12).contains(&latency_ms)) {
                return Err(sb_error(
                    Code::InvalidArgument,
                    format!(
                        "report() latency must be a number of milliseconds >= 0, got {latency_ms}"
                    ),
                ));
            }
            let s = lock(&self.state);
            if let Some(g) = s.gone {
                return Err(g.error());
            }
            let Some(lease) = s.lease.as_ref() else {
                return Err(sb_error(
                    Code::FailedPrecondition,
                    "a read or write is in progress on this lease; await it before report()",
                ));
            };
            // Nothing here waits: a breaker that opens emits events and closes idle
            // connections, both queued for the JS thread.
            lease.report(success, Duration::from_secs_f64(latency_ms / 1000.0));
            Ok(())
        })
    }

    /// The raw file descriptor; throws SB_FAILED_PRECONDITION once released, or for
    /// a custom connection.
    #[napi(getter)]
    pub fn fd(&self) -> Result<i32> {
        if let Some(g) = lock(&self.state).gone {
            return Err(g.error());
        }
        match self.kind {
            Kind::Socket(fd) => Ok(fd),
            Kind::Custom(_) => Err(self
                .wrong_kind(true)
                .unwrap_or_else(|| Gone::Released.error())),
        }
    }

    /// The id of the program's object (custom pools); throws SB_FAILED_PRECONDITION
    /// once released, or for a built-in socket.
    #[napi(getter)]
    pub fn custom_id(&self) -> Result<f64> {
        if let Some(g) = lock(&self.state).gone {
            return Err(g.error());
        }
        match self.kind {
            Kind::Custom(id) => Ok(id as f64),
            Kind::Socket(_) => Err(self
                .wrong_kind(false)
                .unwrap_or_else(|| Gone::Released.error())),
        }
    }

    /// Whether the lease holds the program's object rather than a socket.
    #[napi(getter)]
    pub fn is_custom(&self) -> bool {
        matches!(self.kind, Kind::Custom(_))
    }

    /// Whether the lease was released, discarded or interrupted.
    #[napi(getter)]
    pub fn released(&self) -> bool {
        lock(&self.state).gone.is_some()
    }

    /// Writes all of `data`; resolves with undefined.
    #[napi]
    pub fn write<'env>(
        &self,
        env: &'env Env,
        data: Buffer,
        timeout: Option<String>,
    ) -> Result<Object<'env>> {
        guard(|| {
            let bytes: Vec<u8> = data.as_ref().to_vec();
            drop(data);
            let deadline = call_timeout("write timeout", timeout)?;
            let (mut op, mut cancel) = self.begin()?;
            let (settle, promise) = match Settle::<()>::new(env) {
                Ok(p) => p,
                Err(e) => {
                    op.end(true);
                    return Err(e);
                }
            };
            // If the task cannot be spawned (manager closed) it is dropped unrun: the op
            // closes the connection and the settling half rejects with SB_UNAVAILABLE.
            let _ = self.rt.spawn(async move {
                let r = match op.lease.as_deref().map(|c| c.socket()) {
                    Some(Err(e)) => Some(Err(e)),
                    Some(Ok(sock)) => tokio::select! {
                        r = sock.write_all_async_within(&bytes, deadline) => Some(r),
                        () = cancelled(&mut cancel) => None,
                    },
                    None => Some(Err(Error::internal("write without a connection"))),
                };
                op.end(r.is_some());
                match r {
                    Some(r) => settle.settle(r, |_, ()| ()),
                    None => settle.reject(cancelled_error("write")),
                }
            });
            Ok(promise)
        })
    }

    /// Reads up to `max` bytes (default 64 KiB) once at least one is available;
    /// resolves with a Buffer, empty when the peer closed the connection.
    #[napi]
    pub fn read<'env>(
        &self,
        env: &'env Env,
        max: Option<u32>,
        timeout: Option<String>,
    ) -> Result<Object<'env>> {
        guard(|| {
            let max = max.unwrap_or(DEFAULT_READ);
            let deadline = call_timeout("read timeout", timeout)?;
            if max == 0 || max > MAX_READ {
                return Err(sb_error(
                    Code::InvalidArgument,
                    format!("read size must be an integer 1..={MAX_READ}, got {max}"),
                ));
            }
            let (mut op, mut cancel) = self.begin()?;
            let (settle, promise) = match Settle::<Buffer>::new(env) {
                Ok(p) => p,
                Err(e) => {
                    op.end(true);
                    return Err(e);
                }
            };
            let _ = self.rt.spawn(async move {
                let r = match op.lease.as_deref().map(|c| c.socket()) {
                    Some(Err(e)) => Some(Err(e)),
                    Some(Ok(sock)) => tokio::select! {
                        r = sock.read_async_within(max as usize, deadline) => Some(r),
                        () = cancelled(&mut cancel) => None,
                    },
                    None => Some(Err(Error::internal("read without a connection"))),
                };
                op.end(r.is_some());
                match r {
                    Some(r) => settle.settle(r, |_, mut bytes: Vec<u8>| {
                        // The read buffer was sized for `max`; do not hand JS the slack.
                        if bytes.len() < bytes.capacity() / 2 {
                            bytes.shrink_to_fit();
                        }
                        Buffer::from(bytes)
                    }),
                    None => settle.reject(cancelled_error("read")),
                }
            });
            Ok(promise)
        })
    }

    /// Returns the connection to the pool. Safe to call twice.
    #[napi]
    pub fn release(&self) {
        self.finish(false);
    }

    /// Closes the connection instead of returning it, e.g. after an error on it. Safe
    /// to call twice; after release it does nothing.
    #[napi]
    pub fn discard(&self) {
        self.finish(true);
    }
}

impl Drop for NativeLease {
    fn drop(&mut self) {
        // Garbage-collected without release: return the connection now, or when the
        // call in flight ends (it is not cancelled: someone may still await it).
        let mut s = lock(&self.state);
        s.gone.get_or_insert(Gone::Released);
        let lease = s.lease.take();
        drop(s);
        drop(lease);
    }
}

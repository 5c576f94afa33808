//! `NativeResourceHandle`: one consumer's share of a resource, with promise-based
//! `read`, `write` and `waitReady`.
//!
//! # I/O
//!
//! The connection is shared by every consumer, so reads and writes go through core's
//! handle (`send_all`, `recv`), which takes the resource's current socket for each call
//! and counts the bytes in its metrics. Those calls block, so:
//!
//! - `write` runs `send_all` on the runtime's blocking threads;
//! - `read` first waits, without a thread, until the current socket is readable (on a
//!   duplicate of its fd registered with the runtime for this wait only, so that
//!   consumers reading and writing at the same time never share one registration, and
//!   the socket's blocking mode is left alone), then runs `recv` on a blocking thread,
//!   where it returns at once. A read's timeout and its cancellation (by `detach()`)
//!   only ever end that wait: no byte is consumed by a read that did not resolve. A
//!   read waiting on a socket the resource swapped meanwhile (a reconnect, an update)
//!   ends on that socket, as an operation in flight on the old connection does.
//!
//! One reader at a time per resource (the program coordinates its consumers, as with a
//! lease's socket): two readers woken by the same bytes would leave one waiting for more.

use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use napi::Env;
use napi::bindgen_prelude::{Buffer, Object};
use napi_derive::napi;
use switchboard_core::runtime::RuntimeShared;
use switchboard_core::{Code, Error, ResourceHandle, Socket};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::watch;

use crate::error::{Result, guard, sb_error, to_napi};
use crate::settle::Settle;

/// The largest `read(n)`: one buffer of this size is allocated per read.
const MAX_READ: u32 = 64 * 1024 * 1024;
/// `read()` without a size.
const DEFAULT_READ: u32 = 64 * 1024;

/// The native handle. Garbage-collected undetached, it detaches (once no call of it is
/// in flight).
#[napi]
pub struct NativeResourceHandle {
    handle: Arc<ResourceHandle>,
    rt: Arc<RuntimeShared>,
    /// Set by `detach()`: ends the waits in flight.
    detached: watch::Sender<bool>,
}

impl NativeResourceHandle {
    pub fn new(handle: ResourceHandle, rt: Arc<RuntimeShared>) -> Self {
        NativeResourceHandle {
            handle: Arc::new(handle),
            rt,
            detached: watch::Sender::new(false),
        }
    }

    /// Runs `op` on the runtime, settling a promise with it; `detach()` rejects it
    /// with SB_CANCELLED.
    fn spawn<'env, T: Send + 'static, D: napi::bindgen_prelude::ToNapiValue + 'static>(
        &self,
        env: &'env Env,
        what: &'static str,
        op: impl Future<Output = switchboard_core::Result<T>> + Send + 'static,
        make: impl FnOnce(Env, T) -> D + Send + 'static,
    ) -> Result<Object<'env>> {
        let (settle, promise) = Settle::<D>::new(env)?;
        // Once detached, core's own FailedPrecondition answers; only a detach that comes
        // while the call is in flight cancels it.
        let mut detached = self.detached.subscribe();
        let already = *detached.borrow();
        let who = format!(
            "consumer \"{}\" detached from resource \"{}\"",
            self.handle.consumer(),
            self.handle.id()
        );
        // If the task cannot be spawned (manager closed) it is dropped unrun and the
        // settling half rejects with SB_UNAVAILABLE.
        let _ = self.rt.spawn(async move {
            // A detach that came before this task ran still cancels (biased: checked
            // first), rather than racing core's FailedPrecondition.
            let r = tokio::select! {
                biased;
                () = until_set(&mut detached), if !already => Err(Error::new(
                    Code::Cancelled,
                    format!("{what} cancelled: {who} while it was in progress"),
                )),
                r = op => r,
            };
            settle.settle(r, make);
        });
        Ok(promise)
    }
}

/// Resolves once `rx` is true; never if its sender goes away first.
async fn until_set(rx: &mut watch::Receiver<bool>) {
    if rx.wait_for(|d| *d).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Runs the blocking `f` on the runtime's blocking threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> switchboard_core::Result<T> + Send + 'static,
) -> switchboard_core::Result<T> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(Error::internal(format!(
            "a blocking resource call failed: {e}"
        )))
    })
}

/// Waits until `sock` is readable (data, or the peer's close), through a duplicate of
/// its fd registered for this wait only.
async fn readable(sock: &Socket) -> switchboard_core::Result<()> {
    let fd = sock
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| Error::from_io("duplicate the resource's socket", &e))?;
    // SAFETY: the AsyncFd owns `fd` (a duplicate made above), so the fd stays open and
    // refers to the same socket for as long as it is registered; it is deregistered
    // before the OwnedFd closes it, when `afd` drops.
    let afd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.map_err(|e| {
        Error::from_io("register the resource's socket with the runtime", &e.into())
    })?;
    let _ready = afd
        .readable()
        .await
        .map_err(|e| Error::from_io("wait for the resource's socket", &e))?;
    Ok(())
}

/// One read: wait until the handle's current socket is readable, then `recv` through
/// the handle (counted by core). If the resource swapped its socket meanwhile (a
/// reconnect, an update), the read ends on the socket it waited on, as an operation in
/// flight on the old connection does: with its last bytes, or empty for its close.
/// (Those bytes are not counted: core counts only its handle's calls; see
/// .notes/resources-node-requests.md.)
async fn read(h: Arc<ResourceHandle>, max: usize) -> switchboard_core::Result<Vec<u8>> {
    let sock = h.socket()?;
    readable(&sock).await?;
    let current = h.socket().is_ok_and(|now| Arc::ptr_eq(&now, &sock));
    blocking(move || {
        let mut buf = vec![0u8; max];
        let n = if current {
            h.recv(&mut buf)?
        } else {
            sock.recv(&mut buf)?
        };
        buf.truncate(n);
        Ok(buf)
    })
    .await
}

/// `fut` within `timeout` (`None`: unbounded), as core words a lease's call timeout.
async fn within<T>(
    timeout: Option<Duration>,
    what: &str,
    fut: impl Future<Output = switchboard_core::Result<T>>,
) -> switchboard_core::Result<T> {
    let Some(d) = timeout else {
        return fut.await;
    };
    tokio::time::timeout(d, fut).await.unwrap_or_else(|_| {
        Err(Error::timeout(format!(
            "{what} timed out after {} ms",
            d.as_millis()
        )))
    })
}

#[napi]
impl NativeResourceHandle {
    /// The resource's id.
    #[napi(getter)]
    pub fn id(&self) -> String {
        self.handle.id().to_string()
    }

    /// This consumer's name.
    #[napi(getter)]
    pub fn consumer(&self) -> String {
        self.handle.consumer().to_string()
    }

    /// `connecting`, `connected`, `recovering` or `disconnected`.
    #[napi(getter)]
    pub fn status(&self) -> String {
        self.handle.status().as_str().to_string()
    }

    /// Whether `detach()` was called.
    #[napi(getter)]
    pub fn detached(&self) -> bool {
        *self.detached.borrow()
    }

    /// The id of the program's object (a registered type) in `index.js`'s map.
    #[napi]
    pub fn object_id(&self) -> Result<f64> {
        guard(|| Ok(self.handle.object::<u64>().map_err(to_napi)? as f64))
    }

    /// Writes all of `data` to the current connection; resolves with undefined.
    #[napi]
    pub fn write<'env>(&self, env: &'env Env, data: Buffer) -> Result<Object<'env>> {
        guard(|| {
            let bytes: Vec<u8> = data.as_ref().to_vec();
            drop(data);
            let h = self.handle.clone();
            self.spawn(
                env,
                "write",
                blocking(move || h.send_all(&bytes)),
                |_, ()| (),
            )
        })
    }

    /// Reads up to `max` bytes (default 64 KiB) once at least one is available, within
    /// `timeout` (a duration string); resolves with a Buffer, empty when the peer
    /// closed the connection.
    #[napi]
    pub fn read<'env>(
        &self,
        env: &'env Env,
        max: Option<u32>,
        timeout: Option<String>,
    ) -> Result<Object<'env>> {
        guard(|| {
            let max = max.unwrap_or(DEFAULT_READ);
            if max == 0 || max > MAX_READ {
                return Err(sb_error(
                    Code::InvalidArgument,
                    format!("read size must be an integer 1..={MAX_READ}, got {max}"),
                ));
            }
            let timeout = timeout
                .map(|t| crate::manager::duration("read timeout", &t))
                .transpose()?;
            let h = self.handle.clone();
            self.spawn(
                env,
                "read",
                async move { within(timeout, "read", read(h, max as usize)).await },
                |_, mut bytes: Vec<u8>| {
                    if bytes.len() < bytes.capacity() / 2 {
                        bytes.shrink_to_fit();
                    }
                    Buffer::from(bytes)
                },
            )
        })
    }

    /// Resolves when the resource is connected, across reconnects (SB_TIMEOUT after
    /// `timeout`, SB_UNAVAILABLE if it stopped).
    #[napi]
    pub fn wait_ready<'env>(&self, env: &'env Env, timeout: String) -> Result<Object<'env>> {
        guard(|| {
            let timeout = crate::manager::duration("waitReady timeout", &timeout)?;
            let h = self.handle.clone();
            self.spawn(
                env,
                "waitReady",
                async move { h.ready(timeout).await },
                |_, ()| (),
            )
        })
    }

    /// This consumer saw an error: the resource checks (and probes) now.
    #[napi]
    pub fn report_failure(&self) {
        self.handle.report_failure();
    }

    /// Lets go of the resource; calls in flight reject with SB_CANCELLED. Safe twice.
    #[napi]
    pub fn detach(&self) {
        self.handle.detach();
        self.detached.send_replace(true);
    }
}

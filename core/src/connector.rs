//! Connectors: how a pool opens, checks and closes its connections.
//!
//! [`TcpConnector`] is built in (TCP and Unix sockets, connect timeout, keepalive).
//! Programs with their own connection objects implement [`Connector`].

use std::future::Future;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::config::Config;
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};

/// How a pool opens and closes connections of type [`Connector::Conn`].
///
/// `connect` runs on the manager's runtime; `is_alive` runs on the thread that
/// acquires (it must be cheap and must not block); `close` runs wherever the
/// connection is let go.
pub trait Connector: Send + Sync + 'static {
    /// The managed connection type.
    type Conn: Send + 'static;

    /// Opens a connection to `endpoint`. The pool bounds it by its connect timeout.
    fn connect(&self, endpoint: &Endpoint) -> impl Future<Output = Result<Self::Conn>> + Send;

    /// A cheap check on checkout: `false` means the connection is broken and must be
    /// closed instead of handed out.
    fn is_alive(&self, _conn: &mut Self::Conn) -> bool {
        true
    }

    /// Whether [`Connector::check`] does anything: the pool skips the probe when not.
    fn has_check(&self) -> bool {
        false
    }

    /// A full probe, run on a connection idle longer than `pool.validate_after` before
    /// it is handed out, and on idle connections by the background upkeep. The pool
    /// bounds it by `pool.validation_timeout`; an error closes the connection.
    fn check(&self, _conn: &mut Self::Conn) -> impl Future<Output = Result<()>> + Send {
        std::future::ready(Ok(()))
    }

    /// Puts a connection that comes back from a lease into its pooled state (e.g.
    /// clears per-lease socket timeouts). `false` means it cannot be reused and the
    /// pool closes it. Runs on the releasing thread; must be cheap when nothing changed.
    fn recycle(&self, _conn: &mut Self::Conn) -> bool {
        true
    }

    /// Closes a connection the pool is done with.
    fn close(&self, conn: Self::Conn) {
        drop(conn);
    }
}

/// A connected built-in socket (TCP or Unix). While leased it is in blocking mode, so
/// a C program can use its fd with plain `send`/`recv`.
#[derive(Debug)]
pub struct Socket {
    kind: SocketKind,
    /// Set when a lease changed per-lease state (timeouts) that recycling must undo.
    dirty: AtomicBool,
    /// Set when a send or receive failed (reset, broken pipe; not a timeout): the
    /// pool closes it instead of reusing it.
    broken: AtomicBool,
}

#[derive(Debug)]
enum SocketKind {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Socket {
    /// The raw file descriptor. It stays owned by the socket.
    pub fn fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }

    /// Sends some of `buf`, blocking; returns how many bytes went.
    pub fn send(&self, buf: &[u8]) -> Result<usize> {
        let r = match &self.kind {
            SocketKind::Tcp(s) => (&*s).write(buf),
            SocketKind::Unix(s) => (&*s).write(buf),
        };
        r.map_err(|e| self.failed(Error::from_io("send", &e)))
    }

    /// Sends all of `buf`, blocking.
    pub fn send_all(&self, buf: &[u8]) -> Result<()> {
        let r = match &self.kind {
            SocketKind::Tcp(s) => (&*s).write_all(buf),
            SocketKind::Unix(s) => (&*s).write_all(buf),
        };
        r.map_err(|e| self.failed(Error::from_io("send", &e)))
    }

    /// Receives into `buf`, blocking until at least one byte arrives; `Ok(0)` means
    /// the peer closed the connection.
    pub fn recv(&self, buf: &mut [u8]) -> Result<usize> {
        let r = match &self.kind {
            SocketKind::Tcp(s) => (&*s).read(buf),
            SocketKind::Unix(s) => (&*s).read(buf),
        };
        r.map_err(|e| self.failed(Error::from_io("recv", &e)))
    }

    /// Whether a send or receive on it has failed (it will not go back to the pool).
    pub fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Relaxed)
    }

    /// Marks the socket broken after an error, except a timeout: the program decides
    /// whether a timed-out exchange left the stream usable (discard the lease if not).
    fn failed(&self, e: Error) -> Error {
        if e.code() != crate::error::Code::Timeout {
            self.broken.store(true, Ordering::Relaxed);
        }
        e
    }

    /// Sets the deadline of each blocking send and recv (`None`: wait forever). A
    /// call that passes it fails with Timeout.
    pub fn set_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        self.dirty.store(true, Ordering::Relaxed);
        let timeout = timeout.map(|t| t.max(Duration::from_micros(1)));
        let r = match &self.kind {
            SocketKind::Tcp(s) => s
                .set_read_timeout(timeout)
                .and_then(|_| s.set_write_timeout(timeout)),
            SocketKind::Unix(s) => s
                .set_read_timeout(timeout)
                .and_then(|_| s.set_write_timeout(timeout)),
        };
        r.map_err(|e| Error::from_io("set socket timeout", &e))
    }

    /// Whether the peer is still there, without blocking and without consuming data:
    /// a peer that closed (FIN) or reset the connection makes this `false`.
    pub fn is_alive(&self) -> bool {
        let mut byte = 0u8;
        // SAFETY: fd is a valid open socket owned by self; the buffer is one writable
        // byte that outlives the call; MSG_PEEK leaves the data in the socket.
        let n = unsafe {
            libc::recv(
                self.fd(),
                (&mut byte as *mut u8).cast(),
                1,
                libc::MSG_PEEK | libc::MSG_DONTWAIT,
            )
        };
        match n {
            0 => false,
            n if n > 0 => true,
            _ => {
                let err = io::Error::last_os_error();
                matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                )
            }
        }
    }

    /// Writes all of `buf` without blocking a thread; for async callers (Node, asyncio).
    /// Must run on the manager's runtime.
    pub async fn write_all_async(&self, buf: &[u8]) -> Result<()> {
        let mut done = 0;
        self.with_async(Interest::WRITABLE, |s| {
            while done < buf.len() {
                match s.send(&buf[done..]) {
                    Ok(0) => {
                        return Some(Err(Error::unavailable("send: connection closed by peer")));
                    }
                    Ok(n) => done += n,
                    Err(e) => return retry_or(e),
                }
            }
            Some(Ok(()))
        })
        .await
    }

    /// Reads up to `max` bytes without blocking a thread; an empty result means the
    /// peer closed. Must run on the manager's runtime.
    pub async fn read_async(&self, max: usize) -> Result<Vec<u8>> {
        let mut buf = vec![0u8; max];
        let n = self
            .with_async(Interest::READABLE, |s| match s.recv(&mut buf) {
                Ok(n) => Some(Ok(n)),
                Err(e) => retry_or(e),
            })
            .await?;
        buf.truncate(n);
        Ok(buf)
    }

    /// [`Socket::write_all_async`] within `timeout` (`None`: unbounded). Past it, fails
    /// with Timeout; part of the data may have gone, so discard the lease then. A
    /// timeout does not mark the socket broken.
    pub async fn write_all_async_within(
        &self,
        buf: &[u8],
        timeout: Option<Duration>,
    ) -> Result<()> {
        within(timeout, "write", self.write_all_async(buf)).await
    }

    /// [`Socket::read_async`] within `timeout` (`None`: unbounded). Past it, fails with
    /// Timeout and nothing was consumed; the socket stays usable.
    pub async fn read_async_within(
        &self,
        max: usize,
        timeout: Option<Duration>,
    ) -> Result<Vec<u8>> {
        within(timeout, "read", self.read_async(max)).await
    }

    /// Runs `op` in non-blocking mode whenever the socket is ready, until it returns
    /// `Some`; puts the socket back into blocking mode afterwards.
    async fn with_async<T>(
        &self,
        interest: Interest,
        mut op: impl FnMut(&Socket) -> Option<Result<T>>,
    ) -> Result<T> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::failed_precondition(
                "async socket calls must run on the manager's runtime",
            ));
        }
        self.set_nonblocking(true)?;
        // Back to blocking mode however this ends, cancellation included.
        let _restore = RestoreBlocking(self);
        let result = async {
            // SAFETY: the fd belongs to `self`, which is borrowed for the whole life of
            // `afd` (dropped at the end of this block), so it stays open and refers to
            // the same socket; FdRef always returns that same fd.
            let afd = unsafe { AsyncFd::register_with_interest(FdRef(self.fd()), interest) }
                .map_err(|e| Error::from_io("register socket with the runtime", &e.into()))?;
            loop {
                let mut guard = afd
                    .ready(interest)
                    .await
                    .map_err(|e| Error::from_io("wait for socket", &e))?;
                if let Some(r) = op(self) {
                    return r;
                }
                guard.clear_ready();
            }
        }
        .await;
        drop(_restore);
        result.map_err(|e| self.failed(e))
    }

    fn set_nonblocking(&self, on: bool) -> Result<()> {
        let r = match &self.kind {
            SocketKind::Tcp(s) => s.set_nonblocking(on),
            SocketKind::Unix(s) => s.set_nonblocking(on),
        };
        r.map_err(|e| Error::from_io("set socket mode", &e))
    }
}

/// Runs `fut` within `timeout`; past it, a Timeout error naming `what` and the limit.
async fn within<T>(
    timeout: Option<Duration>,
    what: &str,
    fut: impl Future<Output = Result<T>>,
) -> Result<T> {
    let Some(d) = timeout else {
        return fut.await;
    };
    match tokio::time::timeout(d, fut).await {
        Ok(r) => r,
        Err(_) => Err(Error::timeout(format!(
            "{what} timed out after {} ms",
            d.as_millis()
        ))),
    }
}

struct RestoreBlocking<'a>(&'a Socket);

impl Drop for RestoreBlocking<'_> {
    fn drop(&mut self) {
        if self.0.set_nonblocking(false).is_err() {
            // Leave a mark so that recycling retries (and discards on failure).
            self.0.dirty.store(true, Ordering::Relaxed);
        }
    }
}

fn retry_or<T>(e: Error) -> Option<Result<T>> {
    if e.errno() == Some(libc::EAGAIN) || e.errno() == Some(libc::EINTR) {
        None
    } else {
        Some(Err(e))
    }
}

/// A borrowed fd for `AsyncFd`; dropping it deregisters without closing.
struct FdRef(RawFd);

impl AsRawFd for FdRef {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

impl AsFd for Socket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match &self.kind {
            SocketKind::Tcp(s) => s.as_fd(),
            SocketKind::Unix(s) => s.as_fd(),
        }
    }
}

/// Settings of the built-in connector, from the `tcp.*` and `probe.*` keys.
#[derive(Debug, Clone)]
pub struct TcpSettings {
    /// Keepalive idle time; `None` turns keepalive off.
    pub keepalive: Option<Duration>,
    /// TCP_NODELAY.
    pub nodelay: bool,
    /// Bytes the probe sends (`probe.send`); empty: no probe.
    pub probe_send: Vec<u8>,
    /// Prefix the probe's answer must start with (`probe.expect`).
    pub probe_expect: Vec<u8>,
}

impl TcpSettings {
    /// Reads the `tcp.*` keys.
    pub fn from_config(cfg: &Config) -> Self {
        let ka = cfg.duration("tcp.keepalive");
        TcpSettings {
            keepalive: (!ka.is_zero()).then_some(ka),
            nodelay: cfg.bool("tcp.nodelay"),
            probe_send: cfg.bytes("probe.send"),
            probe_expect: cfg.bytes("probe.expect"),
        }
    }
}

/// The built-in connector: TCP (`tcp://host:port`) and Unix sockets (`unix:///path`).
#[derive(Debug, Clone)]
pub struct TcpConnector {
    settings: TcpSettings,
}

impl TcpConnector {
    /// Runs the probe (`probe.send` / `probe.expect`) on a socket that may be shared
    /// (a named resource's): it only needs `&Socket`. See [`Connector::check`].
    pub async fn probe(&self, conn: &Socket) -> Result<()> {
        let (send, expect) = (&self.settings.probe_send, &self.settings.probe_expect);
        if !send.is_empty() {
            conn.write_all_async(send).await?;
        }
        let line = send.ends_with(b"\n");
        let mut got: Vec<u8> = Vec::new();
        while got.len() < expect.len() || (line && !got.ends_with(b"\n")) {
            let chunk = conn.read_async(256).await?;
            if chunk.is_empty() {
                return Err(Error::unavailable("probe: connection closed by peer"));
            }
            got.extend_from_slice(&chunk);
            if got.len() > 64 * 1024 {
                break;
            }
        }
        if got.starts_with(expect) {
            Ok(())
        } else {
            Err(Error::unavailable(format!(
                "probe: expected an answer starting with \"{}\", got \"{}\"",
                expect.escape_ascii(),
                got.escape_ascii()
            )))
        }
    }

    /// A connector with the given settings.
    pub fn new(settings: TcpSettings) -> Self {
        TcpConnector { settings }
    }
}

impl Connector for TcpConnector {
    type Conn = Socket;

    async fn connect(&self, endpoint: &Endpoint) -> Result<Socket> {
        let ctx = || format!("connect to {endpoint}");
        let kind = match endpoint {
            Endpoint::Tcp { host, port } => {
                let s = tokio::net::TcpStream::connect((host.as_str(), *port))
                    .await
                    .map_err(|e| Error::from_io(ctx(), &e))?;
                let s = s.into_std().map_err(|e| Error::from_io(ctx(), &e))?;
                let sock = socket2::SockRef::from(&s);
                if let Some(idle) = self.settings.keepalive {
                    let ka = socket2::TcpKeepalive::new()
                        .with_time(idle)
                        .with_interval(Duration::from_secs(idle.as_secs().clamp(1, 10)));
                    sock.set_tcp_keepalive(&ka)
                        .map_err(|e| Error::from_io(ctx(), &e))?;
                }
                s.set_nodelay(self.settings.nodelay)
                    .map_err(|e| Error::from_io(ctx(), &e))?;
                s.set_nonblocking(false)
                    .map_err(|e| Error::from_io(ctx(), &e))?;
                SocketKind::Tcp(s)
            }
            Endpoint::Unix(path) => {
                let s = tokio::net::UnixStream::connect(path)
                    .await
                    .map_err(|e| Error::from_io(ctx(), &e))?;
                let s = s.into_std().map_err(|e| Error::from_io(ctx(), &e))?;
                s.set_nonblocking(false)
                    .map_err(|e| Error::from_io(ctx(), &e))?;
                SocketKind::Unix(s)
            }
            Endpoint::Named(name) => {
                return Err(Error::invalid_argument(format!(
                    "the built-in connector cannot open \"{name}\"; use tcp://host:port or unix:///path, or supply a custom connector"
                )));
            }
        };
        Ok(Socket {
            kind,
            dirty: AtomicBool::new(false),
            broken: AtomicBool::new(false),
        })
    }

    #[inline]
    fn is_alive(&self, conn: &mut Socket) -> bool {
        conn.is_alive()
    }

    fn has_check(&self) -> bool {
        !self.settings.probe_send.is_empty() || !self.settings.probe_expect.is_empty()
    }

    /// Sends `probe.send` and reads until the answer holds `probe.expect.len()` bytes
    /// (and, when the probe is a line ending in `\n`, up to the end of the answer's
    /// line, so no part of the answer is left for the next user), then compares.
    async fn check(&self, conn: &mut Socket) -> Result<()> {
        self.probe(conn).await
    }

    #[inline]
    fn recycle(&self, conn: &mut Socket) -> bool {
        if *conn.broken.get_mut() {
            return false;
        }
        if !*conn.dirty.get_mut() {
            return true;
        }
        let ok = conn.set_timeout(None).is_ok() && conn.set_nonblocking(false).is_ok();
        // set_timeout marked it again; it is clean now (or about to be closed).
        *conn.dirty.get_mut() = false;
        ok
    }
}

/// A boxed, sendable future.
pub type BoxFuture<T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'static>>;

type ConnectFn<T> = dyn Fn(&Endpoint) -> BoxFuture<Result<T>> + Send + Sync;
type CheckFn<T> = dyn Fn(T) -> BoxFuture<Result<()>> + Send + Sync;
type CloseFn<T> = dyn Fn(T) + Send + Sync;

/// A connector made of functions supplied by the program, for pools of the program's
/// own objects (a database client, an RPC stub). The bindings build their custom
/// connectors (C function pointers, Python callables, JS functions) on this.
///
/// `T` is a cheap handle to the program's object (a pointer, a reference-counted
/// reference): `check` gets a clone, `close` gets the pool's copy.
pub struct FnConnector<T> {
    connect: Box<ConnectFn<T>>,
    check: Option<Box<CheckFn<T>>>,
    /// Shared with the blocking connect wrapper, which closes objects that arrive
    /// after their connect was abandoned (timed out or cancelled).
    close: std::sync::Arc<std::sync::OnceLock<Box<CloseFn<T>>>>,
}

impl<T: Clone + Send + Sync + 'static> FnConnector<T> {
    /// A connector whose `connect` returns a future (runs on the manager's runtime).
    pub fn new(
        connect: impl Fn(&Endpoint) -> BoxFuture<Result<T>> + Send + Sync + 'static,
    ) -> Self {
        FnConnector {
            connect: Box::new(connect),
            check: None,
            close: Default::default(),
        }
    }

    /// A connector whose `connect` blocks (a C function, a synchronous Python callable):
    /// it runs on the runtime's blocking thread pool, never on a worker.
    ///
    /// An object that the callback returns after the pool gave up on it (the connect
    /// timed out, or the manager closed) is passed to the close function, never lost.
    pub fn blocking(connect: impl Fn(&Endpoint) -> Result<T> + Send + Sync + 'static) -> Self {
        let connect = std::sync::Arc::new(connect);
        let close: std::sync::Arc<std::sync::OnceLock<Box<CloseFn<T>>>> = Default::default();
        let late_close = close.clone();
        let mut me = Self::new(move |ep| {
            let (f, ep, late_close) = (connect.clone(), ep.clone(), late_close.clone());
            Box::pin(async move {
                let (tx, rx) = tokio::sync::oneshot::channel::<Result<T>>();
                let task = tokio::task::spawn_blocking(move || {
                    if let Err(Ok(orphan)) = tx.send(f(&ep)) {
                        // Nobody waits for it any more: hand it to close.
                        if let Some(c) = late_close.get() {
                            c(orphan);
                        }
                    }
                });
                drop(task);
                match rx.await {
                    Ok(r) => r,
                    Err(_) => Err(Error::internal(
                        "the connect callback panicked or its thread was stopped",
                    )),
                }
            })
        });
        me.close = close;
        me
    }

    /// Adds an async check (the probe).
    pub fn with_check(
        mut self,
        check: impl Fn(T) -> BoxFuture<Result<()>> + Send + Sync + 'static,
    ) -> Self {
        self.check = Some(Box::new(check));
        self
    }

    /// Adds a blocking check, run on the blocking thread pool.
    pub fn with_blocking_check(
        self,
        check: impl Fn(T) -> Result<()> + Send + Sync + 'static,
    ) -> Self {
        let check = std::sync::Arc::new(check);
        self.with_check(move |conn| {
            let f = check.clone();
            Box::pin(async move {
                match tokio::task::spawn_blocking(move || f(conn)).await {
                    Ok(r) => r,
                    Err(e) => Err(Error::internal(format!("check callback failed: {e}"))),
                }
            })
        })
    }

    /// Adds a close function, called once for every connection the pool lets go (and,
    /// for [`FnConnector::blocking`], for objects that arrived too late). Only the
    /// first close function given is kept.
    pub fn with_close(self, close: impl Fn(T) + Send + Sync + 'static) -> Self {
        // Set once; a second with_close keeps the first (documented).
        let _ = self.close.set(Box::new(close));
        self
    }
}

impl<T: Clone + Send + Sync + 'static> Connector for FnConnector<T> {
    type Conn = T;

    fn connect(&self, endpoint: &Endpoint) -> impl Future<Output = Result<T>> + Send {
        (self.connect)(endpoint)
    }

    fn has_check(&self) -> bool {
        self.check.is_some()
    }

    fn check(&self, conn: &mut T) -> impl Future<Output = Result<()>> + Send {
        let fut = self.check.as_ref().map(|c| c(conn.clone()));
        async move {
            match fut {
                Some(f) => f.await,
                None => Ok(()),
            }
        }
    }

    fn close(&self, conn: T) {
        if let Some(c) = self.close.get() {
            c(conn);
        }
    }
}

//! One resource: its one physical connection, its consumers, and the task that dials,
//! watches and redials it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

use super::dialer::{Dialer, ResourceConn};
use super::types::{Props, ResourceInfo, ResourceStatus};
use crate::backoff::{Backoff, BackoffSettings};
use crate::connector::Socket;
use crate::error::{Code, Error, Result};
use crate::events::{Event, EventBus, EventKind};

pub(crate) struct State {
    pub(crate) status: ResourceStatus,
    pub(crate) last_error: Option<String>,
    pub(crate) stopped: bool,
    pub(crate) conn: Option<ResourceConn>,
    /// (handle id, consumer name), in attach order.
    pub(crate) consumers: Vec<(u64, String)>,
    pub(crate) reconnects: u64,
    pub(crate) connected_at: Option<Instant>,
}

pub(crate) struct Resource {
    pub(crate) id: String,
    /// How its connection is made (an update may change the settings).
    dialer: Mutex<Arc<dyn Dialer>>,
    pub(crate) kind: String,
    pub(crate) anonymous: bool,
    /// The props now (an update swaps them).
    props: Mutex<Arc<Props>>,
    /// Bumped by an update: the task of an older generation ends.
    pub(crate) generation: AtomicU64,
    /// Wakes the task so that it sees a new generation.
    pub(crate) rebind: Notify,
    pub(crate) state: Mutex<State>,
    /// The status, for waiters (`wait_ready`).
    pub(crate) status_tx: watch::Sender<ResourceStatus>,
    /// A consumer suspects a failure: probe now.
    pub(crate) kick: Notify,
    /// Deleted or the manager closed: the task ends.
    pub(crate) stop: Notify,
    pub(crate) stopping: AtomicBool,
    pub(crate) bytes_in: AtomicU64,
    pub(crate) bytes_out: AtomicU64,
    events: Arc<EventBus>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether a connect error is the configuration's (retrying cannot help: stop, as
/// eKuiper does) rather than the network's.
fn is_config_error(e: &Error) -> bool {
    e.code() == Code::InvalidArgument
}

impl Resource {
    pub(crate) fn new(
        id: String,
        dialer: Arc<dyn Dialer>,
        kind: &str,
        anonymous: bool,
        props: Props,
        events: Arc<EventBus>,
    ) -> Resource {
        let (status_tx, _) = watch::channel(ResourceStatus::Connecting);
        Resource {
            id,
            dialer: Mutex::new(dialer),
            kind: kind.to_string(),
            anonymous,
            props: Mutex::new(Arc::new(props)),
            generation: AtomicU64::new(0),
            rebind: Notify::new(),
            state: Mutex::new(State {
                status: ResourceStatus::Connecting,
                last_error: None,
                stopped: false,
                conn: None,
                consumers: Vec::new(),
                reconnects: 0,
                connected_at: None,
            }),
            status_tx,
            kick: Notify::new(),
            stop: Notify::new(),
            stopping: AtomicBool::new(false),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            events,
        }
    }

    pub(crate) fn props(&self) -> Arc<Props> {
        lock(&self.props).clone()
    }

    pub(crate) fn info(&self) -> ResourceInfo {
        let endpoint = self.props().endpoint_text.clone();
        let s = lock(&self.state);
        ResourceInfo {
            id: self.id.clone(),
            kind: self.kind.clone(),
            endpoint,
            anonymous: self.anonymous,
            status: s.status,
            last_error: s.last_error.clone(),
            stopped: s.stopped,
            consumers: s.consumers.iter().map(|(_, n)| n.clone()).collect(),
            reconnects: s.reconnects,
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            connected_for: s.connected_at.map(|t| t.elapsed()),
        }
    }

    /// Moves to `to` (once: the same status again is no transition), with the
    /// socket and error that go with it, and emits the `resource_state` event.
    fn transition(&self, to: ResourceStatus, conn: Option<ResourceConn>, error: Option<String>) {
        let from = {
            let mut s = lock(&self.state);
            if let Some(e) = &error {
                s.last_error = Some(e.clone());
            }
            s.conn = conn;
            s.connected_at = (to == ResourceStatus::Connected).then(Instant::now);
            if to == ResourceStatus::Disconnected && !self.stopping.load(Ordering::Acquire) {
                s.stopped = true;
            }
            let from = s.status;
            if from == to {
                return;
            }
            s.status = to;
            from
        };
        self.status_tx.send_replace(to);
        let why = match (&error, to) {
            (Some(e), _) => format!(": {e}"),
            _ => String::new(),
        };
        self.events.emit(Event {
            resource: Some(self.id.clone()),
            endpoint: Some(self.props().endpoint_text.clone()),
            old_state: Some(from.as_str()),
            new_state: Some(to.as_str()),
            reason: error,
            ..Event::new(
                EventKind::ResourceState,
                format!(
                    "resource \"{}\" {} -> {}{why}",
                    self.id,
                    from.as_str(),
                    to.as_str()
                ),
            )
        });
    }

    /// An update: the new props and their connection, swapped in for every consumer
    /// (consumers still holding the old socket finish with it; it closes when the
    /// last of them lets go). Returns the generation the new task must run as.
    pub(crate) fn rebind(&self, props: Props, dialer: Arc<dyn Dialer>, conn: ResourceConn) -> u64 {
        let old = std::mem::replace(&mut *lock(&self.props), Arc::new(props));
        *lock(&self.dialer) = dialer;
        let generation = self.generation.fetch_add(1, Ordering::AcqRel) + 1;
        self.rebind.notify_waiters();
        self.rebind.notify_one();
        self.transition(ResourceStatus::Connected, Some(conn), None);
        let new = self.props();
        self.events.emit(Event {
            resource: Some(self.id.clone()),
            endpoint: Some(new.endpoint_text.clone()),
            ..Event::new(
                EventKind::ResourceRebound,
                format!(
                    "resource \"{}\" was updated: its consumers now use {} (was {})",
                    self.id, new.endpoint_text, old.endpoint_text
                ),
            )
        });
        generation
    }

    /// The current connection, or Unavailable saying why there is none.
    pub(crate) fn conn(&self) -> Result<ResourceConn> {
        let s = lock(&self.state);
        match &s.conn {
            Some(c) => Ok(c.clone()),
            None => Err(Error::unavailable(format!(
                "resource \"{}\" is {}{}",
                self.id,
                s.status.as_str(),
                s.last_error
                    .as_ref()
                    .map(|e| format!(" (last error: {e})"))
                    .unwrap_or_default()
            ))),
        }
    }

    /// The current socket of a built-in resource.
    pub(crate) fn socket(&self) -> Result<Arc<Socket>> {
        match self.conn()? {
            ResourceConn::Socket(s) => Ok(s),
            ResourceConn::Object(_) => Err(Error::failed_precondition(format!(
                "resource \"{}\" is of the program's type \"{}\": it holds the program's object, not a socket (use object())",
                self.id, self.kind
            ))),
        }
    }

    /// Waits until connected (across reconnects) or `timeout`.
    pub(crate) async fn ready(&self, timeout: Duration) -> Result<ResourceConn> {
        let mut rx = self.status_tx.subscribe();
        let wait = async {
            loop {
                let status = *rx.borrow_and_update();
                if status == ResourceStatus::Connected {
                    if let Ok(c) = self.conn() {
                        return Ok(c);
                    }
                }
                if status == ResourceStatus::Disconnected {
                    return self.conn();
                }
                if rx.changed().await.is_err() {
                    return self.conn();
                }
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(r) => r,
            Err(_) => Err(Error::timeout(format!(
                "resource \"{}\" was not connected within {}: {}",
                self.id,
                crate::config::fmt_duration(timeout),
                self.socket()
                    .err()
                    .map(|e| e.to_string())
                    .unwrap_or_default()
            ))),
        }
    }

    /// Ends the task: deleted, or the manager closed.
    pub(crate) fn shut(&self, why: &str) {
        self.stopping.store(true, Ordering::Release);
        self.stop.notify_one();
        self.transition(ResourceStatus::Disconnected, None, Some(why.to_string()));
    }
}

/// The resource's task: dial (retrying with backoff on network errors, stopping on
/// configuration errors), then watch the connection (a liveness check every
/// `health.interval`, and a probe when a consumer reports a failure), and redial
/// when it is lost.
pub(crate) async fn run(res: Arc<Resource>, generation: u64, mut first: Option<ResourceConn>) {
    let props = res.props();
    let cfg = &props.config;
    let dialer = lock(&res.dialer).clone();
    let mut backoff = Backoff::new(BackoffSettings::from_config(cfg));
    let connect_timeout = cfg
        .duration("pool.connect_timeout")
        .max(Duration::from_millis(1));
    let probe_timeout = cfg
        .duration("pool.validation_timeout")
        .max(Duration::from_millis(1));
    let every = Some(cfg.duration("health.interval")).filter(|d| !d.is_zero());
    let mut lost = false;
    let stale = || {
        res.stopping.load(Ordering::Acquire) || res.generation.load(Ordering::Acquire) != generation
    };
    loop {
        if stale() {
            return;
        }
        let attempt = match first.take() {
            // An update dialled it already.
            Some(sock) => Ok(Ok(sock)),
            None => {
                // A redial takes a place under the process-wide reconnect cap
                // (`backoff.max_concurrent_reconnects`, shared with the pools), so an
                // endpoint that comes back is not stormed by every resource at once.
                let _permit = if lost || backoff.failures() > 0 {
                    match crate::backoff::ReconnectPermit::try_take() {
                        Some(p) => Some(p),
                        None => {
                            let wait = Duration::from_millis(10)
                                .mul_f64(1.0 + 4.0 * crate::random::unit());
                            match pause(&res, wait).await {
                                Flow::Again => continue,
                                Flow::Stop => return,
                            }
                        }
                    }
                } else {
                    None
                };
                let dial = tokio::time::timeout(connect_timeout, dialer.connect(&props.endpoint));
                tokio::select! {
                    r = dial => r,
                    _ = res.stop.notified() => return,
                    _ = res.rebind.notified() => continue,
                }
            }
        };
        let sock = match attempt {
            Ok(Ok(sock)) => sock,
            Ok(Err(e)) if is_config_error(&e) => {
                res.transition(ResourceStatus::Disconnected, None, Some(e.to_string()));
                return;
            }
            other => {
                let why = match other {
                    Ok(Err(e)) => e.to_string(),
                    _ => format!(
                        "connect to {} timed out after {}",
                        props.endpoint_text,
                        crate::config::fmt_duration(connect_timeout)
                    ),
                };
                lock(&res.state).last_error = Some(why);
                match pause(&res, backoff.fail(crate::random::unit())).await {
                    Flow::Again => continue,
                    Flow::Stop => return,
                }
            }
        };
        if dialer.has_probe() {
            let probed = tokio::time::timeout(probe_timeout, dialer.probe(&sock)).await;
            if !matches!(probed, Ok(Ok(()))) {
                let why = match probed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "the probe timed out".to_string(),
                };
                lock(&res.state).last_error = Some(why);
                match pause(&res, backoff.fail(crate::random::unit())).await {
                    Flow::Again => continue,
                    Flow::Stop => return,
                }
            }
        }
        if stale() {
            return;
        }
        backoff.reset();
        if lost {
            lock(&res.state).reconnects += 1;
        }
        res.transition(ResourceStatus::Connected, Some(sock.clone()), None);
        // Watch it until it is lost.
        let why = loop {
            let forced = tokio::select! {
                _ = sleep_or_forever(every) => false,
                _ = res.kick.notified() => true,
                _ = res.stop.notified() => return,
                _ = res.rebind.notified() => {
                    if stale() {
                        return;
                    }
                    continue;
                }
            };
            if !dialer.alive(&sock) {
                break "the connection was closed by the peer".to_string();
            }
            if (forced || dialer.probe_periodically()) && dialer.has_probe() {
                // A consumer reported a failure (or the program's own check is the
                // only check there is): probe now instead of at the next check.
                let probed = tokio::time::timeout(probe_timeout, dialer.probe(&sock)).await;
                if !matches!(probed, Ok(Ok(()))) {
                    break if forced {
                        "a probe after a reported failure failed".to_string()
                    } else {
                        "the check failed".to_string()
                    };
                }
            } else if forced && matches!(&sock, ResourceConn::Socket(s) if s.is_broken()) {
                break "a consumer reported a failure on a broken connection".to_string();
            }
        };
        lost = true;
        res.transition(ResourceStatus::Recovering, None, Some(why));
    }
}

/// After a pause: dial again, or stop (deleted, or the manager closed).
enum Flow {
    Again,
    Stop,
}

/// Waits `wait` (a backoff delay), ended early by a stop or an update.
async fn pause(res: &Resource, wait: Duration) -> Flow {
    tokio::select! {
        _ = tokio::time::sleep(wait) => Flow::Again,
        _ = res.stop.notified() => Flow::Stop,
        _ = res.rebind.notified() => Flow::Again,
    }
}

async fn sleep_or_forever(every: Option<Duration>) {
    match every {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

//! The hub's side facing the program: what hub clients send (other than the hub's own
//! `subscribe`, `unsubscribe`, `ping`, `pong` and `heartbeat`) is handed to the program
//! as a [`HubMessage`], pulled ([`Hub::recv`], [`Hub::next`]) or pushed to a handler
//! ([`Hub::set_handler`]). The queue is bounded (`server.hub_queue`): when full, the
//! oldest message is dropped and counted, so a program that never reads loses old
//! messages, never memory.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;

use crate::error::{Error, Result};

/// A message a hub client sent to the program.
#[derive(Debug, Clone, PartialEq)]
pub struct HubMessage {
    /// The registry id of the client that sent it.
    pub connection_id: u64,
    /// The client's user (from the auth hook), if any.
    pub user: Option<String>,
    /// The envelope's `type` (`data`, `chat`, ...).
    pub kind: String,
    /// The envelope's `topic`, if any.
    pub topic: Option<String>,
    /// The whole JSON text as the client sent it.
    pub text: String,
}

/// A callback that takes hub messages instead of the queue.
pub type HubHandler = Arc<dyn Fn(HubMessage) + Send + Sync>;

#[derive(Default)]
struct Counters {
    received: AtomicU64,
    dropped: AtomicU64,
    accepted: AtomicU64,
    refused: AtomicU64,
}

struct Inner {
    queue: Mutex<VecDeque<HubMessage>>,
    ready: Condvar,
    notify: tokio::sync::Notify,
    handler: RwLock<Option<HubHandler>>,
    capacity: usize,
    closed: AtomicBool,
    counters: Counters,
    /// Hub clients whose writer has not yet sent its close frame.
    live: AtomicUsize,
}

/// Counts a hub client as live until dropped (after its close frame is written).
pub(crate) struct Live(Arc<Inner>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The hub's inbound side ([`crate::Manager::hub`]). Cheap to clone. Present on every
/// manager; with no server (`server.listen` empty) nothing ever arrives.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("queued", &self.queue().len())
            .finish()
    }
}

impl Hub {
    pub(crate) fn new(capacity: usize) -> Hub {
        Hub {
            inner: Arc::new(Inner {
                queue: Mutex::new(VecDeque::new()),
                ready: Condvar::new(),
                notify: tokio::sync::Notify::new(),
                handler: RwLock::new(None),
                capacity: capacity.max(1),
                closed: AtomicBool::new(false),
                counters: Counters::default(),
                live: AtomicUsize::new(0),
            }),
        }
    }

    fn queue(&self) -> MutexGuard<'_, VecDeque<HubMessage>> {
        self.inner.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::unavailable("the manager is closed; its hub is gone"));
        }
        Ok(())
    }

    /// The next message, waiting up to `timeout` on the calling thread (not on an
    /// async runtime's: use [`Hub::next`] there); `Ok(None)` when none came in time.
    /// Unavailable once the manager is closed.
    pub fn recv(&self, timeout: Duration) -> Result<Option<HubMessage>> {
        let deadline = Instant::now() + timeout;
        let mut q = self.queue();
        loop {
            if let Some(m) = q.pop_front() {
                return Ok(Some(m));
            }
            self.check_open()?;
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            q = self
                .inner
                .ready
                .wait_timeout(q, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// The next message, waiting for one. Unavailable once the manager is closed.
    pub async fn next(&self) -> Result<HubMessage> {
        loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(m) = self.queue().pop_front() {
                return Ok(m);
            }
            self.check_open()?;
            notified.await;
        }
    }

    /// Sends every later message to `handler` (on a runtime thread; it must not
    /// block) instead of the queue; `None` goes back to the queue. Returns the
    /// previous handler.
    pub fn set_handler(&self, handler: Option<HubHandler>) -> Option<HubHandler> {
        let mut slot = self
            .inner
            .handler
            .write()
            .unwrap_or_else(|p| p.into_inner());
        std::mem::replace(&mut *slot, handler)
    }

    /// Messages dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.inner.counters.dropped.load(Ordering::Relaxed)
    }

    /// Messages waiting in the queue.
    pub fn queued(&self) -> usize {
        self.queue().len()
    }

    pub(crate) fn deliver(&self, msg: HubMessage) {
        let c = &self.inner.counters;
        c.received.fetch_add(1, Ordering::Relaxed);
        let handler = self
            .inner
            .handler
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(h) = handler {
            // A panicking handler loses its message, not the client's connection.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| h(msg)));
            return;
        }
        {
            let mut q = self.queue();
            if q.len() >= self.inner.capacity {
                q.pop_front();
                c.dropped.fetch_add(1, Ordering::Relaxed);
            }
            q.push_back(msg);
        }
        self.inner.ready.notify_one();
        self.inner.notify.notify_one();
    }

    /// A hub client's writer starts.
    pub(crate) fn live(&self) -> Live {
        self.inner.live.fetch_add(1, Ordering::AcqRel);
        Live(self.inner.clone())
    }

    /// Waits (until `deadline`) for every hub client's writer to send its close frame:
    /// the manager's close calls it after the registry's shutdown queued them, so
    /// that clients get 1001 before the runtime stops.
    pub(crate) fn wait_closed(&self, deadline: Instant) {
        while self.inner.live.load(Ordering::Acquire) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    pub(crate) fn count_accepted(&self) {
        self.inner.counters.accepted.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_refused(&self) {
        self.inner.counters.refused.fetch_add(1, Ordering::Relaxed);
    }

    /// Wakes every waiter with Unavailable and lets go of the handler (which often
    /// refers back to its manager through a binding's objects).
    pub(crate) fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        drop(self.set_handler(None));
        // Taken and released so that a waiter between its check and its wait sees it.
        drop(self.queue());
        self.inner.ready.notify_all();
        self.inner.notify.notify_waiters();
    }

    pub(crate) fn collector(&self) -> HubCollector {
        let c = &self.inner.counters;
        HubCollector {
            values: [
                c.accepted.load(Ordering::Relaxed),
                c.refused.load(Ordering::Relaxed),
                c.received.load(Ordering::Relaxed),
                c.dropped.load(Ordering::Relaxed),
            ],
        }
    }
}

/// The `switchboard_hub_*` series.
#[derive(Debug)]
pub(crate) struct HubCollector {
    values: [u64; 4],
}

const SERIES: [(&str, &str); 4] = [
    (
        "switchboard_hub_connections_accepted",
        "WebSocket clients the hub admitted.",
    ),
    (
        "switchboard_hub_connections_refused",
        "WebSocket upgrades the hub refused (bad token, a refused topic, a limit).",
    ),
    (
        "switchboard_hub_messages_received",
        "Messages from hub clients handed to the program.",
    ),
    (
        "switchboard_hub_messages_dropped",
        "Messages from hub clients dropped because the program's queue (server.hub_queue) was full.",
    ),
];

impl Collector for HubCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::result::Result<(), std::fmt::Error> {
        for ((name, help), v) in SERIES.iter().zip(self.values) {
            let m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
            ConstCounter::new(v).encode(m)?;
        }
        Ok(())
    }
}

//! How messages leave the registry: send callbacks called by delivery tasks on the
//! manager's runtime, or an outbox the program drains itself.
//!
//! A broadcast only queues: it pushes the message (shared, not copied) onto each
//! recipient's bounded queue, and a callback connection whose queue was empty enters
//! one ready queue that the delivery tasks (one per runtime worker) drain. So a slow
//! client fills its own queue and meets its policy; it never blocks the broadcast or
//! the other clients. One connection's callbacks are never called concurrently and
//! always in queue order; its close callback comes last.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::Inner;
use super::conn::{Conn, Drain, Queued, SinkKind, lock};
use super::types::{ConnId, Item, Message, SendOutcome};
use crate::error::{Error, Result};

/// The program's send callbacks for one connection. They run on a delivery task of
/// the manager's runtime with no registry lock held (so they may call back into the
/// registry), one at a time per connection and in order. They must not block for
/// long: a slow callback holds up the other connections served by the same task.
pub trait Sink: Send + Sync + 'static {
    /// Hands `msg` to the client's transport.
    fn send(&self, id: ConnId, msg: &Message) -> SendOutcome;

    /// Asks the program to ping the client (`registry.heartbeat_interval`). The
    /// default does nothing; the program then relies on the client's own traffic.
    fn ping(&self, id: ConnId) -> SendOutcome {
        let _ = id;
        SendOutcome::Sent
    }

    /// Whether `send` or `ping` may return [`SendOutcome::Pending`]. A sink that may
    /// must say so: core then gets ready for a `report_send` that arrives before the
    /// call has even returned (an interpreter that runs the send on another thread).
    fn may_pend(&self) -> bool {
        false
    }

    /// The connection left the registry for `reason`; called once, after its last
    /// send. Close the client's transport here.
    fn closed(&self, id: ConnId, reason: &str) {
        let _ = (id, reason);
    }
}

type PingFn = Box<dyn Fn(ConnId) -> SendOutcome + Send + Sync>;
type ClosedFn = Box<dyn Fn(ConnId, &str) + Send + Sync>;

/// A send callback from closures (`send`, and optionally `ping` and `closed`).
pub struct FnSink<S> {
    send: S,
    ping: Option<PingFn>,
    closed: Option<ClosedFn>,
}

impl<S: Fn(ConnId, &Message) -> SendOutcome + Send + Sync + 'static> FnSink<S> {
    /// A sink that calls `send` for each message.
    pub fn new(send: S) -> Self {
        FnSink {
            send,
            ping: None,
            closed: None,
        }
    }

    /// Also calls `ping` for heartbeats.
    pub fn on_ping(mut self, ping: impl Fn(ConnId) -> SendOutcome + Send + Sync + 'static) -> Self {
        self.ping = Some(Box::new(ping));
        self
    }

    /// Also calls `closed` when the connection leaves.
    pub fn on_closed(mut self, closed: impl Fn(ConnId, &str) + Send + Sync + 'static) -> Self {
        self.closed = Some(Box::new(closed));
        self
    }
}

impl<S: Fn(ConnId, &Message) -> SendOutcome + Send + Sync + 'static> Sink for FnSink<S> {
    fn send(&self, id: ConnId, msg: &Message) -> SendOutcome {
        (self.send)(id, msg)
    }
    fn ping(&self, id: ConnId) -> SendOutcome {
        match &self.ping {
            Some(p) => p(id),
            None => SendOutcome::Sent,
        }
    }
    fn closed(&self, id: ConnId, reason: &str) {
        if let Some(c) = &self.closed {
            c(id, reason);
        }
    }
}

/// Wraps each round of deliveries (up to a few hundred callbacks), so a binding can
/// enter its interpreter once per round instead of once per message (Python takes
/// the GIL once; Node sends the round's messages to the JS thread in one call).
pub trait RoundHook: Send + Sync + 'static {
    /// Runs `round` (and anything the binding needs before and after it).
    fn run(&self, round: &mut dyn FnMut());
}

/// Connections with queued items for their send callbacks. A broadcast hands over
/// all the connections it scheduled at once (one lock, one wake), so the delivery
/// tasks never contend with a fan-out in progress.
#[derive(Default)]
pub(crate) struct Ready {
    queue: Mutex<VecDeque<Arc<Conn>>>,
    pub(crate) notify: Notify,
}

impl Ready {
    pub(crate) fn push(&self, conn: Arc<Conn>) {
        lock(&self.queue).push_back(conn);
        self.notify.notify_one();
    }

    pub(crate) fn push_all(&self, conns: &mut Vec<Arc<Conn>>) {
        if conns.is_empty() {
            return;
        }
        lock(&self.queue).extend(conns.drain(..));
        self.notify.notify_one();
    }

    pub(crate) fn is_empty(&self) -> bool {
        lock(&self.queue).is_empty()
    }

    /// Moves up to `max` connections into `out`; returns whether more remain.
    fn take(&self, max: usize, out: &mut Vec<Arc<Conn>>) -> bool {
        let mut q = lock(&self.queue);
        let n = q.len().min(max);
        out.extend(q.drain(..n));
        !q.is_empty()
    }

    pub(crate) fn clear(&self) {
        let gone = std::mem::take(&mut *lock(&self.queue));
        drop(gone);
    }
}

/// Connections one round serves, and items one connection gets per turn (so a
/// connection with a long queue does not starve the others).
const ROUND_CONNS: usize = 256;
const TURN_ITEMS: usize = 64;

/// A delivery task: waits for ready connections and calls their callbacks.
pub(crate) async fn deliver_forever(inner: Arc<Inner>) {
    let mut buf: Vec<Queued> = Vec::with_capacity(TURN_ITEMS);
    let mut conns: Vec<Arc<Conn>> = Vec::with_capacity(ROUND_CONNS);
    let mut again: Vec<Arc<Conn>> = Vec::with_capacity(ROUND_CONNS);
    loop {
        let notified = inner.ready.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if inner.ready.is_empty() {
            if inner.closed.load(Ordering::Acquire) && inner.index_is_empty() {
                return;
            }
            notified.await;
            continue;
        }
        if inner.ready.take(ROUND_CONNS, &mut conns) {
            // More work: let another delivery task help.
            inner.ready.notify.notify_one();
        }
        let hook = inner.round_hook();
        let mut round = || deliver_round(&inner, &mut conns, &mut again, &mut buf);
        match hook {
            Some(h) => {
                if catch_unwind(AssertUnwindSafe(|| h.run(&mut round))).is_err() {
                    // A binding's hook failed around the round: the items it took are
                    // lost, but the task lives on.
                }
            }
            None => round(),
        }
        conns.clear();
        inner.ready.push_all(&mut again);
        tokio::task::yield_now().await;
    }
}

fn deliver_round(
    inner: &Inner,
    conns: &mut Vec<Arc<Conn>>,
    again: &mut Vec<Arc<Conn>>,
    buf: &mut Vec<Queued>,
) {
    let mut sent = 0u64;
    for conn in conns.drain(..) {
        let SinkKind::Callback(sink) = &conn.sink else {
            continue;
        };
        // A sink that may pend takes one item a turn: the next waits in the queue
        // (under its bound) instead of in this task's hands.
        let may_pend = sink.may_pend();
        let turn = if may_pend { 1 } else { TURN_ITEMS };
        match conn.drain_into(buf, turn, &inner.settings) {
            Drain::Items => {
                let mut items = buf.drain(..);
                while let Some(item) = items.next() {
                    let is_message = matches!(item, Queued::Message(_));
                    if may_pend {
                        // Findable by a report that comes before send returns.
                        inner.begin_send(&conn, is_message);
                    }
                    let mut outcome = match &item {
                        Queued::Message(m) => guarded(|| sink.send(conn.id, m)),
                        Queued::Ping => guarded(|| sink.ping(conn.id)),
                    };
                    if outcome == SendOutcome::Pending {
                        // One item in flight per connection: the rest wait in its
                        // queue (bounded, under the policy) until the sink reports.
                        match inner.park(&conn, items.by_ref().collect(), is_message) {
                            None => break,
                            // Reported while send was still returning: settled now;
                            // the rest were put back and come next turn.
                            Some(Ok(())) => outcome = SendOutcome::Sent,
                            Some(Err(why)) => outcome = SendOutcome::Failed(why),
                        }
                    } else if may_pend {
                        inner.end_send(&conn);
                    }
                    if is_message && outcome == SendOutcome::Sent {
                        sent += 1;
                    }
                    inner.record_outcome(&conn, outcome, is_message);
                }
                // Back in line behind the others (still scheduled), or idle.
                if conn.after_turn() {
                    again.push(conn);
                }
            }
            Drain::Close(reason) => {
                let _ = catch_unwind(AssertUnwindSafe(|| sink.closed(conn.id, &reason)));
                conn.after_turn();
            }
            Drain::Idle => {}
        }
    }
    if sent > 0 {
        inner.counters.sent.fetch_add(sent, Ordering::Relaxed);
    }
}

fn guarded(f: impl FnOnce() -> SendOutcome) -> SendOutcome {
    catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|_| SendOutcome::Failed("the send callback panicked".to_string()))
}

/// A connection whose messages the program pulls: from its own writer task
/// (`next().await`) or thread (`next_within(timeout)`). Dropping it (or
/// [`Outbox::close`]) closes the outbox: later deliveries count as failed, and after
/// `registry.max_send_failures` of them the connection is removed (`send_failed`).
/// To leave at once, call [`crate::registry::Registry::unregister`].
pub struct Outbox {
    pub(crate) inner: Arc<Inner>,
    pub(crate) conn: Arc<Conn>,
}

impl std::fmt::Debug for Outbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbox").field("id", &self.conn.id).finish()
    }
}

impl Outbox {
    /// The connection's id.
    pub fn id(&self) -> ConnId {
        self.conn.id
    }

    /// The next item at once, if one is queued (`Closed` once the connection left).
    pub fn try_next(&self) -> Option<Item> {
        self.pop(false, None).ok().flatten()
    }

    fn pop(&self, wait: bool, max_len: Option<usize>) -> Result<Option<Item>> {
        let item = self.conn.pop(&self.inner.settings, wait, max_len).map_err(|len| {
            Error::invalid_argument(format!(
                "the next message of connection {} is {len} bytes and the buffer holds {}; it stays queued: call again with a buffer of at least {len} bytes",
                self.conn.id,
                max_len.unwrap_or(0)
            ))
        })?;
        self.count(&item);
        Ok(item)
    }

    /// Waits for the next item with `notified` enabled before looking, so that no
    /// push between the look and the wait is missed.
    async fn wait_next(&self, max_len: Option<usize>) -> Result<Item> {
        let SinkKind::Outbox(notify) = &self.conn.sink else {
            return Ok(Item::Closed("not an outbox".into()));
        };
        loop {
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(item) = self.pop(true, max_len)? {
                return Ok(item);
            }
            let _waiting = Waiting(&self.conn);
            notified.await;
        }
    }

    /// The next item, waiting for one. After [`Item::Closed`] it returns `Closed` again.
    pub async fn next(&self) -> Item {
        match self.wait_next(None).await {
            Ok(item) => item,
            Err(e) => Item::Closed(e.to_string()),
        }
    }

    /// The next item, waiting up to `timeout` on the calling thread (which must not
    /// be an async runtime's); `Ok(None)` when none came in time. With `max_len`, a
    /// message longer than it stays queued and the call fails with InvalidArgument
    /// naming both lengths (C's buffer was too small: retry with a bigger one).
    pub fn next_within(&self, timeout: Duration, max_len: Option<usize>) -> Result<Option<Item>> {
        let rt = self.inner.runtime()?;
        if let Some(item) = self.pop(false, max_len)? {
            return Ok(Some(item));
        }
        if timeout.is_zero() {
            return Ok(None);
        }
        // The timer is made inside the runtime (a Sleep needs its time driver).
        let waited =
            rt.block_on(async { tokio::time::timeout(timeout, self.wait_next(max_len)).await })?;
        match waited {
            Ok(item) => item.map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Records traffic from the client now (see [`crate::registry::Registry::touch`]).
    pub fn touch(&self) {
        self.conn.touch(self.inner.now_ns());
    }

    /// Closes the outbox: nothing more is queued for it and later deliveries fail.
    /// Safe to call twice.
    pub fn close(&self) {
        self.conn.close_outbox();
    }

    fn count(&self, item: &Option<Item>) {
        if let Some(Item::Message(_)) = item {
            self.conn.sent.fetch_add(1, Ordering::Relaxed);
            self.inner.counters.sent.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Uncounts a waiter however its wait ends (an item, or a dropped future).
struct Waiting<'a>(&'a Conn);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.stop_waiting();
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        self.close();
    }
}

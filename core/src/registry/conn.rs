//! One registered connection: who it is, what it is subscribed to, and its bounded
//! queue of messages on their way to the program's sink.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use super::delivery::Sink;
use super::settings::{Policy, Settings};
use super::types::{ConnId, Item, Message};

/// How messages reach the client.
pub(crate) enum SinkKind {
    /// The program's send callback, called on a delivery task of the runtime.
    Callback(Arc<dyn Sink>),
    /// A queue the program drains itself; the notify wakes its waiting reader.
    Outbox(Notify),
}

/// What a connection's queue holds (the close item is made when it is read).
#[derive(Debug, Clone)]
pub(crate) enum Queued {
    Message(Message),
    Ping,
}

impl Queued {
    pub(crate) fn into_item(self) -> Item {
        match self {
            Queued::Message(m) => Item::Message(m),
            Queued::Ping => Item::Ping,
        }
    }
}

/// The connection's queue, behind its own mutex (a broadcast holds it for one push).
/// `repr(C)` with the items and byte count first: with the mutex word and the `Arc`'s
/// counts they fill the connection's first cache line, which is all a push touches
/// besides the item's slot and the flags.
#[derive(Default)]
#[repr(C)]
pub(crate) struct Queue {
    pub(crate) items: VecDeque<Queued>,
    pub(crate) bytes: usize,
    /// Callback sinks: the connection is in the ready queue or being delivered.
    pub(crate) scheduled: bool,
    /// Set when the queue filled up; cleared once it drains to half. The slow-consumer
    /// event is emitted on the way in only, not for every dropped message.
    pub(crate) overflowing: bool,
    /// Set once the connection left the registry: the reason; nothing is queued after.
    pub(crate) closed: Option<Arc<str>>,
    /// Callback sinks: the close callback has been (or is being) called.
    pub(crate) close_delivered: bool,
    /// Outboxes: the program closed (or dropped) it; deliveries fail from now on.
    pub(crate) outbox_closed: bool,
    /// Callback sinks: the sink returned Pending for an item (`Some(is_message)`) and
    /// has not reported it yet. Until it does, later items wait here, where the limits
    /// and the policy apply (an async sink cannot move the backlog out of the bound).
    pub(crate) in_flight: Option<bool>,
    /// When the in-flight item was handed over (clock ns), for `registry.send_timeout`.
    pub(crate) in_flight_since: u64,
    /// Callback sinks that may pend: a send is being made (`Some(is_message)`); a
    /// report that arrives before the sink has even returned Pending is kept in
    /// `early` and applied when it does.
    pub(crate) sending: Option<bool>,
    pub(crate) early: Option<Result<(), String>>,
    /// Outboxes: readers waiting for an item (a push wakes them only then, so a
    /// broadcast to idle-reader outboxes touches no waker).
    pub(crate) waiters: u32,
    pub(crate) queued_total: u64,
    pub(crate) dropped_total: u64,
}

/// What [`Conn::push`] did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Push {
    /// Queued; `schedule` when a callback connection must enter the ready queue;
    /// `dropped_old` messages discarded to make room (drop_oldest).
    Queued {
        schedule: bool,
        dropped_old: u64,
        overflow_began: bool,
    },
    /// The new message was discarded (drop_new, or larger than the whole queue).
    DroppedNew { overflow_began: bool },
    /// The queue is full and the policy is disconnect.
    Disconnect,
    /// The outbox was closed by the program: a failed delivery.
    Failed,
    /// The connection has left; nothing was done.
    Gone,
}

/// What a `report_send` settled.
pub(crate) enum Report {
    /// The in-flight item (a message or a ping); `schedule` when the connection must
    /// enter the ready queue again.
    Settled { is_message: bool, schedule: bool },
    /// The send has not returned Pending yet; the delivery task applies the result.
    Early,
    /// Nothing of this connection is in flight.
    NothingInFlight,
}

/// What the delivery task found in a callback connection's queue.
pub(crate) enum Drain {
    /// Items were moved into the buffer.
    Items,
    /// The connection left; call the close callback once, with this reason.
    Close(Arc<str>),
    /// Nothing left; the connection is no longer scheduled.
    Idle,
}

/// Aligned to a cache line, with the queue first (see [`Queue`]).
#[repr(C, align(64))]
pub(crate) struct Conn {
    pub(crate) queue: Mutex<Queue>,
    pub(crate) id: ConnId,
    pub(crate) user: Option<Arc<str>>,
    pub(crate) meta: Mutex<Vec<(Box<str>, Box<str>)>>,
    /// Sorted; the same `Arc<str>` as the topic index's key.
    pub(crate) topics: Mutex<Vec<Arc<str>>>,
    pub(crate) sink: SinkKind,
    /// Clock readings in nanoseconds since the registry's base instant.
    pub(crate) created_ns: u64,
    pub(crate) last_seen_ns: AtomicU64,
    pub(crate) last_ping_ns: AtomicU64,
    pub(crate) sent: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) fails_in_row: AtomicU32,
    /// Whoever sets this first removes the connection (counts, events, close).
    pub(crate) leaving: AtomicBool,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Conn {
    pub(crate) fn new(
        id: ConnId,
        user: Option<Arc<str>>,
        meta: Vec<(Box<str>, Box<str>)>,
        topics: Vec<Arc<str>>,
        sink: SinkKind,
        now_ns: u64,
    ) -> Conn {
        Conn {
            queue: Mutex::new(Queue::default()),
            id,
            user,
            meta: Mutex::new(meta),
            topics: Mutex::new(topics),
            sink,
            created_ns: now_ns,
            last_seen_ns: AtomicU64::new(now_ns),
            last_ping_ns: AtomicU64::new(now_ns),
            sent: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            fails_in_row: AtomicU32::new(0),
            leaving: AtomicBool::new(false),
        }
    }

    pub(crate) fn is_outbox(&self) -> bool {
        matches!(self.sink, SinkKind::Outbox(_))
    }

    /// Queues `msg` under the connection's limits and policy.
    #[inline]
    pub(crate) fn push(&self, msg: &Message, s: &Settings) -> Push {
        let len = msg.len();
        let mut q = lock(&self.queue);
        if q.closed.is_some() {
            return Push::Gone;
        }
        if q.outbox_closed {
            return Push::Failed;
        }
        let fits =
            |q: &Queue| q.items.len() < s.queue_max_messages && q.bytes + len <= s.queue_max_bytes;
        let mut dropped_old = 0;
        let mut overflow_began = false;
        if !fits(&q) {
            overflow_began = !q.overflowing;
            q.overflowing = true;
            match s.policy {
                Policy::Disconnect => return Push::Disconnect,
                Policy::DropNew => {
                    q.dropped_total += 1;
                    return Push::DroppedNew { overflow_began };
                }
                Policy::DropOldest => {
                    if len > s.queue_max_bytes {
                        q.dropped_total += 1;
                        return Push::DroppedNew { overflow_began };
                    }
                    while !fits(&q) {
                        match q.items.pop_front() {
                            Some(old) => {
                                q.bytes -= item_len(&old);
                                dropped_old += 1;
                            }
                            None => break,
                        }
                    }
                    q.dropped_total += dropped_old;
                }
            }
        }
        q.items.push_back(Queued::Message(msg.clone()));
        q.bytes += len;
        q.queued_total += 1;
        let schedule = !q.scheduled && q.in_flight.is_none() && !self.is_outbox();
        if schedule {
            q.scheduled = true;
        }
        let wake = q.waiters > 0;
        drop(q);
        if wake {
            self.wake();
        }
        Push::Queued {
            schedule,
            dropped_old,
            overflow_began,
        }
    }

    /// Queues a ping (not counted against the limits; skipped when the queue is
    /// full, since a client that far behind would not answer it in time anyway).
    /// Returns whether a callback connection must enter the ready queue, or `None`
    /// when no ping was queued.
    pub(crate) fn push_ping(&self, s: &Settings) -> Option<bool> {
        let mut q = lock(&self.queue);
        if q.closed.is_some() || q.items.len() >= s.queue_max_messages {
            return None;
        }
        q.items.push_back(Queued::Ping);
        let schedule = !q.scheduled && q.in_flight.is_none() && !self.is_outbox();
        if schedule {
            q.scheduled = true;
        }
        let wake = q.waiters > 0;
        drop(q);
        if wake {
            self.wake();
        }
        Some(schedule)
    }

    /// Marks the connection closed for `reason` and discards what was queued
    /// (returned: messages discarded). Returns whether a callback connection must enter
    /// the ready queue so that its close callback runs.
    pub(crate) fn close(&self, reason: &Arc<str>) -> (u64, bool) {
        let mut q = lock(&self.queue);
        if q.closed.is_some() {
            return (0, false);
        }
        q.closed = Some(reason.clone());
        let discarded = q
            .items
            .iter()
            .filter(|i| matches!(i, Queued::Message(_)))
            .count() as u64;
        q.items = VecDeque::new();
        q.bytes = 0;
        q.dropped_total += discarded;
        let schedule = !q.scheduled && q.in_flight.is_none() && !self.is_outbox();
        if schedule {
            q.scheduled = true;
        }
        drop(q);
        if let SinkKind::Outbox(n) = &self.sink {
            n.notify_waiters();
            n.notify_one();
        }
        (discarded, schedule)
    }

    /// Callback sinks: moves up to `max` queued items into `buf`.
    pub(crate) fn drain_into(&self, buf: &mut Vec<Queued>, max: usize, s: &Settings) -> Drain {
        let mut q = lock(&self.queue);
        if q.in_flight.is_some() {
            q.scheduled = false;
            return Drain::Idle;
        }
        if !q.items.is_empty() {
            // pop_front, not drain(..n): the usual turn moves one item, and a
            // Drain iterator costs more than the move itself.
            for _ in 0..max {
                let Some(item) = q.items.pop_front() else {
                    break;
                };
                q.bytes -= item_len(&item);
                buf.push(item);
            }
            settle(&mut q, s);
            return Drain::Items;
        }
        if let Some(reason) = q.closed.clone() {
            if !q.close_delivered {
                q.close_delivered = true;
                return Drain::Close(reason);
            }
        }
        q.scheduled = false;
        Drain::Idle
    }

    /// Callback sinks, after a turn: whether the connection needs another (more
    /// items, or its close callback); if not, or while an item is in flight, it is no
    /// longer scheduled.
    pub(crate) fn after_turn(&self) -> bool {
        let mut q = lock(&self.queue);
        if q.in_flight.is_none()
            && (!q.items.is_empty() || (q.closed.is_some() && !q.close_delivered))
        {
            return true;
        }
        q.scheduled = false;
        false
    }

    /// Callback sinks that may pend: a send begins.
    pub(crate) fn begin_send(&self, is_message: bool) {
        let mut q = lock(&self.queue);
        q.sending = Some(is_message);
        q.early = None;
    }

    /// Callback sinks that may pend: the send returned without pending.
    pub(crate) fn end_send(&self) {
        let mut q = lock(&self.queue);
        q.sending = None;
        q.early = None;
    }

    /// Callback sinks: the sink returned Pending for an item; `rest` (the items taken
    /// after it in this turn) go back to the front of the queue until it reports.
    /// Returns the report if it came already (then nothing is in flight).
    pub(crate) fn park(
        &self,
        rest: Vec<Queued>,
        is_message: bool,
        now_ns: u64,
    ) -> Option<Result<(), String>> {
        let mut q = lock(&self.queue);
        q.sending = None;
        let early = q.early.take();
        if early.is_none() {
            q.in_flight = Some(is_message);
            q.in_flight_since = now_ns;
        }
        if q.closed.is_some() {
            let n = rest
                .iter()
                .filter(|i| matches!(i, Queued::Message(_)))
                .count();
            q.dropped_total += n as u64;
            return early;
        }
        for item in rest.into_iter().rev() {
            q.bytes += item_len(&item);
            q.items.push_front(item);
        }
        early
    }

    /// Whether an item has been in flight since before `deadline_ns`.
    pub(crate) fn in_flight_before(&self, deadline_ns: u64) -> bool {
        let q = lock(&self.queue);
        q.in_flight.is_some() && q.in_flight_since < deadline_ns
    }

    /// A report arrived for this connection: what it settles.
    pub(crate) fn settle_report(&self, result: &Result<(), String>) -> Report {
        let mut q = lock(&self.queue);
        if let Some(is_message) = q.in_flight.take() {
            let more = !q.items.is_empty() || (q.closed.is_some() && !q.close_delivered);
            let schedule = more && !q.scheduled;
            if schedule {
                q.scheduled = true;
            }
            return Report::Settled {
                is_message,
                schedule,
            };
        }
        if q.sending.is_some() {
            q.early = Some(result.clone());
            return Report::Early;
        }
        Report::NothingInFlight
    }

    /// Outboxes: the next item, or the close item once the connection has left.
    /// With `wait`, an empty queue counts the caller as a waiter (it must then await
    /// a `Notified` it enabled before calling, and call [`Conn::stop_waiting`]).
    /// With `max_len`, a message longer than it stays queued: `Err(its length)`.
    pub(crate) fn pop(
        &self,
        s: &Settings,
        wait: bool,
        max_len: Option<usize>,
    ) -> Result<Option<Item>, usize> {
        let mut q = lock(&self.queue);
        if let (Some(max), Some(Queued::Message(m))) = (max_len, q.items.front()) {
            if m.len() > max {
                return Err(m.len());
            }
        }
        if let Some(item) = q.items.pop_front() {
            q.bytes -= item_len(&item);
            settle(&mut q, s);
            return Ok(Some(item.into_item()));
        }
        let closed = q.closed.as_ref().map(|r| Item::Closed(r.to_string()));
        if closed.is_none() && wait {
            q.waiters += 1;
        }
        Ok(closed)
    }

    /// Outboxes: a waiter counted by [`Conn::pop`] stopped waiting.
    pub(crate) fn stop_waiting(&self) {
        let mut q = lock(&self.queue);
        q.waiters = q.waiters.saturating_sub(1);
    }

    /// Outboxes: the program closed it.
    pub(crate) fn close_outbox(&self) {
        lock(&self.queue).outbox_closed = true;
    }

    fn wake(&self) {
        if let SinkKind::Outbox(n) = &self.sink {
            n.notify_waiters();
            n.notify_one();
        }
    }

    pub(crate) fn touch(&self, now_ns: u64) {
        self.last_seen_ns.store(now_ns, Ordering::Relaxed);
    }
}

fn item_len(item: &Queued) -> usize {
    match item {
        Queued::Message(m) => m.len(),
        _ => 0,
    }
}

/// Clears the overflow mark once the queue is back to half its limits.
fn settle(q: &mut Queue, s: &Settings) {
    if q.overflowing
        && q.items.len() <= s.queue_max_messages / 2
        && q.bytes <= s.queue_max_bytes / 2
    {
        q.overflowing = false;
    }
}

//! The waiters' deadlines: one task per pool times out the waiters whose deadline has
//! passed, instead of a timer registered and cancelled on every wait. The task sleeps
//! until the earliest deadline in the queue; a waiter that registers an earlier one
//! wakes it. Since most waits end long before their deadline (a release hands the
//! connection over), the task rarely wakes at all.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use super::waiters::Grant;
use super::{PoolInner, WAITER};
use crate::connector::Connector;

/// A waiter in the queue: where its grant goes, and until when it waits.
pub(super) struct Waiter<C: Connector> {
    pub(super) tx: oneshot::Sender<Grant<C>>,
    pub(super) deadline: Instant,
}

/// The deadline task's side of a pool.
#[derive(Default)]
pub(super) struct Deadlines {
    /// Wakes the task: an earlier deadline, or the pool closing or going away.
    pub(super) wake: Arc<Notify>,
}

/// When the deadline task looks next: the earliest deadline it saw, or `None` while
/// it waits to be told of one. Kept with the queue, under the waiters' lock.
#[derive(Default)]
pub(super) struct Armed(Option<Instant>);

impl Deadlines {
    /// A waiter with `deadline` just registered (under the waiters' lock, which
    /// `armed` is part of): wake the task if it would otherwise look too late.
    pub(super) fn added(&self, armed: &mut Armed, deadline: Instant) {
        if armed.0.is_none_or(|at| deadline < at) {
            armed.0 = Some(deadline); // told: no second wake-up for a later one
            self.wake.notify_one();
        }
    }

    /// Ends the task's wait (the pool closes or is dropped; it then exits).
    pub(super) fn stop(&self) {
        self.wake.notify_one();
    }
}

impl<C: Connector> PoolInner<C> {
    /// Times out the waiters whose deadline has passed; returns the next deadline.
    fn time_out_waiters(&self) -> Option<Instant> {
        let now = Instant::now();
        let (expired, next) = {
            let mut w = self.lock_waiters();
            let expired = w.queue.take_where(|x| x.deadline <= now);
            self.state
                .fetch_sub(expired.len() * WAITER, Ordering::SeqCst);
            let next = w.queue.min_of(|x| x.deadline);
            w.armed = Armed(next);
            (expired, next)
        };
        for x in expired {
            let _ = x.tx.send(Grant::TimedOut);
        }
        next
    }
}

/// The pool's deadline task. Holds the pool weakly, so it ends with it.
pub(super) async fn deadline_task<C: Connector>(pool: Weak<PoolInner<C>>, wake: Arc<Notify>) {
    loop {
        // Listening before looking: a wake-up in between is not lost.
        let notified = wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let next = {
            let Some(p) = pool.upgrade() else { return };
            if p.is_shut() {
                return;
            }
            p.time_out_waiters()
        };
        match next {
            Some(at) => {
                tokio::select! {
                    _ = &mut notified => {}
                    _ = tokio::time::sleep_until(at) => {}
                }
            }
            None => notified.await,
        }
    }
}

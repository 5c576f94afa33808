//! The drop guards: each owns one thing a call holds for a moment (an idle
//! connection taken out for a probe, an endpoint's connect permit, a place in the wait
//! queue, a connect slot, a spawned task) and gives it back in `Drop`, so that no
//! error, timeout or cancelled future can leak a connection or a slot.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::endpoints::Choice;
use super::stats::{CloseReason, Counters};
use super::waiters::WaiterKey;
use super::{Entry, PoolInner};
use crate::connector::Connector;

/// An idle connection taken out for a probe that has not started yet. If the call
/// ends first (an error, a refused block_on, a future dropped before its first poll),
/// dropping the guard puts the connection back, untouched.
pub(super) struct Held<C: Connector> {
    pub(super) entry: Option<Box<Entry<C::Conn>>>,
    pub(super) pool: Arc<PoolInner<C>>,
}

impl<C: Connector> Drop for Held<C> {
    fn drop(&mut self) {
        if let Some(e) = self.entry.take() {
            self.pool.give_back(e, false);
        }
    }
}

/// Returns an endpoint's permit if a connect is abandoned before its result.
pub(super) struct ChoiceGuard<'a, C: Connector> {
    pub(super) pool: &'a PoolInner<C>,
    pub(super) choice: Option<Choice>,
}

impl<C: Connector> Drop for ChoiceGuard<'_, C> {
    fn drop(&mut self) {
        if let Some(c) = self.choice.take() {
            self.pool.endpoints.cancel(&c);
        }
    }
}

/// Removes a waiter from the queue when its wait ends, however it ends.
pub(super) struct WaiterGuard<'a, C: Connector> {
    pub(super) pool: &'a PoolInner<C>,
    pub(super) key: WaiterKey,
}

impl<C: Connector> WaiterGuard<'_, C> {
    /// The waiter was granted something, so its sender already took it out of the
    /// queue: nothing to remove (saves the lock and the search).
    pub(super) fn served(self) {
        std::mem::forget(self);
    }
}

impl<C: Connector> Drop for WaiterGuard<'_, C> {
    fn drop(&mut self) {
        let mut w = self.pool.lock_waiters();
        if w.queue.remove(&self.key).is_some() {
            self.pool.state.fetch_sub(super::WAITER, Ordering::SeqCst);
        }
    }
}

/// Owns a connection while it is probed; closes it if the probe is abandoned.
pub(super) struct Probing<C: Connector> {
    pub(super) entry: Option<Box<Entry<C::Conn>>>,
    pub(super) pool: Arc<PoolInner<C>>,
}

impl<C: Connector> Drop for Probing<C> {
    fn drop(&mut self) {
        if let Some(e) = self.entry.take() {
            Counters::inc(&self.pool.counters.probe_failed);
            self.pool.close_entry(e, CloseReason::Broken);
        }
    }
}

/// Owns one unit of `size` and one of `connecting` while a connect is in flight.
pub(super) struct ConnectSlot<C: Connector> {
    pub(super) pool: Option<Arc<PoolInner<C>>>,
}

impl<C: Connector> ConnectSlot<C> {
    /// The connect succeeded: the slot now belongs to the new connection, which goes
    /// to the pool (a waiter, or the idle queue). It stops counting as connecting
    /// first (stats and the waiters' connect accounting see it at once as what it is
    /// about to be), and counts as `delivering` until it is in the queue, so that
    /// `warm` and the upkeep's min_idle fill, which count idle + connecting +
    /// delivering, never both open one more for it.
    pub(super) fn deliver(mut self, entry: Box<Entry<C::Conn>>) {
        if let Some(pool) = self.pool.take() {
            pool.delivering.fetch_add(1, Ordering::SeqCst);
            pool.connecting.fetch_sub(1, Ordering::SeqCst);
            pool.give_back(entry, false);
            pool.delivering.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl<C: Connector> Drop for ConnectSlot<C> {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            pool.connecting.fetch_sub(1, Ordering::SeqCst);
            pool.release_slot();
        }
    }
}

pub(super) struct AbortOnDrop<T>(pub(super) tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

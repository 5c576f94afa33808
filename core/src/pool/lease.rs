//! The lease: a checked-out connection, given back on drop.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;

use super::stats::CloseReason;
use super::{Entry, PoolInner};
use crate::connector::Connector;
use crate::runtime::RuntimeShared;

/// A checked-out connection. Dereferences to the connection. Returned to the pool by
/// [`Lease::release`] or by drop; closed instead by [`Lease::discard`].
pub struct Lease<C: Connector> {
    pub(super) entry: Option<Box<Entry<C::Conn>>>,
    pub(super) pool: Arc<PoolInner<C>>,
}

impl<C: Connector> Lease<C> {
    /// The connection's id, unique within its pool and never reused.
    pub fn id(&self) -> u64 {
        self.entry.as_ref().map_or(0, |e| e.id)
    }

    /// The name of the pool it came from.
    pub fn pool_name(&self) -> &str {
        &self.pool.name
    }

    /// The manager's runtime, for bindings that run async I/O on the lease.
    pub fn runtime(&self) -> &Arc<RuntimeShared> {
        &self.pool.rt
    }

    /// The endpoint it is connected to, as written in the pool's target.
    pub fn endpoint(&self) -> &str {
        let ep = self.entry.as_ref().map_or(0, |e| e.ep as usize);
        &self.pool.endpoints.slots[ep].name
    }

    /// Reports the result of a call made on this connection, for the endpoint's
    /// breaker, success rate and latency EWMA (and so its quality score). A failure
    /// that opens the breaker evicts the endpoint's connections, this one included
    /// when it comes back.
    pub fn report(&self, success: bool, latency: Duration) {
        let ep = self.entry.as_ref().map_or(0, |e| e.ep as usize);
        let why = (!success).then_some("a call on the connection failed (reported)");
        if self.pool.endpoints.record(ep, success, latency, why).evict {
            self.pool.sweep_evicted();
        }
    }

    /// Returns the connection to the pool (same as dropping the lease).
    pub fn release(self) {
        drop(self);
    }

    /// Closes the connection instead of returning it, e.g. after an error on it.
    pub fn discard(mut self) {
        if let Some(e) = self.entry.take() {
            self.pool.untrack(e.id);
            self.pool.count_leased(&e, false);
            let held = self.pool.coarse_now().since(e.leased_at);
            self.pool.counters.lease.record(held);
            self.pool.close_entry(e, CloseReason::Discarded);
        }
    }
}

impl<C: Connector> Deref for Lease<C> {
    type Target = C::Conn;
    fn deref(&self) -> &C::Conn {
        match &self.entry {
            Some(e) => &e.conn,
            // The entry is only taken by release/discard, which consume the lease.
            None => unreachable!("lease used after release"),
        }
    }
}

impl<C: Connector> DerefMut for Lease<C> {
    fn deref_mut(&mut self) -> &mut C::Conn {
        match &mut self.entry {
            Some(e) => &mut e.conn,
            None => unreachable!("lease used after release"),
        }
    }
}

impl<C: Connector> Drop for Lease<C> {
    #[inline]
    fn drop(&mut self) {
        if let Some(e) = self.entry.take() {
            self.pool.give_back(e, true);
        }
    }
}

impl<C: Connector> std::fmt::Debug for Lease<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease")
            .field("pool", &self.pool.name)
            .field("id", &self.id())
            .finish()
    }
}

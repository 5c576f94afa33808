//! What the registry tells a cluster (`cluster.redis_url`) and takes from it: which
//! topics and users have local connections (the moments the first one comes and the
//! last one leaves, so the cluster subscribes to one channel each), every broadcast
//! made here (to publish it to the other instances), and broadcasts that arrive from
//! them (fanned out here only). The registry knows nothing of Redis.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Registry;
use super::types::{BroadcastReport, ConnId, Message, Target};
use crate::error::Result;

/// A name the registry's index gained or lost its last connection for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum Key {
    Topic(Arc<str>),
    User(Arc<str>),
}

/// Told of index changes, in order, under the index's write lock: must not block.
pub(crate) trait IndexWatch: Send + Sync {
    fn changed(&self, key: Key, present: bool);
}

/// Given every broadcast made on this instance, after its local fan-out.
pub(crate) trait FanOutRemote: Send + Sync {
    fn publish(&self, target: &Target, msg: &Message);
}

/// Connection ids of a clustered registry carry the node's number in bits 32..53, so
/// ids are unique across the cluster (and still exact in a JavaScript number).
pub(crate) const NODE_SHIFT: u32 = 32;
/// The largest node number (21 bits).
pub(crate) const MAX_NODE: u64 = (1 << 21) - 1;

/// The node number in a clustered connection id (0 when not clustered).
pub(crate) fn node_of(id: ConnId) -> u64 {
    id >> NODE_SHIFT
}

impl Registry {
    /// Joins the registry to a cluster as node `number` (1..=MAX_NODE): ids made from
    /// now carry it; `watch` learns of the current topics and users and every change;
    /// `remote` gets every broadcast. Called once, before the manager is handed out.
    pub(crate) fn link_cluster(
        &self,
        number: u64,
        watch: Arc<dyn IndexWatch>,
        remote: Arc<dyn FanOutRemote>,
    ) {
        let inner = &self.inner;
        inner
            .id_base
            .store((number & MAX_NODE) << NODE_SHIFT, Ordering::Release);
        let _ = inner.remote.set(remote);
        let mut ix = inner.write();
        for t in ix.topics.keys() {
            watch.changed(Key::Topic(t.clone()), true);
        }
        for u in ix.users.keys() {
            watch.changed(Key::User(u.clone()), true);
        }
        ix.watch = Some(watch);
    }

    /// A broadcast that came from another instance: fanned out to this instance's
    /// connections only.
    pub(crate) fn fan_out_local(&self, target: &Target, msg: &Message) -> Result<BroadcastReport> {
        self.check_open()?;
        Ok(self.inner.fan_out(target, msg))
    }
}

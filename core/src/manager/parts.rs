//! What a manager is made of, shared with its server: the pools by name (each behind
//! [`PoolControl`], whatever its connector), the sessions, the registry, the named
//! resources and the hub's inbound queue. The manager and its server both hold these;
//! neither holds the other, so the server never keeps a manager alive.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::breaker::BreakerOp;
use crate::connector::Connector;
use crate::error::{Error, Result};
use crate::health::HealthReport;
use crate::pool::{Pool, PoolStats, RemoteVerdict};
use crate::registry::Registry;
use crate::resources::Resources;
use crate::server::Hub;
use crate::sessions::Sessions;

/// What the manager and its server need of a pool of any connector type.
pub(crate) trait PoolControl: Send + Sync {
    fn close(&self);
    fn is_closed(&self) -> bool;
    fn stats(&self) -> PoolStats;
    fn health(&self) -> HealthReport;
    fn evict_all(&self);
    fn drain(&self, endpoint: &str) -> Result<()>;
    fn resize(&self, max_size: usize, min_idle: usize) -> Result<()>;
    fn breaker_op(&self, endpoint: Option<&str>, op: BreakerOp) -> Result<()>;
    fn remote_breaker(&self, endpoint: &str, verdict: RemoteVerdict) -> Result<()>;
}

/// The manager holds each pool until the pool is closed (by the program, or by the
/// manager's close); a closing pool removes itself from the manager at once, so its
/// connector is dropped as soon as its last lease comes back.
impl<C: Connector> PoolControl for Pool<C> {
    fn close(&self) {
        Pool::close(self);
    }
    fn is_closed(&self) -> bool {
        Pool::is_closed(self)
    }
    fn stats(&self) -> PoolStats {
        Pool::stats(self)
    }
    fn health(&self) -> HealthReport {
        Pool::health(self)
    }
    fn evict_all(&self) {
        Pool::evict_all(self);
    }
    fn drain(&self, endpoint: &str) -> Result<()> {
        Pool::drain(self, endpoint)
    }
    fn resize(&self, max_size: usize, min_idle: usize) -> Result<()> {
        Pool::resize(self, max_size, min_idle)
    }
    fn breaker_op(&self, endpoint: Option<&str>, op: BreakerOp) -> Result<()> {
        Pool::breaker_op(self, endpoint, op)
    }
    fn remote_breaker(&self, endpoint: &str, verdict: RemoteVerdict) -> Result<()> {
        Pool::remote_breaker(self, endpoint, verdict)
    }
}

/// A pool as the manager holds it: a serial number (so a detaching pool never removes
/// a newer namesake) and the pool.
pub(crate) type Registered = (u64, Arc<dyn PoolControl>);

/// The parts of a manager (see the module doc).
pub(crate) struct Parts {
    pub(crate) pools: Mutex<HashMap<String, Registered>>,
    pub(crate) sessions: Sessions,
    pub(crate) registry: Registry,
    pub(crate) resources: Resources,
    pub(crate) hub: Hub,
    /// The manager's cluster, when `cluster.redis_url` is set.
    pub(crate) cluster: Option<crate::cluster::Cluster>,
}

impl Parts {
    pub(crate) fn pools(&self) -> MutexGuard<'_, HashMap<String, Registered>> {
        self.pools.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The open pool named `name`, or NotFound.
    pub(crate) fn pool(&self, name: &str) -> Result<Arc<dyn PoolControl>> {
        self.pools()
            .get(name)
            .filter(|(_, p)| !p.is_closed())
            .map(|(_, p)| p.clone())
            .ok_or_else(|| {
                Error::not_found(format!(
                    "no pool named \"{}\" is open in this manager",
                    name.escape_default()
                ))
            })
    }

    /// Every open pool, sorted by name (taken out of the lock to be used).
    pub(crate) fn open_pools(&self) -> Vec<(String, Arc<dyn PoolControl>)> {
        let mut out: Vec<_> = self
            .pools()
            .iter()
            .filter(|(_, (_, p))| !p.is_closed())
            .map(|(n, (_, p))| (n.clone(), p.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Snapshots of every open pool, sorted by name.
    pub(crate) fn pool_stats(&self) -> Vec<PoolStats> {
        self.open_pools().iter().map(|(_, p)| p.stats()).collect()
    }

    /// The Prometheus/OpenMetrics text of everything.
    pub(crate) fn metrics_text(&self) -> String {
        let sessions = Box::new(self.sessions.collector());
        let registry = Box::new(self.registry.collector());
        let resources = Box::new(self.resources.collector());
        let hub = Box::new(self.hub.collector());
        let mut extra: Vec<Box<dyn prometheus_client::collector::Collector>> =
            vec![sessions, registry, resources, hub];
        if let Some(c) = &self.cluster {
            extra.push(Box::new(c.collector()));
        }
        crate::metrics::render_with(self.pool_stats(), extra)
    }
}

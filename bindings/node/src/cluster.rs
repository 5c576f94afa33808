//! The manager's cluster (`manager.cluster` in JS): core's `Cluster`, method by method,
//! as `NativeCluster` (docs/cluster.md). `NativeManager::cluster()` is defined here, in
//! a second `#[napi] impl` block, so that the manager's file stays about the manager.
//!
//! The cluster-wide calls wait for the other instances (up to
//! `cluster.request_timeout`), so each runs its core `_async` form on the manager's
//! runtime and settles a promise from there, as `pool.acquire()` does; the JS thread
//! never waits. Partial answers are answers: the members that did not answer are
//! named in `answered.missing`, never an error.
//!
//! Arguments come from `cluster.js` as the registry's native ones (`NativeTarget`,
//! `NativeListFilter`, built by `registry.js`), and the connection snapshots and
//! statistics go back in the registry's JS shapes (`ConnectionInfo`, `RegistryStats`):
//! the registry's own converters (`registry/convert.rs`, re-exported by
//! `crate::registry`) make both, so the two cannot drift apart.

use std::sync::Arc;

use napi::Env;
use napi::bindgen_prelude::{Buffer, Either, Object};
use napi_derive::napi;
use switchboard_core::Result as CoreResult;
use switchboard_core::cluster::{
    Answered, Cluster, ClusterBroadcast, ClusterCount, ClusterList, ClusterResource, ClusterStats,
    Member,
};
use switchboard_core::runtime::RuntimeShared;

use crate::error::{Result, guard};
use crate::health::ms;
use crate::manager::NativeManager;
use crate::registry::{
    NativeBroadcastReport, NativeConnInfo, NativeListFilter, NativeRegistryStats, NativeTarget,
    counts, list_filter, message, target,
};
use crate::settle::Settle;

#[napi]
impl NativeManager {
    /// The manager's cluster, or `null` when `cluster.redis_url` is empty.
    #[napi]
    pub fn cluster(&self) -> Result<Option<NativeCluster>> {
        guard(|| {
            let manager = self.manager()?;
            Ok(manager.cluster().map(|c| NativeCluster {
                cluster: c.clone(),
                rt: manager.runtime().clone(),
            }))
        })
    }
}

/// The native cluster of one manager.
#[napi]
pub struct NativeCluster {
    cluster: Cluster,
    rt: Arc<RuntimeShared>,
}

impl NativeCluster {
    /// Runs `op` on the manager's runtime and settles a promise with what `make`
    /// builds of its result. If the task cannot be spawned (manager closed) it is
    /// dropped unrun, and the settling half rejects with SB_UNAVAILABLE.
    fn spawn<'env, T, D, F>(
        &self,
        env: &'env Env,
        op: impl FnOnce(Cluster) -> F + Send + 'static,
        make: impl FnOnce(T) -> D + Send + 'static,
    ) -> Result<Object<'env>>
    where
        T: Send + 'static,
        D: napi::bindgen_prelude::ToNapiValue + 'static,
        F: Future<Output = CoreResult<T>> + Send + 'static,
    {
        let (settle, promise) = Settle::<D>::new(env)?;
        let cluster = self.cluster.clone();
        let _ = self.rt.spawn(async move {
            let r = op(cluster).await;
            settle.settle(r, move |_, v| make(v));
        });
        Ok(promise)
    }
}

#[napi]
impl NativeCluster {
    /// `cluster.name`.
    #[napi(getter)]
    pub fn name(&self) -> String {
        self.cluster.name().to_string()
    }

    /// This instance's `cluster.node_id`.
    #[napi(getter)]
    pub fn node_id(&self) -> String {
        self.cluster.node_id().to_string()
    }

    /// This instance's number (the top bits of its connection ids).
    #[napi(getter)]
    pub fn node_number(&self) -> f64 {
        self.cluster.node_number() as f64
    }

    /// Whether Redis is reachable and this instance takes part.
    #[napi(getter)]
    pub fn joined(&self) -> bool {
        self.cluster.is_joined()
    }

    /// The live members as of the last heartbeat (never waits).
    #[napi]
    pub fn members(&self) -> Vec<NativeMember> {
        self.cluster
            .members()
            .into_iter()
            .map(NativeMember::from)
            .collect()
    }

    /// Broadcasts `data` on every instance and resolves once they acknowledged (or
    /// `cluster.request_timeout` passed).
    #[napi]
    pub fn broadcast<'env>(
        &self,
        env: &'env Env,
        data: Either<String, Buffer>,
        to: NativeTarget,
    ) -> Result<Object<'env>> {
        guard(|| {
            let t = target(to)?;
            let msg = message(data);
            self.spawn(
                env,
                move |c| async move { c.broadcast_async(&t, msg).await },
                NativeClusterBroadcast::from,
            )
        })
    }

    /// One page of the connections of every live member, in id order.
    #[napi]
    pub fn list<'env>(&self, env: &'env Env, filter: NativeListFilter) -> Result<Object<'env>> {
        guard(|| {
            let filter = list_filter(filter)?;
            self.spawn(
                env,
                move |c| async move { c.list_async(&filter).await },
                NativeClusterList::from,
            )
        })
    }

    /// Disconnects what the target matches on every live member, for `reason`.
    #[napi]
    pub fn disconnect<'env>(
        &self,
        env: &'env Env,
        to: NativeTarget,
        reason: Option<String>,
    ) -> Result<Object<'env>> {
        guard(|| {
            let t = target(to)?;
            let reason = reason.unwrap_or_default();
            self.spawn(
                env,
                move |c| async move { c.disconnect_async(&t, &reason).await },
                NativeClusterCount::from,
            )
        })
    }

    /// The registry statistics of every live member, and their sum.
    #[napi]
    pub fn stats<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        guard(|| {
            self.spawn(
                env,
                |c| async move { c.stats_async().await },
                NativeClusterStats::from,
            )
        })
    }

    /// Named resource `id`'s status on every live member (`absent` where it is not
    /// created).
    #[napi]
    pub fn resource_status<'env>(&self, env: &'env Env, id: String) -> Result<Object<'env>> {
        guard(|| {
            self.spawn(
                env,
                move |c| async move { c.resource_status_async(&id).await },
                NativeClusterResource::from,
            )
        })
    }
}

/// One member of the cluster, from its last heartbeat.
#[napi(object)]
pub struct NativeMember {
    pub node_id: String,
    pub number: f64,
    /// Its embedded server's address ("" when it has none).
    pub address: String,
    pub connections: f64,
    pub pools: f64,
    pub last_seen_ms: f64,
    pub local: bool,
}

impl From<Member> for NativeMember {
    fn from(m: Member) -> Self {
        NativeMember {
            node_id: m.node_id,
            number: m.number as f64,
            address: m.address,
            connections: m.connections as f64,
            pools: m.pools as f64,
            last_seen_ms: ms(m.last_seen),
            local: m.local,
        }
    }
}

/// Which live members answered a cluster-wide call.
#[napi(object)]
pub struct NativeAnswered {
    /// This instance first.
    pub nodes: Vec<String>,
    pub missing: Vec<String>,
}

impl From<Answered> for NativeAnswered {
    fn from(a: Answered) -> Self {
        NativeAnswered {
            nodes: a.nodes,
            missing: a.missing,
        }
    }
}

/// What an acknowledged broadcast reached; `remote` as pairs.
#[napi(object)]
pub struct NativeClusterBroadcast {
    pub local: NativeBroadcastReport,
    pub remote: Vec<(String, f64)>,
    pub unacknowledged: f64,
    pub recipients: f64,
}

impl From<ClusterBroadcast> for NativeClusterBroadcast {
    fn from(b: ClusterBroadcast) -> Self {
        NativeClusterBroadcast {
            recipients: b.recipients() as f64,
            local: b.local.into(),
            remote: counts(b.remote),
            unacknowledged: b.unacknowledged as f64,
        }
    }
}

/// One connection of a cluster list: the member it is on and the registry's snapshot
/// (`cluster.js` makes them one `{ node, ...ConnectionInfo }`).
#[napi(object)]
pub struct NativeClusterConn {
    pub node: String,
    pub info: NativeConnInfo,
}

/// A cluster-wide list page (last page: `nextCursor` is `null`).
#[napi(object, use_nullable = true)]
pub struct NativeClusterList {
    pub connections: Vec<NativeClusterConn>,
    pub next_cursor: Option<f64>,
    pub answered: NativeAnswered,
}

impl From<ClusterList> for NativeClusterList {
    fn from(l: ClusterList) -> Self {
        NativeClusterList {
            connections: l
                .connections
                .into_iter()
                .map(|(node, c)| NativeClusterConn {
                    node,
                    info: c.into(),
                })
                .collect(),
            next_cursor: l.next_cursor.map(|c| c as f64),
            answered: l.answered.into(),
        }
    }
}

/// A cluster-wide disconnect: the total and each member's part (pairs).
#[napi(object)]
pub struct NativeClusterCount {
    pub total: f64,
    pub by_node: Vec<(String, f64)>,
    pub answered: NativeAnswered,
}

impl From<ClusterCount> for NativeClusterCount {
    fn from(c: ClusterCount) -> Self {
        NativeClusterCount {
            total: c.total as f64,
            by_node: counts(c.by_node),
            answered: c.answered.into(),
        }
    }
}

/// One member's statistics.
#[napi(object)]
pub struct NativeNodeStats {
    pub node: String,
    pub stats: NativeRegistryStats,
}

/// Cluster-wide registry statistics: their sum and each member's.
#[napi(object)]
pub struct NativeClusterStats {
    pub total: NativeRegistryStats,
    pub by_node: Vec<NativeNodeStats>,
    pub answered: NativeAnswered,
}

impl From<ClusterStats> for NativeClusterStats {
    fn from(s: ClusterStats) -> Self {
        NativeClusterStats {
            total: s.total.into(),
            by_node: s
                .by_node
                .into_iter()
                .map(|(node, stats)| NativeNodeStats {
                    node,
                    stats: stats.into(),
                })
                .collect(),
            answered: s.answered.into(),
        }
    }
}

/// A named resource's status on each member (pairs).
#[napi(object)]
pub struct NativeClusterResource {
    pub id: String,
    pub by_node: Vec<(String, String)>,
    pub answered: NativeAnswered,
}

impl From<ClusterResource> for NativeClusterResource {
    fn from(r: ClusterResource) -> Self {
        NativeClusterResource {
            id: r.id,
            by_node: r.by_node,
            answered: r.answered.into(),
        }
    }
}

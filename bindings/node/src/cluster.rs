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
//! Arguments come from `cluster.js` in the registry's native argument order (target:
//! `all, topics, users, ids, except`; list filter: `user, topic, metaKey, metaValue,
//! state, minIdleMs, limit, cursor`), and the connection snapshots and statistics go
//! back in the registry's JS shapes (`ConnectionInfo`, `RegistryStats`).
//!
//! The registry's own converters (`registry/convert.rs`) are private to that module,
//! so the few used here are restated below, field for field; they should become one
//! `pub(crate) use` of those (see the report of the Node cluster binding).

use std::sync::Arc;
use std::time::Duration;

use napi::Env;
use napi::bindgen_prelude::{Buffer, Either, Object};
use napi_derive::napi;
use switchboard_core::cluster::{
    Answered, Cluster, ClusterBroadcast, ClusterCount, ClusterList, ClusterResource, ClusterStats,
    Member,
};
use switchboard_core::registry::{
    BroadcastReport, ConnId, ConnInfo, ConnState, ListFilter, Message, RegistryStats, Target,
};
use switchboard_core::runtime::RuntimeShared;
use switchboard_core::{Code, Result as CoreResult};

use crate::error::{Result, guard, sb_error, to_napi};
use crate::health::ms;
use crate::manager::NativeManager;
use crate::sessions::count;
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
    #[allow(clippy::too_many_arguments)]
    pub fn broadcast<'env>(
        &self,
        env: &'env Env,
        data: Either<String, Buffer>,
        all: bool,
        topics: Vec<String>,
        users: Vec<String>,
        id_list: Vec<f64>,
        except: Vec<f64>,
    ) -> Result<Object<'env>> {
        guard(|| {
            let t = target(all, topics, users, id_list, except)?;
            let msg = match data {
                Either::A(s) => Message::text(&s),
                Either::B(b) => Message::binary(b.to_vec()),
            };
            self.spawn(
                env,
                move |c| async move { c.broadcast_async(&t, msg).await },
                NativeClusterBroadcast::from,
            )
        })
    }

    /// One page of the connections of every live member, in id order.
    #[napi]
    #[allow(clippy::too_many_arguments)]
    pub fn list<'env>(
        &self,
        env: &'env Env,
        user: Option<String>,
        topic: Option<String>,
        meta_key: Option<String>,
        meta_value: Option<String>,
        state: Option<String>,
        min_idle_ms: Option<f64>,
        limit: Option<f64>,
        cursor: Option<f64>,
    ) -> Result<Object<'env>> {
        guard(|| {
            let state = match state {
                None => None,
                Some(s) => Some(ConnState::parse_arg(&s).map_err(to_napi)?),
            };
            let min_idle = match min_idle_ms {
                None => None,
                Some(v) => Some(
                    Duration::try_from_secs_f64(v / 1000.0)
                        .ok()
                        .filter(|_| v >= 0.0)
                        .ok_or_else(|| {
                            sb_error(
                                Code::InvalidArgument,
                                format!("minIdleMs must be a number of milliseconds >= 0, got {v}"),
                            )
                        })?,
                ),
            };
            let limit = match limit {
                None => 0,
                Some(v) => usize::try_from(count("limit", v)?).unwrap_or(usize::MAX),
            };
            let filter = ListFilter {
                user,
                topic,
                meta: meta_key.map(|k| (k, meta_value.unwrap_or_default())),
                state,
                min_idle,
                limit,
                cursor: cursor.map(|c| count("cursor", c)).transpose()?,
            };
            self.spawn(
                env,
                move |c| async move { c.list_async(&filter).await },
                NativeClusterList::from,
            )
        })
    }

    /// Disconnects what the target matches on every live member, for `reason`.
    #[napi]
    #[allow(clippy::too_many_arguments)]
    pub fn disconnect<'env>(
        &self,
        env: &'env Env,
        all: bool,
        topics: Vec<String>,
        users: Vec<String>,
        id_list: Vec<f64>,
        except: Vec<f64>,
        reason: Option<String>,
    ) -> Result<Object<'env>> {
        guard(|| {
            let t = target(all, topics, users, id_list, except)?;
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

fn target(
    all: bool,
    topics: Vec<String>,
    users: Vec<String>,
    id_list: Vec<f64>,
    except: Vec<f64>,
) -> Result<Target> {
    let ids = |what: &str, v: Vec<f64>| -> Result<Vec<ConnId>> {
        v.into_iter()
            .enumerate()
            .map(|(i, x)| count(&format!("{what}[{i}]"), x))
            .collect()
    };
    Ok(Target {
        all,
        topics,
        users,
        ids: ids("ids", id_list)?,
        except: ids("except", except)?,
    })
}

/// `(name, count)` pairs (by node id, topic or reason), which `cluster.js` turns into
/// objects keyed by name.
fn by_node(v: impl IntoIterator<Item = (String, u64)>) -> Vec<(String, f64)> {
    v.into_iter().map(|(n, c)| (n, c as f64)).collect()
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
    pub local: NativeClusterReport,
    pub remote: Vec<(String, f64)>,
    pub unacknowledged: f64,
    pub recipients: f64,
}

impl From<ClusterBroadcast> for NativeClusterBroadcast {
    fn from(b: ClusterBroadcast) -> Self {
        NativeClusterBroadcast {
            recipients: b.recipients() as f64,
            local: b.local.into(),
            remote: by_node(b.remote),
            unacknowledged: b.unacknowledged as f64,
        }
    }
}

/// The registry's `BroadcastReport` shape (as `registry/convert.rs` gives it).
#[napi(object)]
pub struct NativeClusterReport {
    pub recipients: f64,
    pub queued: f64,
    pub dropped: f64,
    pub disconnected: f64,
    pub elapsed_ms: f64,
}

impl From<BroadcastReport> for NativeClusterReport {
    fn from(r: BroadcastReport) -> Self {
        NativeClusterReport {
            recipients: r.recipients as f64,
            queued: r.queued as f64,
            dropped: r.dropped as f64,
            disconnected: r.disconnected as f64,
            elapsed_ms: ms(r.elapsed),
        }
    }
}

/// One connection of a cluster list: the registry's `ConnectionInfo` shape (metadata
/// as pairs, made an object by `cluster.js`) and the member it is on.
#[napi(object, use_nullable = true)]
pub struct NativeClusterConn {
    pub node: String,
    pub id: f64,
    pub user: Option<String>,
    pub metadata: Vec<(String, String)>,
    pub topics: Vec<String>,
    pub state: String,
    pub sink: String,
    pub age_ms: f64,
    pub idle_ms: f64,
    pub queued_messages: f64,
    pub queued_bytes: f64,
    pub sent: f64,
    pub dropped: f64,
    pub failed: f64,
}

impl NativeClusterConn {
    fn new(node: String, c: ConnInfo) -> Self {
        NativeClusterConn {
            node,
            id: c.id as f64,
            user: c.user,
            metadata: c.metadata.into_iter().collect(),
            topics: c.topics,
            state: c.state.as_str().to_string(),
            sink: c.sink.to_string(),
            age_ms: ms(c.age),
            idle_ms: ms(c.idle),
            queued_messages: c.queued_messages as f64,
            queued_bytes: c.queued_bytes as f64,
            sent: c.sent as f64,
            dropped: c.dropped as f64,
            failed: c.failed as f64,
        }
    }
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
                .map(|(node, c)| NativeClusterConn::new(node, c))
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
            by_node: by_node(c.by_node),
            answered: c.answered.into(),
        }
    }
}

/// The registry's `RegistryStats` shape (as `registry/convert.rs` gives it:
/// `disconnects` and `rejections` as pairs, made objects by `cluster.js`).
#[napi(object)]
pub struct NativeClusterRegistryStats {
    pub connections: f64,
    pub active: f64,
    pub topics: f64,
    pub users: f64,
    pub topic_counts: Vec<(String, f64)>,
    pub registered_total: f64,
    pub broadcasts: f64,
    pub messages_queued: f64,
    pub messages_sent: f64,
    pub messages_dropped: f64,
    pub messages_failed: f64,
    pub disconnects: Vec<(String, f64)>,
    pub rejections: Vec<(String, f64)>,
    pub cleanup_runs: f64,
}

impl From<RegistryStats> for NativeClusterRegistryStats {
    fn from(s: RegistryStats) -> Self {
        NativeClusterRegistryStats {
            connections: s.connections as f64,
            active: s.active as f64,
            topics: s.topics as f64,
            users: s.users as f64,
            topic_counts: by_node(s.topic_counts),
            registered_total: s.registered_total as f64,
            broadcasts: s.broadcasts as f64,
            messages_queued: s.messages_queued as f64,
            messages_sent: s.messages_sent as f64,
            messages_dropped: s.messages_dropped as f64,
            messages_failed: s.messages_failed as f64,
            disconnects: by_node(s.disconnects),
            rejections: by_node(s.rejections),
            cleanup_runs: s.cleanup_runs as f64,
        }
    }
}

/// One member's statistics.
#[napi(object)]
pub struct NativeNodeStats {
    pub node: String,
    pub stats: NativeClusterRegistryStats,
}

/// Cluster-wide registry statistics: their sum and each member's.
#[napi(object)]
pub struct NativeClusterStats {
    pub total: NativeClusterRegistryStats,
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

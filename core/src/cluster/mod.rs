//! Beyond one machine: a manager joined to a cluster of instances through Redis
//! (`cluster.redis_url`, docs/cluster.md). What is shared goes through Redis, an
//! engine the instances already run, never through a protocol of our own:
//!
//! - membership: each instance's heartbeat (node id, number, address, counts) every
//!   `cluster.heartbeat_interval` in one Lua script on Redis's clock; a member silent
//!   for three intervals is dropped (Centrifugo's node heartbeats);
//! - registry broadcasts: one Pub/Sub channel per topic and per user that has local
//!   connections here (subscribed as the first one comes, unsubscribed as the last
//!   leaves), one per node for id targets, one for `all`; never a pattern that makes
//!   every node receive everything (Socket.IO's adapter's complaint). A node drops its
//!   own messages by its number, and a message that reaches it on two channels is
//!   fanned out once;
//! - cluster-wide list, disconnect, stats and resource status: a request on one
//!   channel, answers on the asker's own, waiting at most `cluster.request_timeout`
//!   for the live members and naming those that did not answer (Socket.IO fails the
//!   whole call on one dead node);
//! - breakers: an opening is published with its open wait as TTL (see
//!   [`crate::breaker::Breaker::remote_open`]).
//!
//! An instance that loses Redis serves locally (event `cluster_lost`) and rejoins
//! when it returns (`cluster_joined`).

mod breakers;
mod link;
mod metrics;
mod requests;
pub(crate) mod settings;
mod types;
mod wire;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, oneshot, watch};

use crate::error::{Error, Result};
use crate::events::{Event, EventBus, EventKind};
use crate::manager::parts::Parts;
use crate::registry::{ListFilter, Message, Target};
use crate::runtime::RuntimeShared;

pub use types::{
    Answered, ClusterBroadcast, ClusterCount, ClusterList, ClusterResource, ClusterStats, Member,
};

use settings::ClusterSettings;

/// A message for the publisher task, which sends them in order, pipelined.
pub(crate) enum Outgoing {
    /// PUBLISH `frame` on each channel; `reply` gets the sum of receivers.
    Publish {
        channels: Vec<String>,
        frame: Arc<Vec<u8>>,
        reply: Option<oneshot::Sender<u64>>,
    },
    /// Any other command (breaker keys).
    Command(redis::Cmd),
}

/// A change to the channels this node listens on.
pub(crate) enum SubChange {
    Add(String),
    Remove(String),
}

/// An answer to a request or an acknowledgement of a broadcast, for its waiter.
pub(crate) struct Reply {
    pub(crate) node: String,
    pub(crate) body: serde_json::Value,
    /// A copy of this node's own broadcast that came back to it (counted, never
    /// fanned out again).
    pub(crate) own: bool,
}

/// Message keys seen lately, so a broadcast that arrives on two channels (a target
/// with two topics this node has subscribers of) is fanned out once.
#[derive(Default)]
struct Seen {
    order: VecDeque<(u64, u64)>,
    set: HashSet<(u64, u64)>,
}

const SEEN_MAX: usize = 16_384;

/// Messages waiting for the publisher at most; beyond, a publish is dropped and counted
/// in `switchboard_cluster_publish_failures_total`.
pub(crate) const MAX_OUTGOING: usize = 65_536;

impl Seen {
    /// Records `key`; false if it was seen already.
    fn insert(&mut self, key: (u64, u64)) -> bool {
        if !self.set.insert(key) {
            return false;
        }
        self.order.push_back(key);
        if self.order.len() > SEEN_MAX {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) published: AtomicU64,
    pub(crate) publish_failed: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) partial: AtomicU64,
}

/// One instance's membership in the cluster (shared by its tasks and its handle).
pub(crate) struct Node {
    pub(crate) s: ClusterSettings,
    pub(crate) number: u64,
    pub(crate) events: Arc<EventBus>,
    pub(crate) rt: Arc<RuntimeShared>,
    pub(crate) client: redis::Client,
    pub(crate) parts: OnceLock<Weak<Parts>>,
    pub(crate) conn: Mutex<Option<ConnectionManager>>,
    pub(crate) address: Mutex<String>,
    cmd_ok: AtomicBool,
    sub_ok: AtomicBool,
    joined: AtomicBool,
    ever_joined: AtomicBool,
    pub(crate) members: Mutex<Vec<Member>>,
    pub(crate) out: mpsc::UnboundedSender<Outgoing>,
    /// Messages in `out` not yet taken by the publisher (bounded by `MAX_OUTGOING`).
    pub(crate) outgoing: AtomicUsize,
    pub(crate) subs: mpsc::UnboundedSender<SubChange>,
    pub(crate) pending: Mutex<HashMap<u64, mpsc::UnboundedSender<Reply>>>,
    seq: AtomicU64,
    seen: Mutex<Seen>,
    pub(crate) stop: watch::Sender<bool>,
    pub(crate) counters: Counters,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Node {
    pub(crate) fn parts(&self) -> Option<Arc<Parts>> {
        self.parts.get().and_then(Weak::upgrade)
    }

    pub(crate) fn is_joined(&self) -> bool {
        self.joined.load(Ordering::Acquire)
    }

    pub(crate) fn conn(&self) -> Option<ConnectionManager> {
        lock(&self.conn).clone()
    }

    pub(crate) fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Whether a broadcast `(origin, seq)` is new here.
    pub(crate) fn first_sight(&self, origin: u64, seq: u64) -> bool {
        lock(&self.seen).insert((origin, seq))
    }

    /// This node's own channel (answers, acknowledgements, id-targeted broadcasts).
    pub(crate) fn node_channel(&self, number: u64) -> String {
        self.s.key(&format!("n:{number}"))
    }

    /// Records whether commands (`cmd`) or the subscription (`!cmd`) work, and emits
    /// `cluster_joined` / `cluster_lost` when that changes the whole.
    pub(crate) fn set_link(&self, cmd: bool, ok: bool, why: &str) {
        let flag = if cmd { &self.cmd_ok } else { &self.sub_ok };
        flag.store(ok, Ordering::SeqCst);
        let now = self.cmd_ok.load(Ordering::SeqCst) && self.sub_ok.load(Ordering::SeqCst);
        if self.joined.swap(now, Ordering::SeqCst) == now {
            return;
        }
        if !now {
            self.emit_lost(why);
            return;
        }
        let (kind, reason, message) = {
            let again = self.ever_joined.swap(true, Ordering::SeqCst);
            let reason = if again { "rejoined" } else { "joined" };
            (
                EventKind::ClusterJoined,
                reason,
                format!(
                    "node {} {reason} cluster \"{}\" at {}",
                    self.s.node_id, self.s.name, self.s.url
                ),
            )
        };
        self.events.emit(Event {
            reason: Some(reason.to_string()),
            ..Event::new(kind, message)
        });
        breakers::resync(self, None);
    }

    /// The `cluster_lost` event.
    pub(crate) fn emit_lost(&self, why: &str) {
        self.events.emit(Event {
            reason: Some("redis_unavailable".to_string()),
            ..Event::new(
                EventKind::ClusterLost,
                format!(
                    "node {} lost cluster \"{}\" ({why}); serving locally: breakers are local and broadcasts reach this instance only until it rejoins",
                    self.s.node_id, self.s.name
                ),
            )
        });
    }

    /// Queues `out` for the publisher (dropped, and counted, when the cluster is lost).
    pub(crate) fn send(&self, out: Outgoing) {
        let failed = || {
            self.counters.publish_failed.fetch_add(1, Ordering::Relaxed);
        };
        if !self.is_joined() {
            return failed();
        }
        // A Redis that is slow but not gone must not make the queue grow without bound:
        // past MAX_OUTGOING, messages reach this instance only (and are counted).
        if self.outgoing.fetch_add(1, Ordering::AcqRel) >= MAX_OUTGOING {
            self.outgoing.fetch_sub(1, Ordering::AcqRel);
            return failed();
        }
        if self.out.send(out).is_err() {
            self.outgoing.fetch_sub(1, Ordering::AcqRel);
            failed();
        }
    }

    /// The channels a broadcast to `target` is published on.
    pub(crate) fn channels(&self, target: &Target) -> Vec<String> {
        if target.all {
            return vec![self.s.key("all")];
        }
        let mut out: Vec<String> = Vec::new();
        out.extend(target.topics.iter().map(|t| self.s.key(&format!("t:{t}"))));
        out.extend(target.users.iter().map(|u| self.s.key(&format!("u:{u}"))));
        let mut nodes: Vec<u64> = target
            .ids
            .iter()
            .map(|id| crate::registry::links::node_of(*id))
            .filter(|n| *n != 0 && *n != self.number)
            .collect();
        nodes.sort_unstable();
        nodes.dedup();
        out.extend(nodes.into_iter().map(|n| self.node_channel(n)));
        out.sort();
        out.dedup();
        out
    }

    /// Runs `fut` on the runtime and waits for it on this thread (not on one of the
    /// runtime's own threads: FailedPrecondition, use the async call).
    fn block<T: Send + 'static>(
        &self,
        what: &str,
        fut: impl std::future::Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        if self.rt.on_own_thread() {
            return Err(Error::failed_precondition(format!(
                "cluster {what} waits for other instances and cannot run on the manager's own runtime thread (from a callback); call it from another thread or use its async form"
            )));
        }
        self.rt.check_pid()?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.rt.spawn(async move {
            let _ = tx.send(fut.await);
        })?;
        // The future bounds itself by cluster.request_timeout; this is a backstop.
        rx.recv_timeout(self.s.request_timeout + Duration::from_secs(5))
            .unwrap_or_else(|_| {
                Err(Error::timeout(format!(
                    "cluster {what} did not finish within cluster.request_timeout"
                )))
            })
    }
}

/// The manager's membership in its cluster ([`crate::Manager::cluster`]). Cheap to
/// clone. Every cluster-wide call answers with the live members that answered and
/// names the ones that did not ([`Answered`]).
#[derive(Clone)]
pub struct Cluster {
    node: Arc<Node>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("name", &self.node.s.name)
            .field("node_id", &self.node.s.node_id)
            .field("joined", &self.is_joined())
            .finish()
    }
}

impl Cluster {
    /// Connects (bounded by `cluster.request_timeout`), takes a node number and
    /// starts the tasks. A Redis that cannot be reached leaves the cluster lost (with
    /// its event) and the tasks retrying.
    pub(crate) fn start(
        s: ClusterSettings,
        rt: Arc<RuntimeShared>,
        events: Arc<EventBus>,
    ) -> Result<Cluster> {
        link::start(s, rt, events).map(|node| Cluster { node })
    }

    /// Wires the cluster to the manager's parts: the registry's index and
    /// broadcasts, the pools' breakers.
    pub(crate) fn attach(&self, parts: &Arc<Parts>) {
        let _ = self.node.parts.set(Arc::downgrade(parts));
        parts.registry.link_cluster(
            self.node.number,
            Arc::new(link::Watch(self.node.clone())),
            Arc::new(link::Remote(self.node.clone())),
        );
    }

    /// The breaker link for a new pool (`None` with `cluster.breakers = local`), and
    /// the openings already published for it are applied.
    pub(crate) fn breakers_for(&self, pool: &str) -> Option<Arc<dyn crate::pool::SharedBreakers>> {
        if !self.node.s.share_breakers {
            return None;
        }
        breakers::resync(&self.node, Some(pool.to_string()));
        Some(Arc::new(breakers::Link(self.node.clone())))
    }

    /// The embedded server's address, for the heartbeat.
    pub(crate) fn set_address(&self, addr: String) {
        *lock(&self.node.address) = addr;
    }

    /// Leaves: the member record is removed (so the others drop it at once) and the
    /// tasks stop.
    pub(crate) fn stop(&self) {
        link::stop(&self.node);
    }

    pub(crate) fn collector(&self) -> metrics::ClusterCollector {
        let c = &self.node.counters;
        metrics::ClusterCollector {
            node: self.node.s.node_id.clone(),
            joined: self.is_joined(),
            members: lock(&self.node.members).len() as u64,
            published: c.published.load(Ordering::Relaxed),
            publish_failed: c.publish_failed.load(Ordering::Relaxed),
            received: c.received.load(Ordering::Relaxed),
            partial: c.partial.load(Ordering::Relaxed),
        }
    }

    /// `cluster.name`.
    pub fn name(&self) -> &str {
        &self.node.s.name
    }

    /// This instance's `cluster.node_id`.
    pub fn node_id(&self) -> &str {
        &self.node.s.node_id
    }

    /// This instance's number: the top bits of its connection ids.
    pub fn node_number(&self) -> u64 {
        self.node.number
    }

    /// Whether Redis is reachable and this instance takes part (else it serves
    /// locally; see the `cluster_lost` and `cluster_joined` events).
    pub fn is_joined(&self) -> bool {
        self.node.is_joined()
    }

    /// The live members as of the last heartbeat, this instance included (when
    /// joined), by node id.
    pub fn members(&self) -> Vec<Member> {
        lock(&self.node.members).clone()
    }

    /// A broadcast to every instance that waits for their acknowledgements (up to
    /// `cluster.request_timeout`) and says which members it reached. A plain
    /// [`crate::Registry::broadcast`] reaches the cluster too, without waiting.
    pub fn broadcast(&self, target: &Target, msg: Message) -> Result<ClusterBroadcast> {
        let node = self.node.clone();
        let target = target.clone();
        self.node.block("broadcast", async move {
            requests::broadcast(&node, &target, msg).await
        })
    }

    /// [`Cluster::broadcast`] for async callers.
    pub async fn broadcast_async(&self, target: &Target, msg: Message) -> Result<ClusterBroadcast> {
        requests::broadcast(&self.node, target, msg).await
    }

    /// One page of the connections of every live member, in id order.
    pub fn list(&self, filter: &ListFilter) -> Result<ClusterList> {
        let node = self.node.clone();
        let filter = filter.clone();
        self.node
            .block("list", async move { requests::list(&node, &filter).await })
    }

    /// [`Cluster::list`] for async callers.
    pub async fn list_async(&self, filter: &ListFilter) -> Result<ClusterList> {
        requests::list(&self.node, filter).await
    }

    /// Disconnects what `target` matches on every live member (see
    /// [`crate::Registry::disconnect`]).
    pub fn disconnect(&self, target: &Target, reason: &str) -> Result<ClusterCount> {
        let node = self.node.clone();
        let (target, reason) = (target.clone(), reason.to_string());
        self.node.block("disconnect", async move {
            requests::disconnect(&node, &target, &reason).await
        })
    }

    /// [`Cluster::disconnect`] for async callers.
    pub async fn disconnect_async(&self, target: &Target, reason: &str) -> Result<ClusterCount> {
        requests::disconnect(&self.node, target, reason).await
    }

    /// The registry statistics of every live member, and their sum.
    pub fn stats(&self) -> Result<ClusterStats> {
        let node = self.node.clone();
        self.node
            .block("stats", async move { requests::stats(&node).await })
    }

    /// [`Cluster::stats`] for async callers.
    pub async fn stats_async(&self) -> Result<ClusterStats> {
        requests::stats(&self.node).await
    }

    /// Named resource `id`'s status on every live member (`absent` where it is not
    /// created).
    pub fn resource_status(&self, id: &str) -> Result<ClusterResource> {
        let node = self.node.clone();
        let id = id.to_string();
        self.node.block("resource_status", async move {
            requests::resource(&node, &id).await
        })
    }

    /// [`Cluster::resource_status`] for async callers.
    pub async fn resource_status_async(&self, id: &str) -> Result<ClusterResource> {
        requests::resource(&self.node, id).await
    }
}

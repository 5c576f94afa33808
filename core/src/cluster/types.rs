//! What the cluster's calls return: every cluster-wide answer names the members
//! that answered and those that did not (Socket.IO fails a whole query on one dead
//! node; here the live members' part comes back, with the silent ones named).

use std::time::Duration;

use crate::registry::{BroadcastReport, ConnId, ConnInfo, RegistryStats};

/// One member of the cluster, from its last heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its `cluster.node_id`.
    pub node_id: String,
    /// Its number (the top bits of its connection ids).
    pub number: u64,
    /// Its embedded server's address ("" when it has none).
    pub address: String,
    /// Its registered connections at its last heartbeat.
    pub connections: u64,
    /// Its open pools at its last heartbeat.
    pub pools: u64,
    /// Time since its last heartbeat (by Redis's clock).
    pub last_seen: Duration,
    /// Whether it is this instance.
    pub local: bool,
}

/// Which live members answered a cluster-wide call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answered {
    /// The members that answered (this instance first).
    pub nodes: Vec<String>,
    /// The live members that did not answer within `cluster.request_timeout`; their
    /// part is missing from the result.
    pub missing: Vec<String>,
}

/// A cluster-wide list page: the connections of every member that answered, in id
/// order (ids are unique across the cluster).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterList {
    /// `(node id, connection)`, in id order.
    pub connections: Vec<(String, ConnInfo)>,
    /// Pass as the filter's `cursor` for the next page; `None` after the last.
    pub next_cursor: Option<ConnId>,
    /// Who answered.
    pub answered: Answered,
}

/// A cluster-wide count (disconnect): the total and each member's part.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterCount {
    /// The sum over the members that answered.
    pub total: u64,
    /// `(node id, count)` for each member that answered.
    pub by_node: Vec<(String, u64)>,
    /// Who answered.
    pub answered: Answered,
}

/// Cluster-wide registry statistics: each member's, and their sum.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterStats {
    /// The members' statistics added up (`users` and `topics` count per member, so a
    /// user connected to two members counts twice; `topic_counts` is summed by topic).
    pub total: RegistryStats,
    /// `(node id, statistics)` for each member that answered.
    pub by_node: Vec<(String, RegistryStats)>,
    /// Who answered.
    pub answered: Answered,
}

/// A named resource's status on each member.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterResource {
    /// The resource's id.
    pub id: String,
    /// `(node id, status)` for each member that answered: a status name
    /// (`connected`, `connecting`, ...), or `absent` where it is not created.
    pub by_node: Vec<(String, String)>,
    /// Who answered.
    pub answered: Answered,
}

/// What an acknowledged cluster broadcast reached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterBroadcast {
    /// The fan-out on this instance.
    pub local: BroadcastReport,
    /// `(node id, recipients)` for each other member that received it.
    pub remote: Vec<(String, u64)>,
    /// Copies published that no member acknowledged within `cluster.request_timeout`
    /// (a member that left, or one too slow to answer).
    pub unacknowledged: u64,
}

impl ClusterBroadcast {
    /// Recipients on every instance that acknowledged, this one included.
    pub fn recipients(&self) -> u64 {
        self.local.recipients + self.remote.iter().map(|(_, n)| n).sum::<u64>()
    }
}

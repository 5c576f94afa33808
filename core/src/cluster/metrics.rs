//! The `switchboard_cluster_*` series (only when the manager is in a cluster).

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

#[derive(Debug)]
pub(crate) struct ClusterCollector {
    pub(crate) node: String,
    pub(crate) joined: bool,
    pub(crate) members: u64,
    pub(crate) published: u64,
    pub(crate) publish_failed: u64,
    pub(crate) received: u64,
    pub(crate) partial: u64,
}

impl Collector for ClusterCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let l = vec![("node", self.node.clone())];
        let gauges = [
            (
                "switchboard_cluster_joined",
                "1 while this instance takes part in its cluster, 0 while it serves locally (Redis lost).",
                i64::from(self.joined),
            ),
            (
                "switchboard_cluster_members",
                "Live members in the last heartbeat's member list, this one included.",
                i64::try_from(self.members).unwrap_or(i64::MAX),
            ),
        ];
        for (name, help, v) in gauges {
            let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(v).encode(m.encode_family(&l)?)?;
        }
        let counters = [
            (
                "switchboard_cluster_messages_published",
                "Pub/Sub messages published to the cluster (one per channel).",
                self.published,
            ),
            (
                "switchboard_cluster_publish_failures",
                "Messages not published: Redis lost or too slow (they reached this instance only).",
                self.publish_failed,
            ),
            (
                "switchboard_cluster_messages_received",
                "Pub/Sub messages received from the cluster.",
                self.received,
            ),
            (
                "switchboard_cluster_partial_results",
                "Cluster-wide calls that returned without some live member's answer.",
                self.partial,
            ),
        ];
        for (name, help, v) in counters {
            let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
            ConstCounter::new(v).encode(m.encode_family(&l)?)?;
        }
        Ok(())
    }
}

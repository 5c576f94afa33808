//! The `switchboard_registry_*` series, rendered from a stats snapshot at scrape
//! time by the same `prometheus-client` registry as the pool metrics. Per-topic
//! series are bounded: the `registry.metrics_top_topics` largest topics, and one
//! `_other` series for the rest.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::types::RegistryStats;

#[derive(Debug)]
pub(crate) struct RegistryCollector {
    pub(crate) stats: RegistryStats,
    pub(crate) top: usize,
}

type Labels = Vec<(&'static str, String)>;

fn gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: u64,
) -> Result<(), std::fmt::Error> {
    let m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX)).encode(m)
}

fn counter(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: u64,
) -> Result<(), std::fmt::Error> {
    let m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    ConstCounter::new(v).encode(m)
}

impl Collector for RegistryCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &self.stats;
        let e = &mut enc;
        gauge(
            e,
            "switchboard_registry_connections",
            "Connections registered now.",
            s.connections,
        )?;
        gauge(
            e,
            "switchboard_registry_connections_active",
            "Registered connections heard from within registry.heartbeat_interval.",
            s.active,
        )?;
        gauge(
            e,
            "switchboard_registry_topics",
            "Topics with at least one subscriber.",
            s.topics,
        )?;
        gauge(
            e,
            "switchboard_registry_users",
            "Distinct users with at least one connection.",
            s.users,
        )?;
        let subscriptions: u64 = s.topic_counts.iter().map(|(_, n)| n).sum();
        gauge(
            e,
            "switchboard_registry_subscriptions",
            "Subscriptions in all topics (the total beside the per-topic series).",
            subscriptions,
        )?;
        {
            let mut m = e.encode_descriptor(
                "switchboard_registry_topic_connections",
                "Subscribers of the largest topics (registry.metrics_top_topics of them); topic=\"_other\" sums the rest.",
                None,
                MetricType::Gauge,
            )?;
            let (top, rest) = s.topic_counts.split_at(s.topic_counts.len().min(self.top));
            for (t, n) in top {
                let labels: Labels = vec![("topic", t.clone())];
                ConstGauge::new(i64::try_from(*n).unwrap_or(i64::MAX))
                    .encode(m.encode_family(&labels)?)?;
            }
            if !rest.is_empty() {
                let sum: u64 = rest.iter().map(|(_, n)| n).sum();
                let labels: Labels = vec![("topic", "_other".to_string())];
                ConstGauge::new(i64::try_from(sum).unwrap_or(i64::MAX))
                    .encode(m.encode_family(&labels)?)?;
            }
        }
        counter(
            e,
            "switchboard_registry_registrations",
            "Connections registered since the manager started.",
            s.registered_total,
        )?;
        counter(
            e,
            "switchboard_registry_broadcasts",
            "Broadcasts and direct sends made.",
            s.broadcasts,
        )?;
        {
            let mut m = e.encode_descriptor(
                "switchboard_registry_messages",
                "Messages by outcome: queued for a connection, sent (handed to its sink), dropped (full queue, or discarded when it left), failed (the sink failed).",
                None,
                MetricType::Counter,
            )?;
            for (result, v) in [
                ("queued", s.messages_queued),
                ("sent", s.messages_sent),
                ("dropped", s.messages_dropped),
                ("failed", s.messages_failed),
            ] {
                let labels: Labels = vec![("result", result.to_string())];
                ConstCounter::new(v).encode(m.encode_family(&labels)?)?;
            }
        }
        {
            let mut m = e.encode_descriptor(
                "switchboard_registry_disconnects",
                "Connections removed, by reason (stale, send_failed, slow_consumer, manager_closed, or the program's own; past 32 distinct reasons, other).",
                None,
                MetricType::Counter,
            )?;
            for (reason, v) in &s.disconnects {
                let labels: Labels = vec![("reason", reason.clone())];
                ConstCounter::new(*v).encode(m.encode_family(&labels)?)?;
            }
        }
        {
            let mut m = e.encode_descriptor(
                "switchboard_registry_rejections",
                "Register and subscribe calls refused by a limit, by the limit's key.",
                None,
                MetricType::Counter,
            )?;
            for (limit, v) in &s.rejections {
                let labels: Labels = vec![("limit", limit.clone())];
                ConstCounter::new(*v).encode(m.encode_family(&labels)?)?;
            }
        }
        counter(
            e,
            "switchboard_registry_cleanup_runs",
            "Heartbeat and stale-cleanup passes run.",
            s.cleanup_runs,
        )?;
        Ok(())
    }
}

impl super::Registry {
    pub(crate) fn collector(&self) -> RegistryCollector {
        RegistryCollector {
            stats: self.inner.stats(),
            top: self.inner.settings.top_topics,
        }
    }
}

//! The `switchboard_resource_*` series: each resource's status (eKuiper's encoding),
//! reconnects, consumers and bytes, named and anonymous alike.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::types::ResourceInfo;

#[derive(Debug)]
pub(crate) struct ResourcesCollector {
    pub(crate) resources: Vec<ResourceInfo>,
}

type Labels = Vec<(&'static str, String)>;

fn labels(r: &ResourceInfo) -> Labels {
    vec![("resource", r.id.clone()), ("type", r.kind.clone())]
}

impl Collector for ResourcesCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let e = &mut enc;
        {
            let mut m = e.encode_descriptor(
                "switchboard_resource_status",
                "Each resource's status: 1 connected, 0 connecting or recovering, -1 disconnected.",
                None,
                MetricType::Gauge,
            )?;
            for r in &self.resources {
                ConstGauge::new(r.status.metric()).encode(m.encode_family(&labels(r))?)?;
            }
        }
        {
            let mut m = e.encode_descriptor(
                "switchboard_resource_consumers",
                "Consumers attached to each resource.",
                None,
                MetricType::Gauge,
            )?;
            for r in &self.resources {
                let n = i64::try_from(r.consumers.len()).unwrap_or(i64::MAX);
                ConstGauge::new(n).encode(m.encode_family(&labels(r))?)?;
            }
        }
        {
            let mut m = e.encode_descriptor(
                "switchboard_resource_reconnects",
                "Connections of each resource lost and redialled.",
                None,
                MetricType::Counter,
            )?;
            for r in &self.resources {
                ConstCounter::new(r.reconnects).encode(m.encode_family(&labels(r))?)?;
            }
        }
        {
            let mut m = e.encode_descriptor(
                "switchboard_resource_bytes",
                "Bytes read (in) and written (out) through each resource's consumers.",
                None,
                MetricType::Counter,
            )?;
            for r in &self.resources {
                for (dir, v) in [("in", r.bytes_in), ("out", r.bytes_out)] {
                    let mut l = labels(r);
                    l.push(("direction", dir.to_string()));
                    ConstCounter::new(v).encode(m.encode_family(&l)?)?;
                }
            }
        }
        Ok(())
    }
}

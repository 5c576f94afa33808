//! The `stream_api_*` series, rendered from a snapshot at scrape time by the same
//! `prometheus-client` registry as the pool metrics.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use super::{SessionInfo, StreamCounters};

/// One registered session key.
#[derive(Debug, Clone)]
pub(crate) struct KeyRow {
    pub(crate) data_source: String,
    pub(crate) session_key: String,
    pub(crate) opened_total: u64,
    pub(crate) open: usize,
}

/// A snapshot of the catalog and of every open session.
#[derive(Debug, Default)]
pub(crate) struct SessionsCollector {
    pub(crate) keys: Vec<KeyRow>,
    pub(crate) sessions: Vec<SessionInfo>,
}

type Labels = Vec<(&'static str, String)>;

fn session_labels(s: &SessionInfo) -> Labels {
    vec![
        ("connection", s.id.to_string()),
        ("data_source", s.data_source.clone()),
        ("session_key", s.session_key.clone()),
    ]
}

impl SessionsCollector {
    fn stream_counter(
        &self,
        enc: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        pick: impl Fn(&StreamCounters) -> u64,
    ) -> Result<(), std::fmt::Error> {
        let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
        for s in &self.sessions {
            for st in &s.streams {
                let mut labels = session_labels(s);
                labels.push(("stream", st.name.clone()));
                ConstCounter::new(pick(&st.counters)).encode(m.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }

    fn session_counter(
        &self,
        enc: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        pick: impl Fn(&SessionInfo) -> u64,
    ) -> Result<(), std::fmt::Error> {
        let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
        for s in &self.sessions {
            ConstCounter::new(pick(s)).encode(m.encode_family(&session_labels(s))?)?;
        }
        Ok(())
    }
}

impl Collector for SessionsCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let e = &mut enc;
        let mut keys = self.keys.clone();
        keys.sort_by(|a, b| {
            (&a.data_source, &a.session_key).cmp(&(&b.data_source, &b.session_key))
        });
        let key_labels = |k: &KeyRow| -> Labels {
            vec![
                ("data_source", k.data_source.clone()),
                ("session_key", k.session_key.clone()),
            ]
        };
        {
            // The encoder appends `_total` to counter names.
            let mut m = e.encode_descriptor(
                "stream_api_connections",
                "Sessions (logical connections) opened on a registered session key, resumes included.",
                None,
                MetricType::Counter,
            )?;
            for k in &keys {
                ConstCounter::new(k.opened_total).encode(m.encode_family(&key_labels(k))?)?;
            }
        }
        {
            let mut m = e.encode_descriptor(
                "stream_api_connections_open",
                "Sessions open now on a registered session key.",
                None,
                MetricType::Gauge,
            )?;
            for k in &keys {
                let n = i64::try_from(k.open).unwrap_or(i64::MAX);
                ConstGauge::new(n).encode(m.encode_family(&key_labels(k))?)?;
            }
        }
        self.stream_counter(
            e,
            "stream_api_data_packets_read",
            "Data packets read from the source, per session (connection) and stream.",
            |c| c.data_packets_read,
        )?;
        self.stream_counter(
            e,
            "stream_api_data_bytes_read",
            "Bytes of data packets read from the source.",
            |c| c.data_bytes_read,
        )?;
        self.stream_counter(
            e,
            "stream_api_data_packets_delivered",
            "Data packets delivered to the client.",
            |c| c.data_packets_delivered,
        )?;
        self.stream_counter(
            e,
            "stream_api_data_bytes_delivered",
            "Bytes of data packets delivered to the client.",
            |c| c.data_bytes_delivered,
        )?;
        self.stream_counter(
            e,
            "stream_api_essential_packets_read",
            "Essential packets read from the source.",
            |c| c.essential_packets_read,
        )?;
        self.stream_counter(
            e,
            "stream_api_essential_packets_delivered",
            "Essential packets delivered to the client.",
            |c| c.essential_packets_delivered,
        )?;
        self.session_counter(
            e,
            "stream_api_router_messages_received",
            "Router (control) messages received, per session (connection).",
            |s| s.router_messages_received,
        )?;
        self.session_counter(
            e,
            "stream_api_router_messages_received_bytes",
            "Bytes of router messages received.",
            |s| s.router_bytes_received,
        )?;
        Ok(())
    }
}

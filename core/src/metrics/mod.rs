//! Metrics: latency histograms kept with atomics on the hot path, and the
//! Prometheus/OpenMetrics text of a manager, rendered by the `prometheus-client` crate.
//!
//! Metric names are stable; docs/metrics.md lists them.

pub(crate) mod histogram;

pub use histogram::{BUCKETS, Histogram, HistogramSnapshot, bucket_bound_ns};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeGaugeValue, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::breaker::BreakerState;
use crate::health::{ConnState, EndpointHealth};
use crate::pool::{CloseReason, PoolStats};

#[derive(Debug)]
struct PoolCollector {
    pools: Vec<PoolStats>,
}

type Labels = Vec<(&'static str, String)>;

fn pool_label(p: &PoolStats) -> Labels {
    vec![("pool", p.name.clone())]
}

impl PoolCollector {
    fn gauge(
        &self,
        enc: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        rows: impl Fn(&PoolStats) -> Vec<(Labels, i64)>,
    ) -> Result<(), std::fmt::Error> {
        let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
        for p in &self.pools {
            for (labels, v) in rows(p) {
                ConstGauge::new(v).encode(m.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }

    fn counter(
        &self,
        enc: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        rows: impl Fn(&PoolStats) -> Vec<(Labels, u64)>,
    ) -> Result<(), std::fmt::Error> {
        let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
        for p in &self.pools {
            for (labels, v) in rows(p) {
                ConstCounter::new(v).encode(m.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }

    fn histogram(
        &self,
        enc: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        pick: impl Fn(&PoolStats) -> HistogramSnapshot,
    ) -> Result<(), std::fmt::Error> {
        let mut m = enc.encode_descriptor(name, help, None, MetricType::Histogram)?;
        for p in &self.pools {
            let h = pick(p);
            let labels = pool_label(p);
            let mut fam = m.encode_family(&labels)?;
            // The encoder accumulates: it takes per-bucket counts.
            let per_bucket: Vec<(f64, u64)> = h
                .cumulative_buckets()
                .iter()
                .zip(h.counts)
                .map(|((bound, _), c)| (*bound, c))
                .collect();
            fam.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
                h.sum_ns as f64 / 1e9,
                h.count(),
                &per_bucket,
                None,
            )?;
        }
        Ok(())
    }
}

type EndpointRow<'a> = (&'a PoolStats, &'a EndpointHealth);

impl PoolCollector {
    fn endpoints(&self) -> impl Iterator<Item = EndpointRow<'_>> {
        self.pools
            .iter()
            .flat_map(|p| p.endpoints.iter().map(move |e| (p, e)))
    }

    /// One family of per-endpoint series: `rows` gives, for an endpoint and its
    /// `pool`/`endpoint` labels, each series' labels and value (a `ConstGauge` or a
    /// `ConstCounter`, matching `ty`).
    fn ep_series<M: EncodeMetric>(
        &self,
        enc: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        ty: MetricType,
        rows: impl Fn(EndpointRow<'_>, Labels) -> Vec<(Labels, M)>,
    ) -> Result<(), std::fmt::Error> {
        let mut m = enc.encode_descriptor(name, help, None, ty)?;
        for (p, e) in self.endpoints() {
            let labels = vec![("pool", p.name.clone()), ("endpoint", e.endpoint.clone())];
            for (l, v) in rows((p, e), labels) {
                v.encode(m.encode_family(&l)?)?;
            }
        }
        Ok(())
    }

    fn ep_gauge<N: EncodeGaugeValue + 'static>(
        &self,
        enc: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        rows: impl Fn(EndpointRow<'_>, Labels) -> Vec<(Labels, N)>,
    ) -> Result<(), std::fmt::Error>
    where
        ConstGauge<N>: EncodeMetric,
    {
        self.ep_series(enc, name, help, MetricType::Gauge, |r, l| {
            rows(r, l)
                .into_iter()
                .map(|(l, v)| (l, ConstGauge::new(v)))
                .collect()
        })
    }

    fn ep_counter(
        &self,
        enc: &mut DescriptorEncoder,
        name: &str,
        help: &str,
        rows: impl Fn(EndpointRow<'_>, Labels) -> Vec<(Labels, u64)>,
    ) -> Result<(), std::fmt::Error> {
        self.ep_series(enc, name, help, MetricType::Counter, |r, l| {
            rows(r, l)
                .into_iter()
                .map(|(l, v)| (l, ConstCounter::new(v)))
                .collect()
        })
    }

    fn endpoint_series(&self, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        fn with(mut l: Labels, k: &'static str, v: &str) -> Labels {
            l.push((k, v.to_string()));
            l
        }
        self.ep_gauge(
            e,
            "switchboard_endpoint_breaker_state",
            "1 for the breaker's current state, 0 for the others.",
            |(_, h), l| {
                BreakerState::ALL
                    .iter()
                    .map(|s| {
                        let on = i64::from(*s == h.breaker);
                        (with(l.clone(), "state", s.as_str()), on)
                    })
                    .collect()
            },
        )?;
        self.ep_counter(
            e,
            "switchboard_endpoint_breaker_transitions",
            "Breaker state changes.",
            |(_, h), l| vec![(l, h.breaker_transitions)],
        )?;
        self.ep_counter(
            e,
            "switchboard_endpoint_breaker_opened",
            "Times the breaker opened.",
            |(_, h), l| vec![(l, h.breaker_opened)],
        )?;
        self.ep_counter(
            e,
            "switchboard_endpoint_breaker_rejected",
            "Connects the breaker refused.",
            |(_, h), l| vec![(l, h.breaker_rejected)],
        )?;
        self.ep_counter(
            e,
            "switchboard_endpoint_reconnect_attempts",
            "Connects to the endpoint after it had failed (with backoff).",
            |(_, h), l| vec![(l, h.reconnects)],
        )?;
        self.ep_counter(
            e,
            "switchboard_endpoint_calls",
            "Calls recorded for the endpoint (connects, probes, health checks, reported calls), by result.",
            |(_, h), l| {
                vec![
                    (with(l.clone(), "result", "ok"), h.calls - h.failures),
                    (with(l, "result", "failed"), h.failures),
                ]
            },
        )?;
        self.ep_counter(
            e,
            "switchboard_endpoint_health_checks",
            "Health checks, by result.",
            |(_, h), l| {
                vec![
                    (with(l.clone(), "result", "ok"), h.checks - h.checks_failed),
                    (with(l, "result", "failed"), h.checks_failed),
                ]
            },
        )?;
        self.ep_gauge(
            e,
            "switchboard_endpoint_latency_ewma_seconds",
            "Latency EWMA of the endpoint's successful calls and health checks.",
            |(_, h), l| vec![(l, h.latency_ewma.map_or(0.0, |d| d.as_secs_f64()))],
        )?;
        self.ep_gauge(
            e,
            "switchboard_endpoint_quality",
            "Quality score in [0, 1]: success rate times latency factor; 0 while the breaker refuses.",
            |(_, h), l| vec![(l, h.quality)],
        )?;
        self.ep_gauge(
            e,
            "switchboard_endpoint_connections",
            "Connections open to the endpoint.",
            |(_, h), l| vec![(l, n(h.open_connections))],
        )?;
        self.ep_gauge(
            e,
            "switchboard_endpoint_up",
            "1 while the endpoint is connected or idle and its breaker admits calls, else 0.",
            |(_, h), l| {
                let up = !h.breaker.blocks()
                    && matches!(
                        h.state,
                        ConnState::Connected | ConnState::Idle | ConnState::Connecting
                    );
                vec![(l, i64::from(up))]
            },
        )?;
        Ok(())
    }
}

fn n(v: usize) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Collector for PoolCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let e = &mut enc;
        self.gauge(
            e,
            "switchboard_pool_connections",
            "Connections of the pool by state (idle, leased, connecting).",
            |p| {
                let with = |s: &str| {
                    let mut l = pool_label(p);
                    l.push(("state", s.to_string()));
                    l
                };
                vec![
                    (with("idle"), n(p.idle)),
                    (with("leased"), n(p.leased)),
                    (with("connecting"), n(p.connecting)),
                ]
            },
        )?;
        self.gauge(
            e,
            "switchboard_pool_size",
            "Open connections plus connects in flight.",
            |p| vec![(pool_label(p), n(p.size))],
        )?;
        self.gauge(
            e,
            "switchboard_pool_max_size",
            "The pool's max_size now.",
            |p| vec![(pool_label(p), n(p.max_size))],
        )?;
        self.gauge(
            e,
            "switchboard_pool_min_idle",
            "The pool's min_idle now.",
            |p| vec![(pool_label(p), n(p.min_idle))],
        )?;
        self.gauge(
            e,
            "switchboard_pool_waiting",
            "Callers waiting for a connection.",
            |p| vec![(pool_label(p), n(p.waiting))],
        )?;
        self.counter(
            e,
            "switchboard_pool_connections_created",
            "Connections opened.",
            |p| vec![(pool_label(p), p.created_total)],
        )?;
        self.counter(
            e,
            "switchboard_pool_connections_closed",
            "Connections closed, by reason.",
            |p| {
                CloseReason::ALL
                    .iter()
                    .map(|r| {
                        let mut l = pool_label(p);
                        l.push(("reason", r.as_str().to_string()));
                        (l, p.closed_by.get(*r))
                    })
                    .collect()
            },
        )?;
        self.counter(
            e,
            "switchboard_pool_acquires",
            "Acquires by result: direct (idle at once), waited, timed_out, rejected (wait queue full).",
            |p| {
                let with = |s: &str| {
                    let mut l = pool_label(p);
                    l.push(("result", s.to_string()));
                    l
                };
                vec![
                    (with("direct"), p.acquired_direct_total),
                    (with("waited"), p.acquired_waited_total),
                    (with("timed_out"), p.timed_out_total),
                    (with("rejected"), p.rejected_total),
                ]
            },
        )?;
        self.counter(
            e,
            "switchboard_pool_connect_failures",
            "Connect attempts that failed.",
            |p| vec![(pool_label(p), p.connect_failed_total)],
        )?;
        self.counter(
            e,
            "switchboard_pool_probe_failures",
            "Probes that failed.",
            |p| vec![(pool_label(p), p.probe_failed_total)],
        )?;
        self.endpoint_series(e)?;
        self.histogram(
            e,
            "switchboard_pool_wait_seconds",
            "Time acquires waited for a connection (0 for those served at once).",
            |p| p.wait,
        )?;
        self.histogram(
            e,
            "switchboard_pool_lease_seconds",
            "Time connections were held by a lease.",
            |p| p.lease,
        )?;
        Ok(())
    }
}

/// Renders pool snapshots as OpenMetrics text (which Prometheus reads).
pub fn render(pools: Vec<PoolStats>) -> String {
    render_with(pools, Vec::new())
}

/// Renders pool snapshots and other collectors (the sessions' `stream_api_*`) as one
/// OpenMetrics text.
pub fn render_with(pools: Vec<PoolStats>, others: Vec<Box<dyn Collector>>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(PoolCollector { pools }));
    for c in others {
        registry.register_collector(c);
    }
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

/// OpenMetrics text (what [`render_with`] makes) as the Prometheus text format 0.0.4,
/// for scrapers that do not ask for OpenMetrics: a counter family `x` is named
/// `x_total` in its `# HELP`/`# TYPE` lines (its samples already are), `# UNIT` and
/// `# EOF` go, and types 0.0.4 lacks become `gauge` (info, stateset) or `untyped`.
pub fn to_prometheus_text(open_metrics: &str) -> String {
    let mut out = String::with_capacity(open_metrics.len());
    let mut help: Option<&str> = None;
    for line in open_metrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = Some(rest);
            continue;
        }
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (name, kind) = match kind {
                "counter" if !name.ends_with("_total") => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "stateset" => (name.to_string(), "gauge"),
                "gaugehistogram" | "unknown" => (name.to_string(), "untyped"),
                k => (name.to_string(), k),
            };
            if let Some(h) = help.take() {
                let text = h.split_once(' ').map_or("", |(_, t)| t);
                out.push_str(&format!("# HELP {name} {text}\n"));
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            continue;
        }
        if let Some(h) = help.take() {
            out.push_str("# HELP ");
            out.push_str(h);
            out.push('\n');
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

//! Core's snapshots as the admin API's JSON: the struct fields, snake_case, with
//! durations as `<name>_ms` numbers (docs/admin.md is the schema).

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::health::{EndpointHealth, HealthReport};
use crate::metrics::HistogramSnapshot;
use crate::pool::PoolStats;
use crate::registry::{BroadcastReport, ConnInfo, RegistryStats};
use crate::resources::ResourceInfo;
use crate::sessions::SessionInfo;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn histogram(h: &HistogramSnapshot) -> Value {
    json!({
        "count": h.count(),
        "avg_ms": ms(h.avg()),
        "max_ms": ms(h.max()),
        "p50_ms": ms(h.quantile(0.5)),
        "p95_ms": ms(h.quantile(0.95)),
        "p99_ms": ms(h.quantile(0.99)),
    })
}

fn endpoint(e: &EndpointHealth) -> Value {
    json!({
        "endpoint": e.endpoint,
        "state": e.state.as_str(),
        "warming": e.warming.as_str(),
        "breaker": e.breaker.as_str(),
        "quality": e.quality,
        "latency_ewma_ms": e.latency_ewma.map(ms),
        "success_rate": e.success_rate,
        "calls": e.calls,
        "failures": e.failures,
        "reconnects": e.reconnects,
        "checks": e.checks,
        "checks_failed": e.checks_failed,
        "breaker_opened": e.breaker_opened,
        "breaker_transitions": e.breaker_transitions,
        "breaker_rejected": e.breaker_rejected,
        "open_connections": e.open_connections,
    })
}

/// A pool: its stats and its endpoints' health (with their breaker states).
pub(crate) fn pool(s: &PoolStats, h: &HealthReport) -> Value {
    let c = &s.closed_by;
    json!({
        "name": s.name,
        "max_size": s.max_size,
        "min_idle": s.min_idle,
        "max_overflow": s.max_overflow,
        "size": s.size,
        "idle": s.idle,
        "leased": s.leased,
        "waiting": s.waiting,
        "connecting": s.connecting,
        "created_total": s.created_total,
        "closed_total": s.closed_total,
        "closed_by": {
            "broken": c.broken, "idle": c.idle, "lifetime": c.lifetime, "overflow": c.overflow,
            "evicted": c.evicted, "discarded": c.discarded, "closed": c.closed,
        },
        "acquired_total": s.acquired_total,
        "acquired_direct_total": s.acquired_direct_total,
        "acquired_waited_total": s.acquired_waited_total,
        "timed_out_total": s.timed_out_total,
        "rejected_total": s.rejected_total,
        "connect_failed_total": s.connect_failed_total,
        "probe_failed_total": s.probe_failed_total,
        "wait": histogram(&s.wait),
        "lease": histogram(&s.lease),
        "calls": h.calls,
        "failures": h.failures,
        "success_rate": h.success_rate,
        "endpoints": h.endpoints.iter().map(endpoint).collect::<Vec<_>>(),
    })
}

/// A registered connection.
pub(crate) fn conn(c: &ConnInfo) -> Value {
    json!({
        "id": c.id,
        "user": c.user,
        "metadata": c.metadata,
        "topics": c.topics,
        "state": c.state.as_str(),
        "sink": c.sink,
        "age_ms": ms(c.age),
        "idle_ms": ms(c.idle),
        "queued_messages": c.queued_messages,
        "queued_bytes": c.queued_bytes,
        "sent": c.sent,
        "dropped": c.dropped,
        "failed": c.failed,
    })
}

/// The registry's statistics.
pub(crate) fn registry_stats(s: &RegistryStats) -> Value {
    let topics: Map<String, Value> = s
        .topic_counts
        .iter()
        .map(|(t, n)| (t.clone(), json!(n)))
        .collect();
    json!({
        "connections": s.connections,
        "active": s.active,
        "topics": s.topics,
        "users": s.users,
        "topic_counts": topics,
        "registered_total": s.registered_total,
        "broadcasts": s.broadcasts,
        "messages_queued": s.messages_queued,
        "messages_sent": s.messages_sent,
        "messages_dropped": s.messages_dropped,
        "messages_failed": s.messages_failed,
        "disconnects": s.disconnects,
        "rejections": s.rejections,
        "cleanup_runs": s.cleanup_runs,
    })
}

/// What a broadcast did.
pub(crate) fn broadcast(r: &BroadcastReport) -> Value {
    json!({
        "recipients": r.recipients,
        "queued": r.queued,
        "dropped": r.dropped,
        "disconnected": r.disconnected,
        "elapsed_ms": ms(r.elapsed),
    })
}

/// A named resource, with eKuiper's `typ` beside our `kind`.
pub(crate) fn resource(r: &ResourceInfo, props: &[(String, String)]) -> Value {
    let props: Map<String, Value> = props
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({
        "id": r.id,
        "typ": r.kind,
        "props": props,
        "endpoint": r.endpoint,
        "anonymous": r.anonymous,
        "status": r.status.as_str(),
        "last_error": r.last_error,
        "stopped": r.stopped,
        "consumers": r.consumers,
        "reconnects": r.reconnects,
        "bytes_in": r.bytes_in,
        "bytes_out": r.bytes_out,
        "connected_for_ms": r.connected_for.map(ms),
    })
}

/// A streaming session.
pub(crate) fn session(s: &SessionInfo) -> Value {
    let streams: Vec<Value> = s
        .streams
        .iter()
        .map(|st| {
            let c = &st.counters;
            json!({
                "name": st.name,
                "position": st.position,
                "committed": st.committed,
                "counters": {
                    "data_packets_read": c.data_packets_read,
                    "data_bytes_read": c.data_bytes_read,
                    "data_packets_delivered": c.data_packets_delivered,
                    "data_bytes_delivered": c.data_bytes_delivered,
                    "essential_packets_read": c.essential_packets_read,
                    "essential_packets_delivered": c.essential_packets_delivered,
                },
            })
        })
        .collect();
    json!({
        "id": s.id,
        "data_source": s.data_source,
        "session_key": s.session_key,
        "exclude_main_stream": s.exclude_main_stream,
        "streams": streams,
        "router_messages_received": s.router_messages_received,
        "router_bytes_received": s.router_bytes_received,
    })
}

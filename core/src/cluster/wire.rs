//! What instances send each other through Redis: one frame per Pub/Sub message, a
//! JSON header, and for broadcasts a newline and the message's bytes as they are
//! (binary-safe, never re-encoded). The registry's snapshots travel as JSON objects
//! with the field names of the admin API (docs/admin.md).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::registry::{ConnInfo, ConnState, ListFilter, Message, RegistryStats, Target};

/// Splits a frame into its header and its body (empty for frames without one).
pub(crate) fn split(frame: &[u8]) -> Option<(Value, &[u8])> {
    let (head, body) = match frame.iter().position(|b| *b == b'\n') {
        Some(i) => (&frame[..i], &frame[i + 1..]),
        None => (frame, &[][..]),
    };
    Some((serde_json::from_slice(head).ok()?, body))
}

/// A frame: `header` and, when given, a newline and `body`.
pub(crate) fn frame(header: &Value, body: Option<&[u8]>) -> Vec<u8> {
    let mut out = serde_json::to_vec(header).unwrap_or_default();
    if let Some(b) = body {
        out.reserve(b.len() + 1);
        out.push(b'\n');
        out.extend_from_slice(b);
    }
    out
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn ids(v: &Value) -> Vec<u64> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

pub(crate) fn target(t: &Target) -> Value {
    json!({"all": t.all, "topics": t.topics, "users": t.users, "ids": t.ids, "except": t.except})
}

pub(crate) fn target_from(v: &Value) -> Target {
    Target {
        all: v["all"].as_bool().unwrap_or(false),
        topics: strings(&v["topics"]),
        users: strings(&v["users"]),
        ids: ids(&v["ids"]),
        except: ids(&v["except"]),
    }
}

pub(crate) fn message_from(body: &[u8], text: bool) -> Message {
    // A text message's bytes were UTF-8 when sent; checked again, never trusted.
    let text = text && std::str::from_utf8(body).is_ok();
    Message::from_parts(body.to_vec(), text)
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub(crate) fn filter(f: &ListFilter) -> Value {
    json!({
        "user": f.user,
        "topic": f.topic,
        "meta": f.meta.as_ref().map(|(k, v)| json!([k, v])),
        "state": f.state.map(|s| s.as_str()),
        "min_idle_ms": f.min_idle.map(ms),
        "limit": f.limit,
        "cursor": f.cursor,
    })
}

pub(crate) fn filter_from(v: &Value) -> ListFilter {
    let text = |k: &str| v[k].as_str().map(str::to_string);
    ListFilter {
        user: text("user"),
        topic: text("topic"),
        meta: v["meta"].as_array().and_then(|a| {
            Some((
                a.first()?.as_str()?.to_string(),
                a.get(1)?.as_str()?.to_string(),
            ))
        }),
        state: v["state"].as_str().and_then(ConnState::parse),
        min_idle: v["min_idle_ms"].as_u64().map(Duration::from_millis),
        limit: v["limit"].as_u64().unwrap_or(0) as usize,
        cursor: v["cursor"].as_u64(),
    }
}

/// A connection as the admin API writes it ([`crate::server::json::conn`]).
pub(crate) fn conn(c: &ConnInfo) -> Value {
    crate::server::json::conn(c)
}

pub(crate) fn conn_from(v: &Value) -> Option<ConnInfo> {
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    let ms = |k: &str| Duration::from_secs_f64(v[k].as_f64().unwrap_or(0.0).max(0.0) / 1000.0);
    Some(ConnInfo {
        id: v["id"].as_u64()?,
        user: v["user"].as_str().map(str::to_string),
        metadata: v["metadata"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, x)| Some((k.clone(), x.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default(),
        topics: strings(&v["topics"]),
        state: v["state"].as_str().and_then(ConnState::parse)?,
        sink: if v["sink"].as_str() == Some("callback") {
            "callback"
        } else {
            "outbox"
        },
        age: ms("age_ms"),
        idle: ms("idle_ms"),
        queued_messages: n("queued_messages"),
        queued_bytes: n("queued_bytes"),
        sent: n("sent"),
        dropped: n("dropped"),
        failed: n("failed"),
    })
}

fn counts_from(v: &Value) -> BTreeMap<String, u64> {
    v.as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, x)| Some((k.clone(), x.as_u64()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// Registry statistics as the admin API writes them
/// ([`crate::server::json::registry_stats`]; `topic_counts` is an object in order).
pub(crate) fn stats(s: &RegistryStats) -> Value {
    crate::server::json::registry_stats(s)
}

pub(crate) fn stats_from(v: &Value) -> RegistryStats {
    let n = |k: &str| v[k].as_u64().unwrap_or(0);
    RegistryStats {
        connections: n("connections"),
        active: n("active"),
        topics: n("topics"),
        users: n("users"),
        topic_counts: v["topic_counts"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(t, n)| Some((t.clone(), n.as_u64()?)))
                    .collect()
            })
            .unwrap_or_default(),
        registered_total: n("registered_total"),
        broadcasts: n("broadcasts"),
        messages_queued: n("messages_queued"),
        messages_sent: n("messages_sent"),
        messages_dropped: n("messages_dropped"),
        messages_failed: n("messages_failed"),
        disconnects: counts_from(&v["disconnects"]),
        rejections: counts_from(&v["rejections"]),
        cleanup_runs: n("cleanup_runs"),
    }
}

/// Adds `b` into `a` (the cluster's total).
pub(crate) fn add_stats(a: &mut RegistryStats, b: &RegistryStats) {
    a.connections += b.connections;
    a.active += b.active;
    a.users += b.users;
    a.registered_total += b.registered_total;
    a.broadcasts += b.broadcasts;
    a.messages_queued += b.messages_queued;
    a.messages_sent += b.messages_sent;
    a.messages_dropped += b.messages_dropped;
    a.messages_failed += b.messages_failed;
    a.cleanup_runs += b.cleanup_runs;
    for (k, v) in &b.disconnects {
        *a.disconnects.entry(k.clone()).or_default() += v;
    }
    for (k, v) in &b.rejections {
        *a.rejections.entry(k.clone()).or_default() += v;
    }
    let mut topics: BTreeMap<String, u64> = a.topic_counts.drain(..).collect();
    for (t, n) in &b.topic_counts {
        *topics.entry(t.clone()).or_default() += n;
    }
    a.topics = topics.len() as u64;
    let mut sorted: Vec<(String, u64)> = topics.into_iter().collect();
    sorted.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
    a.topic_counts = sorted;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_binary_bodies_and_snapshots_round_trip() {
        let body = [0u8, b'\n', 255, 7];
        let f = frame(&json!({"k": "b"}), Some(&body));
        let (h, b) = split(&f).expect("a frame");
        assert_eq!((h["k"].as_str(), b), (Some("b"), &body[..]));
        let t = Target::topic("news").and_user("ann").except([7, 9]);
        assert_eq!(target_from(&target(&t)), t);
        let f = ListFilter {
            user: Some("u".into()),
            meta: Some(("room".into(), "1".into())),
            state: Some(ConnState::Idle),
            min_idle: Some(Duration::from_millis(1500)),
            limit: 3,
            cursor: Some(1 << 40),
            ..ListFilter::default()
        };
        assert_eq!(filter_from(&filter(&f)), f);
        let c = ConnInfo {
            id: (3 << 32) | 5,
            user: Some("ann".into()),
            metadata: [("k".to_string(), "v".to_string())].into(),
            topics: vec!["a".into()],
            state: ConnState::Active,
            sink: "callback",
            age: Duration::from_millis(20),
            idle: Duration::from_millis(3),
            queued_messages: 1,
            queued_bytes: 2,
            sent: 3,
            dropped: 4,
            failed: 5,
        };
        assert_eq!(conn_from(&conn(&c)), Some(c));
        let mut s = RegistryStats {
            connections: 2,
            topic_counts: vec![("a".into(), 2)],
            disconnects: [("stale".to_string(), 1)].into(),
            ..RegistryStats::default()
        };
        assert_eq!(stats_from(&stats(&s)), s);
        let other = RegistryStats {
            connections: 1,
            topic_counts: vec![("a".into(), 1), ("b".into(), 1)],
            disconnects: [("stale".to_string(), 2)].into(),
            ..RegistryStats::default()
        };
        add_stats(&mut s, &other);
        assert_eq!(s.connections, 3);
        assert_eq!(s.topics, 2);
        assert_eq!(s.topic_counts[0], ("a".to_string(), 3));
        assert_eq!(s.disconnects["stale"], 3);
    }
}

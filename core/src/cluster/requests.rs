//! Cluster-wide calls: a request published on `<name>:req`, answered by each live
//! member on the asker's own channel; the asker waits at most
//! `cluster.request_timeout` and names the members that did not answer. This
//! instance's part is computed here, not sent through Redis.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::types::{
    Answered, ClusterBroadcast, ClusterCount, ClusterList, ClusterResource, ClusterStats,
};
use super::{Node, Outgoing, Reply, lock, wire};
use crate::error::{Error, Result};
use crate::manager::parts::Parts;
use crate::registry::{ListFilter, Message, Target};

/// Hands a reply to its waiter (gone when it timed out: dropped).
pub(super) fn deliver(node: &Node, id: u64, reply: Reply) {
    if let Some(tx) = lock(&node.pending).get(&id) {
        let _ = tx.send(reply);
    }
}

fn parts(node: &Node) -> Result<Arc<Parts>> {
    node.parts().ok_or_else(|| {
        Error::unavailable("the manager is closed; the cluster is no longer available")
    })
}

/// This instance's answer to `op` (the same for a local and a remote asker).
fn local(parts: &Parts, op: &Value) -> Value {
    let result = match op["op"].as_str() {
        Some("list") => parts
            .registry
            .list(&wire::filter_from(&op["filter"]))
            .map(|p| {
                json!({
                    "connections": p.connections.iter().map(wire::conn).collect::<Vec<_>>(),
                    "next_cursor": p.next_cursor,
                })
            }),
        Some("disconnect") => parts
            .registry
            .disconnect(
                &wire::target_from(&op["target"]),
                op["reason"].as_str().unwrap_or(""),
            )
            .map(|n| json!({"count": n})),
        Some("stats") => parts.registry.stats().map(|s| wire::stats(&s)),
        Some("resource") => {
            let id = op["id"].as_str().unwrap_or("");
            match parts.resources.get(id) {
                Ok(r) => Ok(json!({"status": r.status.as_str()})),
                Err(e) if e.code() == crate::Code::NotFound => Ok(json!({"status": "absent"})),
                Err(e) => Err(e),
            }
        }
        _ => Err(Error::invalid_argument("unknown cluster request")),
    };
    result.unwrap_or_else(|e| json!({"error": e.message(), "code": e.code().name()}))
}

/// Answers another member's request on its channel.
pub(super) fn answer(node: &Arc<Node>, origin: u64, head: Value) {
    let node2 = node.clone();
    let spawned = node.rt.spawn(async move {
        let Some(parts) = node2.parts() else { return };
        let Some(id) = head["i"].as_u64() else { return };
        let v = local(&parts, &head["op"]);
        let reply = json!({"k": "r", "i": id, "n": node2.s.node_id, "v": v});
        node2.send(Outgoing::Publish {
            channels: vec![node2.node_channel(origin)],
            frame: Arc::new(wire::frame(&reply, None)),
            reply: None,
        });
    });
    drop(spawned);
}

/// A waiter registered under a fresh id, removed when dropped.
struct Waiter<'a> {
    node: &'a Node,
    id: u64,
    rx: mpsc::UnboundedReceiver<Reply>,
}

impl<'a> Waiter<'a> {
    fn new(node: &'a Node) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut pending = lock(&node.pending);
        let mut id = crate::random::splitmix64(node.next_seq() ^ (node.number << 40));
        while pending.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        pending.insert(id, tx);
        Waiter { node, id, rx }
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        lock(&self.node.pending).remove(&self.id);
    }
}

/// The other live members, by node id.
fn others(node: &Node) -> Vec<String> {
    lock(&node.members)
        .iter()
        .filter(|m| !m.local && m.node_id != node.s.node_id)
        .map(|m| m.node_id.clone())
        .collect()
}

/// Asks every other live member `op`; returns their answers and who answered.
async fn gather(node: &Node, op: Value) -> (Vec<(String, Value)>, Answered) {
    let expected = others(node);
    let mut answered = Answered {
        nodes: vec![node.s.node_id.clone()],
        missing: Vec::new(),
    };
    if expected.is_empty() || !node.is_joined() {
        answered.missing = expected;
        if !answered.missing.is_empty() {
            node.counters.partial.fetch_add(1, Ordering::Relaxed);
        }
        return (Vec::new(), answered);
    }
    let mut w = Waiter::new(node);
    let head = json!({"k": "q", "o": node.number, "i": w.id, "op": op});
    node.send(Outgoing::Publish {
        channels: vec![node.s.key("req")],
        frame: Arc::new(wire::frame(&head, None)),
        reply: None,
    });
    let mut got: Vec<(String, Value)> = Vec::new();
    let mut waiting: HashSet<String> = expected.iter().cloned().collect();
    let deadline = tokio::time::Instant::now() + node.s.request_timeout;
    while !waiting.is_empty() {
        match tokio::time::timeout_at(deadline, w.rx.recv()).await {
            Ok(Some(r)) => {
                if got.iter().all(|(n, _)| *n != r.node) {
                    waiting.remove(&r.node);
                    got.push((r.node, r.body));
                }
            }
            _ => break,
        }
    }
    got.sort_by(|a, b| a.0.cmp(&b.0));
    answered.nodes.extend(got.iter().map(|(n, _)| n.clone()));
    let mut missing: Vec<String> = waiting.into_iter().collect();
    missing.sort();
    if !missing.is_empty() {
        node.counters.partial.fetch_add(1, Ordering::Relaxed);
    }
    answered.missing = missing;
    (got, answered)
}

/// A member's answer, or the error it sent (one member's error does not fail the
/// call: that member counts as not answered).
fn ok(v: Value) -> Option<Value> {
    v.get("error").is_none().then_some(v)
}

fn demote(answered: &mut Answered, node: &str) {
    answered.nodes.retain(|n| n != node);
    answered.missing.push(node.to_string());
}

pub(super) async fn list(node: &Node, filter: &ListFilter) -> Result<ClusterList> {
    let parts = parts(node)?;
    let page = parts.registry.list(filter)?;
    let limit = if filter.limit == 0 { 100 } else { filter.limit };
    let mut more = page.next_cursor.is_some();
    let mut all: Vec<(String, crate::registry::ConnInfo)> = page
        .connections
        .into_iter()
        .map(|c| (node.s.node_id.clone(), c))
        .collect();
    let (got, mut answered) =
        gather(node, json!({"op": "list", "filter": wire::filter(filter)})).await;
    for (n, v) in got {
        let Some(v) = ok(v) else {
            demote(&mut answered, &n);
            continue;
        };
        more |= !v["next_cursor"].is_null();
        if let Some(a) = v["connections"].as_array() {
            all.extend(a.iter().filter_map(wire::conn_from).map(|c| (n.clone(), c)));
        }
    }
    all.sort_by_key(|(_, c)| c.id);
    more |= all.len() > limit;
    all.truncate(limit);
    let next_cursor = if more {
        all.last().map(|(_, c)| c.id)
    } else {
        None
    };
    Ok(ClusterList {
        connections: all,
        next_cursor,
        answered,
    })
}

pub(super) async fn disconnect(node: &Node, target: &Target, reason: &str) -> Result<ClusterCount> {
    let parts = parts(node)?;
    let mine = parts.registry.disconnect(target, reason)?;
    let op = json!({"op": "disconnect", "target": wire::target(target), "reason": reason});
    let (got, mut answered) = gather(node, op).await;
    let mut out = ClusterCount {
        total: mine,
        by_node: vec![(node.s.node_id.clone(), mine)],
        answered: Answered::default(),
    };
    for (n, v) in got {
        match ok(v).and_then(|v| v["count"].as_u64()) {
            Some(c) => {
                out.total += c;
                out.by_node.push((n, c));
            }
            None => demote(&mut answered, &n),
        }
    }
    out.answered = answered;
    Ok(out)
}

pub(super) async fn stats(node: &Node) -> Result<ClusterStats> {
    let parts = parts(node)?;
    let mine = parts.registry.stats()?;
    let mut out = ClusterStats::default();
    wire::add_stats(&mut out.total, &mine);
    out.by_node.push((node.s.node_id.clone(), mine));
    let (got, mut answered) = gather(node, json!({"op": "stats"})).await;
    for (n, v) in got {
        match ok(v) {
            Some(v) => {
                let s = wire::stats_from(&v);
                wire::add_stats(&mut out.total, &s);
                out.by_node.push((n, s));
            }
            None => demote(&mut answered, &n),
        }
    }
    out.answered = answered;
    Ok(out)
}

pub(super) async fn resource(node: &Node, id: &str) -> Result<ClusterResource> {
    let parts = parts(node)?;
    if id.is_empty() {
        return Err(Error::invalid_argument(
            "a resource id must be a non-empty string",
        ));
    }
    let v = local(&parts, &json!({"op": "resource", "id": id}));
    let mut out = ClusterResource {
        id: id.to_string(),
        ..ClusterResource::default()
    };
    if let Some(s) = v["status"].as_str() {
        out.by_node.push((node.s.node_id.clone(), s.to_string()));
    }
    let (got, mut answered) = gather(node, json!({"op": "resource", "id": id})).await;
    for (n, v) in got {
        match ok(v).and_then(|v| v["status"].as_str().map(str::to_string)) {
            Some(s) => out.by_node.push((n, s)),
            None => demote(&mut answered, &n),
        }
    }
    out.answered = answered;
    Ok(out)
}

/// A broadcast everywhere that waits for each copy's acknowledgement.
pub(super) async fn broadcast(
    node: &Node,
    target: &Target,
    msg: Message,
) -> Result<ClusterBroadcast> {
    let parts = parts(node)?;
    if target.is_empty() {
        return Err(Error::invalid_argument(
            "a broadcast target must name at least one topic, user or connection id, or all",
        ));
    }
    let local = parts.registry.fan_out_local(target, &msg)?;
    let mut out = ClusterBroadcast {
        local,
        ..ClusterBroadcast::default()
    };
    if !node.is_joined() {
        return Ok(out);
    }
    let mut w = Waiter::new(node);
    let (tx, rx) = oneshot::channel();
    super::link::publish_broadcast(node, target, &msg, Some(w.id), Some(tx));
    let deadline = tokio::time::Instant::now() + node.s.request_timeout;
    let copies = tokio::time::timeout_at(deadline, rx)
        .await
        .ok()
        .and_then(|r| r.ok())
        .unwrap_or(0);
    let mut seen = 0u64;
    while seen < copies {
        match tokio::time::timeout_at(deadline, w.rx.recv()).await {
            Ok(Some(r)) => {
                seen += 1;
                if r.own {
                    continue;
                }
                let n = r.body["recipients"].as_u64().unwrap_or(0);
                match out.remote.iter_mut().find(|(id, _)| *id == r.node) {
                    Some(slot) => slot.1 += n,
                    None => out.remote.push((r.node, n)),
                }
            }
            _ => break,
        }
    }
    out.remote.sort();
    out.unacknowledged = copies - seen;
    Ok(out)
}

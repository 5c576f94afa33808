//! `?scope=cluster` on the registry and resource routes, and `GET /cluster`: the same
//! cluster-wide calls as [`crate::cluster::Cluster`], as JSON. Every answer carries
//! `answered` and `missing` (live members that did not answer within
//! `cluster.request_timeout`): a partial result, never a failed one.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::{Answer, ok};
use crate::cluster::{Answered, Cluster};
use crate::error::{Error, Result};
use crate::registry::{ListFilter, Message, Target};
use crate::server::Ctx;
use crate::server::json;

/// Whether the query asks for the cluster (`scope=cluster`); InvalidArgument for
/// another scope than `local` or `cluster`.
pub(super) fn wants_cluster(q: &HashMap<String, String>) -> Result<bool> {
    match q.get("scope").map(String::as_str) {
        None | Some("") | Some("local") => Ok(false),
        Some("cluster") => Ok(true),
        Some(other) => Err(Error::invalid_argument(format!(
            "scope must be local or cluster, got \"{}\"",
            other.escape_default()
        ))),
    }
}

fn cluster(ctx: &Ctx) -> Result<&Cluster> {
    ctx.parts.cluster.as_ref().ok_or_else(|| {
        Error::failed_precondition(
            "scope=cluster needs a manager in a cluster (set cluster.redis_url); this one is alone",
        )
    })
}

fn answered(a: &Answered) -> (Value, Value) {
    (json!(a.nodes), json!(a.missing))
}

fn by_node<T>(pairs: &[(String, T)], f: impl Fn(&T) -> Value) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|(n, v)| (n.clone(), f(v)))
            .collect::<Map<_, _>>(),
    )
}

pub(super) async fn about(axum::extract::State(ctx): axum::extract::State<Arc<Ctx>>) -> Answer {
    let c = cluster(&ctx)?;
    let members: Vec<Value> = c
        .members()
        .iter()
        .map(|m| {
            json!({
                "node_id": m.node_id,
                "number": m.number,
                "address": m.address,
                "connections": m.connections,
                "pools": m.pools,
                "last_seen_ms": m.last_seen.as_millis() as u64,
                "local": m.local,
            })
        })
        .collect();
    ok(json!({
        "name": c.name(),
        "node_id": c.node_id(),
        "node_number": c.node_number(),
        "joined": c.is_joined(),
        "members": members,
    }))
}

pub(super) async fn stats(ctx: &Ctx) -> Answer {
    let s = cluster(ctx)?.stats_async().await?;
    let (nodes, missing) = answered(&s.answered);
    ok(json!({
        "total": json::registry_stats(&s.total),
        "by_node": by_node(&s.by_node, json::registry_stats),
        "answered": nodes,
        "missing": missing,
    }))
}

pub(super) async fn list(ctx: &Ctx, filter: &ListFilter) -> Answer {
    let l = cluster(ctx)?.list_async(filter).await?;
    let conns: Vec<Value> = l
        .connections
        .iter()
        .map(|(n, c)| {
            let mut v = json::conn(c);
            v["node"] = json!(n);
            v
        })
        .collect();
    let (nodes, missing) = answered(&l.answered);
    ok(json!({
        "connections": conns,
        "next_cursor": l.next_cursor,
        "answered": nodes,
        "missing": missing,
    }))
}

pub(super) async fn disconnect(ctx: &Ctx, t: &Target, reason: &str) -> Answer {
    let r = cluster(ctx)?.disconnect_async(t, reason).await?;
    let (nodes, missing) = answered(&r.answered);
    ok(json!({
        "disconnected": r.total,
        "by_node": by_node(&r.by_node, |n| json!(n)),
        "answered": nodes,
        "missing": missing,
    }))
}

pub(super) async fn broadcast(ctx: &Ctx, t: &Target, msg: Message) -> Answer {
    let r = cluster(ctx)?.broadcast_async(t, msg).await?;
    let mut v = json::broadcast(&r.local);
    v["remote"] = by_node(&r.remote, |n| json!(n));
    v["unacknowledged"] = json!(r.unacknowledged);
    ok(v)
}

pub(super) async fn resource(ctx: &Ctx, id: &str) -> Answer {
    let r = cluster(ctx)?.resource_status_async(id).await?;
    let (nodes, missing) = answered(&r.answered);
    ok(json!({
        "id": r.id,
        "by_node": by_node(&r.by_node, |s| json!(s)),
        "answered": nodes,
        "missing": missing,
    }))
}

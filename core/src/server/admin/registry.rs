//! `/registry/*`: seed 004's admin routes (stats, connections, disconnect, cleanup,
//! broadcast), without its `/api/admin/websockets` prefix.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use serde_json::{Value, json};

use super::{Answer, cluster, object, ok, parse_id, string_field};
use crate::envelope::{Envelope, rfc3339_now};
use crate::error::Error;
use crate::registry::{ListFilter, Message, Target};
use crate::server::Ctx;
use crate::server::json;

pub(super) async fn stats(
    State(ctx): State<Arc<Ctx>>,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    if cluster::wants_cluster(&q)? {
        return cluster::stats(&ctx).await;
    }
    ok(json::registry_stats(&ctx.parts.registry.stats()?))
}

pub(super) async fn list(
    State(ctx): State<Arc<Ctx>>,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    let mut filter = ListFilter {
        user: q.get("user_id").cloned(),
        topic: q.get("topic").cloned(),
        ..Default::default()
    };
    if let Some(l) = q.get("limit") {
        filter.limit = parse_id("limit", l)? as usize;
    }
    if let Some(c) = q.get("cursor").filter(|c| !c.is_empty()) {
        filter.cursor = Some(parse_id("cursor", c)?);
    }
    if let Some(s) = q.get("state") {
        filter.state = Some(crate::registry::ConnState::parse_arg(s)?);
    }
    if cluster::wants_cluster(&q)? {
        return cluster::list(&ctx, &filter).await;
    }
    let page = ctx.parts.registry.list(&filter)?;
    let conns: Vec<Value> = page.connections.iter().map(json::conn).collect();
    ok(json!({ "connections": conns, "next_cursor": page.next_cursor }))
}

pub(super) async fn one(State(ctx): State<Arc<Ctx>>, Path(id): Path<String>) -> Answer {
    let id = parse_id("the connection id", &id)?;
    ok(json::conn(&ctx.parts.registry.get(id)?))
}

/// `connection_ids`, `user_id` and `topic` of a body, as a target.
fn target(body: &serde_json::Map<String, Value>) -> crate::Result<Target> {
    let mut t = Target::default();
    match body.get("connection_ids") {
        None | Some(Value::Null) => {}
        Some(Value::Array(ids)) => {
            for v in ids {
                t.ids.push(v.as_u64().ok_or_else(|| {
                    Error::invalid_argument(format!(
                        "\"connection_ids\" must be an array of connection ids (integers), got {v}"
                    ))
                })?);
            }
        }
        Some(v) => {
            return Err(Error::invalid_argument(format!(
                "\"connection_ids\" must be an array of connection ids (integers), got {v}"
            )));
        }
    }
    if let Some(u) = string_field(body, "user_id")? {
        t.users.push(u);
    }
    if let Some(topic) = string_field(body, "topic")? {
        t.topics.push(topic);
    }
    Ok(t)
}

pub(super) async fn disconnect(
    State(ctx): State<Arc<Ctx>>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Answer {
    let scope = cluster::wants_cluster(&q)?;
    let body = object(&body)?;
    let t = target(&body)?;
    if t.is_empty() {
        return Err(Error::invalid_argument(
            "disconnect needs \"connection_ids\": [..], \"user_id\" or \"topic\" (and optionally \"reason\")",
        )
        .into());
    }
    let reason = string_field(&body, "reason")?.unwrap_or_default();
    if scope {
        return cluster::disconnect(&ctx, &t, &reason).await;
    }
    let n = ctx.parts.registry.disconnect(&t, &reason)?;
    ok(json!({ "disconnected": n }))
}

pub(super) async fn cleanup(State(ctx): State<Arc<Ctx>>) -> Answer {
    let r = ctx.parts.registry.cleanup()?;
    ok(json!({ "removed": r.removed, "pinged": r.pinged }))
}

pub(super) async fn broadcast(
    State(ctx): State<Arc<Ctx>>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Answer {
    let scope = cluster::wants_cluster(&q)?;
    let body = object(&body)?;
    let kind = string_field(&body, "message_type")?
        .filter(|k| !k.is_empty())
        .ok_or_else(|| {
            Error::invalid_argument(
                "broadcast needs \"message_type\" (the envelope's type), with \"data\" and \"topic\" / \"user_id\" / \"connection_ids\" (none: everyone)",
            )
        })?;
    let mut t = target(&body)?;
    if t.is_empty() {
        t = Target::all();
    }
    let text = Envelope {
        kind,
        topic: string_field(&body, "topic")?,
        data: body.get("data").cloned(),
        timestamp: Some(rfc3339_now()),
        error: None,
    }
    .to_json();
    if scope {
        return cluster::broadcast(&ctx, &t, Message::text(&text)).await;
    }
    let r = ctx.parts.registry.broadcast(&t, Message::text(&text))?;
    ok(json::broadcast(&r))
}

//! `/sessions`: the streaming sessions (the same ones gRPC opens).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use serde_json::{Value, json};

use super::{Answer, ok, parse_id};
use crate::server::Ctx;
use crate::server::json;

pub(super) async fn list(
    State(ctx): State<Arc<Ctx>>,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    let all = ctx.parts.sessions.list(
        q.get("data_source").map(String::as_str),
        q.get("session_key").map(String::as_str),
    )?;
    let all: Vec<Value> = all.iter().map(json::session).collect();
    ok(json!({ "sessions": all }))
}

pub(super) async fn one(State(ctx): State<Arc<Ctx>>, Path(id): Path<String>) -> Answer {
    let id = parse_id("the session id", &id)?;
    ok(json::session(&ctx.parts.sessions.get(id)?))
}

pub(super) async fn close(State(ctx): State<Arc<Ctx>>, Path(id): Path<String>) -> Answer {
    let id = parse_id("the session id", &id)?;
    ctx.parts.sessions.close(id)?;
    ok(json!({ "success": true, "id": id }))
}

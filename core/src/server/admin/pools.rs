//! `/pools`: stats, endpoints and breaker states; evict, drain, resize, breaker ops.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::{Answer, object, ok, string_field};
use crate::breaker::{BreakerOp, BreakerState};
use crate::error::Error;
use crate::health::{ConnState, HealthReport};
use crate::manager::parts::PoolControl;
use crate::server::Ctx;
use crate::server::json;

/// Whether a pool has an endpoint a call could use now: its breaker lets calls
/// through and it is not failing.
pub(crate) fn usable(h: &HealthReport) -> bool {
    h.endpoints.iter().any(|e| {
        !matches!(e.breaker, BreakerState::Open | BreakerState::ForcedOpen)
            && !matches!(
                e.state,
                ConnState::Failed | ConnState::Reconnecting | ConnState::Disconnecting
            )
    })
}

fn view(p: &dyn PoolControl) -> Value {
    json::pool(&p.stats(), &p.health())
}

pub(super) async fn list(State(ctx): State<Arc<Ctx>>) -> Answer {
    let pools: Vec<Value> = ctx
        .parts
        .open_pools()
        .iter()
        .map(|(_, p)| view(p.as_ref()))
        .collect();
    ok(json!({ "pools": pools }))
}

pub(super) async fn one(State(ctx): State<Arc<Ctx>>, Path(name): Path<String>) -> Answer {
    ok(view(ctx.parts.pool(&name)?.as_ref()))
}

pub(super) async fn evict(State(ctx): State<Arc<Ctx>>, Path(name): Path<String>) -> Answer {
    let p = ctx.parts.pool(&name)?;
    p.evict_all();
    ok(view(p.as_ref()))
}

pub(super) async fn drain(
    State(ctx): State<Arc<Ctx>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Answer {
    let p = ctx.parts.pool(&name)?;
    let body = object(&body)?;
    let endpoint = string_field(&body, "endpoint")?.ok_or_else(|| {
        Error::invalid_argument(
            "drain needs {\"endpoint\": \"tcp://host:port\"}, one of the pool's endpoints",
        )
    })?;
    p.drain(&endpoint)?;
    ok(view(p.as_ref()))
}

fn size_field(body: &serde_json::Map<String, Value>, key: &str) -> crate::Result<Option<usize>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(|n| Some(n as usize)).ok_or_else(|| {
            Error::invalid_argument(format!("\"{key}\" must be a non-negative integer, got {v}"))
        }),
    }
}

pub(super) async fn resize(
    State(ctx): State<Arc<Ctx>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Answer {
    let p = ctx.parts.pool(&name)?;
    let body = object(&body)?;
    let max = size_field(&body, "max_size")?.ok_or_else(|| {
        Error::invalid_argument("resize needs {\"max_size\": N} (and optionally \"min_idle\": M)")
    })?;
    let min = size_field(&body, "min_idle")?.unwrap_or_else(|| p.stats().min_idle.min(max));
    p.resize(max, min)?;
    ok(view(p.as_ref()))
}

pub(super) async fn breaker(
    State(ctx): State<Arc<Ctx>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Answer {
    let p = ctx.parts.pool(&name)?;
    let body = object(&body)?;
    let op: BreakerOp = string_field(&body, "op")?
        .ok_or_else(|| {
            Error::invalid_argument(
                "breaker needs {\"op\": \"force_open\" | \"disable\" | \"metrics_only\" | \"reset\"} (and optionally \"endpoint\")",
            )
        })?
        .parse()?;
    let endpoint = string_field(&body, "endpoint")?;
    p.breaker_op(endpoint.as_deref(), op)?;
    ok(view(p.as_ref()))
}

//! The admin JSON API and `/metrics` (docs/admin.md): each route translates to the
//! same core call the language APIs make, and answers core's snapshot as JSON.

mod cluster;
mod pools;
mod registry;
mod resources;
mod sessions;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

use super::Ctx;
use super::error::{ApiError, respond};
use crate::error::{Code, Error, Result};

pub(crate) type Answer = std::result::Result<Response, ApiError>;

/// A JSON 200.
pub(crate) fn ok(v: Value) -> Answer {
    Ok(Json(v).into_response())
}

/// A request body as a JSON object (an empty body is `{}`).
pub(crate) fn object(body: &Bytes) -> Result<Map<String, Value>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Error::invalid_argument(
            "the request body must be a JSON object",
        )),
        Err(e) => Err(Error::invalid_argument(format!(
            "the request body is not JSON: {e}"
        ))),
    }
}

/// Field `key` of `body` as a string (numbers are taken as their text, for ids).
pub(crate) fn string_field(body: &Map<String, Value>, key: &str) -> Result<Option<String>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(Error::invalid_argument(format!(
            "\"{key}\" must be a string, got {other}"
        ))),
    }
}

/// A path or query id: an unsigned integer.
pub(crate) fn parse_id(what: &str, text: &str) -> Result<u64> {
    text.parse().map_err(|_| {
        Error::invalid_argument(format!(
            "{what} must be a non-negative integer, got \"{}\"",
            text.escape_default()
        ))
    })
}

async fn health() -> Answer {
    ok(json!({ "status": "ok" }))
}

async fn ready(State(ctx): State<Arc<Ctx>>) -> Answer {
    let pools: Vec<Value> = ctx
        .parts
        .open_pools()
        .iter()
        .map(|(name, p)| json!({ "name": name, "ready": pools::usable(&p.health()) }))
        .collect();
    let all = pools.iter().all(|p| p["ready"] == json!(true));
    let status = if all {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((status, Json(json!({ "ready": all, "pools": pools }))).into_response())
}

async fn metrics(State(ctx): State<Arc<Ctx>>, headers: HeaderMap) -> Response {
    let open_metrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    let text = ctx.parts.metrics_text();
    if open_metrics {
        (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            crate::metrics::to_prometheus_text(&text),
        )
            .into_response()
    }
}

async fn not_found() -> Response {
    ApiError(Error::not_found(
        "no such route; docs/admin.md lists them (GET /health, /pools, /registry/stats, /connections, /sessions, /metrics, ...)",
    ))
    .into_response()
}

async fn wrong_method() -> Response {
    respond(
        StatusCode::METHOD_NOT_ALLOWED,
        &Error::new(
            Code::InvalidArgument,
            "this route does not take that method: reads are GET, changes are POST (PUT and DELETE for /connections/{id}, DELETE for /sessions/{id})",
        ),
    )
}

/// The admin routes (the guard is layered on by the caller).
pub(crate) fn router() -> Router<Arc<Ctx>> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/pools", get(pools::list))
        .route("/pools/{name}", get(pools::one))
        .route("/pools/{name}/evict", post(pools::evict))
        .route("/pools/{name}/drain", post(pools::drain))
        .route("/pools/{name}/resize", post(pools::resize))
        .route("/pools/{name}/breaker", post(pools::breaker))
        .route("/registry/stats", get(registry::stats))
        .route("/registry/connections", get(registry::list))
        .route("/registry/connections/{id}", get(registry::one))
        .route("/registry/disconnect", post(registry::disconnect))
        .route("/registry/cleanup", post(registry::cleanup))
        .route("/registry/broadcast", post(registry::broadcast))
        .route("/connections", get(resources::list).post(resources::create))
        .route(
            "/connections/{id}",
            get(resources::one)
                .put(resources::update)
                .delete(resources::delete),
        )
        .route("/cluster", get(cluster::about))
        .route("/sessions", get(sessions::list))
        .route("/sessions/{id}", get(sessions::one).delete(sessions::close))
        .fallback(not_found)
        .method_not_allowed_fallback(wrong_method)
}

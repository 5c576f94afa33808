//! `/connections`: named resources with eKuiper's body (`id`, `typ`, `props`).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};

use super::{Answer, object, ok, string_field};
use crate::error::{Error, Result};
use crate::server::Ctx;
use crate::server::json;

fn view(ctx: &Ctx, id: &str) -> Result<Value> {
    let r = &ctx.parts.resources;
    let info = r.get(id)?;
    Ok(json::resource(&info, &r.props_of(id).unwrap_or_default()))
}

/// eKuiper's props object as key/value text (numbers and booleans as their text).
fn props(body: &Map<String, Value>) -> Result<Vec<(String, String)>> {
    let Some(p) = body.get("props") else {
        return Ok(Vec::new());
    };
    let Value::Object(p) = p else {
        return Err(Error::invalid_argument(format!(
            "\"props\" must be an object of settings, e.g. {{\"endpoint\": \"tcp://127.0.0.1:7000\"}}, got {p}"
        )));
    };
    p.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            Value::Number(_) | Value::Bool(_) => Ok((k.clone(), v.to_string())),
            other => Err(Error::invalid_argument(format!(
                "props.{k} must be a string, number or boolean, got {other}"
            ))),
        })
        .collect()
}

fn pairs(p: &[(String, String)]) -> Vec<(&str, &str)> {
    p.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Runs a resources call that may block (an update dials the new connection before
/// it swaps; the store writes to disk) on the blocking pool.
async fn blocking<T: Send + 'static>(
    ctx: &Arc<Ctx>,
    f: impl FnOnce(&crate::resources::Resources) -> Result<T> + Send + 'static,
) -> Result<T> {
    let ctx = ctx.clone();
    tokio::task::spawn_blocking(move || f(&ctx.parts.resources))
        .await
        .unwrap_or_else(|_| {
            Err(Error::new(
                crate::error::Code::Internal,
                "the resources call panicked",
            ))
        })
}

pub(super) async fn list(State(ctx): State<Arc<Ctx>>) -> Answer {
    let r = &ctx.parts.resources;
    let all: Vec<Value> = r
        .list()?
        .iter()
        .map(|i| json::resource(i, &r.props_of(&i.id).unwrap_or_default()))
        .collect();
    ok(json!({ "connections": all }))
}

pub(super) async fn create(State(ctx): State<Arc<Ctx>>, body: Bytes) -> Answer {
    let body = object(&body)?;
    let (id, typ) = (string_field(&body, "id")?, string_field(&body, "typ")?);
    let (Some(id), Some(typ)) = (id, typ) else {
        return Err(Error::invalid_argument(
            "a connection needs {\"id\": ..., \"typ\": \"tcp\" | \"unix\" | a registered type, \"props\": {...}}",
        )
        .into());
    };
    let p = props(&body)?;
    let made = id.clone();
    blocking(&ctx, move |r| r.create(&made, &typ, &pairs(&p))).await?;
    Ok((StatusCode::CREATED, Json(view(&ctx, &id)?)).into_response())
}

pub(super) async fn one(
    State(ctx): State<Arc<Ctx>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    if super::cluster::wants_cluster(&q)? {
        return super::cluster::resource(&ctx, &id).await;
    }
    ok(view(&ctx, &id)?)
}

pub(super) async fn update(
    State(ctx): State<Arc<Ctx>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Answer {
    let body = object(&body)?;
    let current = ctx.parts.resources.get(&id)?;
    if string_field(&body, "id")?.is_some_and(|b| b != id) {
        return Err(Error::invalid_argument(format!(
            "the body's \"id\" differs from the path's \"{id}\"; an id cannot change"
        ))
        .into());
    }
    if string_field(&body, "typ")?.is_some_and(|t| t != current.kind) {
        return Err(Error::invalid_argument(format!(
            "connection \"{id}\" is of type \"{}\"; a type cannot change (delete and create it)",
            current.kind
        ))
        .into());
    }
    let p = props(&body)?;
    ctx.parts.resources.update_async(&id, &pairs(&p)).await?;
    ok(view(&ctx, &id)?)
}

pub(super) async fn delete(
    State(ctx): State<Arc<Ctx>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    let force = match q.get("force").map(String::as_str) {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") => true,
        Some(other) => {
            return Err(Error::invalid_argument(format!(
                "force must be true or false, got \"{}\"",
                other.escape_default()
            ))
            .into());
        }
    };
    let gone = id.clone();
    blocking(&ctx, move |r| r.delete(&gone, force)).await?;
    ok(json!({ "deleted": true, "id": id }))
}

//! The server's bearer token: every route needs it when `server.token` is set; with
//! no token (a loopback-only server) read routes are open and mutating routes are
//! refused, so nothing on the machine can change state through an open port.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::Ctx;
use super::error::ApiError;
use crate::error::{Code, Error};

/// The token of an `Authorization: Bearer <token>` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Compares in time that does not depend on where the first difference is.
pub(crate) fn same_token(given: &str, want: &str) -> bool {
    let (a, b) = (given.as_bytes(), want.as_bytes());
    let mut diff = a.len() ^ b.len();
    for (i, want) in b.iter().enumerate() {
        diff |= (a.get(i).copied().unwrap_or(0) ^ want) as usize;
    }
    diff == 0
}

/// The admin routes' guard (the hub checks its clients itself).
pub(crate) async fn guard(State(ctx): State<Arc<Ctx>>, req: Request, next: Next) -> Response {
    let mutating = !matches!(*req.method(), Method::GET | Method::HEAD);
    match &ctx.token {
        Some(want) if !bearer(req.headers()).is_some_and(|t| same_token(t, want)) => {
            return ApiError(Error::new(
                Code::Unauthenticated,
                "this server needs its token: send Authorization: Bearer <server.token>",
            ))
            .into_response();
        }
        Some(_) => {}
        None if mutating => {
            return ApiError(Error::new(
                Code::PermissionDenied,
                "this server has no server.token, so its mutating routes are off; set server.token and send it as Authorization: Bearer <token>",
            ))
            .into_response();
        }
        None => {}
    }
    next.run(req).await
}

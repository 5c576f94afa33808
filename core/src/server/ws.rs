//! The WebSocket hub's side facing clients (seed 004's server): `GET /ws` upgrades a
//! client into a registry connection (an outbox) after the auth hook admits it, then
//! one task per client writes what the registry queues for it and reads what it sends:
//! the hub's own `subscribe`, `unsubscribe`, `ping`, `pong` and `heartbeat` envelopes,
//! and everything else for the program ([`super::Hub`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};

use super::Ctx;
use super::auth::bearer;
use super::error::ApiError;
use super::hub::HubMessage;
use crate::envelope::{Envelope, rfc3339_now};
use crate::error::{Code, Error, Result};
use crate::registry::{Item, Message, Outbox, Registration, Registry};

/// Messages written before one flush: a burst of broadcasts costs one syscall, not one
/// each.
const BATCH: usize = 64;
/// Bytes read from a client's socket at a time.
const READ_BUFFER: usize = 4096;
/// How long a closing client has to answer our close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// The close code of each way a connection leaves the registry (docs/server.md).
fn close_code(reason: &str) -> u16 {
    match reason {
        "stale" => 4408,
        "slow_consumer" => 4429,
        "manager_closed" => 1001,
        _ => 4000,
    }
}

fn envelope(kind: &str, topic: Option<&str>, data: Option<Value>, error: Option<String>) -> String {
    Envelope {
        kind: kind.to_string(),
        topic: topic.map(str::to_string),
        data,
        timestamp: Some(rfc3339_now()),
        error,
    }
    .to_json()
}

fn error_frame(e: &Error, topic: Option<&str>, request: Option<&str>) -> WsMessage {
    let mut data = json!({ "code": e.code().name() });
    if let Some(r) = request {
        data["request"] = json!(r);
    }
    WsMessage::Text(envelope("error", topic, Some(data), Some(e.message().to_string())).into())
}

fn text(s: String) -> WsMessage {
    WsMessage::Text(s.into())
}

fn frame_of(m: &Message) -> WsMessage {
    match m.as_text() {
        Some(t) => WsMessage::Text(Utf8Bytes::from(t)),
        None => WsMessage::Binary(axum::body::Bytes::copy_from_slice(m.data())),
    }
}

/// `GET /ws`: checks the client's credentials and topics, registers it, upgrades.
pub(crate) async fn upgrade(
    State(ctx): State<Arc<Ctx>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let token = q
        .get("token")
        .cloned()
        .or_else(|| bearer(&headers).map(str::to_string));
    let topics: Vec<String> = q
        .get("topics")
        .map(|t| {
            t.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let registry = ctx.parts.registry.clone();
    let hook = registry.authenticator().is_some();
    let mut reg = Registration::new().meta("transport", "websocket");
    reg.topics = topics;
    if hook {
        match token {
            Some(t) => reg.token = Some(t),
            None => {
                ctx.parts.hub.count_refused();
                return ApiError(Error::new(
                    Code::Unauthenticated,
                    "the hub needs a token: ?token=... or an Authorization: Bearer header",
                ))
                .into_response();
            }
        }
    } else if let Some(want) = &ctx.token {
        if token.as_deref() != Some(want.as_str()) {
            ctx.parts.hub.count_refused();
            return ApiError(Error::new(
                Code::Unauthenticated,
                "the hub needs server.token: ?token=... or an Authorization: Bearer header",
            ))
            .into_response();
        }
    }
    // The hook may block (a Python hook takes the GIL, a Node hook waits for the JS
    // thread): it runs on the blocking pool, never on a runtime worker. The `Leave`
    // guard is made there too, beside the registration: if this request is cancelled
    // (the client hung up) while the hook runs, the finished registration is dropped
    // with its guard and leaves the registry, instead of staying behind unowned.
    let registered = {
        let registry = registry.clone();
        tokio::task::spawn_blocking(move || {
            registry.register_outbox(reg).map(|outbox| {
                let leave = Leave {
                    id: outbox.id(),
                    registry,
                };
                (outbox, leave)
            })
        })
        .await
    };
    let (outbox, leave) = match registered {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => {
            ctx.parts.hub.count_refused();
            return ApiError(e).into_response();
        }
        Err(_) => {
            return ApiError(Error::new(Code::Internal, "the auth hook panicked")).into_response();
        }
    };
    ctx.parts.hub.count_accepted();
    // Reads in 4 KiB chunks rather than tungstenite's 128 KiB: thousands of idle
    // clients then cost little (a bigger frame still arrives whole).
    ws.read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| run(ctx, socket, outbox, leave))
}

/// Takes the client out of the registry however its task ends (a closed socket, a
/// failed upgrade, the runtime stopping). A client the registry removed already is
/// not found: nothing to do.
struct Leave {
    registry: Registry,
    id: u64,
}

impl Drop for Leave {
    fn drop(&mut self) {
        let _ = self.registry.unregister(self.id, "client_closed");
    }
}

async fn run(ctx: Arc<Ctx>, socket: WebSocket, outbox: Outbox, leave: Leave) {
    let live = ctx.parts.hub.live();
    let id = outbox.id();
    let (mut tx, mut rx) = socket.split();
    let (user, topics) = match ctx.parts.registry.get(id) {
        Ok(info) => (info.user, info.topics),
        Err(_) => return,
    };
    let welcome = json!({
        "connection_id": id,
        "user": user,
        "topics": topics,
        "heartbeat_interval_ms": ctx.heartbeat.map(|d| d.as_millis() as u64),
    });
    if tx
        .send(text(envelope("welcome", None, Some(welcome), None)))
        .await
        .is_err()
    {
        return;
    }
    let mut next: Option<Item> = None;
    loop {
        let item = match next.take() {
            Some(i) => Some(i),
            None => tokio::select! {
                item = outbox.next() => Some(item),
                frame = rx.next() => {
                    let Some(Ok(frame)) = frame else { break };
                    outbox.touch();
                    match on_frame(&ctx, id, user.as_deref(), frame).await {
                        Flow::Reply(m) => {
                            if tx.send(m).await.is_err() {
                                break;
                            }
                        }
                        Flow::Quiet => {}
                        Flow::Leave => break,
                    }
                    None
                }
            },
        };
        let Some(item) = item else { continue };
        let sent = match item {
            Item::Message(m) => {
                let mut ok = tx.feed(frame_of(&m)).await.is_ok();
                let mut n = 1;
                while ok && n < BATCH {
                    match outbox.try_next() {
                        Some(Item::Message(m)) => ok = tx.feed(frame_of(&m)).await.is_ok(),
                        other => {
                            next = other;
                            break;
                        }
                    }
                    n += 1;
                }
                ok && tx.flush().await.is_ok()
            }
            Item::Ping => {
                tx.feed(WsMessage::Ping(axum::body::Bytes::new()))
                    .await
                    .is_ok()
                    && tx
                        .send(text(envelope("heartbeat", None, None, None)))
                        .await
                        .is_ok()
            }
            Item::Closed(reason) => {
                close(&mut tx, &mut rx, &reason, live).await;
                return;
            }
        };
        if !sent {
            let _ = ctx.parts.registry.unregister(id, "send_failed");
            break;
        }
    }
    drop(live);
    drop(leave);
}

/// Sends the close frame for `reason`, then reads until the client answers (or
/// hangs up, or [`CLOSE_WAIT`] passes), so that its unread frames do not turn our
/// close into a reset that could lose the close frame.
async fn close(
    tx: &mut futures_util::stream::SplitSink<WebSocket, WsMessage>,
    rx: &mut futures_util::stream::SplitStream<WebSocket>,
    reason: &str,
    live: super::hub::Live,
) {
    let mut cut = reason.len().min(120);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let frame = CloseFrame {
        code: close_code(reason),
        reason: Utf8Bytes::from(&reason[..cut]),
    };
    let sent = tx.send(WsMessage::Close(Some(frame))).await;
    // Written (or the socket is gone): the manager's close need not wait for more.
    drop(live);
    if sent.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while let Some(Ok(f)) = rx.next().await {
            if matches!(f, WsMessage::Close(_)) {
                break;
            }
        }
    })
    .await;
}

enum Flow {
    Reply(WsMessage),
    Quiet,
    Leave,
}

async fn on_frame(ctx: &Arc<Ctx>, id: u64, user: Option<&str>, frame: WsMessage) -> Flow {
    let raw = match frame {
        WsMessage::Text(t) => t,
        WsMessage::Binary(_) => {
            let e = Error::invalid_argument(
                "the hub takes JSON text frames {\"type\": ...}; binary frames are not accepted",
            );
            return Flow::Reply(error_frame(&e, None, None));
        }
        WsMessage::Close(_) => return Flow::Leave,
        // Pings are answered by the WebSocket layer; both count as activity.
        WsMessage::Ping(_) | WsMessage::Pong(_) => return Flow::Quiet,
    };
    let parsed: std::result::Result<Value, _> = serde_json::from_str(raw.as_str());
    let kind = parsed
        .as_ref()
        .ok()
        .and_then(|v| v.get("type"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let (Ok(value), Some(kind)) = (&parsed, kind) else {
        let e = Error::invalid_argument(
            "a hub message must be a JSON object with a string \"type\" (subscribe, unsubscribe, ping, data, ...)",
        );
        return Flow::Reply(error_frame(&e, None, None));
    };
    let topic = value
        .get("topic")
        .and_then(Value::as_str)
        .map(str::to_string);
    match kind.as_str() {
        "subscribe" | "unsubscribe" => {
            let Some(t) = topic else {
                let e = Error::invalid_argument(format!(
                    "{kind} needs a string \"topic\", e.g. {{\"type\":\"{kind}\",\"topic\":\"news\"}}"
                ));
                return Flow::Reply(error_frame(&e, None, Some(&kind)));
            };
            let done = if kind == "subscribe" {
                subscribe(ctx, id, &t).await
            } else {
                ctx.parts.registry.unsubscribe(id, &t).map(|_| ())
            };
            match done {
                Ok(()) => Flow::Reply(text(envelope(&format!("{kind}d"), Some(&t), None, None))),
                Err(e) => Flow::Reply(error_frame(&e, Some(&t), Some(&kind))),
            }
        }
        "ping" => Flow::Reply(text(envelope("pong", None, None, None))),
        "pong" | "heartbeat" => Flow::Quiet,
        _ => {
            ctx.parts.hub.deliver(HubMessage {
                connection_id: id,
                user: user.map(str::to_string),
                kind,
                topic,
                text: raw.as_str().to_string(),
            });
            Flow::Quiet
        }
    }
}

/// A subscribe through the installed authorize hook, which may block: on the
/// blocking pool when there is one.
async fn subscribe(ctx: &Arc<Ctx>, id: u64, topic: &str) -> Result<()> {
    let registry = ctx.parts.registry.clone();
    if registry.authenticator().is_none() {
        return registry.subscribe(id, topic).map(|_| ());
    }
    let topic = topic.to_string();
    tokio::task::spawn_blocking(move || registry.subscribe(id, &topic).map(|_| ()))
        .await
        .unwrap_or_else(|_| Err(Error::new(Code::Internal, "the authorize hook panicked")))
}

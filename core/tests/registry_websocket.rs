//! Tried as a new user would: a real WebSocket server (tokio-tungstenite) built on the
//! registry, with 200 real WebSocket clients on loopback that subscribe to topics.
//! A broadcast reaches exactly the subscribers; a client that stops answering pings is
//! removed as stale within connection_timeout plus one cleanup interval; an admin
//! disconnect by user closes that user's sockets with the reason as the close reason.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use switchboard_core::envelope;
use switchboard_core::registry::{Item, Message, Registration, Registry, Target};
use switchboard_core::{Config, Manager};

const CLIENTS: usize = 200;
const USERS: usize = 20;

/// The server: the first message is a `hello` envelope naming the user and topics;
/// later `subscribe` envelopes subscribe; any traffic (a pong included) touches.
async fn serve(listener: TcpListener, registry: Registry) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            return;
        };
        let registry = registry.clone();
        tokio::spawn(async move {
            let Ok(ws) = tokio_tungstenite::accept_async(tcp).await else {
                return;
            };
            let (mut tx, mut rx) = ws.split();
            let Some(Ok(Ws::Text(hello))) = rx.next().await else {
                return;
            };
            let Ok(env) = envelope::decode(&hello) else {
                return;
            };
            let data = env.data.unwrap_or_default();
            let user = data["user"].as_str().unwrap_or_default().to_string();
            let topics: Vec<String> = data["topics"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let client = data["client"].to_string();
            let reg = Registration::new()
                .user(user)
                .meta("client", client)
                .topics(topics);
            let Ok(outbox) = registry.register_outbox(reg) else {
                return;
            };
            let outbox = Arc::new(outbox);
            let id = outbox.id();
            let writer = {
                let outbox = outbox.clone();
                tokio::spawn(async move {
                    loop {
                        let frame = match outbox.next().await {
                            Item::Message(m) => match m.as_text() {
                                Some(t) => Ws::text(t),
                                None => Ws::binary(m.data().to_vec()),
                            },
                            Item::Ping => Ws::Ping(Vec::new().into()),
                            Item::Closed(reason) => {
                                let close = CloseFrame {
                                    code: CloseCode::Normal,
                                    reason: reason.into(),
                                };
                                let _ = tx.send(Ws::Close(Some(close))).await;
                                return;
                            }
                        };
                        if tx.send(frame).await.is_err() {
                            return;
                        }
                    }
                })
            };
            while let Some(Ok(frame)) = rx.next().await {
                outbox.touch();
                if let Ws::Text(t) = frame {
                    if let Ok(env) = envelope::decode(&t) {
                        if env.kind == "subscribe" {
                            if let Some(topic) = env.topic {
                                let _ = registry.subscribe(id, &topic);
                            }
                        }
                    }
                }
            }
            let _ = registry.unregister(id, "client_closed");
            let _ = writer.await;
        });
    }
}

/// What a client saw: the texts before each fence, and the close reason.
struct Seen {
    before_fence: Vec<String>,
    close_reason: Option<String>,
}

fn hello(client: usize, user: &str, topics: &[String]) -> String {
    let quoted: Vec<String> = topics.iter().map(|t| format!("\"{t}\"")).collect();
    let data = format!(
        "{{\"client\":{client},\"user\":\"{user}\",\"topics\":[{}]}}",
        quoted.join(",")
    );
    envelope::encode("hello", None, Some(&data), None).unwrap()
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_server_on_the_registry() {
    let mut cfg = Config::new();
    for (k, v) in [
        ("registry.heartbeat_interval", "100ms"),
        ("registry.connection_timeout", "600ms"),
        ("registry.cleanup_interval", "100ms"),
    ] {
        cfg.set(k, v).unwrap();
    }
    let manager = tokio::task::spawn_blocking(move || Manager::new(&cfg).unwrap())
        .await
        .unwrap();
    let registry = manager.registry().clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(serve(listener, registry.clone()));

    // 200 clients: user u{i % 20}, topic t{i % 4}; every 10th subscribes to "extra"
    // after registering; client 0 goes silent (stops reading, so it answers no ping).
    let (fence_tx, mut fence_rx) = mpsc::unbounded_channel::<(usize, Vec<String>)>();
    let mut closes: HashMap<usize, oneshot::Receiver<Seen>> = HashMap::new();
    let mut silent_hold = None;
    for i in 0..CLIENTS {
        let url = format!("ws://{addr}/");
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let topics = vec![format!("t{}", i % 4)];
        ws.send(Ws::text(hello(i, &format!("u{}", i % USERS), &topics)))
            .await
            .unwrap();
        if i % 10 == 0 {
            let sub = envelope::encode("subscribe", Some("extra"), None, None).unwrap();
            ws.send(Ws::text(sub)).await.unwrap();
        }
        if i == 0 {
            silent_hold = Some(ws);
            continue;
        }
        let fence_tx = fence_tx.clone();
        let (done_tx, done_rx) = oneshot::channel();
        closes.insert(i, done_rx);
        tokio::spawn(async move {
            let mut seen = Seen {
                before_fence: Vec::new(),
                close_reason: None,
            };
            let mut got = Vec::new();
            while let Some(Ok(frame)) = ws.next().await {
                match frame {
                    Ws::Text(t) if t.as_str() == "fence" => {
                        let _ = fence_tx.send((i, std::mem::take(&mut got)));
                    }
                    Ws::Text(t) => got.push(t.to_string()),
                    Ws::Close(frame) => {
                        seen.close_reason = frame.map(|f| f.reason.to_string());
                        break;
                    }
                    _ => {}
                }
            }
            seen.before_fence = got;
            let _ = done_tx.send(seen);
        });
    }
    let subscribed = || {
        let s = registry.stats().unwrap();
        s.connections == CLIENTS as u64
            && s.topic_counts
                .iter()
                .any(|(t, n)| t == "extra" && *n == (CLIENTS / 10) as u64)
    };
    wait_for(
        "200 registered clients with their subscriptions",
        subscribed,
    )
    .await;

    // Broadcasts: to t1; to "extra" except client 10's connection; then the fence to all.
    // The server records each client's number as metadata: list by it.
    let conn_of = |i: usize| -> u64 {
        let filter = switchboard_core::registry::ListFilter {
            meta: Some(("client".to_string(), i.to_string())),
            ..Default::default()
        };
        let page = registry.list(&filter).unwrap();
        assert_eq!(page.connections.len(), 1, "client {i} is registered once");
        page.connections[0].id
    };
    let except = conn_of(10);
    registry
        .broadcast(&Target::topic("t1"), Message::text("to-t1"))
        .unwrap();
    registry
        .broadcast(
            &Target::topic("extra").except([except]),
            Message::text("to-extra"),
        )
        .unwrap();
    let fence = registry
        .broadcast(&Target::all(), Message::text("fence"))
        .unwrap();
    assert_eq!(fence.recipients, CLIENTS as u64);
    let mut by_client: HashMap<usize, Vec<String>> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while by_client.len() < CLIENTS - 1 {
        let left = deadline.saturating_duration_since(Instant::now());
        let (i, got) = tokio::time::timeout(left, fence_rx.recv())
            .await
            .expect("every client saw the fence")
            .unwrap();
        by_client.insert(i, got);
    }
    for i in 1..CLIENTS {
        let mut want = Vec::new();
        if i % 4 == 1 {
            want.push("to-t1".to_string());
        }
        if i % 10 == 0 && i != 10 {
            want.push("to-extra".to_string());
        }
        assert_eq!(
            by_client[&i], want,
            "client {i} got exactly its subscriptions' messages"
        );
    }

    // The silent client answers no ping: stale within 600 ms + one 100 ms pass.
    let silent_id = conn_of(0);
    let t = Instant::now();
    wait_for("the silent client to be removed as stale", || {
        !registry.contains(silent_id)
    })
    .await;
    assert!(t.elapsed() < Duration::from_secs(10));
    assert_eq!(registry.stats().unwrap().disconnects.get("stale"), Some(&1));
    drop(silent_hold);

    // An admin disconnect by user closes exactly that user's sockets, with the reason.
    let n = registry
        .disconnect(&Target::user("u7"), "banned by admin")
        .unwrap();
    assert_eq!(n, (CLIENTS / USERS) as u64);
    let mut closed_users = BTreeSet::new();
    for i in (1..CLIENTS).filter(|i| i % USERS == 7) {
        let seen = tokio::time::timeout(Duration::from_secs(20), closes.remove(&i).unwrap())
            .await
            .expect("the banned client saw its socket close")
            .unwrap();
        assert_eq!(
            seen.close_reason.as_deref(),
            Some("banned by admin"),
            "client {i}"
        );
        closed_users.insert(i % USERS);
    }
    assert_eq!(closed_users, BTreeSet::from([7]));
    assert_eq!(
        registry.len(),
        CLIENTS - 1 - CLIENTS / USERS,
        "the other clients stay connected"
    );

    // Closing the manager closes the rest with reason manager_closed.
    let m = manager.clone();
    tokio::task::spawn_blocking(move || m.close(Duration::from_secs(5)).unwrap())
        .await
        .unwrap();
    for (i, rx) in closes {
        let seen = tokio::time::timeout(Duration::from_secs(20), rx)
            .await
            .expect("closed on shutdown")
            .unwrap();
        assert_eq!(
            seen.close_reason.as_deref(),
            Some("manager_closed"),
            "client {i}"
        );
    }
    server.abort();
}

//! The WebSocket hub's own behaviour with real tokio-tungstenite clients: a slow client
//! under the registry's queue policy (closed 4429 after what it could take), the hub
//! handler instead of the queue, refusals at the upgrade (a refused topic 403, a limit
//! 429, no token 401), and the hub's error and unsubscribe replies.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as Ws;

use common::cfg;
use switchboard_core::registry::{AuthGrant, Authenticator, ConnId, Message, Target};
use switchboard_core::{Manager, envelope};

type Client =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn manager(keys: Vec<(&'static str, &'static str)>) -> Manager {
    tokio::task::spawn_blocking(move || Manager::new(&cfg(&keys)).unwrap())
        .await
        .unwrap()
}

async fn close(m: Manager) {
    tokio::task::spawn_blocking(move || m.close(Duration::from_secs(5)).unwrap())
        .await
        .unwrap();
}

/// The next text frame's envelope type and the frame.
async fn next_text(ws: &mut Client) -> (String, String) {
    loop {
        let f = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s");
        match f {
            Some(Ok(Ws::Text(t))) => {
                let kind = envelope::decode(&t).map(|e| e.kind).unwrap_or_default();
                return (kind, t.to_string());
            }
            Some(Ok(_)) => continue,
            other => panic!("no text frame: {other:?}"),
        }
    }
}

async fn connect(addr: SocketAddr, query: &str) -> Client {
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws{query}"))
        .await
        .unwrap();
    let (kind, t) = next_text(&mut ws).await;
    assert_eq!(kind, "welcome", "{t}");
    ws
}

/// The HTTP status an upgrade is refused with.
async fn refused(addr: SocketAddr, query: &str) -> (u16, String) {
    match tokio_tungstenite::connect_async(format!("ws://{addr}/ws{query}")).await {
        Ok(_) => panic!("the upgrade {query} was accepted"),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            let body = resp
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).to_string())
                .unwrap_or_default();
            (resp.status().as_u16(), body)
        }
        Err(e) => panic!("refused how? {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_a_slow_consumer_closed_4429() {
    let m = manager(vec![
        ("server.listen", "127.0.0.1:0"),
        ("registry.queue_max_messages", "4"),
        ("registry.queue_full_policy", "disconnect"),
    ])
    .await;
    let addr = m.server_address().unwrap();
    let mut slow = connect(addr, "?topics=flood").await;
    let mut fine = connect(addr, "?topics=other").await;
    // 64 KiB messages: the kernel's socket buffers fill, then the hub's writer waits,
    // then the registry queue (4) fills and the policy removes the client.
    let big = "x".repeat(64 * 1024);
    let mut sent = 0;
    let mut gone = false;
    for _ in 0..2000 {
        let r = m
            .registry()
            .broadcast(&Target::topic("flood"), Message::text(&big))
            .unwrap();
        sent += 1;
        if r.disconnected > 0 || r.recipients == 0 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(gone, "still registered after {sent} broadcasts of 64 KiB");
    let stats = m.registry().stats().unwrap();
    assert_eq!(
        stats.disconnects.get("slow_consumer"),
        Some(&1),
        "{stats:?}"
    );
    // The other client is untouched and still answered.
    fine.send(Ws::text(r#"{"type":"ping"}"#)).await.unwrap();
    assert_eq!(next_text(&mut fine).await.0, "pong");
    // Reading again, the slow one gets what was written before the close, then 4429.
    let mut messages = 0;
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(20), slow.next()).await {
            Ok(Some(Ok(Ws::Text(_)))) => messages += 1,
            Ok(Some(Ok(Ws::Close(Some(f))))) => break (u16::from(f.code), f.reason.to_string()),
            Ok(Some(Ok(_))) => {}
            other => panic!("no close frame after {messages} messages: {other:?}"),
        }
    };
    assert_eq!(
        code,
        (4429, "slow_consumer".to_string()),
        "after {messages} messages"
    );
    assert!(messages > 0 && messages < sent, "{messages} of {sent}");
    close(m).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_takes_hub_messages_instead_of_the_queue() {
    let m = manager(vec![("server.listen", "127.0.0.1:0")]).await;
    let seen: Arc<Mutex<Vec<(u64, String)>>> = Arc::default();
    let sink = seen.clone();
    let registry = m.registry().clone();
    m.hub().set_handler(Some(Arc::new(move |msg| {
        // Answer the sender directly, as a program would.
        let _ = registry.send(
            msg.connection_id,
            Message::text(r#"{"type":"echo","data":"ok"}"#),
        );
        sink.lock().unwrap().push((msg.connection_id, msg.kind));
    })));
    let mut ws = connect(m.server_address().unwrap(), "").await;
    ws.send(Ws::text(r#"{"type":"order","data":{"n":1}}"#))
        .await
        .unwrap();
    assert_eq!(next_text(&mut ws).await.0, "echo");
    let got = seen.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].1, "order");
    assert_eq!(m.hub().queued(), 0, "the handler took it, not the queue");
    close(m).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_to_bad_frames_and_unsubscribe() {
    let m = manager(vec![("server.listen", "127.0.0.1:0")]).await;
    let mut ws = connect(m.server_address().unwrap(), "?topics=a,b").await;
    for bad in [
        Ws::text("not json"),
        Ws::text(r#"{"topic":"a"}"#),
        Ws::binary(vec![1u8, 2, 3]),
        Ws::text(r#"{"type":"subscribe"}"#),
    ] {
        ws.send(bad.clone()).await.unwrap();
        let (kind, t) = next_text(&mut ws).await;
        assert_eq!(kind, "error", "{bad:?} -> {t}");
        let e = envelope::decode(&t).unwrap();
        assert_eq!(e.data.unwrap()["code"], "InvalidArgument", "{t}");
        assert!(!e.error.unwrap_or_default().is_empty(), "{t}");
    }
    ws.send(Ws::text(r#"{"type":"unsubscribe","topic":"a"}"#))
        .await
        .unwrap();
    let (kind, t) = next_text(&mut ws).await;
    assert_eq!(kind, "unsubscribed", "{t}");
    let id = m.registry().list(&Default::default()).unwrap().connections[0].id;
    assert_eq!(m.registry().get(id).unwrap().topics, vec!["b".to_string()]);
    // A broadcast to `a` no longer reaches it; one to `b` does.
    m.registry()
        .broadcast(&Target::topic("a"), Message::text(r#"{"type":"to_a"}"#))
        .unwrap();
    m.registry()
        .broadcast(&Target::topic("b"), Message::text(r#"{"type":"to_b"}"#))
        .unwrap();
    assert_eq!(next_text(&mut ws).await.0, "to_b");
    close(m).await;
}

struct OnlyAlice;

impl Authenticator for OnlyAlice {
    fn authenticate(&self, token: &str) -> Result<AuthGrant, String> {
        match token {
            "alice-token" => Ok(AuthGrant {
                user: Some("alice".into()),
                metadata: vec![("role".into(), "admin".into())],
            }),
            _ => Err("unknown token".into()),
        }
    }
    fn authorize_subscribe(
        &self,
        _id: ConnId,
        _user: Option<&str>,
        topic: &str,
    ) -> Result<(), String> {
        if topic == "secret" {
            Err("topic secret is closed".into())
        } else {
            Ok(())
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_refused_by_the_hook_and_the_limits() {
    let m = manager(vec![
        ("server.listen", "127.0.0.1:0"),
        ("registry.max_topics_per_connection", "1"),
    ])
    .await;
    m.registry().set_authenticator(Some(Arc::new(OnlyAlice)));
    let addr = m.server_address().unwrap();
    let (status, body) = refused(addr, "").await;
    assert_eq!(status, 401, "no token: {body}");
    let (status, body) = refused(addr, "?token=mallory").await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body.contains("Unauthenticated") && body.contains("unknown token"),
        "{body}"
    );
    let (status, body) = refused(addr, "?token=alice-token&topics=secret").await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("PermissionDenied") && body.contains("secret is closed"),
        "{body}"
    );
    let (status, body) = refused(addr, "?token=alice-token&topics=a,b").await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body.contains("registry.max_topics_per_connection"),
        "{body}"
    );
    // The hook's user and metadata are on the connection.
    let _ws = connect(addr, "?token=alice-token&topics=a").await;
    let c = &m.registry().list(&Default::default()).unwrap().connections[0];
    assert_eq!(c.user.as_deref(), Some("alice"));
    assert_eq!(c.metadata.get("role").map(String::as_str), Some("admin"));
    assert_eq!(
        c.metadata.get("transport").map(String::as_str),
        Some("websocket")
    );
    let text = m.metrics_text();
    assert!(
        text.contains("switchboard_hub_connections_refused_total 4"),
        "{}",
        text.lines()
            .filter(|l| l.contains("hub"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    close(m).await;
}

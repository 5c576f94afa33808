//! The live-connection registry: registration, broadcast with exclusions, slow
//! consumers, failing sinks, heartbeats and stale cleanup on a manual clock, limits,
//! the authentication hook, listing, disconnect, events and metrics.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchboard_core::clock::ManualClock;
use switchboard_core::registry::{
    AuthGrant, Authenticator, ConnId, ConnState, FnSink, Item, ListFilter, Message, Registration,
    SendOutcome, Sink, Target,
};
use switchboard_core::{Code, Config, EventKind, Manager};

fn manager(keys: &[(&str, &str)]) -> (Manager, ManualClock) {
    let mut cfg = Config::new();
    for (k, v) in keys {
        cfg.set(k, v).unwrap();
    }
    let clock = ManualClock::new();
    (
        Manager::with_manual_clock(&cfg, clock.clone()).unwrap(),
        clock,
    )
}

/// A sink that records what it got, per connection.
#[derive(Default)]
struct Recorder {
    got: Mutex<Vec<(ConnId, String)>>,
    pings: AtomicU64,
    closed: Mutex<Vec<(ConnId, String)>>,
}

impl Sink for Recorder {
    fn send(&self, id: ConnId, msg: &Message) -> SendOutcome {
        self.got
            .lock()
            .unwrap()
            .push((id, String::from_utf8_lossy(msg.data()).into_owned()));
        SendOutcome::Sent
    }
    fn ping(&self, _id: ConnId) -> SendOutcome {
        self.pings.fetch_add(1, Ordering::SeqCst);
        SendOutcome::Sent
    }
    fn closed(&self, id: ConnId, reason: &str) {
        self.closed.lock().unwrap().push((id, reason.to_string()));
    }
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn drain_events(m: &Manager) -> Vec<switchboard_core::Event> {
    let mut out = Vec::new();
    while let Some(e) = m.poll_event(Duration::ZERO) {
        out.push(e);
    }
    out
}

#[test]
fn register_with_user_metadata_and_topics() {
    let (m, _) = manager(&[]);
    let r = m.registry();
    let a = r
        .register_outbox(
            Registration::new()
                .user("alice")
                .meta("ip", "10.0.0.1")
                .meta("ip", "10.0.0.2")
                .topics(["news", "chat", "news"]),
        )
        .unwrap();
    let info = r.get(a.id()).unwrap();
    assert_eq!(info.user.as_deref(), Some("alice"));
    assert_eq!(
        info.metadata.get("ip").map(String::as_str),
        Some("10.0.0.2")
    );
    assert_eq!(info.topics, vec!["chat", "news"]);
    assert_eq!(info.state, ConnState::Active);
    assert_eq!(info.sink, "outbox");
    assert!(r.subscribe(a.id(), "sport").unwrap());
    assert!(!r.subscribe(a.id(), "sport").unwrap());
    assert!(r.unsubscribe(a.id(), "chat").unwrap());
    assert!(!r.unsubscribe(a.id(), "chat").unwrap());
    r.set_metadata(a.id(), "room", Some("7")).unwrap();
    r.set_metadata(a.id(), "ip", None).unwrap();
    let info = r.get(a.id()).unwrap();
    assert_eq!(info.topics, vec!["news", "sport"]);
    assert_eq!(
        info.metadata.into_iter().collect::<Vec<_>>(),
        vec![("room".into(), "7".into())]
    );
    let e = r
        .register_outbox(Registration::new().topics([""]))
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().contains("topics[0] must be a non-empty string"),
        "{e}"
    );
    let e = r.get(999_999_999).unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    r.unregister(a.id(), "bye").unwrap();
    assert_eq!(
        r.unregister(a.id(), "bye").unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(a.try_next(), Some(Item::Closed("bye".into())));
    m.close(Duration::from_secs(1)).unwrap();
    assert_eq!(r.get(1).unwrap_err().code(), Code::Unavailable);
}

#[test]
fn broadcast_reaches_exactly_the_right_sinks() {
    let (m, _) = manager(&[]);
    let r = m.registry();
    let rec = Arc::new(Recorder::default());
    let reg = |user: &str, topics: &[&str]| {
        r.register(
            Registration::new()
                .user(user)
                .topics(topics.iter().copied()),
            rec.clone(),
        )
        .unwrap()
    };
    let a = reg("alice", &["news"]);
    let b = reg("bob", &["news", "chat"]);
    let c = reg("carol", &["chat"]);
    let a2 = reg("alice", &[]);
    let report = r
        .broadcast(&Target::topic("news"), Message::text("n1"))
        .unwrap();
    assert_eq!(
        (report.recipients, report.queued, report.dropped),
        (2, 2, 0)
    );
    r.broadcast(&Target::topic("chat").except([b]), Message::text("c1"))
        .unwrap();
    r.broadcast(&Target::user("alice"), Message::text("u1"))
        .unwrap();
    let rep = r
        .broadcast(
            &Target::topic("news").and_topic("chat").and_user("alice"),
            Message::text("m1"),
        )
        .unwrap();
    assert_eq!(rep.recipients, 4, "each connection once");
    r.broadcast(&Target::all().except([a, c]), Message::text("all1"))
        .unwrap();
    assert_eq!(
        r.broadcast(&Target::default(), Message::text("x"))
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    wait_until("deliveries", || {
        rec.got.lock().unwrap().len() == 2 + 1 + 2 + 4 + 2
    });
    let got = rec.got.lock().unwrap().clone();
    let of = |id: ConnId| -> Vec<String> {
        got.iter()
            .filter(|(i, _)| *i == id)
            .map(|(_, m)| m.clone())
            .collect()
    };
    assert_eq!(of(a), vec!["n1", "u1", "m1"]);
    assert_eq!(of(b), vec!["n1", "m1", "all1"]);
    assert_eq!(of(c), vec!["c1", "m1"]);
    assert_eq!(of(a2), vec!["u1", "m1", "all1"]);
    let s = r.stats().unwrap();
    assert_eq!(s.messages_sent, 11);
    assert_eq!(s.messages_queued, 11);
    m.close(Duration::from_secs(1)).unwrap();
}

#[test]
fn a_slow_outbox_meets_its_policy_while_others_get_everything() {
    for policy in ["disconnect", "drop_oldest", "drop_new"] {
        let (m, _) = manager(&[
            ("registry.queue_max_messages", "4"),
            ("registry.queue_full_policy", policy),
        ]);
        let r = m.registry();
        let slow = r
            .register_outbox(Registration::new().topics(["t"]))
            .unwrap();
        let fast = r
            .register_outbox(Registration::new().topics(["t"]))
            .unwrap();
        let mut fast_got = Vec::new();
        let mut reports = Vec::new();
        for i in 0..10 {
            reports.push(
                r.broadcast(&Target::topic("t"), Message::text(&i.to_string()))
                    .unwrap(),
            );
            while let Some(Item::Message(msg)) = fast.try_next() {
                fast_got.push(msg.as_text().unwrap().to_string());
            }
        }
        assert_eq!(
            fast_got,
            (0..10).map(|i| i.to_string()).collect::<Vec<_>>(),
            "{policy}"
        );
        let slow_items: Vec<Item> = std::iter::from_fn(|| slow.try_next())
            .take_while(|i| !matches!(i, Item::Closed(_)))
            .collect();
        let texts: Vec<String> = slow_items
            .iter()
            .filter_map(|i| match i {
                Item::Message(m) => Some(m.as_text().unwrap().to_string()),
                _ => None,
            })
            .collect();
        let events = drain_events(&m);
        let slow_events: Vec<_> = events
            .iter()
            .filter(|e| e.kind == EventKind::SlowConsumer)
            .collect();
        assert_eq!(
            slow_events.len(),
            1,
            "{policy}: one slow-consumer event per episode"
        );
        assert_eq!(slow_events[0].connection_id, Some(slow.id()));
        assert_eq!(slow_events[0].reason.as_deref(), Some(policy));
        match policy {
            "disconnect" => {
                assert!(texts.is_empty(), "its queue is discarded");
                assert_eq!(slow.try_next(), Some(Item::Closed("slow_consumer".into())));
                assert!(!r.contains(slow.id()));
                assert_eq!(reports[4].disconnected, 1);
                assert!(events.iter().any(|e| e.kind == EventKind::Unregistered
                    && e.reason.as_deref() == Some("slow_consumer")));
            }
            "drop_oldest" => {
                assert_eq!(texts, vec!["6", "7", "8", "9"]);
                assert_eq!(reports[4].dropped, 1);
            }
            _ => {
                assert_eq!(texts, vec!["0", "1", "2", "3"]);
                assert_eq!(reports.iter().map(|r| r.dropped).sum::<u64>(), 6);
            }
        }
        m.close(Duration::from_secs(1)).unwrap();
    }
}

#[test]
fn a_failing_sink_is_removed_after_the_configured_failures() {
    let (m, _) = manager(&[("registry.max_send_failures", "3")]);
    let r = m.registry();
    let calls = Arc::new(AtomicU64::new(0));
    let closed = Arc::new(Mutex::new(None));
    let (c2, cl2) = (calls.clone(), closed.clone());
    let sink = FnSink::new(move |_, _| {
        c2.fetch_add(1, Ordering::SeqCst);
        SendOutcome::Failed("socket gone".into())
    })
    .on_closed(move |_, reason| *cl2.lock().unwrap() = Some(reason.to_string()));
    let id = r
        .register(Registration::new().topics(["t"]), Arc::new(sink))
        .unwrap();
    let ok = Arc::new(Recorder::default());
    let good = r
        .register(Registration::new().topics(["t"]), ok.clone())
        .unwrap();
    for i in 0..5 {
        r.broadcast(&Target::topic("t"), Message::text(&format!("{i}")))
            .unwrap();
        wait_until("delivery", || ok.got.lock().unwrap().len() == i + 1);
    }
    wait_until("removal", || !r.contains(id));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    wait_until("close callback", || closed.lock().unwrap().is_some());
    assert_eq!(closed.lock().unwrap().as_deref(), Some("send_failed"));
    assert!(r.contains(good));
    let s = r.stats().unwrap();
    assert_eq!(s.messages_failed, 3);
    assert_eq!(s.disconnects.get("send_failed"), Some(&1));
    m.close(Duration::from_secs(1)).unwrap();
}

#[test]
fn heartbeats_and_stale_cleanup_on_the_manual_clock() {
    let (m, clock) = manager(&[
        ("registry.heartbeat_interval", "10s"),
        ("registry.connection_timeout", "30s"),
        ("registry.cleanup_interval", "0"),
    ]);
    let r = m.registry();
    let rec = Arc::new(Recorder::default());
    let quiet = r.register(Registration::new(), rec.clone()).unwrap();
    let chatty = r.register_outbox(Registration::new()).unwrap();
    assert_eq!(r.cleanup().unwrap().pinged, 0);
    clock.advance(Duration::from_secs(10));
    let rep = r.cleanup().unwrap();
    assert_eq!((rep.pinged, rep.removed), (2, 0));
    assert_eq!(chatty.try_next(), Some(Item::Ping));
    wait_until("ping callback", || rec.pings.load(Ordering::SeqCst) == 1);
    assert_eq!(r.get(quiet).unwrap().state, ConnState::Idle);
    clock.advance(Duration::from_secs(15));
    chatty.touch();
    clock.advance(Duration::from_secs(15));
    let rep = r.cleanup().unwrap();
    assert_eq!(
        rep.removed, 1,
        "the quiet one is stale at 30 s; the chatty one touched at 25 s"
    );
    assert!(!r.contains(quiet) && r.contains(chatty.id()));
    wait_until("close callback", || rec.closed.lock().unwrap().len() == 1);
    assert_eq!(rec.closed.lock().unwrap()[0], (quiet, "stale".to_string()));
    assert_eq!(r.stats().unwrap().cleanup_runs, 3);
    m.close(Duration::from_secs(1)).unwrap();
}

#[test]
fn every_limit_refuses_and_changes_nothing() {
    let (m, _) = manager(&[
        ("registry.max_total_connections", "3"),
        ("registry.max_connections_per_topic", "2"),
        ("registry.max_connections_per_user", "1"),
        ("registry.max_topics_per_connection", "2"),
    ]);
    let r = m.registry();
    let a = r
        .register_outbox(Registration::new().user("u").topics(["t"]))
        .unwrap();
    let e = r
        .register_outbox(Registration::new().user("u"))
        .unwrap_err();
    assert_eq!(e.code(), Code::ResourceExhausted);
    assert!(
        e.message()
            .contains("registry.max_connections_per_user (1)"),
        "{e}"
    );
    let b = r
        .register_outbox(Registration::new().topics(["t"]))
        .unwrap();
    let e = r
        .register_outbox(Registration::new().topics(["t"]))
        .unwrap_err();
    assert!(
        e.message()
            .contains("registry.max_connections_per_topic (2)"),
        "{e}"
    );
    let e = r
        .register_outbox(Registration::new().topics(["x", "y", "z"]))
        .unwrap_err();
    assert!(
        e.message()
            .contains("registry.max_topics_per_connection (2)"),
        "{e}"
    );
    let c = r.register_outbox(Registration::new()).unwrap();
    let e = r.register_outbox(Registration::new()).unwrap_err();
    assert!(
        e.message().contains("registry.max_total_connections (3)"),
        "{e}"
    );
    assert_eq!(
        r.subscribe(c.id(), "t").unwrap_err().code(),
        Code::ResourceExhausted
    );
    r.subscribe(b.id(), "x").unwrap();
    let e = r.subscribe(b.id(), "y").unwrap_err();
    assert!(
        e.message()
            .contains("registry.max_topics_per_connection (2)"),
        "{e}"
    );
    assert_eq!(r.len(), 3);
    assert_eq!(r.get(c.id()).unwrap().topics, Vec::<String>::new());
    let s = r.stats().unwrap();
    assert_eq!(
        s.topic_counts,
        vec![("t".to_string(), 2), ("x".to_string(), 1)]
    );
    assert_eq!(s.rejections.values().sum::<u64>(), 6);
    let rejected = drain_events(&m)
        .into_iter()
        .filter(|e| e.kind == EventKind::Rejected)
        .count();
    assert_eq!(rejected, 6);
    drop((a, b, c));
    m.close(Duration::from_secs(1)).unwrap();
}

struct Tokens;
impl Authenticator for Tokens {
    fn authenticate(&self, token: &str) -> Result<AuthGrant, String> {
        match token.strip_prefix("ok:") {
            Some(user) => Ok(AuthGrant {
                user: Some(user.to_string()),
                metadata: vec![("auth".into(), "token".into())],
            }),
            None => Err("unknown token".into()),
        }
    }
    fn authorize_subscribe(
        &self,
        _: ConnId,
        user: Option<&str>,
        topic: &str,
    ) -> Result<(), String> {
        if topic.starts_with("admin.") && user != Some("root") {
            return Err("admin topics are for root".into());
        }
        Ok(())
    }
}

#[test]
fn the_auth_hook_grants_and_refuses_with_their_codes() {
    let (m, _) = manager(&[]);
    let r = m.registry();
    let e = r
        .register_outbox(Registration::new().token("ok:x"))
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    r.set_authenticator(Some(Arc::new(Tokens)));
    let a = r
        .register_outbox(Registration::new().token("ok:alice").topics(["news"]))
        .unwrap();
    let info = r.get(a.id()).unwrap();
    assert_eq!(info.user.as_deref(), Some("alice"));
    assert_eq!(info.metadata.get("auth").map(String::as_str), Some("token"));
    let e = r
        .register_outbox(Registration::new().token("nope"))
        .unwrap_err();
    assert_eq!(e.code(), Code::Unauthenticated);
    assert!(e.message().contains("unknown token"), "{e}");
    let e = r.subscribe(a.id(), "admin.logs").unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(e.message().contains("admin topics are for root"), "{e}");
    let e = r
        .register_outbox(Registration::new().token("ok:bob").topics(["admin.x"]))
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let root = r
        .register_outbox(Registration::new().token("ok:root").topics(["admin.x"]))
        .unwrap();
    assert_eq!(r.len(), 2);
    drop(root);
    m.close(Duration::from_secs(1)).unwrap();
}

#[test]
fn list_filters_and_pages_with_a_cursor() {
    let (m, clock) = manager(&[
        ("registry.max_total_connections", "0"),
        ("registry.max_connections_per_topic", "0"),
    ]);
    let r = m.registry();
    let mut ids = Vec::new();
    let mut keep = Vec::new();
    for i in 0..250 {
        let reg = Registration::new()
            .user(format!("u{}", i % 5))
            .meta("parity", if i % 2 == 0 { "even" } else { "odd" })
            .topics(if i % 3 == 0 { vec!["three"] } else { vec![] });
        let o = r.register_outbox(reg).unwrap();
        ids.push(o.id());
        keep.push(o);
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = r
            .list(&ListFilter {
                limit: 50,
                cursor,
                ..Default::default()
            })
            .unwrap();
        seen.extend(page.connections.iter().map(|c| c.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let mut three = Vec::new();
    let mut cursor = None;
    loop {
        let f = ListFilter {
            topic: Some("three".into()),
            meta: Some(("parity".into(), "even".into())),
            limit: 7,
            cursor,
            ..Default::default()
        };
        let page = r.list(&f).unwrap();
        three.extend(page.connections.iter().map(|c| c.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let want: Vec<ConnId> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 6 == 0)
        .map(|(_, id)| *id)
        .collect();
    assert_eq!(three, want);
    let u = r
        .list(&ListFilter {
            user: Some("u1".into()),
            limit: 1000,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(u.connections.len(), 50);
    assert!(u.next_cursor.is_none());
    clock.advance(Duration::from_secs(60));
    keep[0].touch();
    let idle = r
        .list(&ListFilter {
            min_idle: Some(Duration::from_secs(59)),
            limit: 1000,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(idle.connections.len(), 249);
    let active = r
        .list(&ListFilter {
            state: Some(ConnState::Active),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        active.connections.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![ids[0]]
    );
    m.close(Duration::from_secs(1)).unwrap();
}

#[test]
fn disconnect_by_user_and_topic_with_a_reason() {
    let (m, _) = manager(&[]);
    let r = m.registry();
    let rec = Arc::new(Recorder::default());
    let a = r
        .register(Registration::new().user("alice").topics(["x"]), rec.clone())
        .unwrap();
    let a2 = r
        .register(Registration::new().user("alice"), rec.clone())
        .unwrap();
    let b = r
        .register(Registration::new().user("bob").topics(["x"]), rec.clone())
        .unwrap();
    let c = r
        .register(Registration::new().user("carol").topics(["x"]), rec.clone())
        .unwrap();
    assert_eq!(r.disconnect(&Target::user("alice"), "banned").unwrap(), 2);
    assert_eq!(
        r.disconnect(&Target::topic("x").except([c]), "maintenance")
            .unwrap(),
        1
    );
    wait_until("close callbacks", || rec.closed.lock().unwrap().len() == 3);
    let mut closed = rec.closed.lock().unwrap().clone();
    closed.sort();
    assert_eq!(
        closed,
        vec![
            (a, "banned".into()),
            (a2, "banned".into()),
            (b, "maintenance".into())
        ]
    );
    assert_eq!(r.len(), 1);
    let s = r.stats().unwrap();
    assert_eq!(s.disconnects.get("banned"), Some(&2));
    m.close(Duration::from_secs(1)).unwrap();
    wait_until("manager close callback", || {
        rec.closed.lock().unwrap().len() == 4
    });
    assert_eq!(rec.closed.lock().unwrap()[3], (c, "manager_closed".into()));
}

#[test]
fn events_come_in_order() {
    let (m, _) = manager(&[]);
    let r = m.registry();
    let a = r
        .register_outbox(Registration::new().user("alice").topics(["a"]))
        .unwrap();
    r.subscribe(a.id(), "b").unwrap();
    r.unsubscribe(a.id(), "a").unwrap();
    r.unregister(a.id(), "done").unwrap();
    let got: Vec<(EventKind, Option<String>, Option<String>)> = drain_events(&m)
        .into_iter()
        .filter(|e| e.connection_id == Some(a.id()))
        .map(|e| (e.kind, e.topic, e.reason))
        .collect();
    assert_eq!(
        got,
        vec![
            (EventKind::Registered, None, None),
            (EventKind::Subscribed, Some("a".into()), None),
            (EventKind::Subscribed, Some("b".into()), None),
            (EventKind::Unsubscribed, Some("a".into()), None),
            (EventKind::Unregistered, None, Some("done".into())),
        ]
    );
    m.close(Duration::from_secs(1)).unwrap();
}

#[test]
fn metrics_lines() {
    let (m, _) = manager(&[("registry.metrics_top_topics", "1")]);
    let r = m.registry();
    let a = r
        .register_outbox(Registration::new().user("u").topics(["big", "small"]))
        .unwrap();
    let b = r
        .register_outbox(Registration::new().topics(["big"]))
        .unwrap();
    r.broadcast(&Target::topic("big"), Message::text("x"))
        .unwrap();
    assert!(a.try_next().is_some());
    r.unregister(b.id(), "gone").unwrap();
    let text = m.metrics_text();
    for line in [
        "switchboard_registry_connections 1",
        "switchboard_registry_subscriptions 2",
        "switchboard_registry_topic_connections{topic=\"big\"} 1",
        "switchboard_registry_topic_connections{topic=\"_other\"} 1",
        "switchboard_registry_messages_total{result=\"queued\"} 2",
        "switchboard_registry_messages_total{result=\"sent\"} 1",
        "switchboard_registry_messages_total{result=\"dropped\"} 1",
        "switchboard_registry_disconnects_total{reason=\"gone\"} 1",
        "switchboard_registry_registrations_total 2",
        "switchboard_registry_broadcasts_total 1",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    m.close(Duration::from_secs(1)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_next_awaits_and_ends_with_closed() {
    let (m, _) = tokio::task::spawn_blocking(|| manager(&[])).await.unwrap();
    let r = m.registry().clone();
    let o = r
        .register_outbox(Registration::new().topics(["t"]))
        .unwrap();
    let id = o.id();
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        loop {
            match o.next().await {
                Item::Message(msg) => got.push(msg.as_text().unwrap().to_string()),
                Item::Ping => {}
                Item::Closed(reason) => return (got, reason),
            }
        }
    });
    for i in 0..3 {
        r.broadcast(&Target::topic("t"), Message::text(&i.to_string()))
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    r.unregister(id, "end").unwrap();
    let (got, reason) = reader.await.unwrap();
    assert_eq!(got, vec!["0", "1", "2"]);
    assert_eq!(reason, "end");
    tokio::task::spawn_blocking(move || m.close(Duration::from_secs(1)).unwrap())
        .await
        .unwrap();
}

#[test]
fn next_within_waits_and_refuses_a_small_buffer_without_losing_the_message() {
    let (m, _) = manager(&[]);
    let r = m.registry();
    let o = r.register_outbox(Registration::new()).unwrap();
    assert_eq!(
        o.next_within(Duration::from_millis(20), None).unwrap(),
        None
    );
    r.send(o.id(), Message::binary(vec![1u8; 100])).unwrap();
    let e = o.next_within(Duration::ZERO, Some(10)).unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("100 bytes"), "{e}");
    match o.next_within(Duration::ZERO, Some(100)).unwrap() {
        Some(Item::Message(msg)) => assert_eq!(msg.len(), 100),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        r.send(424_242_424, Message::text("x")).unwrap_err().code(),
        Code::NotFound
    );
    m.close(Duration::from_secs(1)).unwrap();
}

#[test]
fn a_closed_outbox_counts_failures_then_leaves() {
    let (m, _) = manager(&[("registry.max_send_failures", "2")]);
    let r = m.registry();
    let o = r
        .register_outbox(Registration::new().topics(["t"]))
        .unwrap();
    let id = o.id();
    drop(o);
    r.broadcast(&Target::topic("t"), Message::text("1"))
        .unwrap();
    assert!(r.contains(id));
    r.broadcast(&Target::topic("t"), Message::text("2"))
        .unwrap();
    assert!(!r.contains(id));
    assert_eq!(r.stats().unwrap().disconnects.get("send_failed"), Some(&1));
    m.close(Duration::from_secs(1)).unwrap();
}

#[test]
fn a_timeout_not_longer_than_the_heartbeat_is_refused() {
    let mut cfg = Config::new();
    cfg.set("registry.heartbeat_interval", "10s").unwrap();
    cfg.set("registry.connection_timeout", "10s").unwrap();
    let e = Manager::new(&cfg).unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.message().starts_with("registry.connection_timeout (10s) must be longer than registry.heartbeat_interval (10s)"),
        "{e}"
    );
    cfg.set("registry.heartbeat_interval", "0").unwrap();
    Manager::new(&cfg)
        .unwrap()
        .close(Duration::from_secs(1))
        .unwrap();
}

#[test]
fn advance_clock_needs_a_manual_clock() {
    let m = Manager::new(&Config::new()).unwrap();
    assert_eq!(
        m.advance_clock(Duration::from_secs(1)).unwrap_err().code(),
        Code::FailedPrecondition
    );
    m.close(Duration::from_secs(1)).unwrap();
    let mut cfg = Config::new();
    cfg.set("runtime.clock", "manual").unwrap();
    cfg.set("registry.heartbeat_interval", "1s").unwrap();
    cfg.set("registry.connection_timeout", "5s").unwrap();
    let m = Manager::new(&cfg).unwrap();
    let r = m.registry();
    let id = r.register_outbox(Registration::new()).unwrap().id();
    m.advance_clock(Duration::from_secs(5)).unwrap();
    assert_eq!(r.cleanup().unwrap().removed, 1);
    assert!(!r.contains(id));
    m.close(Duration::from_secs(1)).unwrap();
}

/// A sink that finishes later (like a JS Promise): it records what it was handed and
/// returns Pending; the test reports.
#[derive(Default)]
struct Later {
    handed: Mutex<Vec<String>>,
    closed: Mutex<Option<String>>,
}

impl Sink for Later {
    fn send(&self, _id: ConnId, msg: &Message) -> SendOutcome {
        self.handed
            .lock()
            .unwrap()
            .push(msg.as_text().unwrap_or("?").to_string());
        SendOutcome::Pending
    }
    fn closed(&self, _id: ConnId, reason: &str) {
        *self.closed.lock().unwrap() = Some(reason.to_string());
    }
    fn may_pend(&self) -> bool {
        true
    }
}

#[test]
fn a_pending_send_holds_the_rest_in_the_bounded_queue() {
    let (m, _) = manager(&[
        ("registry.queue_max_messages", "3"),
        ("registry.queue_full_policy", "drop_new"),
        ("registry.max_send_failures", "2"),
    ]);
    let r = m.registry();
    let sink = Arc::new(Later::default());
    let id = r
        .register(Registration::new().topics(["t"]), sink.clone())
        .unwrap();
    r.broadcast(&Target::topic("t"), Message::text("0"))
        .unwrap();
    wait_until("the first send", || sink.handed.lock().unwrap().len() == 1);
    for i in 1..6 {
        r.broadcast(&Target::topic("t"), Message::text(&i.to_string()))
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(
        sink.handed.lock().unwrap().len(),
        1,
        "one item in flight at a time"
    );
    let info = r.get(id).unwrap();
    assert_eq!(
        (info.queued_messages, info.dropped),
        (3, 2),
        "the bound applies behind it"
    );
    r.report_send(id, Ok(())).unwrap();
    wait_until("the second send", || sink.handed.lock().unwrap().len() == 2);
    r.report_send(id, Err("socket gone".into())).unwrap();
    wait_until("the third send", || sink.handed.lock().unwrap().len() == 3);
    r.unregister(id, "bye").unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert!(
        sink.closed.lock().unwrap().is_none(),
        "the close waits for the report"
    );
    assert_eq!(r.report_sent_many(&[id, 987_654]), 1);
    wait_until("the close callback", || {
        sink.closed.lock().unwrap().is_some()
    });
    assert_eq!(sink.closed.lock().unwrap().as_deref(), Some("bye"));
    assert_eq!(*sink.handed.lock().unwrap(), vec!["0", "1", "2"]);
    let s = r.stats().unwrap();
    assert_eq!((s.messages_sent, s.messages_failed), (2, 1));
    assert_eq!(r.report_sent_many(&[id, 12345]), 0);
    assert_eq!(
        r.report_send(id, Ok(())).unwrap_err().code(),
        Code::NotFound,
        "nothing in flight, and gone"
    );
    m.close(Duration::from_secs(1)).unwrap();
}

/// A sink whose send is finished (and reported) on another thread before the call
/// has returned Pending: an interpreter that runs the send while the delivery task is
/// still inside the call.
struct ReportsFirst {
    registry: Mutex<Option<switchboard_core::Registry>>,
    handed: AtomicU64,
}

impl Sink for ReportsFirst {
    fn send(&self, id: ConnId, _msg: &Message) -> SendOutcome {
        self.handed.fetch_add(1, Ordering::SeqCst);
        let r = self.registry.lock().unwrap().clone().unwrap();
        // Reported from another thread, waited for, before we return Pending.
        std::thread::spawn(move || r.report_send(id, Ok(())).unwrap())
            .join()
            .unwrap();
        SendOutcome::Pending
    }
    fn may_pend(&self) -> bool {
        true
    }
}

#[test]
fn a_report_that_comes_before_pending_is_returned_is_not_lost() {
    let (m, _) = manager(&[]);
    let r = m.registry();
    let sink = Arc::new(ReportsFirst {
        registry: Mutex::new(Some(r.clone())),
        handed: AtomicU64::new(0),
    });
    let id = r
        .register(Registration::new().topics(["t"]), sink.clone())
        .unwrap();
    for i in 0..5 {
        r.broadcast(&Target::topic("t"), Message::text(&i.to_string()))
            .unwrap();
    }
    wait_until("every send", || sink.handed.load(Ordering::SeqCst) == 5);
    wait_until("every report counted", || {
        r.stats().unwrap().messages_sent == 5
    });
    assert_eq!(r.get(id).unwrap().queued_messages, 0);
    *sink.registry.lock().unwrap() = None;
    m.close(Duration::from_secs(1)).unwrap();
}

#[test]
fn a_send_that_never_finishes_fails_after_the_send_timeout() {
    let (m, clock) = manager(&[
        ("registry.send_timeout", "5s"),
        ("registry.heartbeat_interval", "0"),
        ("registry.cleanup_interval", "0"),
    ]);
    let r = m.registry();
    let sink = Arc::new(Later::default());
    let id = r
        .register(Registration::new().topics(["t"]), sink.clone())
        .unwrap();
    r.broadcast(&Target::topic("t"), Message::text("never"))
        .unwrap();
    wait_until("the first send", || sink.handed.lock().unwrap().len() == 1);
    r.broadcast(&Target::topic("t"), Message::text("next"))
        .unwrap();
    clock.advance(Duration::from_secs(4));
    r.cleanup().unwrap();
    assert_eq!(r.stats().unwrap().messages_failed, 0, "not late yet");
    clock.advance(Duration::from_secs(2));
    r.cleanup().unwrap();
    assert_eq!(r.stats().unwrap().messages_failed, 1);
    wait_until("the next item", || sink.handed.lock().unwrap().len() == 2);
    assert_eq!(r.get(id).unwrap().failed, 1);
    r.report_send(id, Ok(())).unwrap();
    m.close(Duration::from_secs(1)).unwrap();
}

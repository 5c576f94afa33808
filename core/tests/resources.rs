//! Named shared connections: one physical connection shared by consumers, its status
//! through server closes, a down endpoint and a configuration error, delete with and
//! without force, anonymous resources, report_failure, wait_ready and the metrics.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::time::Duration;

use common::fault_proxy::FaultProxy;
use common::{EchoServer, wait_until};
use switchboard_core::{Code, Config, EventKind, Manager, ResourceStatus};

const LONG: Duration = Duration::from_secs(10);

fn manager() -> Manager {
    Manager::new(&Config::new()).unwrap()
}

/// The resource_state transitions of `id` seen on the queue so far, as "a->b".
fn transitions(m: &Manager, id: &str, seen: &mut Vec<String>) -> Vec<String> {
    while let Some(e) = m.poll_event(Duration::ZERO) {
        if e.kind == EventKind::ResourceState && e.resource.as_deref() == Some(id) {
            seen.push(format!(
                "{}->{}",
                e.old_state.unwrap_or("?"),
                e.new_state.unwrap_or("?")
            ));
        }
    }
    seen.clone()
}

fn echo_roundtrip(h: &switchboard_core::ResourceHandle, text: &[u8]) {
    h.wait_ready(LONG).unwrap();
    let sock = h.socket().unwrap();
    sock.send_all(text).unwrap();
    let mut buf = vec![0u8; text.len()];
    let mut got = 0;
    while got < text.len() {
        let n = sock.recv(&mut buf[got..]).unwrap();
        assert!(n > 0, "echo closed");
        got += n;
    }
    assert_eq!(&buf[..], text);
}

#[test]
fn three_consumers_share_one_connection_through_a_server_close() {
    let server = EchoServer::start();
    let m = manager();
    let r = m.resources();
    r.create(
        "bus",
        "tcp",
        &[("endpoint", &server.target()), ("health.interval", "20ms")],
    )
    .unwrap();
    let a = r.attach("bus", "feed").unwrap();
    let b = r.attach("bus", "control").unwrap();
    let c = r.attach("bus", "audit").unwrap();
    r.wait_ready("bus", LONG).unwrap();
    echo_roundtrip(&a, b"one\n");
    echo_roundtrip(&b, b"two\n");
    assert_eq!(
        server.accepted(),
        1,
        "one physical connection for three consumers"
    );
    let info = r.get("bus").unwrap();
    assert_eq!(info.status, ResourceStatus::Connected);
    assert_eq!(info.consumers, vec!["feed", "control", "audit"]);

    // The server closes it: every consumer sees recovering, then connected again.
    a.socket().unwrap().send_all(b"CLOSE\n").unwrap();
    let mut seen = Vec::new();
    assert!(
        wait_until(LONG, || transitions(&m, "bus", &mut seen).len() >= 3),
        "{seen:?}"
    );
    assert_eq!(
        seen,
        vec![
            "connecting->connected",
            "connected->recovering",
            "recovering->connected"
        ]
    );
    for h in [&a, &b, &c] {
        echo_roundtrip(h, b"again\n");
        assert_eq!(h.id(), "bus");
    }
    assert_eq!(server.accepted(), 2);
    assert_eq!(r.get("bus").unwrap().reconnects, 1);
    drop((a, b, c));
    m.close(LONG).unwrap();
}

#[test]
fn a_down_endpoint_is_connecting_until_it_comes_up() {
    let server = EchoServer::start();
    let proxy = FaultProxy::start(server.port);
    proxy.command("refuse");
    let m = manager();
    let r = m.resources();
    r.create(
        "feed",
        "tcp",
        &[
            ("endpoint", &proxy.target()),
            ("backoff.initial", "20ms"),
            ("backoff.max", "50ms"),
        ],
    )
    .unwrap();
    let h = r.attach("feed", "reader").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let info = r.get("feed").unwrap();
    assert_eq!(info.status, ResourceStatus::Connecting);
    assert!(
        info.last_error
            .as_deref()
            .is_some_and(|e| e.contains("refused")),
        "{info:?}"
    );
    let e = h.socket().unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    assert!(e.message().contains("is connecting"), "{e}");
    assert_eq!(
        r.wait_ready("feed", Duration::from_millis(50))
            .unwrap_err()
            .code(),
        Code::Timeout
    );
    proxy.command("pass");
    echo_roundtrip(&h, b"up\n");
    let mut seen = Vec::new();
    assert_eq!(
        transitions(&m, "feed", &mut seen),
        vec!["connecting->connected"]
    );
    drop(h);
    m.close(LONG).unwrap();
}

#[test]
fn a_configuration_error_stops_with_disconnected_and_the_reason() {
    let m = manager();
    let r = m.resources();
    let long = format!("unix:///tmp/{}", "x".repeat(200));
    r.create("sock", "unix", &[("endpoint", &long)]).unwrap();
    assert!(wait_until(LONG, || r.get("sock").unwrap().status
        == ResourceStatus::Disconnected));
    let info = r.get("sock").unwrap();
    assert!(info.stopped);
    assert!(info.last_error.is_some(), "{info:?}");
    let mut seen = Vec::new();
    assert_eq!(
        transitions(&m, "sock", &mut seen),
        vec!["connecting->disconnected"]
    );
    // Bad props are refused at once, naming them.
    let e = r
        .create(
            "x",
            "tcp",
            &[
                ("endpoint", "tcp://127.0.0.1:1"),
                ("connect_timeout", "soon"),
            ],
        )
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("pool.connect_timeout"), "{e}");
    let e = r
        .create("x", "tcp", &[("endpoint", "unix:///tmp/a.sock")])
        .unwrap_err();
    assert!(e.message().contains("is not a tcp address"), "{e}");
    let e = r
        .create("x", "carrier-pigeon", &[("endpoint", "x")])
        .unwrap_err();
    assert!(
        e.message().contains("built-in types are tcp and unix"),
        "{e}"
    );
    let e = r.create("x", "tcp", &[]).unwrap_err();
    assert!(e.message().contains("needs an endpoint"), "{e}");
    m.close(LONG).unwrap();
}

#[test]
fn delete_is_refused_while_attached_unless_forced() {
    let server = EchoServer::start();
    let m = manager();
    let r = m.resources();
    r.create("a", "tcp", &[("endpoint", &server.target())])
        .unwrap();
    let h1 = r.attach("a", "one").unwrap();
    let h2 = r.attach("a", "two").unwrap();
    let e = r.delete("a", false).unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert!(e.message().contains("\"one\", \"two\""), "{e}");
    h1.detach();
    h1.detach();
    drop(h2);
    r.delete("a", false).unwrap();
    assert_eq!(r.get("a").unwrap_err().code(), Code::NotFound);

    r.create("b", "tcp", &[("endpoint", &server.target())])
        .unwrap();
    let h = r.attach("b", "stubborn").unwrap();
    h.wait_ready(LONG).unwrap();
    r.delete("b", true).unwrap();
    let detached = std::iter::from_fn(|| m.poll_event(Duration::ZERO))
        .filter(|e| e.kind == EventKind::ResourceDetached && e.resource.as_deref() == Some("b"))
        .count();
    assert_eq!(detached, 1);
    assert_eq!(h.status(), ResourceStatus::Disconnected);
    assert_eq!(h.socket().unwrap_err().code(), Code::Unavailable);
    assert_eq!(r.attach("b", "late").unwrap_err().code(), Code::NotFound);
    drop(h);
    m.close(LONG).unwrap();
}

#[test]
fn anonymous_resources_are_shared_by_equal_props_and_closed_by_the_last_detach() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("tcp://{}", listener.local_addr().unwrap());
    let m = manager();
    let r = m.resources();
    let props = [("endpoint", target.as_str()), ("tcp.nodelay", "true")];
    let x = r.attach_anonymous("tcp", &props, "x").unwrap();
    let y = r.attach_anonymous("tcp", &props, "y").unwrap();
    assert_eq!(x.id(), y.id());
    x.wait_ready(LONG).unwrap();
    let (mut server_side, _) = listener.accept().unwrap();
    let other = r
        .attach_anonymous("tcp", &[("endpoint", target.as_str())], "z")
        .unwrap();
    assert_ne!(other.id(), x.id(), "different props, another resource");
    let listed = r.list().unwrap();
    assert_eq!(listed.iter().filter(|i| i.anonymous).count(), 2);
    let id = x.id().to_string();
    drop(x);
    assert!(r.get(&id).is_ok(), "still has y");
    drop(y);
    server_side.set_read_timeout(Some(LONG)).unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(
        server_side.read(&mut buf).unwrap(),
        0,
        "the server sees the close"
    );
    assert_eq!(r.get(&id).unwrap_err().code(), Code::NotFound);
    drop(other);
    m.close(LONG).unwrap();
}

#[test]
fn report_failure_checks_at_once_instead_of_at_the_next_health_check() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = format!("tcp://{}", listener.local_addr().unwrap());
    let m = manager();
    let r = m.resources();
    // No periodic checks: only report_failure can notice the loss.
    r.create(
        "ctl",
        "tcp",
        &[("endpoint", &target), ("health.interval", "0")],
    )
    .unwrap();
    let h = r.attach("ctl", "c").unwrap();
    h.wait_ready(LONG).unwrap();
    let (server_side, _) = listener.accept().unwrap();
    drop(server_side);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        h.status(),
        ResourceStatus::Connected,
        "nothing checks on its own"
    );
    h.report_failure();
    assert!(wait_until(LONG, || r.get("ctl").unwrap().reconnects == 1));
    let _again = listener.accept().unwrap();
    assert_eq!(h.status(), ResourceStatus::Connected);
    drop(h);
    m.close(LONG).unwrap();
}

#[test]
fn metric_lines_and_closed_manager() {
    let server = EchoServer::start();
    let m = manager();
    let r = m.resources();
    r.create("bus", "tcp", &[("endpoint", &server.target())])
        .unwrap();
    r.create(
        "dead",
        "unix",
        &[("endpoint", &format!("/tmp/{}", "y".repeat(200)))],
    )
    .unwrap();
    let h = r.attach("bus", "feed").unwrap();
    echo_roundtrip(&h, b"abc\n");
    h.send_all(b"hey\n").unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(h.recv(&mut buf).unwrap(), 4);
    assert!(wait_until(LONG, || r.get("dead").unwrap().status
        == ResourceStatus::Disconnected));
    let text = m.metrics_text();
    for line in [
        "switchboard_resource_status{resource=\"bus\",type=\"tcp\"} 1",
        "switchboard_resource_status{resource=\"dead\",type=\"unix\"} -1",
        "switchboard_resource_consumers{resource=\"bus\",type=\"tcp\"} 1",
        "switchboard_resource_reconnects_total{resource=\"bus\",type=\"tcp\"} 0",
        "switchboard_resource_bytes_total{resource=\"bus\",type=\"tcp\",direction=\"out\"} 4",
        "switchboard_resource_bytes_total{resource=\"bus\",type=\"tcp\",direction=\"in\"} 4",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    m.close(LONG).unwrap();
    assert_eq!(r.get("bus").unwrap_err().code(), Code::Unavailable);
    assert_eq!(h.status(), ResourceStatus::Disconnected);
}

#[test]
fn update_swaps_every_consumer_to_the_new_endpoint_while_the_old_one_drains() {
    let old_side = TcpListener::bind("127.0.0.1:0").unwrap();
    let old_target = format!("tcp://{}", old_side.local_addr().unwrap());
    let new_server = EchoServer::start();
    let m = manager();
    let r = m.resources();
    r.create(
        "bus",
        "tcp",
        &[("endpoint", &old_target), ("health.interval", "20ms")],
    )
    .unwrap();
    let a = r.attach("bus", "a").unwrap();
    let b = r.attach("bus", "b").unwrap();
    a.wait_ready(LONG).unwrap();
    let in_flight = a.socket().unwrap(); // an operation still using the old one
    let (mut old_conn, _) = old_side.accept().unwrap();

    // An update that cannot connect changes nothing.
    let dead = format!("tcp://127.0.0.1:{}", common::dead_port());
    let e = r.update("bus", &[("endpoint", &dead)]).unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    assert!(e.message().contains("was not updated"), "{e}");
    assert_eq!(r.get("bus").unwrap().endpoint, old_target);

    r.update(
        "bus",
        &[
            ("endpoint", &new_server.target()),
            ("health.interval", "20ms"),
        ],
    )
    .unwrap();
    let rebound = std::iter::from_fn(|| m.poll_event(Duration::ZERO))
        .filter(|e| e.kind == EventKind::ResourceRebound && e.resource.as_deref() == Some("bus"))
        .count();
    assert_eq!(rebound, 1);
    for h in [&a, &b] {
        echo_roundtrip(h, b"on the new one\n");
    }
    assert_eq!(
        new_server.accepted(),
        1,
        "one new connection for both consumers"
    );
    assert_eq!(r.get("bus").unwrap().endpoint, new_server.target());
    assert_eq!(r.get("bus").unwrap().status, ResourceStatus::Connected);

    // The old connection stays open for the operation still holding it, then closes.
    in_flight.send_all(b"last words").unwrap();
    let mut buf = [0u8; 10];
    old_conn.set_read_timeout(Some(LONG)).unwrap();
    old_conn.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"last words");
    drop(in_flight);
    assert_eq!(
        old_conn.read(&mut buf).unwrap(),
        0,
        "closed once the last user let go"
    );
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        new_server.accepted(),
        1,
        "the old task is gone: nothing redials"
    );

    // Anonymous resources are their props: no update.
    let anon = r
        .attach_anonymous("tcp", &[("endpoint", &new_server.target())], "z")
        .unwrap();
    let e = r
        .update(anon.id(), &[("endpoint", &old_target)])
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    assert_eq!(
        r.update("nope", &[("endpoint", &old_target)])
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    drop((a, b, anon));
    m.close(LONG).unwrap();
}

#[test]
fn named_resources_persist_across_a_manager_reopen() {
    let server = EchoServer::start();
    let other = EchoServer::start();
    let path = std::env::temp_dir().join(format!("sb-resources-{}.redb", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let mut cfg = Config::new();
    cfg.set("resources.path", path.to_str().unwrap()).unwrap();
    {
        let m = Manager::new(&cfg).unwrap();
        let r = m.resources();
        r.create(
            "kept",
            "tcp",
            &[("endpoint", &server.target()), ("health.interval", "1s")],
        )
        .unwrap();
        r.create("moved", "tcp", &[("endpoint", &server.target())])
            .unwrap();
        r.create("gone", "tcp", &[("endpoint", &server.target())])
            .unwrap();
        r.update("moved", &[("endpoint", &other.target())]).unwrap();
        r.delete("gone", false).unwrap();
        r.register_type("bus", switchboard_core::FnConnector::blocking(|_| Ok(7u32)))
            .unwrap();
        r.create("mine", "bus", &[("endpoint", "bus://x")]).unwrap();
        let _anon = r
            .attach_anonymous("tcp", &[("endpoint", &server.target())], "x")
            .unwrap();
        m.close(LONG).unwrap();
    }
    let m = Manager::new(&cfg).unwrap();
    let r = m.resources();
    let ids: Vec<String> = r.list().unwrap().into_iter().map(|i| i.id).collect();
    assert_eq!(
        ids,
        vec!["kept", "moved"],
        "named ones only, as last updated"
    );
    // A stored resource of the program's type comes back once the type is registered.
    r.register_type("bus", switchboard_core::FnConnector::blocking(|_| Ok(7u32)))
        .unwrap();
    let mine = r.attach("mine", "me").unwrap();
    mine.wait_ready(LONG).unwrap();
    assert_eq!(mine.object::<u32>().unwrap(), 7);
    drop(mine);
    assert_eq!(r.get("moved").unwrap().endpoint, other.target());
    let h = r.attach("kept", "again").unwrap();
    echo_roundtrip(&h, b"back\n");
    drop(h);
    m.close(LONG).unwrap();
    let _ = std::fs::remove_file(&path);
}

/// A program's own object: a "client" with a number and a flag its check reads.
#[derive(Clone)]
struct Client {
    n: u64,
    healthy: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

#[test]
fn a_registered_type_shares_the_programs_objects() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    let m = manager();
    let r = m.resources();
    let made = Arc::new(AtomicU64::new(0));
    let closed = Arc::new(AtomicU64::new(0));
    let healthy = Arc::new(AtomicBool::new(true));
    let (mk, cl, hl) = (made.clone(), closed.clone(), healthy.clone());
    let connector = switchboard_core::FnConnector::blocking(move |ep| {
        assert_eq!(ep.to_string(), "bus://primary");
        Ok(Client {
            n: mk.fetch_add(1, Ordering::SeqCst) + 1,
            healthy: hl.clone(),
        })
    })
    .with_blocking_check(|c: Client| {
        if c.healthy.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(switchboard_core::Error::unavailable(
                "the client says it is unwell",
            ))
        }
    })
    .with_close(move |_c: Client| {
        cl.fetch_add(1, Ordering::SeqCst);
    });
    r.register_type("bus", connector).unwrap();
    assert_eq!(
        r.register_type("tcp", switchboard_core::FnConnector::blocking(|_| Ok(0u8)))
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    r.create(
        "main",
        "bus",
        &[("endpoint", "bus://primary"), ("health.interval", "20ms")],
    )
    .unwrap();
    let a = r.attach("main", "a").unwrap();
    let b = r.attach("main", "b").unwrap();
    a.wait_ready(LONG).unwrap();
    assert_eq!(a.object::<Client>().unwrap().n, 1);
    assert_eq!(b.object::<Client>().unwrap().n, 1, "one object for both");
    assert_eq!(a.socket().unwrap_err().code(), Code::FailedPrecondition);
    assert_eq!(
        a.object::<String>().unwrap_err().code(),
        Code::FailedPrecondition
    );
    // The check fails: the object is replaced (and the old one closed), same id.
    healthy.store(false, Ordering::SeqCst);
    assert!(wait_until(LONG, || made.load(Ordering::SeqCst) >= 2));
    healthy.store(true, Ordering::SeqCst);
    assert!(wait_until(LONG, || a
        .object::<Client>()
        .is_ok_and(|c| c.n >= 2)));
    assert!(wait_until(LONG, || closed.load(Ordering::SeqCst) >= 1));
    drop((a, b));
    r.delete("main", false).unwrap();
    m.close(LONG).unwrap();
    assert!(
        wait_until(LONG, || closed.load(Ordering::SeqCst)
            == made.load(Ordering::SeqCst)),
        "every object closed"
    );
}

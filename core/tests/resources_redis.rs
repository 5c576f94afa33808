//! Tried as a new user would: a named resource to a real redis-server (RESP3, so one
//! connection can SUBSCRIBE and PUBLISH) shared by two consumers, a reader and a
//! publisher. redis is killed with SIGKILL and restarted on the same port; both
//! consumers go on without the program reconnecting anything: the resource redials and
//! `resources.on_connect` subscribes again.
//!
//! Needs `redis-server` on PATH (`make test-rust` installs the Debian package when it is
//! missing); without it the test fails and says so.

mod common;

use std::time::{Duration, Instant};

use common::redis::Redis;
use common::{dead_port, wait_until};
use switchboard_core::{Config, EventKind, Manager, ResourceHandle, ResourceStatus};

const LONG: Duration = Duration::from_secs(20);

/// Reads from the shared connection until `want` has been seen (RESP3 pushes and
/// replies mixed; the reader only looks for the payload).
fn read_until(reader: &ResourceHandle, want: &str) -> bool {
    let deadline = Instant::now() + LONG;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        let Ok(sock) = reader.socket() else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let _ = sock.set_timeout(Some(Duration::from_millis(200)));
        match sock.recv(&mut buf) {
            Ok(0) => std::thread::sleep(Duration::from_millis(10)),
            Ok(n) => {
                seen.extend_from_slice(&buf[..n]);
                if String::from_utf8_lossy(&seen).contains(want) {
                    return true;
                }
            }
            Err(_) => {}
        }
    }
    false
}

#[test]
fn two_consumers_of_one_redis_connection_survive_a_redis_restart() {
    let port = dead_port();
    let mut redis = Redis::start(port, None);
    let m = Manager::new(&Config::new()).unwrap();
    let r = m.resources();
    let endpoint = format!("tcp://127.0.0.1:{port}");
    r.create(
        "redis",
        "tcp",
        &[
            ("endpoint", &endpoint),
            ("on_connect", "HELLO 3\\r\\nSUBSCRIBE news\\r\\n"),
            ("health.interval", "50ms"),
            ("backoff.initial", "50ms"),
            ("backoff.max", "200ms"),
        ],
    )
    .unwrap();
    let reader = r.attach("redis", "reader").unwrap();
    let publisher = r.attach("redis", "publisher").unwrap();
    reader.wait_ready(LONG).unwrap();
    assert!(read_until(&reader, "subscribe"), "subscribed on connect");
    publisher.send_all(b"PUBLISH news first\r\n").unwrap();
    assert!(
        read_until(&reader, "first"),
        "the reader got the first message"
    );

    redis.kill();
    assert!(
        wait_until(LONG, || reader.status() != ResourceStatus::Connected),
        "the loss is seen"
    );
    let _redis = Redis::start(port, None);
    publisher.wait_ready(LONG).unwrap();
    assert!(
        read_until(&reader, "subscribe"),
        "subscribed again by on_connect"
    );
    publisher.send_all(b"PUBLISH news second\r\n").unwrap();
    assert!(
        read_until(&reader, "second"),
        "the reader got the message after the restart"
    );
    let info = r.get("redis").unwrap();
    // A redial right after the kill may reach the dying listener and be reset: one
    // reconnect, or a few, each a recovering -> connected pair.
    assert!(info.reconnects >= 1, "{info:?}");
    assert_eq!(info.consumers, vec!["reader", "publisher"]);
    let states: Vec<String> = std::iter::from_fn(|| m.poll_event(Duration::ZERO))
        .filter(|e| e.kind == EventKind::ResourceState)
        .filter_map(|e| e.new_state.map(str::to_string))
        .collect();
    let mut want = vec!["connected".to_string()];
    for _ in 0..info.reconnects {
        want.extend(["recovering".to_string(), "connected".to_string()]);
    }
    assert_eq!(states, want);
    drop((reader, publisher));
    m.close(LONG).unwrap();
}

//! The Rust example: pool connections to an echo server and show reuse.
//!
//! `cargo run -p switchboard-core --example echo -- tcp://127.0.0.1:7000`

use std::time::Duration;

use switchboard_core::envelope;
use switchboard_core::registry::{Item, Message, Registration, Target};
use switchboard_core::{AcquireOptions, BreakerOp, Code, Config, Manager, SessionDetails};

fn main() -> Result<(), switchboard_core::Error> {
    let target = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tcp://127.0.0.1:7000".to_string());

    // The embedded server on a free loopback port: admin JSON, /metrics, the hub, gRPC.
    let mut manager_cfg = Config::new();
    manager_cfg.set("server.listen", "127.0.0.1:0")?;
    let manager = Manager::new(&manager_cfg)?;
    let mut pool_cfg = Config::new();
    pool_cfg.set("pool.max_size", "4")?;
    pool_cfg.set("pool.acquire_timeout", "2s")?;
    let pool = manager.pool("echo", &target, &pool_cfg)?;

    let lease = pool.acquire_blocking(AcquireOptions::default())?;
    lease.send_all(b"hello from Rust\n")?;
    let mut buf = [0u8; 64];
    let n = lease.recv(&mut buf)?;
    println!(
        "rust: connection #{} echoed {:?}",
        lease.id(),
        String::from_utf8_lossy(&buf[..n]).trim_end()
    );
    let first = lease.id();
    lease.release();

    let lease = pool.acquire_blocking(AcquireOptions::default())?;
    println!(
        "rust: reacquired connection #{} (reused: {})",
        lease.id(),
        lease.id() == first
    );
    drop(lease);

    let s = pool.stats();
    println!(
        "rust: pool \"{}\": {} open, {} idle, {} acquires",
        s.name, s.size, s.idle, s.acquired_total
    );

    // Resilience: the endpoint's health, and an operator taking it out and back.
    for e in pool.health().endpoints {
        println!(
            "rust: endpoint {} {}, breaker {}, quality {:.2}",
            e.endpoint,
            e.state.as_str(),
            e.breaker.as_str(),
            e.quality
        );
    }
    pool.breaker_op(None, BreakerOp::ForceOpen)?;
    let refused = pool.acquire_blocking(AcquireOptions::default()).err();
    println!(
        "rust: breaker forced open, acquire fails fast: {}",
        refused.map_or("no error?".to_string(), |e| e.to_string())
    );
    pool.breaker_op(None, BreakerOp::Reset)?;

    // Sessions: deliver, commit, close, resume at the committed offset.
    let sessions = manager.sessions();
    sessions.register("quotes", "eu")?;
    let id = sessions.open(&SessionDetails::new("quotes", "eu").streams(["trades"]))?;
    sessions.deliver(id, "trades", 42, 4200, 0)?;
    sessions.commit(id, "trades", 42)?;
    let back = sessions.commit(id, "trades", 10).map_err(|e| e.code());
    sessions.close(id)?;
    let again = sessions.resume("quotes", "eu", &["trades"], false)?;
    println!(
        "rust: session resumed at {} (a backwards commit was refused: {})",
        sessions.position(again, "trades")?,
        back == Err(Code::FailedPrecondition)
    );
    // The registry: two clients with pull outboxes, a broadcast with an exclusion.
    let registry = manager.registry();
    let alice = registry.register_outbox(Registration::new().user("alice").topics(["news"]))?;
    let bob = registry.register_outbox(Registration::new().user("bob").topics(["news"]))?;
    let report = registry.broadcast(
        &Target::topic("news").except([bob.id()]),
        Message::text(&envelope::encode(
            "notification",
            Some("news"),
            Some("{\"id\":1}"),
            None,
        )?),
    )?;
    let got = match alice.try_next() {
        Some(Item::Message(m)) => m.as_text().unwrap_or_default().to_string(),
        other => format!("{other:?}"),
    };
    println!(
        "rust: registry broadcast reached {} of 2 (bob excluded); alice got {got}",
        report.recipients
    );
    // A named resource: one connection to the echo server shared by two consumers.
    let resources = manager.resources();
    resources.create("echo", "tcp", &[("endpoint", target.as_str())])?;
    let feed = resources.attach("echo", "feed")?;
    let control = resources.attach("echo", "control")?;
    control.wait_ready(Duration::from_secs(5))?;
    control.send_all(b"shared\n")?;
    let mut buf = [0u8; 7];
    let n = feed.recv(&mut buf)?;
    println!(
        "rust: resource \"echo\" {} with consumers {:?}; feed read {:?}",
        feed.status().as_str(),
        resources.get("echo")?.consumers,
        String::from_utf8_lossy(&buf[..n])
    );
    drop((feed, control));
    // The server answers the same data over HTTP (docs/admin.md).
    if let Some(addr) = manager.server_address() {
        use std::io::{Read, Write};
        let mut http = std::net::TcpStream::connect(addr)
            .map_err(|e| switchboard_core::Error::new(Code::Io, e.to_string()))?;
        let _ =
            http.write_all(b"GET /pools/echo HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n");
        let mut reply = String::new();
        let _ = http.read_to_string(&mut reply);
        println!(
            "rust: server on {addr}: GET /pools/echo -> {}",
            reply.lines().next().unwrap_or("no answer")
        );
    }
    manager.close(Duration::from_secs(2))?;
    println!("rust: manager closed");
    Ok(())
}

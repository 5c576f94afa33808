//! The cluster (issue 12): one broadcast from one instance to 10,000 no-op callback
//! sinks spread over 3 instances in 3 processes, through a loopback redis-server
//! started here. Two figures, each over `ROUNDS` broadcasts to one topic:
//!
//! - `acknowledged`: from the call to the last remote instance's acknowledgement (sent
//!   once its fan-out has queued the message for every one of its sinks): an upper
//!   bound of "the call to the last enqueue on the remote instances", p50 and p99;
//! - `plain`: a broadcast that does not wait (`Registry::broadcast`): the caller's cost.
//!
//! The two other instances are this binary run again (`SB_CLUSTER_BENCH_CHILD`). Prints
//! one text line per figure (bench/run.sh puts them in RESULTS.md); `cargo bench --bench
//! cluster`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_core::registry::{ConnId, FnSink, Message, Registration, SendOutcome, Target};
use switchboard_core::{Config, Manager};

const SINKS: usize = 10_000;
const ROUNDS: usize = 300;

fn config(url: &str, name: &str, node: &str) -> Config {
    let mut c = Config::new();
    for (k, v) in [
        ("cluster.redis_url", url),
        ("cluster.name", name),
        ("cluster.node_id", node),
        ("cluster.heartbeat_interval", "200ms"),
        ("cluster.request_timeout", "5s"),
        ("registry.max_total_connections", "0"),
        ("registry.max_connections_per_topic", "0"),
    ] {
        c.set(k, v).expect("a valid bench setting");
    }
    c
}

/// `n` no-op callback sinks on topic "bench".
fn sinks(m: &Manager, n: usize) {
    let sink = Arc::new(FnSink::new(|_: ConnId, _: &Message| SendOutcome::Sent));
    for _ in 0..n {
        m.registry()
            .register(Registration::new().topics(["bench"]), sink.clone())
            .expect("register");
    }
}

/// A remote instance: its sinks, "READY", then it waits for stdin to close.
fn child(url: &str, name: &str, node: &str, n: usize) {
    let m = Manager::new(&config(url, name, node)).expect("child manager");
    sinks(&m, n);
    println!("READY");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    let _ = m.close(Duration::from_secs(5));
}

fn pct(sorted: &[Duration], p: usize) -> f64 {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)].as_secs_f64() * 1e6
}

fn main() {
    if let Ok(spec) = std::env::var("SB_CLUSTER_BENCH_CHILD") {
        let parts: Vec<&str> = spec.splitn(4, '|').collect();
        child(parts[0], parts[1], parts[2], parts[3].parse().unwrap_or(0));
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let bin = std::env::var("SB_REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
    let Ok(mut redis) = Command::new(bin)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        println!("cluster: not measured (no redis-server on PATH or in SB_REDIS_SERVER)");
        return;
    };
    let up = (0..2000).any(|_| {
        std::thread::sleep(Duration::from_millis(5));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(up, "redis-server did not listen");
    let url = format!("redis://127.0.0.1:{port}/0");
    let name = format!("sbbench{}", std::process::id());
    let per = SINKS / 3;
    let mut children = Vec::new();
    for node in ["bench-b", "bench-c"] {
        let mut c = Command::new(std::env::current_exe().expect("this binary"))
            .env(
                "SB_CLUSTER_BENCH_CHILD",
                format!("{url}|{name}|{node}|{per}"),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("a child instance");
        let mut ready = String::new();
        let out = c.stdout.take().expect("its stdout");
        BufReader::new(out).read_line(&mut ready).expect("READY");
        assert_eq!(ready.trim(), "READY");
        children.push(c);
    }
    let m = Manager::new(&config(&url, &name, "bench-a")).expect("manager");
    let local = SINKS - 2 * per;
    sinks(&m, local);
    let cluster = m.cluster().expect("in a cluster").clone();
    let all_in = (0..500).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        cluster.members().len() == 3
    });
    assert!(all_in, "three members");
    let msg = Message::text(&"x".repeat(100));
    let target = Target::topic("bench");
    // Warm up until both remote instances answer with all their sinks.
    let mut warm = false;
    for _ in 0..200 {
        let r = cluster.broadcast(&target, msg.clone()).expect("broadcast");
        if r.recipients() == SINKS as u64 && r.unacknowledged == 0 {
            warm = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(warm, "the remote instances did not subscribe");
    let mut acked = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let r = cluster.broadcast(&target, msg.clone()).expect("broadcast");
        acked.push(t.elapsed());
        assert_eq!(r.recipients(), SINKS as u64, "{r:?}");
        // Let the delivery tasks finish this round's no-op callbacks.
        std::thread::sleep(Duration::from_millis(2));
    }
    acked.sort();
    let mut plain = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        m.registry()
            .broadcast(&target, msg.clone())
            .expect("broadcast");
        plain.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(2));
    }
    plain.sort();
    println!(
        "cluster: broadcast to {SINKS} no-op sinks over 3 instances in 3 processes (one loopback redis-server; {local} local, {per} on each remote): acknowledged by both remote instances p50 {:.0} us, p99 {:.0} us (from the call to the last acknowledgement, sent once a remote fan-out has queued for all its sinks); a plain broadcast (no wait) costs the caller p50 {:.0} us, p99 {:.0} us ({ROUNDS} rounds each)",
        pct(&acked, 50),
        pct(&acked, 99),
        pct(&plain, 50),
        pct(&plain, 99),
    );
    let _ = m.close(Duration::from_secs(5));
    for mut c in children {
        drop(c.stdin.take());
        let _ = c.wait();
    }
    let _ = redis.kill();
    let _ = redis.wait();
}

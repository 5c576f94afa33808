//! The WebSocket hub (issue 11) against its peers, one JSON line per measurement:
//!
//! - `fanout`: one broadcast of `M` messages to `N` (10,000) real WebSocket clients on
//!   loopback, messages delivered per second, for switchboard's hub and two peers that
//!   receive the same load in the same run: Node's `ws` server with a `Set` of sockets
//!   (bench/hub_peer_ws.js) and Python's `websockets` server with a dict of sets
//!   (bench/hub_peer_websockets.py, seed 004's design). The clients are this binary in
//!   a second process (`hub gen ...`, tokio-tungstenite), the same for every server.
//! - `idle_memory`: the server process's resident memory per idle connected client.
//! - `metrics_scrape`: `GET /metrics` on a manager with 100 pools and 10,000 registered
//!   connections.
//!
//! `cargo bench --bench hub` (bench/run.sh passes the peers' commands in
//! `HUB_NODE`, `HUB_PYTHON`; a peer whose command is missing is reported as skipped).

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use switchboard_core::registry::{Message, Registration, Target};
use switchboard_core::{Config, Manager};
use tokio_tungstenite::tungstenite::Message as WsMessage;

/// Clients (`HUB_CLIENTS` for a quick run).
fn clients() -> usize {
    std::env::var("HUB_CLIENTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000)
}
const MESSAGES: usize = 10;
const ROUNDS: usize = 5;
const SIZE: usize = 100;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn payload() -> String {
    let pad = "x".repeat(SIZE.saturating_sub(40));
    format!("{{\"type\":\"data\",\"topic\":\"bench\",\"data\":\"{pad}\"}}")
}

/// The switchboard server: a manager with the hub on, broadcasting when a client
/// asks (`{"type":"bench","count":M}`), from a program thread as a user would.
fn switchboard_server() -> (Manager, String, std::thread::JoinHandle<()>) {
    let mut c = Config::new();
    for (k, v) in [
        ("server.listen", "127.0.0.1:0"),
        ("registry.max_total_connections", "0"),
        ("registry.max_connections_per_topic", "0"),
        ("registry.heartbeat_interval", "0"),
        ("registry.connection_timeout", "0"),
    ] {
        c.set(k, v).expect("bench config");
    }
    let m = Manager::new(&c).expect("manager");
    let addr = m.server_address().expect("server address").to_string();
    let hub = m.clone();
    let t = std::thread::spawn(move || {
        let msg = Message::text(&payload());
        let target = Target::topic("bench");
        while let Ok(next) = hub.hub().recv(Duration::from_secs(600)) {
            let Some(req) = next else { return };
            if req.kind == "bench" {
                let v: serde_json::Value = serde_json::from_str(&req.text).unwrap_or_default();
                let count = v["count"].as_u64().unwrap_or(1);
                for _ in 0..count {
                    let _ = hub.registry().broadcast(&target, msg.clone());
                }
            } else if req.kind == "quit" {
                return;
            }
        }
    });
    (m, addr, t)
}

/// A peer server started from `cmd` (it prints `PORT <n>` when listening).
fn peer(cmd: &str) -> Option<(Child, String)> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("exec {cmd}"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .ok()?;
    let out = child.stdout.take()?;
    let mut line = String::new();
    BufReader::new(out).read_line(&mut line).ok()?;
    let port = line.trim().strip_prefix("PORT ")?.to_string();
    Some((child, format!("127.0.0.1:{port}")))
}

/// Runs the client generator against `addr`, measuring `pid`'s memory once every
/// client is connected; prints the results as JSON lines tagged `server`.
fn drive(server: &str, addr: &str, pid: u32) {
    let before = rss_kib(pid);
    let n = clients();
    let exe = std::env::current_exe().expect("exe");
    let mut gen_proc = Command::new(exe)
        .args(["gen", addr, &n.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("generator");
    let mut stdin = gen_proc.stdin.take().expect("stdin");
    let stdout = BufReader::new(gen_proc.stdout.take().expect("stdout"));
    for line in stdout.lines() {
        let Ok(line) = line else { break };
        if line.starts_with("CONNECTED") {
            // Let the server settle (buffers released after the handshakes).
            std::thread::sleep(Duration::from_millis(500));
            let after = rss_kib(pid);
            let per = (after.saturating_sub(before) as f64) * 1024.0 / n as f64;
            println!(
                "{{\"bench\":\"hub\",\"op\":\"idle_memory\",\"server\":\"{server}\",\"clients\":{n},\"rss_before_kib\":{before},\"rss_after_kib\":{after},\"bytes_per_client\":{per:.0}}}"
            );
            let _ = writeln!(stdin, "GO");
            let _ = stdin.flush();
        } else if let Some(rest) = line.strip_prefix("RESULT ") {
            println!(
                "{{\"bench\":\"hub\",\"op\":\"fanout\",\"server\":\"{server}\",{}",
                rest.trim_start_matches('{')
            );
        }
    }
    drop(stdin);
    let _ = gen_proc.wait();
}

/// The generator process: `N` clients, then `ROUNDS` rounds of `MESSAGES` broadcasts.
fn generator(addr: &str, n: usize) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let received = Arc::new(AtomicU64::new(0));
        let notify = Arc::new(tokio::sync::Notify::new());
        let url = format!("ws://{addr}/ws?topics=bench");
        let sem = Arc::new(tokio::sync::Semaphore::new(64));
        let mut tasks = Vec::with_capacity(n);
        let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(n);
        let control = Arc::new(tokio::sync::Mutex::new(None));
        for i in 0..n {
            let (url, sem, received, notify, ready_tx, control) = (
                url.clone(),
                sem.clone(),
                received.clone(),
                notify.clone(),
                ready_tx.clone(),
                control.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let permit = sem.acquire_owned().await.expect("semaphore");
                let mut ws = None;
                for _ in 0..50 {
                    match tokio_tungstenite::connect_async(url.as_str()).await {
                        Ok((s, _)) => {
                            ws = Some(s);
                            break;
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
                let Some(ws) = ws else {
                    eprintln!("client {i} could not connect");
                    return;
                };
                let (tx, mut rx) = ws.split();
                // The first frame is the server's welcome.
                let _ = rx.next().await;
                drop(permit);
                if i == 0 {
                    *control.lock().await = Some(tx);
                } else {
                    drop(tx);
                }
                let _ = ready_tx.send(()).await;
                while let Some(Ok(f)) = rx.next().await {
                    if matches!(f, WsMessage::Text(_) | WsMessage::Binary(_)) {
                        received.fetch_add(1, Ordering::Relaxed);
                        notify.notify_one();
                    }
                }
            }));
        }
        drop(ready_tx);
        let t0 = Instant::now();
        for _ in 0..n {
            if ready_rx.recv().await.is_none() {
                break;
            }
        }
        println!("CONNECTED {:.2}", t0.elapsed().as_secs_f64());
        let mut line = String::new();
        let _ = tokio::task::spawn_blocking(move || {
            let _ = std::io::stdin().read_line(&mut line);
        })
        .await;
        let mut control = control.lock().await.take().expect("control client");
        let mut rates = Vec::new();
        for _ in 0..ROUNDS {
            let start = received.load(Ordering::Relaxed);
            let want = start + (n * MESSAGES) as u64;
            let t = Instant::now();
            control
                .send(WsMessage::Text(
                    format!("{{\"type\":\"bench\",\"count\":{MESSAGES}}}").into(),
                ))
                .await
                .expect("trigger");
            let deadline = t + Duration::from_secs(120);
            while received.load(Ordering::Relaxed) < want && Instant::now() < deadline {
                let _ = tokio::time::timeout(Duration::from_millis(50), notify.notified()).await;
            }
            let got = received.load(Ordering::Relaxed) - start;
            let secs = t.elapsed().as_secs_f64();
            rates.push(got as f64 / secs);
        }
        rates.sort_by(|a, b| a.total_cmp(b));
        let median = rates[rates.len() / 2];
        println!(
            "RESULT {{\"clients\":{n},\"messages_per_round\":{MESSAGES},\"rounds\":{ROUNDS},\"size\":{SIZE},\"delivered_per_s\":{median:.0},\"best_per_s\":{:.0}}}",
            rates[rates.len() - 1]
        );
        let _ = control
            .send(WsMessage::Text("{\"type\":\"quit\"}".into()))
            .await;
        for t in tasks {
            t.abort();
        }
    });
}

/// `GET /metrics` on 100 pools and 10,000 registered connections.
fn metrics_scrape() {
    let mut c = Config::new();
    c.set("server.listen", "127.0.0.1:0").expect("config");
    c.set("registry.max_total_connections", "0")
        .expect("config");
    c.set("registry.max_connections_per_topic", "0")
        .expect("config");
    let m = Manager::new(&c).expect("manager");
    let mut pools = Vec::new();
    for i in 0..100 {
        pools.push(
            m.pool(&format!("pool{i:03}"), "tcp://127.0.0.1:9", &Config::new())
                .expect("pool"),
        );
    }
    let mut outboxes = Vec::new();
    for i in 0..10_000 {
        let reg = Registration::new()
            .user(format!("u{}", i % 1000))
            .topics([format!("topic{}", i % 100)]);
        outboxes.push(m.registry().register_outbox(reg).expect("register"));
    }
    let addr = m.server_address().expect("address");
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..21 {
        let t = Instant::now();
        let mut s = std::net::TcpStream::connect(addr).expect("connect");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
            .expect("write");
        let mut body = Vec::new();
        s.read_to_end(&mut body).expect("read");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        bytes = body.len();
    }
    times.sort_by(|a, b| a.total_cmp(b));
    let t = Instant::now();
    let text = m.metrics_text();
    let direct = t.elapsed().as_secs_f64() * 1000.0;
    println!(
        "{{\"bench\":\"hub\",\"op\":\"metrics_scrape\",\"pools\":100,\"connections\":10000,\"http_ms_median\":{:.2},\"http_ms_max\":{:.2},\"metrics_text_ms\":{direct:.2},\"response_bytes\":{bytes},\"text_bytes\":{}}}",
        times[times.len() / 2],
        times[times.len() - 1],
        text.len()
    );
    drop(outboxes);
    m.close(Duration::from_secs(5)).expect("close");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("gen") {
        let n = args
            .get(2)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(clients);
        generator(&args[1], n);
        return;
    }
    let only = std::env::var("HUB_ONLY").unwrap_or_default();
    if only.is_empty() || only == "switchboard" {
        let (m, addr, t) = switchboard_server();
        drive("switchboard", &addr, std::process::id());
        m.hub().recv(Duration::ZERO).ok();
        m.close(Duration::from_secs(10)).expect("close");
        let _ = t.join();
    }
    for (name, var) in [("node_ws", "HUB_NODE"), ("python_websockets", "HUB_PYTHON")] {
        if !(only.is_empty() || only == name) {
            continue;
        }
        let Ok(cmd) = std::env::var(var) else {
            println!(
                "{{\"bench\":\"hub\",\"op\":\"fanout\",\"server\":\"{name}\",\"skipped\":\"{var} not set\"}}"
            );
            continue;
        };
        match peer(&cmd) {
            Some((mut child, addr)) => {
                drive(name, &addr, child.id());
                let _ = child.kill();
                let _ = child.wait();
            }
            None => println!(
                "{{\"bench\":\"hub\",\"op\":\"fanout\",\"server\":\"{name}\",\"skipped\":\"could not start\"}}"
            ),
        }
    }
    if only.is_empty() || only == "metrics" {
        metrics_scrape();
    }
}

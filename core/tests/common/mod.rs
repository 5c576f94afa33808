//! Loopback servers for the core's integration tests.
#![allow(dead_code)]

pub mod curl;
pub mod fault_proxy;
pub mod redis;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use switchboard_core::Config;

/// An echo server on a free loopback port, counting the connections it accepted.
/// A line `CLOSE\n` makes it close that connection (to simulate a peer going away).
pub struct EchoServer {
    pub port: u16,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

/// How the server answers a `PING\r\n` line (a Redis-style probe).
#[derive(Clone, Copy, PartialEq)]
pub enum Ping {
    /// Echo it like anything else.
    Echo,
    /// Answer `+PONG\r\n`.
    Pong,
    /// Answer `-ERR\r\n`.
    Err,
}

impl EchoServer {
    pub fn start() -> EchoServer {
        Self::start_with(Ping::Echo)
    }

    pub fn start_with(ping: Ping) -> EchoServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, s) = (accepted.clone(), stop.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                a.fetch_add(1, Ordering::SeqCst);
                thread::spawn(move || echo(conn, ping));
            }
        });
        EchoServer {
            port,
            accepted,
            stop,
        }
    }

    pub fn target(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn echo(mut conn: TcpStream, ping: Ping) {
    let mut buf = [0u8; 4096];
    loop {
        let n = match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if &buf[..n] == b"CLOSE\n" {
            return;
        }
        if &buf[..n] == b"PING\r\n" && ping != Ping::Echo {
            let answer: &[u8] = if ping == Ping::Pong {
                b"+PONG\r\n"
            } else {
                b"-ERR\r\n"
            };
            if conn.write_all(answer).is_err() {
                return;
            }
            continue;
        }
        if conn.write_all(&buf[..n]).is_err() {
            return;
        }
    }
}

/// A loopback port with nothing listening on it.
pub fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Polls `cond` every millisecond for at most `limit`.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + limit;
    while std::time::Instant::now() < end {
        if cond() {
            return true;
        }
        thread::sleep(Duration::from_millis(1));
    }
    cond()
}

/// A config with the given keys set (panics on a bad key: a test bug).
pub fn cfg(pairs: &[(&str, &str)]) -> Config {
    let mut c = Config::new();
    for (k, v) in pairs {
        c.set(k, v).unwrap();
    }
    c
}

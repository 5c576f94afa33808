//! The fault proxy (`tests/fixtures/fault_proxy.py`) for the Rust tests: a subprocess
//! between a client and a loopback server that refuses, resets, blackholes, delays,
//! closes after N bytes or flaps on command (its docstring lists the commands).
//!
//! ```ignore
//! let server = EchoServer::start();
//! let proxy = FaultProxy::start(server.port);
//! // point the pool at proxy.target() ...
//! proxy.command("refuse"); // panics unless the proxy answers "OK ..."
//! assert_eq!(proxy.stats().accepted, 0);
//! ```
//!
//! Dropping it closes the proxy's stdin (it then closes every connection and exits) and
//! waits up to 10 s, then kills it. `SB_PYTHON` picks the interpreter (default python3).

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

/// How long a command may take to be answered before [`FaultProxy::command`] fails.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// A running fault proxy; see the module docs.
pub struct FaultProxy {
    /// The loopback port the proxy listens on (the same one after `refuse` then `pass`).
    pub port: u16,
    child: Child,
    /// stdin to send commands, and the proxy's stdout lines (read by a thread).
    io: Mutex<Option<(ChildStdin, Receiver<String>)>>,
}

/// The answer to `stats`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyStats {
    /// Client connections accepted since the start (also those reset or blackholed).
    pub accepted: u64,
    /// Client connections open now.
    pub active: u64,
    /// `pass`, `refuse`, `reset`, `blackhole` or `flap`.
    pub mode: String,
}

/// The path of `tests/fixtures/fault_proxy.py`.
pub fn fault_proxy_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/fault_proxy.py")
}

impl FaultProxy {
    /// Starts a proxy in front of `127.0.0.1:upstream_port`; panics if it does not start
    /// within 30 s.
    pub fn start(upstream_port: u16) -> FaultProxy {
        Self::start_for(&format!("127.0.0.1:{upstream_port}"))
    }

    /// Starts a proxy in front of `upstream` ("HOST:PORT").
    pub fn start_for(upstream: &str) -> FaultProxy {
        let python = std::env::var("SB_PYTHON").unwrap_or_else(|_| "python3".into());
        let script = fault_proxy_script();
        let mut child = Command::new(&python)
            .arg(&script)
            .args(["--upstream", upstream])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {python} {}: {e}", script.display()));
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let first = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        let port = first
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse::<u16>().ok());
        let mut proxy = FaultProxy {
            port: 0,
            child,
            io: Mutex::new(Some((stdin, rx))),
        };
        match port {
            Some(port) => proxy.port = port,
            None => panic!("fault proxy did not start (first line {first:?})"),
        }
        proxy
    }

    /// `tcp://127.0.0.1:<port>`, for a pool's target.
    pub fn target(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    /// Sends one command line; returns the proxy's `OK ...` reply, or its `ERR ...`
    /// reply (or a description of the failure) as the error. Without a reply within
    /// [`REPLY_TIMEOUT`] the proxy is closed.
    pub fn try_command(&self, line: &str) -> Result<String, String> {
        let mut io = self.io.lock().unwrap_or_else(|e| e.into_inner());
        let Some((stdin, replies)) = io.as_mut() else {
            return Err(format!("command {line:?}: the proxy is closed"));
        };
        writeln!(stdin, "{}", line.trim())
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("command {line:?}: the proxy is gone ({e})"))?;
        match replies.recv_timeout(REPLY_TIMEOUT) {
            Ok(reply) if reply.starts_with("OK") => Ok(reply),
            Ok(reply) => Err(format!("command {line:?}: {reply}")),
            Err(e) => {
                // A late reply would answer the next command: this proxy is done (EOF on
                // its stdin makes it exit).
                *io = None;
                Err(format!(
                    "command {line:?}: no reply within {REPLY_TIMEOUT:?} ({e})"
                ))
            }
        }
    }

    /// Sends one command line and returns its `OK ...` reply; panics on anything else.
    pub fn command(&self, line: &str) -> String {
        self.try_command(line)
            .unwrap_or_else(|e| panic!("fault proxy: {e}"))
    }

    /// The `stats` answer, parsed.
    pub fn stats(&self) -> ProxyStats {
        let reply = self.command("stats");
        let mut stats = ProxyStats {
            accepted: 0,
            active: 0,
            mode: String::new(),
        };
        for word in reply.split_whitespace().skip(1) {
            match word.split_once('=') {
                Some(("accepted", v)) => stats.accepted = v.parse().expect("accepted=<n>"),
                Some(("active", v)) => stats.active = v.parse().expect("active=<n>"),
                Some(("mode", v)) => stats.mode = v.to_string(),
                _ => {}
            }
        }
        stats
    }

    /// Closes the proxy's stdin (it closes everything and exits) and waits for it, at
    /// most 10 s, then kills it. Returns whether it exited on its own with status 0.
    /// Safe to call more than once; `Drop` calls it.
    pub fn close(&mut self) -> bool {
        let taken = self.io.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(taken); // EOF on the proxy's stdin
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(Some(status)) => return status.success(),
                Ok(None) => thread::sleep(Duration::from_millis(10)),
                Err(_) => break,
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.close();
    }
}

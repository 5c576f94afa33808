//! The embedded server (issue 11) from Rust.
//!
//! The shared recipe (.notes/server-api.md, "The server test recipe"): a Rust program
//! starts the server on 127.0.0.1:0 with a token, a pool, a session key and the registry
//! auth hook, then runs the shared driver `tests/fixtures/server_client.py` (curl for the
//! admin routes, promtool, grpcio, 100 WebSocket clients) with `$SB_TEST_PYTHON`, and
//! answers the driver's `broadcast` / `advance` (advance_clock, then registry.cleanup())
//! commands pulled from the hub.
//!
//! Then what only Rust checks: a non-loopback bind without a token is refused, TLS with a
//! self-signed certificate (the `openssl` CLI) and `curl --cacert`, a port in use, the
//! open (token-less) loopback server, and hub clients closed with 1001 by the manager's
//! close (tokio-tungstenite clients).

mod common;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use common::curl::curl;
use common::{EchoServer, cfg, wait_until};
use switchboard_core::envelope;
use switchboard_core::registry::{AuthGrant, Authenticator, ConnId, Message, Target};
use switchboard_core::{Code, Config, Manager};

const TOKEN: &str = "secret-token";
const DRIVER_LIMIT: Duration = Duration::from_secs(240);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("core/ sits in the repository")
        .to_path_buf()
}

/// The python that runs the driver: `$SB_TEST_PYTHON`, else build/venv/bin/python.
fn python() -> PathBuf {
    let p = std::env::var_os("SB_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("build/venv/bin/python"));
    assert!(
        p.exists(),
        "the server test runs tests/fixtures/server_client.py with SB_TEST_PYTHON, and {} does not exist: \
         run `make server-tools` (build/venv with websockets, grpcio and grpcio-tools, and build/prometheus), \
         or set SB_TEST_PYTHON to a python that has them",
        p.display()
    );
    p
}

/// The recipe's auth hook: token `tok-<user>` is user `<user>`; topic `forbidden` is
/// refused to everyone.
struct Tokens;

impl Authenticator for Tokens {
    fn authenticate(&self, token: &str) -> Result<AuthGrant, String> {
        match token.strip_prefix("tok-") {
            Some(user) if !user.is_empty() => Ok(AuthGrant {
                user: Some(user.to_string()),
                metadata: vec![("auth".into(), "token".into())],
            }),
            _ => Err("unknown token".into()),
        }
    }

    fn authorize_subscribe(&self, _: ConnId, _: Option<&str>, topic: &str) -> Result<(), String> {
        if topic == "forbidden" {
            return Err("topic forbidden is closed".into());
        }
        Ok(())
    }
}

/// What the program does with a hub message: the driver's commands.
fn act(m: &Manager, kind: &str, text: &str) {
    if kind != "data" {
        return;
    }
    let env = envelope::decode(text).expect("the hub hands over valid envelopes");
    let data = env.data.unwrap_or_default();
    match data["cmd"].as_str() {
        Some("broadcast") => {
            for k in 0..4 {
                let topic = format!("t{k}");
                let text =
                    envelope::encode("data", Some(&topic), Some(&format!("{{\"n\":{k}}}")), None)
                        .unwrap();
                m.registry()
                    .broadcast(&Target::topic(&topic), Message::text(&text))
                    .unwrap();
            }
            let fence = envelope::encode("fence", None, None, None).unwrap();
            m.registry()
                .broadcast(&Target::all(), Message::text(&fence))
                .unwrap();
        }
        Some("advance") => {
            let secs = data["seconds"]
                .as_f64()
                .expect("cmd advance names its seconds");
            m.advance_clock(Duration::from_secs_f64(secs)).unwrap();
            // The registry's pass runs on real time; run it at the new instant now.
            m.registry().cleanup().unwrap();
        }
        _ => {}
    }
}

/// The last `n` lines of the driver's output, for a failure message.
fn tail(out: &Mutex<Vec<String>>, n: usize) -> String {
    let lines = out.lock().unwrap();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[test]
fn the_shared_driver_against_a_rust_program() {
    // 1. The echo server and the manager.
    let echo = EchoServer::start();
    let m = Manager::new(&cfg(&[
        ("server.listen", "127.0.0.1:0"),
        ("server.token", TOKEN),
        ("runtime.clock", "manual"),
        ("registry.heartbeat_interval", "30s"),
        ("registry.connection_timeout", "90s"),
    ]))
    .unwrap();
    // 2. A pool on the echo server and the session key.
    let _pool = m.pool("echo", &echo.target(), &Config::new()).unwrap();
    assert!(m.sessions().register("telemetry", "race-1").unwrap());
    // 3. The auth hook.
    m.registry().set_authenticator(Some(Arc::new(Tokens)));
    // 4. A non-loopback bind without a token.
    let e = Manager::new(&cfg(&[("server.listen", "0.0.0.0:0")])).unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");

    // 5. The driver, answering its commands until it exits.
    let addr = m.server_address().expect("server.listen is set");
    assert_eq!(m.grpc_address(), Some(addr), "gRPC shares server.listen");
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
    let mut child = Command::new(python())
        .arg(repo().join("tests/fixtures/server_client.py"))
        .args(["--addr", &addr.to_string(), "--token", TOKEN])
        .args(["--echo", &format!("127.0.0.1:{}", echo.port)])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the driver");
    let out = Arc::new(Mutex::new(Vec::<String>::new()));
    let readers: Vec<_> = [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ]
    .into_iter()
    .map(|pipe| {
        let out = out.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                println!("driver: {line}");
                out.lock().unwrap().push(line);
            }
        })
    })
    .collect();
    let deadline = Instant::now() + DRIVER_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the driver still ran after {DRIVER_LIMIT:?}; its last lines:\n{}",
                tail(&out, 40)
            );
        }
        match m.hub().recv(Duration::from_millis(100)) {
            Ok(Some(msg)) => act(&m, &msg.kind, &msg.text),
            Ok(None) => {}
            Err(e) => panic!("hub.recv failed while the driver ran: {e}"),
        }
    };
    for r in readers {
        r.join().unwrap();
    }
    // 6. It passed; close.
    assert!(
        status.success(),
        "the driver failed ({status}); its last lines:\n{}",
        tail(&out, 40)
    );
    m.close(Duration::from_secs(5)).unwrap();
}

#[test]
fn a_non_loopback_bind_needs_a_token() {
    for keys in [
        &[("server.listen", "0.0.0.0:0")][..],
        &[("server.listen", "[::]:0")][..],
        &[
            ("server.listen", "127.0.0.1:0"),
            ("server.grpc_listen", "0.0.0.0:0"),
        ][..],
    ] {
        let e = Manager::new(&cfg(keys)).unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{keys:?}: {e}");
        assert!(e.message().contains("server.token"), "{keys:?}: {e}");
    }
    let e = Manager::new(&cfg(&[("server.listen", "not an address")])).unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    let e = Manager::new(&cfg(&[
        ("server.listen", "127.0.0.1:0"),
        ("server.tls_cert", "/nonexistent/cert.pem"),
    ]))
    .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "half a TLS pair: {e}");
}

#[test]
fn no_server_by_default() {
    let m = Manager::new(&Config::new()).unwrap();
    assert_eq!(m.server_address(), None);
    assert_eq!(m.grpc_address(), None);
    assert!(m.hub().recv(Duration::from_millis(10)).unwrap().is_none());
    m.close(Duration::from_secs(1)).unwrap();
    assert_eq!(
        m.hub().recv(Duration::ZERO).unwrap_err().code(),
        Code::Unavailable
    );
}

#[test]
fn a_port_in_use_is_unavailable() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let e = Manager::new(&cfg(&[("server.listen", &addr)])).unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e}");
    let port = taken.local_addr().unwrap().port().to_string();
    assert!(
        e.message().contains(&port),
        "the error names the port {port}: {e}"
    );
}

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let p = std::env::temp_dir().join(format!("sb-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn tls_with_a_self_signed_certificate() {
    let dir = TempDir::new("tls");
    let (cert, key) = (dir.0.join("cert.pem"), dir.0.join("key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("the openssl CLI (Debian package openssl)");
    assert!(
        made.status.success(),
        "openssl req: {}",
        String::from_utf8_lossy(&made.stderr)
    );
    let m = Manager::new(&cfg(&[
        ("server.listen", "0.0.0.0:0"),
        ("server.token", TOKEN),
        ("server.tls_cert", cert.to_str().unwrap()),
        ("server.tls_key", key.to_str().unwrap()),
    ]))
    .unwrap();
    let addr = m.server_address().unwrap();
    assert!(addr.ip().is_unspecified(), "{addr}");
    let port = addr.port();
    let cacert = cert.to_str().unwrap();
    let bearer = format!("Authorization: Bearer {TOKEN}");

    // By IP (the certificate names 127.0.0.1), HTTP/2 by ALPN.
    let url = format!("https://127.0.0.1:{port}/health");
    let (code, body, version) =
        curl(&["--cacert", cacert, "--http2", "-H", &bearer, &url]).unwrap();
    assert_eq!((code, body.as_str()), (200, r#"{"status":"ok"}"#));
    assert_eq!(version, "2", "ALPN h2");
    // By name, resolved to loopback; HTTP/1.1 works too.
    let resolve = format!("localhost:{port}:127.0.0.1");
    let url = format!("https://localhost:{port}/health");
    let (code, _, version) = curl(&[
        "--cacert",
        cacert,
        "--http1.1",
        "--resolve",
        &resolve,
        "-H",
        &bearer,
        &url,
    ])
    .unwrap();
    assert_eq!((code, version.as_str()), (200, "1.1"));
    // The token is still needed over TLS.
    let (code, body, _) = curl(&["--cacert", cacert, &url, "--resolve", &resolve]).unwrap();
    assert_eq!(code, 401, "{body}");
    assert!(body.contains("Unauthenticated"), "{body}");
    // Without the CA curl refuses the certificate; plain HTTP gets no answer.
    assert!(curl(&["-H", &bearer, &url, "--resolve", &resolve]).is_err());
    let plain = format!("http://127.0.0.1:{port}/health");
    assert!(
        !matches!(curl(&["-H", &bearer, &plain]), Ok((200, _, _))),
        "plain HTTP on the TLS port must not be served"
    );
    m.close(Duration::from_secs(5)).unwrap();
}

/// The open server (loopback, no token): reads are open, mutations need the token.
#[test]
fn a_loopback_server_without_a_token_refuses_mutations() {
    let m = Manager::new(&cfg(&[("server.listen", "127.0.0.1:0")])).unwrap();
    let base = format!("http://{}", m.server_address().unwrap());
    let (code, body, _) = curl(&[&format!("{base}/health")]).unwrap();
    assert_eq!((code, body.as_str()), (200, r#"{"status":"ok"}"#));
    let (code, body, _) = curl(&[&format!("{base}/registry/stats")]).unwrap();
    assert_eq!(code, 200, "{body}");
    let (code, body, _) = curl(&["-X", "POST", &format!("{base}/registry/cleanup")]).unwrap();
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains("\"PermissionDenied\"") && body.contains("server.token"),
        "{body}"
    );
    let (code, body, _) = curl(&[&format!("{base}/nope")]).unwrap();
    assert_eq!(code, 404, "{body}");
    m.close(Duration::from_secs(5)).unwrap();
}

async fn open_manager(keys: Vec<(&'static str, &'static str)>) -> Manager {
    tokio::task::spawn_blocking(move || Manager::new(&cfg(&keys)).unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_clients_get_1001_when_the_manager_closes() {
    let m = Arc::new(open_manager(vec![("server.listen", "127.0.0.1:0")]).await);
    let addr: SocketAddr = m.server_address().unwrap();
    let mut clients = Vec::new();
    for i in 0..5 {
        let url = if i == 0 {
            format!("ws://{addr}/ws?topics=news")
        } else {
            format!("ws://{addr}/ws")
        };
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let Some(Ok(Ws::Text(t))) = ws.next().await else {
            panic!("client {i}: no welcome");
        };
        let env = envelope::decode(&t).unwrap();
        assert_eq!(env.kind, "welcome", "{t}");
        let data = env.data.unwrap();
        assert!(data["user"].is_null(), "anonymous without a hook: {t}");
        assert!(data["connection_id"].as_u64().is_some(), "{t}");
        clients.push(ws);
    }
    // A message from a client reaches the program, with its connection id.
    clients[0]
        .send(Ws::text(
            r#"{"type":"chat","topic":"news","data":{"hi":1}}"#,
        ))
        .await
        .unwrap();
    let hub = m.hub().clone();
    let msg = tokio::time::timeout(Duration::from_secs(10), hub.next())
        .await
        .expect("the chat message within 10 s")
        .unwrap();
    assert_eq!(msg.kind, "chat");
    assert_eq!(msg.topic.as_deref(), Some("news"));
    assert!(msg.text.contains(r#""hi":1"#), "{}", msg.text);
    assert!(m.registry().contains(msg.connection_id));
    assert_eq!(m.registry().len(), 5);

    let closer = {
        let m = m.clone();
        tokio::task::spawn_blocking(move || m.close(Duration::from_secs(5)).unwrap())
    };
    let mut seen = Vec::new();
    for (i, mut ws) in clients.into_iter().enumerate() {
        let end = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match ws.next().await {
                    Some(Ok(Ws::Close(Some(f)))) => {
                        return format!("{} {}", u16::from(f.code), f.reason);
                    }
                    Some(Ok(Ws::Close(None))) => return "a close frame with no code".to_string(),
                    Some(Ok(_)) => continue,
                    other => return format!("no close frame: {other:?}"),
                }
            }
        })
        .await
        .unwrap_or_else(|_| "nothing within 10 s".to_string());
        seen.push(format!("client {i}: {end}"));
    }
    let want: Vec<String> = (0..seen.len())
        .map(|i| format!("client {i}: 1001 manager_closed"))
        .collect();
    assert_eq!(
        seen,
        want,
        "every hub client gets close code 1001 ({:?}) with the registry's reason",
        CloseCode::Away
    );
    closer.await.unwrap();
    // The server stopped with the manager.
    assert!(
        wait_until(Duration::from_secs(5), || TcpStream::connect(addr).is_err()),
        "{addr} still accepts connections after close"
    );
    assert_eq!(
        m.hub().recv(Duration::ZERO).unwrap_err().code(),
        Code::Unavailable
    );
}

//! The cluster (issue 12: shared breakers, cluster broadcast, membership, cluster-wide
//! list / disconnect / stats, resource status) with a real redis-server and three
//! managers in three processes: the shared scenarios of `tests/fixtures/cluster_driver.py`
//! (the same for C, Python and Node) drive three copies of this test binary, each run
//! as `child_process` with `SB_CLUSTER_CHILD=1`, speaking the driver's line protocol
//! (`.notes/cluster-api.md`) on stdin/stdout.
//!
//! Needs `redis-server` (`make test-rust` installs it when missing) and a Python 3
//! (`SB_TEST_PYTHON`, else `python3`) for the driver, which uses only its standard library.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard_core::registry::{Item, ListFilter, Message, Outbox, Registration, Target};
use switchboard_core::{AcquireOptions, Config, Error, Manager, Pool, TcpConnector};

fn error(e: &Error) -> Value {
    json!({"error": e.code().sb_name(), "message": e.message()})
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn ids(v: &Value) -> Vec<u64> {
    v.as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default()
}

fn target(v: &Value) -> Target {
    Target {
        all: v["all"].as_bool().unwrap_or(false),
        topics: strings(&v["topics"]),
        users: strings(&v["users"]),
        ids: ids(&v["ids"]),
        except: ids(&v["except"]),
    }
}

fn config(v: &Value) -> Result<Config, Error> {
    let mut c = Config::new();
    for (k, x) in v.as_object().into_iter().flatten() {
        c.set(k, x.as_str().unwrap_or_default())?;
    }
    Ok(c)
}

#[derive(Default)]
struct Child {
    manager: Option<Manager>,
    outboxes: HashMap<u64, Outbox>,
    pools: HashMap<String, Pool<TcpConnector>>,
}

impl Child {
    fn m(&self) -> Result<&Manager, Error> {
        self.manager
            .as_ref()
            .ok_or_else(|| Error::failed_precondition("start first"))
    }

    fn handle(&mut self, req: &Value) -> Result<Value, Error> {
        let op = req["op"].as_str().unwrap_or("");
        if op == "start" {
            let m = Manager::new(&config(&req["config"])?)?;
            let c = m
                .cluster()
                .ok_or_else(|| Error::failed_precondition("no cluster"))?;
            let r =
                json!({"node_id": c.node_id(), "number": c.node_number(), "joined": c.is_joined()});
            self.manager = Some(m);
            return Ok(r);
        }
        let m = self.m()?.clone();
        let cluster = m
            .cluster()
            .ok_or_else(|| Error::failed_precondition("no cluster"))?;
        Ok(match op {
            "register" => {
                let mut reg = Registration::new().topics(strings(&req["topics"]));
                if let Some(u) = req["user"].as_str() {
                    reg = reg.user(u);
                }
                let o = m.registry().register_outbox(reg)?;
                let id = o.id();
                self.outboxes.insert(id, o);
                json!({"id": id})
            }
            "drain" => {
                let id = req["id"].as_u64().unwrap_or(0);
                let o = self
                    .outboxes
                    .get(&id)
                    .ok_or_else(|| Error::not_found("no such outbox"))?;
                let mut out = Vec::new();
                for _ in 0..10_000 {
                    match o.try_next() {
                        Some(Item::Message(msg)) => {
                            out.push(msg.as_text().unwrap_or_default().to_string())
                        }
                        Some(_) => {}
                        None => break,
                    }
                }
                json!({"messages": out})
            }
            "broadcast" => {
                let t = target(&req["target"]);
                let msg = Message::text(req["data"].as_str().unwrap_or(""));
                if req["ack"].as_bool().unwrap_or(false) {
                    let r = cluster.broadcast(&t, msg)?;
                    let remote: serde_json::Map<String, Value> = r
                        .remote
                        .iter()
                        .map(|(n, c)| (n.clone(), json!(c)))
                        .collect();
                    json!({"local": r.local.recipients, "remote": remote, "unacknowledged": r.unacknowledged})
                } else {
                    json!({"local": m.registry().broadcast(&t, msg)?.recipients})
                }
            }
            "members" => {
                let mut names: Vec<String> =
                    cluster.members().into_iter().map(|x| x.node_id).collect();
                names.sort();
                json!({"joined": cluster.is_joined(), "members": names})
            }
            "list" => {
                let f = &req["filter"];
                let filter = ListFilter {
                    user: f["user"].as_str().map(String::from),
                    topic: f["topic"].as_str().map(String::from),
                    limit: f["limit"].as_u64().unwrap_or(0) as usize,
                    cursor: f["cursor"].as_u64(),
                    ..ListFilter::default()
                };
                let r = cluster.list(&filter)?;
                json!({
                    "ids": r.connections.iter().map(|(_, c)| c.id).collect::<Vec<_>>(),
                    "nodes": r.connections.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
                    "next_cursor": r.next_cursor,
                    "answered": r.answered.nodes,
                    "missing": r.answered.missing,
                })
            }
            "disconnect" => {
                let r = cluster.disconnect(
                    &target(&req["target"]),
                    req["reason"].as_str().unwrap_or(""),
                )?;
                let by: serde_json::Map<String, Value> = r
                    .by_node
                    .iter()
                    .map(|(n, c)| (n.clone(), json!(c)))
                    .collect();
                json!({"total": r.total, "by_node": by, "missing": r.answered.missing})
            }
            "stats" => {
                let r = cluster.stats()?;
                let by: serde_json::Map<String, Value> = r
                    .by_node
                    .iter()
                    .map(|(n, s)| (n.clone(), json!(s.connections)))
                    .collect();
                json!({"connections": r.total.connections, "by_node": by, "missing": r.answered.missing})
            }
            "pool" => {
                let name = req["name"].as_str().unwrap_or("");
                let p = m.pool(
                    name,
                    req["target"].as_str().unwrap_or(""),
                    &config(&req["config"])?,
                )?;
                self.pools.insert(name.to_string(), p);
                json!({})
            }
            "acquire" | "pool_stats" | "breaker" => {
                let p = self
                    .pools
                    .get(req["pool"].as_str().unwrap_or(""))
                    .ok_or_else(|| Error::not_found("no such pool"))?;
                match op {
                    "acquire" => {
                        drop(p.acquire_blocking(AcquireOptions::default())?);
                        json!({})
                    }
                    "pool_stats" => {
                        let s = p.stats();
                        json!({"connect_failed_total": s.connect_failed_total, "created_total": s.created_total, "rejected_total": s.rejected_total})
                    }
                    _ => json!({"state": p.breaker_state(None)?.as_str()}),
                }
            }
            "resource" => {
                let props: Vec<(String, String)> = req["props"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect();
                let props: Vec<(&str, &str)> = props
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                m.resources().create(
                    req["id"].as_str().unwrap_or(""),
                    req["kind"].as_str().unwrap_or(""),
                    &props,
                )?;
                json!({})
            }
            "resource_status" => {
                let r = cluster.resource_status(req["id"].as_str().unwrap_or(""))?;
                let by: serde_json::Map<String, Value> = r
                    .by_node
                    .iter()
                    .map(|(n, s)| (n.clone(), json!(s)))
                    .collect();
                json!({"by_node": by, "missing": r.answered.missing})
            }
            "events" => {
                let mut out = Vec::new();
                while let Some(e) = m.poll_event(Duration::ZERO) {
                    out.push(format!(
                        "{}:{}",
                        e.kind.as_str(),
                        e.reason.unwrap_or_default()
                    ));
                }
                json!({"events": out})
            }
            _ => return Err(Error::invalid_argument(format!("unknown op {op}"))),
        })
    }
}

fn child() {
    let mut child = Child::default();
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout();
    for line in stdin.lock().lines().take(100_000) {
        let Ok(line) = line else { break };
        let req: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        if req["op"] == "close" {
            if let Some(m) = child.manager.take() {
                child.pools.clear();
                child.outboxes.clear();
                let _ = m.close(Duration::from_secs(5));
            }
            let _ = writeln!(stdout, "{{}}");
            let _ = stdout.flush();
            return;
        }
        let reply = child.handle(&req).unwrap_or_else(|e| error(&e));
        let _ = writeln!(stdout, "{reply}");
        let _ = stdout.flush();
    }
}

/// The child's entry point; a no-op when run as a test of its own.
#[test]
fn child_process() {
    if std::env::var("SB_CLUSTER_CHILD").is_ok() {
        child();
    }
}

#[test]
fn three_instances_share_breakers_broadcasts_membership_and_admin() {
    let python = std::env::var("SB_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let driver = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/cluster_driver.py");
    let me = std::env::current_exe().unwrap();
    let out = Command::new(python)
        .arg(driver)
        .arg("--")
        .arg(me)
        .args([
            "--exact",
            "child_process",
            "--nocapture",
            "--test-threads=1",
            "-q",
        ])
        .env("SB_CLUSTER_CHILD", "1")
        .output()
        .expect("the cluster driver (python3)");
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the cluster driver failed:\n{text}");
    assert!(text.contains("all cluster checks passed"));
}

#[test]
fn no_cluster_without_a_url_and_bad_settings_are_refused() {
    let m = Manager::new(&Config::new()).unwrap();
    assert!(m.cluster().is_none());
    m.close(Duration::from_secs(5)).unwrap();
    let e = Manager::new(&common::cfg(&[("cluster.redis_url", "http://nope")])).unwrap_err();
    assert_eq!(e.code(), switchboard_core::Code::InvalidArgument);
    assert!(e.message().contains("cluster.redis_url"), "{e}");
    let e = Config::new()
        .set("cluster.request_timeout", "soon")
        .unwrap_err();
    assert_eq!(e.code(), switchboard_core::Code::InvalidArgument);
    let e = Manager::new(&common::cfg(&[
        ("cluster.redis_url", "redis://127.0.0.1:1/0"),
        ("cluster.request_timeout", "0"),
    ]))
    .unwrap_err();
    assert!(e.message().contains("cluster.request_timeout"), "{e}");
}

#[test]
fn an_unreachable_redis_leaves_the_instance_serving_locally() {
    let port = common::dead_port();
    let m = Manager::new(&common::cfg(&[
        ("cluster.redis_url", &format!("redis://127.0.0.1:{port}/0")),
        ("cluster.node_id", "alone"),
        ("cluster.request_timeout", "200ms"),
    ]))
    .unwrap();
    let c = m.cluster().unwrap();
    assert!(!c.is_joined());
    let lost = common::wait_until(Duration::from_secs(5), || {
        m.poll_event(Duration::from_millis(50))
            .is_some_and(|e| e.kind.as_str() == "cluster_lost")
    });
    assert!(lost, "a cluster_lost event");
    let o = m
        .registry()
        .register_outbox(Registration::new().topics(["t"]))
        .unwrap();
    assert_ne!(o.id() >> 32, 0, "ids carry a node number even when alone");
    let r = m
        .registry()
        .broadcast(&Target::topic("t"), Message::text("x"))
        .unwrap();
    assert_eq!(r.recipients, 1);
    let l = c.list(&ListFilter::default()).unwrap();
    assert_eq!(l.connections.len(), 1);
    assert_eq!(l.answered.nodes, vec!["alone".to_string()]);
    m.close(Duration::from_secs(5)).unwrap();
}

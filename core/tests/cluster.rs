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

/// The admin API's `?scope=cluster` and `GET /cluster` (two instances in this process
/// on one Redis; the three-process scenarios are the driver's), through curl.
#[test]
fn the_admin_api_answers_for_the_cluster() {
    use common::curl::curl;
    let redis = common::redis::Redis::start(common::dead_port(), None);
    let name = format!("sbadmin{}", std::process::id());
    let node = |id: &str, listen: bool| {
        let mut keys = vec![
            ("cluster.redis_url", redis.url()),
            ("cluster.name", name.clone()),
            ("cluster.node_id", id.to_string()),
            ("cluster.heartbeat_interval", "100ms".to_string()),
        ];
        if listen {
            keys.push(("server.listen", "127.0.0.1:0".to_string()));
            keys.push(("server.token", "s3cret".to_string()));
        }
        let keys: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (*k, v.as_str())).collect();
        Manager::new(&common::cfg(&keys)).unwrap()
    };
    let (a, b) = (node("admin-a", true), node("admin-b", false));
    let both = |m: &Manager| m.cluster().unwrap().members().len() == 2;
    assert!(common::wait_until(Duration::from_secs(10), || both(&a) && both(&b)));
    let on_b = b
        .registry()
        .register_outbox(Registration::new().user("bo").topics(["room"]))
        .unwrap();
    a.registry()
        .register_outbox(Registration::new().topics(["room"]))
        .unwrap();
    let subscribed = || {
        redis
            .command(&["PUBSUB", "NUMSUB", &format!("{name}:t:room")])
            .contains(":2\r\n")
    };
    assert!(common::wait_until(Duration::from_secs(10), subscribed));
    let base = format!("http://{}", a.server_address().unwrap());
    let auth = "Authorization: Bearer s3cret";
    let get = |path: &str| -> (u16, Value) {
        let (code, body, _) = curl(&["-H", auth, &format!("{base}{path}")]).unwrap();
        (code, serde_json::from_str(&body).unwrap_or(Value::Null))
    };
    let text = a.metrics_text();
    assert!(
        text.contains("switchboard_cluster_joined{node=\"admin-a\"} 1"),
        "{text}"
    );
    assert!(text.contains("switchboard_cluster_members{node=\"admin-a\"} 2"));
    let (code, v) = get("/cluster");
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["node_id"], "admin-a");
    assert_eq!(v["members"].as_array().map(Vec::len), Some(2), "{v}");
    assert!(v["members"][0]["address"].as_str().is_some());
    let (code, v) = get("/registry/stats?scope=cluster");
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["total"]["connections"], 2, "{v}");
    assert_eq!(v["by_node"]["admin-b"]["connections"], 1, "{v}");
    assert_eq!(v["missing"], json!([]));
    let (_, v) = get("/registry/stats");
    assert_eq!(
        v["connections"], 1,
        "without scope: this instance only: {v}"
    );
    let (code, v) = get("/registry/connections?scope=cluster&user_id=bo");
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["connections"][0]["id"], on_b.id(), "{v}");
    assert_eq!(v["connections"][0]["node"], "admin-b", "{v}");
    let (code, v) = get("/registry/stats?scope=everywhere");
    assert_eq!(code, 400, "{v}");
    assert!(
        v.to_string().contains("scope must be local or cluster"),
        "{v}"
    );
    let post = |path: &str, body: &str| -> (u16, Value) {
        let (code, body, _) = curl(&[
            "-H",
            auth,
            "-H",
            "Content-Type: application/json",
            "-d",
            body,
            &format!("{base}{path}"),
        ])
        .unwrap();
        (code, serde_json::from_str(&body).unwrap_or(Value::Null))
    };
    let (code, v) = post(
        "/registry/broadcast?scope=cluster",
        r#"{"message_type":"news","topic":"room","data":1}"#,
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["recipients"], 1, "{v}");
    assert_eq!(v["remote"]["admin-b"], 1, "{v}");
    assert!(matches!(on_b.try_next(), Some(Item::Message(_))));
    let (code, v) = post("/registry/disconnect?scope=cluster", r#"{"user_id":"bo"}"#);
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        (v["disconnected"].clone(), v["by_node"]["admin-b"].clone()),
        (json!(1), json!(1)),
        "{v}"
    );
    let (code, v) = get("/connections/nothing?scope=cluster");
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        v["by_node"],
        json!({"admin-a": "absent", "admin-b": "absent"}),
        "{v}"
    );
    b.close(Duration::from_secs(5)).unwrap();
    a.close(Duration::from_secs(5)).unwrap();
    let alone = Manager::new(&common::cfg(&[("server.listen", "127.0.0.1:0")])).unwrap();
    let (code, body, _) = curl(&[&format!(
        "http://{}/registry/stats?scope=cluster",
        alone.server_address().unwrap()
    )])
    .unwrap();
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("cluster.redis_url"), "{body}");
    alone.close(Duration::from_secs(5)).unwrap();
}

/// A Redis that is slow (here: its writes paused by `CLIENT PAUSE ... WRITE`, which holds
/// PUBLISH and the heartbeat's script) but not gone: broadcasts meanwhile are bounded in
/// memory (at most 65,536 wait for the publisher; the rest reach this instance only and are
/// counted), and publishing resumes when Redis answers again. The pause ends by
/// `CLIENT UNPAUSE` after the broadcasts, so no step depends on how fast this machine is.
#[test]
fn a_slow_redis_bounds_the_publish_queue() {
    let redis = common::redis::Redis::start(common::dead_port(), None);
    let m = Manager::new(&common::cfg(&[
        ("cluster.redis_url", &redis.url()),
        ("cluster.node_id", "slowpoke"),
        ("registry.queue_full_policy", "drop_oldest"),
        ("cluster.request_timeout", "120s"),
        ("cluster.heartbeat_interval", "5s"),
    ]))
    .unwrap();
    let c = m.cluster().unwrap().clone();
    assert!(common::wait_until(Duration::from_secs(10), || c.is_joined()));
    let o = m
        .registry()
        .register_outbox(Registration::new().topics(["t"]))
        .unwrap();
    let counter = |m: &Manager, name: &str| -> u64 {
        m.metrics_text()
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0)
    };
    let failures = |m: &Manager| counter(m, "switchboard_cluster_publish_failures_total");
    let published = |m: &Manager| counter(m, "switchboard_cluster_messages_published_total");
    assert_eq!(failures(&m), 0);
    let paused =
        common::redis::Redis::command_on(redis.port, &["CLIENT", "PAUSE", "120000", "WRITE"]);
    assert!(paused.starts_with("+OK"), "{paused}");
    for i in 0..100_000 {
        m.registry()
            .broadcast(&Target::topic("t"), Message::text(&i.to_string()))
            .unwrap();
    }
    let dropped = failures(&m);
    assert!(
        dropped >= 100_000 - 65_536 - 256,
        "the queue is bounded: {dropped} publishes dropped"
    );
    assert!(dropped < 100_000, "the first 65,536 waited: {dropped}");
    let resumed = common::redis::Redis::command_on(redis.port, &["CLIENT", "UNPAUSE"]);
    assert!(resumed.starts_with("+OK"), "{resumed}");
    // The local fan-out went on (its queue keeps the newest 1,024).
    let mut got = 0;
    for _ in 0..200_000 {
        match o.try_next() {
            Some(Item::Message(_)) => got += 1,
            _ => break,
        }
    }
    assert!(
        got >= 1000,
        "the local fan-out was not affected ({got} queued)"
    );
    // Redis answers again: the queue drains (every broadcast was either published or
    // counted as not published) and a new broadcast is published.
    assert!(
        common::wait_until(Duration::from_secs(30), || published(&m) + failures(&m)
            >= 100_000),
        "the queue did not drain: {} published, {} not",
        published(&m),
        failures(&m)
    );
    let before = failures(&m);
    let r = c
        .broadcast(&Target::topic("t"), Message::text("after"))
        .unwrap();
    assert_eq!(r.unacknowledged, 0, "{r:?}");
    assert_eq!(failures(&m), before);
    m.close(Duration::from_secs(5)).unwrap();
}

//! The cluster's connections to Redis and the tasks that use them: the publisher
//! (one queue, sent in order and pipelined), the subscriber (one Pub/Sub connection
//! whose channels follow the registry's index, resubscribed after a reconnect) and
//! the heartbeat (membership, and the command connection's health).

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use super::settings::ClusterSettings;
use super::{Member, Node, Outgoing, Reply, SubChange, lock, wire};
use crate::error::{Error, Result};
use crate::events::EventBus;
use crate::registry::links::{FanOutRemote, IndexWatch, Key, MAX_NODE};
use crate::registry::{Message, Target};
use crate::runtime::RuntimeShared;

/// Adds this node to the member set, drops members silent for longer than the TTL
/// and returns the live ones (id, record, milliseconds since their heartbeat), all on
/// Redis's clock so that instances' clocks need not agree. It also keeps the node
/// counter at or above this node's number, so that after a wiped Redis a newcomer
/// does not take a live member's number.
const HEARTBEAT: &str = r"
local seq = tonumber(redis.call('GET', KEYS[3]) or '0')
if seq < tonumber(ARGV[4]) then redis.call('SET', KEYS[3], ARGV[4]) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
for _, id in ipairs(dead) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('HDEL', KEYS[2], id)
end
local live = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local out = {}
for i = 1, #live, 2 do
  out[#out + 1] = live[i]
  out[#out + 1] = redis.call('HGET', KEYS[2], live[i]) or '{}'
  out[#out + 1] = tostring(now - tonumber(live[i + 1]))
end
return out
";

fn config(s: &ClusterSettings) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(s.request_timeout)
        .set_response_timeout(s.request_timeout)
        .set_number_of_retries(1)
        .set_max_delay(1000)
}

async fn connect(node_client: &redis::Client, s: &ClusterSettings) -> Result<ConnectionManager> {
    let connecting = ConnectionManager::new_with_config(node_client.clone(), config(s));
    match tokio::time::timeout(s.request_timeout, connecting).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(Error::unavailable(format!("Redis at {}: {e}", s.url))),
        Err(_) => Err(Error::timeout(format!(
            "Redis at {} did not answer within cluster.request_timeout",
            s.url
        ))),
    }
}

pub(super) fn start(
    s: ClusterSettings,
    rt: Arc<RuntimeShared>,
    events: Arc<EventBus>,
) -> Result<Arc<Node>> {
    let client = redis::Client::open(s.url.as_str()).map_err(|e| {
        Error::invalid_argument(format!(
            "cluster.redis_url must be a Redis URL such as redis://127.0.0.1:6379/0, got \"{}\": {e}",
            s.url.escape_default()
        ))
    })?;
    // The first connect and the node number, before any connection id is made.
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let (c2, s2) = (client.clone(), s.clone());
    rt.spawn(async move {
        let got = async {
            let mut conn = connect(&c2, &s2).await?;
            let failed =
                |e: redis::RedisError| Error::unavailable(format!("Redis at {}: {e}", s2.url));
            // A number no live member has (the counter may have restarted with a wiped
            // Redis before every member's heartbeat raised it again).
            let mut n = 0;
            for _ in 0..8 {
                let next: u64 = redis::cmd("INCR")
                    .arg(s2.key("node_seq"))
                    .query_async(&mut conn)
                    .await
                    .map_err(failed)?;
                n = next % MAX_NODE + 1;
                let records: Vec<String> = redis::cmd("HVALS")
                    .arg(s2.key("member_info"))
                    .query_async(&mut conn)
                    .await
                    .map_err(failed)?;
                let taken = records.iter().any(|r| {
                    serde_json::from_str::<Value>(r).is_ok_and(|v| v["number"].as_u64() == Some(n))
                });
                if !taken {
                    break;
                }
            }
            Ok::<_, Error>((conn, n))
        }
        .await;
        let _ = tx.send(got);
    })?;
    let first = rx
        .recv_timeout(s.request_timeout + Duration::from_secs(1))
        .unwrap_or_else(|_| Err(Error::timeout("Redis did not answer")));
    let (conn, number, lost) = match first {
        Ok((conn, n)) => (Some(conn), n, None),
        // Unique enough until it rejoins: ids only need to differ from live members'.
        Err(e) => (
            None,
            (crate::random::unit() * MAX_NODE as f64) as u64 % MAX_NODE + 1,
            Some(e),
        ),
    };
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let (sub_tx, sub_rx) = mpsc::unbounded_channel();
    let (stop, _) = watch::channel(false);
    let node = Arc::new(Node {
        s,
        number,
        events,
        rt: rt.clone(),
        client,
        parts: Default::default(),
        conn: std::sync::Mutex::new(conn),
        address: Default::default(),
        cmd_ok: Default::default(),
        sub_ok: Default::default(),
        joined: Default::default(),
        ever_joined: Default::default(),
        members: Default::default(),
        out: out_tx,
        outgoing: Default::default(),
        subs: sub_tx,
        pending: Default::default(),
        seq: std::sync::atomic::AtomicU64::new(1),
        seen: Default::default(),
        stop,
        counters: Default::default(),
    });
    match lost {
        Some(e) => node.emit_lost(&format!("not reachable at start: {}", e.message())),
        None => node.cmd_ok.store(true, Ordering::SeqCst),
    }
    rt.spawn(publisher(node.clone(), out_rx))?;
    rt.spawn(subscriber(node.clone(), sub_rx))?;
    rt.spawn(heartbeat(node.clone()))?;
    Ok(node)
}

pub(super) fn stop(node: &Arc<Node>) {
    if node.stop.send_replace(true) {
        return;
    }
    // Leave at once rather than after three silent heartbeats (best effort).
    let Some(mut conn) = node.conn() else { return };
    let (members, info, id) = (
        node.s.key("members"),
        node.s.key("member_info"),
        node.s.node_id.clone(),
    );
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let spawned = node.rt.spawn(async move {
        let mut pipe = redis::pipe();
        pipe.cmd("ZREM")
            .arg(&members)
            .arg(&id)
            .cmd("HDEL")
            .arg(&info)
            .arg(&id);
        let leave = pipe.query_async::<()>(&mut conn);
        let _ = tokio::time::timeout(Duration::from_millis(500), leave).await;
        let _ = tx.send(());
    });
    if spawned.is_ok() && !node.rt.on_own_thread() {
        let _ = rx.recv_timeout(Duration::from_secs(1));
    }
}

/// The registry's index changes become subscriptions.
pub(super) struct Watch(pub(super) Arc<Node>);

impl IndexWatch for Watch {
    fn changed(&self, key: Key, present: bool) {
        let channel = match key {
            Key::Topic(t) => self.0.s.key(&format!("t:{t}")),
            Key::User(u) => self.0.s.key(&format!("u:{u}")),
        };
        let change = if present {
            SubChange::Add(channel)
        } else {
            SubChange::Remove(channel)
        };
        let _ = self.0.subs.send(change);
    }
}

/// Every local broadcast is published to the channels of its target.
pub(super) struct Remote(pub(super) Arc<Node>);

impl FanOutRemote for Remote {
    fn publish(&self, target: &Target, msg: &Message) {
        if self.0.is_joined() {
            publish_broadcast(&self.0, target, msg, None, None);
        }
    }
}

/// Publishes a broadcast frame (with `ack` asking for acknowledgements).
pub(super) fn publish_broadcast(
    node: &Node,
    target: &Target,
    msg: &Message,
    ack: Option<u64>,
    reply: Option<tokio::sync::oneshot::Sender<u64>>,
) {
    let channels = node.channels(target);
    if channels.is_empty() {
        if let Some(r) = reply {
            let _ = r.send(0);
        }
        return;
    }
    let mut head = json!({
        "k": "b",
        "o": node.number,
        "s": node.next_seq(),
        "t": wire::target(target),
        "x": msg.is_text(),
    });
    if let Some(a) = ack {
        head["a"] = json!(a);
    }
    node.send(Outgoing::Publish {
        channels,
        frame: Arc::new(wire::frame(&head, Some(msg.data()))),
        reply,
    });
}

async fn publisher(node: Arc<Node>, mut rx: mpsc::UnboundedReceiver<Outgoing>) {
    let mut stop = node.stop.subscribe();
    loop {
        let first = tokio::select! {
            o = rx.recv() => match o { Some(o) => o, None => return },
            _ = stop.changed() => return,
        };
        let mut batch = vec![first];
        while batch.len() < 256 {
            match rx.try_recv() {
                Ok(o) => batch.push(o),
                Err(_) => break,
            }
        }
        node.outgoing.fetch_sub(batch.len(), Ordering::AcqRel);
        let mut pipe = redis::pipe();
        let mut shape: Vec<usize> = Vec::with_capacity(batch.len());
        for o in &batch {
            match o {
                Outgoing::Publish {
                    channels, frame, ..
                } => {
                    for ch in channels {
                        pipe.cmd("PUBLISH").arg(ch).arg(frame.as_slice());
                    }
                    shape.push(channels.len());
                }
                Outgoing::Command(c) => {
                    pipe.add_command(c.clone()).ignore();
                    shape.push(0);
                }
            }
        }
        let counts: Option<Vec<u64>> = match node.conn() {
            Some(mut conn) => {
                match tokio::time::timeout(node.s.request_timeout, pipe.query_async(&mut conn))
                    .await
                {
                    Ok(Ok(v)) => Some(v),
                    _ => None,
                }
            }
            None => None,
        };
        let c = &node.counters;
        let mut at = 0;
        for (o, n) in batch.into_iter().zip(shape) {
            if let Outgoing::Publish { reply, .. } = o {
                let got = counts.as_ref().map(|v| {
                    v[at.min(v.len())..(at + n).min(v.len())]
                        .iter()
                        .sum::<u64>()
                });
                at += n;
                match got {
                    Some(_) => c.published.fetch_add(n as u64, Ordering::Relaxed),
                    None => c.publish_failed.fetch_add(n as u64, Ordering::Relaxed),
                };
                if let Some(r) = reply {
                    let _ = r.send(got.unwrap_or(0));
                }
            }
        }
    }
}

async fn subscriber(node: Arc<Node>, mut rx: mpsc::UnboundedReceiver<SubChange>) {
    let mut stop = node.stop.subscribe();
    let base = [
        node.s.key("all"),
        node.s.key("req"),
        node.s.key("breaker"),
        node.node_channel(node.number),
    ];
    let mut wanted: HashSet<String> = base.iter().cloned().collect();
    let mut pause = Duration::from_millis(50);
    loop {
        while let Ok(c) = rx.try_recv() {
            apply(&mut wanted, c);
        }
        let connecting =
            tokio::time::timeout(node.s.request_timeout, node.client.get_async_pubsub());
        let why = match connecting.await {
            Ok(Ok(ps)) => {
                let (mut sink, mut stream) = ps.split();
                let all: Vec<String> = wanted.iter().cloned().collect();
                match sink.subscribe(all).await {
                    Ok(()) => {
                        pause = Duration::from_millis(50);
                        node.set_link(false, true, "");
                        loop {
                            tokio::select! {
                                m = stream.next() => match m {
                                    Some(m) => receive(&node, m.get_channel_name(), m.get_payload_bytes()),
                                    None => break "the Redis subscription connection closed".to_string(),
                                },
                                c = rx.recv() => {
                                    let Some(c) = c else { return };
                                    let r = match &c {
                                        SubChange::Add(ch) if !wanted.contains(ch) => sink.subscribe(ch).await,
                                        SubChange::Remove(ch) if wanted.contains(ch) && !base.contains(ch) => sink.unsubscribe(ch).await,
                                        _ => Ok(()),
                                    };
                                    apply(&mut wanted, c);
                                    if let Err(e) = r {
                                        break format!("subscribing failed: {e}");
                                    }
                                },
                                _ = stop.changed() => return,
                            }
                        }
                    }
                    Err(e) => format!("subscribing failed: {e}"),
                }
            }
            Ok(Err(e)) => format!("Redis at {}: {e}", node.s.url),
            Err(_) => format!("Redis at {} did not answer", node.s.url),
        };
        node.set_link(false, false, &why);
        let jitter = pause.mul_f64(0.2 * crate::random::unit());
        tokio::select! {
            _ = tokio::time::sleep(pause + jitter) => {},
            _ = stop.changed() => return,
        }
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

fn apply(wanted: &mut HashSet<String>, c: SubChange) {
    match c {
        SubChange::Add(ch) => {
            wanted.insert(ch);
        }
        SubChange::Remove(ch) => {
            // The node's own channels stay; a topic's or user's goes.
            if !ch.contains(":n:") && !ch.ends_with(":all") {
                wanted.remove(&ch);
            }
        }
    }
}

fn member_record(node: &Node) -> String {
    let (connections, pools) = match node.parts() {
        Some(p) => (p.registry.len(), p.open_pools().len()),
        None => (0, 0),
    };
    json!({
        "number": node.number,
        "address": *lock(&node.address),
        "connections": connections,
        "pools": pools,
        "pid": std::process::id(),
    })
    .to_string()
}

async fn heartbeat(node: Arc<Node>) {
    let mut stop = node.stop.subscribe();
    let script = redis::Script::new(HEARTBEAT);
    let ttl = node.s.member_ttl();
    loop {
        if node.conn().is_none() {
            if let Ok(c) = connect(&node.client, &node.s).await {
                *lock(&node.conn) = Some(c);
            }
        }
        let result = match node.conn() {
            Some(mut conn) => {
                let mut call = script.prepare_invoke();
                call.key(node.s.key("members"))
                    .key(node.s.key("member_info"))
                    .arg(&node.s.node_id)
                    .arg(member_record(&node))
                    .key(node.s.key("node_seq"))
                    .arg(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
                    .arg(node.number);
                match tokio::time::timeout(
                    node.s.request_timeout,
                    call.invoke_async::<Vec<String>>(&mut conn),
                )
                .await
                {
                    Ok(Ok(v)) => Ok(v),
                    Ok(Err(e)) => Err(format!("Redis at {}: {e}", node.s.url)),
                    Err(_) => Err(format!(
                        "Redis at {} did not answer the heartbeat",
                        node.s.url
                    )),
                }
            }
            None => Err(format!("Redis at {} is unreachable", node.s.url)),
        };
        match result {
            Ok(flat) => {
                let members: Vec<Member> = flat
                    .chunks(3)
                    .filter(|c| c.len() == 3)
                    .map(|c| {
                        let rec: Value = serde_json::from_str(&c[1]).unwrap_or(Value::Null);
                        Member {
                            node_id: c[0].clone(),
                            number: rec["number"].as_u64().unwrap_or(0),
                            address: rec["address"].as_str().unwrap_or("").to_string(),
                            connections: rec["connections"].as_u64().unwrap_or(0),
                            pools: rec["pools"].as_u64().unwrap_or(0),
                            last_seen: Duration::from_millis(c[2].parse().unwrap_or(0)),
                            local: c[0] == node.s.node_id,
                        }
                    })
                    .collect();
                *lock(&node.members) = members;
                node.set_link(true, true, "");
            }
            Err(why) => node.set_link(true, false, &why),
        }
        let jitter = node.s.heartbeat.mul_f64(0.1 * crate::random::unit());
        tokio::select! {
            _ = tokio::time::sleep(node.s.heartbeat - jitter) => {},
            _ = stop.changed() => return,
        }
    }
}

/// One frame from a channel this node listens on.
fn receive(node: &Arc<Node>, _channel: &str, payload: &[u8]) {
    node.counters.received.fetch_add(1, Ordering::Relaxed);
    let Some((head, body)) = wire::split(payload) else {
        return;
    };
    let origin = head["o"].as_u64().unwrap_or(0);
    match head["k"].as_str() {
        Some("b") => {
            let ack = head["a"].as_u64();
            if origin == node.number {
                // Our own broadcast, back through a channel we listen on: dropped,
                // but counted for the waiter of an acknowledged one.
                if let Some(a) = ack {
                    super::requests::deliver(
                        node,
                        a,
                        Reply {
                            node: node.s.node_id.clone(),
                            body: Value::Null,
                            own: true,
                        },
                    );
                }
                return;
            }
            let seq = head["s"].as_u64().unwrap_or(0);
            let recipients = if node.first_sight(origin, seq) {
                let target = wire::target_from(&head["t"]);
                let msg = wire::message_from(body, head["x"].as_bool().unwrap_or(false));
                node.parts()
                    .and_then(|p| p.registry.fan_out_local(&target, &msg).ok())
                    .map_or(0, |r| r.recipients)
            } else {
                0
            };
            if let Some(a) = ack {
                let reply = json!({"k": "a", "i": a, "n": node.s.node_id, "r": recipients});
                node.send(Outgoing::Publish {
                    channels: vec![node.node_channel(origin)],
                    frame: Arc::new(wire::frame(&reply, None)),
                    reply: None,
                });
            }
        }
        Some("q") if origin != node.number => super::requests::answer(node, origin, head),
        Some("r") | Some("a") => {
            if let (Some(id), Some(n)) = (head["i"].as_u64(), head["n"].as_str()) {
                let body = if head["k"] == "a" {
                    json!({"recipients": head["r"]})
                } else {
                    head["v"].clone()
                };
                super::requests::deliver(
                    node,
                    id,
                    Reply {
                        node: n.to_string(),
                        body,
                        own: false,
                    },
                );
            }
        }
        Some("br") if origin != node.number => super::breakers::receive(node, &head),
        _ => {}
    }
}

//! Shared breaker state: an opening on one instance is published on `<name>:breaker`
//! and kept under `<name>:breaker:<pool>:<endpoint>` with its open wait as TTL (for
//! members that join, or rejoin, while it lasts); the others open that endpoint's
//! breaker without counting failures of their own and wait for the opener's verdict
//! (see [`crate::breaker::Breaker::remote_open`]). Counting windows and half-open
//! probing stay local.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Node, Outgoing, wire};
use crate::pool::{RemoteVerdict, SharedBreakers};

/// A pool's link to the cluster.
pub(super) struct Link(pub(super) Arc<Node>);

fn key(node: &Node, pool: &str, endpoint: &str) -> String {
    node.s.key(&format!("breaker:{pool}:{endpoint}"))
}

impl SharedBreakers for Link {
    fn opened(&self, pool: &str, endpoint: &str, wait: Duration) {
        let node = &self.0;
        let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
        let head = json!({"k": "br", "o": node.number, "n": node.s.node_id, "p": pool, "e": endpoint, "w": ms});
        let frame = wire::frame(&head, None);
        let mut set = redis::cmd("SET");
        set.arg(key(node, pool, endpoint))
            .arg(&frame)
            .arg("PX")
            .arg(ms);
        node.send(Outgoing::Command(set));
        node.send(Outgoing::Publish {
            channels: vec![node.s.key("breaker")],
            frame: Arc::new(frame),
            reply: None,
        });
    }

    fn closed(&self, pool: &str, endpoint: &str) {
        let node = &self.0;
        let head = json!({"k": "br", "o": node.number, "n": node.s.node_id, "p": pool, "e": endpoint, "w": null});
        let mut del = redis::cmd("DEL");
        del.arg(key(node, pool, endpoint));
        node.send(Outgoing::Command(del));
        node.send(Outgoing::Publish {
            channels: vec![node.s.key("breaker")],
            frame: Arc::new(wire::frame(&head, None)),
            reply: None,
        });
    }
}

/// Another member's verdict, applied to this instance's pool of that name (pools are
/// matched by name and endpoint as written in the target).
pub(super) fn receive(node: &Node, head: &Value) {
    let (Some(pool), Some(endpoint)) = (head["p"].as_str(), head["e"].as_str()) else {
        return;
    };
    let verdict = match head["w"].as_u64() {
        Some(ms) => RemoteVerdict::Opened(Duration::from_millis(ms)),
        None => RemoteVerdict::Closed,
    };
    apply(node, pool, endpoint, verdict);
}

fn apply(node: &Node, pool: &str, endpoint: &str, verdict: RemoteVerdict) {
    if !node.s.share_breakers {
        return;
    }
    if let Some(p) = node.parts().and_then(|parts| parts.pool(pool).ok()) {
        let _ = p.remote_breaker(endpoint, verdict);
    }
}

/// Reads the openings kept in Redis (all, or `pool`'s) and applies those of other
/// members with their time left: on joining, on rejoining, and for a new pool.
pub(super) fn resync(node: &Node, pool: Option<String>) {
    if !node.s.share_breakers || !node.is_joined() {
        return;
    }
    let Some(mut conn) = node.conn() else { return };
    let pattern = match &pool {
        Some(p) => key(node, p, "*"),
        None => node.s.key("breaker:*"),
    };
    let (number, timeout) = (node.number, node.s.request_timeout);
    let parts = node.parts.get().cloned();
    let share = node.s.share_breakers;
    let task = async move {
        let mut cursor: u64 = 0;
        for _ in 0..1000 {
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(100);
            let scan = cmd.query_async::<(u64, Vec<String>)>(&mut conn);
            let Ok(Ok((next, keys))) = tokio::time::timeout(timeout, scan).await else {
                return;
            };
            for k in keys {
                let mut pipe = redis::pipe();
                pipe.cmd("GET").arg(&k).cmd("PTTL").arg(&k);
                let got = pipe.query_async::<(Option<Vec<u8>>, i64)>(&mut conn);
                let Ok(Ok((Some(frame), ttl))) = tokio::time::timeout(timeout, got).await else {
                    continue;
                };
                let Some((head, _)) = wire::split(&frame) else {
                    continue;
                };
                if ttl <= 0 || head["o"].as_u64() == Some(number) || !share {
                    continue;
                }
                let (Some(p), Some(e)) = (head["p"].as_str(), head["e"].as_str()) else {
                    continue;
                };
                let parts = parts.as_ref().and_then(std::sync::Weak::upgrade);
                if let Some(pc) = parts.and_then(|x| x.pool(p).ok()) {
                    let wait = Duration::from_millis(ttl.unsigned_abs());
                    let _ = pc.remote_breaker(e, RemoteVerdict::Opened(wait));
                }
            }
            cursor = next;
            if cursor == 0 {
                return;
            }
        }
    };
    let _ = node.rt.spawn(task);
}

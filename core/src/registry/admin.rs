//! The operator's side of the registry: snapshots, paged listing with filters,
//! disconnect by target, statistics, and the heartbeat and stale-cleanup pass.

use std::collections::{BinaryHeap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::conn::{Conn, SinkKind, lock};
use super::types::{
    CleanupReport, ConnId, ConnInfo, ConnState, ListFilter, ListPage, RegistryStats, Target,
};
use super::{Inner, Registry};
use crate::error::{Error, Result};

const DEFAULT_PAGE: usize = 100;
/// The largest page a list returns, whatever the limit asked.
pub const MAX_PAGE: usize = 10_000;

impl Inner {
    fn state(&self, conn: &Conn, now: u64) -> ConnState {
        match self.settings.heartbeat {
            Some(hb)
                if now.saturating_sub(conn.last_seen_ns.load(Ordering::Relaxed)) >= nanos(hb) =>
            {
                ConnState::Idle
            }
            _ => ConnState::Active,
        }
    }

    pub(crate) fn info(&self, conn: &Conn, now: u64) -> ConnInfo {
        let q = lock(&conn.queue);
        let (queued_messages, queued_bytes, dropped) =
            (q.items.len() as u64, q.bytes as u64, q.dropped_total);
        drop(q);
        let seen = conn.last_seen_ns.load(Ordering::Relaxed);
        ConnInfo {
            id: conn.id,
            user: conn.user.as_deref().map(str::to_string),
            metadata: lock(&conn.meta)
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            topics: lock(&conn.topics).iter().map(|t| t.to_string()).collect(),
            state: self.state(conn, now),
            sink: match conn.sink {
                SinkKind::Callback(_) => "callback",
                SinkKind::Outbox(_) => "outbox",
            },
            age: Duration::from_nanos(now.saturating_sub(conn.created_ns)),
            idle: Duration::from_nanos(now.saturating_sub(seen)),
            queued_messages,
            queued_bytes,
            sent: conn.sent.load(Ordering::Relaxed),
            dropped,
            failed: conn.failed.load(Ordering::Relaxed),
        }
    }

    fn matches(&self, conn: &Conn, f: &ListFilter, now: u64) -> bool {
        if let Some(u) = &f.user {
            if conn.user.as_deref() != Some(u.as_str()) {
                return false;
            }
        }
        if let Some(t) = &f.topic {
            if !lock(&conn.topics).iter().any(|x| **x == **t) {
                return false;
            }
        }
        if let Some((k, v)) = &f.meta {
            if !lock(&conn.meta)
                .iter()
                .any(|(mk, mv)| **mk == **k && **mv == **v)
            {
                return false;
            }
        }
        if let Some(s) = f.state {
            if self.state(conn, now) != s {
                return false;
            }
        }
        if let Some(min) = f.min_idle {
            let idle = now.saturating_sub(conn.last_seen_ns.load(Ordering::Relaxed));
            if idle < nanos(min) {
                return false;
            }
        }
        true
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Registry {
    /// One page of the connections `filter` matches, in id order. Only the page is
    /// copied out: listing 50 of 100,000 walks the index (the topic's or user's own,
    /// when the filter names one) and snapshots 50. `limit` 0 means 100; at most
    /// 10,000 per page.
    pub fn list(&self, filter: &ListFilter) -> Result<ListPage> {
        self.check_open()?;
        let inner = &self.inner;
        let limit = match filter.limit {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        };
        let after = filter.cursor.unwrap_or(0);
        let now = inner.now_ns();
        // Collect limit + 1 matches to know whether there is a next page.
        let picked: Vec<Arc<Conn>> = {
            let ix = inner.read();
            let take = limit + 1;
            let scan_sorted = |iter: &mut dyn Iterator<Item = &Arc<Conn>>| -> Vec<Arc<Conn>> {
                // The smallest `take` ids above the cursor, from an unordered set.
                let mut heap: BinaryHeap<(ConnId, usize)> = BinaryHeap::new();
                let mut all: Vec<&Arc<Conn>> = Vec::new();
                for c in iter {
                    if c.id <= after || !inner.matches(c, filter, now) {
                        continue;
                    }
                    if heap.len() < take {
                        heap.push((c.id, all.len()));
                        all.push(c);
                    } else if heap.peek().is_some_and(|(top, _)| c.id < *top) {
                        heap.pop();
                        heap.push((c.id, all.len()));
                        all.push(c);
                    }
                }
                let mut v: Vec<(ConnId, usize)> = heap.into_vec();
                v.sort_unstable();
                v.into_iter().map(|(_, i)| all[i].clone()).collect()
            };
            if let Some(t) = &filter.topic {
                match ix.topics.get(t.as_str()) {
                    Some(m) => scan_sorted(&mut m.values()),
                    None => Vec::new(),
                }
            } else if let Some(u) = &filter.user {
                match ix.users.get(u.as_str()) {
                    Some(v) => scan_sorted(&mut v.iter()),
                    None => Vec::new(),
                }
            } else {
                ix.conns
                    .range(after.saturating_add(1)..)
                    .map(|(_, c)| c)
                    .filter(|c| inner.matches(c, filter, now))
                    .take(take)
                    .cloned()
                    .collect()
            }
        };
        let more = picked.len() > limit;
        let connections: Vec<ConnInfo> = picked
            .iter()
            .take(limit)
            .map(|c| inner.info(c, now))
            .collect();
        let next_cursor = if more {
            connections.last().map(|c| c.id)
        } else {
            None
        };
        Ok(ListPage {
            connections,
            next_cursor,
        })
    }

    /// Removes every connection `target` matches (minus its except set) for
    /// `reason` (empty: `disconnected`); returns how many. Each gets its close
    /// callback (or close item) with the reason, and an `unregistered` event.
    pub fn disconnect(&self, target: &Target, reason: &str) -> Result<u64> {
        self.check_open()?;
        if target.is_empty() {
            return Err(Error::invalid_argument(
                "a disconnect target must name at least one topic, user or connection id, or all",
            ));
        }
        let reason = if reason.is_empty() {
            "disconnected"
        } else {
            reason
        };
        let ids: Vec<ConnId> = {
            let ix = self.inner.read();
            let except: HashSet<ConnId> = target.except.iter().copied().collect();
            let mut ids: Vec<ConnId> = Vec::new();
            if target.all {
                ids.extend(ix.conns.keys().copied());
            } else {
                for t in &target.topics {
                    if let Some(m) = ix.topics.get(t.as_str()) {
                        ids.extend(m.keys().copied());
                    }
                }
                for u in &target.users {
                    if let Some(v) = ix.users.get(u.as_str()) {
                        ids.extend(v.iter().map(|c| c.id));
                    }
                }
                ids.extend(target.ids.iter().filter(|id| ix.conns.contains_key(id)));
            }
            ids.sort_unstable();
            ids.dedup();
            ids.retain(|id| !except.contains(id));
            ids
        };
        let mut n = 0;
        for id in ids {
            if self.inner.remove(
                id,
                reason,
                &format!("connection {id} disconnected: {reason}"),
            ) {
                n += 1;
            }
        }
        Ok(n)
    }

    /// The registry's statistics.
    pub fn stats(&self) -> Result<RegistryStats> {
        self.check_open()?;
        Ok(self.inner.stats())
    }

    /// Runs the heartbeat and cleanup pass now (the background pass runs it every
    /// `registry.cleanup_interval` / `registry.heartbeat_interval`, whichever is
    /// shorter): removes connections silent for `registry.connection_timeout` with
    /// reason `stale`, and asks for a ping on each connection not pinged for
    /// `registry.heartbeat_interval`.
    pub fn cleanup(&self) -> Result<CleanupReport> {
        self.check_open()?;
        Ok(self.sweep())
    }

    pub(crate) fn sweep(&self) -> CleanupReport {
        let inner = &self.inner;
        let s = &inner.settings;
        let now = inner.now_ns();
        let mut stale: Vec<ConnId> = Vec::new();
        let mut pinged = 0;
        let mut scheduled: Vec<Arc<Conn>> = Vec::new();
        {
            let ix = inner.read();
            for conn in ix.conns.values() {
                let seen = conn.last_seen_ns.load(Ordering::Relaxed);
                if s.timeout
                    .is_some_and(|t| now.saturating_sub(seen) >= nanos(t))
                {
                    stale.push(conn.id);
                    continue;
                }
                let Some(hb) = s.heartbeat else { continue };
                let last = conn.last_ping_ns.load(Ordering::Relaxed);
                if now.saturating_sub(last) >= nanos(hb) {
                    conn.last_ping_ns.store(now, Ordering::Relaxed);
                    if let Some(schedule) = conn.push_ping(s) {
                        pinged += 1;
                        if schedule {
                            scheduled.push(conn.clone());
                        }
                    }
                }
            }
        }
        inner.ready.push_all(&mut scheduled);
        let mut removed = 0;
        let timeout = s
            .timeout
            .map(crate::config::fmt_duration)
            .unwrap_or_default();
        for id in stale {
            if inner.remove(
                id,
                "stale",
                &format!(
                    "connection {id} removed: silent for registry.connection_timeout ({timeout})"
                ),
            ) {
                removed += 1;
            }
        }
        inner.expire_sends(now);
        inner.counters.cleanup_runs.fetch_add(1, Ordering::Relaxed);
        CleanupReport { removed, pinged }
    }
}

impl Inner {
    pub(crate) fn stats(&self) -> RegistryStats {
        let now = self.now_ns();
        let (connections, active, topic_counts, users) = {
            let ix = self.read();
            let active = ix
                .conns
                .values()
                .filter(|c| self.state(c, now) == ConnState::Active)
                .count() as u64;
            let mut topics: Vec<(String, u64)> = ix
                .topics
                .iter()
                .map(|(t, m)| (t.to_string(), m.len() as u64))
                .collect();
            topics.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            (ix.conns.len() as u64, active, topics, ix.users.len() as u64)
        };
        let c = &self.counters;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        RegistryStats {
            connections,
            active,
            topics: topic_counts.len() as u64,
            users,
            topic_counts,
            registered_total: load(&c.registered),
            broadcasts: load(&c.broadcasts),
            messages_queued: load(&c.queued),
            messages_sent: load(&c.sent),
            messages_dropped: load(&c.dropped),
            messages_failed: load(&c.failed),
            disconnects: lock(&c.disconnects).clone(),
            rejections: lock(&c.rejections).clone(),
            cleanup_runs: load(&c.cleanup_runs),
        }
    }
}

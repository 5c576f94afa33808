//! Broadcast: the fan-out of one message to every connection a target matches, under
//! the index's read lock, one push per recipient onto its bounded queue; what the
//! policy decided (drops, slow consumers to remove) is acted on after the lock is
//! released.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use super::Inner;
use super::conn::{Conn, Push};
use super::types::{BroadcastReport, ConnId, Message, SendOutcome, Target};
use crate::events::EventKind;

/// How many subscribers ahead the fan-out prefetches.
const PREFETCH_AHEAD: usize = 8;

/// A hint that `conn`'s record (its queue, which a push touches first) is needed soon.
#[inline(always)]
fn prefetch(conn: &Arc<Conn>) {
    #[cfg(target_arch = "x86_64")]
    {
        let p = Arc::as_ptr(conn).cast::<i8>();
        // SAFETY: a prefetch is only a hint: it never faults and reads nothing into
        // the program, and `p` points into a live allocation (the Arc is held by the
        // topic index, under its read lock).
        unsafe {
            std::arch::x86_64::_mm_prefetch(p, std::arch::x86_64::_MM_HINT_T0);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = conn;
}

impl Inner {
    /// The fan-out: one push per matched connection, under the index's read lock.
    pub(crate) fn fan_out(&self, target: &Target, msg: &Message) -> BroadcastReport {
        let start = Instant::now();
        let mut report = BroadcastReport::default();
        let mut slow: Vec<ConnId> = Vec::new();
        let mut failed: Vec<Arc<Conn>> = Vec::new();
        let mut overflowed: Vec<(ConnId, Option<Arc<str>>, &'static str)> = Vec::new();
        let mut scheduled: Vec<Arc<Conn>> = Vec::new();
        let except: Option<HashSet<ConnId>> =
            (target.except.len() > 8).then(|| target.except.iter().copied().collect());
        let excluded = |id: ConnId| match &except {
            Some(set) => set.contains(&id),
            None => target.except.contains(&id),
        };
        {
            let ix = self.read();
            let mut visit = |conn: &Arc<Conn>| {
                if excluded(conn.id) {
                    return;
                }
                report.recipients += 1;
                match conn.push(msg, &self.settings) {
                    Push::Queued {
                        schedule,
                        dropped_old,
                        overflow_began,
                    } => {
                        report.queued += 1;
                        report.dropped += dropped_old;
                        if schedule {
                            scheduled.push(conn.clone());
                        }
                        if overflow_began {
                            overflowed.push((conn.id, conn.user.clone(), "drop_oldest"));
                        }
                    }
                    Push::DroppedNew { overflow_began } => {
                        report.dropped += 1;
                        if overflow_began {
                            overflowed.push((
                                conn.id,
                                conn.user.clone(),
                                self.settings.policy.as_str(),
                            ));
                        }
                    }
                    Push::Disconnect => {
                        report.disconnected += 1;
                        slow.push(conn.id);
                    }
                    Push::Failed => failed.push(conn.clone()),
                    Push::Gone => report.recipients -= 1,
                }
            };
            let single_topic =
                target.topics.len() == 1 && target.users.is_empty() && target.ids.is_empty();
            if target.all {
                ix.conns.values().for_each(&mut visit);
            } else if single_topic {
                if let Some(m) = ix.topics.get(target.topics[0].as_str()) {
                    let subscribers = m.as_slice();
                    for i in 0..subscribers.len() {
                        // The subscribers are scattered over the heap: ask for the
                        // record a few places ahead while this one is pushed, so the
                        // fan-out does not wait on each cache miss in turn.
                        if let Some((_, ahead)) = subscribers.get_index(i + PREFETCH_AHEAD) {
                            prefetch(ahead);
                        }
                        if let Some((_, conn)) = subscribers.get_index(i) {
                            visit(conn);
                        }
                    }
                }
            } else {
                let mut seen: HashSet<ConnId> = HashSet::new();
                let mut once = |c: &Arc<Conn>| {
                    if seen.insert(c.id) {
                        visit(c);
                    }
                };
                for t in &target.topics {
                    if let Some(m) = ix.topics.get(t.as_str()) {
                        m.values().for_each(&mut once);
                    }
                }
                for u in &target.users {
                    if let Some(v) = ix.users.get(u.as_str()) {
                        v.iter().for_each(&mut once);
                    }
                }
                for id in &target.ids {
                    if let Some(c) = ix.conns.get(id) {
                        once(c);
                    }
                }
            }
        }
        self.ready.push_all(&mut scheduled);
        let c = &self.counters;
        c.broadcasts.fetch_add(1, Ordering::Relaxed);
        c.queued.fetch_add(report.queued, Ordering::Relaxed);
        if report.dropped > 0 {
            c.dropped.fetch_add(report.dropped, Ordering::Relaxed);
        }
        for conn in failed {
            self.record_outcome(
                &conn,
                SendOutcome::Failed("the outbox was closed by the program".into()),
                true,
            );
        }
        for (id, user, policy) in overflowed {
            self.emit(
                EventKind::SlowConsumer,
                id,
                user.map(|u| u.to_string()),
                None,
                Some(policy.to_string()),
                format!("connection {id}'s queue is full (registry.queue_max_messages {} / queue_max_bytes {}); policy {policy}", self.settings.queue_max_messages, self.settings.queue_max_bytes),
            );
        }
        for id in slow {
            let user = self
                .read()
                .conns
                .get(&id)
                .and_then(|c| c.user.as_deref().map(str::to_string));
            self.emit(
                EventKind::SlowConsumer,
                id,
                user,
                None,
                Some("disconnect".to_string()),
                format!("connection {id}'s queue is full; policy disconnect removes it"),
            );
            self.remove(
                id,
                "slow_consumer",
                &format!("connection {id} removed: its queue was full (slow consumer)"),
            );
        }
        report.elapsed = start.elapsed();
        report
    }
}

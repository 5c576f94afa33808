//! Sends in flight: a sink that returned Pending (a JS Promise, a Python coroutine)
//! holds its connection's turn until the binding reports the result, and a report
//! may even arrive before the sink has returned.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Inner;
use super::conn::{self, Conn, lock};
use super::types::{ConnId, SendOutcome};
use crate::error::{Error, Result};

impl Inner {
    /// A send of a sink that may pend begins: the connection is findable in
    /// `pending` until it is settled.
    pub(crate) fn begin_send(&self, conn: &Arc<Conn>, is_message: bool) {
        conn.begin_send(is_message);
        lock(&self.pending).insert(conn.id, conn.clone());
    }

    /// That send returned without pending.
    pub(crate) fn end_send(&self, conn: &Conn) {
        conn.end_send();
        lock(&self.pending).remove(&conn.id);
    }

    /// A sink returned Pending: the connection waits in `pending` for the report,
    /// unless the report came already (returned: the delivery task applies it).
    pub(crate) fn park(
        &self,
        conn: &Arc<Conn>,
        rest: Vec<conn::Queued>,
        is_message: bool,
    ) -> Option<std::result::Result<(), String>> {
        let early = conn.park(rest, is_message, self.now_ns());
        let mut pending = lock(&self.pending);
        if early.is_some() {
            pending.remove(&conn.id);
        } else {
            pending.insert(conn.id, conn.clone());
        }
        early
    }

    /// Successful reports of many connections: the pending table locked twice for
    /// the whole batch, one hand-over of those that have more to deliver.
    pub(crate) fn report_many_ok(&self, ids: &[ConnId]) -> usize {
        // Taken out first: a send that begins after a settle below puts its own entry.
        let conns: Vec<Arc<Conn>> = {
            let mut pending = lock(&self.pending);
            ids.iter().filter_map(|id| pending.remove(id)).collect()
        };
        let mut settled = 0;
        let mut again: Vec<Arc<Conn>> = Vec::new();
        let (mut sent, mut early) = (0, 0);
        for conn in conns {
            match conn.settle_report(&Ok(())) {
                conn::Report::Settled {
                    is_message,
                    schedule,
                } => {
                    settled += 1;
                    if is_message {
                        sent += 1;
                    }
                    self.record_outcome(&conn, SendOutcome::Sent, is_message);
                    if schedule {
                        again.push(conn);
                    }
                }
                // The delivery task applies it (and clears the entry).
                conn::Report::Early => early += 1,
                conn::Report::NothingInFlight => {}
            }
        }
        self.counters.sent.fetch_add(sent, Ordering::Relaxed);
        self.ready.push_all(&mut again);
        settled + early
    }

    pub(crate) fn report(&self, id: ConnId, result: std::result::Result<(), String>) -> Result<()> {
        // Taken out first: a send that begins after the settle below puts its own.
        let parked = lock(&self.pending).remove(&id);
        let conn = match parked {
            Some(c) => c,
            None => self.conn(id)?,
        };
        match conn.settle_report(&result) {
            conn::Report::Early => Ok(()),
            conn::Report::NothingInFlight => match result {
                // A binding that reports only failures of what it treated as sent.
                Err(why) => {
                    self.record_outcome(&conn, SendOutcome::Failed(why), false);
                    Ok(())
                }
                Ok(()) => Err(Error::not_found(format!(
                    "connection {id} has no send in flight (it was reported already, or never pending)"
                ))),
            },
            conn::Report::Settled {
                is_message,
                schedule,
            } => {
                let outcome = match result {
                    Ok(()) => {
                        if is_message {
                            self.counters.sent.fetch_add(1, Ordering::Relaxed);
                        }
                        SendOutcome::Sent
                    }
                    Err(why) => SendOutcome::Failed(why),
                };
                self.record_outcome(&conn, outcome, is_message);
                if schedule {
                    self.ready.push(conn);
                }
                Ok(())
            }
        }
    }

    /// Settles as failed every send in flight for longer than `registry.send_timeout`
    /// (a JS Promise or a coroutine that never finishes would otherwise hold its
    /// connection's turn, and its close, for ever). Run by the cleanup pass.
    pub(crate) fn expire_sends(&self, now_ns: u64) -> usize {
        let Some(limit) = self.settings.send_timeout else {
            return 0;
        };
        let limit_ns = u64::try_from(limit.as_nanos()).unwrap_or(u64::MAX);
        let deadline = now_ns.saturating_sub(limit_ns);
        let late: Vec<ConnId> = lock(&self.pending)
            .values()
            .filter(|c| c.in_flight_before(deadline))
            .map(|c| c.id)
            .collect();
        let why = format!(
            "the send did not finish within registry.send_timeout ({})",
            crate::config::fmt_duration(limit)
        );
        late.iter()
            .filter(|id| self.report(**id, Err(why.clone())).is_ok())
            .count()
    }
}

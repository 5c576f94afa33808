//! Committed offsets: commit (never backwards), seek (the explicit rewind), and the
//! store behind them.

use std::sync::atomic::Ordering;

use super::{OffsetKey, Sessions, non_negative};
use crate::error::{Error, Result};
use crate::events::EventKind;

impl Sessions {
    /// Commits `offset` for `stream` of session `id`: the offset the stream may resume
    /// from. Written to the offset store before it returns (durably with a durable
    /// store and `offsets.sync = every_commit`).
    ///
    /// Commits never go backwards: `offset` must be at least the stream's last commit
    /// in this session, or, before the first, the offset the stream started at (open,
    /// resume, add_stream) or was last [`Sessions::seek`]ed to; otherwise
    /// FailedPrecondition. InvalidArgument for a negative offset, NotFound for an
    /// unknown session or stream, Io when the store cannot write. Failures after the
    /// stream was found emit [`EventKind::CommitFailed`]. The offset is not bounded by
    /// the position (like Kafka, the program may commit what it tracks itself).
    pub fn commit(&self, id: u64, stream: &str, offset: i64) -> Result<()> {
        self.check_open()?;
        non_negative("offset", offset)?;
        let s = self.session(id)?;
        let st = s
            .stream(stream)
            .ok_or_else(|| Self::stream_not_found(id, stream))?;
        let result = {
            let _g = s.commit_lock.lock().unwrap_or_else(|p| p.into_inner());
            let floor = st.floor.load(Ordering::Acquire);
            if offset < floor {
                let last = st.committed.load(Ordering::Acquire);
                let why = if last == floor {
                    format!("the last commit of session {id} on it is {floor}")
                } else {
                    format!("it started (or was last seeked) at {floor}")
                };
                Err(Error::failed_precondition(format!(
                    "commit of stream \"{stream}\" at {offset} would go backwards: {why}; call seek(\"{stream}\", {offset}) first to rewind on purpose"
                )))
            } else {
                let r = self.store.put(&[(
                    OffsetKey {
                        data_source: &s.key.data_source,
                        session_key: &s.key.session_key,
                        stream,
                    },
                    offset,
                )]);
                if r.is_ok() {
                    st.committed.store(offset, Ordering::Release);
                    st.floor.store(offset, Ordering::Release);
                }
                r
            }
        };
        if let Err(e) = &result {
            self.emit(
                EventKind::CommitFailed,
                id,
                Some(stream),
                format!("commit of stream \"{stream}\" of session {id} at {offset} failed: {e}"),
            );
        }
        result
    }

    /// Moves `stream`'s position to `offset` and allows the next commit to go as low
    /// as `offset` (the explicit way to rewind). Stores nothing.
    pub fn seek(&self, id: u64, stream: &str, offset: i64) -> Result<()> {
        self.check_open()?;
        non_negative("offset", offset)?;
        let s = self.session(id)?;
        let st = s
            .stream(stream)
            .ok_or_else(|| Self::stream_not_found(id, stream))?;
        let _g = s.commit_lock.lock().unwrap_or_else(|p| p.into_inner());
        st.position.store(offset, Ordering::Release);
        st.floor.store(offset, Ordering::Release);
        Ok(())
    }

    /// The offset committed in the store for `stream` of `data_source` /
    /// `session_key`, whether or not a session is open on it.
    pub fn committed(
        &self,
        data_source: &str,
        session_key: &str,
        stream: &str,
    ) -> Result<Option<i64>> {
        self.check_open()?;
        self.store.get(&OffsetKey {
            data_source,
            session_key,
            stream,
        })
    }

    /// Writes out commits buffered by `offsets.sync = interval` now.
    pub fn flush(&self) -> Result<()> {
        self.check_open()?;
        self.store.flush()
    }

    /// The offset store's kind: `memory` or `durable`.
    pub fn store_kind(&self) -> &'static str {
        self.store.kind()
    }

    /// Commits accepted but not yet written to disk (only with `offsets.sync =
    /// interval`; 0 otherwise). The background flush brings it back to 0 every
    /// `offsets.sync_interval`.
    pub fn buffered_commits(&self) -> usize {
        self.store.buffered()
    }
}

//! Offset stores: where committed offsets live.
//!
//! [`OffsetStore`] is the trait; [`MemoryStore`] (the default) keeps offsets for the
//! life of the process, [`DurableStore`] keeps them in an embedded crash-safe database
//! (redb) at `offsets.path`, so that a session resumes where it committed even after
//! the process was killed. A Redis store can implement the same trait later, so that a
//! session can resume on another instance.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, RwLock};

use redb::{Database, TableDefinition};

use crate::error::{Code, Error, Result};

/// The address of one committed offset: a stream of a data source's session key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OffsetKey<'a> {
    /// The data source.
    pub data_source: &'a str,
    /// The session key within the data source.
    pub session_key: &'a str,
    /// The stream.
    pub stream: &'a str,
}

type OwnedKey = (String, String, String);

fn owned(k: &OffsetKey<'_>) -> OwnedKey {
    (
        k.data_source.to_string(),
        k.session_key.to_string(),
        k.stream.to_string(),
    )
}

/// Where committed offsets are kept. Implementations must be safe to call from many
/// threads at once.
pub trait OffsetStore: Send + Sync + std::fmt::Debug {
    /// The committed offset of `key`, if one was ever committed.
    fn get(&self, key: &OffsetKey<'_>) -> Result<Option<i64>>;

    /// Records every `(key, offset)` of `entries` at once (all or none). When it
    /// returns `Ok`, the offsets are as durable as the store promises (for
    /// [`DurableStore`] with `every_commit`: on disk, fsynced).
    fn put(&self, entries: &[(OffsetKey<'_>, i64)]) -> Result<()>;

    /// Writes out whatever is buffered (a no-op for stores that buffer nothing).
    fn flush(&self) -> Result<()>;

    /// Flushes and stops: later calls fail with [`Code::Unavailable`]; a durable store
    /// releases its file so another store may open it. Closing twice is a no-op.
    fn close(&self) -> Result<()>;

    /// A short name for messages: `memory`, `durable`.
    fn kind(&self) -> &'static str;

    /// Commits accepted but not yet written (buffered by `offsets.sync = interval`).
    fn buffered(&self) -> usize {
        0
    }
}

fn closed_error(kind: &str) -> Error {
    Error::unavailable(format!(
        "the {kind} offset store is closed (the manager is closed)"
    ))
}

/// Offsets kept in memory for the life of the process (the default, when
/// `offsets.path` is empty).
#[derive(Debug, Default)]
pub struct MemoryStore {
    map: Mutex<HashMap<OwnedKey, i64>>,
    closed: AtomicBool,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl OffsetStore for MemoryStore {
    fn get(&self, key: &OffsetKey<'_>) -> Result<Option<i64>> {
        if self.closed.load(Ordering::Acquire) {
            return Err(closed_error("memory"));
        }
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        Ok(map.get(&owned(key)).copied())
    }

    fn put(&self, entries: &[(OffsetKey<'_>, i64)]) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(closed_error("memory"));
        }
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        for (k, v) in entries {
            map.insert(owned(k), *v);
        }
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn close(&self) -> Result<()> {
        self.closed.store(true, Ordering::Release);
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "memory"
    }
}

/// When a [`DurableStore`] writes commits to disk (`offsets.sync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncMode {
    /// Every commit is written and fsynced before it returns (the default: a commit
    /// that returned success survives kill -9 and power loss).
    EveryCommit,
    /// Commits are buffered in memory and written together by
    /// [`OffsetStore::flush`], which the manager calls every `offsets.sync_interval`
    /// and on close. A crash loses at most the commits of the last interval.
    Interval,
}

impl SyncMode {
    /// Parses the `offsets.sync` value.
    pub fn parse(s: &str) -> Option<SyncMode> {
        match s {
            "every_commit" => Some(SyncMode::EveryCommit),
            "interval" => Some(SyncMode::Interval),
            _ => None,
        }
    }
}

const TABLE: TableDefinition<(&str, &str, &str), i64> = TableDefinition::new("committed_offsets");

/// Offsets kept in a redb database file: ACID transactions, each commit fsynced before
/// it returns (copy-on-write B-trees with checksummed commit slots, so a kill or a
/// power cut leaves the last committed state). One process opens a file at a time
/// (redb locks it); a second open fails with [`Code::Io`].
#[derive(Debug)]
pub struct DurableStore {
    path: PathBuf,
    db: RwLock<Option<Database>>,
    mode: SyncMode,
    /// Commits not yet written, in [`SyncMode::Interval`].
    pending: Mutex<HashMap<OwnedKey, i64>>,
    /// `pending.len()`, kept under its lock and read without it, so that asking how
    /// many commits wait never waits for a flush in progress (an fsync).
    pending_len: std::sync::atomic::AtomicUsize,
    /// The process that opened it: a forked child (which inherits the file and its
    /// lock) must never write to it, not even from a destructor.
    pid: u32,
}

impl DurableStore {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: impl AsRef<Path>, mode: SyncMode) -> Result<DurableStore> {
        let path = path.as_ref().to_path_buf();
        let db = Database::create(&path).map_err(|e| io_error(&path, "open", e))?;
        // Create the table now so that reads never meet a missing table.
        let txn = db.begin_write().map_err(|e| io_error(&path, "open", e))?;
        txn.open_table(TABLE)
            .map_err(|e| io_error(&path, "open", e))?;
        txn.commit().map_err(|e| io_error(&path, "open", e))?;
        Ok(DurableStore {
            path,
            db: RwLock::new(Some(db)),
            mode,
            pending: Mutex::new(HashMap::new()),
            pending_len: std::sync::atomic::AtomicUsize::new(0),
            pid: std::process::id(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The sync mode.
    pub fn mode(&self) -> SyncMode {
        self.mode
    }

    fn write<'k>(&self, entries: impl Iterator<Item = (OffsetKey<'k>, i64)>) -> Result<()> {
        if std::process::id() != self.pid {
            return Err(Error::failed_precondition(format!(
                "the offset store {} was opened by another process (before a fork); open a new manager in the child",
                self.path.display()
            )));
        }
        let guard = self.db.read().unwrap_or_else(|p| p.into_inner());
        let db = guard.as_ref().ok_or_else(|| closed_error("durable"))?;
        let txn = db
            .begin_write()
            .map_err(|e| io_error(&self.path, "commit to", e))?;
        {
            let mut t = txn
                .open_table(TABLE)
                .map_err(|e| io_error(&self.path, "commit to", e))?;
            for (k, v) in entries {
                t.insert((k.data_source, k.session_key, k.stream), v)
                    .map_err(|e| io_error(&self.path, "commit to", e))?;
            }
        }
        // Durability::Immediate (redb's default): fsync before commit returns.
        txn.commit()
            .map_err(|e| io_error(&self.path, "commit to", e))
    }
}

impl Drop for DurableStore {
    /// Writes buffered commits of a store that was never closed (a manager dropped on
    /// its own runtime thread); errors have nowhere to go here.
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

fn io_error(path: &Path, what: &str, e: impl std::fmt::Display) -> Error {
    Error::new(
        Code::Io,
        format!("{what} the offset store {}: {e}", path.display()),
    )
}

impl OffsetStore for DurableStore {
    fn get(&self, key: &OffsetKey<'_>) -> Result<Option<i64>> {
        if self.mode == SyncMode::Interval {
            let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(v) = pending.get(&owned(key)) {
                return Ok(Some(*v));
            }
        }
        let guard = self.db.read().unwrap_or_else(|p| p.into_inner());
        let db = guard.as_ref().ok_or_else(|| closed_error("durable"))?;
        let read = |e: &dyn std::fmt::Display| io_error(&self.path, "read", e);
        let txn = db.begin_read().map_err(|e| read(&e))?;
        let table = txn.open_table(TABLE).map_err(|e| read(&e))?;
        let v = table
            .get((key.data_source, key.session_key, key.stream))
            .map_err(|e| read(&e))?;
        Ok(v.map(|g| g.value()))
    }

    fn put(&self, entries: &[(OffsetKey<'_>, i64)]) -> Result<()> {
        match self.mode {
            SyncMode::EveryCommit => self.write(entries.iter().copied()),
            SyncMode::Interval => {
                if self.db.read().unwrap_or_else(|p| p.into_inner()).is_none() {
                    return Err(closed_error("durable"));
                }
                let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                for (k, v) in entries {
                    pending.insert(owned(k), *v);
                }
                self.pending_len
                    .store(pending.len(), std::sync::atomic::Ordering::Relaxed);
                Ok(())
            }
        }
    }

    fn flush(&self) -> Result<()> {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if pending.is_empty() {
            return Ok(());
        }
        // Held across the write so that a newer commit to the same key cannot be
        // overwritten by this older batch.
        self.write(pending.iter().map(|((d, s, t), v)| {
            (
                OffsetKey {
                    data_source: d,
                    session_key: s,
                    stream: t,
                },
                *v,
            )
        }))?;
        pending.clear();
        self.pending_len
            .store(0, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    fn close(&self) -> Result<()> {
        let flushed = self.flush();
        // Dropping the database releases the file lock.
        let db = self.db.write().unwrap_or_else(|p| p.into_inner()).take();
        drop(db);
        flushed
    }

    fn kind(&self) -> &'static str {
        "durable"
    }

    fn buffered(&self) -> usize {
        self.pending_len.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key<'a>(s: &'a str) -> OffsetKey<'a> {
        OffsetKey {
            data_source: "ds",
            session_key: "k",
            stream: s,
        }
    }

    #[test]
    fn durable_round_trip_and_reopen() {
        let dir = std::env::temp_dir().join(format!("sb-store-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("unit.redb");
        let _ = std::fs::remove_file(&path);
        for mode in [SyncMode::EveryCommit, SyncMode::Interval] {
            let s = DurableStore::open(&path, mode).unwrap();
            assert!(
                DurableStore::open(&path, mode).is_err(),
                "one opener at a time"
            );
            s.put(&[(key("a"), 5), (key("b"), 7)]).unwrap();
            assert_eq!(s.get(&key("a")).unwrap(), Some(5));
            assert_eq!(s.get(&key("zz")).unwrap(), None);
            s.close().unwrap();
            assert_eq!(s.get(&key("a")).unwrap_err().code(), Code::Unavailable);
            let s = DurableStore::open(&path, SyncMode::EveryCommit).unwrap();
            assert_eq!(s.get(&key("b")).unwrap(), Some(7));
            s.close().unwrap();
        }
        let _ = std::fs::remove_file(&path);
    }
}

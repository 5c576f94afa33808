//! The Redis offset store (`offsets.store = redis`): committed offsets shared by every
//! instance that points at the same Redis and `offsets.prefix`, so that a session
//! closed on one instance resumes on another at its commits.
//!
//! Keys: `<prefix>:epoch` (a string) and `<prefix>:offsets` (a hash whose fields name
//! a data source, a session key and a stream, each length-prefixed so no name can
//! collide with another). Every read and write is one Lua script that first checks the
//! epoch, so a commit is one atomic write and a Redis that lost its data (flushed, or
//! replaced by an empty server) is noticed: the epoch this store started with is gone,
//! and every call fails with FailedPrecondition naming both epochs instead of
//! resuming from zero. Centrifugo's Redis engine keeps an epoch beside its streams for
//! the same reason.
//!
//! The client is the `redis` crate's ConnectionManager on the manager's runtime: it
//! reconnects by itself, and while Redis is away calls fail with Unavailable (nothing
//! is acknowledged that Redis did not take).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use redis::aio::ConnectionManager;

use super::store::{OffsetKey, OffsetStore, SyncMode};
use crate::error::{Code, Error, Result};

const PUT: &str = r"
local e = redis.call('GET', KEYS[1])
if e ~= ARGV[1] then return redis.error_reply('EPOCH ' .. (e or 'none')) end
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
return 'OK'
";

const GET: &str = r"
local e = redis.call('GET', KEYS[1])
if e ~= ARGV[1] then return redis.error_reply('EPOCH ' .. (e or 'none')) end
return redis.call('HGET', KEYS[2], ARGV[2])
";

/// The offsets of every instance that shares a Redis and a prefix.
pub struct RedisStore {
    url: String,
    handle: tokio::runtime::Handle,
    conn: ConnectionManager,
    epoch_key: String,
    hash_key: String,
    /// The epoch found (or made) when this store opened.
    epoch: String,
    timeout: Duration,
    mode: SyncMode,
    pending: Mutex<HashMap<String, i64>>,
    pending_len: AtomicUsize,
    closed: AtomicBool,
    put: redis::Script,
    get: redis::Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.url)
            .field("epoch", &self.epoch)
            .finish()
    }
}

fn field(k: &OffsetKey<'_>) -> String {
    format!(
        "{}:{}{}:{}{}",
        k.data_source.len(),
        k.data_source,
        k.session_key.len(),
        k.session_key,
        k.stream
    )
}

/// Runs `fut` on `handle` and waits for it on this thread, within `timeout`. On one of
/// the runtime's own threads the wait is announced (`block_in_place`) so that the
/// runtime's other workers drive the I/O meanwhile.
fn wait<T: Send + 'static>(
    handle: &tokio::runtime::Handle,
    timeout: Duration,
    what: &str,
    fut: impl std::future::Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    handle.spawn(async move {
        let _ = tx.send(fut.await);
    });
    let recv = || rx.recv_timeout(timeout);
    let got = if tokio::runtime::Handle::try_current().is_ok() {
        tokio::task::block_in_place(recv)
    } else {
        recv()
    };
    got.unwrap_or_else(|_| {
        Err(Error::timeout(format!(
            "Redis did not answer {what} within {}",
            crate::config::fmt_duration(timeout)
        )))
    })
}

impl RedisStore {
    /// Connects to `url` (`redis://host:port/db`) and reads, or creates, the epoch
    /// under `prefix`. InvalidArgument for a bad URL; Unavailable when Redis cannot be
    /// reached within `timeout`.
    pub fn open(
        url: &str,
        prefix: &str,
        mode: SyncMode,
        timeout: Duration,
        handle: tokio::runtime::Handle,
    ) -> Result<RedisStore> {
        let client = redis::Client::open(url).map_err(|e| {
            Error::invalid_argument(format!(
                "offsets.redis_url must be a Redis URL such as redis://127.0.0.1:6379/0, got \"{}\": {e}",
                url.escape_default()
            ))
        })?;
        let epoch_key = format!("{prefix}:epoch");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let fresh = format!(
            "{:016x}",
            crate::random::splitmix64(nanos ^ (u64::from(std::process::id()) << 32))
        );
        let (key, shown) = (epoch_key.clone(), url.to_string());
        let (conn, epoch) = wait(&handle, timeout, "the first connect", async move {
            let unreachable = |e: redis::RedisError| {
                Error::unavailable(format!("the Redis offset store at {shown}: {e}"))
            };
            let mut conn = ConnectionManager::new(client).await.map_err(unreachable)?;
            let _: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(&fresh)
                .arg("NX")
                .query_async(&mut conn)
                .await
                .map_err(unreachable)?;
            let epoch: Option<String> = redis::cmd("GET")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .map_err(unreachable)?;
            Ok((conn, epoch.unwrap_or(fresh)))
        })?;
        Ok(RedisStore {
            url: url.to_string(),
            handle,
            conn,
            epoch_key,
            hash_key: format!("{prefix}:offsets"),
            epoch,
            timeout,
            mode,
            pending: Mutex::new(HashMap::new()),
            pending_len: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            put: redis::Script::new(PUT),
            get: redis::Script::new(GET),
        })
    }

    /// The epoch this store works in.
    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::unavailable(
                "the redis offset store is closed (the manager is closed)",
            ));
        }
        Ok(())
    }

    /// A Redis error as ours: a changed epoch is FailedPrecondition naming both.
    fn error(url: &str, mine: &str, e: redis::RedisError) -> Error {
        if e.code() == Some("EPOCH") {
            let now = e.detail().unwrap_or("none").trim();
            return Error::failed_precondition(format!(
                "the Redis offset store at {url} lost its offsets: its epoch was {mine} and is now {now} (Redis was flushed or replaced), so committed offsets are gone; nothing was resumed or committed. Restart the manager to accept starting over"
            ));
        }
        let code = if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() {
            Code::Unavailable
        } else {
            Code::Io
        };
        Error::new(code, format!("the Redis offset store at {url}: {e}"))
    }

    fn write(&self, fields: Vec<(String, i64)>) -> Result<()> {
        if fields.is_empty() {
            return Ok(());
        }
        let script = self.put.clone();
        let keys = [self.epoch_key.clone(), self.hash_key.clone()];
        let mut conn = self.conn.clone();
        let (url, mine) = (self.url.clone(), self.epoch.clone());
        wait(&self.handle, self.timeout, "a commit", async move {
            let mut inv = script.prepare_invoke();
            inv.key(&keys[0]).key(&keys[1]).arg(&mine);
            for (f, v) in &fields {
                inv.arg(f).arg(v);
            }
            inv.invoke_async::<()>(&mut conn)
                .await
                .map_err(|e| Self::error(&url, &mine, e))
        })
    }
}

impl OffsetStore for RedisStore {
    fn get(&self, key: &OffsetKey<'_>) -> Result<Option<i64>> {
        self.check_open()?;
        let f = field(key);
        if let Some(v) = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&f)
        {
            return Ok(Some(*v));
        }
        let script = self.get.clone();
        let keys = [self.epoch_key.clone(), self.hash_key.clone()];
        let mut conn = self.conn.clone();
        let (url, mine) = (self.url.clone(), self.epoch.clone());
        wait(&self.handle, self.timeout, "a read", async move {
            let mut inv = script.prepare_invoke();
            inv.key(&keys[0]).key(&keys[1]).arg(&mine).arg(&f);
            inv.invoke_async::<Option<i64>>(&mut conn)
                .await
                .map_err(|e| Self::error(&url, &mine, e))
        })
    }

    fn put(&self, entries: &[(OffsetKey<'_>, i64)]) -> Result<()> {
        self.check_open()?;
        let fields: Vec<(String, i64)> = entries.iter().map(|(k, v)| (field(k), *v)).collect();
        if self.mode == SyncMode::Interval {
            let mut p = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            p.extend(fields);
            self.pending_len.store(p.len(), Ordering::Relaxed);
            return Ok(());
        }
        self.write(fields)
    }

    fn flush(&self) -> Result<()> {
        let batch: Vec<(String, i64)> = {
            let mut p = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            self.pending_len.store(0, Ordering::Relaxed);
            p.drain().collect()
        };
        // One script call: every buffered commit in one atomic write.
        let kept = batch.clone();
        self.write(batch).inspect_err(|_| {
            // Not written: keep them for the next flush (newer commits win).
            let mut p = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            for (k, v) in kept {
                p.entry(k).or_insert(v);
            }
            self.pending_len.store(p.len(), Ordering::Relaxed);
        })
    }

    fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.flush()
    }

    fn kind(&self) -> &'static str {
        "redis"
    }

    fn buffered(&self) -> usize {
        self.pending_len.load(Ordering::Relaxed)
    }
}

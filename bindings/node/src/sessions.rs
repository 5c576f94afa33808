//! Streaming sessions (`manager.sessions` in JS): the core's `Sessions`, method by
//! method, on `NativeManager`.
//!
//! Calls that may touch the offset store's disk (open, resume, addStream, commit,
//! committed, flush) run on a blocking thread of the manager's runtime and settle a
//! promise, so an fsync never holds the event loop; the others are memory-only and
//! synchronous. Every check and message comes from the core.

use napi::Env;
use napi::bindgen_prelude::{Object, ToNapiValue};
use napi_derive::napi;
use switchboard_core::sessions::{SessionDetails, SessionInfo, Sessions, StreamInfo};
use switchboard_core::{Code, Error, Manager};

use crate::error::{Result, guard, sb_error, to_napi};
use crate::manager::NativeManager;
use crate::settle::Settle;

/// One stream of a session (core's `StreamInfo`, counters flattened).
#[napi(object)]
pub struct NativeStreamInfo {
    pub name: String,
    /// The next offset to deliver.
    pub position: f64,
    /// The committed offset (safe to resume from), or none.
    pub committed: Option<f64>,
    pub data_packets_read: f64,
    pub data_bytes_read: f64,
    pub data_packets_delivered: f64,
    pub data_bytes_delivered: f64,
    pub essential_packets_read: f64,
    pub essential_packets_delivered: f64,
}

impl From<StreamInfo> for NativeStreamInfo {
    fn from(s: StreamInfo) -> Self {
        let c = s.counters;
        NativeStreamInfo {
            name: s.name,
            position: s.position as f64,
            committed: s.committed.map(|c| c as f64),
            data_packets_read: c.data_packets_read as f64,
            data_bytes_read: c.data_bytes_read as f64,
            data_packets_delivered: c.data_packets_delivered as f64,
            data_bytes_delivered: c.data_bytes_delivered as f64,
            essential_packets_read: c.essential_packets_read as f64,
            essential_packets_delivered: c.essential_packets_delivered as f64,
        }
    }
}

/// A session (core's `SessionInfo`).
#[napi(object)]
pub struct NativeSessionInfo {
    pub id: f64,
    pub data_source: String,
    pub session_key: String,
    pub exclude_main_stream: bool,
    pub streams: Vec<NativeStreamInfo>,
    pub router_messages_received: f64,
    pub router_bytes_received: f64,
}

impl From<SessionInfo> for NativeSessionInfo {
    fn from(s: SessionInfo) -> Self {
        NativeSessionInfo {
            id: s.id as f64,
            data_source: s.data_source,
            session_key: s.session_key,
            exclude_main_stream: s.exclude_main_stream,
            streams: s.streams.into_iter().map(NativeStreamInfo::from).collect(),
            router_messages_received: s.router_messages_received as f64,
            router_bytes_received: s.router_bytes_received as f64,
        }
    }
}

/// A whole number >= 0 from JS (a session id or a count) as u64.
pub(crate) fn count(what: &str, v: f64) -> Result<u64> {
    if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= 9_007_199_254_740_991.0 {
        Ok(v as u64)
    } else {
        Err(sb_error(
            Code::InvalidArgument,
            format!("{what} must be a whole number >= 0, got {v}"),
        ))
    }
}

/// An offset from JS as i64; a negative one goes on to the core, which names it.
fn offset(what: &str, v: f64) -> Result<i64> {
    if v.is_finite() && v.fract() == 0.0 && v.abs() <= 9_007_199_254_740_991.0 {
        Ok(v as i64)
    } else {
        Err(sb_error(
            Code::InvalidArgument,
            format!("{what} must be a whole number, got {v}"),
        ))
    }
}

impl NativeManager {
    fn sessions(&self) -> Result<&Sessions> {
        Ok(self.manager()?.sessions())
    }

    /// Runs `f` with the sessions on a blocking thread of the manager's runtime and
    /// settles the returned promise with `make(value)` or the error. If the runtime
    /// is gone the task is dropped unrun and the promise rejects with SB_UNAVAILABLE.
    fn off_thread<'env, T, D>(
        &self,
        env: &'env Env,
        f: impl FnOnce(&Sessions) -> std::result::Result<T, Error> + Send + 'static,
        make: impl FnOnce(Env, T) -> D + Send + 'static,
    ) -> Result<Object<'env>>
    where
        T: Send + 'static,
        D: ToNapiValue + 'static,
    {
        let manager: Manager = self.manager()?.clone();
        let (settle, promise) = Settle::<D>::new(env)?;
        let handle = manager.runtime().handle().clone();
        drop(handle.spawn_blocking(move || {
            let r = f(manager.sessions());
            // The last clone may be this one (the JS manager was collected meanwhile);
            // core then lets the runtime go in the background.
            drop(manager);
            settle.settle(r, make);
        }));
        Ok(promise)
    }
}

#[napi]
impl NativeManager {
    /// Registers a data source's session key; true if it was new.
    #[napi]
    pub fn session_register(&self, data_source: String, session_key: String) -> Result<bool> {
        guard(|| {
            self.sessions()?
                .register(&data_source, &session_key)
                .map_err(to_napi)
        })
    }

    /// Unregisters a session key; true if it was there.
    #[napi]
    pub fn session_unregister(&self, data_source: String, session_key: String) -> Result<bool> {
        guard(|| {
            self.sessions()?
                .unregister(&data_source, &session_key)
                .map_err(to_napi)
        })
    }

    /// Whether a session key is registered.
    #[napi]
    pub fn session_is_registered(&self, data_source: String, session_key: String) -> Result<bool> {
        guard(|| {
            self.sessions()?
                .is_registered(&data_source, &session_key)
                .map_err(to_napi)
        })
    }

    /// Every registered (data source, session key), sorted.
    #[napi]
    pub fn session_catalog(&self) -> Result<Vec<Vec<String>>> {
        guard(|| {
            Ok(self
                .sessions()?
                .catalog()
                .map_err(to_napi)?
                .into_iter()
                .map(|(d, k)| vec![d, k])
                .collect())
        })
    }

    /// Opens a session; resolves with its id.
    #[napi]
    pub fn session_open<'env>(
        &self,
        env: &'env Env,
        data_source: String,
        session_key: String,
        streams: Vec<String>,
        stream_offsets: Vec<f64>,
        exclude_main_stream: bool,
    ) -> Result<Object<'env>> {
        guard(|| {
            let offsets = stream_offsets
                .iter()
                .enumerate()
                .map(|(i, &o)| offset(&format!("streamOffsets[{i}]"), o))
                .collect::<Result<Vec<i64>>>()?;
            let details = SessionDetails {
                data_source,
                session_key,
                streams,
                stream_offsets: offsets,
                exclude_main_stream,
            };
            self.off_thread(env, move |s| s.open(&details), |_, id| id as f64)
        })
    }

    /// Opens a session whose streams start at their committed offsets; resolves with
    /// its id.
    #[napi]
    pub fn session_resume<'env>(
        &self,
        env: &'env Env,
        data_source: String,
        session_key: String,
        streams: Vec<String>,
        exclude_main_stream: bool,
    ) -> Result<Object<'env>> {
        guard(|| {
            self.off_thread(
                env,
                move |s| {
                    let names: Vec<&str> = streams.iter().map(String::as_str).collect();
                    s.resume(&data_source, &session_key, &names, exclude_main_stream)
                },
                |_, id| id as f64,
            )
        })
    }

    /// A session's details, positions, committed offsets and counters.
    #[napi]
    pub fn session_get(&self, id: f64) -> Result<NativeSessionInfo> {
        guard(|| {
            let id = count("session id", id)?;
            Ok(self.sessions()?.get(id).map_err(to_napi)?.into())
        })
    }

    /// Closes a session.
    #[napi]
    pub fn session_close(&self, id: f64) -> Result<()> {
        guard(|| {
            let id = count("session id", id)?;
            self.sessions()?.close(id).map_err(to_napi)
        })
    }

    /// Open sessions by id, optionally of one data source and/or session key.
    #[napi]
    pub fn session_list(
        &self,
        data_source: Option<String>,
        session_key: Option<String>,
    ) -> Result<Vec<NativeSessionInfo>> {
        guard(|| {
            Ok(self
                .sessions()?
                .list(data_source.as_deref(), session_key.as_deref())
                .map_err(to_napi)?
                .into_iter()
                .map(NativeSessionInfo::from)
                .collect())
        })
    }

    /// Open sessions now.
    #[napi]
    pub fn session_open_count(&self) -> Result<f64> {
        guard(|| Ok(self.sessions()?.open_count() as f64))
    }

    /// Adds a stream to a live session at `offset`.
    #[napi]
    pub fn session_add_stream<'env>(
        &self,
        env: &'env Env,
        id: f64,
        stream: String,
        at: f64,
    ) -> Result<Object<'env>> {
        guard(|| {
            let id = count("session id", id)?;
            let at = offset("offset", at)?;
            self.off_thread(env, move |s| s.add_stream(id, &stream, at), |_, ()| ())
        })
    }

    /// Removes a stream from a live session.
    #[napi]
    pub fn session_remove_stream(&self, id: f64, stream: String) -> Result<()> {
        guard(|| {
            let id = count("session id", id)?;
            self.sessions()?.remove_stream(id, &stream).map_err(to_napi)
        })
    }

    /// Counts packets read from the source for a stream.
    #[napi]
    pub fn session_record_read(
        &self,
        id: f64,
        stream: String,
        packets: f64,
        bytes: f64,
        essential: f64,
    ) -> Result<()> {
        guard(|| {
            let id = count("session id", id)?;
            let (p, b, e) = (
                count("packets", packets)?,
                count("bytes", bytes)?,
                count("essential", essential)?,
            );
            self.sessions()?
                .record_read(id, &stream, p, b, e)
                .map_err(to_napi)
        })
    }

    /// Counts packets delivered on a stream and advances its position; returns it.
    #[napi]
    pub fn session_deliver(
        &self,
        id: f64,
        stream: String,
        packets: f64,
        bytes: f64,
        essential: f64,
    ) -> Result<f64> {
        guard(|| {
            let id = count("session id", id)?;
            let (p, b, e) = (
                count("packets", packets)?,
                count("bytes", bytes)?,
                count("essential", essential)?,
            );
            self.sessions()?
                .deliver(id, &stream, p, b, e)
                .map(|pos| pos as f64)
                .map_err(to_napi)
        })
    }

    /// Counts router (control) messages received on a session.
    #[napi]
    pub fn session_record_router(&self, id: f64, messages: f64, bytes: f64) -> Result<()> {
        guard(|| {
            let id = count("session id", id)?;
            let (m, b) = (count("messages", messages)?, count("bytes", bytes)?);
            self.sessions()?.record_router(id, m, b).map_err(to_napi)
        })
    }

    /// The next offset to deliver on a stream.
    #[napi]
    pub fn session_position(&self, id: f64, stream: String) -> Result<f64> {
        guard(|| {
            let id = count("session id", id)?;
            self.sessions()?
                .position(id, &stream)
                .map(|p| p as f64)
                .map_err(to_napi)
        })
    }

    /// Commits a stream's offset (written to the store; may fsync).
    #[napi]
    pub fn session_commit<'env>(
        &self,
        env: &'env Env,
        id: f64,
        stream: String,
        at: f64,
    ) -> Result<Object<'env>> {
        guard(|| {
            let id = count("session id", id)?;
            let at = offset("offset", at)?;
            self.off_thread(env, move |s| s.commit(id, &stream, at), |_, ()| ())
        })
    }

    /// Moves a stream's position (and lets the next commit go down to it).
    #[napi]
    pub fn session_seek(&self, id: f64, stream: String, at: f64) -> Result<()> {
        guard(|| {
            let id = count("session id", id)?;
            let at = offset("offset", at)?;
            self.sessions()?.seek(id, &stream, at).map_err(to_napi)
        })
    }

    /// The offset committed in the store for a stream of a session key, or null.
    #[napi]
    pub fn session_committed<'env>(
        &self,
        env: &'env Env,
        data_source: String,
        session_key: String,
        stream: String,
    ) -> Result<Object<'env>> {
        guard(|| {
            self.off_thread(
                env,
                move |s| s.committed(&data_source, &session_key, &stream),
                |_, c| c.map(|c| c as f64),
            )
        })
    }

    /// Writes commits buffered by `offsets.sync = interval` now.
    #[napi]
    pub fn session_flush<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        guard(|| self.off_thread(env, |s| s.flush(), |_, ()| ()))
    }

    /// `memory` or `durable`.
    #[napi]
    pub fn session_store_kind(&self) -> Result<String> {
        guard(|| Ok(self.sessions()?.store_kind().to_string()))
    }

    /// Commits accepted but not yet written (interval mode).
    #[napi]
    pub fn session_buffered_commits(&self) -> Result<f64> {
        guard(|| Ok(self.sessions()?.buffered_commits() as f64))
    }
}

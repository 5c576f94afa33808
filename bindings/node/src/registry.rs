//! The live-connection registry (`manager.registry` in JS): core's `Registry`, method
//! by method, as `NativeRegistry`, plus `NativeOutbox` and the envelope helpers.
//!
//! # Send callbacks
//!
//! A connection's JS functions (`send`, `ping`, `close`) cannot leave the JS thread;
//! `registry.js` keeps them in a `Map` by connection id. Core's delivery tasks call
//! this crate's [`JsSink`], which only appends `(kind, id, message)` to the registry's
//! [`Bridge`] buffer and returns [`SendOutcome::Pending`]. The [`RoundHook`] installed
//! on the registry runs each delivery round and then hands everything buffered to the
//! JS thread in ONE call of a weak threadsafe function (`dispatch(kinds, ids, args,
//! messages, reasons)`): a broadcast to 10,000 connections crosses into JS a few dozen
//! times, not 10,000. A message shared by many recipients becomes one JS value.
//! `registry.js` calls each connection's function and reports the results with
//! [`NativeRegistry::report_sent`] (one call per batch) and
//! [`NativeRegistry::report_failed`].
//!
//! Appending and flushing hold the same lock, and the threadsafe function's queue is
//! FIFO, so one connection's items reach JS in core's order even when two delivery
//! tasks serve it one after the other.
//!
//! The threadsafe function is weak (it never keeps Node alive) and is released by
//! `release()` (`manager.close()` calls it after a barrier, once the last close
//! callback has run).
//!
//! # Authentication hooks
//!
//! The JS hooks must run synchronously on the JS thread, so they are not installed in
//! core: `registry.js` passes them to each `register` / `subscribe` call, and [`JsAuth`]
//! (holding the function references for that call) is the `&dyn Authenticator` given
//! to core's `*_with_auth` methods.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use napi::Env;
use napi::Status;
use napi::bindgen_prelude::{Buffer, Either, FnArgs, Function, Object};
use napi::threadsafe_function::{
    ThreadsafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode,
};
use napi_derive::napi;
use switchboard_core::envelope;
use switchboard_core::registry::{
    AuthGrant, Authenticator, BroadcastReport, ConnId, ConnInfo, ConnState, Item, ListFilter,
    Message, Outbox, Registration, Registry, RoundHook, SendOutcome, Sink, Target,
};
use switchboard_core::{Code, Error};

use crate::error::{Result, guard, sb_error, to_napi};
use crate::sessions::count;
use crate::settle::Settle;

/// `dispatch` kinds, mirrored in `registry.js`.
const SEND: u32 = 0;
const PING: u32 = 1;
const CLOSE: u32 = 2;
const BARRIER: u32 = 3;

/// What `registry.js`'s `dispatch` gets: kinds, ids (the barrier's token for a
/// barrier), args (an index into messages for a send, into reasons for a close),
/// messages (a string for a text message, else a Buffer) and reasons.
pub type DispatchArgs = FnArgs<(
    Vec<u32>,
    Vec<f64>,
    Vec<u32>,
    Vec<Either<String, Buffer>>,
    Vec<String>,
)>;

/// Items buffered for one call of `dispatch`.
#[derive(Default)]
struct Batch {
    kinds: Vec<u32>,
    ids: Vec<f64>,
    args: Vec<u32>,
    messages: Vec<Message>,
    reasons: Vec<String>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }

    /// The index of `msg` in `messages`, reusing the last one when it is the same
    /// shared message (every recipient of a broadcast gets the same bytes).
    fn message_index(&mut self, msg: &Message) -> u32 {
        if let Some(last) = self.messages.last()
            && last.is_text() == msg.is_text()
            && last.len() == msg.len()
            && std::ptr::eq(last.data().as_ptr(), msg.data().as_ptr())
        {
            return (self.messages.len() - 1) as u32;
        }
        self.messages.push(msg.clone());
        (self.messages.len() - 1) as u32
    }

    fn into_args(self) -> DispatchArgs {
        let messages = self
            .messages
            .into_iter()
            .map(|m| match m.as_text() {
                Some(t) => Either::A(t.to_string()),
                None => Either::B(Buffer::from(m.data().to_vec())),
            })
            .collect();
        FnArgs::from((self.kinds, self.ids, self.args, messages, self.reasons))
    }
}

type Tsfn = ThreadsafeFunction<Batch, (), DispatchArgs, Status, false, true, 0>;

/// One registry's way into JS: the buffer of the current round and the threadsafe
/// function that takes it to `dispatch`.
pub struct Bridge {
    batch: Mutex<(Batch, Option<Tsfn>)>,
    released: AtomicBool,
}

impl Bridge {
    fn new(dispatch: &Function<'_, DispatchArgs, ()>) -> Result<Arc<Bridge>> {
        let tsfn: Tsfn = dispatch
            .build_threadsafe_function::<Batch>()
            .callee_handled::<false>()
            .weak::<true>()
            .build_callback(|ctx: ThreadsafeCallContext<Batch>| Ok(ctx.value.into_args()))
            .map_err(|e| {
                to_napi(Error::internal(format!(
                    "create the threadsafe function for the registry's callbacks: {e}"
                )))
            })?;
        Ok(Arc::new(Bridge {
            batch: Mutex::new((Batch::default(), Some(tsfn))),
            released: AtomicBool::new(false),
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Batch, Option<Tsfn>)> {
        self.batch.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends one item; false once released.
    fn push(&self, kind: u32, id: u64, msg: Option<&Message>, reason: Option<&str>) -> bool {
        if self.released.load(Ordering::Acquire) {
            return false;
        }
        let mut g = self.lock();
        let b = &mut g.0;
        let arg = match (msg, reason) {
            (Some(m), _) => b.message_index(m),
            (None, Some(r)) => {
                b.reasons.push(r.to_string());
                (b.reasons.len() - 1) as u32
            }
            (None, None) => 0,
        };
        b.kinds.push(kind);
        b.ids.push(id as f64);
        b.args.push(arg);
        true
    }

    /// Hands everything buffered to the JS thread in one call (dropped once released).
    fn flush(&self) -> bool {
        let mut g = self.lock();
        if g.0.is_empty() {
            return g.1.is_some();
        }
        let batch = std::mem::take(&mut g.0);
        match g.1.as_ref() {
            Some(t) => t.call(batch, ThreadsafeFunctionCallMode::NonBlocking) == Status::Ok,
            None => false,
        }
    }

    /// Releases the threadsafe function: nothing reaches JS afterwards.
    fn release(&self) {
        self.released.store(true, Ordering::Release);
        let t = {
            let mut g = self.lock();
            g.0 = Batch::default();
            g.1.take()
        };
        drop(t);
    }
}

/// The sink of a connection registered with a send callback.
struct JsSink {
    bridge: Arc<Bridge>,
    /// Whether the program gave a ping callback (else pings are not sent to JS).
    ping: bool,
}

impl Sink for JsSink {
    /// Every send is finished on the JS thread and reported later.
    fn may_pend(&self) -> bool {
        true
    }

    fn send(&self, id: ConnId, msg: &Message) -> SendOutcome {
        if self.bridge.push(SEND, id, Some(msg), None) {
            SendOutcome::Pending
        } else {
            SendOutcome::Failed(
                "the registry's JS callbacks were released (the manager closed)".into(),
            )
        }
    }

    fn ping(&self, id: ConnId) -> SendOutcome {
        // Handed to JS; a ping callback that throws is reported as a failure later.
        if self.ping {
            self.bridge.push(PING, id, None, None);
        }
        SendOutcome::Sent
    }

    fn closed(&self, id: ConnId, reason: &str) {
        self.bridge.push(CLOSE, id, None, Some(reason));
    }
}

/// Runs a delivery round, then hands its items to JS in one call.
struct Hook(Arc<Bridge>);

impl RoundHook for Hook {
    fn run(&self, round: &mut dyn FnMut()) {
        round();
        self.0.flush();
    }
}

/// What the JS wrapper of the authenticate hook returns: a grant, or a refusal with
/// its reason (the wrapper turns a throw, `null` or a wrong shape into a refusal).
#[napi(object)]
pub struct NativeGrant {
    pub ok: bool,
    pub user: Option<String>,
    /// `[key, value]` pairs.
    pub metadata: Vec<Vec<String>>,
    pub why: Option<String>,
}

type AuthnFn<'a> = Function<'a, String, NativeGrant>;
/// `(id, user, topic)` -> `null` (allowed) or the refusal's reason.
type AuthzFn<'a> = Function<'a, FnArgs<(f64, Option<String>, String)>, Option<String>>;

/// The program's hooks for one call, on the JS thread.
struct JsAuth<'a> {
    authenticate: Option<AuthnFn<'a>>,
    authorize: Option<AuthzFn<'a>>,
}

impl JsAuth<'_> {
    fn is_set(&self) -> bool {
        self.authenticate.is_some() || self.authorize.is_some()
    }
}

fn reason_of(e: &napi::Error) -> String {
    if e.reason.is_empty() {
        "the hook threw".to_string()
    } else {
        e.reason.clone()
    }
}

impl Authenticator for JsAuth<'_> {
    fn authenticate(&self, token: &str) -> std::result::Result<AuthGrant, String> {
        let Some(f) = &self.authenticate else {
            return Err("no authenticate hook is set".to_string());
        };
        match f.call(token.to_string()) {
            Ok(g) if g.ok => Ok(AuthGrant {
                user: g.user,
                metadata: pairs(g.metadata).map_err(|e| e.reason.clone())?,
            }),
            Ok(g) => Err(g.why.unwrap_or_else(|| "refused".to_string())),
            Err(e) => Err(reason_of(&e)),
        }
    }

    fn authorize_subscribe(
        &self,
        id: ConnId,
        user: Option<&str>,
        topic: &str,
    ) -> std::result::Result<(), String> {
        let Some(f) = &self.authorize else {
            return Ok(());
        };
        match f.call(FnArgs::from((
            id as f64,
            user.map(str::to_string),
            topic.to_string(),
        ))) {
            Ok(None) => Ok(()),
            Ok(Some(why)) => Err(why),
            Err(e) => Err(reason_of(&e)),
        }
    }
}

/// `[key, value]` pairs from JS (built by `registry.js`, so always pairs).
fn pairs(v: Vec<Vec<String>>) -> Result<Vec<(String, String)>> {
    v.into_iter()
        .map(|p| match <[String; 2]>::try_from(p) {
            Ok([k, v]) => Ok((k, v)),
            Err(p) => Err(sb_error(
                Code::InvalidArgument,
                format!(
                    "metadata entries must be [key, value] pairs, got {} strings",
                    p.len()
                ),
            )),
        })
        .collect()
}

fn conn_id(v: f64) -> Result<ConnId> {
    count("connection id", v)
}

fn ids(what: &str, v: Vec<f64>) -> Result<Vec<ConnId>> {
    v.into_iter()
        .enumerate()
        .map(|(i, x)| count(&format!("{what}[{i}]"), x))
        .collect()
}

fn message(data: Either<String, Buffer>) -> Message {
    match data {
        Either::A(s) => Message::text(&s),
        Either::B(b) => Message::binary(b.to_vec()),
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// What one broadcast (or send) did (core's `BroadcastReport`).
#[napi(object)]
pub struct NativeBroadcastReport {
    pub recipients: f64,
    pub queued: f64,
    pub dropped: f64,
    pub disconnected: f64,
    pub elapsed_ms: f64,
}

impl From<BroadcastReport> for NativeBroadcastReport {
    fn from(r: BroadcastReport) -> Self {
        NativeBroadcastReport {
            recipients: r.recipients as f64,
            queued: r.queued as f64,
            dropped: r.dropped as f64,
            disconnected: r.disconnected as f64,
            elapsed_ms: ms(r.elapsed),
        }
    }
}

/// A snapshot of one connection (core's `ConnInfo`).
#[napi(object)]
pub struct NativeConnInfo {
    pub id: f64,
    pub user: Option<String>,
    /// `[key, value]` pairs sorted by key.
    pub metadata: Vec<Vec<String>>,
    pub topics: Vec<String>,
    pub state: String,
    pub sink: String,
    pub age_ms: f64,
    pub idle_ms: f64,
    pub queued_messages: f64,
    pub queued_bytes: f64,
    pub sent: f64,
    pub dropped: f64,
    pub failed: f64,
}

impl From<ConnInfo> for NativeConnInfo {
    fn from(c: ConnInfo) -> Self {
        NativeConnInfo {
            id: c.id as f64,
            user: c.user,
            metadata: c.metadata.into_iter().map(|(k, v)| vec![k, v]).collect(),
            topics: c.topics,
            state: c.state.as_str().to_string(),
            sink: c.sink.to_string(),
            age_ms: ms(c.age),
            idle_ms: ms(c.idle),
            queued_messages: c.queued_messages as f64,
            queued_bytes: c.queued_bytes as f64,
            sent: c.sent as f64,
            dropped: c.dropped as f64,
            failed: c.failed as f64,
        }
    }
}

/// One page of `list` (core's `ListPage`).
#[napi(object)]
pub struct NativeListPage {
    pub connections: Vec<NativeConnInfo>,
    pub next_cursor: Option<f64>,
}

/// A name and a count (a topic's subscribers, disconnects by reason, ...).
#[napi(object)]
pub struct NativeCount {
    pub name: String,
    pub count: f64,
}

fn counts(it: impl IntoIterator<Item = (String, u64)>) -> Vec<NativeCount> {
    it.into_iter()
        .map(|(name, n)| NativeCount {
            name,
            count: n as f64,
        })
        .collect()
}

/// The registry's statistics (core's `RegistryStats`).
#[napi(object)]
pub struct NativeRegistryStats {
    pub connections: f64,
    pub active: f64,
    pub topics: f64,
    pub users: f64,
    pub topic_counts: Vec<NativeCount>,
    pub registered_total: f64,
    pub broadcasts: f64,
    pub messages_queued: f64,
    pub messages_sent: f64,
    pub messages_dropped: f64,
    pub messages_failed: f64,
    pub disconnects: Vec<NativeCount>,
    pub rejections: Vec<NativeCount>,
    pub cleanup_runs: f64,
}

/// What one cleanup pass did.
#[napi(object)]
pub struct NativeCleanupReport {
    pub removed: f64,
    pub pinged: f64,
}

/// One outbox item: kind 0 = a message (`data`), 1 = a ping, 2 = closed (`reason`).
#[napi(object)]
pub struct NativeItem {
    pub kind: u32,
    pub data: Option<Either<String, Buffer>>,
    pub reason: Option<String>,
}

impl From<Item> for NativeItem {
    fn from(item: Item) -> Self {
        match item {
            Item::Message(m) => NativeItem {
                kind: 0,
                data: Some(match m.as_text() {
                    Some(t) => Either::A(t.to_string()),
                    None => Either::B(Buffer::from(m.data().to_vec())),
                }),
                reason: None,
            },
            Item::Ping => NativeItem {
                kind: 1,
                data: None,
                reason: None,
            },
            Item::Closed(reason) => NativeItem {
                kind: 2,
                data: None,
                reason: Some(reason),
            },
        }
    }
}

fn target(
    all: bool,
    topics: Vec<String>,
    users: Vec<String>,
    id_list: Vec<f64>,
    except: Vec<f64>,
) -> Result<Target> {
    Ok(Target {
        all,
        topics,
        users,
        ids: ids("ids", id_list)?,
        except: ids("except", except)?,
    })
}

/// The native registry of one manager.
#[napi]
pub struct NativeRegistry {
    registry: Registry,
    bridge: Arc<Bridge>,
    handle: tokio::runtime::Handle,
}

impl NativeRegistry {
    /// Wraps `registry`, installing the round hook that feeds `dispatch`.
    pub fn new(
        registry: &Registry,
        handle: tokio::runtime::Handle,
        dispatch: &Function<'_, DispatchArgs, ()>,
    ) -> Result<NativeRegistry> {
        let bridge = Bridge::new(dispatch)?;
        registry.set_round_hook(Some(Arc::new(Hook(bridge.clone()))));
        Ok(NativeRegistry {
            registry: registry.clone(),
            bridge,
            handle,
        })
    }

    fn registration(
        user: Option<String>,
        metadata: Vec<Vec<String>>,
        topics: Vec<String>,
        token: Option<String>,
    ) -> Result<Registration> {
        Ok(Registration {
            user,
            metadata: pairs(metadata)?,
            topics,
            token,
        })
    }
}

#[napi]
impl NativeRegistry {
    /// Registers a connection whose messages go to its JS `send` callback; returns
    /// its id. The hooks (if set) are the registry's authenticate/authorize wrappers.
    #[napi]
    #[allow(clippy::too_many_arguments)]
    pub fn register(
        &self,
        user: Option<String>,
        metadata: Vec<Vec<String>>,
        topics: Vec<String>,
        token: Option<String>,
        has_ping: bool,
        authenticate: Option<AuthnFn<'_>>,
        authorize: Option<AuthzFn<'_>>,
    ) -> Result<f64> {
        guard(|| {
            let reg = Self::registration(user, metadata, topics, token)?;
            let sink = Arc::new(JsSink {
                bridge: self.bridge.clone(),
                ping: has_ping,
            });
            let auth = JsAuth {
                authenticate,
                authorize,
            };
            let id = if auth.is_set() {
                self.registry.register_with_auth(reg, sink, &auth)
            } else {
                self.registry.register(reg, sink)
            };
            id.map(|id| id as f64).map_err(to_napi)
        })
    }

    /// Registers a connection whose messages the program pulls from the outbox.
    #[napi]
    pub fn register_outbox(
        &self,
        user: Option<String>,
        metadata: Vec<Vec<String>>,
        topics: Vec<String>,
        token: Option<String>,
        authenticate: Option<AuthnFn<'_>>,
        authorize: Option<AuthzFn<'_>>,
    ) -> Result<NativeOutbox> {
        guard(|| {
            let reg = Self::registration(user, metadata, topics, token)?;
            let auth = JsAuth {
                authenticate,
                authorize,
            };
            let outbox = if auth.is_set() {
                self.registry.register_outbox_with_auth(reg, &auth)
            } else {
                self.registry.register_outbox(reg)
            };
            Ok(NativeOutbox {
                outbox: Arc::new(outbox.map_err(to_napi)?),
                handle: self.handle.clone(),
            })
        })
    }

    /// Removes connection `id` for `reason` (empty or none: `unregistered`).
    #[napi]
    pub fn unregister(&self, id: f64, reason: Option<String>) -> Result<()> {
        guard(|| {
            self.registry
                .unregister(conn_id(id)?, reason.as_deref().unwrap_or(""))
                .map_err(to_napi)
        })
    }

    /// A snapshot of connection `id`.
    #[napi]
    pub fn get(&self, id: f64) -> Result<NativeConnInfo> {
        guard(|| Ok(self.registry.get(conn_id(id)?).map_err(to_napi)?.into()))
    }

    /// Whether connection `id` is registered.
    #[napi]
    pub fn contains(&self, id: f64) -> Result<bool> {
        guard(|| Ok(self.registry.contains(conn_id(id)?)))
    }

    /// Connections registered now.
    #[napi]
    pub fn len(&self) -> f64 {
        self.registry.len() as f64
    }

    /// Records traffic from connection `id` now.
    #[napi]
    pub fn touch(&self, id: f64) -> Result<()> {
        guard(|| self.registry.touch(conn_id(id)?).map_err(to_napi))
    }

    /// Subscribes `id` to `topic` (false if it already was); `authorize` is the
    /// registry's authorize wrapper, if set.
    #[napi]
    pub fn subscribe(
        &self,
        id: f64,
        topic: String,
        authorize: Option<AuthzFn<'_>>,
    ) -> Result<bool> {
        guard(|| {
            let id = conn_id(id)?;
            let r = match authorize {
                Some(f) => {
                    let auth = JsAuth {
                        authenticate: None,
                        authorize: Some(f),
                    };
                    self.registry.subscribe_with_auth(id, &topic, &auth)
                }
                None => self.registry.subscribe(id, &topic),
            };
            r.map_err(to_napi)
        })
    }

    /// Unsubscribes `id` from `topic` (false if it was not subscribed).
    #[napi]
    pub fn unsubscribe(&self, id: f64, topic: String) -> Result<bool> {
        guard(|| {
            self.registry
                .unsubscribe(conn_id(id)?, &topic)
                .map_err(to_napi)
        })
    }

    /// Sets (or with `null` removes) one metadata entry.
    #[napi]
    pub fn set_metadata(&self, id: f64, key: String, value: Option<String>) -> Result<()> {
        guard(|| {
            self.registry
                .set_metadata(conn_id(id)?, &key, value.as_deref())
                .map_err(to_napi)
        })
    }

    /// Queues `data` for every connection the target matches, minus `except`.
    #[napi]
    pub fn broadcast(
        &self,
        data: Either<String, Buffer>,
        all: bool,
        topics: Vec<String>,
        users: Vec<String>,
        id_list: Vec<f64>,
        except: Vec<f64>,
    ) -> Result<NativeBroadcastReport> {
        guard(|| {
            let t = target(all, topics, users, id_list, except)?;
            Ok(self
                .registry
                .broadcast(&t, message(data))
                .map_err(to_napi)?
                .into())
        })
    }

    /// Queues `data` for connection `id` alone.
    #[napi]
    pub fn send(&self, id: f64, data: Either<String, Buffer>) -> Result<NativeBroadcastReport> {
        guard(|| {
            Ok(self
                .registry
                .send(conn_id(id)?, message(data))
                .map_err(to_napi)?
                .into())
        })
    }

    /// One page of the connections the filter matches, in id order.
    #[napi]
    #[allow(clippy::too_many_arguments)]
    pub fn list(
        &self,
        user: Option<String>,
        topic: Option<String>,
        meta_key: Option<String>,
        meta_value: Option<String>,
        state: Option<String>,
        min_idle_ms: Option<f64>,
        limit: Option<f64>,
        cursor: Option<f64>,
    ) -> Result<NativeListPage> {
        guard(|| {
            let state = match state {
                None => None,
                Some(s) => Some(ConnState::parse(&s).ok_or_else(|| {
                    sb_error(
                        Code::InvalidArgument,
                        format!(
                            "state must be one of active | idle, got \"{}\"",
                            s.escape_default()
                        ),
                    )
                })?),
            };
            let min_idle = match min_idle_ms {
                None => None,
                Some(v) if v.is_finite() && v >= 0.0 => Some(Duration::from_secs_f64(v / 1000.0)),
                Some(v) => {
                    return Err(sb_error(
                        Code::InvalidArgument,
                        format!("minIdleMs must be a number of milliseconds >= 0, got {v}"),
                    ));
                }
            };
            let limit = match limit {
                None => 0,
                Some(v) => usize::try_from(count("limit", v)?).unwrap_or(usize::MAX),
            };
            let cursor = cursor.map(|c| count("cursor", c)).transpose()?;
            let filter = ListFilter {
                user,
                topic,
                meta: meta_key.map(|k| (k, meta_value.unwrap_or_default())),
                state,
                min_idle,
                limit,
                cursor,
            };
            let page = self.registry.list(&filter).map_err(to_napi)?;
            Ok(NativeListPage {
                connections: page
                    .connections
                    .into_iter()
                    .map(NativeConnInfo::from)
                    .collect(),
                next_cursor: page.next_cursor.map(|c| c as f64),
            })
        })
    }

    /// Removes every connection the target matches for `reason`; returns how many.
    #[napi]
    pub fn disconnect(
        &self,
        all: bool,
        topics: Vec<String>,
        users: Vec<String>,
        id_list: Vec<f64>,
        except: Vec<f64>,
        reason: Option<String>,
    ) -> Result<f64> {
        guard(|| {
            let t = target(all, topics, users, id_list, except)?;
            self.registry
                .disconnect(&t, reason.as_deref().unwrap_or(""))
                .map(|n| n as f64)
                .map_err(to_napi)
        })
    }

    /// The registry's statistics.
    #[napi]
    pub fn stats(&self) -> Result<NativeRegistryStats> {
        guard(|| {
            let s = self.registry.stats().map_err(to_napi)?;
            Ok(NativeRegistryStats {
                connections: s.connections as f64,
                active: s.active as f64,
                topics: s.topics as f64,
                users: s.users as f64,
                topic_counts: counts(s.topic_counts),
                registered_total: s.registered_total as f64,
                broadcasts: s.broadcasts as f64,
                messages_queued: s.messages_queued as f64,
                messages_sent: s.messages_sent as f64,
                messages_dropped: s.messages_dropped as f64,
                messages_failed: s.messages_failed as f64,
                disconnects: counts(s.disconnects),
                rejections: counts(s.rejections),
                cleanup_runs: s.cleanup_runs as f64,
            })
        })
    }

    /// Runs the heartbeat and stale-cleanup pass now.
    #[napi]
    pub fn cleanup(&self) -> Result<NativeCleanupReport> {
        guard(|| {
            let r = self.registry.cleanup().map_err(to_napi)?;
            Ok(NativeCleanupReport {
                removed: r.removed as f64,
                pinged: r.pinged as f64,
            })
        })
    }

    /// Reports sends that JS completed (a batch of connection ids; one per message).
    /// Ids that left meanwhile are skipped.
    #[napi]
    pub fn report_sent(&self, ids: Vec<f64>) {
        let ids: Vec<u64> = ids
            .into_iter()
            .filter(|id| *id >= 1.0 && id.fract() == 0.0)
            .map(|id| id as u64)
            .collect();
        self.registry.report_sent_many(&ids);
    }

    /// Reports a failed delivery (a send or ping callback threw or rejected).
    #[napi]
    pub fn report_failed(&self, id: f64, why: String) {
        if id >= 1.0 && id.fract() == 0.0 {
            let _ = self.registry.report_send(id as u64, Err(why));
        }
    }

    /// Queues a barrier: `dispatch` sees it after everything queued before; false once
    /// released.
    #[napi]
    pub fn barrier(&self, token: f64) -> bool {
        if !self.bridge.push(BARRIER, token.max(0.0) as u64, None, None) {
            return false;
        }
        self.bridge.flush()
    }

    /// Uninstalls the round hook and releases the threadsafe function.
    #[napi]
    pub fn release(&self) {
        self.registry.set_round_hook(None);
        self.bridge.release();
    }
}

/// A connection whose messages JS pulls (core's `Outbox`).
#[napi]
pub struct NativeOutbox {
    outbox: Arc<Outbox>,
    handle: tokio::runtime::Handle,
}

#[napi]
impl NativeOutbox {
    /// The connection's id.
    #[napi(getter)]
    pub fn id(&self) -> f64 {
        self.outbox.id() as f64
    }

    /// The next item if one is queued, else `null`.
    #[napi]
    pub fn try_next(&self) -> Option<NativeItem> {
        self.outbox.try_next().map(NativeItem::from)
    }

    /// The next item, awaited on the manager's runtime.
    #[napi]
    pub fn next<'env>(&self, env: &'env Env) -> Result<Object<'env>> {
        guard(|| {
            let (settle, promise) = Settle::<NativeItem>::new(env)?;
            let outbox = self.outbox.clone();
            drop(self.handle.spawn(async move {
                let item = outbox.next().await;
                drop(outbox);
                settle.resolve(move |_| NativeItem::from(item));
            }));
            Ok(promise)
        })
    }

    /// Records traffic from the client now.
    #[napi]
    pub fn touch(&self) {
        self.outbox.touch();
    }

    /// Closes the outbox: later deliveries fail.
    #[napi]
    pub fn close(&self) {
        self.outbox.close();
    }
}

/// A decoded envelope; `data_json` is the payload as JSON text.
#[napi(object)]
pub struct NativeEnvelope {
    pub kind: String,
    pub topic: Option<String>,
    pub data_json: Option<String>,
    pub timestamp: Option<String>,
    pub error: Option<String>,
}

/// Encodes an envelope stamped now (core's `envelope::encode`).
#[napi]
pub fn envelope_encode(
    kind: String,
    topic: Option<String>,
    data_json: Option<String>,
    error: Option<String>,
) -> Result<String> {
    guard(|| {
        envelope::encode(
            &kind,
            topic.as_deref(),
            data_json.as_deref(),
            error.as_deref(),
        )
        .map_err(to_napi)
    })
}

/// Decodes an envelope (core's `envelope::decode`).
#[napi]
pub fn envelope_decode(text: String) -> Result<NativeEnvelope> {
    guard(|| {
        let e = envelope::decode(&text).map_err(to_napi)?;
        Ok(NativeEnvelope {
            data_json: e.data_json(),
            kind: e.kind,
            topic: e.topic,
            timestamp: e.timestamp,
            error: e.error,
        })
    })
}

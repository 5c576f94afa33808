//! The embedded server's side facing JS (`manager.serverAddress`, `manager.hub`):
//! core's `Hub` as `NativeHub`, which `server.js` wraps.
//!
//! - `recv(timeoutMs)` resolves a promise from the manager's runtime (core's async
//!   `Hub::next` under a timeout), so the event loop never waits; a message already
//!   queued resolves at once.
//! - `setHandler(deliver)` is core's `Hub::set_handler`: the hub calls it on a runtime
//!   thread, and it queues the message to `deliver` on the JS thread through a weak
//!   threadsafe function (listening never keeps Node alive). `null` (or `release()`,
//!   which `manager.close()` calls) lets go of it; the manager's close drops core's
//!   handler too.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use napi::bindgen_prelude::{FnArgs, Function, Object};
use napi::threadsafe_function::{
    ThreadsafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode,
};
use napi::{Env, Status};
use napi_derive::napi;
use switchboard_core::server::{Hub, HubMessage};
use switchboard_core::{Code, Error};

use crate::error::{Result, guard, sb_error, to_napi};
use crate::settle::Settle;

/// One message a hub client sent, as `server.js` gets it (it makes absent fields
/// `null` and adds `json()`).
#[napi(object)]
pub struct NativeHubMessage {
    /// The registry id of the client that sent it.
    pub connection_id: f64,
    /// The client's user (from the auth hook), if any.
    pub user: Option<String>,
    /// The envelope's `type`.
    pub kind: String,
    /// The envelope's `topic`, if any.
    pub topic: Option<String>,
    /// The whole JSON text as the client sent it.
    pub text: String,
}

impl From<HubMessage> for NativeHubMessage {
    fn from(m: HubMessage) -> Self {
        NativeHubMessage {
            connection_id: m.connection_id as f64,
            user: m.user,
            kind: m.kind,
            topic: m.topic,
            text: m.text,
        }
    }
}

/// What `deliver` gets: the message.
pub type DeliverArgs = FnArgs<(NativeHubMessage,)>;

type Tsfn = ThreadsafeFunction<HubMessage, (), DeliverArgs, Status, false, true, 0>;

/// The way into JS of the hub's messages while `'message'` has listeners; shared
/// with core's handler, which does nothing once it is released.
struct Pusher {
    tsfn: Mutex<Option<Tsfn>>,
}

impl Pusher {
    fn push(&self, m: HubMessage) {
        let g = self.tsfn.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = g.as_ref() {
            let _ = t.call(m, ThreadsafeFunctionCallMode::NonBlocking);
        }
    }

    fn release(&self) {
        let t = self.tsfn.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(t);
    }
}

/// The hub of one manager.
#[napi]
pub struct NativeHub {
    hub: Hub,
    handle: tokio::runtime::Handle,
    pusher: Mutex<Option<Arc<Pusher>>>,
}

impl NativeHub {
    pub(crate) fn new(hub: Hub, handle: tokio::runtime::Handle) -> NativeHub {
        NativeHub {
            hub,
            handle,
            pusher: Mutex::new(None),
        }
    }

    fn take_pusher(&self) -> Option<Arc<Pusher>> {
        self.pusher.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// A timeout from JS: milliseconds >= 0 (`None`: wait until a message comes).
fn timeout(ms: Option<f64>) -> Result<Option<Duration>> {
    match ms {
        None => Ok(None),
        Some(v) if v >= 0.0 => Duration::try_from_secs_f64(v / 1000.0)
            .map(Some)
            .map_err(|_| too_long(v)),
        Some(v) => Err(too_long(v)),
    }
}

fn too_long(v: f64) -> napi::Error<crate::error::SbStatus> {
    sb_error(
        Code::InvalidArgument,
        format!("hub.recv timeoutMs must be a number of milliseconds >= 0, got {v}"),
    )
}

#[napi]
impl NativeHub {
    /// The next message, or `null` when none came within `timeout_ms` (none: wait
    /// for one). Rejects with SB_UNAVAILABLE once the manager is closed.
    #[napi]
    pub fn recv<'env>(&self, env: &'env Env, timeout_ms: Option<f64>) -> Result<Object<'env>> {
        guard(|| {
            let wait = timeout(timeout_ms)?;
            let (settle, promise) = Settle::<Option<NativeHubMessage>>::new(env)?;
            // Queued already (or closed): settled at once, no trip through the runtime.
            match self.hub.recv(Duration::ZERO) {
                Ok(Some(m)) => {
                    settle.resolve(move |_| Some(m.into()));
                    return Ok(promise);
                }
                Ok(None) if wait == Some(Duration::ZERO) => {
                    settle.resolve(|_| None);
                    return Ok(promise);
                }
                Ok(None) => {}
                Err(e) => {
                    settle.reject(e);
                    return Ok(promise);
                }
            }
            let hub = self.hub.clone();
            // A task the runtime drops (it shut down) drops `settle`, which rejects.
            drop(self.handle.spawn(async move {
                let r = match wait {
                    Some(d) => tokio::time::timeout(d, hub.next()).await.ok().transpose(),
                    None => hub.next().await.map(Some),
                };
                drop(hub);
                settle.settle(r, |_, m| m.map(NativeHubMessage::from));
            }));
            Ok(promise)
        })
    }

    /// With `deliver`, every later message goes to it on the JS thread instead of the
    /// queue; with `null` they queue again.
    #[napi]
    pub fn set_handler(&self, deliver: Option<Function<'_, DeliverArgs, ()>>) -> Result<()> {
        guard(|| {
            let previous = match deliver {
                Some(f) => {
                    let tsfn: Tsfn = f
                        .build_threadsafe_function::<HubMessage>()
                        .callee_handled::<false>()
                        .weak::<true>()
                        .build_callback(|ctx: ThreadsafeCallContext<HubMessage>| {
                            Ok(FnArgs::from((NativeHubMessage::from(ctx.value),)))
                        })
                        .map_err(|e| {
                            to_napi(Error::internal(format!(
                                "create the threadsafe function for hub messages: {e}"
                            )))
                        })?;
                    let pusher = Arc::new(Pusher {
                        tsfn: Mutex::new(Some(tsfn)),
                    });
                    let theirs = pusher.clone();
                    drop(
                        self.hub
                            .set_handler(Some(Arc::new(move |m: HubMessage| theirs.push(m)))),
                    );
                    self.pusher
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .replace(pusher)
                }
                None => {
                    drop(self.hub.set_handler(None));
                    self.take_pusher()
                }
            };
            if let Some(p) = previous {
                p.release();
            }
            Ok(())
        })
    }

    /// Messages dropped because the queue (`server.hub_queue`) was full.
    #[napi(getter)]
    pub fn dropped(&self) -> f64 {
        self.hub.dropped() as f64
    }

    /// Messages waiting in the queue.
    #[napi(getter)]
    pub fn queued(&self) -> f64 {
        self.hub.queued() as f64
    }

    /// Releases the JS handler's threadsafe function (closing): nothing reaches JS
    /// afterwards. Core's handler is left for the manager's close to drop.
    #[napi]
    pub fn release(&self) {
        if let Some(p) = self.take_pusher() {
            p.release();
        }
    }
}

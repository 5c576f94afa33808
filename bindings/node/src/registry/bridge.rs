//! How core's deliveries reach a connection's JS callbacks.
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

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use napi::Status;
use napi::bindgen_prelude::{Buffer, Either, FnArgs, Function};
use napi::threadsafe_function::{
    ThreadsafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode,
};
use switchboard_core::Error;
use switchboard_core::registry::{ConnId, Message, RoundHook, SendOutcome, Sink};

use super::convert::js_message;
use crate::error::{Result, to_napi};

/// `dispatch` kinds, mirrored in `registry.js`.
const SEND: u32 = 0;
const PING: u32 = 1;
const CLOSE: u32 = 2;
pub(super) const BARRIER: u32 = 3;

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
        if self.messages.last().is_some_and(|last| last.ptr_eq(msg)) {
            return (self.messages.len() - 1) as u32;
        }
        self.messages.push(msg.clone());
        (self.messages.len() - 1) as u32
    }

    fn into_args(self) -> DispatchArgs {
        let messages = self.messages.iter().map(js_message).collect();
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
    pub(super) fn new(dispatch: &Function<'_, DispatchArgs, ()>) -> Result<Arc<Bridge>> {
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
    pub(super) fn push(
        &self,
        kind: u32,
        id: u64,
        msg: Option<&Message>,
        reason: Option<&str>,
    ) -> bool {
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
    pub(super) fn flush(&self) -> bool {
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
    pub(super) fn release(&self) {
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
pub(super) struct JsSink {
    pub(super) bridge: Arc<Bridge>,
    /// Whether the program gave a ping callback (else pings are not sent to JS).
    pub(super) ping: bool,
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
pub(super) struct Hook(pub(super) Arc<Bridge>);

impl RoundHook for Hook {
    fn run(&self, round: &mut dyn FnMut()) {
        round();
        self.0.flush();
    }
}

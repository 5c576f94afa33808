//! Custom connectors: the program's `connect` / `check` / `close` functions, called on
//! the JS thread from the manager's runtime.
//!
//! # Design
//!
//! JS values cannot leave the JS thread, so the pool's connection type is a number: the
//! key under which `index.js` keeps the program's object in a `Map`. Each custom pool
//! has one weak threadsafe function, `dispatch(kind, endpoint, id, token)`, written in
//! `index.js`:
//!
//! - `connect` (from a runtime task): queues `dispatch(CONNECT, endpoint, 0, token)` and
//!   awaits `token`. The JS side calls the program's `connect`, awaits what it returns,
//!   stores the object under a new id and settles the token with that id
//!   ([`settle_call`]), or with the error's message.
//! - `check`: queues `dispatch(CHECK, "", id, token)` and awaits the token.
//! - `close` (on whatever thread lets the connection go): queues
//!   `dispatch(CLOSE, "", id, 0)` without waiting; the JS side calls the program's `close`
//!   and deletes the object from its map.
//! - `BARRIER`: queued by `flush()`; when it arrives every call queued before it has run.
//!
//! A token whose waiter went away (acquire cancelled, connect timeout, manager closed)
//! is gone from the table, so [`settle_call`] returns false and `index.js` closes the
//! object it just made. An id that reached the table but whose waiter dropped it
//! before reading it is closed by [`Made`]'s drop. So every object the program made is
//! closed exactly once.
//!
//! The threadsafe function is weak (it never keeps Node alive) and is released by
//! `release()` (`manager.close()` calls it after the last close has run).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use napi::Status;
use napi::bindgen_prelude::{FnArgs, Function};
use napi::threadsafe_function::{
    ThreadsafeCallContext, ThreadsafeFunction, ThreadsafeFunctionCallMode,
};
use napi_derive::napi;
use switchboard_core::{Code, Endpoint, Error, FnConnector};
use tokio::sync::oneshot;

use crate::error::Result;

/// `dispatch` kinds, mirrored in `index.js`.
const CONNECT: u32 = 0;
const CHECK: u32 = 1;
const CLOSE: u32 = 2;
const BARRIER: u32 = 3;

/// What `index.js` gets: (kind, endpoint, id, token).
pub type DispatchArgs = FnArgs<(u32, String, f64, f64)>;

struct Call {
    kind: u32,
    endpoint: String,
    id: u64,
    token: u64,
}

type Tsfn = ThreadsafeFunction<Call, (), DispatchArgs, Status, false, true, 0>;

/// The answer to one connect or check.
enum Reply {
    /// Connect made the object with this id (its drop closes it unless taken); check
    /// accepted.
    Ok(Option<Made>),
    /// The program's function threw or rejected (or check returned false).
    Err(Error),
}

/// An object id on its way from JS to the pool: closed on drop unless taken.
struct Made {
    id: u64,
    bridge: Arc<Bridge>,
}

impl Made {
    fn take(mut self) -> u64 {
        let id = self.id;
        self.id = 0;
        id
    }
}

impl Drop for Made {
    fn drop(&mut self) {
        if self.id != 0 {
            self.bridge.close(self.id);
        }
    }
}

/// Connects and checks waiting for JS, by token: where to send the reply, and the
/// bridge that closes an object nobody took.
type Pending = HashMap<u64, (oneshot::Sender<Reply>, Arc<Bridge>)>;

fn pending() -> MutexGuard<'static, Pending> {
    static PENDING: OnceLock<Mutex<Pending>> = OnceLock::new();
    PENDING
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// Tokens are process-wide, start at 1 and stay below 2^53 (exact in a JS number).
fn next_token() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Removes its token from the table when the waiting future ends or is dropped.
struct Waiting(u64);

impl Drop for Waiting {
    fn drop(&mut self) {
        pending().remove(&self.0);
    }
}

/// One custom pool's way into JS.
pub struct Bridge {
    tsfn: Mutex<Option<Tsfn>>,
    /// The pool's name, for messages.
    name: String,
}

impl Bridge {
    /// Wraps `dispatch` in a weak threadsafe function.
    pub fn new(dispatch: &Function<'_, DispatchArgs, ()>, name: &str) -> Result<Arc<Bridge>> {
        let tsfn: Tsfn = dispatch
            .build_threadsafe_function::<Call>()
            .callee_handled::<false>()
            .weak::<true>()
            .build_callback(|ctx: ThreadsafeCallContext<Call>| {
                let c = ctx.value;
                Ok(FnArgs::from((
                    c.kind,
                    c.endpoint,
                    c.id as f64,
                    c.token as f64,
                )))
            })
            .map_err(|e| {
                crate::error::to_napi(Error::internal(format!(
                    "create the threadsafe function for the pool's callbacks: {e}"
                )))
            })?;
        Ok(Arc::new(Bridge {
            tsfn: Mutex::new(Some(tsfn)),
            name: name.to_string(),
        }))
    }

    /// Queues a call on the JS thread; false once released (or if Node refused it).
    fn call(&self, call: Call) -> bool {
        let guard = self.tsfn.lock().unwrap_or_else(|p| p.into_inner());
        match guard.as_ref() {
            Some(t) => t.call(call, ThreadsafeFunctionCallMode::NonBlocking) == Status::Ok,
            None => false,
        }
    }

    fn close(&self, id: u64) {
        self.call(Call {
            kind: CLOSE,
            endpoint: String::new(),
            id,
            token: 0,
        });
    }

    /// Queues a barrier (see the module doc); false once released.
    pub fn flush(&self, token: u64) -> bool {
        self.call(Call {
            kind: BARRIER,
            endpoint: String::new(),
            id: 0,
            token,
        })
    }

    /// Releases the threadsafe function: no call reaches JS afterwards.
    pub fn release(&self) {
        let t = self.tsfn.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(t);
    }

    /// Queues `kind` and waits for its token to be settled.
    async fn ask(self: Arc<Self>, kind: u32, endpoint: String, id: u64) -> Reply {
        let token = next_token();
        let (tx, rx) = oneshot::channel();
        pending().insert(token, (tx, self.clone()));
        let _waiting = Waiting(token);
        let what = if kind == CONNECT { "connect" } else { "check" };
        if !self.call(Call {
            kind,
            endpoint,
            id,
            token,
        }) {
            return Reply::Err(Error::unavailable(format!(
                "the {what} callback of pool \"{}\" can no longer be called: its manager is closed",
                self.name
            )));
        }
        rx.await.unwrap_or_else(|_| {
            Reply::Err(Error::unavailable(format!(
                "the {what} callback of pool \"{}\" was dropped unanswered (the manager closed)",
                self.name
            )))
        })
    }

    /// The core connector calling this bridge.
    pub fn connector(self: &Arc<Self>, has_check: bool) -> FnConnector<u64> {
        let b = self.clone();
        let mut c = FnConnector::new(move |ep: &Endpoint| {
            let b = b.clone();
            let ep = ep.to_string();
            Box::pin(async move {
                match b.ask(CONNECT, ep, 0).await {
                    Reply::Ok(Some(made)) => Ok(made.take()),
                    Reply::Ok(None) => Err(Error::internal("connect settled without an object")),
                    Reply::Err(e) => Err(e),
                }
            })
        });
        if has_check {
            let b = self.clone();
            c = c.with_check(move |id: u64| {
                let b = b.clone();
                Box::pin(async move {
                    match b.ask(CHECK, String::new(), id).await {
                        Reply::Ok(_) => Ok(()),
                        Reply::Err(e) => Err(e),
                    }
                })
            });
        }
        let b = self.clone();
        c.with_close(move |id: u64| b.close(id))
    }
}

/// Settles a connect or check token from `index.js`: `ok` with the new object's `id`
/// (connect) or acceptance (check), else the error's `code` (an `SB_*` name, or none)
/// and `message`. Returns false when nobody waits for the token any more; then a
/// connect's object must be closed by the caller.
#[napi]
pub fn settle_call(
    token: f64,
    ok: bool,
    id: f64,
    code: Option<String>,
    message: Option<String>,
) -> bool {
    if !(token >= 1.0 && token.fract() == 0.0) {
        return false;
    }
    let Some((tx, bridge)) = pending().remove(&(token as u64)) else {
        return false;
    };
    let reply = if ok {
        let made = (id >= 1.0 && id.fract() == 0.0).then(|| Made {
            id: id as u64,
            bridge,
        });
        Reply::Ok(made)
    } else {
        let code = code
            .as_deref()
            .and_then(|c| Code::ALL.iter().copied().find(|k| k.sb_name() == c))
            .unwrap_or(Code::Unavailable);
        Reply::Err(Error::new(code, message.unwrap_or_default()))
    };
    match tx.send(reply) {
        Ok(()) => true,
        Err(reply) => {
            // The waiter left meanwhile: the caller closes the object (returning false
            // tells it to), so it must not be closed from here too.
            if let Reply::Ok(Some(made)) = reply {
                made.take();
            }
            false
        }
    }
}

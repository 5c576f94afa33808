//! The program's authenticate/authorize hooks, two ways.
//!
//! - On the JS thread, for one call: `registry.js` passes the hooks to each
//!   `register` / `subscribe` call, and [`JsAuth`] (holding the function references for
//!   that call) is the `&dyn Authenticator` given to core's `*_with_auth` methods. The
//!   hooks run synchronously; nothing waits.
//! - Installed in core for every other caller ([`Installed`]): the server's hub calls
//!   the registry's installed authenticator from a blocking-pool thread. [`Installed`]
//!   queues the call to the JS thread through a weak threadsafe function and waits for
//!   the answer, at most [`WAIT`]; past it (the JS thread is busy, or gone) the token or
//!   the subscribe is refused with a reason that says so. Called on the JS thread
//!   itself it refuses at once (it would wait for itself): the JS calls take the
//!   per-call path above, so that only happens if core changes.

use std::sync::mpsc;
use std::thread::ThreadId;
use std::time::Duration;

use napi::Status;
use napi::bindgen_prelude::{FnArgs, Function};
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use switchboard_core::Error;
use switchboard_core::registry::{AuthGrant, Authenticator, ConnId};

use super::convert::pairs;
use crate::error::{Result, to_napi};

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

pub(super) type AuthnFn<'a> = Function<'a, String, NativeGrant>;
/// `(id, user, topic)` -> `null` (allowed) or the refusal's reason.
pub(super) type AuthzFn<'a> = Function<'a, FnArgs<(f64, Option<String>, String)>, Option<String>>;

/// How long a hub thread waits for the JS thread to answer a hook.
pub(super) const WAIT: Duration = Duration::from_secs(5);

/// The program's hooks for one call, on the JS thread.
pub(super) struct JsAuth<'a> {
    pub(super) authenticate: Option<AuthnFn<'a>>,
    pub(super) authorize: Option<AuthzFn<'a>>,
}

impl JsAuth<'_> {
    pub(super) fn is_set(&self) -> bool {
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

/// A grant (or refusal) as core takes it.
fn granted(g: NativeGrant) -> std::result::Result<AuthGrant, String> {
    if !g.ok {
        return Err(g.why.unwrap_or_else(|| "refused".to_string()));
    }
    Ok(AuthGrant {
        user: g.user,
        metadata: pairs(g.metadata).map_err(|e| e.reason.clone())?,
    })
}

impl Authenticator for JsAuth<'_> {
    fn authenticate(&self, token: &str) -> std::result::Result<AuthGrant, String> {
        let Some(f) = &self.authenticate else {
            return Err("no authenticate hook is set".to_string());
        };
        match f.call(token.to_string()) {
            Ok(g) => granted(g),
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

type AuthnTsfn = ThreadsafeFunction<String, NativeGrant, String, Status, false, true, 0>;
type AuthzArgs = (f64, Option<String>, String);
type AuthzTsfn =
    ThreadsafeFunction<AuthzArgs, Option<String>, FnArgs<AuthzArgs>, Status, false, true, 0>;

/// The hooks installed in core (`Registry::set_authenticator`), for callers off the JS
/// thread (the hub). Weak threadsafe functions: installing them never keeps Node alive.
/// Dropped (cleared, replaced, or the registry released) they let go of the JS
/// functions, and a call still waiting is refused at once.
pub(super) struct Installed {
    authenticate: AuthnTsfn,
    authorize: Option<AuthzTsfn>,
    js_thread: ThreadId,
}

fn tsfn_error(what: &str, e: &napi::Error) -> napi::Error<crate::error::SbStatus> {
    to_napi(Error::internal(format!(
        "create the threadsafe function for the {what} hook: {e}"
    )))
}

impl Installed {
    /// Made on the JS thread from `registry.js`'s wrappers (which never throw).
    pub(super) fn new(authenticate: &AuthnFn<'_>, authorize: Option<&AuthzFn<'_>>) -> Result<Self> {
        let authenticate = authenticate
            .build_threadsafe_function::<String>()
            .callee_handled::<false>()
            .weak::<true>()
            .build()
            .map_err(|e| tsfn_error("authenticate", &e))?;
        let authorize = match authorize {
            None => None,
            Some(f) => Some(
                f.build_threadsafe_function::<AuthzArgs>()
                    .callee_handled::<false>()
                    .weak::<true>()
                    .build_callback(|ctx| Ok(FnArgs::from(ctx.value)))
                    .map_err(|e| tsfn_error("authorize", &e))?,
            ),
        };
        Ok(Installed {
            authenticate,
            authorize,
            js_thread: std::thread::current().id(),
        })
    }

    /// Calls a hook on the JS thread and waits for its answer, at most [`WAIT`].
    fn ask<R: Send + 'static>(
        &self,
        what: &str,
        call: impl FnOnce(mpsc::SyncSender<napi::Result<R>>) -> Status,
    ) -> std::result::Result<R, String> {
        if std::thread::current().id() == self.js_thread {
            return Err(format!(
                "the {what} hook was called on the JS thread through core's installed hook, which would wait for itself"
            ));
        }
        let (tx, rx) = mpsc::sync_channel(1);
        let status = call(tx);
        if status != Status::Ok {
            return Err(format!(
                "the {what} hook cannot reach the JS thread ({status}): the manager is closing"
            ));
        }
        match rx.recv_timeout(WAIT) {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(reason_of(&e)),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(format!(
                "the {what} hook did not answer within {} s (the JS thread is busy)",
                WAIT.as_secs()
            )),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(format!(
                "the {what} hook was not called: the JS side let go of it (the manager is closing)"
            )),
        }
    }
}

impl Authenticator for Installed {
    fn authenticate(&self, token: &str) -> std::result::Result<AuthGrant, String> {
        let grant = self.ask("authenticate", |tx| {
            self.authenticate.call_with_return_value(
                token.to_string(),
                ThreadsafeFunctionCallMode::NonBlocking,
                move |r, _env| {
                    let _ = tx.try_send(r);
                    Ok(())
                },
            )
        })?;
        granted(grant)
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
        let refusal = self.ask("authorize", |tx| {
            f.call_with_return_value(
                (id as f64, user.map(str::to_string), topic.to_string()),
                ThreadsafeFunctionCallMode::NonBlocking,
                move |r, _env| {
                    let _ = tx.try_send(r);
                    Ok(())
                },
            )
        })?;
        match refusal {
            None => Ok(()),
            Some(why) => Err(why),
        }
    }
}

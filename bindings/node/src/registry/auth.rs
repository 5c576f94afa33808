//! The program's authenticate/authorize hooks, for one call.
//!
//! The JS hooks must run synchronously on the JS thread, so they are not installed in
//! core: `registry.js` passes them to each `register` / `subscribe` call, and [`JsAuth`]
//! (holding the function references for that call) is the `&dyn Authenticator` given
//! to core's `*_with_auth` methods.

use napi::bindgen_prelude::{FnArgs, Function};
use napi_derive::napi;
use switchboard_core::registry::{AuthGrant, Authenticator, ConnId};

use super::convert::pairs;

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

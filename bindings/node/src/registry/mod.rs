//! The live-connection registry (`manager.registry` in JS): core's `Registry`, method
//! by method, as `NativeRegistry`. Around it, one concept a module:
//!
//! - [`bridge`]: core's deliveries to the connections' JS callbacks, one threadsafe
//!   call per delivery round;
//! - [`auth`]: the JS authenticate/authorize hooks, given to core per call on the JS
//!   thread, and installed in core for the hub (which waits for the JS thread);
//! - [`outbox`]: `NativeOutbox`, a connection whose messages JS pulls;
//! - [`convert`]: JS arguments as core values, core snapshots as JS objects (those
//!   the cluster shares are re-exported below).
//!
//! Every check and every error message comes from core; this module only translates.

mod auth;
mod bridge;
mod convert;
mod outbox;

use std::sync::Arc;

use napi::bindgen_prelude::{Buffer, Either, Function};
use napi_derive::napi;
use switchboard_core::registry::{ConnId, Registration, Registry};

use crate::error::{Result, guard, to_napi};

use auth::{AuthnFn, AuthzFn, Installed, JsAuth};
pub use bridge::DispatchArgs;
use bridge::{BARRIER, Bridge, Hook, JsSink};
/// The converters the cluster (`crate::cluster`) shares, so that its targets, list
/// filters, snapshots and statistics are the registry's.
pub(crate) use convert::{
    NativeBroadcastReport, NativeConnInfo, NativeListFilter, NativeRegistryStats, NativeTarget,
    counts, list_filter, message, target,
};
use convert::{NativeCleanupReport, NativeListPage, conn_id, pairs, reported_id};
use outbox::NativeOutbox;

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
            Ok(NativeOutbox::new(
                outbox.map_err(to_napi)?,
                self.handle.clone(),
            ))
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
        to: NativeTarget,
    ) -> Result<NativeBroadcastReport> {
        guard(|| {
            let t = target(to)?;
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
    pub fn list(&self, filter: NativeListFilter) -> Result<NativeListPage> {
        guard(|| {
            let filter = list_filter(filter)?;
            Ok(self.registry.list(&filter).map_err(to_napi)?.into())
        })
    }

    /// Removes every connection the target matches for `reason`; returns how many.
    #[napi]
    pub fn disconnect(&self, to: NativeTarget, reason: Option<String>) -> Result<f64> {
        guard(|| {
            let t = target(to)?;
            self.registry
                .disconnect(&t, reason.as_deref().unwrap_or(""))
                .map(|n| n as f64)
                .map_err(to_napi)
        })
    }

    /// The registry's statistics.
    #[napi]
    pub fn stats(&self) -> Result<NativeRegistryStats> {
        guard(|| Ok(self.registry.stats().map_err(to_napi)?.into()))
    }

    /// Runs the heartbeat and stale-cleanup pass now.
    #[napi]
    pub fn cleanup(&self) -> Result<NativeCleanupReport> {
        guard(|| Ok(self.registry.cleanup().map_err(to_napi)?.into()))
    }

    /// Reports sends that JS completed (a batch of connection ids; one per message).
    /// Ids that left meanwhile are skipped.
    #[napi]
    pub fn report_sent(&self, ids: Vec<f64>) {
        let ids: Vec<ConnId> = ids.into_iter().filter_map(reported_id).collect();
        self.registry.report_sent_many(&ids);
    }

    /// Reports a failed delivery (a send or ping callback threw or rejected).
    #[napi]
    pub fn report_failed(&self, id: f64, why: String) {
        if let Some(id) = reported_id(id) {
            let _ = self.registry.report_send(id, Err(why));
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

    /// Installs the authenticate/authorize wrappers (`registry.js`'s) in core, for the
    /// callers off the JS thread (the server's hub); `null` uninstalls them. The JS
    /// calls keep passing the hooks per call and never use these.
    #[napi]
    pub fn set_authenticator(
        &self,
        authenticate: Option<AuthnFn<'_>>,
        authorize: Option<AuthzFn<'_>>,
    ) -> Result<()> {
        guard(|| {
            let installed = match &authenticate {
                Some(f) => Some(Arc::new(Installed::new(f, authorize.as_ref())?)
                    as switchboard_core::registry::SharedAuthenticator),
                None => None,
            };
            drop(self.registry.set_authenticator(installed));
            Ok(())
        })
    }

    /// Uninstalls the round hook and the installed authenticator, and releases their
    /// threadsafe functions.
    #[napi]
    pub fn release(&self) {
        self.registry.set_round_hook(None);
        drop(self.registry.set_authenticator(None));
        self.bridge.release();
    }
}

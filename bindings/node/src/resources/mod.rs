//! Named shared connections (`manager.resources` in JS): core's `Resources`, method by
//! method, as `NativeResources`; [`handle`] holds one consumer's share
//! (`NativeResourceHandle`) with its promise-based read and write.
//!
//! Every check and every error message comes from core; this module only translates.
//! Props arrive from `resources.js` as a flat `[key, value, key, value, ...]` list of
//! strings, in the program's order, so core names the first bad key.
//!
//! Core's `update` and `wait_ready(id)` block the calling thread (they `block_on` the
//! manager's runtime), so they run on a thread of their own and settle a promise from
//! there, as `close()` does; the JS thread never waits.

mod handle;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use napi::Env;
use napi::bindgen_prelude::{Function, Object};
use napi_derive::napi;
use switchboard_core::runtime::RuntimeShared;
use switchboard_core::{Error, ResourceInfo, Resources};

use crate::custom::{Bridge, DispatchArgs};
use crate::error::{Result, guard, to_napi};
use crate::health::ms;
use crate::manager::duration;
use crate::settle::Settle;

pub use handle::NativeResourceHandle;

/// A snapshot of one resource (core's `ResourceInfo`; absent values are `null`).
#[napi(object)]
pub struct NativeResourceInfo {
    pub id: String,
    /// `tcp`, `unix` or a registered type.
    pub kind: String,
    pub endpoint: String,
    pub anonymous: bool,
    /// `connecting`, `connected`, `recovering` or `disconnected`.
    pub status: String,
    pub last_error: Option<String>,
    pub stopped: bool,
    pub consumers: Vec<String>,
    pub reconnects: f64,
    pub bytes_in: f64,
    pub bytes_out: f64,
    /// Milliseconds the current connection has been up; `null` unless connected.
    pub connected_for_ms: Option<f64>,
}

impl From<ResourceInfo> for NativeResourceInfo {
    fn from(i: ResourceInfo) -> Self {
        NativeResourceInfo {
            id: i.id,
            kind: i.kind,
            endpoint: i.endpoint,
            anonymous: i.anonymous,
            status: i.status.as_str().to_string(),
            last_error: i.last_error,
            stopped: i.stopped,
            consumers: i.consumers,
            reconnects: i.reconnects as f64,
            bytes_in: i.bytes_in as f64,
            bytes_out: i.bytes_out as f64,
            connected_for_ms: i.connected_for.map(ms),
        }
    }
}

/// `[k1, v1, k2, v2, ...]` as core's `(key, value)` pairs (`resources.js` builds the
/// list, always of even length).
fn props(flat: &[String]) -> Vec<(&str, &str)> {
    flat.chunks_exact(2)
        .map(|kv| (kv[0].as_str(), kv[1].as_str()))
        .collect()
}

/// Runs the blocking `work` on a thread of its own and settles a promise with it.
fn off_thread<'env>(
    env: &'env Env,
    name: &str,
    work: impl FnOnce() -> switchboard_core::Result<()> + Send + 'static,
) -> Result<Object<'env>> {
    let (settle, promise) = Settle::<()>::new(env)?;
    // Shared with the thread so that it can still reject if the thread cannot start.
    let slot = Arc::new(Mutex::new(Some(settle)));
    let theirs = slot.clone();
    let spawned = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let r = work();
            if let Some(s) = take(&theirs) {
                s.settle(r, |_, ()| ());
            }
        });
    if let Err(e) = spawned
        && let Some(s) = take(&slot)
    {
        s.reject(Error::from_io("start a thread", &e));
    }
    Ok(promise)
}

fn take<T>(slot: &Mutex<Option<T>>) -> Option<T> {
    slot.lock().unwrap_or_else(|p| p.into_inner()).take()
}

/// The native resources of one manager.
#[napi]
pub struct NativeResources {
    resources: Resources,
    rt: Arc<RuntimeShared>,
    /// The bridges of registered types, released by `releaseCallbacks()`.
    bridges: Mutex<Vec<(String, Arc<Bridge>)>>,
}

impl NativeResources {
    pub fn new(resources: &Resources, rt: Arc<RuntimeShared>) -> Self {
        NativeResources {
            resources: resources.clone(),
            rt,
            bridges: Mutex::new(Vec::new()),
        }
    }

    fn bridges(&self) -> std::sync::MutexGuard<'_, Vec<(String, Arc<Bridge>)>> {
        self.bridges.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[napi]
impl NativeResources {
    /// Creates resource `id` of `kind` with `props` (flat key/value list).
    #[napi]
    pub fn create(&self, id: String, kind: String, props_flat: Vec<String>) -> Result<()> {
        guard(|| {
            self.resources
                .create(&id, &kind, &props(&props_flat))
                .map_err(to_napi)
        })
    }

    /// Attaches `consumer` to resource `id`.
    #[napi]
    pub fn attach(&self, id: String, consumer: String) -> Result<NativeResourceHandle> {
        guard(|| {
            let h = self.resources.attach(&id, &consumer).map_err(to_napi)?;
            Ok(NativeResourceHandle::new(h, self.rt.clone()))
        })
    }

    /// Attaches `consumer` to the anonymous resource of `kind` with `props`.
    #[napi]
    pub fn attach_anonymous(
        &self,
        kind: String,
        props_flat: Vec<String>,
        consumer: String,
    ) -> Result<NativeResourceHandle> {
        guard(|| {
            let h = self
                .resources
                .attach_anonymous(&kind, &props(&props_flat), &consumer)
                .map_err(to_napi)?;
            Ok(NativeResourceHandle::new(h, self.rt.clone()))
        })
    }

    /// Updates resource `id` to `props`; resolves once the new connection is swapped in.
    #[napi]
    pub fn update<'env>(
        &self,
        env: &'env Env,
        id: String,
        props_flat: Vec<String>,
    ) -> Result<Object<'env>> {
        guard(|| {
            let resources = self.resources.clone();
            off_thread(env, "switchboard-resource-update", move || {
                resources.update(&id, &props(&props_flat))
            })
        })
    }

    /// Deletes resource `id` (with `force`, detaching its consumers).
    #[napi]
    pub fn delete(&self, id: String, force: bool) -> Result<()> {
        guard(|| self.resources.delete(&id, force).map_err(to_napi))
    }

    /// A snapshot of resource `id`.
    #[napi]
    pub fn get(&self, id: String) -> Result<NativeResourceInfo> {
        guard(|| Ok(self.resources.get(&id).map_err(to_napi)?.into()))
    }

    /// Every resource, sorted by id.
    #[napi]
    pub fn list(&self) -> Result<Vec<NativeResourceInfo>> {
        guard(|| {
            Ok(self
                .resources
                .list()
                .map_err(to_napi)?
                .into_iter()
                .map(Into::into)
                .collect())
        })
    }

    /// Resolves when resource `id` is connected (SB_TIMEOUT after `timeout`).
    #[napi]
    pub fn wait_ready<'env>(
        &self,
        env: &'env Env,
        id: String,
        timeout: String,
    ) -> Result<Object<'env>> {
        guard(|| {
            let timeout: Duration = duration("waitReady timeout", &timeout)?;
            let resources = self.resources.clone();
            off_thread(env, "switchboard-resource-wait", move || {
                resources.wait_ready(&id, timeout)
            })
        })
    }

    /// A consumer of resource `id` saw an error: check (and probe) it now.
    #[napi]
    pub fn report_failure(&self, id: String) -> Result<()> {
        guard(|| self.resources.report_failure(&id).map_err(to_napi))
    }

    /// Registers connector type `name` whose objects the program's callbacks make,
    /// through `dispatch` (written by `index.js`, as for custom pools; see `custom.rs`).
    #[napi]
    pub fn register_type(
        &self,
        name: String,
        dispatch: Function<'_, DispatchArgs, ()>,
        has_check: bool,
    ) -> Result<()> {
        guard(|| {
            let bridge = Bridge::new(&dispatch, &name)?;
            match self
                .resources
                .register_type::<u64>(&name, bridge.connector(has_check))
            {
                Ok(()) => {
                    self.bridges().push((name.clone(), bridge));
                    Ok(())
                }
                Err(e) => {
                    bridge.release();
                    Err(to_napi(e))
                }
            }
        })
    }

    /// Queues a barrier through type `name`'s callbacks (see `custom.rs`); false if
    /// it is not registered here or already released.
    #[napi]
    pub fn flush(&self, name: String, token: f64) -> bool {
        if !(token >= 1.0 && token.fract() == 0.0) {
            return false;
        }
        self.bridges()
            .iter()
            .find(|(n, _)| *n == name)
            .is_some_and(|(_, b)| b.flush(token as u64))
    }

    /// Releases the registered types' threadsafe functions; no callback runs afterwards.
    #[napi]
    pub fn release_callbacks(&self) {
        for (_, b) in self.bridges().drain(..) {
            b.release();
        }
    }
}

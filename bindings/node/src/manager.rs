//! `NativeManager`: the root object, owning the core manager and its runtime.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use napi::Env;
use napi::bindgen_prelude::{Function, Object};
use napi_derive::napi;
use switchboard_core::config::parse_duration;
use switchboard_core::events::Event;
use switchboard_core::{Code, Config, Error, Manager};

use crate::custom::{Bridge, DispatchArgs};
use crate::error::{Result, guard, sb_error, to_napi};
use crate::events::{DeliverArgs, Emitter};
use crate::pool::NativePool;
use crate::settle::Settle;

/// How long `close()` waits for leases to come back when no timeout is given.
const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Builds a core config from JS options whose values `index.js` already turned into
/// strings; keys may be spelled `pool.max_size`, `max_size`, `maxSize`, `poolMaxSize`.
pub fn config_from(options: Option<HashMap<String, String>>, section: &str) -> Result<Config> {
    let mut cfg = Config::new();
    let mut entries: Vec<(String, String)> = options.unwrap_or_default().into_iter().collect();
    // Report the first bad key in a stable order, whatever the map's order.
    entries.sort();
    for (key, value) in entries {
        cfg.set_natural(&key, section, &value).map_err(to_napi)?;
    }
    Ok(cfg)
}

/// A duration from JS as `index.js` passes it: a string such as "250ms" or "1.5s", or a
/// bare number of milliseconds as a string. `what` names it in the error.
pub fn duration(what: &str, value: &str) -> Result<Duration> {
    parse_duration(value).ok_or_else(|| {
        sb_error(
            Code::InvalidArgument,
            format!(
                "{what} must be a duration such as \"250ms\" or \"1.5s\", or a number of milliseconds >= 0, got \"{}\"",
                value.escape_default()
            ),
        )
    })
}

/// One event as the native side hands it to `index.js` (which makes `time` a `Date`
/// and absent fields `null`).
#[napi(object)]
pub struct NativeEvent {
    /// `leak_suspected`, `connection_state`, `breaker_state`, ... (core's names).
    pub kind: String,
    /// The pool it concerns ("" when none).
    pub pool: String,
    /// The endpoint it concerns, as written in the pool's target.
    pub endpoint: Option<String>,
    /// The connection it concerns, if one.
    pub connection_id: Option<f64>,
    /// The session it concerns, if one.
    pub session_id: Option<f64>,
    /// The stream it concerns, if one.
    pub stream: Option<String>,
    /// For state changes: the state before.
    pub old_state: Option<String>,
    /// For state changes: the state after (health checks: `ok` or `failed`).
    pub new_state: Option<String>,
    /// How long the lease had been held (leak events) or the check took (health
    /// checks), in milliseconds.
    pub age_ms: Option<f64>,
    /// The registry topic it concerns, if one.
    pub topic: Option<String>,
    /// The user of the registry connection it concerns, if it has one.
    pub user: Option<String>,
    /// Why a registry connection left, which policy a slow consumer met, or which
    /// limit refused a call.
    pub reason: Option<String>,
    /// The resource it concerns (`resource_state`, `resource_detached`,
    /// `resource_rebound`), if one.
    pub resource: Option<String>,
    /// A sentence for humans.
    pub message: String,
    /// When it happened, milliseconds since the Unix epoch.
    pub time: f64,
}

impl From<Event> for NativeEvent {
    fn from(e: Event) -> Self {
        NativeEvent {
            kind: e.kind.as_str().to_string(),
            pool: e.pool,
            endpoint: e.endpoint,
            connection_id: e.connection_id.map(|id| id as f64),
            session_id: e.session_id.map(|id| id as f64),
            stream: e.stream,
            old_state: e.old_state.map(str::to_string),
            new_state: e.new_state.map(str::to_string),
            age_ms: e.age.map(|a| a.as_secs_f64() * 1000.0),
            topic: e.topic,
            user: e.user,
            reason: e.reason,
            resource: e.resource,
            message: e.message,
            time: crate::health::epoch_ms(e.time),
        }
    }
}

/// The native manager. Closing runs on a thread of its own; a manager that is
/// garbage-collected unclosed is closed on a thread of its own too, never on the JS
/// thread.
#[napi]
pub struct NativeManager {
    inner: Option<Manager>,
    /// The JS event sink while `'event'` has listeners.
    emitter: Mutex<Option<Arc<Emitter>>>,
}

impl NativeManager {
    pub(crate) fn manager(&self) -> Result<&Manager> {
        self.inner
            .as_ref()
            .ok_or_else(|| to_napi(Error::unavailable("the manager is closed")))
    }
}

#[napi]
impl NativeManager {
    /// Creates a manager; `options` keys default to the `runtime` section.
    #[napi(constructor)]
    pub fn new(options: Option<HashMap<String, String>>) -> Result<Self> {
        guard(|| {
            let cfg = config_from(options, "runtime")?;
            let manager = Manager::new(&cfg).map_err(to_napi)?;
            Ok(NativeManager {
                inner: Some(manager),
                emitter: Mutex::new(None),
            })
        })
    }

    /// Creates a pool; `options` keys default to the `pool` section. With `dispatch`
    /// (written by `index.js`, see `custom.rs`) the pool's connections are the
    /// program's objects, made by its callbacks; `has_check` says whether it has one.
    #[napi]
    pub fn pool(
        &self,
        name: String,
        target: String,
        options: Option<HashMap<String, String>>,
        dispatch: Option<Function<'_, DispatchArgs, ()>>,
        has_check: Option<bool>,
    ) -> Result<NativePool> {
        guard(|| {
            let cfg = config_from(options, "pool")?;
            let manager = self.manager()?;
            let bridge = match &dispatch {
                Some(f) => Some(Bridge::new(f, &name)?),
                None => None,
            };
            let connector = bridge
                .as_ref()
                .map(|b| b.connector(has_check.unwrap_or(false)));
            let pool = manager
                .pool_any(&name, &target, &cfg, connector)
                .map_err(to_napi);
            match pool {
                Ok(pool) => Ok(NativePool::new(pool, bridge)),
                Err(e) => {
                    if let Some(b) = bridge {
                        b.release();
                    }
                    Err(e)
                }
            }
        })
    }

    /// The manager's registry, whose send callbacks reach JS through `dispatch`
    /// (written by `registry.js`; see `registry.rs`). Called once per manager.
    #[napi]
    pub fn registry(
        &self,
        dispatch: Function<'_, crate::registry::DispatchArgs, ()>,
    ) -> Result<crate::registry::NativeRegistry> {
        guard(|| {
            let manager = self.manager()?;
            crate::registry::NativeRegistry::new(
                manager.registry(),
                manager.runtime().handle().clone(),
                &dispatch,
            )
        })
    }

    /// The manager's named resources (see `resources/`).
    #[napi]
    pub fn resources(&self) -> Result<crate::resources::NativeResources> {
        guard(|| {
            let manager = self.manager()?;
            Ok(crate::resources::NativeResources::new(
                manager.resources(),
                manager.runtime().clone(),
            ))
        })
    }

    /// The embedded server's bound address (`"127.0.0.1:PORT"`), or `null` when
    /// `server.listen` is off.
    #[napi(getter)]
    pub fn server_address(&self) -> Result<Option<String>> {
        guard(|| Ok(self.manager()?.server_address().map(|a| a.to_string())))
    }

    /// The gRPC sessions service's address (the server's own unless
    /// `server.grpc_listen`), or `null` when the server is off.
    #[napi(getter)]
    pub fn grpc_address(&self) -> Result<Option<String>> {
        guard(|| Ok(self.manager()?.grpc_address().map(|a| a.to_string())))
    }

    /// The server's WebSocket hub: what hub clients send to the program (see
    /// `server.rs`). Called once per manager.
    #[napi]
    pub fn hub(&self) -> Result<crate::server::NativeHub> {
        guard(|| {
            let manager = self.manager()?;
            Ok(crate::server::NativeHub::new(
                manager.hub().clone(),
                manager.runtime().handle().clone(),
            ))
        })
    }

    /// Moves a manual clock (`runtime.clock = manual`) forward by `by` (a duration).
    #[napi]
    pub fn advance_clock(&self, by: String) -> Result<()> {
        guard(|| {
            let by = duration("advanceClock", &by)?;
            self.manager()?.advance_clock(by).map_err(to_napi)
        })
    }

    /// The manager's metrics as Prometheus/OpenMetrics text (`switchboard_pool_*`).
    #[napi]
    pub fn metrics_text(&self) -> Result<String> {
        guard(|| Ok(self.manager()?.metrics_text()))
    }

    /// The next queued event, or `null`; never waits (core `poll_event(0)`).
    #[napi]
    pub fn poll_event(&self) -> Result<Option<NativeEvent>> {
        guard(|| {
            Ok(self
                .manager()?
                .poll_event(Duration::ZERO)
                .map(NativeEvent::from))
        })
    }

    /// With `deliver`, events go to it on the JS thread (through a weak threadsafe
    /// function) instead of the queue; with `null` they go to the queue again.
    #[napi]
    pub fn set_event_listener(&self, deliver: Option<Function<'_, DeliverArgs, ()>>) -> Result<()> {
        guard(|| {
            let manager = self.manager()?;
            if deliver.is_some() && manager.is_closed() {
                return Err(to_napi(Error::unavailable("the manager is closed")));
            }
            crate::events::set_listener(manager, &self.emitter, deliver.as_ref())
        })
    }

    /// Events dropped because the queue was full and nobody polled.
    #[napi]
    pub fn events_dropped(&self) -> Result<f64> {
        guard(|| Ok(self.manager()?.events_dropped() as f64))
    }

    /// Whether `close()` has been called.
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.inner.as_ref().is_none_or(Manager::is_closed)
    }

    /// Closes the manager on a thread of its own (the core close blocks while it waits
    /// for leases and joins the runtime's threads) and resolves when it is done.
    #[napi]
    pub fn close<'env>(&self, env: &'env Env, timeout: Option<String>) -> Result<Object<'env>> {
        guard(|| {
            let timeout = match timeout {
                Some(t) => duration("close timeout", &t)?,
                None => DEFAULT_CLOSE_TIMEOUT,
            };
            let (settle, promise) = Settle::<()>::new(env)?;
            // No event reaches JS once closing starts.
            if let Some(m) = &self.inner {
                m.set_event_callback(None);
            }
            crate::events::release(&self.emitter);
            let Some(manager) = self.inner.clone() else {
                settle.resolve(|_| ());
                return Ok(promise);
            };
            // The settling half is shared with the thread so that it can still reject the
            // promise if the thread cannot start (a promise already returned must settle).
            let slot = Arc::new(Mutex::new(Some(settle)));
            let theirs = slot.clone();
            let spawned = std::thread::Builder::new()
                .name("switchboard-close".into())
                .spawn(move || {
                    let r = manager.close(timeout);
                    drop(manager);
                    if let Some(s) = take(&theirs) {
                        s.settle(r, |_, ()| ());
                    }
                });
            if let Err(e) = spawned
                && let Some(s) = take(&slot)
            {
                s.reject(Error::from_io("start the closing thread", &e));
            }
            Ok(promise)
        })
    }
}

fn take<T>(slot: &Mutex<Option<T>>) -> Option<T> {
    slot.lock().unwrap_or_else(|p| p.into_inner()).take()
}

impl Drop for NativeManager {
    fn drop(&mut self) {
        // On the JS thread (a finalizer): no event reaches JS any more.
        if let Some(m) = &self.inner {
            m.set_event_callback(None);
        }
        crate::events::release(&self.emitter);
        // Garbage-collected unclosed: closing joins the runtime's threads, which must not
        // happen on the JS thread. (If no thread can start, it happens here after all.)
        if let Some(m) = self.inner.take()
            && !m.is_closed()
        {
            let _ = std::thread::Builder::new()
                .name("switchboard-close".into())
                .spawn(move || drop(m));
        }
    }
}

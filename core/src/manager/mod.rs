//! The manager: the root object that owns the runtime, the pools and the server.

pub(crate) mod parts;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

use crate::clock::{ManualClock, SharedClock, SystemClock};
use crate::cluster::Cluster;
use crate::cluster::settings::ClusterSettings;
use crate::config::Config;
use crate::connector::{Connector, TcpConnector, TcpSettings};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};
use crate::events::{Event, EventBus, EventCallback};
use crate::pool::{Pool, PoolStats};
use crate::server::{Hub, Server, ServerSettings};

use crate::registry::Registry;
use crate::resources::Resources;
use crate::runtime::{self, RuntimeShared};
use crate::sessions::Sessions;
use parts::Parts;

struct ManagerInner {
    config: Config,
    rt: Arc<RuntimeShared>,
    runtime: Mutex<Option<Runtime>>,
    /// The pools, sessions, registry, resources and hub, shared with the server.
    parts: Arc<Parts>,
    /// The embedded server, when `server.listen` is set.
    server: Option<Server>,
    next_serial: std::sync::atomic::AtomicU64,
    closed: AtomicBool,
    clock: SharedClock,
    events: Arc<EventBus>,
    /// Set when `runtime.clock = manual` (or [`Manager::with_clock`] was given one).
    manual_clock: Option<ManualClock>,
}

/// The root object a program creates once: owns the tokio runtime, the pools and
/// (later) everything else. Cheap to clone; the last clone dropped closes it.
///
/// ```no_run
/// use std::time::Duration;
/// use switchboard_core::{Config, Manager};
/// let manager = Manager::new(&Config::new())?;
/// let mut pool_cfg = Config::new();
/// pool_cfg.set("pool.max_size", "4")?;
/// let pool = manager.pool("echo", "tcp://127.0.0.1:7000", &pool_cfg)?;
/// let lease = pool.acquire_blocking(Default::default())?;
/// lease.send_all(b"hello")?;
/// drop(lease); // back to the pool
/// manager.close(Duration::from_secs(5))?;
/// # Ok::<(), switchboard_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Manager {
    inner: Arc<ManagerInner>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Manager {
    /// Creates a manager and starts its runtime (`runtime.worker_threads`).
    /// With `runtime.clock = manual`, time moves only by [`Manager::advance_clock`].
    pub fn new(config: &Config) -> Result<Manager> {
        if config.get("runtime.clock")? == "manual" {
            let clock = ManualClock::new();
            return Self::build(config, Arc::new(clock.clone()), Some(clock));
        }
        Self::build(config, Arc::new(SystemClock), None)
    }

    /// Creates a manager whose state machines read time from `clock` (for tests).
    pub fn with_clock(config: &Config, clock: SharedClock) -> Result<Manager> {
        Self::build(config, clock, None)
    }

    /// Creates a manager on a [`ManualClock`] that the test also holds (and that
    /// [`Manager::advance_clock`] moves).
    pub fn with_manual_clock(config: &Config, clock: ManualClock) -> Result<Manager> {
        Self::build(config, Arc::new(clock.clone()), Some(clock))
    }

    fn build(
        config: &Config,
        clock: SharedClock,
        manual_clock: Option<ManualClock>,
    ) -> Result<Manager> {
        let workers = config.u64("runtime.worker_threads") as usize;
        // Settings that contradict each other fail before any thread starts.
        let events = Arc::new(EventBus::default());
        let registry = Registry::new(config, events.clone(), clock.clone())?;
        let resources = Resources::new(config, events.clone())?;
        let (rt, shared) = RuntimeShared::build(workers)?;
        crate::backoff::set_max_concurrent_reconnects(
            config.u64("backoff.max_concurrent_reconnects") as usize,
        );
        let sessions = Sessions::new(config, events.clone(), shared.handle())?;
        let server_settings = ServerSettings::from_config(config)?;
        let cluster_settings = ClusterSettings::from_config(config)?;
        let shared = Arc::new(shared);
        // The cluster first: its node number is in every connection id.
        let cluster = match cluster_settings {
            Some(s) => Some(Cluster::start(s, shared.clone(), events.clone())?),
            None => None,
        };
        sessions.start_background(&shared)?;
        registry.start_background(&shared, workers)?;
        resources.start_background(&shared)?;
        let parts = Arc::new(Parts {
            pools: Mutex::new(HashMap::new()),
            sessions,
            registry,
            resources,
            hub: Hub::new(config.u64("server.hub_queue") as usize),
            cluster: cluster.clone(),
        });
        if let Some(c) = &cluster {
            c.attach(&parts);
        }
        let inner = Arc::new(ManagerInner {
            config: config.clone(),
            rt: shared.clone(),
            runtime: Mutex::new(Some(rt)),
            parts: parts.clone(),
            server: None,
            next_serial: std::sync::atomic::AtomicU64::new(1),
            closed: AtomicBool::new(false),
            clock,
            events,
            manual_clock,
        });
        let Some(settings) = server_settings else {
            return Ok(Manager { inner });
        };
        // A bind that fails closes what was started (dropping the manager does).
        let server = Server::start(settings, parts, &shared)?;
        if let Some(c) = &cluster {
            c.set_address(server.addr().to_string());
        }
        let mut inner = inner;
        match Arc::get_mut(&mut inner) {
            Some(i) => i.server = Some(server),
            None => server.stop(),
        }
        Ok(Manager { inner })
    }

    /// The manager's config. Its `pool.*` and `tcp.*` keys are defaults for pools.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The manager's runtime, for bindings that run async work on it.
    pub fn runtime(&self) -> &Arc<RuntimeShared> {
        &self.inner.rt
    }

    /// Whether [`Manager::close`] has been called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    fn check_open(&self) -> Result<()> {
        if self.is_closed() {
            return Err(Error::unavailable("the manager is closed"));
        }
        self.inner.rt.check_pid()
    }

    /// Creates a pool of built-in sockets named `name` to `target`
    /// (`tcp://host:port`, `unix:///path`, or a comma-separated list). `config`
    /// overrides the manager's `pool.*`/`tcp.*` keys for this pool.
    pub fn pool(&self, name: &str, target: &str, config: &Config) -> Result<Pool<TcpConnector>> {
        // The built-in connector opens only tcp:// and unix://: say so now, not at the
        // first acquire.
        Endpoint::parse_list(target, false)?;
        let cfg = self.inner.config.merged(config);
        let connector = TcpConnector::new(TcpSettings::from_config(&cfg));
        self.pool_with(name, target, config, connector)
    }

    /// Creates a pool for a binding: built-in sockets when `connector` is `None`
    /// (then `target` must be `tcp://` or `unix://`), else the program's callbacks.
    pub fn pool_any<T: Clone + Send + Sync + 'static>(
        &self,
        name: &str,
        target: &str,
        config: &Config,
        connector: Option<crate::connector::FnConnector<T>>,
    ) -> Result<Pool<crate::dyn_connector::AnyConnector<T>>> {
        use crate::dyn_connector::AnyConnector;
        let connector = match connector {
            Some(c) => AnyConnector::Custom(c),
            None => {
                Endpoint::parse_list(target, false)?;
                let cfg = self.inner.config.merged(config);
                AnyConnector::Builtin(TcpConnector::new(TcpSettings::from_config(&cfg)))
            }
        };
        self.pool_with(name, target, config, connector)
    }

    /// Creates a pool whose connections are made by `connector`. Targets that are not
    /// `tcp://` or `unix://` are passed to the connector as [`Endpoint::Named`].
    pub fn pool_with<C: Connector>(
        &self,
        name: &str,
        target: &str,
        config: &Config,
        connector: C,
    ) -> Result<Pool<C>> {
        self.check_open()?;
        if name.is_empty() {
            return Err(Error::invalid_argument(
                "pool name must be a non-empty string",
            ));
        }
        let endpoints = Endpoint::parse_list(target, true)?;
        let cfg = self.inner.config.merged(config);
        let (max, min) = (cfg.get("pool.max_size")?, cfg.get("pool.min_idle")?);
        if min.parse::<u64>().ok() > max.parse::<u64>().ok() {
            return Err(Error::invalid_argument(format!(
                "pool.min_idle must be an integer 0..=pool.max_size ({max}), got \"{min}\""
            )));
        }
        let mut pools = self.inner.parts.pools();
        // Closed pools leave the map here, so creating and closing many pools does not
        // grow it.
        pools.retain(|_, (_, p)| !p.is_closed());
        if pools.get(name).is_some_and(|(_, p)| !p.is_closed()) {
            return Err(Error::invalid_argument(format!(
                "a pool named \"{name}\" already exists; pool names must be unique within a manager"
            )));
        }
        let pool = Pool::new(
            name.to_string(),
            endpoints,
            connector,
            &cfg,
            self.inner.rt.clone(),
            self.inner.clock.clone(),
            self.inner.events.clone(),
        );
        let serial = self.inner.next_serial.fetch_add(1, Ordering::Relaxed);
        let manager = Arc::downgrade(&self.inner);
        let key = name.to_string();
        pool.on_close(Box::new(move || {
            if let Some(m) = manager.upgrade() {
                let mut pools = m.parts.pools();
                if pools.get(&key).is_some_and(|(s, _)| *s == serial) {
                    // Dropped outside the lock below.
                    let gone = pools.remove(&key);
                    drop(pools);
                    drop(gone);
                }
            }
        }));
        pools.insert(name.to_string(), (serial, Arc::new(pool.clone())));
        if let Some(shared) = self
            .inner
            .parts
            .cluster
            .as_ref()
            .and_then(|c| c.breakers_for(name))
        {
            pool.share_breakers(shared);
        }
        Ok(pool)
    }

    /// Snapshots of every open pool, sorted by name.
    pub fn pool_stats(&self) -> Vec<PoolStats> {
        self.inner.parts.pool_stats()
    }

    /// The next event from the queue, waiting up to `timeout` (zero: don't wait).
    /// Events go to the queue while no callback is set.
    pub fn poll_event(&self, timeout: Duration) -> Option<Event> {
        self.inner.events.poll(timeout)
    }

    /// Sets (or clears) the event callback and returns the previous one. The callback
    /// runs with no library lock held, on a runtime thread (or on the calling thread
    /// of a manual [`crate::Pool::run_upkeep_blocking`]); closing the manager clears it; it may call back into the
    /// library, but not close this manager (that fails with FailedPrecondition) and
    /// not make blocking calls (they fail the same way; use the async API).
    pub fn set_event_callback(&self, cb: Option<EventCallback>) -> Option<EventCallback> {
        self.inner.events.set_callback(cb)
    }

    /// Events dropped because the queue was full (10,000) and nobody polled.
    pub fn events_dropped(&self) -> u64 {
        self.inner.events.dropped()
    }

    /// The manager's metrics as Prometheus/OpenMetrics text (`switchboard_pool_*` and
    /// `stream_api_*`; docs/metrics.md lists every name). Serve it on your `/metrics`
    /// endpoint.
    pub fn metrics_text(&self) -> String {
        self.inner.parts.metrics_text()
    }

    /// The streaming sessions, their catalog and the offset store
    /// (`sessions.*`, `offsets.*` keys).
    pub fn sessions(&self) -> &Sessions {
        &self.inner.parts.sessions
    }

    /// The live-connection registry (`registry.*` keys).
    pub fn registry(&self) -> &Registry {
        &self.inner.parts.registry
    }

    /// The named shared connections (eKuiper's named resources).
    pub fn resources(&self) -> &Resources {
        &self.inner.parts.resources
    }

    /// The embedded server's bound address (`server.listen`; with port 0, the port it
    /// picked), or `None` when the server is off.
    pub fn server_address(&self) -> Option<SocketAddr> {
        self.inner.server.as_ref().map(Server::addr)
    }

    /// The address of the gRPC sessions service: `server.grpc_listen`'s, or the
    /// server's own when gRPC shares its port; `None` when the server is off.
    pub fn grpc_address(&self) -> Option<SocketAddr> {
        self.inner.server.as_ref().map(Server::grpc_addr)
    }

    /// The manager's cluster (`cluster.redis_url`; docs/cluster.md), or `None` when it
    /// is not in one.
    pub fn cluster(&self) -> Option<&Cluster> {
        self.inner.parts.cluster.as_ref()
    }

    /// The WebSocket hub's inbound side: what hub clients send to the program
    /// (docs/server.md). Present on every manager; nothing arrives without a server.
    pub fn hub(&self) -> &Hub {
        &self.inner.parts.hub
    }

    /// Moves a manual clock (`runtime.clock = manual`) forward by `by`: breakers,
    /// backoff, health and the registry's heartbeats and staleness see the time pass.
    /// FailedPrecondition when the manager runs on the system clock.
    pub fn advance_clock(&self, by: Duration) -> Result<()> {
        match &self.inner.manual_clock {
            Some(c) => {
                c.advance(by);
                Ok(())
            }
            None => Err(Error::failed_precondition(
                "advance_clock needs a manager created with runtime.clock = manual; this one runs on the system clock",
            )),
        }
    }

    /// Closes the manager: stops accepting work, fails waiters, waits up to `timeout`
    /// for leases to come back, closes every connection and stops the runtime, joining
    /// its threads. Leases still out after the timeout are closed when released.
    /// Closing twice is a no-op. Calling it from a callback that runs on this
    /// manager's runtime is an error (FailedPrecondition).
    pub fn close(&self, timeout: Duration) -> Result<()> {
        if self.inner.rt.on_own_thread() {
            return Err(Error::failed_precondition(
                "close() was called on the manager's own runtime thread (from a callback); close the manager from another thread",
            ));
        }
        self.inner.close(timeout);
        Ok(())
    }
}

impl ManagerInner {
    fn close(&self, timeout: Duration) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        let deadline = Instant::now() + timeout;
        // The server stops taking requests first; its hub clients are closed by the
        // registry's shutdown below (close code 1001).
        if let Some(s) = &self.server {
            s.stop();
        }
        self.parts.hub.close();
        self.rt.mark_closed();
        // Later session calls fail with Unavailable; buffered commits are written.
        if let Err(e) = self.parts.sessions.shutdown() {
            self.events.emit(Event::new(
                crate::events::EventKind::CommitFailed,
                format!("writing buffered commits on close failed: {e}"),
            ));
        }
        // Named resources close their connections.
        self.parts.resources.shutdown();
        // Registered connections leave with reason manager_closed; their close
        // callbacks run on the runtime before it stops.
        self.parts.registry.shutdown(
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(100)),
        );
        // The cluster's member record goes (the others drop this instance at once).
        if let Some(c) = &self.parts.cluster {
            c.stop();
        }
        // Hub clients' writers send their close frames (1001) before the runtime stops.
        self.parts
            .hub
            .wait_closed(deadline.max(Instant::now() + Duration::from_millis(100)));
        let pools: Vec<Arc<dyn parts::PoolControl>> =
            self.parts.pools().drain().map(|(_, (_, v))| v).collect();
        for p in &pools {
            p.close();
        }
        // Wait (bounded) for leases to come back and for blocked callers to leave.
        let mut pause = Duration::from_micros(50);
        loop {
            let leased: usize = pools.iter().map(|p| p.stats().leased).sum();
            let now = Instant::now();
            if (leased == 0 && self.rt.active() == 0) || now >= deadline {
                break;
            }
            std::thread::sleep(pause.min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(10));
        }
        // Callers blocked in the runtime were woken by the pools' close; give them a
        // moment to leave before the runtime's timers and I/O go away.
        let grace = Instant::now() + Duration::from_secs(5);
        while self.rt.active() != 0 && Instant::now() < grace {
            std::thread::sleep(Duration::from_millis(1));
        }
        let rt = self
            .runtime
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(rt) = rt {
            let left = deadline.saturating_duration_since(Instant::now());
            runtime::shutdown(rt, left.max(Duration::from_millis(100)));
        }
        // The callback often refers back to its manager (a cycle through a binding's
        // objects): let go of it once nothing can call it any more.
        drop(self.events.set_callback(None));
        self.events.close();
    }
}

impl Drop for ManagerInner {
    fn drop(&mut self) {
        if self.rt.on_own_thread() {
            // Dropped by the last clone on our own worker: we cannot join ourselves.
            self.closed.store(true, Ordering::SeqCst);
            self.rt.mark_closed();
            if let Some(rt) = self
                .runtime
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
            {
                rt.shutdown_background();
            }
            return;
        }
        self.close(Duration::ZERO);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_pools_leave_the_manager() {
        let m = Manager::new(&Config::new()).unwrap();
        for i in 0..50 {
            let p = m
                .pool(&format!("p{i}"), "tcp://127.0.0.1:9", &Config::new())
                .unwrap();
            p.close();
        }
        let _live = m.pool("live", "tcp://127.0.0.1:9", &Config::new()).unwrap();
        let held = m.inner.parts.pools().len();
        assert_eq!(held, 1, "closed pools are pruned when a pool is created");
        m.close(Duration::from_secs(1)).unwrap();
    }
}

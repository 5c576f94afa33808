//! Named shared connections (eKuiper's named resources): one physical connection
//! created by id, running and reconnecting on its own, shared by many consumers with
//! reference counts, with its status in `get`, in events and in metrics.
//!
//! ```no_run
//! use std::time::Duration;
//! use switchboard_core::{Config, Manager};
//! let manager = Manager::new(&Config::new())?;
//! let resources = manager.resources();
//! resources.create("bus", "tcp", &[("endpoint", "tcp://127.0.0.1:6379"), ("health.interval", "1s")])?;
//! let feed = resources.attach("bus", "feed")?;
//! let control = resources.attach("bus", "control")?; // the same connection
//! feed.wait_ready(Duration::from_secs(5))?; // across reconnects
//! feed.send_all(b"PING\r\n")?; // the current socket: feed.socket()?
//! assert!(resources.delete("bus", false).is_err()); // FailedPrecondition: feed, control
//! drop((feed, control));
//! resources.delete("bus", false)?;
//! # Ok::<(), switchboard_core::Error>(())
//! ```
//!
//! What is built: `tcp` and `unix` resources, create / attach / detach / delete
//! (force), anonymous resources keyed by their props, `update` without dropping
//! consumers, the status machine with events and metrics, `wait_ready`,
//! `report_failure`, persistence (`resources.path`). Not yet (issue 10): custom
//! connector types, and the C, Python and Node bindings.

mod dialer;
mod metrics;
mod resource;
mod store;
mod types;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::config::Config;
use crate::connector::Socket;
use crate::error::{Error, Result};
use crate::events::{Event, EventBus, EventKind};
use crate::runtime::RuntimeShared;

use resource::{Resource, lock};

pub use dialer::{ResourceConn, SharedObject};
pub use types::{ResourceInfo, ResourceStatus};

/// Handle ids (one per attach) come from one counter for the process.
static NEXT_HANDLE: AtomicU64 = AtomicU64::new(1);

struct Inner {
    defaults: Config,
    events: Arc<EventBus>,
    rt: OnceLock<Arc<RuntimeShared>>,
    named: Mutex<HashMap<String, Arc<Resource>>>,
    /// Anonymous resources by their canonical props.
    anonymous: Mutex<HashMap<String, Arc<Resource>>>,
    next_anonymous: AtomicU64,
    closed: AtomicBool,
    /// `resources.path`: named resources kept on disk.
    store: Option<store::ResourceStore>,
    /// Connector types the program registered, by name.
    types: Mutex<HashMap<String, Arc<dyn dialer::Dialer>>>,
    /// Stored resources of a type not registered yet: made when it is.
    waiting: Mutex<Vec<store::Stored>>,
}

/// The manager's named resources ([`crate::Manager::resources`]). Cheap to clone.
#[derive(Clone)]
pub struct Resources {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Resources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resources").finish_non_exhaustive()
    }
}

/// One consumer's share of a resource. Dropping it (or [`ResourceHandle::detach`])
/// lets go; the last consumer of an anonymous resource closes it.
///
/// The connection is shared: like a lease's socket, one consumer writes at a time
/// (the program coordinates its consumers' writes and reads), and it changes across
/// reconnects, so take it from [`ResourceHandle::socket`] for each use rather than
/// keeping it.
pub struct ResourceHandle {
    resources: Resources,
    res: Arc<Resource>,
    handle: u64,
    consumer: String,
    detached: AtomicBool,
}

impl std::fmt::Debug for ResourceHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceHandle")
            .field("resource", &self.res.id)
            .field("consumer", &self.consumer)
            .finish()
    }
}

impl ResourceHandle {
    /// The resource's id.
    pub fn id(&self) -> &str {
        &self.res.id
    }

    /// This consumer's name.
    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// The resource's status now.
    pub fn status(&self) -> ResourceStatus {
        lock(&self.res.state).status
    }

    /// The current socket of a built-in (`tcp`, `unix`) resource; Unavailable while
    /// connecting or recovering (naming the last error).
    pub fn socket(&self) -> Result<Arc<Socket>> {
        self.check()?;
        self.res.socket()
    }

    /// The current object of a resource of the program's type `T` (registered with
    /// [`Resources::register_type`]); Unavailable while connecting or recovering.
    pub fn object<T: Clone + Send + Sync + 'static>(&self) -> Result<T> {
        self.check()?;
        let conn = self.res.conn()?;
        dialer::object::<T>(&conn).ok_or_else(|| {
            Error::failed_precondition(format!(
                "resource \"{}\" of type \"{}\" does not hold objects of the type asked for",
                self.res.id, self.res.kind
            ))
        })
    }

    /// The current connection, whichever kind it is.
    pub fn conn(&self) -> Result<ResourceConn> {
        self.check()?;
        self.res.conn()
    }

    /// Waits on the calling thread (not an async runtime's) until the resource is
    /// connected, across reconnects; Timeout after `timeout`, Unavailable if it
    /// stopped. Then take [`ResourceHandle::socket`] or [`ResourceHandle::object`].
    pub fn wait_ready(&self, timeout: Duration) -> Result<()> {
        self.check()?;
        let rt = self.resources.inner.runtime()?;
        let res = self.res.clone();
        rt.block_on(async move { res.ready(timeout).await })?
            .map(|_| ())
    }

    /// [`ResourceHandle::wait_ready`] for async callers.
    pub async fn ready(&self, timeout: Duration) -> Result<()> {
        self.check()?;
        self.res.ready(timeout).await.map(|_| ())
    }

    /// Writes all of `buf` to the current connection (counted in the resource's
    /// bytes out).
    pub fn send_all(&self, buf: &[u8]) -> Result<()> {
        self.socket()?.send_all(buf)?;
        self.res
            .bytes_out
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Reads into `buf` from the current connection (counted in bytes in).
    pub fn recv(&self, buf: &mut [u8]) -> Result<usize> {
        let n = self.socket()?.recv(buf)?;
        self.res.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    /// Tells the resource this consumer saw an error: it checks the connection now
    /// (and probes it, when a probe is configured) and redials if it is lost, instead
    /// of waiting for the next health check.
    pub fn report_failure(&self) {
        self.res.kick.notify_one();
    }

    /// Lets go of the resource (also done on drop). Safe to call twice.
    pub fn detach(&self) {
        if self.detached.swap(true, Ordering::AcqRel) {
            return;
        }
        self.resources.inner.detach(&self.res, self.handle);
    }

    fn check(&self) -> Result<()> {
        if self.detached.load(Ordering::Acquire) {
            return Err(Error::failed_precondition(format!(
                "consumer \"{}\" has detached from resource \"{}\"",
                self.consumer, self.res.id
            )));
        }
        Ok(())
    }
}

impl Drop for ResourceHandle {
    fn drop(&mut self) {
        self.detach();
    }
}

impl Inner {
    fn runtime(&self) -> Result<&Arc<RuntimeShared>> {
        self.rt
            .get()
            .ok_or_else(|| Error::failed_precondition("the resources' runtime is not running"))
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::unavailable(
                "the manager is closed; its resources are no longer available",
            ));
        }
        match self.rt.get() {
            Some(rt) => rt.check_fork(),
            None => Ok(()),
        }
    }

    fn start(&self, res: &Arc<Resource>) -> Result<()> {
        self.runtime()?.spawn(resource::run(res.clone(), 0, None))?;
        Ok(())
    }

    fn detach(&self, res: &Arc<Resource>, handle: u64) {
        let last = {
            let mut s = lock(&res.state);
            s.consumers.retain(|(h, _)| *h != handle);
            s.consumers.is_empty()
        };
        if last && res.anonymous {
            let mut anon = lock(&self.anonymous);
            // Only if no one attached again meanwhile.
            if lock(&res.state).consumers.is_empty()
                && anon
                    .get(&res.props().canonical)
                    .is_some_and(|r| Arc::ptr_eq(r, res))
            {
                anon.remove(&res.props().canonical);
                drop(anon);
                res.shut("its last consumer detached");
            }
        }
    }
}

impl Resources {
    /// Opens the store when `resources.path` is set (Io if it cannot be opened).
    pub(crate) fn new(defaults: &Config, events: Arc<EventBus>) -> Result<Resources> {
        let path = defaults.get("resources.path")?.to_string();
        let store = if path.is_empty() {
            None
        } else {
            Some(store::ResourceStore::open(&path)?)
        };
        Ok(Resources {
            inner: Arc::new(Inner {
                defaults: defaults.clone(),
                events,
                rt: OnceLock::new(),
                named: Mutex::new(HashMap::new()),
                anonymous: Mutex::new(HashMap::new()),
                next_anonymous: AtomicU64::new(1),
                closed: AtomicBool::new(false),
                store,
                types: Mutex::new(HashMap::new()),
                waiting: Mutex::new(Vec::new()),
            }),
        })
    }

    /// Starts the resources the store holds (each as if created now). One that no
    /// longer validates is left out with a `resource_state` event saying why.
    pub(crate) fn start_background(&self, rt: &Arc<RuntimeShared>) -> Result<()> {
        let _ = self.inner.rt.set(rt.clone());
        let Some(store) = &self.inner.store else {
            return Ok(());
        };
        let (stored, unreadable) = store.load()?;
        for id in unreadable {
            self.skipped(&id, "its stored entry could not be read".to_string());
        }
        for s in stored {
            if s.kind != "tcp" && s.kind != "unix" {
                // The program registers its types after the manager opens.
                lock(&self.inner.waiting).push(s);
                continue;
            }
            self.recreate(&s);
        }
        Ok(())
    }

    fn recreate(&self, s: &store::Stored) {
        let props: Vec<(&str, &str)> = s
            .props
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if let Err(e) = self.create_unstored(&s.id, &s.kind, &props) {
            self.skipped(&s.id, e.to_string());
        }
    }

    fn skipped(&self, id: &str, why: String) {
        self.inner.events.emit(Event {
            resource: Some(id.to_string()),
            new_state: Some(ResourceStatus::Disconnected.as_str()),
            reason: Some(why.clone()),
            ..Event::new(
                EventKind::ResourceState,
                format!("stored resource \"{id}\" was not recreated: {why}"),
            )
        });
    }

    /// Closes every resource (their connections close; status `disconnected`).
    pub(crate) fn shutdown(&self) {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        let all: Vec<Arc<Resource>> = {
            let mut named = lock(&self.inner.named);
            let mut anon = lock(&self.inner.anonymous);
            named
                .drain()
                .map(|(_, r)| r)
                .chain(anon.drain().map(|(_, r)| r))
                .collect()
        };
        for r in all {
            r.shut("the manager closed");
        }
        if let Some(store) = &self.inner.store {
            store.close();
        }
    }

    /// Registers a connector type of the program's own objects (a bus client, an RPC
    /// stub) under `name`, for [`Resources::create`] and
    /// [`Resources::attach_anonymous`]: the same [`crate::FnConnector`] a pool takes
    /// (connect, an optional check, used as the resource's probe, and close, run when
    /// the last holder of an object lets go). Stored resources of this type
    /// (`resources.path`) are recreated now. InvalidArgument for an empty name, `tcp`
    /// or `unix`, or a name already registered.
    pub fn register_type<T: Clone + Send + Sync + 'static>(
        &self,
        name: &str,
        connector: crate::FnConnector<T>,
    ) -> Result<()> {
        self.inner.check_open()?;
        if name.is_empty() || name == "tcp" || name == "unix" {
            return Err(Error::invalid_argument(format!(
                "a resource type name must be non-empty and not tcp or unix (the built-in types), got \"{}\"",
                name.escape_default()
            )));
        }
        let mut types = lock(&self.inner.types);
        if types.contains_key(name) {
            return Err(Error::invalid_argument(format!(
                "resource type \"{name}\" is already registered"
            )));
        }
        types.insert(
            name.to_string(),
            Arc::new(dialer::Custom(Arc::new(connector))),
        );
        drop(types);
        // Stored resources of this type, waiting since the manager opened.
        let ready: Vec<store::Stored> = {
            let mut waiting = lock(&self.inner.waiting);
            let (now, later) = std::mem::take(&mut *waiting)
                .into_iter()
                .partition(|s| s.kind == name);
            *waiting = later;
            now
        };
        for s in &ready {
            self.recreate(s);
        }
        Ok(())
    }

    /// The dialer of `kind` for `props`: the built-in connector with the props'
    /// `tcp.*` / `probe.*` settings, or the registered type.
    fn dialer(&self, kind: &str, props: &types::Props) -> Arc<dyn dialer::Dialer> {
        match lock(&self.inner.types).get(kind) {
            Some(d) => d.clone(),
            None => Arc::new(dialer::Builtin(
                Arc::new(crate::connector::TcpConnector::new(
                    crate::connector::TcpSettings::from_config(&props.config),
                )),
                Arc::from(props.config.bytes("resources.on_connect")),
            )),
        }
    }

    fn custom(&self, kind: &str) -> bool {
        lock(&self.inner.types).contains_key(kind)
    }

    /// Creates resource `id` of `kind` (`tcp`, `unix` or a registered type) with `props`: `endpoint`
    /// and any pool keys (`connect_timeout`, `probe.send`, `backoff.*`, `health.*`,
    /// `tcp.*`), over the manager's. Its connection is dialled at once, in the
    /// background, and redialled with backoff until it succeeds; a configuration error
    /// stops it as `disconnected`. InvalidArgument names a bad prop; an id in use is
    /// InvalidArgument too.
    /// With `resources.path` set, it is stored (on disk when this returns) and
    /// recreated by a manager opened on the same file.
    pub fn create(&self, id: &str, kind: &str, props: &[(&str, &str)]) -> Result<()> {
        self.create_unstored(id, kind, props)?;
        if let Some(store) = &self.inner.store {
            let raw = lock(&self.inner.named)
                .get(id)
                .map(|r| r.props().raw.clone())
                .unwrap_or_default();
            if let Err(e) = store.put(id, kind, &raw) {
                // Not stored: not created either.
                if let Some(r) = lock(&self.inner.named).remove(id) {
                    r.shut("it could not be stored");
                }
                return Err(e);
            }
        }
        Ok(())
    }

    fn create_unstored(&self, id: &str, kind: &str, props: &[(&str, &str)]) -> Result<()> {
        self.inner.check_open()?;
        if id.is_empty() {
            return Err(Error::invalid_argument(
                "a resource id must be a non-empty string",
            ));
        }
        let props = types::Props::parse(kind, self.custom(kind), props, &self.inner.defaults)?;
        let dialer = self.dialer(kind, &props);
        let res = {
            let mut named = lock(&self.inner.named);
            if named.contains_key(id) {
                return Err(Error::invalid_argument(format!(
                    "a resource named \"{id}\" already exists; resource ids are unique within a manager (delete it first)"
                )));
            }
            let res = Arc::new(Resource::new(
                id.to_string(),
                dialer,
                kind,
                false,
                props,
                self.inner.events.clone(),
            ));
            named.insert(id.to_string(), res.clone());
            res
        };
        if let Err(e) = self.inner.start(&res) {
            lock(&self.inner.named).remove(id);
            return Err(e);
        }
        Ok(())
    }

    /// Attaches consumer `consumer` to resource `id`: a handle sharing its one
    /// connection. NotFound for an unknown id.
    pub fn attach(&self, id: &str, consumer: &str) -> Result<ResourceHandle> {
        self.inner.check_open()?;
        let res = lock(&self.inner.named)
            .get(id)
            .cloned()
            .ok_or_else(|| not_found(id))?;
        Ok(self.handle(res, consumer))
    }

    /// Attaches to an unnamed resource of `kind` with `props`: shared by every caller
    /// with equal props (created by the first), closed when its last consumer
    /// detaches.
    pub fn attach_anonymous(
        &self,
        kind: &str,
        props: &[(&str, &str)],
        consumer: &str,
    ) -> Result<ResourceHandle> {
        self.inner.check_open()?;
        let props = types::Props::parse(kind, self.custom(kind), props, &self.inner.defaults)?;
        let dialer = self.dialer(kind, &props);
        let (handle, fresh) = {
            let mut anon = lock(&self.inner.anonymous);
            match anon.get(&props.canonical) {
                Some(r) => (self.handle(r.clone(), consumer), false),
                None => {
                    let n = self.inner.next_anonymous.fetch_add(1, Ordering::Relaxed);
                    let key = props.canonical.clone();
                    let r = Arc::new(Resource::new(
                        format!("anonymous-{n}"),
                        dialer,
                        kind,
                        true,
                        props,
                        self.inner.events.clone(),
                    ));
                    anon.insert(key, r.clone());
                    (self.handle(r, consumer), true)
                }
            }
            // The consumer is counted before the lock is let go of, so a concurrent
            // last detach of the same props cannot close the resource under us.
        };
        if fresh {
            // On failure the handle's drop detaches and closes it again.
            self.inner.start(&handle.res)?;
        }
        Ok(handle)
    }

    fn handle(&self, res: Arc<Resource>, consumer: &str) -> ResourceHandle {
        let handle = NEXT_HANDLE.fetch_add(1, Ordering::Relaxed);
        lock(&res.state)
            .consumers
            .push((handle, consumer.to_string()));
        ResourceHandle {
            resources: self.clone(),
            res,
            handle,
            consumer: consumer.to_string(),
            detached: AtomicBool::new(false),
        }
    }

    /// Deletes resource `id` and closes its connection. FailedPrecondition while
    /// consumers are attached, naming them, unless `force`, which detaches them
    /// (each gets a `resource_detached` event, and its handle then fails).
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        self.inner.check_open()?;
        let mut named = lock(&self.inner.named);
        let res = named.get(id).cloned().ok_or_else(|| not_found(id))?;
        let consumers: Vec<(u64, String)> = lock(&res.state).consumers.clone();
        if !consumers.is_empty() && !force {
            let names: Vec<String> = consumers.iter().map(|(_, n)| format!("\"{n}\"")).collect();
            return Err(Error::failed_precondition(format!(
                "resource \"{id}\" can't be deleted while consumers are attached: {}; detach them first, or delete with force",
                names.join(", ")
            )));
        }
        if let Some(store) = &self.inner.store {
            store.remove(id)?;
        }
        named.remove(id);
        drop(named);
        for (_, name) in &consumers {
            self.inner.events.emit(Event {
                resource: Some(id.to_string()),
                ..Event::new(
                    EventKind::ResourceDetached,
                    format!("consumer \"{name}\" was detached from resource \"{id}\": deleted with force"),
                )
            });
        }
        lock(&res.state).consumers.clear();
        res.shut("deleted");
        Ok(())
    }

    /// Updates resource `id` to `props` without dropping its consumers: a connection
    /// with the new props is opened first (this call waits for it, within the new
    /// `connect_timeout`, and fails, changing nothing, if it cannot be opened), then
    /// swapped in for every consumer, who sees a `resource_rebound` event (and a new
    /// socket from [`ResourceHandle::socket`]); the old connection closes when the
    /// consumers still using it let go. The type stays; FailedPrecondition for an
    /// anonymous resource (its props are its identity).
    pub fn update(&self, id: &str, props: &[(&str, &str)]) -> Result<()> {
        let rt = self.inner.runtime()?;
        rt.block_on(self.update_async(id, props))?
    }

    /// [`Resources::update`] for async callers (the admin API's `PUT /connections`).
    pub async fn update_async(&self, id: &str, props: &[(&str, &str)]) -> Result<()> {
        self.inner.check_open()?;
        let found = lock(&self.inner.named).get(id).cloned();
        let Some(res) = found else {
            if lock(&self.inner.anonymous).values().any(|r| r.id == id) {
                return Err(Error::failed_precondition(format!(
                    "resource \"{id}\" is anonymous: its props are its identity, so it cannot be updated; attach_anonymous with the new props instead"
                )));
            }
            return Err(not_found(id));
        };
        let props = types::Props::parse(
            &res.kind,
            self.custom(&res.kind),
            props,
            &self.inner.defaults,
        )?;
        let rt = self.inner.runtime()?;
        let dialer = self.dialer(&res.kind, &props);
        let timeout = props
            .config
            .duration("pool.connect_timeout")
            .max(Duration::from_millis(1));
        let endpoint = props.endpoint.clone();
        let d = dialer.clone();
        let conn = async move {
            match tokio::time::timeout(timeout, d.connect(&endpoint)).await {
                Ok(r) => {
                    let conn = r?;
                    if d.has_probe() {
                        d.probe(&conn).await?;
                    }
                    Ok(conn)
                }
                Err(_) => Err(Error::timeout(format!(
                    "connect to {endpoint} timed out after {}",
                    crate::config::fmt_duration(timeout)
                ))),
            }
        }
        .await
        .map_err(|e: Error| {
            Error::new(
                e.code(),
                format!(
                    "resource \"{id}\" was not updated (its consumers keep the old connection): {e}"
                ),
            )
        })?;
        if let Some(store) = &self.inner.store {
            store.put(id, &res.kind, &props.raw)?;
        }
        let generation = res.rebind(props, dialer, conn.clone());
        // The new task starts from the connection the update opened.
        rt.spawn(resource::run(res.clone(), generation, Some(conn)))?;
        Ok(())
    }

    /// A snapshot of resource `id` (named, or an anonymous one's `anonymous-<n>`).
    pub fn get(&self, id: &str) -> Result<ResourceInfo> {
        self.inner.check_open()?;
        if let Some(r) = lock(&self.inner.named).get(id) {
            return Ok(r.info());
        }
        lock(&self.inner.anonymous)
            .values()
            .find(|r| r.id == id)
            .map(|r| r.info())
            .ok_or_else(|| not_found(id))
    }

    /// The props resource `id` was created (or last updated) with, as given.
    pub(crate) fn props_of(&self, id: &str) -> Result<Vec<(String, String)>> {
        self.inner.check_open()?;
        if let Some(r) = lock(&self.inner.named).get(id) {
            return Ok(r.props().raw.clone());
        }
        lock(&self.inner.anonymous)
            .values()
            .find(|r| r.id == id)
            .map(|r| r.props().raw.clone())
            .ok_or_else(|| not_found(id))
    }

    /// Every resource, named and anonymous, sorted by id, with its consumers.
    pub fn list(&self) -> Result<Vec<ResourceInfo>> {
        self.inner.check_open()?;
        Ok(self.snapshot())
    }

    fn snapshot(&self) -> Vec<ResourceInfo> {
        let mut all: Vec<ResourceInfo> = lock(&self.inner.named)
            .values()
            .chain(lock(&self.inner.anonymous).values())
            .map(|r| r.info())
            .collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        all
    }

    /// Waits until resource `id` is connected, across reconnects (Timeout after
    /// `timeout`; Unavailable if it stopped).
    pub fn wait_ready(&self, id: &str, timeout: Duration) -> Result<()> {
        self.inner.check_open()?;
        let res = lock(&self.inner.named)
            .get(id)
            .cloned()
            .ok_or_else(|| not_found(id))?;
        let rt = self.inner.runtime()?;
        rt.block_on(async move { res.ready(timeout).await })?
            .map(|_| ())
    }

    /// A consumer of resource `id` saw an error: check (and probe) now.
    pub fn report_failure(&self, id: &str) -> Result<()> {
        self.inner.check_open()?;
        let res = lock(&self.inner.named)
            .get(id)
            .cloned()
            .ok_or_else(|| not_found(id))?;
        res.kick.notify_one();
        Ok(())
    }

    pub(crate) fn collector(&self) -> metrics::ResourcesCollector {
        metrics::ResourcesCollector {
            resources: if self.inner.closed.load(Ordering::Acquire) {
                Vec::new()
            } else {
                self.snapshot()
            },
        }
    }
}

fn not_found(id: &str) -> Error {
    Error::not_found(format!("no resource named \"{id}\""))
}

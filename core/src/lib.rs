//! switchboard-core: connection pools and the bookkeeping around them, on one tokio
//! runtime per [`Manager`]. All behaviour of switchboard lives here; the C ABI, the
//! Python and the Node packages only translate.
//!
//! ```no_run
//! use switchboard_core::{AcquireOptions, Config, Manager};
//! let manager = Manager::new(&Config::new())?;
//! let pool = manager.pool("echo", "tcp://127.0.0.1:7000", &Config::new())?;
//! let lease = pool.acquire_blocking(AcquireOptions::default())?;
//! lease.send_all(b"ping\n")?;
//! let mut buf = [0u8; 16];
//! let n = lease.recv(&mut buf)?;
//! lease.release();
//! # let _ = n;
//! # Ok::<(), switchboard_core::Error>(())
//! ```

#![warn(missing_docs)]

pub mod backoff;
pub mod breaker;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod connector;
pub mod dyn_connector;
pub mod endpoint;
pub mod envelope;
pub mod error;
pub mod events;
pub mod health;
pub mod manager;
pub mod metrics;
pub mod pool;
pub mod random;
pub mod registry;
pub mod resources;
pub mod runtime;
pub mod server;
pub mod sessions;

pub use breaker::{BreakerOp, BreakerState};
pub use config::Config;
pub use connector::{BoxFuture, Connector, FnConnector, Socket, TcpConnector, TcpSettings};
pub use dyn_connector::{AnyConn, AnyConnector};
pub use endpoint::Endpoint;
pub use error::{Code, Error, Result};
pub use events::{Event, EventKind};
pub use health::{ConnState, EndpointHealth, HealthReport, Warming};
pub use manager::Manager;
pub use pool::{
    AcquireOptions, CloseReason, ClosedByReason, Lease, Pool, PoolSettings, PoolStats, WeakPool,
};
pub use registry::Registry;
pub use resources::{ResourceHandle, ResourceInfo, ResourceStatus, Resources};
pub use sessions::{SessionDetails, SessionInfo, Sessions, StreamHandle, StreamInfo};

/// The library version, from Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The README's Rust examples, compiled as doctests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// docs/resilience.md's Rust examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/resilience.md")]
pub struct ResilienceDoctests;

/// docs/resources.md's Rust examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/resources.md")]
pub struct ResourcesDoctests;

/// docs/registry.md's Rust examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/registry.md")]
pub struct RegistryDoctests;

/// docs/server.md's Rust example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../docs/server.md")]
pub struct ServerDoctests;

/// docs/cluster.md's Rust example, compiled and run (with a redis-server) as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../../docs/cluster.md")]
pub struct ClusterDoctests;

/// docs/sessions.md's Rust examples, compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/sessions.md")]
pub struct SessionsDoctests;

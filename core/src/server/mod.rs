//! The embedded server (docs/server.md): off by default, started by `server.listen`,
//! on the manager's runtime. One port serves the admin JSON API and `/metrics`
//! (axum), the WebSocket hub at `/ws` on the registry, and seed 000's sessions service
//! over gRPC (tonic), unless `server.grpc_listen` gives gRPC a port of its own. Routes
//! only translate to the core calls the language APIs make.

mod admin;
mod auth;
mod error;
mod grpc;
mod hub;
pub(crate) mod json;
mod listener;
mod settings;
mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use hub::{Hub, HubHandler, HubMessage};
pub(crate) use settings::ServerSettings;

use crate::error::Result;
use crate::manager::parts::Parts;
use crate::runtime::RuntimeShared;

/// What every route handler shares.
pub(crate) struct Ctx {
    pub(crate) parts: Arc<Parts>,
    pub(crate) token: Option<String>,
    pub(crate) heartbeat: Option<Duration>,
}

/// A running server: its bound addresses and the switch that stops it.
pub(crate) struct Server {
    addr: SocketAddr,
    grpc_addr: SocketAddr,
    stop: watch::Sender<bool>,
}

impl Server {
    /// Binds (errors here fail `Manager::new`) and starts serving on `rt`.
    pub(crate) fn start(
        s: ServerSettings,
        parts: Arc<Parts>,
        rt: &RuntimeShared,
    ) -> Result<Server> {
        let tls = match &s.tls {
            Some((cert, key)) => Some(listener::tls(cert, key)?),
            None => None,
        };
        let main = listener::bind("server.listen", s.listen)?;
        let grpc_own = match s.grpc_listen {
            Some(a) => Some(listener::bind("server.grpc_listen", a)?),
            None => None,
        };
        let local = |l: &std::net::TcpListener| {
            l.local_addr()
                .map_err(|e| crate::Error::new(crate::Code::Io, format!("server address: {e}")))
        };
        let addr = local(&main)?;
        let grpc_addr = match &grpc_own {
            Some(l) => local(l)?,
            None => addr,
        };
        let ctx = Arc::new(Ctx {
            parts: parts.clone(),
            token: s.token.clone(),
            heartbeat: parts.registry.heartbeat_interval(),
        });
        let admin = admin::router()
            .layer(axum::middleware::from_fn_with_state(
                ctx.clone(),
                auth::guard,
            ))
            .route("/ws", axum::routing::get(ws::upgrade));
        let (admin, grpc) = match s.grpc_listen {
            Some(_) => (
                admin.with_state(ctx),
                grpc::route(axum::Router::new(), parts, s.token.clone()),
            ),
            None => (
                grpc::route(admin, parts, s.token.clone()).with_state(ctx),
                axum::Router::new(),
            ),
        };
        let (stop, watching) = watch::channel(false);
        // Listeners become tokio's inside the runtime (they need its reactor).
        let _entered = rt.handle().enter();
        match grpc_own {
            Some(l) => {
                rt.spawn(listener::serve(main, tls.clone(), admin, watching.clone()))?;
                rt.spawn(listener::serve(l, tls, grpc, watching))?;
            }
            None => {
                rt.spawn(listener::serve(main, tls, admin, watching))?;
            }
        }
        Ok(Server {
            addr,
            grpc_addr,
            stop,
        })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub(crate) fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// Stops accepting and ends every HTTP connection (hub clients are closed by the
    /// registry's shutdown, with close code 1001).
    pub(crate) fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

//! How a resource's connection is made, watched and closed: the built-in TCP/Unix
//! connector, or a connector type the program registered (its own objects: a bus
//! client, an RPC stub), as pools take custom connectors.

use std::any::Any;
use std::sync::Arc;

use crate::connector::{BoxFuture, Connector, FnConnector, Socket, TcpConnector};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};

/// A program's object held by a custom resource. Its close callback runs when the
/// last holder (the resource, or a consumer still using it after a reconnect or an
/// update) lets go.
pub type SharedObject = Arc<dyn Any + Send + Sync>;

/// A resource's connection.
#[derive(Clone)]
pub enum ResourceConn {
    /// A built-in socket (`tcp`, `unix`).
    Socket(Arc<Socket>),
    /// A custom type's object; downcast it to the program's type (see
    /// [`crate::resources::ResourceHandle::object`]).
    Object(SharedObject),
}

/// What a resource needs of its connector, object-safe.
pub(crate) trait Dialer: Send + Sync {
    fn connect(&self, endpoint: &Endpoint) -> BoxFuture<Result<ResourceConn>>;
    /// A cheap check (the socket's FIN/RST peek); custom objects are alive until
    /// their check says otherwise.
    fn alive(&self, conn: &ResourceConn) -> bool;
    fn has_probe(&self) -> bool;
    /// Whether the periodic check probes too (a custom object has no cheap check;
    /// a shared socket is probed only when a consumer reported a failure, since a
    /// probe writes on it).
    fn probe_periodically(&self) -> bool;
    fn probe(&self, conn: &ResourceConn) -> BoxFuture<Result<()>>;
}

/// The built-in connector, and the bytes sent on each new connection
/// (`resources.on_connect`).
pub(crate) struct Builtin(pub(crate) Arc<TcpConnector>, pub(crate) Arc<[u8]>);

impl Dialer for Builtin {
    fn connect(&self, endpoint: &Endpoint) -> BoxFuture<Result<ResourceConn>> {
        let (c, ep, hello) = (self.0.clone(), endpoint.clone(), self.1.clone());
        Box::pin(async move {
            let sock = c.connect(&ep).await?;
            if !hello.is_empty() {
                sock.write_all_async(&hello).await?;
            }
            Ok(ResourceConn::Socket(Arc::new(sock)))
        })
    }
    fn alive(&self, conn: &ResourceConn) -> bool {
        match conn {
            ResourceConn::Socket(s) => s.is_alive(),
            ResourceConn::Object(_) => true,
        }
    }
    fn has_probe(&self) -> bool {
        self.0.has_check()
    }
    fn probe_periodically(&self) -> bool {
        false
    }
    fn probe(&self, conn: &ResourceConn) -> BoxFuture<Result<()>> {
        let (c, conn) = (self.0.clone(), conn.clone());
        Box::pin(async move {
            match conn {
                ResourceConn::Socket(s) => c.probe(&s).await,
                ResourceConn::Object(_) => Ok(()),
            }
        })
    }
}

/// The program's object and its close callback, run when the last holder drops it.
struct Owned<T: Clone + Send + Sync + 'static> {
    value: T,
    connector: Arc<FnConnector<T>>,
}

impl<T: Clone + Send + Sync + 'static> Drop for Owned<T> {
    fn drop(&mut self) {
        self.connector.close(self.value.clone());
    }
}

/// A registered custom type: a pool-style [`FnConnector`] over the program's `T`.
pub(crate) struct Custom<T: Clone + Send + Sync + 'static>(pub(crate) Arc<FnConnector<T>>);

impl<T: Clone + Send + Sync + 'static> Custom<T> {
    /// The program's value in `conn`.
    fn value(conn: &ResourceConn) -> Option<T> {
        match conn {
            ResourceConn::Object(o) => o.downcast_ref::<Owned<T>>().map(|o| o.value.clone()),
            ResourceConn::Socket(_) => None,
        }
    }
}

impl<T: Clone + Send + Sync + 'static> Dialer for Custom<T> {
    fn connect(&self, endpoint: &Endpoint) -> BoxFuture<Result<ResourceConn>> {
        let (c, ep) = (self.0.clone(), endpoint.clone());
        Box::pin(async move {
            let value = c.connect(&ep).await?;
            let owned: SharedObject = Arc::new(Owned {
                value,
                connector: c.clone(),
            });
            Ok(ResourceConn::Object(owned))
        })
    }
    fn alive(&self, _conn: &ResourceConn) -> bool {
        true
    }
    fn has_probe(&self) -> bool {
        self.0.has_check()
    }
    fn probe_periodically(&self) -> bool {
        true
    }
    fn probe(&self, conn: &ResourceConn) -> BoxFuture<Result<()>> {
        let c = self.0.clone();
        let value = Self::value(conn);
        Box::pin(async move {
            match value {
                Some(mut v) => c.check(&mut v).await,
                None => Err(Error::internal(
                    "a custom resource holds another type's object",
                )),
            }
        })
    }
}

/// Reads a custom resource's object as the program's `T`.
pub(crate) fn object<T: Clone + Send + Sync + 'static>(conn: &ResourceConn) -> Option<T> {
    Custom::<T>::value(conn)
}

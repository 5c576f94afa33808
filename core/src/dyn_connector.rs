//! One connector type for pools of either built-in sockets or program objects, so a
//! binding needs one pool type and one lease type for both.

use crate::connector::{Connector, FnConnector, Socket, TcpConnector};
use crate::endpoint::Endpoint;
use crate::error::{Error, Result};

/// A connection of an [`AnyConnector`] pool: a built-in socket or the program's object.
#[derive(Debug)]
pub enum AnyConn<T> {
    /// A built-in TCP or Unix socket.
    Socket(Socket),
    /// The program's own object (made by its connect callback).
    Custom(T),
}

impl<T> AnyConn<T> {
    /// The socket, or FailedPrecondition naming what this connection is instead.
    pub fn socket(&self) -> Result<&Socket> {
        match self {
            AnyConn::Socket(s) => Ok(s),
            AnyConn::Custom(_) => Err(Error::failed_precondition(
                "this lease holds a custom connection made by the pool's connect callback; it has no socket (use its object instead)",
            )),
        }
    }

    /// The program's object, or FailedPrecondition for a socket.
    pub fn custom(&self) -> Result<&T> {
        match self {
            AnyConn::Custom(t) => Ok(t),
            AnyConn::Socket(_) => Err(Error::failed_precondition(
                "this lease holds a built-in socket, not a custom object (use its fd or send/recv)",
            )),
        }
    }
}

/// Either the built-in connector or a program-supplied [`FnConnector`].
pub enum AnyConnector<T> {
    /// Built-in sockets.
    Builtin(TcpConnector),
    /// Program callbacks.
    Custom(FnConnector<T>),
}

impl<T: Clone + Send + Sync + 'static> Connector for AnyConnector<T> {
    type Conn = AnyConn<T>;

    async fn connect(&self, endpoint: &Endpoint) -> Result<AnyConn<T>> {
        match self {
            AnyConnector::Builtin(c) => c.connect(endpoint).await.map(AnyConn::Socket),
            AnyConnector::Custom(c) => c.connect(endpoint).await.map(AnyConn::Custom),
        }
    }

    #[inline]
    fn is_alive(&self, conn: &mut AnyConn<T>) -> bool {
        match (self, conn) {
            (AnyConnector::Builtin(c), AnyConn::Socket(s)) => c.is_alive(s),
            _ => true,
        }
    }

    fn has_check(&self) -> bool {
        match self {
            AnyConnector::Builtin(c) => c.has_check(),
            AnyConnector::Custom(c) => c.has_check(),
        }
    }

    async fn check(&self, conn: &mut AnyConn<T>) -> Result<()> {
        match (self, conn) {
            (AnyConnector::Builtin(c), AnyConn::Socket(s)) => c.check(s).await,
            (AnyConnector::Custom(c), AnyConn::Custom(t)) => c.check(t).await,
            _ => Ok(()),
        }
    }

    #[inline]
    fn recycle(&self, conn: &mut AnyConn<T>) -> bool {
        match (self, conn) {
            (AnyConnector::Builtin(c), AnyConn::Socket(s)) => c.recycle(s),
            _ => true,
        }
    }

    fn close(&self, conn: AnyConn<T>) {
        match (self, conn) {
            (AnyConnector::Custom(c), AnyConn::Custom(t)) => c.close(t),
            (_, conn) => drop(conn),
        }
    }
}

//! The server's settings, from the `server.*` keys, checked before anything binds.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use crate::config::Config;
use crate::error::{Error, Result};

/// The `server.*` keys, parsed.
#[derive(Debug, Clone)]
pub(crate) struct ServerSettings {
    pub(crate) listen: SocketAddr,
    pub(crate) grpc_listen: Option<SocketAddr>,
    pub(crate) token: Option<String>,
    pub(crate) tls: Option<(PathBuf, PathBuf)>,
}

fn addr(key: &str, text: &str) -> Result<SocketAddr> {
    let bad = |why: String| {
        Error::invalid_argument(format!(
            "{key} must be host:port (e.g. 127.0.0.1:8080, or 127.0.0.1:0 for a free port), got \"{}\": {why}",
            text.escape_default()
        ))
    };
    let mut found = text.to_socket_addrs().map_err(|e| bad(e.to_string()))?;
    found
        .next()
        .ok_or_else(|| bad("it names no address".to_string()))
}

impl ServerSettings {
    /// `None` when `server.listen` is empty (no server). InvalidArgument for a bad
    /// address, a non-loopback bind without `server.token`, or half a TLS pair.
    pub(crate) fn from_config(c: &Config) -> Result<Option<ServerSettings>> {
        let listen = c.get("server.listen")?.trim();
        let grpc = c.get("server.grpc_listen")?.trim();
        if listen.is_empty() {
            if !grpc.is_empty() {
                return Err(Error::invalid_argument(
                    "server.grpc_listen is set but server.listen is empty; the server starts only with server.listen",
                ));
            }
            return Ok(None);
        }
        let listen = addr("server.listen", listen)?;
        let grpc_listen = match grpc {
            "" => None,
            g => Some(addr("server.grpc_listen", g)?),
        };
        let token = match c.get("server.token")? {
            "" => None,
            t => Some(t.to_string()),
        };
        for a in std::iter::once(listen).chain(grpc_listen) {
            if !a.ip().is_loopback() && token.is_none() {
                return Err(Error::invalid_argument(format!(
                    "the server would listen on {a}, which is not loopback, with no server.token; set server.token (every route then needs it) or bind 127.0.0.1"
                )));
            }
        }
        let (cert, key) = (c.get("server.tls_cert")?, c.get("server.tls_key")?);
        let tls = match (cert.is_empty(), key.is_empty()) {
            (true, true) => None,
            (false, false) => Some((PathBuf::from(cert), PathBuf::from(key))),
            _ => {
                return Err(Error::invalid_argument(
                    "server.tls_cert and server.tls_key go together: set both (PEM files) for TLS, or neither",
                ));
            }
        };
        Ok(Some(ServerSettings {
            listen,
            grpc_listen,
            token,
            tls,
        }))
    }
}

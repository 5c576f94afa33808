//! Binding and serving: a std listener bound at `Manager::new` (so a bad or busy
//! address fails there), then an accept loop on the manager's runtime that serves
//! HTTP/1.1 and HTTP/2 (h2c by its preface, or TLS with ALPN) through hyper-util's
//! auto builder, so admin, WebSocket upgrades and gRPC share one port.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::error::{Code, Error, Result};

/// Connections the kernel queues before `accept` (std's 128 overflows when thousands
/// of hub clients connect at once; tokio's default is 1024 too).
const BACKLOG: i32 = 1024;

/// Binds `addr` now. Unavailable when it is taken, InvalidArgument when it cannot be
/// bound here.
pub(crate) fn bind(key: &str, addr: SocketAddr) -> Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let fail = |e: std::io::Error| {
        let code = match e.kind() {
            std::io::ErrorKind::AddrInUse => Code::Unavailable,
            _ => Code::InvalidArgument,
        };
        Error::new(code, format!("{key} = {addr}: cannot listen there: {e}"))
    };
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None).map_err(fail)?;
    // Lets a restarted program bind its port while old connections sit in TIME_WAIT.
    s.set_reuse_address(true).map_err(fail)?;
    s.bind(&addr.into()).map_err(fail)?;
    s.listen(BACKLOG).map_err(fail)?;
    s.set_nonblocking(true).map_err(fail)?;
    Ok(s.into())
}

/// The TLS acceptor of a PEM certificate chain and key.
pub(crate) fn tls(cert: &Path, key: &Path) -> Result<TlsAcceptor> {
    let bad = |what: &str, path: &Path, e: String| {
        Error::invalid_argument(format!(
            "{what} {}: {e} (a PEM file is expected)",
            path.display()
        ))
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad("server.tls_cert", cert, e.to_string()))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad("server.tls_cert", cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("server.tls_cert", cert, "no certificate in it".into()));
    }
    let key_der =
        PrivateKeyDer::from_pem_file(key).map_err(|e| bad("server.tls_key", key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::new(Code::Internal, format!("TLS setup: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| {
            Error::invalid_argument(format!(
                "server.tls_cert and server.tls_key do not make a usable pair: {e}"
            ))
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `app` on `listener` until `stop` turns true; each connection ends then too.
pub(crate) async fn serve(
    listener: std::net::TcpListener,
    tls: Option<TlsAcceptor>,
    app: axum::Router,
    mut stop: watch::Receiver<bool>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => return,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(_) => {
                // Out of descriptors, most likely: let some close before trying again.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (app, tls, stop) = (app.clone(), tls.clone(), stop.clone());
        tokio::spawn(async move {
            match tls {
                Some(acceptor) => {
                    let accept =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
                    if let Ok(Ok(s)) = accept.await {
                        connection(TokioIo::new(s), app, stop).await;
                    }
                }
                None => connection(TokioIo::new(stream), app, stop).await,
            }
        });
    }
}

async fn connection<I>(io: I, app: axum::Router, mut stop: watch::Receiver<bool>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let builder = Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection_with_upgrades(io, TowerToHyperService::new(app));
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
        }
    }
}

//! Seed 000's `ConnectionManagerService` over gRPC (tonic, code generated from
//! `proto/switchboard/v1/sessions.proto`): the sessions, with our two extensions for
//! offsets. Calls run on the blocking pool (a durable commit fsyncs).

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::auth::same_token;
use super::error::grpc_status;
use crate::error::{Error, Result};
use crate::sessions::{SessionDetails, Sessions};

/// The generated messages and service.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub(crate) mod pb {
    tonic::include_proto!("switchboard.v1");
}

use pb::connection_manager_service_server::{
    ConnectionManagerService, ConnectionManagerServiceServer,
};

pub(crate) struct Service {
    pub(crate) parts: Arc<crate::manager::parts::Parts>,
}

async fn run<T: Send + 'static>(
    parts: &Arc<crate::manager::parts::Parts>,
    f: impl FnOnce(&Sessions) -> Result<T> + Send + 'static,
) -> std::result::Result<T, Status> {
    let parts = parts.clone();
    tokio::task::spawn_blocking(move || f(&parts.sessions))
        .await
        .map_err(|_| Status::internal("the call panicked"))?
        .map_err(|e| grpc_status(&e))
}

fn id_of(c: Option<pb::Connection>) -> Result<u64> {
    let c = c.ok_or_else(|| Error::invalid_argument("the request needs connection { id }"))?;
    u64::try_from(c.id).map_err(|_| {
        Error::invalid_argument(format!(
            "connection id must be a positive integer, got {}",
            c.id
        ))
    })
}

/// A session opened for a NewConnection not yet answered: closed if dropped armed.
struct Opened {
    parts: Arc<crate::manager::parts::Parts>,
    id: Option<u64>,
}

impl Opened {
    fn disarm(mut self) -> u64 {
        self.id.take().unwrap_or_default()
    }
}

impl Drop for Opened {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            let _ = self.parts.sessions.close(id);
        }
    }
}

#[tonic::async_trait]
impl ConnectionManagerService for Service {
    async fn new_connection(
        &self,
        req: Request<pb::NewConnectionRequest>,
    ) -> std::result::Result<Response<pb::NewConnectionResponse>, Status> {
        let d = req
            .into_inner()
            .details
            .ok_or_else(|| Status::invalid_argument("NewConnection needs details"))?;
        // The session is opened on the blocking pool with a guard that closes it, so a
        // call cancelled meanwhile (the client's deadline) leaves no session behind
        // that nobody knows the id of; the guard is disarmed once the id is answered.
        let parts = self.parts.clone();
        let opened = run(&self.parts, move |s| {
            let id = if d.resume {
                if !d.stream_offsets.is_empty() {
                    return Err(Error::invalid_argument(
                        "resume starts each stream at its committed offset; leave stream_offsets empty",
                    ));
                }
                let streams: Vec<&str> = d.streams.iter().map(String::as_str).collect();
                s.resume(
                    &d.data_source,
                    &d.session_key,
                    &streams,
                    d.exclude_main_stream,
                )
            } else {
                s.open(&SessionDetails {
                    data_source: d.data_source,
                    session_key: d.session_key,
                    streams: d.streams,
                    stream_offsets: d.stream_offsets,
                    exclude_main_stream: d.exclude_main_stream,
                })
            }?;
            Ok(Opened {
                parts,
                id: Some(id),
            })
        })
        .await?;
        let id = opened.disarm();
        Ok(Response::new(pb::NewConnectionResponse {
            connection: Some(pb::Connection { id: id as i64 }),
        }))
    }

    async fn get_connection(
        &self,
        req: Request<pb::GetConnectionRequest>,
    ) -> std::result::Result<Response<pb::GetConnectionResponse>, Status> {
        let c = req.into_inner().connection;
        let info = run(&self.parts, move |s| s.get(id_of(c)?)).await?;
        Ok(Response::new(pb::GetConnectionResponse {
            details: Some(pb::ConnectionDetails {
                data_source: info.data_source.clone(),
                session_key: info.session_key.clone(),
                streams: info.streams.iter().map(|st| st.name.clone()).collect(),
                stream_offsets: info.streams.iter().map(|st| st.position).collect(),
                exclude_main_stream: info.exclude_main_stream,
                resume: false,
            }),
        }))
    }

    async fn close_connection(
        &self,
        req: Request<pb::CloseConnectionRequest>,
    ) -> std::result::Result<Response<pb::CloseConnectionResponse>, Status> {
        let c = req.into_inner().connection;
        run(&self.parts, move |s| s.close(id_of(c)?)).await?;
        Ok(Response::new(pb::CloseConnectionResponse { success: true }))
    }

    async fn commit_offsets(
        &self,
        req: Request<pb::CommitOffsetsRequest>,
    ) -> std::result::Result<Response<pb::CommitOffsetsResponse>, Status> {
        let r = req.into_inner();
        run(&self.parts, move |s| {
            let id = id_of(r.connection)?;
            for o in &r.offsets {
                s.commit(id, &o.stream, o.offset)?;
            }
            Ok(())
        })
        .await?;
        Ok(Response::new(pb::CommitOffsetsResponse {}))
    }

    async fn get_offsets(
        &self,
        req: Request<pb::GetOffsetsRequest>,
    ) -> std::result::Result<Response<pb::GetOffsetsResponse>, Status> {
        let c = req.into_inner().connection;
        let info = run(&self.parts, move |s| s.get(id_of(c)?)).await?;
        let streams = info
            .streams
            .iter()
            .map(|st| pb::StreamOffsets {
                stream: st.name.clone(),
                position: st.position,
                committed: st.committed.unwrap_or(0),
                has_committed: st.committed.is_some(),
            })
            .collect();
        Ok(Response::new(pb::GetOffsetsResponse { streams }))
    }
}

/// The service's routes (`/switchboard.v1.ConnectionManagerService/*`) added to
/// `router`, behind the token check when `token` is set.
pub(crate) fn route<S: Clone + Send + Sync + 'static>(
    router: axum::Router<S>,
    parts: Arc<crate::manager::parts::Parts>,
    token: Option<String>,
) -> axum::Router<S> {
    // tonic's interceptor signature returns its Status by value.
    #[allow(clippy::result_large_err)]
    let check = move |req: Request<()>| -> std::result::Result<Request<()>, Status> {
        if let Some(want) = &token {
            let given = req
                .metadata()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t.trim());
            if !given.is_some_and(|t| same_token(t, want)) {
                return Err(Status::unauthenticated(
                    "this server needs its token: send metadata authorization: Bearer <server.token>",
                ));
            }
        }
        Ok(req)
    };
    let svc = ConnectionManagerServiceServer::with_interceptor(Service { parts }, check);
    let path = format!(
        "/{}/{{*method}}",
        <ConnectionManagerServiceServer<Service> as tonic::server::NamedService>::NAME
    );
    router.route_service(&path, svc)
}

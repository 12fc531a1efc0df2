//! The gRPC face of ingest: the listener's transport limits, decoding requests, calling
//! [`IngestService`], and the mapping of [`IngestError`] to `tonic::Status` (the only place that
//! mapping exists).

use super::{IngestError, IngestService, PeerIdentity, Refusal};
use crate::pki::TlsPeer;
use crate::tasks::{Role, TaskTree};
use hcmon_proto::v1::ingest_server::{Ingest, IngestServer};
use hcmon_proto::v1::{
    Ack, AgentMessage, CollectorMessage, REJECTED_SEQ_METADATA_KEY, RegisterRequest,
    RegisterResponse, SESSION_METADATA_KEY, agent_message, collector_message,
};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Server;
use tonic::{Code, Request, Response, Status, Streaming};

/// The gRPC listener's transport limits (`[server.grpc]` in the collector's config). The caps
/// on agent streams are ingest's (`[limits]`), since they need to know whose stream it is.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GrpcLimits {
    /// Most calls (HTTP/2 streams) open at once on one connection; an agent needs two. Over
    /// it, the client is told to wait (HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS`).
    pub max_concurrent_streams: u32,
    /// Most calls in progress at once on one connection; more wait their turn.
    pub concurrency_limit_per_connection: usize,
    /// How often the collector pings a connection (HTTP/2 keepalive).
    #[serde(with = "humantime_serde")]
    pub keepalive_interval: Duration,
    /// How long a ping may go unanswered before the connection is closed, so that a vanished
    /// agent's stream ends and frees its place under the stream caps.
    #[serde(with = "humantime_serde")]
    pub keepalive_timeout: Duration,
    /// Most connections open at once over TLS; more wait in the kernel's queue.
    pub max_connections: usize,
    /// Most connections open at once over TLS from one address; more are closed at once.
    pub max_connections_per_address: usize,
}

impl Default for GrpcLimits {
    fn default() -> Self {
        Self {
            max_concurrent_streams: 64,
            concurrency_limit_per_connection: 64,
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(20),
            max_connections: 4096,
            max_connections_per_address: 64,
        }
    }
}

impl GrpcLimits {
    /// A tonic server with these limits. tonic has no timeout for a connection that never
    /// completes its HTTP/2 handshake; the keepalive pings end one that stalls after it.
    pub fn server(&self) -> Server {
        Server::builder()
            .max_concurrent_streams(self.max_concurrent_streams)
            .concurrency_limit_per_connection(self.concurrency_limit_per_connection)
            .http2_keepalive_interval(Some(self.keepalive_interval))
            .http2_keepalive_timeout(Some(self.keepalive_timeout))
    }
}

/// Decoding stops far above the batch limit: batches between the two are decoded and refused
/// with a message naming their size, rather than cut off mid-stream.
const DECODE_LIMIT_FACTOR: usize = 4;

impl From<IngestError> for Status {
    fn from(error: IngestError) -> Self {
        let code = match error.refusal() {
            Refusal::Invalid => Code::InvalidArgument,
            Refusal::OverLimit => Code::ResourceExhausted,
            Refusal::UnknownReference | Refusal::OutOfSequence => Code::FailedPrecondition,
            Refusal::Unauthenticated => Code::Unauthenticated,
            Refusal::Forbidden => Code::PermissionDenied,
            Refusal::Internal => Code::Internal,
        };
        // Display hides internal details: storage errors say only "storage failure".
        let mut status = Status::new(code, error.to_string());
        if let Some(seq) = error.seq() {
            status.metadata_mut().insert(
                REJECTED_SEQ_METADATA_KEY,
                seq.to_string().parse().expect("digits are valid metadata"),
            );
        }
        status
    }
}

/// Classifies an error reading the inbound stream. tonic reports undecodable protobuf as
/// INTERNAL and an over-limit frame as OUT_OF_RANGE; both are the client's fault, so they become
/// refusals. Anything else means the connection itself failed and nobody is left to tell.
fn inbound_refusal(status: Status) -> Result<IngestError, Status> {
    match status.code() {
        Code::Internal => Ok(IngestError::Malformed {
            detail: status.message().to_owned(),
        }),
        Code::OutOfRange => Ok(IngestError::OverDecodeLimit {
            detail: status.message().to_owned(),
        }),
        _ => Err(status),
    }
}

/// What the transport knows of a request's client: a TLS connection puts its [`TlsPeer`] on
/// every request (see `pki/incoming.rs`); a plaintext one puts none.
fn peer<T>(request: &Request<T>) -> PeerIdentity {
    match request.extensions().get::<TlsPeer>() {
        Some(tls) => PeerIdentity::Tls(tls.certificate.clone()),
        None => PeerIdentity::Plaintext,
    }
}

pub struct GrpcIngest {
    service: Arc<IngestService>,
    /// Runs each stream's task. Agents' streams never end on their own; at the tree's shutdown
    /// each one is closed between batches (never in the middle of one), so the server drains at
    /// once instead of waiting out its grace period.
    tasks: TaskTree,
}

impl GrpcIngest {
    /// The tonic service, with the decode limit derived from the batch limit.
    pub fn server(service: Arc<IngestService>, tasks: TaskTree) -> IngestServer<Self> {
        let limit = service
            .limits
            .max_batch_bytes
            .saturating_mul(DECODE_LIMIT_FACTOR);
        IngestServer::new(Self { service, tasks }).max_decoding_message_size(limit)
    }
}

#[tonic::async_trait]
impl Ingest for GrpcIngest {
    async fn register(
        &self,
        request: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        let peer = peer(&request);
        Ok(Response::new(
            self.service.register(request.into_inner(), &peer).await?,
        ))
    }

    type StreamStream = ReceiverStream<Result<CollectorMessage, Status>>;

    async fn stream(
        &self,
        request: Request<Streaming<AgentMessage>>,
    ) -> Result<Response<Self::StreamStream>, Status> {
        let session = request
            .metadata()
            .get(SESSION_METADATA_KEY)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut stream = self
            .service
            .open_stream(session.as_deref(), &peer(&request))?;
        let mut inbound = request.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        let service = self.service.clone();
        let shutdown = self.tasks.shutdown().clone();
        let (replaced, revoked) = (stream.replaced(), stream.revoked());
        self.tasks.spawn("agent-stream", Role::Helper, async move {
            loop {
                let next = tokio::select! {
                    next = inbound.message() => next,
                    _ = shutdown.cancelled() => {
                        let closing = Status::unavailable("the collector is shutting down; reconnect later");
                        let _ = tx.send(Err(closing)).await;
                        break;
                    }
                    _ = replaced.cancelled() => {
                        let error = IngestError::SessionReplaced { node: stream.node.clone() };
                        let _ = tx.send(Err(error.into())).await;
                        break;
                    }
                    _ = revoked.cancelled() => {
                        let error = IngestError::Revoked { node: stream.node.clone() };
                        let _ = tx.send(Err(error.into())).await;
                        break;
                    }
                };
                let message = match next {
                    Ok(Some(message)) => message,
                    Ok(None) => break,
                    Err(status) => {
                        match inbound_refusal(status) {
                            Ok(error) => {
                                let error = service.reject(&stream.node, error);
                                let _ = tx.send(Err(error.into())).await;
                            }
                            Err(status) => {
                                tracing::debug!(node = %stream.node, %status, "agent stream ended");
                            }
                        }
                        break;
                    }
                };
                let reply = match message.kind {
                    Some(agent_message::Kind::Batch(batch)) => service
                        .ingest(&mut stream, batch)
                        .await
                        .map(|seq| CollectorMessage {
                            kind: Some(collector_message::Kind::Ack(Ack { seq })),
                        }),
                    None => Err(IngestError::EmptyMessage),
                };
                let failed = reply.is_err();
                if tx.send(reply.map_err(Status::from)).await.is_err() || failed {
                    break;
                }
            }
            Ok(())
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

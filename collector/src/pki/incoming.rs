//! Accepting TLS connections for the gRPC server: handshakes run as tasks of their own (a
//! client that stalls its handshake holds up nobody else), bounded in time and in number, and
//! each finished connection carries what its client certificate says ([`PeerCertificate`]),
//! which tonic puts on every request of the connection.

use crate::tasks::{Role, TaskTree};
use crate::telemetry::CollectorMetrics;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

/// Handshakes in progress at once; more wait in the kernel's accept queue.
const MAX_HANDSHAKES: usize = 512;

/// What a verified client certificate says: the node it was issued to and its serial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate {
    pub node: String,
    /// Lowercase hex.
    pub serial: String,
}

impl PeerCertificate {
    /// Reads a certificate the TLS handshake already verified against the CA; `None` when it
    /// names no node (the CA signs none such).
    pub fn from_der(der: &[u8]) -> Option<Self> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let node = cert.subject().iter_common_name().next()?.as_str().ok()?;
        Some(Self {
            node: node.to_owned(),
            serial: super::authority::hex(cert.raw_serial()),
        })
    }
}

/// What tonic hands each request of a TLS connection: the client's address and certificate.
#[derive(Debug, Clone)]
pub struct TlsPeer {
    pub remote: SocketAddr,
    /// `None` when the client sent no certificate (an enrolling agent).
    pub certificate: Option<PeerCertificate>,
}

/// A finished TLS connection.
pub struct TlsConnection {
    stream: TlsStream<TcpStream>,
    peer: TlsPeer,
}

impl tonic::transport::server::Connected for TlsConnection {
    type ConnectInfo = TlsPeer;
    fn connect_info(&self) -> TlsPeer {
        self.peer.clone()
    }
}

impl AsyncRead for TlsConnection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Accepts on `listener` until the tree shuts down, handing over connections whose handshake
/// finished within `timeout`. A failed or slow handshake is counted
/// (`hcmon_collector_refused_requests_total{listener="grpc",reason="tls_handshake"}`).
pub fn incoming(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    timeout: Duration,
    metrics: Arc<CollectorMetrics>,
    tasks: TaskTree,
) -> ReceiverStream<io::Result<TlsConnection>> {
    let (tx, rx) = mpsc::channel(64);
    let permits = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    let shutdown = tasks.shutdown().clone();
    let accepting = tasks.clone();
    tasks.spawn("grpc-accept", Role::Essential, async move {
        loop {
            let Ok(permit) = permits.clone().acquire_owned().await else {
                return Ok(());
            };
            let (stream, remote) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        tracing::debug!(%error, "gRPC accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = shutdown.cancelled() => return Ok(()),
            };
            let (acceptor, tx, metrics) = (acceptor.clone(), tx.clone(), metrics.clone());
            accepting.spawn("tls-handshake", Role::Helper, async move {
                let _permit = permit;
                let handshake = tokio::time::timeout(timeout, acceptor.accept(stream)).await;
                let stream = match handshake {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(error)) => {
                        tracing::debug!(%remote, %error, "TLS handshake failed");
                        refused(&metrics);
                        return Ok(());
                    }
                    Err(_) => {
                        tracing::debug!(%remote, "TLS handshake timed out");
                        refused(&metrics);
                        return Ok(());
                    }
                };
                let certificate = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|chain| chain.first())
                    .and_then(|der| PeerCertificate::from_der(der));
                let peer = TlsPeer {
                    remote,
                    certificate,
                };
                let _ = tx.send(Ok(TlsConnection { stream, peer })).await;
                Ok(())
            });
        }
    });
    ReceiverStream::new(rx)
}

fn refused(metrics: &CollectorMetrics) {
    metrics
        .refused_requests
        .with_label_values(&["grpc", "tls_handshake"])
        .inc();
}

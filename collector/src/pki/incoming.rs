//! Accepting TLS connections for the gRPC server: handshakes run as tasks of their own (a
//! client that stalls its handshake holds up nobody else), bounded in time and in number, and
//! each finished connection carries what its client certificate says ([`PeerCertificate`]),
//! which tonic puts on every request of the connection.
//!
//! A connection is handed to the server only once the client has also sent HTTP/2's connection
//! preface, within the same time limit: tonic has no timeout of its own before HTTP/2 starts,
//! so a client that finished TLS and then said nothing would hold its socket forever. Open
//! connections are capped per client address (more are closed at once) and in all (more wait
//! in the kernel's queue); each refusal is counted.

use crate::tasks::{Role, TaskTree};
use crate::telemetry::CollectorMetrics;
use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

/// Handshakes in progress at once; more wait in the kernel's accept queue.
const MAX_HANDSHAKES: usize = 512;

/// What every HTTP/2 client sends first (RFC 9113, 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The caps on open connections (`[server.grpc]`).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionCaps {
    pub total: usize,
    pub per_address: usize,
}

/// Open connections per client address; an entry goes when its last connection closes.
#[derive(Default)]
struct PerAddress {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection's place under the caps, given back when the connection is dropped.
struct Place {
    _total: OwnedSemaphorePermit,
    address: IpAddr,
    per_address: Arc<PerAddress>,
}

impl PerAddress {
    fn take(
        self: &Arc<Self>,
        address: IpAddr,
        cap: usize,
        total: OwnedSemaphorePermit,
    ) -> Option<Place> {
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(address).or_default();
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(Place {
            _total: total,
            address,
            per_address: self.clone(),
        })
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut open = self
            .per_address
            .open
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.address);
            }
        }
    }
}

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

/// A finished TLS connection whose HTTP/2 preface was read (and is replayed to the server).
pub struct TlsConnection {
    stream: TlsStream<TcpStream>,
    peer: TlsPeer,
    /// How much of the preface the server has read back.
    replayed: usize,
    _place: Place,
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
        if self.replayed < PREFACE.len() {
            let rest = &PREFACE[self.replayed..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            self.replayed += n;
            return Poll::Ready(Ok(()));
        }
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
    caps: ConnectionCaps,
    metrics: Arc<CollectorMetrics>,
    tasks: TaskTree,
) -> ReceiverStream<io::Result<TlsConnection>> {
    let (tx, rx) = mpsc::channel(64);
    let permits = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    let open = Arc::new(Semaphore::new(caps.total));
    let per_address = Arc::new(PerAddress::default());
    let shutdown = tasks.shutdown().clone();
    let accepting = tasks.clone();
    tasks.spawn("grpc-accept", Role::Essential, async move {
        loop {
            let (Ok(permit), Ok(total)) = (
                permits.clone().acquire_owned().await,
                open.clone().acquire_owned().await,
            ) else {
                return Ok(());
            };
            let (stream, remote) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => {
                        crate::no_delay(&accepted.0);
                        accepted
                    }
                    Err(error) => {
                        tracing::debug!(%error, "gRPC accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = shutdown.cancelled() => return Ok(()),
            };
            let Some(place) = per_address.take(remote.ip(), caps.per_address, total) else {
                refused(&metrics, "max_connections_per_address");
                continue;
            };
            let (acceptor, tx, metrics) = (acceptor.clone(), tx.clone(), metrics.clone());
            accepting.spawn("tls-handshake", Role::Helper, async move {
                let _permit = permit;
                let opening = async {
                    let mut stream = acceptor.accept(stream).await?;
                    let mut preface = [0u8; PREFACE.len()];
                    stream.read_exact(&mut preface).await?;
                    Ok::<_, io::Error>((stream, preface))
                };
                let stream = match tokio::time::timeout(timeout, opening).await {
                    Ok(Ok((stream, preface))) if &preface == PREFACE => stream,
                    Ok(Ok(_)) => {
                        tracing::debug!(%remote, "not HTTP/2 after the TLS handshake");
                        refused(&metrics, "http2_preface");
                        return Ok(());
                    }
                    Ok(Err(error)) => {
                        tracing::debug!(%remote, %error, "TLS handshake failed");
                        refused(&metrics, "tls_handshake");
                        return Ok(());
                    }
                    Err(_) => {
                        tracing::debug!(%remote, "TLS handshake or HTTP/2 preface timed out");
                        refused(&metrics, "tls_handshake");
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
                let connection = TlsConnection {
                    stream,
                    peer,
                    replayed: 0,
                    _place: place,
                };
                let _ = tx.send(Ok(connection)).await;
                Ok(())
            });
        }
    });
    ReceiverStream::new(rx)
}

fn refused(metrics: &CollectorMetrics, reason: &str) {
    metrics
        .refused_requests
        .with_label_values(&["grpc", reason])
        .inc();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::authority::{CertificateAuthority, PkiPaths};
    use crate::pki::tls::{self, ReloadingCertificate};
    use rustls::pki_types::ServerName;
    use tokio::io::AsyncWriteExt;
    use tokio_stream::StreamExt;

    struct Rig {
        addr: std::net::SocketAddr,
        connections: ReceiverStream<io::Result<TlsConnection>>,
        client: tokio_rustls::TlsConnector,
        metrics: Arc<CollectorMetrics>,
        _dir: tempfile::TempDir,
    }

    async fn rig(per_address: usize) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let paths = PkiPaths::in_data_dir(dir.path());
        // The client checks the certificates against the real clock.
        let now_ms = crate::clock::system_clock()();
        let ca = CertificateAuthority::open_or_create(&paths, now_ms).unwrap();
        ca.write_server_certificate(&paths, &["127.0.0.1".into()], now_ms)
            .unwrap();
        let certificate = Arc::new(
            ReloadingCertificate::open(&paths.server_cert(), &paths.server_key()).unwrap(),
        );
        let config =
            tls::grpc_config(certificate, ca.cert_der(), tls::TlsVersion::default()).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let metrics = Arc::new(CollectorMetrics::new());
        let caps = ConnectionCaps {
            total: 16,
            per_address,
        };
        let connections = incoming(
            listener,
            TlsAcceptor::from(Arc::new(config)),
            Duration::from_millis(500),
            caps,
            metrics.clone(),
            TaskTree::new(Default::default()),
        );
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls::pki_types::CertificateDer::from(
                ca.cert_der().to_vec(),
            ))
            .unwrap();
        let mut client = rustls::ClientConfig::builder_with_provider(tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = vec![b"h2".to_vec()];
        Rig {
            addr,
            connections,
            client: tokio_rustls::TlsConnector::from(Arc::new(client)),
            metrics,
            _dir: dir,
        }
    }

    impl Rig {
        async fn connect(&self) -> tokio_rustls::client::TlsStream<TcpStream> {
            let tcp = TcpStream::connect(self.addr).await.unwrap();
            let name = ServerName::try_from("127.0.0.1").unwrap();
            self.client.connect(name, tcp).await.unwrap()
        }

        fn refused(&self, reason: &str) -> u64 {
            self.metrics
                .refused_requests
                .with_label_values(&["grpc", reason])
                .get()
        }
    }

    /// Reads until the peer closes; true when it did within `within`.
    async fn closed(
        stream: &mut tokio_rustls::client::TlsStream<TcpStream>,
        within: Duration,
    ) -> bool {
        let mut buf = [0u8; 64];
        matches!(
            tokio::time::timeout(within, stream.read(&mut buf)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    #[tokio::test]
    async fn a_client_that_never_starts_http2_is_closed_and_one_that_does_is_served_whole() {
        let mut rig = rig(8).await;
        let mut silent = rig.connect().await;
        assert!(closed(&mut silent, Duration::from_secs(10)).await);
        assert_eq!(rig.refused("tls_handshake"), 1);

        let mut speaking = rig.connect().await;
        speaking.write_all(PREFACE).await.unwrap();
        speaking.write_all(b"more").await.unwrap();
        let mut served = rig.connections.next().await.unwrap().unwrap();
        let mut read = vec![0u8; PREFACE.len() + 4];
        served.read_exact(&mut read).await.unwrap();
        assert_eq!(&read[..PREFACE.len()], PREFACE);
        assert_eq!(&read[PREFACE.len()..], b"more");
        assert!(served.peer.certificate.is_none());

        let mut wrong = rig.connect().await;
        wrong
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        assert!(closed(&mut wrong, Duration::from_secs(10)).await);
        assert_eq!(rig.refused("http2_preface"), 1);
    }

    #[tokio::test]
    async fn connections_over_the_cap_of_one_address_are_closed_at_once() {
        let rig = rig(1).await;
        let mut first = rig.connect().await;
        first.write_all(PREFACE).await.unwrap();
        let tcp = TcpStream::connect(rig.addr).await.unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        // The second is dropped before its handshake: it fails or is closed at once.
        match rig.client.connect(name, tcp).await {
            Err(_) => {}
            Ok(mut second) => assert!(closed(&mut second, Duration::from_secs(10)).await),
        }
        assert_eq!(rig.refused("max_connections_per_address"), 1);
        assert!(!closed(&mut first, Duration::from_millis(200)).await);
    }
}

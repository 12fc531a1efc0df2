//! Test support: a collector CA made at test time, a server certificate for loopback, node
//! certificates signed from the agent's requests, and a TLS listener that reports who
//! connected.

use super::pinned::pin_of;
use hcmon_common::enrollment::EnrollmentToken;
use hcmon_proto::v1::enrollment_server::Enrollment;
use hcmon_proto::v1::{EnrollRequest, IssuedCertificate, RenewRequest};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType, IsCa, Issuer,
    KeyPair,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tonic::codegen::Service;
use tonic::service::Routes;
use tonic::{Request, Response, Status};

pub struct Pki {
    issuer: Issuer<'static, KeyPair>,
    pub ca_der: Vec<u8>,
    pub ca_pem: String,
}

impl Pki {
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        Self {
            issuer: Issuer::new(params, key),
            ca_der: cert.der().to_vec(),
            ca_pem: cert.pem(),
        }
    }

    pub fn pin(&self) -> String {
        pin_of(&self.ca_der)
    }

    /// A server configuration for `127.0.0.1` and `localhost` (chain: server, CA; ALPN h2)
    /// that asks for, but does not require, a client certificate from this CA.
    pub fn server_config(&self) -> ServerConfig {
        self.server_config_for(&["localhost", "127.0.0.1"])
    }

    pub fn server_config_for(&self, names: &[&str]) -> ServerConfig {
        let key = KeyPair::generate().unwrap();
        let names = names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let params = CertificateParams::new(names).unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from(self.ca_der.clone()))
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let clients =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()
                .unwrap();
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_client_cert_verifier(clients)
            .with_single_cert(
                vec![
                    cert.der().clone(),
                    CertificateDer::from(self.ca_der.clone()),
                ],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec()];
        config
    }

    /// Signs a node's certificate request, valid from now for `lifetime`.
    pub fn sign(&self, csr_pem: &str, lifetime: Duration) -> String {
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem).unwrap();
        let now = time::OffsetDateTime::now_utc();
        csr.params.not_before = now - time::Duration::minutes(1);
        csr.params.not_after = now + lifetime;
        csr.signed_by(&self.issuer).unwrap().pem()
    }
}

/// The common name of the client certificate a TLS connection presented, if any.
pub fn peer_name(tls: &TlsStream<tokio::net::TcpStream>) -> Option<String> {
    let der = tls.get_ref().1.peer_certificates()?.first()?.clone();
    let (_, cert) = <x509_parser::prelude::X509Certificate as x509_parser::prelude::FromDer<
        '_,
        _,
    >>::from_der(&der)
    .ok()?;
    let name = cert.subject().iter_common_name().next()?.as_str().ok()?;
    Some(name.to_owned())
}

/// Accepts TLS connections with `config` on loopback and reports, for each handshake that
/// succeeded, the client certificate's common name.
pub async fn tls_listener(config: ServerConfig) -> (SocketAddr, mpsc::Receiver<Option<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            if let Ok(tls) = acceptor.accept(tcp).await {
                let _ = tx.send(peer_name(&tls)).await;
            }
        }
    });
    (addr, rx)
}

/// The client certificate's common name, as the fake collector's TLS layer saw it; in the
/// extensions of every request.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerName(pub String);

/// Serves `routes` (gRPC) over TLS with `config` on loopback, as the collector does, putting
/// the client certificate's [`PeerName`] into each request.
pub async fn serve_grpc(config: ServerConfig, routes: Routes) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let Ok(tls) = acceptor.accept(tcp).await else {
                continue;
            };
            let peer = peer_name(&tls);
            let routes = routes.clone();
            let handler = hyper::service::service_fn(
                move |mut request: http::Request<hyper::body::Incoming>| {
                    if let Some(name) = &peer {
                        request.extensions_mut().insert(PeerName(name.clone()));
                    }
                    routes.clone().call(request)
                },
            );
            tokio::spawn(
                hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), handler),
            );
        }
    });
    addr
}

/// Serves `ca`'s Enrollment service over TLS on loopback; the endpoint to reach it.
pub async fn serve_enrollment(ca: Arc<FakeCa>) -> tonic::transport::Endpoint {
    let config = ca.pki.server_config();
    let routes = Routes::new(hcmon_proto::v1::enrollment_server::EnrollmentServer::from_arc(ca));
    let addr = serve_grpc(config, routes).await;
    crate::sender::collector_endpoint(&format!("https://localhost:{}", addr.port())).unwrap()
}

/// A collector stand-in for the Enrollment service: one token for node `nas`, certificates
/// of `lifetime`, and a switch that revokes the node.
pub struct FakeCa {
    pub pki: Pki,
    pub token: String,
    pub lifetime: Duration,
    pub revoked: AtomicBool,
    pub issued: AtomicUsize,
}

/// A [`FakeCa`] and a token it accepts.
pub fn fake_ca(lifetime: Duration) -> (Arc<FakeCa>, EnrollmentToken) {
    let pki = Pki::new("collector CA");
    let token = EnrollmentToken::parse(&format!("hce1.{}.{}", pki.pin(), "5e".repeat(16))).unwrap();
    let ca = FakeCa {
        pki,
        token: token.to_string(),
        lifetime,
        revoked: AtomicBool::new(false),
        issued: AtomicUsize::new(0),
    };
    (Arc::new(ca), token)
}

impl FakeCa {
    fn issue(&self, csr_pem: &str) -> IssuedCertificate {
        self.issued.fetch_add(1, Ordering::Relaxed);
        IssuedCertificate {
            certificate_pem: self.pki.sign(csr_pem, self.lifetime),
            ca_pem: self.pki.ca_pem.clone(),
            not_after_ms: 0,
        }
    }
}

#[tonic::async_trait]
impl Enrollment for FakeCa {
    async fn enroll(
        &self,
        request: Request<EnrollRequest>,
    ) -> Result<Response<IssuedCertificate>, Status> {
        let request = request.into_inner();
        if request.token != self.token || request.node_name != "nas" {
            return Err(Status::unauthenticated("unknown enrollment token"));
        }
        Ok(Response::new(self.issue(&request.csr_pem)))
    }

    async fn renew(
        &self,
        request: Request<RenewRequest>,
    ) -> Result<Response<IssuedCertificate>, Status> {
        let Some(PeerName(name)) = request.extensions().get::<PeerName>().cloned() else {
            return Err(Status::unauthenticated("no client certificate"));
        };
        if self.revoked.load(Ordering::Relaxed) {
            return Err(Status::permission_denied(format!(
                "node {name} was revoked"
            )));
        }
        Ok(Response::new(self.issue(&request.into_inner().csr_pem)))
    }
}

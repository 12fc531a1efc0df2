//! The TLS client side of the agent's gRPC channel: rustls on ring, TLS 1.3 only, ALPN `h2`,
//! plugged into tonic as a connector (tonic's own TLS features stay off, so the workspace keeps
//! a single rustls set-up).

use super::identity::{Identity, first_certificate};
use super::pinned::PinnedVerifier;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tonic::codegen::Service;
use tonic::transport::{Channel, Endpoint, Uri};

/// How the agent decides to trust the collector.
pub enum Trust<'a> {
    /// Enrollment: the CA whose certificate has this SHA-256 (lowercase hex); no client
    /// certificate.
    Pinned(&'a str),
    /// The CA certificate (PEM), with the node's identity as client certificate.
    Mutual {
        ca_pem: &'a str,
        identity: &'a Identity,
    },
}

/// A TLS set-up the agent cannot use (a bad CA file, key or certificate).
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("the collector's CA certificate is not usable: {0}")]
    Ca(String),
    #[error("the node's certificate or key is not usable: {0}")]
    Identity(String),
    #[error("cannot set up TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The agent's rustls client configuration for `trust`.
pub fn client_config(trust: Trust<'_>) -> Result<ClientConfig, TlsConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?;
    let mut config = match trust {
        Trust::Pinned(pin) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedVerifier::new(pin, provider)))
            .with_no_client_auth(),
        Trust::Mutual { ca_pem, identity } => {
            let mut roots = RootCertStore::empty();
            let ca = first_certificate(ca_pem).map_err(TlsConfigError::Ca)?;
            roots
                .add(CertificateDer::from(ca))
                .map_err(|e| TlsConfigError::Ca(e.to_string()))?;
            let chain = CertificateDer::pem_slice_iter(identity.cert_pem.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| TlsConfigError::Identity(e.to_string()))?;
            let key = PrivateKeyDer::from_pem_slice(identity.key_pem.expose().as_bytes())
                .map_err(|e| TlsConfigError::Identity(e.to_string()))?;
            builder
                .with_root_certificates(roots)
                .with_client_auth_cert(chain, key)?
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// Connects `endpoint` (an `https://` URL) over TLS with `config`.
pub async fn connect(
    endpoint: &Endpoint,
    config: ClientConfig,
) -> Result<Channel, tonic::transport::Error> {
    endpoint
        .connect_with_connector(TlsConnector(Arc::new(config)))
        .await
}

/// Dials the URI's host and port and runs the TLS handshake for the URI's host name (or IP).
#[derive(Clone)]
struct TlsConnector(Arc<ClientConfig>);

type Connecting =
    Pin<Box<dyn Future<Output = Result<TokioIo<TlsStream<TcpStream>>, std::io::Error>> + Send>>;

impl Service<Uri> for TlsConnector {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = std::io::Error;
    type Future = Connecting;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let config = self.0.clone();
        Box::pin(async move {
            let invalid = |what: &str| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{uri}: {what}"))
            };
            let host = uri.host().ok_or_else(|| invalid("no host"))?;
            // An IPv6 host comes bracketed in a URI; the server name is the bare address.
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let port = uri.port_u16().unwrap_or(443);
            let name = ServerName::try_from(host.to_owned())
                .map_err(|_| invalid("the host is neither a DNS name nor an IP address"))?;
            let tcp = TcpStream::connect((host, port)).await?;
            tcp.set_nodelay(true)?;
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(name, tcp)
                .await?;
            Ok(TokioIo::new(tls))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrollment::with_causes;
    use crate::tls::KeyRequest;
    use crate::tls::test_pki::{Pki, tls_listener};
    use std::time::Duration;

    async fn handshake(config: ClientConfig, url: String) -> Result<(), String> {
        let mut connector = TlsConnector(Arc::new(config));
        let io = connector
            .call(url.parse().unwrap())
            .await
            .map_err(|e| with_causes(&e))?;
        let (_, session) = io.inner().get_ref();
        assert_eq!(session.alpn_protocol(), Some(&b"h2"[..]));
        assert_eq!(
            session.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_3)
        );
        Ok(())
    }

    #[tokio::test]
    async fn the_pin_admits_only_the_collector_whose_ca_it_names() {
        let pki = Pki::new("collector CA");
        let (addr, mut accepted) = tls_listener(pki.server_config()).await;
        let url = format!("https://{addr}");

        let right = client_config(Trust::Pinned(&pki.pin())).unwrap();
        handshake(right, url.clone()).await.unwrap();
        assert_eq!(accepted.recv().await, Some(None), "no client certificate");

        let other = Pki::new("another CA");
        let wrong = client_config(Trust::Pinned(&other.pin())).unwrap();
        let err = handshake(wrong, url.clone()).await.unwrap_err();
        assert!(
            err.contains("the collector's CA does not match the enrollment token"),
            "{err}"
        );

        // The pinned CA's certificate must also be for the name dialled.
        let (addr, _accepted) = tls_listener(pki.server_config_for(&["elsewhere.lan"])).await;
        let right = client_config(Trust::Pinned(&pki.pin())).unwrap();
        let err = handshake(right, format!("https://{addr}"))
            .await
            .unwrap_err();
        assert!(err.contains("not valid for name"), "{err}");
    }

    #[tokio::test]
    async fn mutual_tls_trusts_the_stored_ca_and_presents_the_node_certificate() {
        let pki = Pki::new("collector CA");
        let (addr, mut accepted) = tls_listener(pki.server_config()).await;
        let dir = tempfile::tempdir().unwrap();
        let request = KeyRequest::generate("nas").unwrap();
        let identity = Identity::from_pem(
            request.key_pem.expose().to_owned(),
            pki.sign(&request.csr_pem, Duration::from_secs(3600)),
            pki.ca_pem.clone(),
            dir.path(),
        )
        .unwrap();
        let config = client_config(Trust::Mutual {
            ca_pem: &pki.ca_pem,
            identity: &identity,
        })
        .unwrap();
        handshake(config, format!("https://localhost:{}", addr.port()))
            .await
            .unwrap();
        assert_eq!(accepted.recv().await, Some(Some("nas".to_owned())));

        // A collector with a certificate from another CA is not trusted.
        let other = Pki::new("another CA");
        let (addr, _accepted) = tls_listener(other.server_config()).await;
        let config = client_config(Trust::Mutual {
            ca_pem: &pki.ca_pem,
            identity: &identity,
        })
        .unwrap();
        let err = handshake(config, format!("https://{addr}"))
            .await
            .unwrap_err();
        assert!(err.contains("UnknownIssuer"), "{err}");
    }
}

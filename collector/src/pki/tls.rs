//! The listeners' TLS: rustls server configurations on the workspace's one crypto provider
//! (ring), TLS 1.3 unless configured otherwise, with a server certificate re-read from disk
//! when its files change, so a certificate is rotated without a restart.
//!
//! The gRPC listener asks every client for a certificate signed by the collector's CA but lets
//! one without through the handshake: an enrolling agent has none yet, and ingest refuses the
//! others with a message a person can act on (see `ingest::PeerIdentity`), which a failed
//! handshake could not carry. The HTTP listener asks for none (browsers would prompt).

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

/// How often a handshake may look at the certificate files' modification times.
const RECHECK: Duration = Duration::from_secs(5);

/// The oldest TLS version a listener accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum TlsVersion {
    #[serde(rename = "1.2")]
    Tls12,
    #[default]
    #[serde(rename = "1.3")]
    Tls13,
}

impl TlsVersion {
    fn versions(self) -> &'static [&'static SupportedProtocolVersion] {
        static TLS13_ONLY: &[&SupportedProtocolVersion] = &[&rustls::version::TLS13];
        match self {
            TlsVersion::Tls12 => rustls::ALL_VERSIONS,
            TlsVersion::Tls13 => TLS13_ONLY,
        }
    }
}

/// Why a TLS configuration cannot be built; names the file.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read {path}: {detail}")]
    Read { path: PathBuf, detail: String },
    #[error("{path} holds no {what}")]
    Empty { path: PathBuf, what: &'static str },
    #[error("the key in {key} does not belong to the certificate in {cert}: {detail}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        detail: String,
    },
    #[error("cannot build the TLS configuration: {0}")]
    Build(String),
}

/// The one crypto provider of the workspace.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The gRPC listener's configuration: client certificates from `client_ca` requested, not
/// required; HTTP/2 only.
pub fn grpc_config(
    certificate: Arc<ReloadingCertificate>,
    client_ca_der: &[u8],
    min_version: TlsVersion,
) -> Result<ServerConfig, TlsSetupError> {
    let provider = provider();
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(client_ca_der.to_vec()))
        .map_err(|e| TlsSetupError::Build(format!("the CA certificate: {e}")))?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| TlsSetupError::Build(e.to_string()))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(min_version.versions())
        .map_err(|e| TlsSetupError::Build(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(certificate);
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// The HTTP listener's configuration: no client certificates; HTTP/1.1.
pub fn http_config(
    certificate: Arc<ReloadingCertificate>,
    min_version: TlsVersion,
) -> Result<ServerConfig, TlsSetupError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(min_version.versions())
        .map_err(|e| TlsSetupError::Build(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(certificate);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A certificate chain and key read from two PEM files, and read again when either changes.
/// A new pair that cannot be used (half written, key and certificate not matching) is logged
/// and the one in use kept.
#[derive(Debug)]
pub struct ReloadingCertificate {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    /// The files' modification times when `current` was read, and when they were last looked at.
    seen: Mutex<(Stamp, Instant)>,
}

type Stamp = (Option<SystemTime>, Option<SystemTime>);

impl ReloadingCertificate {
    pub fn open(cert_path: &Path, key_path: &Path) -> Result<Self, TlsSetupError> {
        let stamp = stamp(cert_path, key_path);
        let key = load(cert_path, key_path)?;
        Ok(Self {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            current: RwLock::new(Arc::new(key)),
            seen: Mutex::new((stamp, Instant::now())),
        })
    }

    /// Reads the files again if they changed since they were last read.
    fn refresh(&self) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.1.elapsed() < RECHECK {
            return;
        }
        seen.1 = Instant::now();
        let now = stamp(&self.cert_path, &self.key_path);
        if now == seen.0 {
            return;
        }
        match load(&self.cert_path, &self.key_path) {
            Ok(key) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(key);
                seen.0 = now;
                tracing::info!(cert = %self.cert_path.display(), "TLS certificate reloaded");
            }
            Err(error) => {
                tracing::warn!(%error, "the changed TLS certificate cannot be used; keeping the one in use")
            }
        }
    }

    /// The chain in use now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.refresh();
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl ResolvesServerCert for ReloadingCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn stamp(cert: &Path, key: &Path) -> Stamp {
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (modified(cert), modified(key))
}

fn load(cert_path: &Path, key_path: &Path) -> Result<CertifiedKey, TlsSetupError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| TlsSetupError::Read {
            path: path.to_owned(),
            detail: e.to_string(),
        })
    };
    let cert_pem = read(cert_path)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsSetupError::Read {
            path: cert_path.to_owned(),
            detail: format!("not PEM certificates: {e}"),
        })?;
    if chain.is_empty() {
        return Err(TlsSetupError::Empty {
            path: cert_path.to_owned(),
            what: "PEM certificate",
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&read(key_path)?).map_err(|e| TlsSetupError::Read {
        path: key_path.to_owned(),
        detail: format!("no PEM private key: {e}"),
    })?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|e| TlsSetupError::Mismatch {
        cert: cert_path.to_owned(),
        key: key_path.to_owned(),
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::authority::{CertificateAuthority, PkiPaths};

    #[test]
    fn a_rotated_certificate_is_picked_up_and_a_broken_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let paths = PkiPaths::in_data_dir(dir.path());
        let ca = CertificateAuthority::open_or_create(&paths, 1_800_000_000_000).unwrap();
        ca.write_server_certificate(&paths, &["a.lan".into()], 1_800_000_000_000)
            .unwrap();
        let reloading =
            ReloadingCertificate::open(&paths.server_cert(), &paths.server_key()).unwrap();
        let first = reloading.current().cert[0].clone();
        ca.write_server_certificate(&paths, &["b.lan".into()], 1_800_000_000_000)
            .unwrap();
        reloading.seen.lock().unwrap().1 = Instant::now() - RECHECK;
        let second = reloading.current().cert[0].clone();
        assert_ne!(first, second);
        std::fs::write(paths.server_key(), "garbage").unwrap();
        reloading.seen.lock().unwrap().1 = Instant::now() - RECHECK;
        assert_eq!(reloading.current().cert[0], second);
        let error = ReloadingCertificate::open(&paths.server_cert(), &paths.server_key())
            .unwrap_err()
            .to_string();
        assert!(error.contains("server.key"), "{error}");
    }
}

//! Bringing trust up at start: the CA (made at first start), the server certificate (made for
//! this host's names unless the config names files of its own), the registry, and the two
//! listeners' TLS configurations. Also `hcmon-collector init-tls`, which makes the CA and
//! remakes the server certificate for the names given.

use super::authority::{AuthorityError, CertificateAuthority, PkiPaths};
use super::config::TlsConfig;
use super::enrollment::Enrollment;
use super::registry::CertificateRegistry;
use super::tls::{self, ReloadingCertificate};
use crate::clock::Clock;
use crate::storage::Tsdb;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// What the listeners and ingest need when TLS is on.
pub struct Trust {
    pub enrollment: Arc<Enrollment>,
    pub grpc: TlsAcceptor,
    pub http: TlsAcceptor,
}

impl Trust {
    pub fn open(
        config: &TlsConfig,
        data_dir: &Path,
        listen: &[SocketAddr],
        tsdb: Arc<Tsdb>,
        clock: Clock,
    ) -> anyhow::Result<Self> {
        let paths = PkiPaths::in_data_dir(data_dir);
        let authority = CertificateAuthority::open_or_create(&paths, clock())?;
        let (cert_file, key_file) = match (&config.cert_file, &config.key_file) {
            (Some(cert), Some(key)) => (cert.clone(), key.clone()),
            (None, None) => {
                if !paths.server_cert().exists() || !paths.server_key().exists() {
                    let names = server_names(&config.server_names, listen);
                    authority.write_server_certificate(&paths, &names, clock())?;
                    tracing::info!(names = ?names, cert = %paths.server_cert().display(), "made a server certificate");
                }
                (paths.server_cert(), paths.server_key())
            }
            _ => anyhow::bail!(
                "invalid `tls`: set both cert_file and key_file, or neither (the collector then makes its own)"
            ),
        };
        let certificate = Arc::new(ReloadingCertificate::open(&cert_file, &key_file)?);
        let grpc = tls::grpc_config(
            certificate.clone(),
            authority.cert_der(),
            config.min_version,
        )?;
        let http = tls::http_config(certificate, config.min_version)?;
        let registry = CertificateRegistry::open(tsdb)?;
        tracing::info!(ca_pin = %authority.pin(), "TLS on; agents enroll with `hcmon enroll NODE`");
        Ok(Self {
            enrollment: Arc::new(Enrollment::new(
                authority,
                registry,
                config.lifetimes(),
                clock,
            )),
            grpc: TlsAcceptor::from(Arc::new(grpc)),
            http: TlsAcceptor::from(Arc::new(http)),
        })
    }
}

/// `hcmon-collector init-tls`: makes the CA if there is none and (re)makes the server
/// certificate for `names` plus the defaults; returns the certificate's path.
pub fn init_server_certificate(
    data_dir: &Path,
    names: &[String],
    listen: &[SocketAddr],
    now_ms: i64,
) -> Result<PathBuf, AuthorityError> {
    let paths = PkiPaths::in_data_dir(data_dir);
    let authority = CertificateAuthority::open_or_create(&paths, now_ms)?;
    authority.write_server_certificate(&paths, &server_names(names, listen), now_ms)?;
    Ok(paths.server_cert())
}

/// `configured` names, then this host's name, `localhost`, the loopback addresses and the
/// specific listen addresses, each once.
fn server_names(configured: &[String], listen: &[SocketAddr]) -> Vec<String> {
    let mut names: Vec<String> = configured.to_vec();
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        names.push(host.trim().to_owned());
    }
    names.extend(["localhost", "127.0.0.1", "::1"].map(String::from));
    names.extend(
        listen
            .iter()
            .filter(|a| !a.ip().is_unspecified())
            .map(|a| a.ip().to_string()),
    );
    let mut seen = std::collections::HashSet::new();
    names.retain(|n| !n.is_empty() && seen.insert(n.clone()));
    names
}

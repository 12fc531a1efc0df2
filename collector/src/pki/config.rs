//! `[tls]` in the collector's config: TLS on both listeners, the certificate they present, and
//! the lifetimes of what the collector's CA issues.

use super::enrollment::Lifetimes;
use super::tls::TlsVersion;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// TLS on the gRPC and HTTP listeners, client certificates for agents, and enrollment.
    /// Needed to listen anywhere but on loopback (see `server.insecure_plaintext_on_network`).
    pub enabled: bool,
    /// The server certificate chain (PEM) both listeners present; re-read when it changes.
    /// Unset: `<data_dir>/pki/server.crt`, made at first start by the collector's own CA.
    pub cert_file: Option<PathBuf>,
    /// The server certificate's private key (PEM); re-read when it changes. Unset:
    /// `<data_dir>/pki/server.key`.
    pub key_file: Option<PathBuf>,
    /// Names and addresses agents and browsers reach the collector by, put in the server
    /// certificate the collector makes, besides this host's name, `localhost`, the loopback
    /// addresses and the listen addresses.
    pub server_names: Vec<String>,
    /// The oldest TLS version accepted: "1.3" or "1.2".
    pub min_version: TlsVersion,
    /// How long a client may take to complete its TLS handshake.
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
    /// How long an agent certificate is valid; agents renew at two thirds of it.
    #[serde(with = "humantime_serde")]
    pub agent_certificate_lifetime: Duration,
    /// How long an enrollment token is valid, unless `hcmon enroll --ttl` says otherwise.
    #[serde(with = "humantime_serde")]
    pub enrollment_token_lifetime: Duration,
}

impl TlsConfig {
    pub fn lifetimes(&self) -> Lifetimes {
        Lifetimes {
            agent_certificate: self.agent_certificate_lifetime,
            enrollment_token: self.enrollment_token_lifetime,
        }
    }
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            cert_file: None,
            key_file: None,
            server_names: Vec::new(),
            min_version: TlsVersion::default(),
            handshake_timeout: Duration::from_secs(10),
            agent_certificate_lifetime: Duration::from_secs(30 * 24 * 3600),
            enrollment_token_lifetime: Duration::from_secs(3600),
        }
    }
}

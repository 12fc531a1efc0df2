//! Who is at the other end of an agent's connection, and whether it may act for a node.
//!
//! On a TLS listener every agent must present a certificate from the collector's CA (the
//! handshake checked the signature); its common name is the only node it may register and
//! stream as, and it must not be revoked. A plaintext listener exists only on loopback (or
//! where an admin set `server.insecure_plaintext_on_network`), and its agents are taken at
//! their word, as before TLS.

use super::IngestError;
use crate::pki::{Enrollment, EnrollmentError, PeerCertificate};

/// The transport's account of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerIdentity {
    Plaintext,
    /// A TLS connection, and the client certificate it presented, if any.
    Tls(Option<PeerCertificate>),
}

impl PeerIdentity {
    /// May this connection act for `node`?
    pub fn admit(&self, node: &str, enrollment: Option<&Enrollment>) -> Result<(), IngestError> {
        let certificate = match self {
            PeerIdentity::Plaintext => return Ok(()),
            PeerIdentity::Tls(None) => return Err(IngestError::CertificateRequired),
            PeerIdentity::Tls(Some(certificate)) => certificate,
        };
        if certificate.node != node {
            return Err(IngestError::WrongNode {
                certificate: certificate.node.clone(),
                asked: node.to_owned(),
            });
        }
        match enrollment.map(|e| e.check(certificate)) {
            Some(Err(EnrollmentError::Revoked { node })) => Err(IngestError::Revoked { node }),
            _ => Ok(()),
        }
    }
}

//! Enrollment, renewal and revocation: the rules, over the CA ([`CertificateAuthority`]) and
//! what it handed out ([`CertificateRegistry`]). Transport-free: the gRPC face is `grpc.rs`,
//! the admin API is in `http/`.

use super::authority::{AuthorityError, CertificateAuthority, IssuedCertificate};
use super::incoming::PeerCertificate;
use super::registry::{
    CertificateRecord, CertificateRegistry, Issuance, TokenRecord, TokenRefusal,
};
use crate::clock::Clock;
use crate::storage::StoreError;
use hcmon_common::EnrollmentToken;
use ring::digest::{SHA256, digest};
use std::time::Duration;

/// Lifetimes of what the CA issues (`[tls]` in the config).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lifetimes {
    /// How long an agent's certificate is valid; agents renew at two thirds of it.
    pub agent_certificate: Duration,
    /// How long an enrollment token can be used, unless the issuer says otherwise.
    pub enrollment_token: Duration,
}

/// Why enrollment, renewal or revocation was refused. The text is what the agent or admin sees.
#[derive(Debug, thiserror::Error)]
pub enum EnrollmentError {
    #[error("the enrollment token {0}")]
    Token(#[from] hcmon_common::EnrollmentTokenError),
    #[error(
        "the enrollment token was issued by another collector (its CA pin does not match this one's)"
    )]
    OtherCollector,
    #[error("the enrollment token {0}")]
    Refused(TokenRefusal),
    #[error("the node name {0:?} {1}")]
    BadNodeName(String, &'static str),
    #[error(
        "renewal needs the connection's client certificate; connect with the node's current certificate"
    )]
    NoCertificate,
    #[error(
        "the certificate of node {node:?} was revoked by the collector's admin; enroll the node again with a new token"
    )]
    Revoked { node: String },
    #[error("node {0:?} has no certificate to revoke")]
    UnknownNode(String),
    #[error(transparent)]
    Authority(#[from] AuthorityError),
    #[error("storage failure")]
    Store(#[from] StoreError),
    #[error("no secure random numbers: {0}")]
    Random(String),
}

/// A token handed out by [`Enrollment::issue_token`]: the only time its text exists.
#[derive(Debug)]
pub struct IssuedToken {
    pub token: EnrollmentToken,
    pub node: String,
    pub expires_at_ms: i64,
}

/// A node as `hcmon nodes` lists it: its newest certificate.
#[derive(Debug, Clone)]
pub struct EnrolledNode {
    pub latest: CertificateRecord,
    pub certificates: usize,
}

/// The CA's rules (see the module header).
pub struct Enrollment {
    authority: CertificateAuthority,
    registry: CertificateRegistry,
    lifetimes: Lifetimes,
    clock: Clock,
}

impl std::fmt::Debug for Enrollment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enrollment")
            .field("authority", &self.authority)
            .field("lifetimes", &self.lifetimes)
            .finish()
    }
}

impl Enrollment {
    pub fn new(
        authority: CertificateAuthority,
        registry: CertificateRegistry,
        lifetimes: Lifetimes,
        clock: Clock,
    ) -> Self {
        Self {
            authority,
            registry,
            lifetimes,
            clock,
        }
    }

    pub fn authority(&self) -> &CertificateAuthority {
        &self.authority
    }

    /// A single-use token for `node`, valid for `ttl` (the configured lifetime when `None`).
    pub fn issue_token(
        &self,
        node: &str,
        ttl: Option<Duration>,
    ) -> Result<IssuedToken, EnrollmentError> {
        hcmon_proto::v1::check_node_name(node)
            .map_err(|problem| EnrollmentError::BadNodeName(node.to_owned(), problem))?;
        let secret = crate::secure_random::hex::<32>()
            .map_err(|e| EnrollmentError::Random(e.to_string()))?;
        let now = (self.clock)();
        let ttl = ttl.unwrap_or(self.lifetimes.enrollment_token);
        let expires_at_ms = now.saturating_add(ttl.as_millis().min(i64::MAX as u128) as i64);
        self.registry.add_token(
            &secret_hash(&secret),
            TokenRecord {
                node: node.to_owned(),
                created_at_ms: now,
                expires_at_ms,
                used_at_ms: None,
            },
        )?;
        Ok(IssuedToken {
            token: EnrollmentToken {
                ca_pin: self.authority.pin(),
                secret,
            },
            node: node.to_owned(),
            expires_at_ms,
        })
    }

    /// Uses `token_text` up and signs `csr_pem` for `node`.
    pub fn enroll(
        &self,
        token_text: &str,
        node: &str,
        csr_pem: &str,
    ) -> Result<IssuedCertificate, EnrollmentError> {
        let token = EnrollmentToken::parse(token_text)?;
        if token.ca_pin != self.authority.pin() {
            return Err(EnrollmentError::OtherCollector);
        }
        let now = (self.clock)();
        // The request is checked before the token is spent, so a broken agent does not burn it.
        let issued = self
            .authority
            .issue(node, csr_pem, self.lifetimes.agent_certificate, now)?;
        self.registry
            .use_token(&secret_hash(&token.secret), node, now)?
            .map_err(EnrollmentError::Refused)?;
        self.record(&issued, Issuance::Enrolled, now)?;
        Ok(issued)
    }

    /// A new certificate for the node `peer` proves to be, unless it was revoked.
    pub fn renew(
        &self,
        peer: Option<&PeerCertificate>,
        csr_pem: &str,
    ) -> Result<IssuedCertificate, EnrollmentError> {
        let peer = peer.ok_or(EnrollmentError::NoCertificate)?;
        self.check(peer)?;
        let now = (self.clock)();
        let issued =
            self.authority
                .issue(&peer.node, csr_pem, self.lifetimes.agent_certificate, now)?;
        self.record(&issued, Issuance::Renewed, now)?;
        Ok(issued)
    }

    /// Refuses a certificate that was revoked. One the registry does not know (issued before
    /// its records were lost) stands on the CA's signature alone.
    pub fn check(&self, peer: &PeerCertificate) -> Result<(), EnrollmentError> {
        match self.registry.certificate(&peer.serial) {
            Some(record) if record.revoked_at_ms.is_some() => Err(EnrollmentError::Revoked {
                node: peer.node.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// Revokes every certificate of `node`; returns how many.
    pub fn revoke(&self, node: &str) -> Result<usize, EnrollmentError> {
        let known = self.registry.certificates().iter().any(|c| c.node == node);
        if !known {
            return Err(EnrollmentError::UnknownNode(node.to_owned()));
        }
        Ok(self.registry.revoke(node, (self.clock)())?.len())
    }

    /// Every node that was issued a certificate, by name.
    pub fn nodes(&self) -> Vec<EnrolledNode> {
        let mut nodes: Vec<EnrolledNode> = Vec::new();
        // Newest first, so a node's first record is its latest.
        for record in self.registry.certificates() {
            match nodes.iter_mut().find(|n| n.latest.node == record.node) {
                Some(node) => node.certificates += 1,
                None => nodes.push(EnrolledNode {
                    latest: record,
                    certificates: 1,
                }),
            }
        }
        nodes.sort_by(|a, b| a.latest.node.cmp(&b.latest.node));
        nodes
    }

    fn record(
        &self,
        issued: &IssuedCertificate,
        issuance: Issuance,
        now: i64,
    ) -> Result<(), StoreError> {
        self.registry.add_certificate(CertificateRecord {
            node: issued.node.clone(),
            serial: issued.serial.clone(),
            issuance,
            issued_at_ms: now,
            not_after_ms: issued.not_after_ms,
            revoked_at_ms: None,
        })
    }
}

/// Tokens are stored by this hash of their secret only. The secret is 256 random bits, so a
/// fast hash is enough: nothing can be guessed back from it.
fn secret_hash(secret: &str) -> String {
    super::authority::hex(digest(&SHA256, secret.as_bytes()).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::authority::PkiPaths;
    use crate::storage::{MemoryKv, StorageConfig, Tsdb};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};

    struct Fixture {
        enrollment: Enrollment,
        now: Arc<AtomicI64>,
        _dir: tempfile::TempDir,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let now = Arc::new(AtomicI64::new(1_800_000_000_000));
        let at = now.clone();
        let clock: Clock = Arc::new(move || at.load(Ordering::Relaxed));
        let authority =
            CertificateAuthority::open_or_create(&PkiPaths::in_data_dir(dir.path()), clock())
                .unwrap();
        let opened = Tsdb::open(Box::new(MemoryKv::default()), StorageConfig::default()).unwrap();
        let registry = CertificateRegistry::open(Arc::new(opened.tsdb)).unwrap();
        Fixture {
            enrollment: Enrollment::new(
                authority,
                registry,
                crate::pki::TlsConfig::default().lifetimes(),
                clock,
            ),
            now,
            _dir: dir,
        }
    }

    fn csr() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        rcgen::CertificateParams::default()
            .serialize_request(&key)
            .unwrap()
            .pem()
            .unwrap()
    }

    #[test]
    fn a_token_enrolls_its_node_once_and_not_after_it_expires() {
        let f = fixture();
        let issued = f.enrollment.issue_token("nas", None).unwrap();
        let text = issued.token.to_string();
        let error = f.enrollment.enroll(&text, "web", &csr()).unwrap_err();
        assert!(
            error.to_string().contains("issued for node \"nas\""),
            "{error}"
        );
        let cert = f.enrollment.enroll(&text, "nas", &csr()).unwrap();
        assert_eq!(cert.node, "nas");
        let error = f.enrollment.enroll(&text, "nas", &csr()).unwrap_err();
        assert!(error.to_string().contains("already used"), "{error}");

        let late = f
            .enrollment
            .issue_token("nas", None)
            .unwrap()
            .token
            .to_string();
        f.now.fetch_add(3_600_000, Ordering::Relaxed);
        let error = f.enrollment.enroll(&late, "nas", &csr()).unwrap_err();
        assert!(error.to_string().contains("expired"), "{error}");

        let mut foreign = EnrollmentToken::parse(&late).unwrap();
        foreign.ca_pin = "0".repeat(64);
        let error = f
            .enrollment
            .enroll(&foreign.to_string(), "nas", &csr())
            .unwrap_err();
        assert!(matches!(error, EnrollmentError::OtherCollector), "{error}");
    }

    #[test]
    fn renewal_needs_a_certificate_that_is_not_revoked() {
        let f = fixture();
        let text = f
            .enrollment
            .issue_token("nas", None)
            .unwrap()
            .token
            .to_string();
        let cert = f.enrollment.enroll(&text, "nas", &csr()).unwrap();
        let peer = PeerCertificate {
            node: "nas".into(),
            serial: cert.serial.clone(),
        };
        assert!(matches!(
            f.enrollment.renew(None, &csr()),
            Err(EnrollmentError::NoCertificate)
        ));
        let renewed = f.enrollment.renew(Some(&peer), &csr()).unwrap();
        assert_ne!(renewed.serial, cert.serial);
        assert_eq!(f.enrollment.nodes()[0].certificates, 2);
        assert_eq!(f.enrollment.revoke("nas").unwrap(), 2);
        let error = f.enrollment.renew(Some(&peer), &csr()).unwrap_err();
        assert!(error.to_string().contains("was revoked"), "{error}");
        assert!(matches!(
            f.enrollment.revoke("ghost"),
            Err(EnrollmentError::UnknownNode(_))
        ));
    }
}

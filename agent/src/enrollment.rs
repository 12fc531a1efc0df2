//! The agent's side of `hcmon.v1.Enrollment` (see `proto/hcmon/v1/enrollment.proto`): trading
//! an enrollment token for a certificate, and renewing that certificate with a new key. Both
//! make the key here and send only a certificate request; both store the answer in the
//! identity directory before returning it.

use crate::tls::{self, Identity, IdentityError, KeyRequest, TlsConfigError, Trust};
use hcmon_common::enrollment::EnrollmentToken;
use hcmon_proto::v1::enrollment_client::EnrollmentClient;
use hcmon_proto::v1::{EnrollRequest, IssuedCertificate, RenewRequest};
use std::path::Path;
use std::time::Duration;
use tonic::transport::Endpoint;
use tonic::{Code, Status};

/// How long the collector has to answer `Enroll` or `Renew`.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum EnrollError {
    #[error("cannot make a key and certificate request: {0}")]
    Key(#[from] rcgen::Error),
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
    #[error("cannot reach the collector: {0}")]
    Connect(String),
    #[error(
        "the collector refused the enrollment token ({0}): it is used, expired or was issued for another node; issue a new one with `hcmon enroll <node>` on the collector"
    )]
    TokenRefused(String),
    #[error(
        "the collector revoked this node's certificate ({0}); the node needs enrolling again: run `hcmon enroll <node>` on the collector, remove the identity directory and start the agent with --enroll-token"
    )]
    Revoked(String),
    #[error("the collector answered with an error: {0}")]
    Status(Status),
    #[error("the collector did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the collector's answer is not usable: {0}")]
    Answer(String),
    #[error(transparent)]
    Store(#[from] IdentityError),
}

impl From<Status> for EnrollError {
    fn from(status: Status) -> Self {
        match status.code() {
            Code::Unauthenticated => Self::TokenRefused(status.message().to_owned()),
            Code::PermissionDenied => Self::Revoked(status.message().to_owned()),
            _ => Self::Status(status),
        }
    }
}

/// Enrolls `node_name` with `token` at `endpoint` (an `https://` URL), trusting only the CA the
/// token pins, and stores the new identity in `dir`.
pub async fn enroll(
    endpoint: &Endpoint,
    token: &EnrollmentToken,
    node_name: &str,
    dir: &Path,
) -> Result<Identity, EnrollError> {
    let request = KeyRequest::generate(node_name)?;
    let config = tls::client_config(Trust::Pinned(&token.ca_pin))?;
    let channel = tls::connect(endpoint, config)
        .await
        .map_err(|e| EnrollError::Connect(with_causes(&e)))?;
    let mut client = EnrollmentClient::new(channel);
    let call = client.enroll(EnrollRequest {
        token: token.to_string(),
        node_name: node_name.to_owned(),
        csr_pem: request.csr_pem,
    });
    let issued = answer(call).await?;
    if tls::pinned::pin_of(&certificate(&issued.ca_pem)?) != token.ca_pin {
        return Err(EnrollError::Answer(
            "its CA certificate is not the one the token pins".into(),
        ));
    }
    store(request.key_pem.expose(), issued, node_name, dir)
}

/// Renews `current` at `endpoint` with a new key, over mutual TLS with the current certificate
/// (trusting `ca_file` when set), and stores the new identity in `dir`. The old one stays in
/// place until the new one is complete.
pub async fn renew(
    endpoint: &Endpoint,
    current: &Identity,
    ca_file: Option<&Path>,
    dir: &Path,
) -> Result<Identity, EnrollError> {
    let request = KeyRequest::generate(&current.node_name)?;
    let config = tls::mutual_config(current, ca_file)?;
    let channel = tls::connect(endpoint, config)
        .await
        .map_err(|e| EnrollError::Connect(with_causes(&e)))?;
    let mut client = EnrollmentClient::new(channel);
    let call = client.renew(RenewRequest {
        csr_pem: request.csr_pem,
    });
    let issued = answer(call).await?;
    store(request.key_pem.expose(), issued, &current.node_name, dir)
}

async fn answer(
    call: impl Future<Output = Result<tonic::Response<IssuedCertificate>, Status>>,
) -> Result<IssuedCertificate, EnrollError> {
    let answer = tokio::time::timeout(ANSWER_TIMEOUT, call)
        .await
        .map_err(|_| EnrollError::Timeout(ANSWER_TIMEOUT))??;
    Ok(answer.into_inner())
}

fn certificate(pem: &str) -> Result<Vec<u8>, EnrollError> {
    tls::identity::first_certificate(pem)
        .map_err(|problem| EnrollError::Answer(format!("no certificate in it: {problem}")))
}

/// Checks the issued certificate against the key and the node name, then saves it.
fn store(
    key_pem: &str,
    issued: IssuedCertificate,
    node_name: &str,
    dir: &Path,
) -> Result<Identity, EnrollError> {
    let identity = Identity::from_pem(
        key_pem.to_owned(),
        issued.certificate_pem,
        issued.ca_pem,
        dir,
    )
    .map_err(|e| EnrollError::Answer(e.to_string()))?;
    if identity.node_name != node_name {
        return Err(EnrollError::Answer(format!(
            "the certificate names {:?}, not {node_name:?}",
            identity.node_name
        )));
    }
    identity.save(dir)?;
    Ok(identity)
}

/// An error and its causes on one line: a transport error alone says only "transport error",
/// while the cause (a refused certificate, a wrong pin) is what a person needs.
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::test_pki::{Pki, fake_ca, serve_enrollment as serve};
    use std::sync::atomic::Ordering;

    #[tokio::test]
    async fn a_node_enrolls_with_its_token_then_renews_with_its_certificate() {
        let (ca, token) = fake_ca(Duration::from_secs(3600));
        let endpoint = serve(ca.clone()).await;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("identity");

        let enrolled = enroll(&endpoint, &token, "nas", &dir).await.unwrap();
        assert_eq!(enrolled.node_name, "nas");
        let stored = Identity::load(&dir).unwrap().unwrap();
        assert_eq!(stored.cert_pem, enrolled.cert_pem);
        assert_eq!(stored.ca_pem, ca.pki.ca_pem);

        let renewed = renew(&endpoint, &stored, None, &dir).await.unwrap();
        assert_ne!(
            renewed.key_pem, stored.key_pem,
            "a renewal brings a new key"
        );
        let stored = Identity::load(&dir).unwrap().unwrap();
        assert_eq!(
            (stored.cert_pem, stored.key_pem),
            (renewed.cert_pem.clone(), renewed.key_pem.clone())
        );

        ca.revoked.store(true, Ordering::Relaxed);
        let err = renew(&endpoint, &renewed, None, &dir).await.unwrap_err();
        assert!(matches!(err, EnrollError::Revoked(_)), "{err}");
        assert!(
            err.to_string().contains("revoked this node's certificate"),
            "{err}"
        );
        let kept = Identity::load(&dir).unwrap().unwrap();
        assert_eq!(
            kept.key_pem, renewed.key_pem,
            "a refused renewal keeps the identity"
        );
    }

    #[tokio::test]
    async fn a_refused_token_or_a_wrong_pin_is_said_plainly() {
        let (ca, token) = fake_ca(Duration::from_secs(3600));
        let endpoint = serve(ca).await;
        let dir = tempfile::tempdir().unwrap();

        let err = enroll(&endpoint, &token, "web", dir.path())
            .await
            .unwrap_err();
        assert!(matches!(err, EnrollError::TokenRefused(_)), "{err}");
        assert!(err.to_string().contains("hcmon enroll"), "{err}");

        let other = Pki::new("another CA");
        let wrong =
            EnrollmentToken::parse(&format!("hce1.{}.{}", other.pin(), token.secret)).unwrap();
        let err = enroll(&endpoint, &wrong, "nas", dir.path())
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("the collector's CA does not match the enrollment token"),
            "{err}"
        );
        assert!(Identity::load(dir.path()).unwrap().is_none());
    }
}

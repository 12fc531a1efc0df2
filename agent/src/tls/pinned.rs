//! Trusting the collector before the agent holds its CA certificate: the enrollment token
//! carries the CA's SHA-256 (its pin), and the server is accepted only if the chain it presents
//! contains a certificate with that hash and its own certificate verifies against that one, as
//! the root, for the name the agent dialled. A stolen or guessed collector address alone gets
//! nothing: it cannot present a certificate signed by the pinned CA.

use ring::digest::{SHA256, digest};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, Error, OtherError, RootCertStore, SignatureScheme};
use std::sync::Arc;

/// The server's chain holds no certificate with the token's pin.
#[derive(Debug, thiserror::Error)]
#[error(
    "the collector's CA does not match the enrollment token (pin {pin}): check the collector URL, or issue a new token on this collector"
)]
pub struct PinMismatch {
    pin: String,
}

/// A [`ServerCertVerifier`] that trusts only the CA certificate with a given SHA-256.
#[derive(Debug)]
pub struct PinnedVerifier {
    /// Lowercase hex SHA-256 of the CA certificate's DER.
    pin: String,
    provider: Arc<CryptoProvider>,
}

impl PinnedVerifier {
    pub fn new(pin: &str, provider: Arc<CryptoProvider>) -> Self {
        Self {
            pin: pin.to_ascii_lowercase(),
            provider,
        }
    }
}

/// Lowercase hex SHA-256 of `der`: the pin of a certificate.
pub fn pin_of(der: &[u8]) -> String {
    digest(&SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let pinned = std::iter::once(end_entity)
            .chain(intermediates)
            .find(|cert| pin_of(cert) == self.pin)
            .ok_or_else(|| {
                // `Error::Other` shows the message itself; a certificate error would show its
                // debug form.
                Error::Other(OtherError(Arc::new(PinMismatch {
                    pin: self.pin.clone(),
                })))
            })?;
        let mut roots = RootCertStore::empty();
        roots.add(pinned.clone().into_owned())?;
        let verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
                .build()
                .map_err(|e| Error::General(e.to_string()))?;
        verifier.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

//! A new key and the certificate request that asks the collector's CA to certify it. The key
//! is made here and stays on this node; only the request (its public half) is sent.

use hcmon_common::secret::Secret;
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair};

/// A fresh key and its PKCS#10 request.
pub struct KeyRequest {
    /// The private key, PKCS#8 PEM.
    pub key_pem: Secret,
    /// The request, PEM: subject CN = the node name, signed by the key.
    pub csr_pem: String,
}

impl KeyRequest {
    /// Generates an ECDSA P-256 key and a request for a certificate naming `node_name`.
    pub fn generate(node_name: &str) -> Result<Self, rcgen::Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, node_name);
        let csr_pem = params.serialize_request(&key)?.pem()?;
        Ok(Self {
            key_pem: Secret::new(key.serialize_pem()),
            csr_pem,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::CertificateSigningRequestParams;

    #[test]
    fn the_request_names_the_node_and_carries_only_the_public_key() {
        let request = KeyRequest::generate("web-1").unwrap();
        let parsed = CertificateSigningRequestParams::from_pem(&request.csr_pem).unwrap();
        let names: Vec<_> = parsed.params.distinguished_name.iter().collect();
        assert_eq!(
            names,
            [(
                &DnType::CommonName,
                &rcgen::DnValue::Utf8String("web-1".into())
            )]
        );
        let key = KeyPair::from_pem(request.key_pem.expose()).unwrap();
        assert_eq!(
            rcgen::PublicKeyData::der_bytes(&parsed.public_key),
            rcgen::PublicKeyData::der_bytes(&key)
        );
        assert!(!request.csr_pem.contains("PRIVATE"));
    }
}

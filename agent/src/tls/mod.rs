//! TLS towards the collector: the node's identity on disk, making its key and certificate
//! request, trusting the collector by the enrollment token's pin or by its CA, and the TLS
//! connector for the gRPC channel.

pub mod connector;
pub mod identity;
pub mod pinned;
pub mod request;

pub use connector::{TlsConfigError, Trust, client_config, connect};
pub use identity::{Identity, IdentityError};
pub use request::KeyRequest;

use rustls::ClientConfig;
use std::path::Path;

/// The mutual-TLS configuration for `identity`: trusting `ca_file` when the user set one, else
/// the CA certificate stored with the identity.
pub fn mutual_config(
    identity: &Identity,
    ca_file: Option<&Path>,
) -> Result<ClientConfig, TlsConfigError> {
    let ca_pem = match ca_file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| TlsConfigError::Ca(format!("cannot read {}: {e}", path.display())))?,
        None => identity.ca_pem.clone(),
    };
    client_config(Trust::Mutual {
        ca_pem: &ca_pem,
        identity,
    })
}

#[cfg(test)]
pub mod test_pki;

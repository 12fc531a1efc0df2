//! Trust between the collector and its agents: the collector's own certificate authority
//! (`authority.rs`), what it issued and revoked (`registry.rs`), the rules of enrollment,
//! renewal and revocation (`enrollment.rs`), the listeners' TLS (`tls.rs`, `incoming.rs`) and
//! the Enrollment gRPC service (`grpc.rs`).
//!
//! An agent's identity is its client certificate's common name, which the CA sets to the node
//! name an admin issued the enrollment token for; ingest refuses a registration under any other
//! name, and a revoked certificate, on the connection that presents it.

pub mod authority;
pub mod config;
pub mod enrollment;
pub mod grpc;
pub mod incoming;
pub mod registry;
pub mod setup;
pub mod tls;

pub use authority::{CertificateAuthority, PkiPaths};
pub use config::TlsConfig;
pub use enrollment::{Enrollment, EnrollmentError, Lifetimes};
pub use incoming::{PeerCertificate, TlsPeer};
pub use setup::Trust;

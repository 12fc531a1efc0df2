//! Types and pure logic shared by the hcmon agent and collector.
//!
//! Architecture invariant: this crate does no I/O and depends on neither tonic nor rocksdb, so
//! both binaries (and the engines, later) can use it without pulling in transport or storage.

pub mod endpoint;
pub mod enrollment;
pub mod labels;
pub mod otlp;
pub mod secret;
pub mod selector;

pub use endpoint::{EndpointError, HttpEndpoint};
pub use enrollment::{EnrollmentToken, EnrollmentTokenError};
pub use labels::{LabelError, Labels, METRIC_NAME_LABEL, validate_metric_name};
pub use secret::{Secret, SecretError};
pub use selector::{MatchOp, Matcher, Selector, SelectorError};

//! What can go wrong defining, storing or evaluating an SLO.

use crate::analysis::history::HistoryError;
use crate::storage::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum SloError {
    /// A definition that cannot be judged; `field` names the offending field.
    #[error("invalid SLO {field}: {problem}")]
    Invalid { field: String, problem: String },
    #[error("no SLO named {0:?}")]
    NotFound(String),
    /// Defaults and config-declared SLOs change with the config, not through the API.
    #[error("SLO {name:?} comes from the {origin} and cannot be deleted through the API")]
    NotDeletable { name: String, origin: &'static str },
    #[error("SLO {name:?}: query failed: {problem}")]
    Query { name: String, problem: String },
    #[error("storage failure: {0}")]
    Store(#[from] StoreError),
    /// The remote history (`[history] remote_url`) did not answer as it should.
    #[error("{0}")]
    RemoteHistory(String),
}

impl From<HistoryError> for SloError {
    fn from(e: HistoryError) -> Self {
        match e {
            HistoryError::Store(e) => SloError::Store(e),
            remote => SloError::RemoteHistory(remote.to_string()),
        }
    }
}

impl SloError {
    pub fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Self {
        SloError::Invalid {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

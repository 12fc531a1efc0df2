//! Before/after: annotations (marked moments and spans such as "deployed v2"), experiments
//! (named baseline and treatment windows with a success criterion), and the comparison of
//! series over two windows that both feed. The statistics are `analytics::compare`'s; this
//! module stores the records and reads the windows from the store. Blocking (store reads and
//! writes); callers run it off the async workers. Layer: above catalog, storage and analytics;
//! below `http/`.
//!
//! - `records.rs`: the stored forms, apart from the types below (`{"format": 1, "record": …}`
//!   values, as the tokens' and the audit log's).
//! - `annotations.rs`, `experiments.rs`: the two tables.
//! - `windows.rs`: a series' values over a window (raw, or rollups for long or old windows;
//!   counters as per-second rates), and their comparison.
//!
//! **Ids** are 20 hex digits: 12 of a time in Unix ms (the annotation's time, the
//! experiment's creation) then 8 random. Keys are the ids, so a table is in time order: listing
//! annotations of a range seeks to it rather than reading everything.

mod annotations;
mod experiments;
mod records;
mod windows;

pub use annotations::AnnotationStore;
pub use experiments::{ExperimentStore, Judgement, judge};
pub use windows::{ComparedSeries, SeriesWindows, compare_windows, read_windows};

use crate::analytics::compare::Criterion;
use crate::secure_random::{self, RandomUnavailable};
use crate::storage::StoreError;

/// Latest time an id can hold: 12 hex digits of milliseconds (the year 10889).
const MAX_ID_TIME_MS: i64 = (1 << 48) - 1;

/// A time range in Unix ms, from `start_ms` included to `end_ms` excluded, so a sample on the
/// line between a before and an after window counts in the after window only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start_ms: i64,
    pub end_ms: i64,
}

/// A marked moment (`end_ms` none) or span.
#[derive(Debug, Clone, PartialEq)]
pub struct Annotation {
    pub id: String,
    pub time_ms: i64,
    pub end_ms: Option<i64>,
    pub text: String,
    pub tags: Vec<String>,
    /// The node it is about, if one.
    pub node: Option<String>,
    /// The name of the token that made it.
    pub created_by: String,
    pub created_ms: i64,
}

/// What a new annotation is to be.
#[derive(Debug, Clone)]
pub struct NewAnnotation {
    pub time_ms: i64,
    pub end_ms: Option<i64>,
    pub text: String,
    pub tags: Vec<String>,
    pub node: Option<String>,
}

/// A named experiment: the series that define success and what success is.
#[derive(Debug, Clone, PartialEq)]
pub struct Experiment {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub baseline: Window,
    pub treatment: Window,
    /// Series selectors, as given.
    pub selectors: Vec<String>,
    pub criterion: Criterion,
    pub created_by: String,
    pub created_ms: i64,
}

/// What a new experiment is to be.
#[derive(Debug, Clone)]
pub struct NewExperiment {
    pub name: String,
    pub description: Option<String>,
    pub baseline: Window,
    pub treatment: Window,
    pub selectors: Vec<String>,
    pub criterion: Criterion,
}

/// An annotation or experiment call that failed.
#[derive(Debug, thiserror::Error)]
pub enum BeforeAfterError {
    /// The request is wrong; the message says which field and why.
    #[error("{0}")]
    Invalid(String),
    #[error("no {what} with id {id:?}")]
    NotFound { what: &'static str, id: String },
    #[error(transparent)]
    Random(#[from] RandomUnavailable),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A new id for a record of time `time_ms` (see the module header).
fn mint_id(time_ms: i64) -> Result<String, BeforeAfterError> {
    if !(0..=MAX_ID_TIME_MS).contains(&time_ms) {
        return Err(BeforeAfterError::Invalid(format!(
            "time {time_ms} ms is outside 1970 to the year 10889"
        )));
    }
    Ok(format!("{time_ms:012x}{}", secure_random::hex::<4>()?))
}

/// Whether `id` has the form of an id (20 lowercase hex digits).
fn is_id(id: &str) -> bool {
    id.len() == 20 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The key of the first id of `time_ms` (clamped to what ids hold).
fn first_key_at(time_ms: i64) -> Vec<u8> {
    format!("{:012x}", time_ms.clamp(0, MAX_ID_TIME_MS)).into_bytes()
}

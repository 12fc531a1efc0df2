//! PromQL queries, parsed by the `promql-parser` crate and evaluated here over raw samples or
//! rollups.
//!
//! The evaluator follows Prometheus: instant vector selectors take the newest sample within the
//! 5 min lookback `(t - 5m, t]`; range vectors and range functions see the window
//! `(t - range, t]`; `rate`/`increase`/`delta` extrapolate as Prometheus does; binary operators
//! match vectors on labels (`on`, `ignoring`, `group_left`, `group_right`); `offset` and `@`
//! shift the evaluation time; subqueries evaluate their inner expression at steps aligned to
//! multiples of their step. What is not supported (native-histogram functions, trigonometry,
//! `limitk`, …) is refused at parse time with an error naming it.
//!
//! Files: [`value`] the value types, [`plan`] rollup planning and data reads, [`eval`] the
//! walk over the syntax tree, [`binary`] operators and vector matching, [`aggregate`]
//! aggregations, [`functions`] instant-vector functions, [`range_functions`] functions over range
//! vectors, [`check`] what is refused before evaluation.
//!
//! Resolution: an instant selector at steps aligned to 5 min or 1 h buckets answers from the
//! buckets' edges (the sample at a bucket's start, the marker that ended a series), exactly as
//! raw samples would, where the buckets know them and the rollups are kept as long as raw. Else,
//! a selector or an exact-from-aggregates range function (`avg`, `min`, `max`,
//! `sum`, `count`, `last`, `present` `_over_time`) whose start, step (and range) are multiples
//! of a rollup resolution reads the coarsest such rollup instead of raw samples, so 30 days at a
//! 1 h step reads 720 aggregates per series rather than 259,200 samples. Rollup buckets hold
//! `[start, end)`, so a sample exactly on a step's boundary counts one step earlier than raw
//! evaluation counts it. `rate` and `increase` read raw samples, whose extrapolation needs each
//! window's first sample, which a rollup bucket does not keep; but raw samples are kept for less
//! time than rollups, so at times aligned the same way a window whose older samples raw
//! retention deleted answers from the coarsest fitting rollup instead: `increase` is the sum of
//! the counter increases its buckets recorded (resets counted, each bucket's growth measured from
//! the sample before it) and `rate` that over the range in seconds. The rule: a window falls back
//! when one of its buckets starts before the bucket holding the series' oldest raw sample read
//! for the query (raw is read from the first window's start on), that is when the rollup holds
//! data there that raw no longer does; a series that merely began inside a window still answers
//! from raw. Everything else (`irate`, `delta`, quantiles, subqueries) reads raw samples.

mod aggregate;
mod binary;
mod check;
mod context;
mod eval;
mod functions;
mod plan;
mod range_functions;
mod value;

pub use value::{Metric, SeriesResult, Value};

use crate::catalog::SeriesCatalog;
use crate::storage::{Aggregate, Resolution, SeriesId, SeriesMeta, StoreError, Tsdb};
use hcmon_common::{Selector, SelectorError};
use std::sync::Arc;

/// How far back a step looks for a sample, as Prometheus' default `lookback-delta`.
pub const LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// Prometheus' cap on points per series in one range query.
pub const MAX_POINTS: i64 = 11_000;

/// Prometheus' default `query.max-samples`: the most samples one query may load.
pub const MAX_SAMPLES: usize = 50_000_000;

/// The step of a subquery that names none (`x[1h:]`), as Prometheus' default evaluation interval.
const DEFAULT_SUBQUERY_STEP_MS: i64 = 60_000;

/// Where the evaluator gets its data.
pub trait SeriesSource {
    fn select(&self, selector: &Selector) -> Vec<Arc<SeriesMeta>>;
    /// Raw samples in `[start, end]`, staleness markers included.
    fn raw(&self, series: &SeriesMeta, start: i64, end: i64)
    -> Result<Vec<(i64, f64)>, QueryError>;
    fn rollup(
        &self,
        series: SeriesId,
        res: Resolution,
        start: i64,
        end: i64,
    ) -> Result<Vec<(i64, Aggregate)>, StoreError>;
    /// Whether `res` rollups hold every sample [`SeriesSource::raw`] would return, so that an
    /// instant selector at their boundaries may read their edges instead.
    fn rollups_hold_raw(&self, res: Resolution) -> bool;
}

/// The collector's catalog and engine as a [`SeriesSource`].
pub struct StoreSource {
    pub catalog: Arc<SeriesCatalog>,
    pub tsdb: Arc<Tsdb>,
}

impl SeriesSource for StoreSource {
    fn select(&self, selector: &Selector) -> Vec<Arc<SeriesMeta>> {
        self.catalog.select(selector)
    }
    fn raw(&self, meta: &SeriesMeta, start: i64, end: i64) -> Result<Vec<(i64, f64)>, QueryError> {
        Ok(self.tsdb.read_raw_with_markers(meta.id, start, end)?)
    }
    fn rollup(
        &self,
        id: SeriesId,
        res: Resolution,
        start: i64,
        end: i64,
    ) -> Result<Vec<(i64, Aggregate)>, StoreError> {
        self.tsdb.read_rollup(id, res, start, end)
    }
    fn rollups_hold_raw(&self, res: Resolution) -> bool {
        self.tsdb.rollups_outlive_raw(res)
    }
}

/// A parsed query, checked to use only what the evaluator supports.
#[derive(Debug, Clone)]
pub struct Expr(promql_parser::parser::Expr);

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    Selector(#[from] SelectorError),
    /// The parser's own message, which says what it expected.
    #[error("query {query:?}: {message}")]
    Syntax { query: String, message: String },
    /// Valid PromQL this evaluator does not implement; the message names the construct.
    #[error("{0} is not supported")]
    Unsupported(String),
    /// The query is valid but cannot be evaluated as asked, in Prometheus' words.
    #[error("{0}")]
    Execution(String),
    #[error("query processing would load too many samples into memory in query execution")]
    TooManySamples,
    #[error("storage failure")]
    Store(#[from] StoreError),
    /// Data the source reads from elsewhere (a remote history) could not be had; the message
    /// names where from.
    #[error("{0}")]
    Unavailable(String),
}

/// The resolution a query was answered from, reported to clients in a response header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Raw,
    Rollup(Resolution),
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Raw => "raw",
            Source::Rollup(Resolution::OneMinute) => "1m",
            Source::Rollup(Resolution::FiveMinutes) => "5m",
            Source::Rollup(Resolution::OneHour) => "1h",
        }
    }
}

/// Parses a query and refuses what the evaluator does not implement.
pub fn parse(text: &str) -> Result<Expr, QueryError> {
    let expr = promql_parser::parser::parse(text).map_err(|message| QueryError::Syntax {
        query: text.to_owned(),
        message: message.trim().to_owned(),
    })?;
    check::supported(&expr)?;
    Ok(Expr(expr))
}

/// Evaluates `expr` at `start..=end` every `step` (ms; an instant query has `start == end`).
/// Returns the value and the resolution the data came from.
pub fn evaluate(
    source: &dyn SeriesSource,
    expr: &Expr,
    start: i64,
    end: i64,
    step: i64,
) -> Result<(Value, Source), QueryError> {
    evaluate_limited(source, expr, start, end, step, MAX_SAMPLES)
}

/// [`evaluate`], refusing a query that loads more than `max_samples` samples.
pub fn evaluate_limited(
    source: &dyn SeriesSource,
    expr: &Expr,
    start: i64,
    end: i64,
    step: i64,
    max_samples: usize,
) -> Result<(Value, Source), QueryError> {
    eval::run(source, &expr.0, start, end, step.max(1), max_samples)
}

#[cfg(test)]
mod tests;

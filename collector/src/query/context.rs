//! The evaluation context: the steps a node is evaluated at, the query's sample budget, and
//! typed evaluation of child nodes for the operator and function files.

use super::value::{RangeInput, Series, Val};
use super::{QueryError, SeriesSource, Source};
use promql_parser::parser::{AtModifier, Expr, Offset};
use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

/// What one query may still load, and which resolution answered it, shared by every node.
pub(super) struct Budget {
    pub left: Cell<usize>,
    pub used: Cell<Option<Source>>,
}

/// The steps a node is evaluated at, and the query it belongs to.
pub(super) struct Ctx<'a> {
    pub source: &'a dyn SeriesSource,
    /// First step, last step bound and step (ms); subqueries evaluate on their own steps.
    pub start: i64,
    pub end: i64,
    pub step: i64,
    /// The query's own start and end, which `@ start()` and `@ end()` name.
    pub query_start: i64,
    pub query_end: i64,
    /// Whether rollups may answer: not inside subqueries, whose steps need exact samples.
    pub rollups: bool,
    pub budget: &'a Budget,
    /// The evaluator, called back for child nodes (it lives in `eval.rs`, above this file).
    pub eval: Evaluator,
}

/// Evaluates one node at every step of a context.
pub(super) type Evaluator = fn(&Ctx, &Expr) -> Result<Val, QueryError>;

impl Ctx<'_> {
    /// The evaluation times `start, start + step, … ≤ end`.
    pub fn times(&self) -> impl Iterator<Item = i64> + use<> {
        let (start, end, step) = (self.start, self.end, self.step);
        (0..)
            .map(move |i| start + i * step)
            .take_while(move |t| *t <= end)
    }

    pub fn steps(&self) -> usize {
        ((self.end - self.start) / self.step + 1) as usize
    }

    pub fn offset_ms(&self, offset: Option<&Offset>) -> i64 {
        match offset {
            Some(Offset::Pos(d)) => d.as_millis() as i64,
            Some(Offset::Neg(d)) => -(d.as_millis() as i64),
            None => 0,
        }
    }

    pub fn at_ms(&self, at: Option<&AtModifier>) -> Option<i64> {
        Some(match at? {
            AtModifier::Start => self.query_start,
            AtModifier::End => self.query_end,
            AtModifier::At(time) => unix_ms(*time),
        })
    }

    /// Counts `samples` against the query's limit.
    pub fn charge(&self, samples: usize) -> Result<(), QueryError> {
        let left = self.budget.left.get();
        if samples > left {
            return Err(QueryError::TooManySamples);
        }
        self.budget.left.set(left - samples);
        Ok(())
    }

    /// Records that data came from `source`; raw anywhere makes the answer raw.
    pub fn used(&self, source: Source) {
        let merged = match (self.budget.used.get(), source) {
            (Some(Source::Raw), _) | (_, Source::Raw) => Source::Raw,
            (Some(Source::Rollup(a)), Source::Rollup(b)) => Source::Rollup(a.min(b)),
            (None, s) => s,
        };
        self.budget.used.set(Some(merged));
    }

    pub fn on_steps(&self, start: i64, end: i64, step: i64) -> Ctx<'_> {
        Ctx {
            source: self.source,
            start,
            end,
            step,
            query_start: self.query_start,
            query_end: self.query_end,
            rollups: false,
            budget: self.budget,
            eval: self.eval,
        }
    }
}

pub(super) fn unix_ms(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// The error for a value of the wrong type where `what` needs another.
pub(super) fn wrong_type(what: &str, got: &Val) -> QueryError {
    QueryError::Execution(format!(
        "{what}: unexpected value of type {}",
        got.type_name()
    ))
}

/// Evaluates a node that must give an instant vector.
pub(super) fn vector(ctx: &Ctx, expr: &Expr) -> Result<Vec<Series>, QueryError> {
    match (ctx.eval)(ctx, expr)? {
        Val::Vector(series) => Ok(series),
        other => Err(wrong_type("expected an instant vector", &other)),
    }
}

/// Evaluates a node that must give a scalar.
pub(super) fn scalar(ctx: &Ctx, expr: &Expr) -> Result<Vec<f64>, QueryError> {
    match (ctx.eval)(ctx, expr)? {
        Val::Scalar(values) => Ok(values),
        other => Err(wrong_type("expected a scalar", &other)),
    }
}

/// Evaluates a node that must give a string.
pub(super) fn string(ctx: &Ctx, expr: &Expr) -> Result<String, QueryError> {
    match (ctx.eval)(ctx, expr)? {
        Val::String(s) => Ok(s),
        other => Err(wrong_type("expected a string", &other)),
    }
}

/// Evaluates a node that must give a range vector.
pub(super) fn range(ctx: &Ctx, expr: &Expr) -> Result<RangeInput, QueryError> {
    match (ctx.eval)(ctx, expr)? {
        Val::Range(input) => Ok(input),
        other => Err(wrong_type("expected a range vector", &other)),
    }
}

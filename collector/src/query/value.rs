//! The values a PromQL expression evaluates to, inside the evaluator (one slot per step) and as
//! handed to callers.

use std::collections::BTreeMap;

/// A series' labels, `__name__` included unless an operation dropped it.
pub type Metric = BTreeMap<String, String>;

/// One result series: its labels and its points (Unix ms, value).
pub type SeriesResult = (Metric, Vec<(i64, f64)>);

/// A query's result.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number at each step (`1+1`, `time()`, `scalar(x)`).
    Scalar(Vec<(i64, f64)>),
    /// A string literal, at the evaluation time.
    String(i64, String),
    /// Instant vectors: each series' value at the steps where it has one.
    Vector(Vec<SeriesResult>),
    /// A range-vector expression (`x[5m]`, a subquery) at one instant: each series' samples in
    /// the window.
    Matrix(Vec<SeriesResult>),
}

impl Value {
    /// The value at the last step as labelled numbers, as an alert rule judges it: a scalar is
    /// one unlabelled number; strings and range vectors have none.
    pub fn into_samples(self) -> Vec<(Metric, f64)> {
        match self {
            Value::Scalar(points) => points
                .last()
                .map(|&(_, v)| vec![(Metric::new(), v)])
                .unwrap_or_default(),
            Value::Vector(series) => series
                .into_iter()
                .filter_map(|(metric, points)| Some((metric, points.last()?.1)))
                .collect(),
            Value::String(..) | Value::Matrix(_) => Vec::new(),
        }
    }
}

/// An instant-vector series inside the evaluator: a value or none at each step.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Series {
    pub metric: Metric,
    pub values: Vec<Option<f64>>,
}

/// A range-vector series inside the evaluator: its samples, sorted by time.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Samples {
    pub metric: Metric,
    pub points: Vec<(i64, f64)>,
}

/// A range vector as a function sees it: each series' samples, and for each step the end of
/// its window (`@` and `offset` applied); a window is `(end - range, end]`.
#[derive(Debug, Clone)]
pub(super) struct RangeInput {
    pub series: Vec<Samples>,
    pub ends: Vec<i64>,
    pub range: i64,
}

impl RangeInput {
    /// The samples of `points` in step `i`'s window.
    pub fn window<'p>(&self, points: &'p [(i64, f64)], i: usize) -> &'p [(i64, f64)] {
        let end = self.ends[i];
        let lo = points.partition_point(|p| p.0 <= end - self.range);
        let hi = points.partition_point(|p| p.0 <= end);
        &points[lo..hi]
    }
}

/// A value inside the evaluator, step-indexed.
#[derive(Debug, Clone)]
pub(super) enum Val {
    Scalar(Vec<f64>),
    String(String),
    Vector(Vec<Series>),
    Range(RangeInput),
}

impl Val {
    /// The name Prometheus gives this value's type in errors.
    pub fn type_name(&self) -> &'static str {
        match self {
            Val::Scalar(_) => "scalar",
            Val::String(_) => "string",
            Val::Vector(_) => "instant vector",
            Val::Range(_) => "range vector",
        }
    }
}

/// Drops `__name__`, as Prometheus does for arithmetic and most functions.
pub(super) fn drop_name(metric: &mut Metric) {
    metric.remove(hcmon_common::METRIC_NAME_LABEL);
}

pub(super) use crate::storage::is_stale_marker as is_stale;

/// A value as Prometheus formats it in labels (`count_values`): shortest round-trip decimal.
pub(super) fn format_label_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{value}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_open_at_the_start_and_closed_at_the_end() {
        let input = RangeInput {
            series: vec![],
            ends: vec![20, 30],
            range: 10,
        };
        let points = [(10, 1.0), (15, 2.0), (20, 3.0), (30, 4.0)];
        assert_eq!(input.window(&points, 0), &[(15, 2.0), (20, 3.0)]);
        assert_eq!(input.window(&points, 1), &[(30, 4.0)]);
    }

    #[test]
    fn instant_samples_take_the_last_step() {
        let scalar = Value::Scalar(vec![(1, 1.0), (2, 2.0)]);
        assert_eq!(scalar.into_samples(), vec![(Metric::new(), 2.0)]);
        let metric = Metric::from([("a".to_owned(), "b".to_owned())]);
        let vector = Value::Vector(vec![
            (metric.clone(), vec![(1, 5.0)]),
            (Metric::new(), vec![]),
        ]);
        assert_eq!(vector.into_samples(), vec![(metric, 5.0)]);
        assert!(Value::String(1, "x".into()).into_samples().is_empty());
        assert_eq!(format_label_value(2.5), "2.5");
        assert_eq!(format_label_value(f64::INFINITY), "+Inf");
        assert!(is_stale(crate::storage::STALE_MARKER) && !is_stale(f64::NAN));
    }
}

//! Functions over range vectors: `rate` and friends with Prometheus' extrapolation, and every
//! `*_over_time`. A window is `(end - range, end]` (see [`super::value::RangeInput`]).

use super::QueryError;
use super::aggregate::{population_variance, quantile};
use super::context::{Ctx, range, scalar};
use super::plan;
use super::value::Metric;
use super::value::{RangeInput, Series, Val, drop_name};
use promql_parser::label::MatchOp;
use promql_parser::parser::Expr;
use std::collections::HashMap;

/// The range functions; anything else is an instant-vector function.
pub(super) fn is_range_function(name: &str) -> bool {
    matches!(
        name,
        "rate"
            | "irate"
            | "increase"
            | "delta"
            | "idelta"
            | "deriv"
            | "predict_linear"
            | "resets"
            | "changes"
            | "absent_over_time"
    ) || name.ends_with("_over_time")
}

/// Evaluates range function `name` over `args`.
pub(super) fn eval(ctx: &Ctx, name: &str, args: &[Box<Expr>]) -> Result<Val, QueryError> {
    // `quantile_over_time(φ, m)` takes the range vector second.
    let (matrix, param) = match name {
        "quantile_over_time" => (&args[1], Some(scalar(ctx, &args[0])?)),
        "predict_linear" => (&args[0], Some(scalar(ctx, &args[1])?)),
        _ => (&args[0], None),
    };
    if let Expr::MatrixSelector(ms) = matrix.as_ref()
        && let Some(series) = plan::rollup_range_function(ctx, name, ms)?
    {
        return Ok(Val::Vector(series));
    }
    let counter = match matrix.as_ref() {
        Expr::MatrixSelector(ms) => plan::counter_selector(ctx, name, ms)?,
        _ => None,
    };
    let (input, from_rollups) = match counter {
        Some(c) => (c.raw, c.from_rollups),
        None => (range(ctx, matrix)?, Vec::new()),
    };
    if name == "absent_over_time" {
        return Ok(Val::Vector(absent_over_time(&input, matrix)));
    }
    let keep_name = name == "last_over_time";
    let times: Vec<i64> = ctx.times().collect();
    let mut out = Vec::new();
    for (n, s) in input.series.iter().enumerate() {
        let values: Vec<Option<f64>> = (0..input.ends.len())
            .map(|i| {
                if let Some(increase) = from_rollups.get(n).and_then(|steps| steps[i]) {
                    return Some(if name == "rate" {
                        increase / (input.range as f64 / 1000.0)
                    } else {
                        increase
                    });
                }
                let window = input.window(&s.points, i);
                let p = param.as_ref().map_or(f64::NAN, |p| p[i]);
                apply(name, window, &input, i, p, times[i])
            })
            .collect();
        if values.iter().any(Option::is_some) {
            let mut metric = s.metric.clone();
            if !keep_name {
                drop_name(&mut metric);
            }
            out.push(Series { metric, values });
        }
    }
    Ok(Val::Vector(out))
}

fn absent_over_time(input: &RangeInput, matrix: &Expr) -> Vec<Series> {
    let values: Vec<Option<f64>> = (0..input.ends.len())
        .map(|i| {
            let any = input
                .series
                .iter()
                .any(|s| !input.window(&s.points, i).is_empty());
            (!any).then_some(1.0)
        })
        .collect();
    if values.iter().all(Option::is_none) {
        return Vec::new();
    }
    vec![Series {
        metric: absent_labels(matrix),
        values,
    }]
}

/// The labels `absent(x{a="1"})` reports: the selector's equality matchers, except the metric
/// name and any label matched more than once.
pub(super) fn absent_labels(expr: &Expr) -> Metric {
    let mut inner = expr;
    loop {
        match inner {
            Expr::Paren(p) => inner = &p.expr,
            Expr::MatrixSelector(ms) => return selector_labels(&ms.vs.matchers.matchers),
            Expr::VectorSelector(vs) => return selector_labels(&vs.matchers.matchers),
            _ => return Metric::new(),
        }
    }
}

fn selector_labels(matchers: &[promql_parser::label::Matcher]) -> Metric {
    let mut out = Metric::new();
    let mut seen = HashMap::new();
    for m in matchers {
        if m.name == hcmon_common::METRIC_NAME_LABEL {
            continue;
        }
        *seen.entry(m.name.clone()).or_insert(0) += 1;
        if matches!(m.op, MatchOp::Equal) {
            out.insert(m.name.clone(), m.value.clone());
        }
    }
    out.retain(|name, _| seen.get(name) == Some(&1));
    out
}

/// One function over one window. `param` is `quantile_over_time`'s φ or `predict_linear`'s
/// seconds ahead; `now` is the step's evaluation time, from which `predict_linear` predicts
/// even when `offset` or `@` moved the window (as Prometheus does).
fn apply(
    name: &str,
    w: &[(i64, f64)],
    input: &RangeInput,
    i: usize,
    param: f64,
    now: i64,
) -> Option<f64> {
    let values = || w.iter().map(|p| p.1);
    let end = input.ends[i];
    Some(match name {
        "rate" | "increase" | "delta" => {
            extrapolated_rate(w, end - input.range, end, name != "delta", name == "rate")?
        }
        "irate" | "idelta" => {
            let [.., (t0, v0), (t1, v1)] = *w else {
                return None;
            };
            if t1 == t0 {
                return None;
            }
            if name == "idelta" {
                v1 - v0
            } else {
                let grown = if v1 < v0 { v1 } else { v1 - v0 };
                grown / ((t1 - t0) as f64 / 1000.0)
            }
        }
        "deriv" => {
            if w.len() < 2 {
                return None;
            }
            linear_regression(w, w[0].0).0
        }
        "predict_linear" => {
            if w.len() < 2 {
                return None;
            }
            let (slope, intercept) = linear_regression(w, now);
            intercept + slope * param
        }
        "resets" => {
            w.first()?;
            w.windows(2).filter(|p| p[1].1 < p[0].1).count() as f64
        }
        "changes" => {
            w.first()?;
            w.windows(2)
                .filter(|p| !(p[1].1 == p[0].1 || (p[1].1.is_nan() && p[0].1.is_nan())))
                .count() as f64
        }
        _ => over_time(name, &mut values().collect::<Vec<_>>(), param)?,
    })
}

/// `*_over_time` over a window's values.
fn over_time(name: &str, values: &mut [f64], param: f64) -> Option<f64> {
    let last = *values.last()?;
    let n = values.len() as f64;
    Some(match name {
        "count_over_time" => n,
        "present_over_time" => 1.0,
        "last_over_time" => last,
        "sum_over_time" => kahan_sum(values),
        "avg_over_time" => {
            let mut mean = 0.0;
            for (i, &v) in values.iter().enumerate() {
                let count = (i + 1) as f64;
                mean += v / count - mean / count;
            }
            mean
        }
        "min_over_time" => values
            .iter()
            .copied()
            .reduce(|acc, v| if v < acc || acc.is_nan() { v } else { acc })?,
        "max_over_time" => values
            .iter()
            .copied()
            .reduce(|acc, v| if v > acc || acc.is_nan() { v } else { acc })?,
        "stddev_over_time" | "stdvar_over_time" => {
            let var = population_variance(values);
            if name == "stddev_over_time" {
                var.sqrt()
            } else {
                var
            }
        }
        "quantile_over_time" => quantile(param, values),
        "mad_over_time" => {
            let median = quantile(0.5, values);
            let mut deviations: Vec<f64> = values.iter().map(|v| (v - median).abs()).collect();
            quantile(0.5, &mut deviations)
        }
        _ => return None,
    })
}

fn kahan_sum(values: &[f64]) -> f64 {
    let (mut sum, mut c) = (0.0f64, 0.0f64);
    for &v in values {
        let t = sum + v;
        if sum.abs() >= v.abs() {
            c += (sum - t) + v;
        } else {
            c += (v - t) + sum;
        }
        sum = t;
    }
    if (sum + c).is_nan() && !sum.is_nan() {
        sum
    } else {
        sum + c
    }
}

/// Prometheus' `extrapolatedRate`: the growth between the window's first and last samples
/// (counter resets added back), extrapolated towards the window's edges when the samples come
/// close enough to them, and never below zero for counters.
fn extrapolated_rate(
    w: &[(i64, f64)],
    range_start: i64,
    range_end: i64,
    counter: bool,
    per_second: bool,
) -> Option<f64> {
    let [(first_t, first_v), .., (last_t, last_v)] = *w else {
        return None;
    };
    let mut result = last_v - first_v;
    if counter {
        let mut previous = 0.0;
        for &(_, v) in w {
            if v < previous {
                result += previous;
            }
            previous = v;
        }
    }
    let mut to_start = (first_t - range_start) as f64 / 1000.0;
    let to_end = (range_end - last_t) as f64 / 1000.0;
    let sampled = (last_t - first_t) as f64 / 1000.0;
    let average_gap = sampled / (w.len() - 1) as f64;
    if counter && result > 0.0 && first_v >= 0.0 {
        let to_zero = sampled * (first_v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = average_gap * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        average_gap / 2.0
    };
    interval += if to_end < threshold {
        to_end
    } else {
        average_gap / 2.0
    };
    result *= interval / sampled;
    if per_second {
        result /= (range_end - range_start) as f64 / 1000.0;
    }
    Some(result)
}

/// Least-squares slope and intercept (at `intercept_time`) of the samples, as Prometheus'
/// `linearRegression`.
fn linear_regression(w: &[(i64, f64)], intercept_time: i64) -> (f64, f64) {
    let first = w[0].1;
    if w.iter().all(|p| p.1 == first) {
        if first.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, first);
    }
    let n = w.len() as f64;
    let (mut sx, mut sy, mut sxy, mut sx2) = (0.0, 0.0, 0.0, 0.0);
    for &(t, v) in w {
        let x = (t - intercept_time) as f64 / 1000.0;
        sx += x;
        sy += v;
        sxy += x * v;
        sx2 += x * x;
    }
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_extrapolates_like_prometheus() {
        // A counter sampled every 10 s from t = 5 s, rising 1/s, with a reset at 35 s.
        let w = [
            (5_000, 5.0),
            (15_000, 15.0),
            (25_000, 25.0),
            (35_000, 3.0),
            (45_000, 13.0),
        ];
        // Growth 8 + 25 (reset) = 33 over 40 s sampled; 5 s to each edge (< 1.1 × 10 s) and
        // 0 s to zero is not shorter, so extrapolated to the full 50 s: 33 × 50/40.
        let increase = extrapolated_rate(&w, 0, 50_000, true, false).unwrap();
        assert!((increase - 41.25).abs() < 1e-9, "{increase}");
        let rate = extrapolated_rate(&w, 0, 50_000, true, true).unwrap();
        assert!((rate - 41.25 / 50.0).abs() < 1e-9, "{rate}");
        // Far from the start edge: only half an average gap is added there.
        let w = [(40_000, 10.0), (50_000, 20.0)];
        let delta = extrapolated_rate(&w, 0, 50_000, false, false).unwrap();
        assert!((delta - 15.0).abs() < 1e-9, "{delta}");
        // A counter is not extrapolated below zero.
        let w = [(20_000, 1.0), (30_000, 11.0)];
        let increase = extrapolated_rate(&w, 0, 30_000, true, false).unwrap();
        assert!((increase - 11.0).abs() < 1e-9, "{increase}");
        assert_eq!(extrapolated_rate(&w[..1], 0, 30_000, true, false), None);
    }

    #[test]
    fn over_time_functions_and_regression() {
        let mut values = [1.0, 4.0, 2.0, 3.0];
        assert_eq!(over_time("avg_over_time", &mut values, 0.0), Some(2.5));
        assert_eq!(over_time("quantile_over_time", &mut values, 0.5), Some(2.5));
        assert_eq!(over_time("stdvar_over_time", &mut values, 0.0), Some(1.25));
        assert_eq!(over_time("mad_over_time", &mut values, 0.0), Some(1.0));
        assert_eq!(
            over_time("max_over_time", &mut [f64::NAN, 1.0], 0.0),
            Some(1.0)
        );
        let line = [(0, 1.0), (10_000, 3.0), (20_000, 5.0)];
        assert_eq!(linear_regression(&line, 0), (0.2, 1.0));
        assert_eq!(linear_regression(&line, 20_000), (0.2, 5.0));
    }
}

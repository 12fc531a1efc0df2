//! Aggregation operators (`sum`, `avg`, `topk`, `quantile`, `count_values`, …) with `by` and
//! `without`, step by step as Prometheus computes them.

use super::QueryError;
use super::context::{Ctx, scalar, string, vector};
use super::value::{Metric, Series, Val, format_label_value};
use promql_parser::parser::{AggregateExpr, LabelModifier};
use std::collections::HashMap;

/// The labels a series keeps in its group: `by` keeps the listed ones, `without` drops them
/// and `__name__`, no clause keeps none.
fn group_key(metric: &Metric, modifier: Option<&LabelModifier>) -> Metric {
    match modifier {
        Some(LabelModifier::Include(by)) => metric
            .iter()
            .filter(|(n, _)| by.labels.contains(n))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect(),
        Some(LabelModifier::Exclude(without)) => metric
            .iter()
            .filter(|(n, _)| *n != hcmon_common::METRIC_NAME_LABEL && !without.labels.contains(n))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect(),
        None => Metric::new(),
    }
}

/// The population variance of `values` (Welford's one pass, as Prometheus computes it); NaN
/// for none.
pub(super) fn population_variance(values: &[f64]) -> f64 {
    let (mut count, mut mean, mut sq) = (0.0, 0.0, 0.0);
    for &v in values {
        count += 1.0;
        let delta = v - mean;
        mean += delta / count;
        sq += delta * (v - mean);
    }
    sq / count
}

/// Prometheus' quantile: linear interpolation between the closest ranks.
pub(super) fn quantile(phi: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || phi.is_nan() {
        return f64::NAN;
    }
    if phi < 0.0 {
        return f64::NEG_INFINITY;
    }
    if phi > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len() as f64;
    let rank = phi * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// Folds one group's values at one step.
fn fold(op: &str, values: &mut [f64], phi: f64) -> f64 {
    let n = values.len() as f64;
    match op {
        "sum" => values.iter().sum(),
        "avg" => {
            let mut mean = 0.0f64;
            for (i, &v) in values.iter().enumerate() {
                let count = (i + 1) as f64;
                if mean.is_infinite()
                    && ((v.is_infinite() && (mean > 0.0) == (v > 0.0)) || v.is_finite())
                {
                    continue;
                }
                mean += v / count - mean / count;
            }
            mean
        }
        "count" => n,
        "group" => 1.0,
        "min" => values
            .iter()
            .copied()
            .reduce(|acc, v| if acc > v || acc.is_nan() { v } else { acc })
            .unwrap_or(f64::NAN),
        "max" => values
            .iter()
            .copied()
            .reduce(|acc, v| if acc < v || acc.is_nan() { v } else { acc })
            .unwrap_or(f64::NAN),
        "stddev" | "stdvar" => {
            let var = population_variance(values);
            if op == "stddev" { var.sqrt() } else { var }
        }
        _ => quantile(phi, values),
    }
}

pub(super) fn eval(ctx: &Ctx, agg: &AggregateExpr) -> Result<Val, QueryError> {
    let op = agg.op.to_string();
    let steps = ctx.steps();
    let series = vector(ctx, &agg.expr)?;
    let modifier = agg.modifier.as_ref();
    let mut groups: Vec<(Metric, Vec<usize>)> = Vec::new();
    let mut index: HashMap<Metric, usize> = HashMap::new();
    for (i, s) in series.iter().enumerate() {
        let key = group_key(&s.metric, modifier);
        let g = *index.entry(key.clone()).or_insert_with(|| {
            groups.push((key, Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push(i);
    }
    let param = |what| {
        agg.param
            .as_deref()
            .ok_or_else(|| QueryError::Execution(format!("{op} needs {what}")))
    };
    let out = match op.as_str() {
        "topk" | "bottomk" => {
            let k = scalar(ctx, param("a count")?)?;
            select_k(&series, &groups, &k, op == "topk", steps)
        }
        "count_values" => {
            let label = string(ctx, param("a label name")?)?;
            hcmon_common::labels::validate_label_name(&label)
                .map_err(|e| QueryError::Execution(format!("invalid label name {label:?}: {e}")))?;
            count_values(&series, &groups, &label, steps)
        }
        _ => {
            let phi = match op.as_str() {
                "quantile" => scalar(ctx, param("a quantile")?)?,
                _ => vec![f64::NAN; steps],
            };
            groups
                .into_iter()
                .map(|(metric, members)| {
                    let values = (0..steps)
                        .map(|step| {
                            let mut values: Vec<f64> = members
                                .iter()
                                .filter_map(|&i| series[i].values[step])
                                .collect();
                            (!values.is_empty()).then(|| fold(&op, &mut values, phi[step]))
                        })
                        .collect();
                    Series { metric, values }
                })
                .filter(|s| s.values.iter().any(Option::is_some))
                .collect()
        }
    };
    Ok(Val::Vector(out))
}

/// `topk`/`bottomk`: in each group and step, the `k` largest (smallest) values, NaN last; the
/// series keep their labels. Series are listed in the order of the first step that picks them.
fn select_k(
    series: &[Series],
    groups: &[(Metric, Vec<usize>)],
    k: &[f64],
    top: bool,
    steps: usize,
) -> Vec<Series> {
    let mut out: Vec<Series> = Vec::new();
    let mut index: HashMap<usize, usize> = HashMap::new();
    for (step, &k) in k.iter().enumerate().take(steps) {
        if k.is_nan() || k < 1.0 {
            continue;
        }
        let k = k.min(series.len() as f64) as usize;
        for (_, members) in groups {
            let mut present: Vec<(usize, f64)> = members
                .iter()
                .filter_map(|&i| Some((i, series[i].values[step]?)))
                .collect();
            present.sort_by(|a, b| {
                let order = match (a.1.is_nan(), b.1.is_nan()) {
                    (true, true) => std::cmp::Ordering::Equal,
                    (true, false) => std::cmp::Ordering::Greater,
                    (false, true) => std::cmp::Ordering::Less,
                    (false, false) if top => b.1.total_cmp(&a.1),
                    (false, false) => a.1.total_cmp(&b.1),
                };
                order.then(a.0.cmp(&b.0))
            });
            for (i, v) in present.into_iter().take(k) {
                let o = *index.entry(i).or_insert_with(|| {
                    out.push(Series {
                        metric: series[i].metric.clone(),
                        values: vec![None; steps],
                    });
                    out.len() - 1
                });
                out[o].values[step] = Some(v);
            }
        }
    }
    out
}

/// `count_values("label", v)`: per group and step, how many series have each value, the value
/// written into `label`.
fn count_values(
    series: &[Series],
    groups: &[(Metric, Vec<usize>)],
    label: &str,
    steps: usize,
) -> Vec<Series> {
    let mut out: Vec<Series> = Vec::new();
    let mut index: HashMap<Metric, usize> = HashMap::new();
    for step in 0..steps {
        for (key, members) in groups {
            for &i in members {
                let Some(v) = series[i].values[step] else {
                    continue;
                };
                let mut metric = key.clone();
                metric.insert(label.to_owned(), format_label_value(v));
                let o = *index.entry(metric.clone()).or_insert_with(|| {
                    out.push(Series {
                        metric,
                        values: vec![None; steps],
                    });
                    out.len() - 1
                });
                *out[o].values[step].get_or_insert(0.0) += 1.0;
            }
        }
    }
    out
}

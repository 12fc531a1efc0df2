//! Binary operators: arithmetic, comparison (filtering or `bool`), `and`/`or`/`unless`, between
//! scalars and vectors, with Prometheus' vector matching (`on`, `ignoring`, `group_left`,
//! `group_right`) and its errors for ambiguous matches.

use super::QueryError;
use super::context::{Ctx, wrong_type};
use super::value::{Metric, Series, Val, drop_name};
use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};
use std::collections::{HashMap, HashSet};

/// Operators whose result drops `__name__`.
fn drops_name(op: &str) -> bool {
    matches!(op, "+" | "-" | "*" | "/" | "%" | "^" | "atan2")
}

fn is_comparison(op: &str) -> bool {
    matches!(op, "==" | "!=" | ">" | "<" | ">=" | "<=")
}

/// `l op r`: the value, and for comparisons whether the pair passes.
fn apply(op: &str, l: f64, r: f64) -> (f64, bool) {
    match op {
        "+" => (l + r, true),
        "-" => (l - r, true),
        "*" => (l * r, true),
        "/" => (l / r, true),
        "%" => (l % r, true),
        "^" => (l.powf(r), true),
        "atan2" => (l.atan2(r), true),
        "==" => (l, l == r),
        "!=" => (l, l != r),
        ">" => (l, l > r),
        "<" => (l, l < r),
        ">=" => (l, l >= r),
        _ => (l, l <= r),
    }
}

pub(super) fn eval_binary(ctx: &Ctx, b: &BinaryExpr) -> Result<Val, QueryError> {
    let op = b.op.to_string();
    let return_bool = b.return_bool();
    let lhs = (ctx.eval)(ctx, &b.lhs)?;
    let rhs = (ctx.eval)(ctx, &b.rhs)?;
    Ok(match (lhs, rhs) {
        (Val::Scalar(l), Val::Scalar(r)) => Val::Scalar(
            l.into_iter()
                .zip(r)
                .map(|(l, r)| match apply(&op, l, r) {
                    (_, keep) if is_comparison(&op) => f64::from(u8::from(keep)),
                    (v, _) => v,
                })
                .collect(),
        ),
        (Val::Vector(v), Val::Scalar(s)) => {
            Val::Vector(vector_scalar(&op, v, &s, false, return_bool))
        }
        (Val::Scalar(s), Val::Vector(v)) => {
            Val::Vector(vector_scalar(&op, v, &s, true, return_bool))
        }
        (Val::Vector(l), Val::Vector(r)) => {
            let matching = b.modifier.as_ref().and_then(|m| m.matching.clone());
            let card = b
                .modifier
                .as_ref()
                .map_or(VectorMatchCardinality::OneToOne, |m| m.card.clone());
            let on = Matching(matching);
            Val::Vector(match op.as_str() {
                "and" | "or" | "unless" => set_op(&op, l, r, &on, ctx.steps()),
                _ => vector_vector(&op, l, r, &on, &card, return_bool, ctx.steps())?,
            })
        }
        (l, Val::Vector(_) | Val::Scalar(_)) => return Err(wrong_type(&op, &l)),
        (_, r) => return Err(wrong_type(&op, &r)),
    })
}

fn vector_scalar(
    op: &str,
    mut series: Vec<Series>,
    scalar: &[f64],
    swap: bool,
    return_bool: bool,
) -> Vec<Series> {
    for s in &mut series {
        if drops_name(op) || return_bool {
            drop_name(&mut s.metric);
        }
        for (slot, &sv) in s.values.iter_mut().zip(scalar) {
            let Some(v) = *slot else { continue };
            let (l, r) = if swap { (sv, v) } else { (v, sv) };
            let (mut value, keep) = apply(op, l, r);
            if is_comparison(op) && swap {
                value = v;
            }
            *slot = if return_bool {
                Some(f64::from(u8::from(keep)))
            } else {
                keep.then_some(value)
            };
        }
    }
    series.retain(|s| s.values.iter().any(Option::is_some));
    series
}

/// Which labels identify a match: `on(…)`, `ignoring(…)`, or all but `__name__`.
struct Matching(Option<LabelModifier>);

impl Matching {
    fn signature(&self, metric: &Metric) -> Vec<(String, String)> {
        match &self.0 {
            Some(LabelModifier::Include(on)) => on
                .labels
                .iter()
                .filter_map(|n| metric.get(n).map(|v| (n.clone(), v.clone())))
                .collect(),
            Some(LabelModifier::Exclude(ignoring)) => metric
                .iter()
                .filter(|(n, _)| {
                    *n != hcmon_common::METRIC_NAME_LABEL && !ignoring.labels.contains(n)
                })
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect(),
            None => metric
                .iter()
                .filter(|(n, _)| *n != hcmon_common::METRIC_NAME_LABEL)
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect(),
        }
    }
}

fn format_metric(metric: &Metric) -> String {
    let pairs: Vec<String> = metric.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
    format!("{{{}}}", pairs.join(", "))
}

fn format_signature(sig: &[(String, String)]) -> String {
    format_metric(&sig.iter().cloned().collect())
}

/// Adds `value` at `step` to the output series labelled `metric`.
fn put(
    out: &mut Vec<Series>,
    index: &mut HashMap<Metric, usize>,
    metric: Metric,
    step: usize,
    value: f64,
    steps: usize,
) -> bool {
    let i = *index.entry(metric.clone()).or_insert_with(|| {
        out.push(Series {
            metric,
            values: vec![None; steps],
        });
        out.len() - 1
    });
    let taken = out[i].values[step].is_some();
    out[i].values[step] = Some(value);
    !taken
}

fn vector_vector(
    op: &str,
    lhs: Vec<Series>,
    rhs: Vec<Series>,
    matching: &Matching,
    card: &VectorMatchCardinality,
    return_bool: bool,
    steps: usize,
) -> Result<Vec<Series>, QueryError> {
    // The "many" side first; group_right swaps the sides and the operands back for the op.
    let swapped = matches!(card, VectorMatchCardinality::OneToMany(_));
    let (many, one) = if swapped { (rhs, lhs) } else { (lhs, rhs) };
    let include: Vec<String> = card.labels().map(|l| l.labels.clone()).unwrap_or_default();
    let one_to_one = matches!(card, VectorMatchCardinality::OneToOne);
    let many_sigs: Vec<_> = many.iter().map(|s| matching.signature(&s.metric)).collect();
    let one_sigs: Vec<_> = one.iter().map(|s| matching.signature(&s.metric)).collect();
    let mut out = Vec::new();
    let mut index = HashMap::new();
    let mut result_metrics: HashMap<(usize, usize), Metric> = HashMap::new();
    for step in 0..steps {
        let mut ones: HashMap<&[(String, String)], usize> = HashMap::new();
        for (j, s) in one.iter().enumerate() {
            if s.values[step].is_none() {
                continue;
            }
            if let Some(&k) = ones.get(one_sigs[j].as_slice()) {
                return Err(QueryError::Execution(format!(
                    "found duplicate series for the match group {} on the {} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                    format_signature(&one_sigs[j]),
                    if swapped { "left" } else { "right" },
                    format_metric(&s.metric),
                    format_metric(&one[k].metric),
                )));
            }
            ones.insert(one_sigs[j].as_slice(), j);
        }
        let mut matched: HashSet<&[(String, String)]> = HashSet::new();
        for (i, s) in many.iter().enumerate() {
            let Some(mv) = s.values[step] else { continue };
            let Some(&j) = ones.get(many_sigs[i].as_slice()) else {
                continue;
            };
            if one_to_one && !matched.insert(many_sigs[i].as_slice()) {
                return Err(QueryError::Execution(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".into(),
                ));
            }
            let ov = one[j].values[step].unwrap_or(f64::NAN);
            let (l, r) = if swapped { (ov, mv) } else { (mv, ov) };
            let (value, keep) = apply(op, l, r);
            let value = match (return_bool, keep) {
                (true, keep) => f64::from(u8::from(keep)),
                (false, true) => value,
                (false, false) => continue,
            };
            let metric = result_metrics
                .entry((i, j))
                .or_insert_with(|| {
                    result_metric(
                        op,
                        &s.metric,
                        &one[j].metric,
                        matching,
                        &include,
                        one_to_one,
                        return_bool,
                    )
                })
                .clone();
            if !put(&mut out, &mut index, metric, step, value, steps) {
                return Err(QueryError::Execution(
                    "multiple matches for labels: grouping labels must ensure unique matches"
                        .into(),
                ));
            }
        }
    }
    Ok(out)
}

/// The labels of a matched pair's result, as Prometheus' `resultMetric`.
fn result_metric(
    op: &str,
    many: &Metric,
    one: &Metric,
    matching: &Matching,
    include: &[String],
    one_to_one: bool,
    return_bool: bool,
) -> Metric {
    let mut metric = many.clone();
    if drops_name(op) || return_bool {
        drop_name(&mut metric);
    }
    if one_to_one {
        match &matching.0 {
            Some(LabelModifier::Include(on)) => metric.retain(|n, _| on.labels.contains(n)),
            Some(LabelModifier::Exclude(ignoring)) => {
                metric.retain(|n, _| !ignoring.labels.contains(n))
            }
            None => {}
        }
    }
    for name in include {
        match one.get(name).filter(|v| !v.is_empty()) {
            Some(v) => metric.insert(name.clone(), v.clone()),
            None => metric.remove(name),
        };
    }
    metric
}

/// `and`, `or`, `unless`, step by step; the left side's labels are kept.
fn set_op(
    op: &str,
    lhs: Vec<Series>,
    rhs: Vec<Series>,
    matching: &Matching,
    steps: usize,
) -> Vec<Series> {
    let lhs_sigs: Vec<_> = lhs.iter().map(|s| matching.signature(&s.metric)).collect();
    let rhs_sigs: Vec<_> = rhs.iter().map(|s| matching.signature(&s.metric)).collect();
    let present = |series: &[Series], sigs: &[Vec<(String, String)>], step: usize| {
        series
            .iter()
            .zip(sigs)
            .filter(|(s, _)| s.values[step].is_some())
            .map(|(_, sig)| sig.clone())
            .collect::<HashSet<_>>()
    };
    let mut out = Vec::new();
    let mut index = HashMap::new();
    for step in 0..steps {
        let right = present(&rhs, &rhs_sigs, step);
        for (s, sig) in lhs.iter().zip(&lhs_sigs) {
            let Some(v) = s.values[step] else { continue };
            let keep = match op {
                "and" => right.contains(sig),
                "unless" => !right.contains(sig),
                _ => true,
            };
            if keep {
                put(&mut out, &mut index, s.metric.clone(), step, v, steps);
            }
        }
        if op == "or" {
            let left = present(&lhs, &lhs_sigs, step);
            for (s, sig) in rhs.iter().zip(&rhs_sigs) {
                if let Some(v) = s.values[step]
                    && !left.contains(sig)
                {
                    put(&mut out, &mut index, s.metric.clone(), step, v, steps);
                }
            }
        }
    }
    out
}

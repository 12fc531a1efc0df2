//! The walk over the syntax tree: each node evaluated at every step of the query at once.

use super::context::{Budget, Ctx, wrong_type};
use super::value::{Metric, RangeInput, Samples, Series, Val, Value, drop_name};
use super::{DEFAULT_SUBQUERY_STEP_MS, QueryError, SeriesSource, Source, aggregate, binary};
use super::{functions, plan};
use promql_parser::parser::{Expr, SubqueryExpr};
use std::cell::Cell;
use std::collections::{HashMap, HashSet};

/// Evaluates a whole query.
pub(super) fn run(
    source: &dyn SeriesSource,
    expr: &Expr,
    start: i64,
    end: i64,
    step: i64,
    max_samples: usize,
) -> Result<(Value, Source), QueryError> {
    let budget = Budget {
        left: Cell::new(max_samples),
        used: Cell::new(None),
    };
    let ctx = Ctx {
        source,
        start,
        end,
        step,
        query_start: start,
        query_end: end,
        rollups: true,
        budget: &budget,
        eval,
    };
    let times: Vec<i64> = ctx.times().collect();
    let value = match eval(&ctx, expr)? {
        Val::Scalar(values) => Value::Scalar(times.iter().copied().zip(values).collect()),
        Val::String(s) => Value::String(end, s),
        Val::Vector(series) => Value::Vector(
            series
                .into_iter()
                .map(|s| {
                    let points = times
                        .iter()
                        .zip(s.values)
                        .filter_map(|(&t, v)| Some((t, v?)))
                        .collect();
                    (s.metric, points)
                })
                .filter(|(_, points): &(Metric, Vec<_>)| !points.is_empty())
                .collect(),
        ),
        Val::Range(input) => {
            if times.len() != 1 {
                return Err(QueryError::Execution(
                    "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector".into(),
                ));
            }
            Value::Matrix(
                input
                    .series
                    .iter()
                    .map(|s| (s.metric.clone(), input.window(&s.points, 0).to_vec()))
                    .filter(|(_, points)| !points.is_empty())
                    .collect(),
            )
        }
    };
    Ok((value, budget.used.get().unwrap_or(Source::Raw)))
}

/// Evaluates one node at every step of `ctx`.
fn eval(ctx: &Ctx, expr: &Expr) -> Result<Val, QueryError> {
    Ok(match expr {
        Expr::NumberLiteral(n) => Val::Scalar(vec![n.val; ctx.steps()]),
        Expr::StringLiteral(s) => Val::String(s.val.clone()),
        Expr::Paren(p) => eval(ctx, &p.expr)?,
        Expr::Unary(u) => match eval(ctx, &u.expr)? {
            Val::Scalar(values) => Val::Scalar(values.into_iter().map(|v| -v).collect()),
            Val::Vector(mut series) => {
                for s in &mut series {
                    drop_name(&mut s.metric);
                    s.values.iter_mut().flatten().for_each(|v| *v = -*v);
                }
                Val::Vector(merge_alike(series)?)
            }
            other => return Err(wrong_type("unary minus", &other)),
        },
        Expr::VectorSelector(vs) => Val::Vector(plan::instant_selector(ctx, vs, false)?),
        Expr::MatrixSelector(ms) => Val::Range(plan::range_selector(ctx, ms)?),
        Expr::Subquery(sq) => Val::Range(subquery(ctx, sq)?),
        // Operators and functions may drop `__name__` or rewrite labels; aggregations make
        // one series per group and selectors one per stored series, so they need no merging.
        Expr::Binary(b) => merge_alike_vector(binary::eval_binary(ctx, b)?)?,
        Expr::Aggregate(a) => aggregate::eval(ctx, a)?,
        Expr::Call(call) => merge_alike_vector(functions::eval(ctx, call)?)?,
        Expr::Extension(_) => {
            return Err(QueryError::Unsupported("an extension expression".into()));
        }
    })
}

/// [`merge_alike`] for a value that may be an instant vector.
fn merge_alike_vector(value: Val) -> Result<Val, QueryError> {
    match value {
        Val::Vector(series) => Ok(Val::Vector(merge_alike(series)?)),
        other => Ok(other),
    }
}

/// Prometheus' rule for a node's output: series that end up with the same labels (`__name__`
/// dropped, `label_replace`) are one series where their steps do not overlap, and an error
/// where both have a value at the same step.
fn merge_alike(series: Vec<Series>) -> Result<Vec<Series>, QueryError> {
    // Most outputs have no two series alike: checked first, without copying labels.
    let mut seen = HashSet::with_capacity(series.len());
    if series.iter().all(|s| seen.insert(&s.metric)) {
        return Ok(series);
    }
    let mut out: Vec<Series> = Vec::with_capacity(series.len());
    let mut index: HashMap<Metric, usize> = HashMap::new();
    for s in series {
        let Some(&i) = index.get(&s.metric) else {
            index.insert(s.metric.clone(), out.len());
            out.push(s);
            continue;
        };
        for (slot, value) in out[i].values.iter_mut().zip(s.values) {
            if value.is_some() {
                if slot.is_some() {
                    return Err(QueryError::Execution(
                        "vector cannot contain metrics with the same labelset".into(),
                    ));
                }
                *slot = value;
            }
        }
    }
    Ok(out)
}

/// `expr[range:step]`: the inner expression evaluated as a range query whose steps are multiples
/// of the subquery's step, from the first after `start - offset - range` to `end - offset`
/// (Prometheus' alignment), and handed on as samples.
fn subquery(ctx: &Ctx, sq: &SubqueryExpr) -> Result<RangeInput, QueryError> {
    let range = sq.range.as_millis() as i64;
    let step = sq
        .step
        .map_or(DEFAULT_SUBQUERY_STEP_MS, |s| s.as_millis() as i64)
        .max(1);
    let offset = ctx.offset_ms(sq.offset.as_ref());
    let at = ctx.at_ms(sq.at.as_ref());
    let ends: Vec<i64> = ctx.times().map(|t| at.unwrap_or(t) - offset).collect();
    let (lo, hi) = (
        ends.iter().copied().min().unwrap_or(0) - range,
        ends.iter().copied().max().unwrap_or(0),
    );
    let mut inner_start = lo.div_euclid(step) * step;
    if inner_start <= lo {
        inner_start += step;
    }
    let series = if inner_start > hi {
        Vec::new()
    } else {
        let inner = ctx.on_steps(inner_start, hi, step);
        let times: Vec<i64> = inner.times().collect();
        ctx.charge(times.len())?;
        let to_samples = |metric, values: Vec<Option<f64>>| Samples {
            metric,
            points: times
                .iter()
                .zip(values)
                .filter_map(|(&t, v)| Some((t, v?)))
                .collect(),
        };
        match eval(&inner, &sq.expr)? {
            Val::Vector(series) => series
                .into_iter()
                .map(|s| to_samples(s.metric, s.values))
                .filter(|s| !s.points.is_empty())
                .collect(),
            Val::Scalar(values) => {
                vec![to_samples(
                    Metric::new(),
                    values.into_iter().map(Some).collect(),
                )]
            }
            other => return Err(wrong_type("subquery", &other)),
        }
    };
    Ok(RangeInput {
        series,
        ends,
        range,
    })
}

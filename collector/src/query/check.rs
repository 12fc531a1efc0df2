//! What the evaluator implements, checked right after parsing so that a query (or an alert
//! rule) using anything else is refused up front with an error naming it.

use super::QueryError;
use promql_parser::parser::Expr;

/// Functions the evaluator implements (see [`super::functions`] and
/// [`super::range_functions`]).
pub(super) const FUNCTIONS: &[&str] = &[
    // Over range vectors.
    "rate",
    "irate",
    "increase",
    "delta",
    "idelta",
    "deriv",
    "predict_linear",
    "resets",
    "changes",
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "count_over_time",
    "last_over_time",
    "present_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "quantile_over_time",
    "mad_over_time",
    "absent_over_time",
    // Over instant vectors and scalars.
    "abs",
    "ceil",
    "floor",
    "round",
    "sqrt",
    "exp",
    "ln",
    "log2",
    "log10",
    "sgn",
    "clamp",
    "clamp_min",
    "clamp_max",
    "scalar",
    "vector",
    "time",
    "timestamp",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "days_in_month",
    "hour",
    "minute",
    "month",
    "year",
    "sort",
    "sort_desc",
    "histogram_quantile",
    "label_replace",
    "label_join",
    "absent",
];

/// Aggregation operators the evaluator implements (see [`super::aggregate`]).
const AGGREGATIONS: &[&str] = &[
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
];

/// Refuses the first construct in `expr` the evaluator does not implement.
pub(super) fn supported(expr: &Expr) -> Result<(), QueryError> {
    match expr {
        Expr::Aggregate(agg) => {
            let op = agg.op.to_string();
            if !AGGREGATIONS.contains(&op.as_str()) {
                return Err(QueryError::Unsupported(format!("aggregation `{op}`")));
            }
            if let Some(param) = &agg.param {
                supported(param)?;
            }
            supported(&agg.expr)
        }
        Expr::Unary(unary) => supported(&unary.expr),
        Expr::Binary(binary) => {
            if let Some(modifier) = &binary.modifier
                && (modifier.fill_values.lhs.is_some() || modifier.fill_values.rhs.is_some())
            {
                return Err(QueryError::Unsupported("the `fill` modifier".into()));
            }
            supported(&binary.lhs)?;
            supported(&binary.rhs)
        }
        Expr::Paren(paren) => supported(&paren.expr),
        Expr::Subquery(subquery) => supported(&subquery.expr),
        Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::VectorSelector(_)
        | Expr::MatrixSelector(_) => Ok(()),
        Expr::Call(call) => {
            if !FUNCTIONS.contains(&call.func.name) {
                return Err(QueryError::Unsupported(format!(
                    "function `{}`",
                    call.func.name
                )));
            }
            call.args.args.iter().try_for_each(|arg| supported(arg))
        }
        Expr::Extension(_) => Err(QueryError::Unsupported("an extension expression".into())),
    }
}

#[cfg(test)]
mod tests {
    use crate::query::parse;

    #[test]
    fn unsupported_constructs_are_named() {
        for (query, named) in [
            ("sin(x)", "function `sin` is not supported"),
            (
                "double_exponential_smoothing(x[5m], 0.5, 0.5)",
                "function `double_exponential_smoothing` is not supported",
            ),
            ("sum(histogram_count(x))", "function `histogram_count`"),
            ("limitk(2, x)", "aggregation `limitk` is not supported"),
        ] {
            let error = parse(query).unwrap_err().to_string();
            assert!(error.contains(named), "{query}: {error}");
        }
        let syntax = parse("sum(").unwrap_err().to_string();
        assert!(syntax.starts_with("query \"sum(\": "), "{syntax}");
        assert!(!syntax.contains("not supported"), "{syntax}");
    }
}

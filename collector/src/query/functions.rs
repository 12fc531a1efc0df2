//! Functions over instant vectors and scalars (`abs`, `clamp`, `histogram_quantile`,
//! `label_replace`, `absent`, date functions, …), and the dispatch of every call.

use super::QueryError;
use super::context::{Ctx, scalar, string, vector};
use super::plan;
use super::range_functions::{self, absent_labels};
use super::value::{Metric, Series, Val, drop_name};
use promql_parser::parser::{Call, Expr};
use regex::Regex;
use std::collections::HashMap;

/// Go's `math.Max`/`math.Min`: NaN wins (Rust's `f64::max` ignores it).
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

fn arg(call: &Call, i: usize) -> Result<&Expr, QueryError> {
    call.args.args.get(i).map(|a| a.as_ref()).ok_or_else(|| {
        QueryError::Execution(format!("{} is missing argument {}", call.func.name, i + 1))
    })
}

/// Applies `f(value, step)` to every value, dropping `__name__`.
fn map(mut series: Vec<Series>, f: impl Fn(f64, usize) -> f64) -> Vec<Series> {
    for s in &mut series {
        drop_name(&mut s.metric);
        for (step, slot) in s.values.iter_mut().enumerate() {
            if let Some(v) = slot {
                *v = f(*v, step);
            }
        }
    }
    series
}

pub(super) fn eval(ctx: &Ctx, call: &Call) -> Result<Val, QueryError> {
    let name = call.func.name;
    if range_functions::is_range_function(name) {
        return range_functions::eval(ctx, name, &call.args.args);
    }
    let times: Vec<f64> = ctx.times().map(|t| t as f64 / 1000.0).collect();
    let math = |f: fn(f64) -> f64| -> Result<Val, QueryError> {
        Ok(Val::Vector(map(vector(ctx, arg(call, 0)?)?, |v, _| f(v))))
    };
    Ok(match name {
        "abs" => math(f64::abs)?,
        "ceil" => math(f64::ceil)?,
        "floor" => math(f64::floor)?,
        "sqrt" => math(f64::sqrt)?,
        "exp" => math(f64::exp)?,
        "ln" => math(f64::ln)?,
        "log2" => math(f64::log2)?,
        "log10" => math(f64::log10)?,
        "sgn" => math(|v| {
            if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            }
        })?,
        "round" => {
            let series = vector(ctx, arg(call, 0)?)?;
            let to_nearest = match call.args.args.get(1) {
                Some(a) => scalar(ctx, a)?,
                None => vec![1.0; ctx.steps()],
            };
            Val::Vector(map(series, |v, i| {
                let inverse = 1.0 / to_nearest[i];
                (v * inverse + 0.5).floor() / inverse
            }))
        }
        "clamp" | "clamp_min" | "clamp_max" => clamp(ctx, call)?,
        "scalar" => {
            let series = vector(ctx, arg(call, 0)?)?;
            Val::Scalar(
                (0..ctx.steps())
                    .map(|i| {
                        let mut present = series.iter().filter_map(|s| s.values[i]);
                        match (present.next(), present.next()) {
                            (Some(v), None) => v,
                            _ => f64::NAN,
                        }
                    })
                    .collect(),
            )
        }
        "vector" => Val::Vector(vec![Series {
            metric: Metric::new(),
            values: scalar(ctx, arg(call, 0)?)?.into_iter().map(Some).collect(),
        }]),
        "time" => Val::Scalar(times),
        "timestamp" => {
            let mut inner = arg(call, 0)?;
            while let Expr::Paren(p) = inner {
                inner = &p.expr;
            }
            let series = match inner {
                // The sample's own time, not the step's.
                Expr::VectorSelector(vs) => plan::instant_selector(ctx, vs, true)?,
                other => map(vector(ctx, other)?, |_, i| times[i]),
            };
            Val::Vector(map(series, |v, _| v))
        }
        "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month" | "hour" | "minute"
        | "month" | "year" => {
            let series = match call.args.args.first() {
                Some(a) => vector(ctx, a)?,
                None => vec![Series {
                    metric: Metric::new(),
                    values: times.iter().copied().map(Some).collect(),
                }],
            };
            Val::Vector(map(series, |v, _| date_part(name, v)))
        }
        "sort" | "sort_desc" => {
            let mut series = vector(ctx, arg(call, 0)?)?;
            let last = |s: &Series| s.values.last().copied().flatten().unwrap_or(f64::NAN);
            series.sort_by(|a, b| {
                let (a, b) = (last(a), last(b));
                match (a.is_nan(), b.is_nan()) {
                    (true, _) | (_, true) => b.is_nan().cmp(&a.is_nan()),
                    _ if name == "sort" => a.total_cmp(&b),
                    _ => b.total_cmp(&a),
                }
            });
            Val::Vector(series)
        }
        "histogram_quantile" => {
            let phi = scalar(ctx, arg(call, 0)?)?;
            Val::Vector(histogram_quantile(&phi, vector(ctx, arg(call, 1)?)?))
        }
        "label_replace" => label_replace(ctx, call)?,
        "label_join" => label_join(ctx, call)?,
        "absent" => {
            let series = vector(ctx, arg(call, 0)?)?;
            let values: Vec<Option<f64>> = (0..ctx.steps())
                .map(|i| series.iter().all(|s| s.values[i].is_none()).then_some(1.0))
                .collect();
            if values.iter().all(Option::is_none) {
                Val::Vector(Vec::new())
            } else {
                Val::Vector(vec![Series {
                    metric: absent_labels(arg(call, 0)?),
                    values,
                }])
            }
        }
        other => return Err(QueryError::Unsupported(format!("function `{other}`"))),
    })
}

fn clamp(ctx: &Ctx, call: &Call) -> Result<Val, QueryError> {
    let series = vector(ctx, arg(call, 0)?)?;
    let steps = ctx.steps();
    let (min, max) = match call.func.name {
        "clamp" => (scalar(ctx, arg(call, 1)?)?, scalar(ctx, arg(call, 2)?)?),
        "clamp_min" => (scalar(ctx, arg(call, 1)?)?, vec![f64::INFINITY; steps]),
        _ => (vec![f64::NEG_INFINITY; steps], scalar(ctx, arg(call, 1)?)?),
    };
    let mut series = map(series, |v, i| go_max(min[i], go_min(max[i], v)));
    // `clamp` with max below min returns nothing at that step.
    for s in &mut series {
        for (i, slot) in s.values.iter_mut().enumerate() {
            if max[i] < min[i] {
                *slot = None;
            }
        }
    }
    series.retain(|s| s.values.iter().any(Option::is_some));
    Ok(Val::Vector(series))
}

/// A date function of Unix seconds, in UTC, over the proleptic Gregorian calendar without
/// bounds on the year (Go's `time`, which Prometheus uses, has none that matter: `year(vector(1e12))`
/// is 33658).
fn date_part(name: &str, seconds: f64) -> f64 {
    if !seconds.is_finite() {
        return f64::NAN;
    }
    // Truncated toward zero, as Go's int64(v).
    let seconds = seconds as i64;
    let days = seconds.div_euclid(86_400);
    let of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let february = if leap { 29 } else { 28 };
    let month_days = [31, february, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    (match name {
        "day_of_month" => day,
        // 1970-01-01 was a Thursday; Sunday is 0.
        "day_of_week" => (days + 4).rem_euclid(7),
        "day_of_year" => month_days[..(month - 1) as usize].iter().sum::<i64>() + day,
        "days_in_month" => month_days[(month - 1) as usize],
        "hour" => of_day / 3600,
        "minute" => of_day % 3600 / 60,
        "month" => month,
        _ => year,
    }) as f64
}

/// Year, month (1–12) and day (1–31) of a count of days since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Classic-bucket `histogram_quantile`, as Prometheus' `bucketQuantile`: buckets grouped by
/// their labels without `le`, merged when bounds repeat, made monotonic, and interpolated
/// linearly inside the bucket the rank falls in.
fn histogram_quantile(phi: &[f64], series: Vec<Series>) -> Vec<Series> {
    let mut groups: Vec<(Metric, Vec<(f64, usize)>)> = Vec::new();
    let mut index: HashMap<Metric, usize> = HashMap::new();
    for (i, s) in series.iter().enumerate() {
        let Some(upper) = s.metric.get("le").map(String::as_str).and_then(parse_bound) else {
            continue;
        };
        let mut key = s.metric.clone();
        key.remove("le");
        drop_name(&mut key);
        let g = *index.entry(key.clone()).or_insert_with(|| {
            groups.push((key, Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push((upper, i));
    }
    groups
        .into_iter()
        .map(|(metric, members)| {
            let values = phi
                .iter()
                .enumerate()
                .map(|(step, &q)| {
                    let mut buckets: Vec<(f64, f64)> = members
                        .iter()
                        .filter_map(|&(upper, i)| Some((upper, series[i].values[step]?)))
                        .collect();
                    (!buckets.is_empty()).then(|| bucket_quantile(q, &mut buckets))
                })
                .collect();
            Series { metric, values }
        })
        .filter(|s| s.values.iter().any(Option::is_some))
        .collect()
}

fn parse_bound(le: &str) -> Option<f64> {
    match le {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        other => other.parse().ok(),
    }
}

fn bucket_quantile(q: f64, buckets: &mut Vec<(f64, f64)>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    if buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
        return f64::NAN;
    }
    buckets.dedup_by(|later, kept| {
        let same = later.0 == kept.0;
        if same {
            kept.1 += later.1;
        }
        same
    });
    let mut max = f64::NEG_INFINITY;
    for b in buckets.iter_mut() {
        max = max.max(b.1);
        b.1 = max;
    }
    if buckets.len() < 2 {
        return f64::NAN;
    }
    let observations = buckets[buckets.len() - 1].1;
    if observations == 0.0 {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let b = buckets[..buckets.len() - 1].partition_point(|b| b.1 < rank);
    if b == buckets.len() - 1 {
        return buckets[buckets.len() - 2].0;
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return buckets[0].0;
    }
    let (mut start, end, mut count) = (0.0, buckets[b].0, buckets[b].1);
    if b > 0 {
        start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    start + (end - start) * (rank / count)
}

fn label_name_arg(ctx: &Ctx, call: &Call, i: usize) -> Result<String, QueryError> {
    let name = string(ctx, arg(call, i)?)?;
    hcmon_common::labels::validate_label_name(&name).map_err(|e| {
        QueryError::Execution(format!(
            "invalid label name {name:?} in {}(): {e}",
            call.func.name
        ))
    })?;
    Ok(name)
}

/// Sets or (when empty) removes `label` on every series; the evaluator merges series that end
/// up alike, or refuses them where they overlap.
fn relabel(
    mut series: Vec<Series>,
    f: impl Fn(&Metric) -> Option<String>,
    label: &str,
) -> Vec<Series> {
    for s in &mut series {
        if let Some(value) = f(&s.metric) {
            if value.is_empty() {
                s.metric.remove(label);
            } else {
                s.metric.insert(label.to_owned(), value);
            }
        }
    }
    series
}

fn label_replace(ctx: &Ctx, call: &Call) -> Result<Val, QueryError> {
    let series = vector(ctx, arg(call, 0)?)?;
    let dst = label_name_arg(ctx, call, 1)?;
    let replacement = string(ctx, arg(call, 2)?)?;
    let src = string(ctx, arg(call, 3)?)?;
    let pattern = string(ctx, arg(call, 4)?)?;
    let regex = Regex::new(&format!("^(?s:{pattern})$")).map_err(|e| {
        QueryError::Execution(format!(
            "invalid regular expression in label_replace(): {pattern}: {e}"
        ))
    })?;
    Ok(Val::Vector(relabel(
        series,
        |metric| {
            let value = metric.get(&src).map_or("", String::as_str);
            let captures = regex.captures(value)?;
            let mut out = String::new();
            captures.expand(&replacement, &mut out);
            Some(out)
        },
        &dst,
    )))
}

fn label_join(ctx: &Ctx, call: &Call) -> Result<Val, QueryError> {
    let series = vector(ctx, arg(call, 0)?)?;
    let dst = label_name_arg(ctx, call, 1)?;
    let separator = string(ctx, arg(call, 2)?)?;
    let sources = (3..call.args.args.len())
        .map(|i| label_name_arg(ctx, call, i))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Val::Vector(relabel(
        series,
        |metric| {
            let values: Vec<&str> = sources
                .iter()
                .map(|s| metric.get(s).map_or("", String::as_str))
                .collect();
            Some(values.join(&separator))
        },
        &dst,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_quantiles_interpolate_inside_the_bucket() {
        let mut buckets = vec![(0.1, 10.0), (0.5, 30.0), (f64::INFINITY, 40.0), (1.0, 40.0)];
        // Rank 20 of 40 falls in (0.1, 0.5]: halfway through its 20 observations.
        assert!((bucket_quantile(0.5, &mut buckets.clone()) - 0.3).abs() < 1e-12);
        // The top rank lands in +Inf: the highest finite bound answers.
        assert_eq!(bucket_quantile(1.0, &mut buckets), 1.0);
        assert!(
            bucket_quantile(0.5, &mut vec![(1.0, 3.0)]).is_nan(),
            "no +Inf bucket"
        );
        assert_eq!(bucket_quantile(-1.0, &mut vec![]), f64::NEG_INFINITY);
    }

    #[test]
    fn go_min_max_keep_nan() {
        assert!(go_max(f64::NAN, 1.0).is_nan() && go_min(1.0, f64::NAN).is_nan());
        assert_eq!(
            date_part("day_of_week", 0.0),
            4.0,
            "1970-01-01 was a Thursday"
        );
        assert_eq!(date_part("days_in_month", 2_678_400.0), 28.0, "1970-02-01");
        // 2024-02-29 23:59:59, a leap day, and the second before 1970.
        let leap = 1_709_251_199.0;
        for (part, expected) in [
            ("year", 2024.0),
            ("month", 2.0),
            ("day_of_month", 29.0),
            ("day_of_year", 60.0),
            ("hour", 23.0),
            ("minute", 59.0),
        ] {
            assert_eq!(date_part(part, leap), expected, "{part}");
        }
        assert_eq!(date_part("year", -1.0), 1969.0);
        assert_eq!(date_part("day_of_week", -1.0), 3.0);
        assert_eq!(date_part("year", 1e12), 33_658.0);
    }
}

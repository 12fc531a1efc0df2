//! Reading a selector's data: from the coarsest rollup whose buckets answer exactly what was
//! asked, or else from raw samples, with rollups standing in for `rate`/`increase` where raw
//! retention has deleted the samples.

use super::context::Ctx;
use super::value::{Metric, RangeInput, Samples, Series, drop_name, is_stale};
use super::{LOOKBACK_MS, QueryError, Source};
use crate::storage::{Aggregate, Resolution, SeriesMeta};
use hcmon_common::{MatchOp, Matcher, Selector};
use promql_parser::label::{MatchOp as PromOp, Matcher as PromMatcher};
use promql_parser::parser::{MatrixSelector, VectorSelector};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The coarsest rollup usable at this start and step (and range, for range functions): all
/// must be whole multiples of its resolution, so every step ends on a bucket boundary.
pub(super) fn pick_resolution(start: i64, step: i64, range: Option<i64>) -> Option<Resolution> {
    Resolution::ALL.into_iter().rev().find(|r| {
        let m = r.millis();
        step >= m
            && step % m == 0
            && start % m == 0
            && range.is_none_or(|range| range >= m && range % m == 0)
    })
}

fn matcher(m: &PromMatcher) -> Result<Matcher, QueryError> {
    let op = match m.op {
        PromOp::Equal => MatchOp::Equal,
        PromOp::NotEqual => MatchOp::NotEqual,
        PromOp::Re(_) => MatchOp::Regex,
        PromOp::NotRe(_) => MatchOp::NotRegex,
    };
    Ok(Matcher::new(&m.name, op, &m.value)?)
}

/// The series a selector names; `{a="1" or b="2"}` is the union of its alternatives.
fn select(ctx: &Ctx, vs: &VectorSelector) -> Result<Vec<Arc<SeriesMeta>>, QueryError> {
    let name = match &vs.name {
        Some(name) => vec![Matcher::new(
            hcmon_common::METRIC_NAME_LABEL,
            MatchOp::Equal,
            name,
        )?],
        None => Vec::new(),
    };
    let groups: Vec<&Vec<PromMatcher>> = if vs.matchers.or_matchers.is_empty() {
        vec![&vs.matchers.matchers]
    } else {
        vs.matchers.or_matchers.iter().collect()
    };
    let mut out: BTreeMap<_, Arc<SeriesMeta>> = BTreeMap::new();
    for group in groups {
        let mut matchers = name.clone();
        for m in group {
            matchers.push(matcher(m)?);
        }
        for meta in ctx.source.select(&Selector { matchers }) {
            out.entry(meta.id).or_insert(meta);
        }
    }
    Ok(out.into_values().collect())
}

fn metric(meta: &SeriesMeta) -> Metric {
    meta.labels
        .iter()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

/// Each step's evaluation time for a selector: its `@` time or the step, less its offset.
fn ends(ctx: &Ctx, vs: &VectorSelector) -> Vec<i64> {
    let offset = ctx.offset_ms(vs.offset.as_ref());
    let at = ctx.at_ms(vs.at.as_ref());
    ctx.times().map(|t| at.unwrap_or(t) - offset).collect()
}

/// An instant vector selector at each step: the newest sample in `(t - 5m, t]`, unless it is a
/// staleness marker. With `timestamps`, the value is the sample's time in seconds
/// (`timestamp(x)`).
///
/// At times aligned to 5 min or 1 h buckets (see [`pick_resolution`]), a series whose buckets
/// there all know their [`Edges`](crate::storage::rollup::Edges) answers from them, exactly as
/// from raw samples (see [`from_edges`]): 30 days at a 1 h step read 720 buckets, not 259,200
/// samples. Otherwise raw samples answer wherever raw retention still holds them, and at
/// aligned times a step whose lookback reaches before the series' oldest raw sample read takes
/// the newest rollup bucket before it instead, if that bucket's newest sample is inside the
/// lookback: what raw retention deleted, the rollups still hold.
pub(super) fn instant_selector(
    ctx: &Ctx,
    vs: &VectorSelector,
    timestamps: bool,
) -> Result<Vec<Series>, QueryError> {
    let ends = ends(ctx, vs);
    let offset = ctx.offset_ms(vs.offset.as_ref());
    let resolution = match vs.at {
        None if !timestamps && ctx.rollups => pick_resolution(ctx.start - offset, ctx.step, None),
        _ => None,
    };
    let (lo, hi) = bounds(&ends);
    let from = lo - LOOKBACK_MS + 1;
    let mut out = Vec::new();
    let (mut used_raw, mut used_rollup) = (false, false);
    let edged = resolution.filter(|r| {
        r.keeps_edges() && r.millis() >= LOOKBACK_MS && ctx.source.rollups_hold_raw(*r)
    });
    for meta in select(ctx, vs)? {
        if let Some(r) = edged
            && let Some(values) = from_edges(ctx, &meta, r, &ends)?
        {
            used_rollup = true;
            if values.iter().any(Option::is_some) {
                out.push(Series {
                    metric: metric(&meta),
                    values,
                });
            }
            continue;
        }
        let samples = ctx.source.raw(&meta, from, hi)?;
        ctx.charge(samples.len())?;
        used_raw |= !samples.is_empty();
        let mut values: Vec<Option<f64>> = ends
            .iter()
            .map(|&t| {
                let at = samples.partition_point(|s| s.0 <= t).checked_sub(1)?;
                let (ts, v) = samples[at];
                (t - ts < LOOKBACK_MS && !is_stale(v)).then_some(if timestamps {
                    ts as f64 / 1000.0
                } else {
                    v
                })
            })
            .collect();
        // Where raw begins after the first lookback starts, older steps may find in the
        // rollups what raw retention deleted (or nothing, for a series that began then).
        let raw_from = samples.first().map_or(i64::MAX, |s| s.0);
        if let Some(r) = resolution
            && raw_from > from
        {
            let last = (hi - 1).min(raw_from.saturating_add(LOOKBACK_MS));
            let buckets =
                ctx.source
                    .rollup(meta.id, r, r.bucket(lo - LOOKBACK_MS), r.bucket(last))?;
            ctx.charge(buckets.len())?;
            for (slot, &t) in values.iter_mut().zip(&ends) {
                if slot.is_some() || t - LOOKBACK_MS >= raw_from {
                    continue;
                }
                // Buckets end on aligned times, so those starting before `t` end by `t`.
                let before = buckets.partition_point(|b| b.0 < t);
                let Some((_, newest)) = buckets[..before].last() else {
                    continue;
                };
                if t - newest.last_ts < LOOKBACK_MS && newest.last_ts < raw_from {
                    *slot = Some(newest.last);
                    used_rollup = true;
                }
            }
        }
        if values.iter().any(Option::is_some) {
            out.push(Series {
                metric: metric(&meta),
                values,
            });
        }
    }
    if let (true, Some(r)) = (used_rollup, resolution) {
        ctx.used(Source::Rollup(r));
    }
    if used_raw || !used_rollup {
        ctx.used(Source::Raw);
    }
    Ok(out)
}

/// An instant selector's values at bucket boundaries `ends` of `res` (of 5 min or more, so the
/// bucket ending at a step covers its whole lookback), from the buckets' edges; `None` if a
/// bucket it needs does not know them. At `t`: the sample exactly at `t` (the edge of the
/// bucket starting there), else the newest sample of the bucket ending at `t` if it is inside
/// the lookback and no staleness marker ended the series by `t`.
fn from_edges(
    ctx: &Ctx,
    meta: &SeriesMeta,
    res: Resolution,
    ends: &[i64],
) -> Result<Option<Vec<Option<f64>>>, QueryError> {
    let (lo, hi) = bounds(ends);
    let buckets = ctx
        .source
        .rollup(meta.id, res, lo.saturating_sub(res.millis()), hi)?;
    ctx.charge(buckets.len())?;
    if buckets.iter().any(|(_, agg)| agg.edges.is_none()) {
        return Ok(None);
    }
    let find = |bucket: i64| {
        let (_, agg) = &buckets[buckets.binary_search_by_key(&bucket, |b| b.0).ok()?];
        Some((agg, agg.edges?))
    };
    Ok(Some(
        ends.iter()
            .map(|&t| {
                if let Some(v) = find(t).and_then(|(_, e)| e.at_start) {
                    return Some(v);
                }
                let (before, e) = find(t - res.millis())?;
                (t - before.last_ts < LOOKBACK_MS && e.ended_at.is_none_or(|end| end > t))
                    .then_some(before.last)
            })
            .collect(),
    ))
}

fn bounds(ends: &[i64]) -> (i64, i64) {
    let lo = ends.iter().copied().min().unwrap_or(0);
    let hi = ends.iter().copied().max().unwrap_or(0);
    (lo, hi)
}

/// A range vector selector's raw samples (staleness markers left out), labels kept.
pub(super) fn range_selector(ctx: &Ctx, ms: &MatrixSelector) -> Result<RangeInput, QueryError> {
    let ends = ends(ctx, &ms.vs);
    let range = ms.range.as_millis() as i64;
    let (lo, hi) = bounds(&ends);
    let mut series = Vec::new();
    for meta in select(ctx, &ms.vs)? {
        let mut points = ctx.source.raw(&meta, lo - range + 1, hi)?;
        ctx.charge(points.len())?;
        points.retain(|p| !is_stale(p.1));
        if !points.is_empty() {
            series.push(Samples {
                metric: metric(&meta),
                points,
            });
        }
    }
    ctx.used(Source::Raw);
    Ok(RangeInput {
        series,
        ends,
        range,
    })
}

/// Range functions whose value over merged rollup buckets equals their value over the samples.
const FROM_AGGREGATES: &[&str] = &[
    "avg_over_time",
    "min_over_time",
    "max_over_time",
    "sum_over_time",
    "count_over_time",
    "last_over_time",
    "present_over_time",
];

fn from_aggregate(function: &str, agg: &Aggregate) -> f64 {
    match function {
        "avg_over_time" => agg.avg(),
        "min_over_time" => agg.min,
        "max_over_time" => agg.max,
        "sum_over_time" => agg.sum,
        "count_over_time" => agg.count as f64,
        "last_over_time" => agg.last,
        _ => 1.0,
    }
}

/// The rollup resolution a function over `ms` may read: the coarsest that divides the
/// evaluation start (less the offset), the step and the range; none with `@` or rollups off.
fn range_resolution(ctx: &Ctx, ms: &MatrixSelector) -> Option<Resolution> {
    if ms.vs.at.is_some() || !ctx.rollups {
        return None;
    }
    let offset = ctx.offset_ms(ms.vs.offset.as_ref());
    pick_resolution(
        ctx.start - offset,
        ctx.step,
        Some(ms.range.as_millis() as i64),
    )
}

/// `function(selector[range])` from the coarsest rollup that fits, or `None` when raw samples
/// must answer (a function rollups cannot answer exactly, `@`, or unaligned times).
pub(super) fn rollup_range_function(
    ctx: &Ctx,
    function: &str,
    ms: &MatrixSelector,
) -> Result<Option<Vec<Series>>, QueryError> {
    let resolution = range_resolution(ctx, ms);
    let Some(r) = resolution.filter(|_| FROM_AGGREGATES.contains(&function)) else {
        return Ok(None);
    };
    let range = ms.range.as_millis() as i64;
    let ends = ends(ctx, &ms.vs);
    let (lo, hi) = bounds(&ends);
    let mut out = Vec::new();
    for meta in select(ctx, &ms.vs)? {
        let buckets = ctx
            .source
            .rollup(meta.id, r, r.bucket(lo - range), r.bucket(hi - 1))?;
        ctx.charge(buckets.len())?;
        let values: Vec<Option<f64>> = ends
            .iter()
            .map(|&t| {
                // Buckets wholly inside the window.
                let first = r.bucket(t - 1) - range + r.millis();
                let last = r.bucket(t - 1);
                let lo = buckets.partition_point(|b| b.0 < first);
                let hi = buckets.partition_point(|b| b.0 <= last);
                let mut window = buckets[lo..hi].iter().map(|b| b.1);
                let mut agg = window.next()?;
                window.for_each(|b| agg.merge(&b));
                Some(from_aggregate(function, &agg))
            })
            .collect();
        if values.iter().any(Option::is_some) {
            let mut metric = metric(&meta);
            if function != "last_over_time" {
                drop_name(&mut metric);
            }
            out.push(Series { metric, values });
        }
    }
    ctx.used(Source::Rollup(r));
    Ok(Some(out))
}

/// `rate`/`increase` over a selector: its raw samples, and where raw retention has deleted a
/// window's older samples, the counter increase the rollups recorded over that window.
pub(super) struct CounterInput {
    pub raw: RangeInput,
    /// Parallel to `raw.series`, one slot per step: the window's increase from rollups, or
    /// `None` where the raw samples answer.
    pub from_rollups: Vec<Vec<Option<f64>>>,
}

/// Reads `rate`/`increase`'s input with the rollup fallback described in the module header, or
/// `None` when the fallback cannot apply (another function, `@`, a subquery, unaligned times)
/// and [`range_selector`] alone answers.
pub(super) fn counter_selector(
    ctx: &Ctx,
    function: &str,
    ms: &MatrixSelector,
) -> Result<Option<CounterInput>, QueryError> {
    let resolution = range_resolution(ctx, ms);
    let Some(r) = resolution.filter(|_| matches!(function, "rate" | "increase")) else {
        return Ok(None);
    };
    let range = ms.range.as_millis() as i64;
    let ends = ends(ctx, &ms.vs);
    let (lo, hi) = bounds(&ends);
    let mut series = Vec::new();
    let mut from_rollups = Vec::new();
    let (mut used_raw, mut used_rollup) = (false, false);
    for meta in select(ctx, &ms.vs)? {
        // From the first window's start itself, so a sample exactly there shows raw covers it.
        let mut points = ctx.source.raw(&meta, lo - range, hi)?;
        ctx.charge(points.len())?;
        points.retain(|p| !is_stale(p.1));
        // The bucket the raw samples begin in; a rollup bucket before it summarises samples raw
        // retention has deleted.
        let raw_from = points.first().map_or(i64::MAX, |p| r.bucket(p.0));
        let mut increases = vec![None; ends.len()];
        if raw_from > lo - range {
            // Only windows starting before `raw_from` fall back, and they end before
            // `raw_from + range`.
            let last = r
                .bucket(hi - 1)
                .min(raw_from.saturating_add(range - r.millis()));
            let buckets = ctx.source.rollup(meta.id, r, lo - range, last)?;
            ctx.charge(buckets.len())?;
            for (slot, &t) in increases.iter_mut().zip(&ends) {
                // The buckets `[t - range, t)`: aligned, so wholly inside the window.
                let first = buckets.partition_point(|b| b.0 < t - range);
                let end = buckets.partition_point(|b| b.0 < t);
                let window = &buckets[first..end];
                if window.first().is_some_and(|b| b.0 < raw_from) {
                    *slot = Some(window.iter().map(|b| b.1.increase).sum());
                }
            }
        }
        let rolled_up = increases.iter().any(Option::is_some);
        used_raw |= !points.is_empty();
        used_rollup |= rolled_up;
        if !points.is_empty() || rolled_up {
            series.push(Samples {
                metric: metric(&meta),
                points,
            });
            from_rollups.push(increases);
        }
    }
    if used_rollup {
        ctx.used(Source::Rollup(r));
    }
    if used_raw || !used_rollup {
        ctx.used(Source::Raw);
    }
    Ok(Some(CounterInput {
        raw: RangeInput {
            series,
            ends,
            range,
        },
        from_rollups,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_coarsest_rollup_that_divides_start_step_and_range() {
        let hour = 3_600_000;
        assert_eq!(pick_resolution(0, hour, None), Some(Resolution::OneHour));
        assert_eq!(
            pick_resolution(0, hour, Some(300_000)),
            Some(Resolution::FiveMinutes)
        );
        assert_eq!(
            pick_resolution(60_000, hour, None),
            Some(Resolution::OneMinute)
        );
        assert_eq!(pick_resolution(0, 30_000, None), None);
        assert_eq!(pick_resolution(1, hour, None), None);
    }
}

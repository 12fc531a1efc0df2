//! Range queries: a PromQL subset evaluated over raw samples or rollups.
//!
//! Supported:
//! - selectors: `name{label="v",other=~"re"}`, valued at each step like Prometheus (the newest
//!   sample within the lookback);
//! - range functions over a selector: `rate`, `increase`, `avg_over_time`, `min_over_time`,
//!   `max_over_time`, `sum_over_time`, `count_over_time`, `last_over_time` (`f(sel[5m])`);
//! - aggregations across series: `sum`, `avg`, `min`, `max`, `count`, `quantile(φ, …)`, with
//!   `by (…)` or `without (…)`, nestable.
//!
//! Range functions aggregate the window `[t - range, t)` (Prometheus uses `(t - range, t]`; the
//! half-open form matches rollup buckets, so raw and rollup evaluation agree).
//!
//! Resolution: a query whose start and step are multiples of a rollup resolution (and, for range
//! functions, whose range is too) reads the coarsest such rollup instead of raw samples, so 30 days at
//! a 1 h step reads 720 aggregates per series rather than 259,200 samples. `rate`/`increase` use
//! the counter increase each bucket records (resets counted), which equals what raw evaluation
//! gives: the growth from the last sample before the window to the last inside it.

use crate::catalog::SeriesCatalog;
use crate::storage::{Aggregate, Resolution, SeriesId, SeriesMeta, StoreError, Tsdb};
use hcmon_common::{Labels, Selector, SelectorError};
use std::collections::BTreeMap;
use std::sync::Arc;

/// How far back a step looks for a sample, as Prometheus' default `lookback-delta`.
pub const LOOKBACK_MS: i64 = 5 * 60 * 1000;

/// Prometheus' cap on points per series in one range query.
pub const MAX_POINTS: i64 = 11_000;

/// Where the evaluator gets its data.
pub trait SeriesSource {
    fn select(&self, selector: &Selector) -> Vec<Arc<SeriesMeta>>;
    fn raw(&self, series: SeriesId, start: i64, end: i64) -> Result<Vec<(i64, f64)>, StoreError>;
    fn rollup(
        &self,
        series: SeriesId,
        res: Resolution,
        start: i64,
        end: i64,
    ) -> Result<Vec<(i64, Aggregate)>, StoreError>;
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
    fn raw(&self, id: SeriesId, start: i64, end: i64) -> Result<Vec<(i64, f64)>, StoreError> {
        self.tsdb.read_raw(id, start, end)
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeFn {
    Rate,
    Increase,
    Avg,
    Min,
    Max,
    Sum,
    Count,
    Last,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AggOp {
    Sum,
    Avg,
    Min,
    Max,
    Count,
    Quantile(f64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grouping {
    By(Vec<String>),
    Without(Vec<String>),
}

#[derive(Debug, Clone)]
pub enum Expr {
    Selector(Selector),
    Range {
        func: RangeFn,
        selector: Selector,
        range_ms: i64,
    },
    Aggregate {
        op: AggOp,
        grouping: Grouping,
        inner: Box<Expr>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("{0}")]
    Selector(#[from] SelectorError),
    #[error("query {query:?}: {message} at position {position}")]
    Syntax {
        query: String,
        position: usize,
        message: String,
    },
    #[error("storage failure")]
    Store(#[from] StoreError),
}

/// One result series: labels (with `__name__` unless aggregated away) and its points.
pub type SeriesResult = (BTreeMap<String, String>, Vec<(i64, f64)>);

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

// ---------------------------------------------------------------- parsing

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, message: impl Into<String>) -> QueryError {
        QueryError::Syntax {
            query: self.text.to_owned(),
            position: self.pos,
            message: message.into(),
        }
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.rest().chars().next().filter(|c| c.is_whitespace()) {
            self.pos += c.len_utf8();
        }
    }

    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    fn eat(&mut self, token: char) -> bool {
        self.skip_ws();
        if self.rest().starts_with(token) {
            self.pos += token.len_utf8();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: char) -> Result<(), QueryError> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(self.error(format!("expected '{token}'")))
        }
    }

    fn peek_ident(&mut self) -> &str {
        self.skip_ws();
        let rest = self.rest();
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(rest.len());
        &rest[..len]
    }

    fn ident(&mut self) -> Result<String, QueryError> {
        let ident = self.peek_ident().to_owned();
        if ident.is_empty() {
            return Err(self.error("expected a name"));
        }
        self.pos += ident.len();
        Ok(ident)
    }

    fn grouping(&mut self) -> Result<Option<Grouping>, QueryError> {
        let word = self.peek_ident().to_owned();
        if word != "by" && word != "without" {
            return Ok(None);
        }
        self.pos += word.len();
        self.expect('(')?;
        let mut labels = Vec::new();
        if !self.eat(')') {
            loop {
                labels.push(self.ident()?);
                if self.eat(')') {
                    break;
                }
                self.expect(',')?;
            }
        }
        Ok(Some(if word == "by" {
            Grouping::By(labels)
        } else {
            Grouping::Without(labels)
        }))
    }

    /// A selector's text: an optional name, then an optional `{…}` with quoted strings.
    fn selector(&mut self) -> Result<Selector, QueryError> {
        self.skip_ws();
        let start = self.pos;
        let name = self.peek_ident().len();
        self.pos += name;
        self.skip_ws();
        if self.rest().starts_with('{') {
            let mut quote: Option<char> = None;
            let mut escaped = false;
            let mut closed = false;
            for (i, c) in self.rest().char_indices() {
                match (quote, c) {
                    (Some(_), _) if escaped => escaped = false,
                    (Some(q), '\\') if q != '`' => escaped = true,
                    (Some(q), c) if c == q => quote = None,
                    (Some(_), _) => {}
                    (None, '"' | '\'' | '`') => quote = Some(c),
                    (None, '}') => {
                        self.pos += i + 1;
                        closed = true;
                        break;
                    }
                    (None, _) => {}
                }
            }
            if !closed {
                return Err(self.error("unterminated '{'"));
            }
        }
        Ok(Selector::parse(&self.text[start..self.pos])?)
    }

    fn duration(&mut self) -> Result<i64, QueryError> {
        self.skip_ws();
        let len = self
            .rest()
            .find(']')
            .ok_or_else(|| self.error("expected ']'"))?;
        let text = self.rest()[..len].trim().to_owned();
        let ms = humantime::parse_duration(&text)
            .ok()
            .and_then(|d| i64::try_from(d.as_millis()).ok())
            .filter(|ms| *ms > 0)
            .ok_or_else(|| self.error(format!("{text:?} is not a duration like 5m")))?;
        self.pos += len + 1;
        Ok(ms)
    }

    fn expr(&mut self) -> Result<Expr, QueryError> {
        let word = self.peek_ident().to_owned();
        let range_fn = match word.as_str() {
            "rate" => Some(RangeFn::Rate),
            "increase" => Some(RangeFn::Increase),
            "avg_over_time" => Some(RangeFn::Avg),
            "min_over_time" => Some(RangeFn::Min),
            "max_over_time" => Some(RangeFn::Max),
            "sum_over_time" => Some(RangeFn::Sum),
            "count_over_time" => Some(RangeFn::Count),
            "last_over_time" => Some(RangeFn::Last),
            _ => None,
        };
        let agg = match word.as_str() {
            "sum" => Some(AggOp::Sum),
            "avg" => Some(AggOp::Avg),
            "min" => Some(AggOp::Min),
            "max" => Some(AggOp::Max),
            "count" => Some(AggOp::Count),
            "quantile" => Some(AggOp::Quantile(0.0)),
            _ => None,
        };
        let after_word = self.pos + word.len();
        let call_follows = {
            let rest = self.text[after_word..].trim_start();
            rest.starts_with('(') || rest.starts_with("by") || rest.starts_with("without")
        };
        if let (Some(func), true) = (range_fn, call_follows) {
            self.pos = after_word;
            self.expect('(')?;
            let selector = self.selector()?;
            self.expect('[')?;
            let range_ms = self.duration()?;
            self.expect(')')?;
            return Ok(Expr::Range {
                func,
                selector,
                range_ms,
            });
        }
        if let (Some(mut op), true) = (agg, call_follows) {
            self.pos = after_word;
            let mut grouping = self.grouping()?;
            self.expect('(')?;
            if let AggOp::Quantile(_) = op {
                self.skip_ws();
                let len = self
                    .rest()
                    .find(',')
                    .ok_or_else(|| self.error("quantile needs (φ, expression)"))?;
                let phi: f64 = self.rest()[..len]
                    .trim()
                    .parse()
                    .map_err(|_| self.error("quantile's first argument must be a number"))?;
                if !(0.0..=1.0).contains(&phi) {
                    return Err(self.error("quantile must be between 0 and 1"));
                }
                self.pos += len + 1;
                op = AggOp::Quantile(phi);
            }
            let inner = self.expr()?;
            self.expect(')')?;
            if grouping.is_none() {
                grouping = self.grouping()?;
            }
            let grouping = grouping.unwrap_or(Grouping::By(Vec::new()));
            return Ok(Expr::Aggregate {
                op,
                grouping,
                inner: Box::new(inner),
            });
        }
        Ok(Expr::Selector(self.selector()?))
    }
}

/// Parses a query.
pub fn parse(text: &str) -> Result<Expr, QueryError> {
    let mut p = Parser { text, pos: 0 };
    let expr = p.expr()?;
    p.skip_ws();
    if !p.rest().is_empty() {
        return Err(p.error("unexpected trailing input"));
    }
    Ok(expr)
}

// ---------------------------------------------------------------- evaluation

/// The steps `start, start+step, … ≤ end`.
fn steps(start: i64, end: i64, step: i64) -> impl Iterator<Item = i64> {
    (0..)
        .map(move |i| start + i * step)
        .take_while(move |t| *t <= end)
}

/// Evaluates one series at each step (all ms). `samples` must be sorted by timestamp and cover
/// `[start - LOOKBACK_MS, end]`.
pub fn evaluate_steps(samples: &[(i64, f64)], start: i64, end: i64, step: i64) -> Vec<(i64, f64)> {
    assert!(step > 0, "step is validated by the caller");
    let mut out = Vec::new();
    let mut next = 0; // index of the first sample after the current step time
    for t in steps(start, end, step) {
        while next < samples.len() && samples[next].0 <= t {
            next += 1;
        }
        if next > 0 {
            let (ts, value) = samples[next - 1];
            if t - ts <= LOOKBACK_MS {
                out.push((t, value));
            }
        }
    }
    out
}

fn range_value(func: RangeFn, agg: &Aggregate, range_ms: i64) -> f64 {
    match func {
        RangeFn::Rate => agg.increase / (range_ms as f64 / 1000.0),
        RangeFn::Increase => agg.increase,
        RangeFn::Avg => agg.avg(),
        RangeFn::Min => agg.min,
        RangeFn::Max => agg.max,
        RangeFn::Sum => agg.sum,
        RangeFn::Count => agg.count as f64,
        RangeFn::Last => agg.last,
    }
}

/// The coarsest rollup usable at this start and step (and range, for range functions): all
/// must be whole multiples of its resolution, so every step ends on a bucket boundary.
fn pick_resolution(start: i64, step: i64, range: Option<i64>) -> Option<Resolution> {
    Resolution::ALL.into_iter().rev().find(|r| {
        let m = r.millis();
        step >= m
            && step % m == 0
            && start % m == 0
            && range.is_none_or(|range| range >= m && range % m == 0)
    })
}

fn labels_map(labels: &Labels, keep_name: bool) -> BTreeMap<String, String> {
    labels
        .iter()
        .filter(|(n, _)| keep_name || *n != hcmon_common::METRIC_NAME_LABEL)
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

/// Evaluates `expr` at `start..=end` every `step` (ms). Returns the series and the resolution
/// the data came from.
pub fn evaluate(
    source: &dyn SeriesSource,
    expr: &Expr,
    start: i64,
    end: i64,
    step: i64,
) -> Result<(Vec<SeriesResult>, Source), QueryError> {
    match expr {
        Expr::Selector(selector) => {
            let res = pick_resolution(start, step, None);
            let mut out = Vec::new();
            for meta in source.select(selector) {
                let points = match res {
                    None => evaluate_steps(
                        &source.raw(meta.id, start - LOOKBACK_MS, end)?,
                        start,
                        end,
                        step,
                    ),
                    Some(r) => {
                        // At each step, the newest value of the bucket that ends at it.
                        let buckets =
                            source.rollup(meta.id, r, r.bucket(start - 1), r.bucket(end - 1))?;
                        let by_start: BTreeMap<i64, Aggregate> = buckets.into_iter().collect();
                        steps(start, end, step)
                            .filter_map(|t| by_start.get(&r.bucket(t - 1)).map(|a| (t, a.last)))
                            .collect()
                    }
                };
                if !points.is_empty() {
                    out.push((labels_map(&meta.labels, true), points));
                }
            }
            Ok((out, res.map_or(Source::Raw, Source::Rollup)))
        }
        Expr::Range {
            func,
            selector,
            range_ms,
        } => {
            let res = pick_resolution(start, step, Some(*range_ms));
            let mut out = Vec::new();
            for meta in source.select(selector) {
                let mut points = Vec::new();
                match res {
                    None => {
                        let samples = source.raw(meta.id, start - range_ms - LOOKBACK_MS, end)?;
                        // The window is [t - range, t), as rollup buckets are [start, end), so
                        // both sources answer alike.
                        for t in steps(start, end, step) {
                            let lo = samples.partition_point(|s| s.0 < t - range_ms);
                            let hi = samples.partition_point(|s| s.0 < t);
                            let prev = lo
                                .checked_sub(1)
                                .map(|i| samples[i])
                                .filter(|p| t - range_ms - p.0 <= LOOKBACK_MS);
                            if let Some(agg) = Aggregate::of(&samples[lo..hi], prev.map(|p| p.1)) {
                                points.push((t, range_value(*func, &agg, *range_ms)));
                            }
                        }
                    }
                    Some(r) => {
                        let buckets = source.rollup(
                            meta.id,
                            r,
                            r.bucket(start - range_ms),
                            r.bucket(end - 1),
                        )?;
                        for t in steps(start, end, step) {
                            // Buckets wholly inside (t - range, t].
                            let first = r.bucket(t - 1) - range_ms + r.millis();
                            let last = r.bucket(t - 1);
                            let lo = buckets.partition_point(|b| b.0 < first);
                            let hi = buckets.partition_point(|b| b.0 <= last);
                            let mut window = buckets[lo..hi].iter().map(|b| b.1);
                            if let Some(mut agg) = window.next() {
                                window.for_each(|b| agg.merge(&b));
                                points.push((t, range_value(*func, &agg, *range_ms)));
                            }
                        }
                    }
                }
                if !points.is_empty() {
                    out.push((labels_map(&meta.labels, false), points));
                }
            }
            Ok((out, res.map_or(Source::Raw, Source::Rollup)))
        }
        Expr::Aggregate {
            op,
            grouping,
            inner,
        } => {
            let (series, source_used) = evaluate(source, inner, start, end, step)?;
            let mut groups: BTreeMap<BTreeMap<String, String>, BTreeMap<i64, Vec<f64>>> =
                BTreeMap::new();
            for (labels, points) in series {
                let key: BTreeMap<String, String> = match grouping {
                    Grouping::By(keep) => labels
                        .into_iter()
                        .filter(|(n, _)| keep.contains(n))
                        .collect(),
                    Grouping::Without(drop) => labels
                        .into_iter()
                        .filter(|(n, _)| n != hcmon_common::METRIC_NAME_LABEL && !drop.contains(n))
                        .collect(),
                };
                let group = groups.entry(key).or_default();
                for (t, v) in points {
                    group.entry(t).or_default().push(v);
                }
            }
            let out = groups
                .into_iter()
                .map(|(labels, by_time)| {
                    let points = by_time
                        .into_iter()
                        .map(|(t, mut values)| (t, aggregate(*op, &mut values)))
                        .collect();
                    (labels, points)
                })
                .collect();
            Ok((out, source_used))
        }
    }
}

fn aggregate(op: AggOp, values: &mut [f64]) -> f64 {
    let n = values.len() as f64;
    match op {
        AggOp::Sum => values.iter().sum(),
        AggOp::Avg => values.iter().sum::<f64>() / n,
        AggOp::Min => values.iter().copied().fold(f64::INFINITY, f64::min),
        AggOp::Max => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        AggOp::Count => n,
        AggOp::Quantile(phi) => {
            // Prometheus' quantile: linear interpolation between closest ranks.
            values.sort_by(f64::total_cmp);
            let rank = phi * (n - 1.0);
            let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
            let weight = rank - rank.floor();
            values[lo] * (1.0 - weight) + values[hi] * weight
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{SeriesCatalog, SeriesDefinition};
    use crate::storage::{MemoryKv, MetricKind, Sample, StorageConfig, Tsdb};

    fn check_steps(
        samples: &[(i64, f64)],
        start: i64,
        end: i64,
        step: i64,
        expected: &[(i64, f64)],
    ) {
        assert_eq!(evaluate_steps(samples, start, end, step), expected);
    }

    #[test]
    fn selector_steps_pick_latest_sample_within_lookback() {
        check_steps(&[], 0, 100, 10, &[]);
        check_steps(
            &[(5, 1.0), (15, 2.0)],
            0,
            30,
            10,
            &[(10, 1.0), (20, 2.0), (30, 2.0)],
        );
        check_steps(&[(10, 1.0)], 10, 10, 10, &[(10, 1.0)]);
        let stale = LOOKBACK_MS + 1;
        check_steps(&[(0, 1.0)], stale - 1, stale, 1, &[(stale - 1, 1.0)]);
    }

    #[test]
    fn parses_the_supported_subset_and_refuses_the_rest() {
        for ok in [
            "cpu",
            r#"cpu{node="a", mode=~"user|system"}"#,
            "rate(net_bytes_total[5m])",
            r#"sum by (node) (rate(net_bytes_total{iface!="lo"}[1m]))"#,
            "avg(cpu) without (cpu)",
            "quantile(0.9, max_over_time(latency[1h]))",
            "count(up)",
        ] {
            parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in [
            "rate(x)",
            "rate(x[5])",
            "sum(",
            "quantile(2, x)",
            "cpu +",
            "sum by node (x)",
            "x{a=\"1\"",
        ] {
            assert!(parse(bad).is_err(), "{bad} should fail");
        }
    }

    const T0: i64 = 1_699_920_000_000; // a UTC midnight

    /// Two nodes' counters rising 10/s and 20/s, and a gauge, every 10 s for 3 hours.
    fn fixture() -> StoreSource {
        let tsdb = Tsdb::open(Box::new(MemoryKv::default()), StorageConfig::default())
            .unwrap()
            .tsdb;
        let catalog = SeriesCatalog::new(vec![]);
        let def = |name: &str, node: &str, kind| SeriesDefinition {
            labels: Labels::new(name, [("node".to_owned(), node.to_owned())]).unwrap(),
            kind,
            help: String::new(),
        };
        let ids = catalog
            .resolve(
                &tsdb,
                &[
                    def("bytes_total", "a", MetricKind::Counter),
                    def("bytes_total", "b", MetricKind::Counter),
                    def("temp", "a", MetricKind::Gauge),
                ],
                crate::catalog::SeriesCaps {
                    per_node: usize::MAX,
                    total: usize::MAX,
                },
            )
            .unwrap();
        for i in 0..1080i64 {
            let t = T0 + i * 10_000;
            tsdb.append(
                None,
                &[
                    Sample {
                        series: ids[0],
                        timestamp_ms: t,
                        value: (i * 100) as f64,
                    },
                    Sample {
                        series: ids[1],
                        timestamp_ms: t,
                        value: (i * 200) as f64,
                    },
                    Sample {
                        series: ids[2],
                        timestamp_ms: t,
                        value: (i % 6) as f64,
                    },
                ],
            )
            .unwrap();
        }
        StoreSource {
            tsdb: Arc::new(tsdb),
            catalog: Arc::new(catalog),
        }
    }

    fn run(
        f: &StoreSource,
        q: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> (Vec<SeriesResult>, Source) {
        evaluate(f, &parse(q).unwrap(), start, end, step).unwrap()
    }

    #[test]
    fn rate_is_the_same_from_raw_and_from_rollups() {
        let f = fixture();
        let (t1, t2) = (T0 + 3_600_000, T0 + 2 * 3_600_000);
        let (raw, src) = run(&f, r#"rate(bytes_total{node="a"}[5m])"#, t1, t2, 60_000);
        assert_eq!(src, Source::Rollup(Resolution::OneMinute));
        let (fine, src) = run(&f, r#"rate(bytes_total{node="a"}[5m])"#, t1, t2, 30_000);
        assert_eq!(src, Source::Raw);
        for (t, v) in &raw[0].1 {
            assert!((v - 10.0).abs() < 1e-9, "rollup rate at {t}: {v}");
        }
        for (t, v) in &fine[0].1 {
            assert!((v - 10.0).abs() < 1e-9, "raw rate at {t}: {v}");
        }
        let (hourly, src) = run(&f, "sum(rate(bytes_total[1h]))", t2, t2, 3_600_000);
        assert_eq!(src, Source::Rollup(Resolution::OneHour));
        assert_eq!(hourly[0].1, vec![(t2, 30.0)]);
        assert!(hourly[0].0.is_empty(), "aggregated away every label");
    }

    #[test]
    fn aggregations_and_over_time_functions() {
        let f = fixture();
        let t = T0 + 3_600_000;
        let (by_node, _) = run(&f, "max by (node) (bytes_total)", t, t, 10_000);
        assert_eq!(by_node.len(), 2);
        assert_eq!(by_node[1].0.get("node").map(String::as_str), Some("b"));
        assert_eq!(by_node[1].1, vec![(t, 72_000.0)]);
        let (q, _) = run(&f, "quantile(0.5, bytes_total)", t, t, 10_000);
        assert_eq!(q[0].1, vec![(t, 54_000.0)]);
        let (avg, src) = run(&f, "avg_over_time(temp[5m])", t, t, 300_000);
        assert_eq!(src, Source::Rollup(Resolution::FiveMinutes));
        assert_eq!(avg[0].1, vec![(t, 2.5)]);
        let (count, src) = run(&f, "count_over_time(temp[1m])", t, t, 10_000);
        assert_eq!(src, Source::Raw);
        assert_eq!(count[0].1, vec![(t, 6.0)]);
    }
}

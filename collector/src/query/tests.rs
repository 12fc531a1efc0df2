//! The evaluator end to end, over an in-memory store: what a query answers, as Prometheus would.

use super::*;
use crate::catalog::{SeriesCatalog, SeriesDefinition};
use crate::storage::{MemoryKv, MetricKind, Sample, StorageConfig, Tsdb};
use hcmon_common::Labels;

const T0: i64 = 1_699_920_000_000; // a UTC midnight
const HOUR: i64 = 3_600_000;

/// Every 10 s for 3 hours: two nodes' counters rising 10/s and 20/s, a gauge cycling 0..5, an
/// info series per node, and a histogram's buckets (10 ≤ 0.1, 30 ≤ 0.5, 40 in all).
fn fixture() -> StoreSource {
    let tsdb = Tsdb::open(Box::new(MemoryKv::default()), StorageConfig::default())
        .unwrap()
        .tsdb;
    let catalog = SeriesCatalog::new(vec![]);
    let def = |name: &str, labels: &[(&str, &str)], kind| SeriesDefinition {
        labels: Labels::new(
            name,
            labels.iter().map(|(n, v)| (n.to_string(), v.to_string())),
        )
        .unwrap(),
        kind,
        help: String::new(),
    };
    let ids = catalog
        .resolve(
            &tsdb,
            &[
                def("bytes_total", &[("node", "a")], MetricKind::Counter),
                def("bytes_total", &[("node", "b")], MetricKind::Counter),
                def("temp", &[("node", "a")], MetricKind::Gauge),
                def("info", &[("node", "a"), ("role", "db")], MetricKind::Gauge),
                def("info", &[("node", "b"), ("role", "web")], MetricKind::Gauge),
                def("req_bucket", &[("le", "0.1")], MetricKind::Counter),
                def("req_bucket", &[("le", "0.5")], MetricKind::Counter),
                def("req_bucket", &[("le", "+Inf")], MetricKind::Counter),
            ],
            crate::catalog::SeriesCaps {
                per_node: usize::MAX,
                total: usize::MAX,
            },
        )
        .unwrap();
    for i in 0..1080i64 {
        let values = [
            (i * 100) as f64,
            (i * 200) as f64,
            (i % 6) as f64,
            1.0,
            1.0,
            10.0,
            30.0,
            40.0,
        ];
        let samples: Vec<Sample> = ids
            .iter()
            .zip(values)
            .map(|(&series, value)| Sample {
                series,
                timestamp_ms: T0 + i * 10_000,
                value,
            })
            .collect();
        tsdb.append(None, &samples).unwrap();
    }
    StoreSource {
        tsdb: Arc::new(tsdb),
        catalog: Arc::new(catalog),
    }
}

fn run(f: &dyn SeriesSource, q: &str, start: i64, end: i64, step: i64) -> (Value, Source) {
    let expr = parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
    evaluate(f, &expr, start, end, step).unwrap_or_else(|e| panic!("{q}: {e}"))
}

/// An instant query's samples, by labels.
fn at(f: &dyn SeriesSource, q: &str, t: i64) -> Vec<(Metric, f64)> {
    run(f, q, t, t, 1).0.into_samples()
}

fn metric(pairs: &[(&str, &str)]) -> Metric {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn close(actual: f64, expected: f64) -> bool {
    (actual - expected).abs() < 1e-9
}

#[test]
fn parses_promql_and_refuses_nonsense_with_the_parsers_message() {
    for ok in [
        "cpu",
        r#"cpu{node="a", mode=~"user|system"}"#,
        "rate(net_bytes_total[5m])",
        "x[300s]",
        r#"sum by (node) (rate(net_bytes_total{iface!="lo"}[1m]))"#,
        "avg(cpu) without (cpu)",
        "1 + 1",
        "x offset -5m @ end()",
        "max_over_time(rate(x[1m])[10m:30s])",
    ] {
        parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
    for bad in ["rate(x)", "sum(", "cpu +", "sum by node (x)", "x{a=\"1\""] {
        let error = parse(bad).unwrap_err();
        assert!(matches!(error, QueryError::Syntax { .. }), "{bad}: {error}");
    }
}

#[test]
fn rollups_answer_only_what_their_aggregates_give_exactly() {
    let f = fixture();
    let (t1, t2) = (T0 + HOUR, T0 + 2 * HOUR);
    let (max, src) = run(
        &f,
        r#"max_over_time(bytes_total{node="a"}[5m])"#,
        t1,
        t2,
        60_000,
    );
    assert_eq!(src, Source::Rollup(Resolution::OneMinute));
    let Value::Vector(max) = max else { panic!() };
    assert_eq!(
        max[0].1[0],
        (t1, 35_900.0),
        "the bucket [t-5m, t) ends one sample early"
    );
    for step in [60_000, 30_000] {
        let (rate, src) = run(&f, r#"rate(bytes_total{node="a"}[5m])"#, t1, t2, step);
        assert_eq!(src, Source::Raw, "rate extrapolates: raw samples only");
        let Value::Vector(rate) = rate else { panic!() };
        assert!(rate[0].1.iter().all(|(_, v)| close(*v, 10.0)), "{rate:?}");
        assert!(!rate[0].0.contains_key("__name__"));
    }
    let sum = at(&f, "sum(rate(bytes_total[1h]))", t2);
    assert_eq!(sum.len(), 1);
    assert!(sum[0].0.is_empty() && close(sum[0].1, 30.0), "{sum:?}");
    let (avg, src) = run(&f, "avg_over_time(temp[5m])", t1, t1, 300_000);
    assert_eq!(src, Source::Rollup(Resolution::FiveMinutes));
    assert_eq!(avg.into_samples()[0].1, 2.5);
}

/// The fixture with raw samples before `raw_from` gone, as raw retention leaves a store whose
/// rollups still reach further back.
struct RawTrimmed {
    store: StoreSource,
    raw_from: i64,
}

impl SeriesSource for RawTrimmed {
    fn select(&self, selector: &Selector) -> Vec<Arc<SeriesMeta>> {
        self.store.select(selector)
    }
    fn raw(&self, meta: &SeriesMeta, start: i64, end: i64) -> Result<Vec<(i64, f64)>, QueryError> {
        self.store.raw(meta, start.max(self.raw_from), end)
    }
    fn rollup(
        &self,
        id: SeriesId,
        res: Resolution,
        start: i64,
        end: i64,
    ) -> Result<Vec<(i64, Aggregate)>, StoreError> {
        self.store.rollup(id, res, start, end)
    }
    fn rollups_hold_raw(&self, res: Resolution) -> bool {
        self.store.rollups_hold_raw(res)
    }
}

#[test]
fn rate_older_than_raw_retention_answers_from_rollups() {
    let q = r#"rate(bytes_total{node="a"}[1h])"#;
    let steps = |value: Value| {
        let Value::Vector(series) = value else {
            panic!("{value:?}")
        };
        assert_eq!(series.len(), 1);
        assert!(!series[0].0.contains_key("__name__"));
        series[0].1.clone()
    };
    // With all raw samples kept, every step is raw: 10/s, extrapolated to the window's edges.
    let (full, src) = run(&fixture(), q, T0 + HOUR, T0 + 3 * HOUR, HOUR);
    assert_eq!(src, Source::Raw);
    let full = steps(full);
    assert_eq!(full.len(), 3);
    assert!(full.iter().all(|(_, v)| close(*v, 10.0)), "{full:?}");

    let raw_from = T0 + 2 * HOUR + 30_000;
    let trimmed = RawTrimmed {
        store: fixture(),
        raw_from,
    };
    let (rate, _) = run(&trimmed, q, T0 + HOUR, T0 + 3 * HOUR, HOUR);
    let rate = steps(rate);
    // [T0, T0 + 1h): the 1 h bucket's increase, 359 steps of 100 (nothing before the first).
    assert_eq!(rate[0].0, T0 + HOUR);
    assert!(close(rate[0].1, 35_900.0 / 3600.0), "{rate:?}");
    // [T0 + 1h, T0 + 2h): 360 steps of 100, the one from the sample before the bucket included;
    // raw holds nothing there at all.
    assert_eq!(rate[1].0, T0 + 2 * HOUR);
    assert!(close(rate[1].1, 10.0), "{rate:?}");
    // (T0 + 2h, T0 + 3h]: raw starts 30 s late but inside the window's first bucket, so raw
    // answers, extrapolating 35,600 over 3,560 s by 5 s at the start and 10 s at the end.
    assert_eq!(rate[2].0, T0 + 3 * HOUR);
    assert!(close(rate[2].1, 35_750.0 / 3600.0), "{rate:?}");

    // An instant query at an aligned time with an aligned step falls back the same way.
    let q = r#"increase(bytes_total{node="a"}[2h])"#;
    let increase = run(&trimmed, q, T0 + 2 * HOUR, T0 + 2 * HOUR, HOUR)
        .0
        .into_samples();
    assert!(close(increase[0].1, 71_900.0), "{increase:?}");
    let q = r#"rate(bytes_total{node="a"}[1h])"#;
    let (_, src) = run(&trimmed, q, T0 + HOUR, T0 + 2 * HOUR, HOUR);
    assert_eq!(src, Source::Rollup(Resolution::OneHour));
    // A 30 min step falls back to the 5 min rollup, whose buckets sum to the same increase.
    let (rate, src) = run(&trimmed, q, T0 + HOUR, T0 + HOUR, 1_800_000);
    assert_eq!(src, Source::Rollup(Resolution::FiveMinutes));
    assert!(close(rate.into_samples()[0].1, 35_900.0 / 3600.0));
    // Unaligned steps cannot use rollups: the deleted past stays empty.
    let (rate, src) = run(&trimmed, q, T0 + HOUR, T0 + HOUR + 90_000, 90_000);
    assert_eq!(src, Source::Raw);
    assert_eq!(rate, Value::Vector(Vec::new()));
}

#[test]
fn selectors_aggregations_and_windows() {
    let f = fixture();
    let t = T0 + HOUR;
    let by_node = at(&f, "max by (node) (bytes_total)", t);
    assert_eq!(by_node[1], (metric(&[("node", "b")]), 72_000.0));
    assert_eq!(at(&f, "quantile(0.5, bytes_total)", t)[0].1, 54_000.0);
    // (t - 1m, t]: six samples, the one at t - 1m left out.
    assert_eq!(at(&f, "count_over_time(temp[1m])", t)[0].1, 6.0);
    assert_eq!(at(&f, "stddev(bytes_total)", t)[0].1, 18_000.0);
    assert_eq!(
        at(&f, "count_values(\"v\", info)", t)[0],
        (metric(&[("v", "1")]), 2.0)
    );
    assert_eq!(at(&f, "group without (node) (info)", t).len(), 2);
    // The lookback: a series shows for under 5 min after its last sample.
    let last = T0 + 1079 * 10_000;
    assert_eq!(at(&f, "temp", last + 299_000).len(), 1);
    assert!(at(&f, "temp", last + 300_000).is_empty());
    // Instant query of a range vector: the window's raw samples.
    let (matrix, _) = run(&f, r#"bytes_total{node="a"}[300s]"#, t, t, 1);
    let Value::Matrix(matrix) = matrix else {
        panic!("{matrix:?}")
    };
    assert_eq!(matrix[0].1.len(), 30);
    assert_eq!(matrix[0].1.last(), Some(&(t, 36_000.0)));
}

#[test]
fn literals_and_arithmetic() {
    let f = fixture();
    let t = T0 + HOUR;
    assert_eq!(run(&f, "1+1", t, t, 1).0, Value::Scalar(vec![(t, 2.0)]));
    assert_eq!(
        run(&f, "2 * 3 ^ 2", t, t, 1).0,
        Value::Scalar(vec![(t, 18.0)])
    );
    assert_eq!(run(&f, "\"hi\"", t, t, 1).0, Value::String(t, "hi".into()));
    let neg = at(&f, r#"-bytes_total{node="a"} + 1"#, t);
    assert_eq!(neg, vec![(metric(&[("node", "a")]), -35_999.0)]);
    let filtered = at(&f, "bytes_total > 40000", t);
    assert_eq!(
        filtered[0].0["__name__"], "bytes_total",
        "comparison keeps the name"
    );
    assert_eq!(filtered.len(), 1);
    let flags = at(&f, "bytes_total > bool 40000", t);
    assert_eq!(
        flags.iter().map(|s| s.1).collect::<Vec<_>>(),
        vec![0.0, 1.0]
    );
    assert!(!flags[0].0.contains_key("__name__"));
    assert_eq!(
        at(&f, "1 < bytes_total", t)[0].1,
        36_000.0,
        "a filter keeps the vector's value"
    );
    assert_eq!(at(&f, "scalar(temp) * 2", t)[0].1, 0.0);
}

#[test]
fn vector_matching() {
    let f = fixture();
    let t = T0 + HOUR;
    let joined = at(&f, "bytes_total * on(node) group_left(role) info", t);
    assert_eq!(
        joined,
        vec![
            (metric(&[("node", "a"), ("role", "db")]), 36_000.0),
            (metric(&[("node", "b"), ("role", "web")]), 72_000.0),
        ]
    );
    let right = at(&f, "info * on(node) group_right bytes_total", t);
    assert_eq!(right[0].0, metric(&[("node", "a")]));
    let only_db = at(&f, r#"bytes_total and on(node) info{role="db"}"#, t);
    assert_eq!(only_db.len(), 1);
    assert_eq!(only_db[0].0["node"], "a");
    assert_eq!(
        at(&f, r#"bytes_total unless on(node) info{role="db"}"#, t)[0].0["node"],
        "b"
    );
    assert_eq!(
        at(&f, r#"temp or bytes_total"#, t).len(),
        2,
        "node a is in temp already"
    );
    assert!(
        at(&f, "bytes_total / info", t).is_empty(),
        "info's role label keeps them apart"
    );
    assert_eq!(at(&f, "bytes_total / ignoring(role) info", t).len(), 2);
    let error = evaluate(&f, &parse("bytes_total + on() info").unwrap(), t, t, 1)
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("found duplicate series for the match group {} on the right hand-side"),
        "{error}"
    );
    let error = evaluate(
        &f,
        &parse(r#"{__name__=~"bytes_total|temp"} + on(node) group_left info"#).unwrap(),
        t,
        t,
        1,
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("grouping labels must ensure unique matches"),
        "{error}"
    );
}

#[test]
fn topk_histogram_quantile_and_labels() {
    let f = fixture();
    let t = T0 + HOUR;
    let top = at(&f, "topk(1, bytes_total)", t);
    assert_eq!(
        top,
        vec![(
            metric(&[("__name__", "bytes_total"), ("node", "b")]),
            72_000.0
        )]
    );
    assert_eq!(at(&f, "bottomk(1, bytes_total)", t)[0].0["node"], "a");
    let sorted = at(&f, "sort_desc(bytes_total)", t);
    assert_eq!(sorted[0].0["node"], "b");
    let q = at(&f, "histogram_quantile(0.5, req_bucket)", t);
    assert_eq!(q.len(), 1);
    assert!(q[0].0.is_empty() && close(q[0].1, 0.3), "{q:?}");
    let replaced = at(
        &f,
        r#"label_replace(temp, "host", "h-$1", "node", "(.*)")"#,
        t,
    );
    assert_eq!(replaced[0].0["host"], "h-a");
    assert_eq!(replaced[0].0["__name__"], "temp");
    let joined = at(&f, r#"label_join(info, "id", "/", "node", "role")"#, t);
    assert_eq!(joined[0].0["id"], "a/db");
    assert_eq!(at(&f, "clamp_max(bytes_total, 50000)", t)[1].1, 50_000.0);
    assert_eq!(at(&f, "timestamp(temp)", t)[0].1, t as f64 / 1000.0);
    assert_eq!(at(&f, "day_of_week(vector(0))", t)[0].1, 4.0);
}

#[test]
fn absent_offset_at_and_subqueries() {
    let f = fixture();
    let t = T0 + HOUR;
    assert_eq!(
        at(&f, r#"absent(nope{node="x"})"#, t),
        vec![(metric(&[("node", "x")]), 1.0)]
    );
    assert!(at(&f, "absent(bytes_total)", t).is_empty());
    assert_eq!(at(&f, r#"absent_over_time(nope[5m])"#, t)[0].1, 1.0);
    let sel = r#"bytes_total{node="a"}"#;
    assert_eq!(at(&f, &format!("{sel} offset 10m"), t)[0].1, 30_000.0);
    assert_eq!(at(&f, &format!("{sel} offset -10m"), t)[0].1, 42_000.0);
    let pinned = format!("{sel} @ {}", (T0 + 600_000) / 1000);
    assert_eq!(at(&f, &pinned, t)[0].1, 6_000.0);
    // predict_linear predicts from the evaluation time, wherever offset or @ put the window.
    for moved in ["offset 10m", "@ 1699920600"] {
        let predicted = at(&f, &format!("predict_linear({sel}[5m] {moved}, 60)"), t);
        assert!(close(predicted[0].1, 36_600.0), "{moved}: {predicted:?}");
    }
    let (start, _) = run(&f, &format!("{sel} @ start()"), t, t + 600_000, 60_000);
    let Value::Vector(start) = start else {
        panic!()
    };
    assert!(start[0].1.iter().all(|p| p.1 == 36_000.0), "{start:?}");
    // Subquery steps are multiples of 1 m: (t - 10m, t] holds t - 9m … t.
    assert_eq!(
        at(&f, &format!("max_over_time({sel}[10m:1m])"), t)[0].1,
        36_000.0
    );
    assert_eq!(
        at(&f, &format!("count_over_time({sel}[10m:1m])"), t)[0].1,
        10.0
    );
    let rate = at(&f, &format!("rate({sel}[5m:1m])"), t);
    assert!(close(rate[0].1, 10.0), "{rate:?}");
}

#[test]
fn series_made_alike_merge_where_apart_and_are_refused_where_they_overlap() {
    let f = fixture();
    let t = T0 + HOUR;
    let expr = |q: &str| parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
    // Both `bytes_total` series become alike at the same step; `-bytes_total` loses the name
    // but keeps the nodes apart.
    for alike in [
        r#"label_replace(bytes_total, "node", "x", "node", ".*")"#,
        r#"label_join(bytes_total, "node", "", "nope")"#,
        r#"-{__name__=~"bytes_total|temp", node="a"}"#,
        r#"{__name__=~"bytes_total|temp", node="a"} * 2"#,
        r#"rate({__name__=~"bytes_total|temp", node="a"}[5m])"#,
    ] {
        let error = evaluate(&f, &expr(alike), t, t, 1).unwrap_err();
        assert_eq!(
            error.to_string(),
            "vector cannot contain metrics with the same labelset",
            "{alike}"
        );
    }
    assert_eq!(at(&f, "-bytes_total", t).len(), 2);
    // Node a's counter below 36,000 (before T0 + 1 h) and node b's above 72,000 (after it),
    // made alike: one series, with a gap just after T0 + 1 h where neither passes. (Steps 5 s
    // off the minute, so raw samples answer.)
    let apart = r#"label_replace(bytes_total{node="a"} < 36000 or bytes_total{node="b"} > 72000, "node", "x", "node", ".*")"#;
    let (start, end) = (t - HOUR / 2 + 5_000, t + HOUR / 2 + 5_000);
    let (value, _) = run(&f, apart, start, end, 600_000);
    let Value::Vector(series) = value else {
        panic!("{value:?}")
    };
    assert_eq!(series.len(), 1, "{series:?}");
    let times: Vec<i64> = series[0].1.iter().map(|p| p.0).collect();
    assert_eq!(times.len(), 6, "{times:?}");
    assert!(!times.contains(&(t + 5_000)), "{times:?}");
}

#[test]
fn a_query_loading_too_much_is_refused() {
    let f = fixture();
    let t = T0 + HOUR;
    let expr = parse("bytes_total[1h]").unwrap();
    let error = evaluate_limited(&f, &expr, t, t, 1, 100).unwrap_err();
    assert_eq!(
        error.to_string(),
        "query processing would load too many samples into memory in query execution"
    );
    assert!(evaluate_limited(&f, &expr, t, t, 1, 1000).is_ok());
}

/// The fixture with no raw samples and no rollup buckets in `[gap.0, gap.1)`, as a target that
/// was down for a while leaves them.
struct Gapped {
    store: StoreSource,
    gap: (i64, i64),
}

impl SeriesSource for Gapped {
    fn select(&self, selector: &Selector) -> Vec<Arc<SeriesMeta>> {
        self.store.select(selector)
    }
    fn raw(&self, meta: &SeriesMeta, start: i64, end: i64) -> Result<Vec<(i64, f64)>, QueryError> {
        let mut raw = self.store.raw(meta, start, end)?;
        raw.retain(|s| !(self.gap.0..self.gap.1).contains(&s.0));
        Ok(raw)
    }
    fn rollup(
        &self,
        id: SeriesId,
        res: Resolution,
        start: i64,
        end: i64,
    ) -> Result<Vec<(i64, Aggregate)>, StoreError> {
        let mut buckets = self.store.rollup(id, res, start, end)?;
        buckets.retain(|b| !(self.gap.0..self.gap.1).contains(&b.1.last_ts));
        Ok(buckets)
    }
    fn rollups_hold_raw(&self, res: Resolution) -> bool {
        self.store.rollups_hold_raw(res)
    }
}

#[test]
fn instant_selectors_at_aligned_steps_look_back_five_minutes() {
    let t = T0 + HOUR;
    let gapped = Gapped {
        store: fixture(),
        gap: (t, t + 3 * 60_000),
    };
    let (value, src) = run(&gapped, r#"temp{node="a"}"#, t, t + 10 * 60_000, 60_000);
    assert_eq!(src, Source::Raw);
    let Value::Vector(series) = value else {
        panic!("{value:?}")
    };
    // Every step has a value: inside the 3 min gap, the newest sample before it.
    assert_eq!(series[0].1.len(), 11, "{series:?}");
    for &(step, v) in &series[0].1 {
        assert_eq!(v, at(&gapped, r#"temp{node="a"}"#, step)[0].1, "{step}");
    }

    // Older than raw retention, at 1 h steps the buckets' edges answer exactly as the samples
    // raw retention deleted would: those at T0 + 1h and T0 + 2h (indices 360 and 720: 0), then
    // the newest before T0 + 3h (1079: 5).
    let trimmed = RawTrimmed {
        store: fixture(),
        raw_from: T0 + 2 * HOUR + 30_000,
    };
    let hours = |source: &dyn SeriesSource| {
        run(source, r#"temp{node="a"}"#, T0 + HOUR, T0 + 3 * HOUR, HOUR)
    };
    let (value, src) = hours(&trimmed);
    assert_eq!(src, Source::Rollup(Resolution::OneHour));
    assert_eq!(value, hours(&fixture()).0, "as from every raw sample");
    let Value::Vector(series) = value else {
        panic!("{value:?}")
    };
    assert_eq!(
        series[0].1,
        vec![(T0 + HOUR, 0.0), (T0 + 2 * HOUR, 0.0), (T0 + 3 * HOUR, 5.0)]
    );

    // 1 min buckets keep no edges: at 1 min steps, where raw retention deleted the samples, the
    // newest bucket before the step answers if its newest sample is inside the lookback (the
    // sample 10 s before T0 + 1h, index 359: 5; the one at T0 + 1h is in the next bucket).
    let (value, src) = run(
        &trimmed,
        r#"temp{node="a"}"#,
        T0 + HOUR,
        T0 + HOUR + 60_000,
        60_000,
    );
    assert_eq!(src, Source::Rollup(Resolution::OneMinute));
    let Value::Vector(series) = value else {
        panic!("{value:?}")
    };
    assert_eq!(
        series[0].1,
        vec![(T0 + HOUR, 5.0), (T0 + HOUR + 60_000, 5.0)]
    );
}

/// The store read as raw samples only, as an instant selector must answer from edges.
struct RawOnly(StoreSource);

impl SeriesSource for RawOnly {
    fn select(&self, selector: &Selector) -> Vec<Arc<SeriesMeta>> {
        self.0.select(selector)
    }
    fn raw(&self, meta: &SeriesMeta, start: i64, end: i64) -> Result<Vec<(i64, f64)>, QueryError> {
        self.0.raw(meta, start, end)
    }
    fn rollup(
        &self,
        id: SeriesId,
        res: Resolution,
        start: i64,
        end: i64,
    ) -> Result<Vec<(i64, Aggregate)>, StoreError> {
        self.0.rollup(id, res, start, end)
    }
    fn rollups_hold_raw(&self, _: Resolution) -> bool {
        false
    }
}

/// Six hours of one gauge as real targets send it, drawn from `seed`: samples on bucket
/// boundaries and off them, gaps, staleness markers (some exactly on a boundary), retries of the
/// newest sample, late samples when `late`, and checkpoints between, so buckets are read from
/// the head, from the waiting list and from stored blocks.
fn ragged_gauge(seed: u64, late: bool) -> StoreSource {
    let mut rng = fastrand::Rng::with_seed(seed);
    let tsdb = Tsdb::open(Box::new(MemoryKv::default()), StorageConfig::default())
        .unwrap()
        .tsdb;
    let catalog = SeriesCatalog::new(vec![]);
    let definition = SeriesDefinition {
        labels: Labels::new("g", [("node".to_owned(), "a".to_owned())]).unwrap(),
        kind: MetricKind::Gauge,
        help: String::new(),
    };
    let caps = crate::catalog::SeriesCaps {
        per_node: usize::MAX,
        total: usize::MAX,
    };
    let id = catalog.resolve(&tsdb, &[definition], caps).unwrap()[0];
    let put = |ts: i64, value: f64| {
        let sample = Sample {
            series: id,
            timestamp_ms: ts,
            value,
        };
        tsdb.append(None, &[sample]).unwrap();
    };
    let mut t = T0;
    let mut newest = None;
    while t < T0 + 6 * HOUR {
        match rng.u32(0..100) {
            0..3 => t += rng.i64(1..40) * 60_000,
            3..6 => {
                put(t, crate::storage::STALE_MARKER);
                newest = Some(t);
                t += rng.i64(1..1200) * 1000;
            }
            6..8 => {
                if let Some(ts) = newest {
                    put(ts, rng.f64());
                }
            }
            8..10 if late => {
                if let Some(ts) = newest {
                    put(ts - rng.i64(1..600_000), rng.f64());
                }
            }
            10..12 => {
                tsdb.checkpoint(rng.bool()).unwrap();
            }
            12..16 => {
                // On to the next 5 min or 1 h boundary, where the edges matter.
                let to = if rng.bool() { 300_000 } else { HOUR };
                t = (t / to + 1) * to;
            }
            _ => {
                put(t, (rng.f64() * 1000.0).round() / 10.0);
                newest = Some(t);
                t += if rng.bool() {
                    10_000
                } else {
                    rng.i64(1..30_000)
                };
            }
        }
    }
    if late {
        // Recomputes what late samples changed.
        tsdb.checkpoint(false).unwrap();
    }
    StoreSource {
        tsdb: Arc::new(tsdb),
        catalog: Arc::new(catalog),
    }
}

/// At steps aligned to 5 min and 1 h buckets, an instant selector answers from the buckets'
/// edges exactly as from the raw samples, markers, retries and gaps included; a late sample
/// makes its series read raw until the checkpoint recomputes the buckets it changed, edges
/// included, from raw.
#[test]
fn instant_selectors_answer_from_bucket_edges_as_from_raw_samples() {
    let (mut from_edges, mut late_from_edges) = (0, 0);
    for seed in 0..40 {
        let late = seed % 4 == 3;
        let store = ragged_gauge(seed, late);
        for (step, query) in [
            (300_000, "g"),
            (HOUR, "g"),
            (HOUR, "g offset 5m"),
            (HOUR, "g offset 1h"),
        ] {
            let (end, start) = (T0 + 7 * HOUR, T0 + 300_000);
            let start = start - start % step;
            let (edges, source) = run(&store, query, start, end, step);
            let raw_only = RawOnly(StoreSource {
                tsdb: store.tsdb.clone(),
                catalog: store.catalog.clone(),
            });
            let (raw, raw_source) = run(&raw_only, query, start, end, step);
            assert_eq!(raw_source, Source::Raw);
            assert_eq!(edges, raw, "seed {seed}, {query} every {step} ms");
            from_edges += usize::from(source != Source::Raw);
            late_from_edges += usize::from(late && source != Source::Raw);
        }
    }
    assert!(
        from_edges >= 80,
        "edges answered {from_edges} of 160 queries"
    );
    assert!(
        late_from_edges >= 20,
        "edges answered {late_from_edges} of 40 queries after late samples"
    );
}

//! PromQL against the reference implementation: Debian's Prometheus (2.42) and a collector are
//! fed the same three hours of samples over remote write, then asked the same queries, instant
//! and range, and their answers compared series by series and point by point. A query either
//! matches or is listed in [`LISTED`] with its reason, and every listed one is explained in
//! `docs/promql-compatibility.md`.
//!
//! The data set is fixed by a seed and laid out relative to the current minute (the collector
//! refuses samples older than its retention): counters with resets, gauges, classic histograms,
//! an info metric, a series that stops an hour before the end, one with gaps, and one ended by a
//! staleness marker. Sample timestamps are jittered off whole seconds, so no sample lies on an
//! evaluation time or a window's edge: there Prometheus 2.42 (windows `[t - range, t]`) and
//! Prometheus 3, which hcmon follows (`(t - range, t]`), would disagree by design.

use hcmon_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
use hcmon_tests::{Collector, Prometheus, now_s, remote_write};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

/// The data set's seed: the same samples on every run.
const SEED: u64 = 0x0005_eed0_f00d;
/// The scrape interval the data imitates (ms).
const SCRAPE_MS: i64 = 15_000;
/// How much data there is (ms).
const SPAN_MS: i64 = 3 * 3600 * 1000;
const MINUTE: i64 = 60_000;
/// How much time one remote-write request covers (ms): Prometheus takes no sample an hour older
/// than its newest, so the data goes in oldest first.
const CHUNK_MS: i64 = 10 * MINUTE;
/// Queries in flight at once against each server.
const PARALLEL: usize = 6;

/// Prometheus' staleness marker.
const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// Every query compared, by kind. `{AT}` stands for a time inside the data (Unix seconds), for
/// the `@` modifier.
const QUERIES: &[(&str, &str)] = &[
    // Literals.
    ("literal", "1"),
    ("literal", "-2.5"),
    ("literal", "1e3 - 5"),
    ("literal", "0x1f"),
    ("literal", "NaN"),
    ("literal", "Inf"),
    ("literal", "-(3 - 5)"),
    ("literal", "\"hello\""),
    ("literal", "'single quoted'"),
    ("scalar arithmetic", "1 + 2 * 3"),
    ("scalar arithmetic", "2 ^ 3 ^ 2"),
    ("scalar arithmetic", "10 % 3"),
    ("scalar arithmetic", "7 / 0"),
    ("scalar comparison", "1 > bool 2"),
    ("scalar comparison", "1 == bool 1"),
    ("scalar comparison", "2 <= bool 1"),
    // Selectors.
    ("selector", "node_load1"),
    ("selector", "temperature_celsius{sensor=\"cpu\"}"),
    ("selector", "temperature_celsius{sensor=~\"c.*|g.*\"}"),
    (
        "selector",
        "temperature_celsius{sensor!=\"outdoor\", instance!~\"host-2.*\"}",
    ),
    ("selector", "http_requests_total{code=\"500\"}"),
    (
        "selector",
        "{__name__=\"node_load1\", instance=\"host-1:9100\"}",
    ),
    (
        "selector",
        "{__name__=~\"request_duration_seconds_(sum|count)\"}",
    ),
    ("selector", "queue_depth"),
    ("selector", "node_uname_info"),
    (
        "range selector",
        "http_requests_total{instance=\"host-1:9100\"}[5m]",
    ),
    ("range selector", "queue_depth[10m]"),
    // Arithmetic, with vector matching.
    ("arithmetic", "node_load1 * 2"),
    ("arithmetic", "2 - node_load1"),
    ("arithmetic", "node_load1 / 0"),
    ("arithmetic", "-node_load1"),
    ("arithmetic", "temperature_celsius % 7"),
    ("arithmetic", "temperature_celsius ^ 2"),
    ("arithmetic", "2 ^ node_load1"),
    ("arithmetic", "node_load1 + node_load1"),
    ("arithmetic", "node_load1 atan2 1"),
    (
        "arithmetic",
        "request_duration_seconds_sum / request_duration_seconds_count",
    ),
    (
        "arithmetic",
        "rate(request_duration_seconds_sum[5m]) / rate(request_duration_seconds_count[5m])",
    ),
    (
        "matching on/ignoring",
        "http_requests_total{code=\"500\"} / ignoring(code) http_requests_total{code=\"200\"}",
    ),
    (
        "matching on/ignoring",
        "sum by (instance) (rate(http_requests_total[5m])) / on(instance) node_load1",
    ),
    (
        "matching on/ignoring",
        "node_load1 + on(instance, job) node_uname_info",
    ),
    (
        "matching on/ignoring",
        "temperature_celsius{sensor=\"cpu\"} - on(instance) temperature_celsius{sensor=\"gpu\"}",
    ),
    (
        "matching on/ignoring",
        "temperature_celsius{sensor=\"cpu\"} - ignoring(sensor) temperature_celsius{sensor=\"outdoor\"}",
    ),
    (
        "group_left",
        "rate(http_requests_total[5m]) * on(instance) group_left(nodename) node_uname_info",
    ),
    (
        "group_left",
        "node_load1 * on(instance) group_left(nodename, release) node_uname_info",
    ),
    (
        "group_left",
        "rate(http_requests_total[5m]) / ignoring(method, code) group_left sum without (method, code) (rate(http_requests_total[5m]))",
    ),
    (
        "group_left",
        "temperature_celsius - on(instance) group_left avg by (instance) (temperature_celsius)",
    ),
    (
        "group_left",
        "sum by (code) (rate(http_requests_total[5m])) / ignoring(code) group_left sum(rate(http_requests_total[5m]))",
    ),
    (
        "group_right",
        "node_uname_info * on(instance) group_right(nodename) rate(http_requests_total[5m])",
    ),
    (
        "group_right",
        "avg by (instance) (temperature_celsius) - on(instance) group_right temperature_celsius",
    ),
    (
        "matching error",
        "http_requests_total + on(instance) node_load1",
    ),
    ("matching error", "node_load1 + on(job) node_load1"),
    // Comparisons, filtering and with `bool`.
    ("comparison", "node_load1 > 1"),
    ("comparison", "node_load1 > bool 1"),
    ("comparison", "1 < node_load1"),
    ("comparison", "1 < bool node_load1"),
    ("comparison", "temperature_celsius >= 50"),
    ("comparison", "temperature_celsius <= bool 0"),
    ("comparison", "queue_depth != 0"),
    ("comparison", "queue_depth == bool 0"),
    ("comparison", "node_load1 > node_load1 offset 5m"),
    ("comparison", "node_load1 > bool node_load1 offset 10m"),
    (
        "comparison",
        "http_requests_total{code=\"500\"} < ignoring(code) http_requests_total{code=\"200\"}",
    ),
    (
        "comparison",
        "temperature_celsius{sensor=\"cpu\"} > bool on(instance) temperature_celsius{sensor=\"gpu\"}",
    ),
    (
        "comparison",
        "rate(http_requests_total[5m]) > on(instance) group_left node_load1",
    ),
    ("comparison", "(node_load1 > 1) * 100"),
    // and / or / unless.
    ("set operator", "node_load1 and node_load1 > 1"),
    ("set operator", "node_load1 or temperature_celsius"),
    ("set operator", "node_load1 unless node_load1 > 2"),
    (
        "set operator",
        "node_load1 and on(instance) (temperature_celsius > 50)",
    ),
    (
        "set operator",
        "temperature_celsius unless on(instance) node_load1 > 2",
    ),
    (
        "set operator",
        "http_requests_total and on(instance) node_load1",
    ),
    ("set operator", "node_load1 or on(instance) node_uname_info"),
    (
        "set operator",
        "http_requests_total{code=\"500\"} unless ignoring(code) http_requests_total{code=\"500\"} > 2000",
    ),
    ("set operator", "vector(1) and on() (sum(node_load1) > 5)"),
    // offset and @.
    ("offset", "node_load1 offset 10m"),
    ("offset", "rate(http_requests_total[5m] offset 30m)"),
    ("offset", "node_load1 offset -5m"),
    ("offset", "sum(node_load1 offset 1h)"),
    ("@", "node_load1 @ {AT}"),
    ("@", "node_load1 @ start()"),
    ("@", "node_load1 @ end()"),
    ("@", "node_load1 @ {AT} offset 5m"),
    ("@", "sum_over_time(node_load1[10m] @ {AT})"),
    ("@", "rate(http_requests_total[5m] @ end())"),
    ("@", "max_over_time(temperature_celsius[1h] @ start())"),
    // *_over_time.
    ("over_time", "avg_over_time(node_load1[10m])"),
    ("over_time", "min_over_time(node_load1[10m])"),
    ("over_time", "max_over_time(node_load1[10m])"),
    ("over_time", "sum_over_time(temperature_celsius[30m])"),
    ("over_time", "count_over_time(http_requests_total[5m])"),
    ("over_time", "last_over_time(queue_depth[10m])"),
    ("over_time", "present_over_time(queue_depth[2m])"),
    ("over_time", "count_over_time(queue_depth[5m])"),
    ("over_time", "stddev_over_time(node_load1[30m])"),
    ("over_time", "stdvar_over_time(temperature_celsius[30m])"),
    ("over_time", "quantile_over_time(0.9, node_load1[15m])"),
    (
        "over_time",
        "quantile_over_time(0.5, temperature_celsius[15m])",
    ),
    ("over_time", "quantile_over_time(0, node_load1[5m])"),
    ("over_time", "quantile_over_time(1.5, node_load1[5m])"),
    (
        "over_time",
        "avg_over_time(temperature_celsius{sensor=\"outdoor\"}[1h])",
    ),
    ("over_time", "min_over_time(queue_depth[20m])"),
    // rate and friends.
    ("rate", "rate(http_requests_total[5m])"),
    ("rate", "rate(http_requests_total[1m])"),
    ("rate", "rate(http_requests_total[10m])"),
    ("rate", "irate(http_requests_total[5m])"),
    ("rate", "increase(http_requests_total[10m])"),
    ("rate", "increase(http_requests_total[1h])"),
    (
        "rate",
        "increase(http_requests_total{instance=\"host-2:9100\", method=\"GET\", code=\"200\"}[30m])",
    ),
    ("rate", "rate(request_duration_seconds_count[5m])"),
    ("rate", "rate(node_load1[5m])"),
    ("rate", "rate(queue_depth[10m])"),
    ("delta", "delta(node_load1[10m])"),
    ("delta", "delta(temperature_celsius[30m])"),
    ("delta", "idelta(node_load1[5m])"),
    ("delta", "idelta(queue_depth[10m])"),
    ("deriv", "deriv(node_load1[10m])"),
    ("deriv", "deriv(queue_depth[15m])"),
    ("deriv", "predict_linear(node_load1[30m], 3600)"),
    ("deriv", "predict_linear(temperature_celsius[10m], 600)"),
    ("resets", "resets(http_requests_total[1h])"),
    ("resets", "resets(queue_depth[30m])"),
    ("changes", "changes(node_load1[10m])"),
    ("changes", "changes(queue_depth[30m])"),
    ("changes", "changes(http_requests_total{code=\"500\"}[10m])"),
    // histogram_quantile over classic buckets.
    (
        "histogram_quantile",
        "histogram_quantile(0.9, rate(request_duration_seconds_bucket[5m]))",
    ),
    (
        "histogram_quantile",
        "histogram_quantile(0.5, sum by (le) (rate(request_duration_seconds_bucket[5m])))",
    ),
    (
        "histogram_quantile",
        "histogram_quantile(0.99, sum by (le, instance) (rate(request_duration_seconds_bucket[10m])))",
    ),
    (
        "histogram_quantile",
        "histogram_quantile(0, rate(request_duration_seconds_bucket[5m]))",
    ),
    (
        "histogram_quantile",
        "histogram_quantile(1, rate(request_duration_seconds_bucket[5m]))",
    ),
    (
        "histogram_quantile",
        "histogram_quantile(1.5, rate(request_duration_seconds_bucket[5m]))",
    ),
    (
        "histogram_quantile",
        "histogram_quantile(-0.1, rate(request_duration_seconds_bucket[5m]))",
    ),
    (
        "histogram_quantile",
        "histogram_quantile(0.5, request_duration_seconds_bucket)",
    ),
    (
        "histogram_quantile",
        "histogram_quantile(0.75, sum without (instance) (increase(request_duration_seconds_bucket[1h])))",
    ),
    // Aggregations.
    ("aggregation", "sum(http_requests_total)"),
    (
        "aggregation",
        "sum by (job) (rate(http_requests_total[5m]))",
    ),
    (
        "aggregation",
        "sum without (method, code) (rate(http_requests_total[5m]))",
    ),
    ("aggregation", "sum(node_load1) by (job)"),
    ("aggregation", "avg by (instance) (temperature_celsius)"),
    ("aggregation", "avg without (sensor) (temperature_celsius)"),
    (
        "aggregation",
        "avg(temperature_celsius{sensor=\"outdoor\"})",
    ),
    ("aggregation", "min by (sensor) (temperature_celsius)"),
    (
        "aggregation",
        "max without (instance) (temperature_celsius)",
    ),
    (
        "aggregation",
        "max by (instance) (rate(http_requests_total[5m]))",
    ),
    ("aggregation", "count by (code) (http_requests_total)"),
    (
        "aggregation",
        "count without (method) (http_requests_total)",
    ),
    ("aggregation", "count(temperature_celsius > 50)"),
    (
        "aggregation",
        "count(count by (instance) (http_requests_total))",
    ),
    ("aggregation", "group by (job) (http_requests_total)"),
    ("aggregation", "group(node_load1)"),
    ("aggregation", "stddev(node_load1)"),
    ("aggregation", "stddev by (sensor) (temperature_celsius)"),
    (
        "aggregation",
        "stdvar without (instance) (temperature_celsius)",
    ),
    ("aggregation", "quantile(0.5, node_load1)"),
    (
        "aggregation",
        "quantile by (job) (0.9, rate(http_requests_total[5m]))",
    ),
    (
        "aggregation",
        "quantile without (instance) (0.25, temperature_celsius)",
    ),
    (
        "aggregation",
        "sum by (le) (request_duration_seconds_bucket)",
    ),
    ("topk", "topk(2, node_load1)"),
    ("topk", "topk by (job) (1, rate(http_requests_total[5m]))"),
    (
        "topk",
        "topk(1, sum by (instance) (rate(http_requests_total[5m])))",
    ),
    ("topk", "bottomk(3, temperature_celsius)"),
    ("topk", "bottomk without (sensor) (1, temperature_celsius)"),
    ("count_values", "count_values(\"depth\", queue_depth)"),
    (
        "count_values",
        "count_values by (job) (\"load\", round(node_load1))",
    ),
    (
        "count_values",
        "count_values(\"series\", count by (code) (http_requests_total))",
    ),
    // Label functions.
    (
        "label_replace",
        "label_replace(node_load1, \"host\", \"$1\", \"instance\", \"(.*):.*\")",
    ),
    (
        "label_replace",
        "label_replace(temperature_celsius, \"kind\", \"$1-$2\", \"sensor\", \"(c)(pu)\")",
    ),
    (
        "label_replace",
        "label_replace(node_load1, \"instance\", \"\", \"instance\", \"host-1.*\")",
    ),
    (
        "label_replace",
        "label_replace(node_load1, \"instance\", \"all\", \"instance\", \".*\")",
    ),
    (
        "label_join",
        "label_join(node_uname_info, \"id\", \"/\", \"nodename\", \"release\")",
    ),
    (
        "label_join",
        "label_join(node_load1, \"combo\", \"-\", \"job\", \"instance\", \"missing\")",
    ),
    (
        "label_join",
        "label_join(temperature_celsius, \"sensor\", \"\", \"instance\")",
    ),
    // absent.
    ("absent", "absent(node_load1)"),
    (
        "absent",
        "absent(nonexistent{job=\"x\", instance=~\"a.*\"})",
    ),
    ("absent", "absent(node_load1{instance=\"host-4:9100\"})"),
    ("absent", "absent(sum(nonexistent))"),
    ("absent", "absent(queue_depth{queue=\"main\"})"),
    (
        "absent_over_time",
        "absent_over_time(node_load1{instance=\"host-4:9100\"}[30m])",
    ),
    (
        "absent_over_time",
        "absent_over_time(nonexistent{job=\"y\"}[5m])",
    ),
    (
        "absent_over_time",
        "absent_over_time(queue_depth{queue=\"main\"}[6m])",
    ),
    // clamp.
    ("clamp", "clamp(temperature_celsius, 0, 50)"),
    ("clamp", "clamp_min(node_load1, 1)"),
    ("clamp", "clamp_max(temperature_celsius, 20)"),
    ("clamp", "clamp(node_load1, 2, 1)"),
    // Math.
    ("math", "abs(temperature_celsius{sensor=\"outdoor\"})"),
    ("math", "ceil(node_load1)"),
    ("math", "floor(node_load1)"),
    ("math", "round(node_load1)"),
    ("math", "round(temperature_celsius, 0.5)"),
    ("math", "round(node_load1, 0.1)"),
    ("math", "sqrt(node_load1)"),
    ("math", "sqrt(temperature_celsius)"),
    ("math", "exp(node_load1)"),
    ("math", "ln(node_load1)"),
    ("math", "ln(temperature_celsius{sensor=\"outdoor\"})"),
    ("math", "log2(temperature_celsius)"),
    ("math", "log10(node_load1)"),
    ("math", "sgn(temperature_celsius)"),
    // scalar, vector, time, timestamp.
    ("scalar", "scalar(node_load1{instance=\"host-1:9100\"})"),
    ("scalar", "scalar(node_load1)"),
    ("scalar", "scalar(sum(node_load1)) + 1"),
    (
        "scalar",
        "node_load1 * scalar(node_load1{instance=\"host-2:9100\"})",
    ),
    ("vector", "vector(1)"),
    ("vector", "vector(time())"),
    ("time", "time()"),
    ("time", "time() - 60"),
    ("timestamp", "timestamp(node_load1)"),
    ("timestamp", "time() - timestamp(queue_depth)"),
    ("timestamp", "timestamp(sum by (job) (node_load1))"),
    // Date functions.
    ("date", "hour()"),
    ("date", "minute()"),
    ("date", "day_of_week()"),
    ("date", "day_of_month()"),
    ("date", "day_of_year()"),
    ("date", "days_in_month()"),
    ("date", "month()"),
    ("date", "year()"),
    ("date", "hour(timestamp(node_load1))"),
    ("date", "minute(vector(1700000000))"),
    ("date", "day_of_week(vector(0))"),
    ("date", "days_in_month(vector(1709251200))"),
    ("date", "month(vector(1709251199))"),
    ("date", "day_of_year(vector(1735603200))"),
    // sort.
    ("sort", "sort(node_load1)"),
    ("sort", "sort_desc(temperature_celsius)"),
    ("sort", "sort(rate(http_requests_total[5m]))"),
    (
        "sort",
        "sort_desc(sum by (instance) (rate(http_requests_total[5m])))",
    ),
    // Subqueries.
    (
        "subquery",
        "max_over_time(rate(http_requests_total[5m])[30m:1m])",
    ),
    ("subquery", "avg_over_time(node_load1[10m30s:])"),
    (
        "subquery",
        "rate(http_requests_total{code=\"200\"}[5m10s:30s])",
    ),
    (
        "subquery",
        "min_over_time(sum by (job) (rate(http_requests_total[1m]))[15m30s:2m])",
    ),
    (
        "subquery",
        "deriv(avg_over_time(node_load1[5m])[20m20s:1m])",
    ),
    ("subquery", "max_over_time(node_load1[10m:1m] offset 5m30s)"),
    ("subquery", "sum_over_time(node_load1[5m:1m] @ {AT})"),
    ("subquery", "count_over_time(queue_depth[30m:1m])"),
    ("subquery", "node_load1{instance=\"host-1:9100\"}[10m:1m]"),
    (
        "subquery",
        "quantile_over_time(0.9, max by (instance) (temperature_celsius)[1h30s:5m])",
    ),
    ("subquery", "last_over_time((node_load1 > 1)[10m30s:1m])"),
    ("subquery", "absent_over_time(nonexistent[5m:1m])"),
    (
        "subquery",
        "max_over_time(deriv(node_load1[5m])[10m30s:1m])",
    ),
    ("subquery", "sum_over_time(vector(1)[5m:1m])"),
    // Edges and combinations.
    ("literal", "1 - -1"),
    ("selector", "+node_load1"),
    ("selector", "-vector(1)"),
    ("offset", "predict_linear(node_load1[30m] offset 10m, 600)"),
    ("@", "predict_linear(node_load1[30m] @ {AT}, 600)"),
    ("@", "rate(http_requests_total[5m] @ {AT})"),
    ("@", "changes(node_load1[1h] @ end())"),
    ("@", "node_load1 @ end() offset 1h"),
    ("timestamp", "timestamp(node_load1 offset 5m)"),
    ("timestamp", "timestamp(node_load1 @ {AT})"),
    ("scalar", "scalar(nonexistent)"),
    ("aggregation", "sum(nonexistent)"),
    ("aggregation", "count(nonexistent) or vector(0)"),
    ("aggregation", "quantile(2, node_load1)"),
    ("aggregation", "quantile(-1, node_load1)"),
    ("topk", "topk(0, node_load1)"),
    ("topk", "topk(2.5, node_load1)"),
    ("topk", "sort_desc(topk(3, temperature_celsius))"),
    (
        "count_values",
        "count_values without (instance) (\"v\", node_uname_info)",
    ),
    ("count_values", "count_values(\"v\", node_load1 > 100)"),
    ("math", "round(-temperature_celsius)"),
    ("date", "year(vector(-1))"),
    ("date", "year(vector(1e12))"),
    ("date", "day_of_week(timestamp(node_load1))"),
    ("absent", "absent(nonexistent{a=\"b\", a=\"c\"})"),
    ("absent", "absent(nonexistent{job=~\".+\"})"),
    (
        "absent_over_time",
        "absent_over_time(node_load1{instance=\"host-4:9100\"}[5m] offset 1h)",
    ),
    ("rate", "increase(http_requests_total[2m])"),
    ("rate", "idelta(http_requests_total[1m])"),
    ("resets", "resets(http_requests_total[3h])"),
    ("over_time", "stddev_over_time(node_uname_info[10m])"),
    (
        "histogram_quantile",
        "histogram_quantile(0.5, rate(request_duration_seconds_bucket{le=~\"0.1|\\\\+Inf\"}[1m]))",
    ),
    (
        "group_left",
        "temperature_celsius * ignoring(sensor) group_left node_load1",
    ),
    (
        "group_right",
        "node_uname_info * on(instance) group_right(nodename) node_load1",
    ),
    (
        "matching error",
        "vector(1) * on() group_left(nodename) node_uname_info",
    ),
    (
        "set operator",
        "max by (instance) (node_load1) unless on(instance) node_uname_info{release=~\"5.*\"}",
    ),
    (
        "comparison",
        "sum by (instance) (rate(http_requests_total[5m])) > on(instance) group_left() (node_load1 * 10)",
    ),
    (
        "label_replace",
        "label_replace(node_load1, \"dst\", \"$2\", \"instance\", \"(host)-(\\\\d+).*\")",
    ),
    (
        "label_replace",
        "label_replace(node_load1, \"dst\", \"x\", \"instance\", \"(\")",
    ),
    // Series made alike: merged where apart, refused where they overlap.
    (
        "duplicate labelset",
        "{__name__=~\"request_duration_seconds_(sum|count)\"} * 2",
    ),
    (
        "duplicate labelset",
        "-{__name__=~\"request_duration_seconds_(sum|count)\"}",
    ),
    (
        "duplicate labelset",
        "rate({__name__=~\"request_duration_seconds_(sum|count)\"}[5m])",
    ),
    (
        "duplicate labelset",
        "label_replace(node_load1{instance=~\"host-(3|4):9100\"}, \"instance\", \"merged\", \"instance\", \".*\")",
    ),
    // A series ended by a staleness marker.
    ("staleness", "session_active"),
    ("staleness", "count_over_time(session_active[10m])"),
    ("staleness", "last_over_time(session_active[10m])"),
    ("staleness", "absent(session_active)"),
    ("staleness", "session_active offset 1m"),
];

/// Queries whose answers differ from Prometheus 2.42's for a documented reason (see
/// `docs/promql-compatibility.md`): (query, why).
const LISTED: &[(&str, &str)] = &[
    (
        "node_load1 atan2 1",
        "atan2 drops __name__ as Prometheus 3 does; 2.42 kept it",
    ),
    (
        "predict_linear(node_load1[30m] @ {AT}, 600)",
        "2.42 moves an @-pinned window along a range query's steps in predict_linear",
    ),
    (
        "max_over_time(rate(http_requests_total[5m])[30m:1m])",
        "a subquery step on the window's start counts in 2.42, not in Prometheus 3",
    ),
    (
        "count_over_time(queue_depth[30m:1m])",
        "a subquery step on the window's start counts in 2.42, not in Prometheus 3",
    ),
    (
        "sum_over_time(vector(1)[5m:1m])",
        "a subquery step on the window's start counts in 2.42, not in Prometheus 3",
    ),
];

/// One evaluation of a query: an instant at `time`, or a range.
#[derive(Debug, Clone, Copy)]
enum Run {
    Instant(i64),
    Range { start: i64, end: i64, step: i64 },
}

impl Run {
    fn describe(self, data_end: i64) -> String {
        let rel = |t: i64| {
            let s = (t - data_end) / 1000;
            format!("end{}{}s", if s < 0 { "-" } else { "+" }, s.abs())
        };
        match self {
            Run::Instant(t) => format!("instant at {} ({})", rel(t), secs(t)),
            Run::Range { start, end, step } => format!(
                "range {}..{} step {}s ({}..{})",
                rel(start),
                rel(end),
                step / 1000,
                secs(start),
                secs(end)
            ),
        }
    }
}

fn secs(ms: i64) -> String {
    if ms % 1000 == 0 {
        format!("{}", ms / 1000)
    } else {
        format!("{:.3}", ms as f64 / 1000.0)
    }
}

/// splitmix64: a small, fixed generator, so the data set is the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One generated series: its labels (metric name first) and samples.
struct Generated {
    labels: Vec<(String, String)>,
    points: Vec<(i64, f64)>,
}

fn series(name: &str, labels: &[(&str, &str)], points: Vec<(i64, f64)>) -> Generated {
    let mut all = vec![("__name__".to_owned(), name.to_owned())];
    all.extend(
        labels
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
    );
    Generated {
        labels: all,
        points,
    }
}

/// A target's scrape times: every 15 s from `start + offset`, each jittered by under 0.4 s and
/// never on a whole or half second, where evaluation times and window edges are.
fn scrape_times(rng: &mut Rng, start: i64, end: i64, offset: i64) -> Vec<i64> {
    (0..)
        .map(|k| start + k * SCRAPE_MS + offset)
        .take_while(|t| *t <= end - SCRAPE_MS)
        .map(|t| {
            let t = t + (rng.unit() * 400.0) as i64;
            if t % 500 == 0 { t + 1 } else { t }
        })
        .collect()
}

const INSTANCES: [&str; 4] = ["host-1:9100", "host-2:9100", "host-3:9100", "host-4:9100"];
const BUCKETS: [(&str, f64); 7] = [
    ("0.05", 0.05),
    ("0.1", 0.1),
    ("0.25", 0.25),
    ("0.5", 0.5),
    ("1", 1.0),
    ("2.5", 2.5),
    ("+Inf", f64::INFINITY),
];

/// The data set, for samples from `start` to `end` (ms). `end` is a whole minute.
fn dataset(start: i64, end: i64) -> Vec<Generated> {
    let mut rng = Rng(SEED);
    let mut out = Vec::new();
    let ago = |minutes: i64| end - minutes * MINUTE;
    for (i, instance) in INSTANCES.iter().enumerate() {
        let job = if i < 2 { "api" } else { "web" };
        let app_times = scrape_times(&mut rng, start, end, 700 + 3111 * i as i64);
        // Counters, with resets where a process restarted.
        for (method, code, per_second) in [
            ("GET", "200", 12.0),
            ("POST", "200", 3.0),
            ("GET", "500", 0.1),
            ("POST", "500", 0.05),
        ] {
            let reset_at = match (i, method, code) {
                (1, "GET", "200") => Some(ago(105)),
                (2, "POST", "500") => Some(ago(30)),
                (0, "GET", "500") => Some(ago(8)),
                (3, "GET", "200") => Some(ago(61)),
                _ => None,
            };
            let mut value = (rng.unit() * 1000.0).round();
            let mut reset = reset_at;
            let points = app_times
                .iter()
                .map(|&t| {
                    if reset.is_some_and(|r| t >= r) {
                        value = 0.0;
                        reset = None;
                    }
                    let u = rng.unit();
                    value += (per_second * (1.0 + i as f64 * 0.3) * 15.0 * u * 2.0).round();
                    (t, value)
                })
                .collect();
            out.push(series(
                "http_requests_total",
                &[
                    ("job", job),
                    ("instance", instance),
                    ("method", method),
                    ("code", code),
                ],
                points,
            ));
        }
        // Classic histograms on the API servers; host-2's restarts 100 minutes before the end.
        if i < 2 {
            let mut counts = [0.0; BUCKETS.len()];
            let (mut sum, mut count) = (0.0, 0.0);
            let mut points: Vec<Vec<(i64, f64)>> = vec![Vec::new(); BUCKETS.len() + 2];
            let mut restarted = false;
            for &t in &app_times {
                if i == 1 && !restarted && t >= ago(100) {
                    counts = [0.0; BUCKETS.len()];
                    (sum, count) = (0.0, 0.0);
                    restarted = true;
                }
                let observations = 5 + (rng.unit() * 20.0) as usize;
                for _ in 0..observations {
                    let seconds = -(1.0 - rng.unit()).ln() * 0.2 * (1.0 + i as f64);
                    for (b, (_, upper)) in BUCKETS.iter().enumerate() {
                        if seconds <= *upper {
                            counts[b] += 1.0;
                        }
                    }
                    sum += seconds;
                    count += 1.0;
                }
                for (b, c) in counts.iter().enumerate() {
                    points[b].push((t, *c));
                }
                points[BUCKETS.len()].push((t, sum));
                points[BUCKETS.len() + 1].push((t, count));
            }
            let labels = [("job", job), ("instance", *instance)];
            let mut parts = points.into_iter();
            for (le, _) in BUCKETS {
                let mut with_le = labels.to_vec();
                with_le.push(("le", le));
                out.push(series(
                    "request_duration_seconds_bucket",
                    &with_le,
                    parts.next().unwrap_or_default(),
                ));
            }
            for name in [
                "request_duration_seconds_sum",
                "request_duration_seconds_count",
            ] {
                out.push(series(name, &labels, parts.next().unwrap_or_default()));
            }
        }
        // The node exporter beside each: host-4's stops an hour before the end.
        let node_times = scrape_times(&mut rng, start, end, 9_301 + 700 * i as i64);
        let mut load = 0.5 + rng.unit() * 2.0;
        let loads = node_times
            .iter()
            .map(|&t| {
                load = (load + (rng.unit() - 0.5) * 0.3).clamp(0.05, 4.0);
                (t, load)
            })
            .filter(|&(t, _)| i != 3 || t < ago(60))
            .collect();
        let node = [("job", "node"), ("instance", *instance)];
        out.push(series("node_load1", &node, loads));
        let nodename = format!("node-{}", i + 1);
        let release = if i == 2 {
            "5.10.0-26-amd64"
        } else {
            "6.1.0-13-amd64"
        };
        out.push(series(
            "node_uname_info",
            &[
                ("job", "node"),
                ("instance", instance),
                ("nodename", &nodename),
                ("release", release),
            ],
            node_times.iter().map(|&t| (t, 1.0)).collect(),
        ));
        if i < 2 {
            for (sensor, base, swing, period) in [
                ("cpu", 55.0, 15.0, 40.0),
                ("gpu", 60.0, 20.0, 25.0),
                ("outdoor", 3.0, 6.0, 200.0),
            ] {
                let points = node_times
                    .iter()
                    .enumerate()
                    .map(|(k, &t)| {
                        let wave = (k as f64 / period + i as f64).sin();
                        (t, base + swing * wave + (rng.unit() - 0.5) * 2.0)
                    })
                    .collect();
                out.push(series(
                    "temperature_celsius",
                    &[("job", "node"), ("instance", instance), ("sensor", sensor)],
                    points,
                ));
            }
        }
    }
    // A worker's queues: `main` has gaps of 10, 3 and 8 minutes.
    let worker_times = scrape_times(&mut rng, start, end, 5_555);
    let gaps = [(ago(150), ago(140)), (ago(80), ago(77)), (ago(50), ago(42))];
    for queue in ["main", "retry"] {
        let mut depth: f64 = 20.0;
        let points = worker_times
            .iter()
            .map(|&t| {
                depth = (depth + ((rng.unit() - 0.45) * 10.0).round()).max(0.0);
                (t, depth)
            })
            .filter(|&(t, _)| queue != "main" || !gaps.iter().any(|&(a, b)| t >= a && t < b))
            .collect();
        out.push(series(
            "queue_depth",
            &[
                ("job", "worker"),
                ("instance", "host-5:9100"),
                ("queue", queue),
            ],
            points,
        ));
    }
    // A series that disappears half an hour before the end, as Prometheus marks it: a
    // staleness marker at the first scrape that misses it.
    let session_times = scrape_times(&mut rng, start, end, 12_345);
    let mut points: Vec<(i64, f64)> = session_times
        .iter()
        .filter(|&&t| t < ago(30))
        .map(|&t| (t, (rng.unit() * 50.0).round()))
        .collect();
    if let Some(&(last, _)) = points.last() {
        points.push((last + SCRAPE_MS, f64::from_bits(STALE_NAN)));
    }
    out.push(series(
        "session_active",
        &[("job", "node"), ("instance", "host-1:9100")],
        points,
    ));
    out
}

/// The remote-write requests for the data set: one per `CHUNK_MS`, oldest first.
fn requests(data: &[Generated], start: i64, end: i64) -> Vec<WriteRequest> {
    let mut out = Vec::new();
    let mut from = start;
    while from <= end {
        let to = from + CHUNK_MS;
        let timeseries = data
            .iter()
            .filter_map(|g| {
                let samples: Vec<Sample> = g
                    .points
                    .iter()
                    .filter(|(t, _)| (from..to).contains(t))
                    .map(|&(timestamp, value)| Sample { value, timestamp })
                    .collect();
                (!samples.is_empty()).then(|| TimeSeries {
                    labels: g
                        .labels
                        .iter()
                        .map(|(name, value)| Label {
                            name: name.clone(),
                            value: value.clone(),
                        })
                        .collect(),
                    samples,
                })
            })
            .collect();
        out.push(WriteRequest { timeseries });
        from = to;
    }
    out
}

/// A series' labels.
type Labels = BTreeMap<String, String>;

/// An answer, in a form both servers' JSON reduce to.
#[derive(Debug, Clone)]
enum Answer {
    /// The query was refused; the server's message.
    Error(String),
    Scalar(i64, f64),
    String(i64, String),
    /// `vector` or `matrix`, and each series' points (one for a vector).
    Series(String, Vec<(Labels, Vec<(i64, f64)>)>),
}

impl Answer {
    fn kind(&self) -> String {
        match self {
            Answer::Error(e) => format!("error ({e})"),
            Answer::Scalar(..) => "scalar".into(),
            Answer::String(..) => "string".into(),
            Answer::Series(kind, _) => kind.clone(),
        }
    }
}

fn parse_time(v: &Value) -> Option<i64> {
    Some((v.as_f64()? * 1000.0).round() as i64)
}

fn parse_value(v: &Value) -> Option<f64> {
    match v.as_str()? {
        "NaN" => Some(f64::NAN),
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        text => text.parse().ok(),
    }
}

fn parse_point(v: &Value) -> Option<(i64, f64)> {
    Some((parse_time(v.get(0)?)?, parse_value(v.get(1)?)?))
}

fn parse_labels(v: &Value) -> Option<Labels> {
    v.as_object()?
        .iter()
        .map(|(n, v)| Some((n.clone(), v.as_str()?.to_owned())))
        .collect()
}

/// Reads a query answer's JSON; `ordered` keeps the series in the server's order (for `sort`),
/// else they are sorted by labels.
fn parse_answer(body: &Value, ordered: bool) -> Option<Answer> {
    if body["status"] == "error" {
        return Some(Answer::Error(format!(
            "{}: {}",
            body["errorType"].as_str().unwrap_or_default(),
            body["error"].as_str().unwrap_or_default()
        )));
    }
    let data = &body["data"];
    let result = &data["result"];
    Some(match data["resultType"].as_str()? {
        "scalar" => {
            let (t, v) = parse_point(result)?;
            Answer::Scalar(t, v)
        }
        "string" => Answer::String(parse_time(&result[0])?, result[1].as_str()?.to_owned()),
        kind @ ("vector" | "matrix") => {
            let mut series = result
                .as_array()?
                .iter()
                .map(|s| {
                    let labels = parse_labels(&s["metric"])?;
                    let points = if kind == "vector" {
                        vec![parse_point(&s["value"])?]
                    } else {
                        s["values"]
                            .as_array()?
                            .iter()
                            .map(parse_point)
                            .collect::<Option<Vec<_>>>()?
                    };
                    Some((labels, points))
                })
                .collect::<Option<Vec<_>>>()?;
            if !ordered {
                series.sort_by(|a, b| a.0.cmp(&b.0));
            }
            Answer::Series(kind.to_owned(), series)
        }
        _ => return None,
    })
}

/// Equal within floating-point tolerance: relative 1e-9, absolute 1e-12 near zero, NaN = NaN.
fn close(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a == b {
        return true;
    }
    let diff = (a - b).abs();
    diff <= 1e-12 || diff <= 1e-9 * a.abs().max(b.abs())
}

fn format_labels(labels: &Labels) -> String {
    let pairs: Vec<String> = labels.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
    format!("{{{}}}", pairs.join(", "))
}

/// The first difference between Prometheus' answer and hcmon's, or `None` when they match.
fn difference(prometheus: &Answer, hcmon: &Answer) -> Option<String> {
    match (prometheus, hcmon) {
        // Both refusing is agreement; their messages are their own.
        (Answer::Error(_), Answer::Error(_)) => None,
        (Answer::Scalar(t1, v1), Answer::Scalar(t2, v2)) => (t1 != t2 || !close(*v1, *v2))
            .then(|| format!("scalar: Prometheus {v1} at {t1}, hcmon {v2} at {t2}")),
        (Answer::String(t1, s1), Answer::String(t2, s2)) => (t1 != t2 || s1 != s2)
            .then(|| format!("string: Prometheus {s1:?} at {t1}, hcmon {s2:?} at {t2}")),
        (Answer::Series(k1, p), Answer::Series(k2, h)) if k1 == k2 => {
            let hcmon_labels: Vec<&Labels> = h.iter().map(|s| &s.0).collect();
            let prometheus_labels: Vec<&Labels> = p.iter().map(|s| &s.0).collect();
            if let Some(only) = p.iter().find(|s| !hcmon_labels.contains(&&s.0)) {
                return Some(format!(
                    "series {} only in Prometheus ({} points, first {:?}); {} series there, {} in hcmon",
                    format_labels(&only.0),
                    only.1.len(),
                    only.1.first(),
                    p.len(),
                    h.len()
                ));
            }
            if let Some(only) = h.iter().find(|s| !prometheus_labels.contains(&&s.0)) {
                return Some(format!(
                    "series {} only in hcmon ({} points, first {:?}); {} series in Prometheus, {} in hcmon",
                    format_labels(&only.0),
                    only.1.len(),
                    only.1.first(),
                    p.len(),
                    h.len()
                ));
            }
            if p.len() != h.len() {
                return Some(format!(
                    "{} series in Prometheus, {} in hcmon (a label set repeated)",
                    p.len(),
                    h.len()
                ));
            }
            if prometheus_labels != hcmon_labels {
                let names = |l: &[&Labels]| l.iter().map(|l| format_labels(l)).collect::<Vec<_>>();
                return Some(format!(
                    "order: Prometheus {:?}, hcmon {:?}",
                    names(&prometheus_labels),
                    names(&hcmon_labels)
                ));
            }
            for ((labels, pp), (_, hp)) in p.iter().zip(h) {
                for (i, (a, b)) in pp.iter().zip(hp).enumerate() {
                    if a.0 != b.0 || !close(a.1, b.1) {
                        return Some(format!(
                            "{}: point {i}: Prometheus {} at {}, hcmon {} at {}",
                            format_labels(labels),
                            a.1,
                            secs(a.0),
                            b.1,
                            secs(b.0)
                        ));
                    }
                }
                if pp.len() != hp.len() {
                    let (longer, who) = if pp.len() > hp.len() {
                        (pp, "Prometheus")
                    } else {
                        (hp, "hcmon")
                    };
                    let extra = longer[pp.len().min(hp.len())];
                    return Some(format!(
                        "{}: {} points in Prometheus, {} in hcmon; first extra in {who}: {} at {}",
                        format_labels(labels),
                        pp.len(),
                        hp.len(),
                        extra.1,
                        secs(extra.0)
                    ));
                }
            }
            None
        }
        (p, h) => Some(format!(
            "Prometheus answered {}, hcmon {}",
            p.kind(),
            h.kind()
        )),
    }
}

/// Asks one server: its answer, and hcmon's resolution header where there is one.
async fn ask(
    client: &reqwest::Client,
    addr: SocketAddr,
    query: &str,
    run: Run,
    ordered: bool,
) -> anyhow::Result<(Answer, Option<String>)> {
    let (path, params) = match run {
        Run::Instant(t) => (
            "/api/v1/query",
            vec![("query", query.to_owned()), ("time", secs(t))],
        ),
        Run::Range { start, end, step } => (
            "/api/v1/query_range",
            vec![
                ("query", query.to_owned()),
                ("start", secs(start)),
                ("end", secs(end)),
                ("step", secs(step)),
            ],
        ),
    };
    let response = client
        .get(format!("http://{addr}{path}"))
        .query(&params)
        .send()
        .await?;
    let resolution = response
        .headers()
        .get("x-hcmon-resolution")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let status = response.status();
    let text = response.text().await?;
    let body: Value = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{addr}{path} {query:?}: {status}: {e}: {text}"))?;
    let answer = parse_answer(&body, ordered)
        .ok_or_else(|| anyhow::anyhow!("{addr}{path} {query:?}: unreadable answer: {text}"))?;
    Ok((answer, resolution))
}

/// What comparing one query found: the runs that differed, each with its first difference.
struct Outcome {
    query: String,
    differences: Vec<String>,
}

async fn compare(
    prometheus: (reqwest::Client, SocketAddr),
    hcmon: (reqwest::Client, SocketAddr),
    query: String,
    runs: Arc<Vec<Run>>,
    data_end: i64,
) -> anyhow::Result<Outcome> {
    let mut differences = Vec::new();
    // `sort` orders an instant vector; everything else is compared as a set of series.
    let sorts = query.starts_with("sort");
    for &run in runs.iter() {
        let ordered = sorts && matches!(run, Run::Instant(_));
        let (expected, _) = ask(&prometheus.0, prometheus.1, &query, run, ordered).await?;
        let (got, resolution) = ask(&hcmon.0, hcmon.1, &query, run, ordered).await?;
        if let Some(difference) = difference(&expected, &got) {
            let from = resolution
                .filter(|r| r != "raw")
                .map(|r| format!(" [hcmon answered from the {r} rollup]"))
                .unwrap_or_default();
            differences.push(format!("{}: {difference}{from}", run.describe(data_end)));
        }
    }
    Ok(Outcome { query, differences })
}

#[tokio::test(flavor = "multi_thread")]
async fn promql_answers_match_prometheus() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let prometheus = Prometheus::start(dir.path(), "", &["--web.enable-remote-write-receiver"])?;
    let collector = Collector::start(&dir.path().join("collector"), 0, 0)?;
    let hcmon_client = collector.client()?;
    let prometheus_client = reqwest::Client::new();

    // Three hours ending at the minute two minutes ago.
    let now = (now_s() * 1000.0) as i64;
    let data_end = now.div_euclid(MINUTE) * MINUTE - 2 * MINUTE;
    let data_start = data_end - SPAN_MS;
    let data = dataset(data_start, data_end);
    for request in requests(&data, data_start, data_end) {
        for (name, client, addr) in [
            ("Prometheus", &prometheus_client, prometheus.addr),
            ("hcmon", &hcmon_client, collector.http),
        ] {
            let (status, body) = remote_write(client, addr, &request).await?;
            anyhow::ensure!(
                (200..300).contains(&status),
                "{name} refused remote write: {status}: {body}"
            );
        }
    }

    let ago = |seconds: i64| data_end - seconds * 1000;
    let runs = Arc::new(vec![
        // Inside the data.
        Run::Instant(ago(6007)),
        // After node_load1{instance="host-4:9100"} stopped, in one of queue_depth's gaps.
        Run::Instant(ago(2833)),
        // After session_active's staleness marker, within the lookback.
        Run::Instant(ago(1687)),
        // Near the end, and after it within the lookback.
        Run::Instant(ago(23)),
        Run::Instant(data_end + 127_000),
        // The last hour at a step aligned to it, as Grafana asks.
        Run::Range {
            start: ago(3600),
            end: data_end,
            step: MINUTE,
        },
        // Most of the data at an odd step, from half a second.
        Run::Range {
            start: ago(10_003) - 500,
            end: ago(7),
            step: 97_000,
        },
    ]);
    let at = secs(ago(4507));
    let semaphore = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
    let mut tasks = tokio::task::JoinSet::new();
    for (index, (_, query)) in QUERIES.iter().enumerate() {
        let query = query.replace("{AT}", &at);
        let prometheus = (prometheus_client.clone(), prometheus.addr);
        let hcmon = (hcmon_client.clone(), collector.http);
        let (runs, semaphore) = (runs.clone(), semaphore.clone());
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await?;
            let outcome = compare(prometheus, hcmon, query, runs, data_end).await?;
            Ok::<_, anyhow::Error>((index, outcome))
        });
    }
    let mut outcomes = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        outcomes.push(joined??);
    }
    outcomes.sort_by_key(|(index, _)| *index);

    let listed: BTreeMap<&str, &str> = LISTED.iter().copied().collect();
    let mut report = String::new();
    let (mut matched, mut listed_count) = (0, 0);
    let mut unexpected = Vec::new();
    let mut listed_but_matching = Vec::new();
    for (index, outcome) in &outcomes {
        let template = QUERIES[*index].1;
        match (outcome.differences.is_empty(), listed.get(template)) {
            (true, None) => matched += 1,
            (true, Some(_)) => {
                matched += 1;
                listed_but_matching.push(template);
            }
            (false, listed) => {
                let _ = writeln!(
                    report,
                    "{} {}",
                    if listed.is_some() {
                        "LISTED  "
                    } else {
                        "MISMATCH"
                    },
                    outcome.query
                );
                for difference in &outcome.differences {
                    let _ = writeln!(report, "    {difference}");
                }
                if let Some(reason) = listed {
                    let _ = writeln!(report, "    listed: {reason}");
                    listed_count += 1;
                } else {
                    unexpected.push(template);
                }
            }
        }
    }
    eprintln!(
        "{report}promql_compare: {} queries, {} runs each ({} evaluations per server): {matched} match, {listed_count} listed differences, {} unexpected",
        outcomes.len(),
        runs.len(),
        outcomes.len() * runs.len(),
        unexpected.len()
    );

    assert!(QUERIES.len() >= 150, "{} queries", QUERIES.len());
    for (query, _) in LISTED {
        assert!(
            QUERIES.iter().any(|(_, q)| q == query),
            "listed query {query:?} is not in QUERIES"
        );
    }
    let doc_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/promql-compatibility.md"
    );
    let doc = std::fs::read_to_string(doc_path)
        .map_err(|e| anyhow::anyhow!("cannot read {doc_path}: {e}"))?;
    for (query, _) in LISTED {
        assert!(
            doc.contains(&format!("`{query}`")),
            "listed query {query:?} is not explained in docs/promql-compatibility.md"
        );
    }
    assert!(
        listed_but_matching.is_empty(),
        "listed queries now match Prometheus; take them off LISTED and the document: {listed_but_matching:?}"
    );
    assert!(
        unexpected.is_empty(),
        "{} queries differ from Prometheus and are not listed: {unexpected:?}\n{report}",
        unexpected.len()
    );
    Ok(())
}

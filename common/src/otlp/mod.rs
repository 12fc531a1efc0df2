//! OTLP metrics as Prometheus series, shared by the collector's OTLP receiver and the agent's:
//! what an OpenTelemetry SDK exports becomes the series Prometheus' own OTLP receiver would
//! make of it, so queries and dashboards written for one work on the other.
//!
//! - **Names**: see `names.rs` (units and `_total` as suffixes).
//! - **Resource**: `service.name` (prefixed `service.namespace/` when set) becomes `job`,
//!   `service.instance.id` becomes `instance`; the resource's other attributes go to one
//!   `target_info` series per resource (value 1), not onto every series.
//! - **Points**: gauges are gauges; monotonic sums counters; non-monotonic sums gauges;
//!   histograms `_bucket{le}`, `_sum` and `_count` (exponential ones converted, `buckets.rs`);
//!   summaries `{quantile}`, `_sum` and `_count`. A point flagged "no recorded value" is a
//!   staleness marker.
//! - **Delta temporality** (StatsD-style SDKs, .NET and others by choice) is accumulated into
//!   cumulative series here ([`DeltaSums`]), since rate() and increase() need totals. The totals
//!   live in memory: after a restart the series restarts at 0, which rate() reads as a counter
//!   reset, exactly as for a restarted application.
//!
//! Pure: no I/O, the caller supplies the clock.

mod buckets;
mod delta;
pub mod names;

pub use delta::DeltaSums;
pub use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};

use buckets::bound_label;
use names::{NameKind, label_name, metric_name};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, DataPointFlags, Gauge, NumberDataPoint, Sum, metric, number_data_point,
};
use std::collections::HashMap;
use std::fmt;

/// Prometheus' staleness marker: a NaN with this bit pattern ends a series at its timestamp.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The family a metric becomes, for its metadata (`/api/v1/metadata`, `# TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyKind {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Info,
}

/// One metric's family: its Prometheus name, kind, description and unit word.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: String,
    pub kind: FamilyKind,
    pub help: String,
    pub unit: String,
}

/// One Prometheus series with its samples from a request, in the request's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    /// Sorted by name, without `__name__`, no empty values.
    pub labels: Vec<(String, String)>,
    /// A cumulative total (rate() applies), else a gauge.
    pub counter: bool,
    /// (Unix ms, value); a value may be a staleness marker ([`STALE_NAN_BITS`]).
    pub samples: Vec<(i64, f64)>,
}

/// Why a metric's points were left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The metric has no name a Prometheus name can be made of.
    NoName,
    /// A sum or histogram whose temporality is unspecified: neither a total nor a change.
    UnspecifiedTemporality,
    /// The point has no value.
    NoValue,
    /// More delta series than [`DeltaSums`] keeps totals for.
    TooManyDeltaSeries,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SkipReason::NoName => "the metric has no usable name",
            SkipReason::UnspecifiedTemporality => {
                "aggregation temporality is unspecified (set cumulative or delta)"
            }
            SkipReason::NoValue => "the data point carries no value",
            SkipReason::TooManyDeltaSeries => {
                "too many delta series to keep running totals for; export cumulative temporality"
            }
        })
    }
}

/// Points of one metric that were left out.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    /// The metric's OpenTelemetry name, cut to 100 bytes.
    pub metric: String,
    pub points: usize,
    pub reason: SkipReason,
}

/// A request as Prometheus series.
#[derive(Debug, Default)]
pub struct Translation {
    pub families: Vec<Family>,
    pub series: Vec<Series>,
    /// Data points in the request.
    pub points: usize,
    pub skipped: Vec<Skipped>,
}

impl Translation {
    /// Data points left out.
    pub fn skipped_points(&self) -> usize {
        self.skipped.iter().map(|s| s.points).sum()
    }

    /// What OTLP's partial success says about the points left out: empty when none were.
    pub fn skipped_message(&self) -> String {
        let mut out = String::new();
        for (i, s) in self.skipped.iter().take(3).enumerate() {
            if i > 0 {
                out.push_str("; ");
            }
            out.push_str(&format!(
                "{} point(s) of {:?} left out: {}",
                s.points, s.metric, s.reason
            ));
        }
        if self.skipped.len() > 3 {
            out.push_str(&format!("; and {} more metrics", self.skipped.len() - 3));
        }
        out
    }
}

/// An attribute's value as label text, the way the OpenTelemetry collector's pdata writes it.
fn value_text(value: Option<&AnyValue>) -> String {
    use any_value::Value;
    match value.and_then(|v| v.value.as_ref()) {
        None => String::new(),
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        Some(Value::BytesValue(b)) => b.iter().map(|x| format!("{x:02x}")).collect(),
        Some(Value::ArrayValue(a)) => {
            let items: Vec<String> = a
                .values
                .iter()
                .map(|v| format!("{:?}", value_text(Some(v))))
                .collect();
            format!("[{}]", items.join(","))
        }
        Some(Value::KvlistValue(list)) => {
            let items: Vec<String> = list
                .values
                .iter()
                .map(|kv| format!("{:?}:{:?}", kv.key, value_text(kv.value.as_ref())))
                .collect();
            format!("{{{}}}", items.join(","))
        }
        Some(Value::StringValueStrindex(_)) => String::new(),
    }
}

/// Attributes as labels: names sanitised, empty values dropped, keys that sanitise to the same
/// name joined with `;` in the order of their original keys (as Prometheus does), sorted.
fn attribute_labels<'a>(attributes: impl Iterator<Item = &'a KeyValue>) -> Vec<(String, String)> {
    let mut pairs: Vec<(&str, String)> = attributes
        .map(|kv| (kv.key.as_str(), value_text(kv.value.as_ref())))
        .filter(|(key, value)| !key.is_empty() && !value.is_empty())
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let mut out: Vec<(String, String)> = Vec::with_capacity(pairs.len());
    for (key, value) in pairs {
        let name = label_name(key);
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, joined)) => {
                joined.push(';');
                joined.push_str(&value);
            }
            None => out.push((name, value)),
        }
    }
    out.sort();
    out
}

/// Sets `name` to `value` in sorted `labels`, replacing what was there.
fn set_label(labels: &mut Vec<(String, String)>, name: &str, value: String) {
    match labels.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
        Ok(i) => labels[i].1 = value,
        Err(i) => labels.insert(i, (name.to_owned(), value)),
    }
}

/// What a resource gives every series it exports, and the rest for `target_info`.
struct ResourceLabels {
    identity: Vec<(String, String)>,
    info: Vec<(String, String)>,
}

const SERVICE_NAME: &str = "service.name";
const SERVICE_NAMESPACE: &str = "service.namespace";
const SERVICE_INSTANCE: &str = "service.instance.id";

fn resource_labels(attributes: &[KeyValue]) -> ResourceLabels {
    let get = |key: &str| {
        attributes
            .iter()
            .find(|kv| kv.key == key)
            .map(|kv| value_text(kv.value.as_ref()))
            .filter(|v| !v.is_empty())
    };
    let mut identity = Vec::new();
    if let Some(service) = get(SERVICE_NAME) {
        let job = match get(SERVICE_NAMESPACE) {
            Some(namespace) => format!("{namespace}/{service}"),
            None => service,
        };
        identity.push(("job".to_owned(), job));
    }
    if let Some(instance) = get(SERVICE_INSTANCE) {
        identity.push(("instance".to_owned(), instance));
    }
    identity.sort();
    let info = attribute_labels(attributes.iter().filter(|kv| {
        ![SERVICE_NAME, SERVICE_NAMESPACE, SERVICE_INSTANCE].contains(&kv.key.as_str())
    }));
    ResourceLabels { identity, info }
}

/// The series of a translation being built, merged by name and labels.
struct SeriesSet<'d> {
    index: HashMap<(String, Vec<(String, String)>), usize>,
    series: Vec<Series>,
    deltas: &'d mut DeltaSums,
}

impl SeriesSet<'_> {
    /// Adds a sample; a delta is added to its series' running total first. False when the
    /// total cannot be kept (too many delta series).
    fn push(
        &mut self,
        name: String,
        labels: Vec<(String, String)>,
        counter: bool,
        sample: (i64, f64),
        delta: bool,
    ) -> bool {
        let (timestamp, mut value) = sample;
        if delta && value.to_bits() != STALE_NAN_BITS {
            match self.deltas.add(&name, &labels, value) {
                Some(total) => value = total,
                None => return false,
            }
        }
        let key = (name, labels);
        match self.index.get(&key) {
            Some(&i) => self.series[i].samples.push((timestamp, value)),
            None => {
                self.index.insert(key.clone(), self.series.len());
                let (name, labels) = key;
                self.series.push(Series {
                    name,
                    labels,
                    counter,
                    samples: vec![(timestamp, value)],
                });
            }
        }
        true
    }
}

/// One data point's common parts.
struct Point<'a> {
    attributes: &'a [KeyValue],
    time_unix_nano: u64,
    flags: u32,
}

impl<'a> Point<'a> {
    fn new(attributes: &'a [KeyValue], time_unix_nano: u64, flags: u32) -> Self {
        Self {
            attributes,
            time_unix_nano,
            flags,
        }
    }

    fn timestamp(&self, now_ms: i64) -> i64 {
        match self.time_unix_nano {
            0 => now_ms,
            nanos => (nanos / 1_000_000) as i64,
        }
    }

    fn stale(&self) -> bool {
        self.flags & DataPointFlags::NoRecordedValueMask as u32 != 0
    }
}

fn number(point: &NumberDataPoint) -> Option<f64> {
    match point.value? {
        number_data_point::Value::AsDouble(d) => Some(d),
        number_data_point::Value::AsInt(i) => Some(i as f64),
    }
}

fn stale_or(stale: bool, value: f64) -> f64 {
    if stale {
        f64::from_bits(STALE_NAN_BITS)
    } else {
        value
    }
}

/// Translates one request; delta points are accumulated in `deltas`.
pub fn translate(
    request: &ExportMetricsServiceRequest,
    deltas: &mut DeltaSums,
    now_ms: i64,
) -> Translation {
    let mut families: Vec<Family> = Vec::new();
    let mut skipped: Vec<Skipped> = Vec::new();
    let mut points = 0usize;
    let mut set = SeriesSet {
        index: HashMap::new(),
        series: Vec::new(),
        deltas,
    };
    let mut skip = |metric: &str, points: usize, reason: SkipReason| {
        if points == 0 {
            return;
        }
        let mut metric = metric.to_owned();
        if metric.len() > 100 {
            let mut end = 100;
            while !metric.is_char_boundary(end) {
                end -= 1;
            }
            metric.truncate(end);
        }
        match skipped
            .iter_mut()
            .find(|s| s.metric == metric && s.reason == reason)
        {
            Some(s) => s.points += points,
            None => skipped.push(Skipped {
                metric,
                points,
                reason,
            }),
        }
    };
    for resource_metrics in &request.resource_metrics {
        let resource = resource_labels(
            resource_metrics
                .resource
                .as_ref()
                .map_or(&[][..], |r| &r.attributes),
        );
        let mut latest: Option<i64> = None;
        for scope in &resource_metrics.scope_metrics {
            for metric in &scope.metrics {
                let Some(data) = &metric.data else { continue };
                let (kind, name_kind, count) = match data {
                    metric::Data::Gauge(g) => {
                        (FamilyKind::Gauge, NameKind::Gauge, g.data_points.len())
                    }
                    metric::Data::Sum(s) if s.is_monotonic => {
                        (FamilyKind::Counter, NameKind::Counter, s.data_points.len())
                    }
                    metric::Data::Sum(s) => {
                        (FamilyKind::Gauge, NameKind::Gauge, s.data_points.len())
                    }
                    metric::Data::Histogram(h) => (
                        FamilyKind::Histogram,
                        NameKind::Distribution,
                        h.data_points.len(),
                    ),
                    metric::Data::ExponentialHistogram(h) => (
                        FamilyKind::Histogram,
                        NameKind::Distribution,
                        h.data_points.len(),
                    ),
                    metric::Data::Summary(s) => (
                        FamilyKind::Summary,
                        NameKind::Distribution,
                        s.data_points.len(),
                    ),
                };
                points += count;
                let name = metric_name(&metric.name, &metric.unit, name_kind);
                if name.is_empty() || name == "_" {
                    skip(&metric.name, count, SkipReason::NoName);
                    continue;
                }
                let temporality = match data {
                    metric::Data::Sum(s) => Some(s.aggregation_temporality),
                    metric::Data::Histogram(h) => Some(h.aggregation_temporality),
                    metric::Data::ExponentialHistogram(h) => Some(h.aggregation_temporality),
                    _ => None,
                };
                let delta = temporality == Some(AggregationTemporality::Delta as i32);
                if temporality == Some(AggregationTemporality::Unspecified as i32) {
                    skip(&metric.name, count, SkipReason::UnspecifiedTemporality);
                    continue;
                }
                if !families.iter().any(|f| f.name == name) {
                    families.push(Family {
                        name: name.clone(),
                        kind,
                        help: metric.description.clone(),
                        unit: names::unit_words(&metric.unit).0,
                    });
                }
                let labels_of = |attributes: &[KeyValue]| {
                    let mut labels = attribute_labels(attributes.iter());
                    for (n, v) in &resource.identity {
                        set_label(&mut labels, n, v.clone());
                    }
                    labels
                };
                let mut dropped = 0usize;
                let mut no_value = 0usize;
                match data {
                    metric::Data::Gauge(Gauge { data_points, .. })
                    | metric::Data::Sum(Sum { data_points, .. }) => {
                        let counter = kind == FamilyKind::Counter;
                        for p in data_points {
                            let point = Point::new(&p.attributes, p.time_unix_nano, p.flags);
                            let Some(value) = number(p).or(point.stale().then_some(0.0)) else {
                                no_value += 1;
                                continue;
                            };
                            let series =
                                vec![(name.clone(), labels_of(point.attributes), counter, value)];
                            if !emit(&mut set, &mut latest, &point, now_ms, delta, series) {
                                dropped += 1;
                            }
                        }
                    }
                    metric::Data::Histogram(_) | metric::Data::ExponentialHistogram(_) => {
                        // Either kind as (point, cumulative buckets, sum, count).
                        let points: Vec<_> = match data {
                            metric::Data::Histogram(h) => h
                                .data_points
                                .iter()
                                .map(|p| {
                                    let point =
                                        Point::new(&p.attributes, p.time_unix_nano, p.flags);
                                    (point, buckets::explicit(p), p.sum, p.count)
                                })
                                .collect(),
                            metric::Data::ExponentialHistogram(h) => h
                                .data_points
                                .iter()
                                .map(|p| {
                                    let point =
                                        Point::new(&p.attributes, p.time_unix_nano, p.flags);
                                    (point, buckets::exponential(p), p.sum, p.count)
                                })
                                .collect(),
                            _ => Vec::new(),
                        };
                        for (point, cumulative, sum, count) in points {
                            let labels = labels_of(point.attributes);
                            let series = distribution(&name, labels, cumulative, sum, count);
                            if !emit(&mut set, &mut latest, &point, now_ms, delta, series) {
                                dropped += 1;
                            }
                        }
                    }
                    metric::Data::Summary(s) => {
                        for p in &s.data_points {
                            let point = Point::new(&p.attributes, p.time_unix_nano, p.flags);
                            let labels = labels_of(point.attributes);
                            let mut series = Vec::with_capacity(p.quantile_values.len() + 2);
                            for q in &p.quantile_values {
                                let mut labels = labels.clone();
                                set_label(&mut labels, "quantile", bound_label(q.quantile));
                                series.push((name.clone(), labels, false, q.value));
                            }
                            series.push((format!("{name}_sum"), labels.clone(), true, p.sum));
                            series.push((format!("{name}_count"), labels, true, p.count as f64));
                            emit(&mut set, &mut latest, &point, now_ms, delta, series);
                        }
                    }
                }
                skip(&metric.name, no_value, SkipReason::NoValue);
                skip(&metric.name, dropped, SkipReason::TooManyDeltaSeries);
            }
        }
        if let Some(timestamp) = latest
            && !resource.info.is_empty()
        {
            let mut labels = resource.info.clone();
            for (n, v) in &resource.identity {
                set_label(&mut labels, n, v.clone());
            }
            if !families.iter().any(|f| f.name == TARGET_INFO) {
                families.push(Family {
                    name: TARGET_INFO.to_owned(),
                    kind: FamilyKind::Info,
                    help: "Target metadata".to_owned(),
                    unit: String::new(),
                });
            }
            set.push(
                TARGET_INFO.to_owned(),
                labels,
                false,
                (timestamp, 1.0),
                false,
            );
        }
    }
    Translation {
        families,
        series: set.series,
        points,
        skipped,
    }
}

/// A point's series and values, as (name, labels, counter, value).
type PointSeries = Vec<(String, Vec<(String, String)>, bool, f64)>;

/// Adds a point's series at its timestamp; a delta point's values are added to their running
/// totals (an up-down counter's change too: its total is the gauge). False when a total could
/// not be kept.
fn emit(
    set: &mut SeriesSet<'_>,
    latest: &mut Option<i64>,
    point: &Point<'_>,
    now_ms: i64,
    delta: bool,
    series: PointSeries,
) -> bool {
    let timestamp = point.timestamp(now_ms);
    *latest = Some(latest.map_or(timestamp, |l| l.max(timestamp)));
    let mut kept = true;
    for (name, labels, counter, value) in series {
        let value = stale_or(point.stale(), value);
        kept &= set.push(name, labels, counter, (timestamp, value), delta);
    }
    kept
}

/// The series resources' attributes go to.
pub const TARGET_INFO: &str = "target_info";

/// A histogram point's series: `_bucket{le}` for each cumulative bucket, `_sum` when the point
/// has one, `_count`.
fn distribution(
    name: &str,
    labels: Vec<(String, String)>,
    buckets: Vec<(f64, f64)>,
    sum: Option<f64>,
    count: u64,
) -> PointSeries {
    let mut series = Vec::with_capacity(buckets.len() + 2);
    for (bound, cumulative) in buckets {
        let mut labels = labels.clone();
        set_label(&mut labels, "le", bound_label(bound));
        series.push((format!("{name}_bucket"), labels, true, cumulative));
    }
    if let Some(sum) = sum {
        series.push((format!("{name}_sum"), labels.clone(), true, sum));
    }
    series.push((format!("{name}_count"), labels, true, count as f64));
    series
}

#[cfg(test)]
mod tests;

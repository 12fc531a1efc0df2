//! StatsD lines aggregated per flush interval into Prometheus series, the way
//! Prometheus' statsd_exporter maps them, so the result is queried like any other series:
//!
//! - a counter is a running total, `<name>_total` (a sample rate of 0.1 counts each line ten
//!   times); it restarts at 0 with the agent, which rate() reads as a reset;
//! - a gauge keeps its last value (`+N`/`-N` move it);
//! - a timer (`ms`, converted to seconds, as Prometheus measures time) or histogram (`h`, `d`)
//!   is a cumulative histogram, `<name>_bucket{le}`, `<name>_sum`, `<name>_count`, plus the
//!   interval's quantiles `<name>{quantile="0.5"|"0.9"|"0.99"}` when it had observations;
//! - a set is the number of distinct members seen in the interval.
//!
//! Names: every character outside `[a-zA-Z0-9_]` becomes `_` (`shop.orders` → `shop_orders`).
//! Tags become labels; a `service` or `job` tag names the application (`job`, default
//! `statsd`). Pure: the caller owns the sockets and the clock.

use super::budget::SeriesBudget;
use super::statsd::{Kind, Line};
use hcmon_common::otlp::Series;
use hcmon_common::otlp::names::label_name;
use std::collections::{HashMap, HashSet};

/// The `job` of lines that name no application.
pub const DEFAULT_JOB: &str = "statsd";

/// Bucket bounds of timers, in seconds (Prometheus' client defaults) and of histograms.
const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Quantiles reported per interval.
const QUANTILES: [(f64, &str); 3] = [(0.5, "0.5"), (0.9, "0.9"), (0.99, "0.99")];

/// Most observations kept per series and interval for its quantiles; beyond, a uniform sample
/// of them (reservoir sampling), so a hot timer costs bounded memory.
const RESERVOIR: usize = 4096;

#[derive(Debug)]
enum State {
    Counter(f64),
    Gauge(f64),
    Distribution {
        /// Cumulative counts per bucket of [`BUCKETS`], then the total count.
        buckets: [f64; BUCKETS.len()],
        count: f64,
        sum: f64,
        interval: Vec<f64>,
        seen: u64,
    },
    Set(HashSet<u64>),
}

/// A series as the application sent it: name, kind and labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    name: String,
    /// Distributions and sets are keyed apart from counters and gauges of the same name.
    class: u8,
    labels: Vec<(String, String)>,
}

impl Key {
    fn text(&self) -> String {
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(n, v)| format!("{n}={v:?}"))
            .collect();
        format!("{}{{{}}}", self.name, labels.join(","))
    }

    fn job(&self) -> &str {
        self.labels
            .iter()
            .find(|(n, _)| n == "job")
            .map_or(DEFAULT_JOB, |(_, v)| v.as_str())
    }
}

/// A metric name as a Prometheus name.
fn metric_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

#[derive(Debug)]
pub struct StatsdAggregator {
    series: HashMap<Key, State>,
    budget: SeriesBudget,
    lines: u64,
}

impl StatsdAggregator {
    pub fn new(max_series_per_app: usize) -> Self {
        Self {
            series: HashMap::new(),
            budget: SeriesBudget::new(max_series_per_app),
            lines: 0,
        }
    }

    pub fn budget(&mut self) -> &mut SeriesBudget {
        &mut self.budget
    }

    /// Lines recorded since the agent started.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Records one line; false when the budget refused its series.
    pub fn record(&mut self, line: &Line<'_>) -> bool {
        let mut labels: Vec<(String, String)> = Vec::with_capacity(line.tags.len() + 1);
        let mut job = None;
        for &(name, value) in &line.tags {
            if value.is_empty() {
                continue;
            }
            match name {
                "service" | "job" => job = Some(value),
                _ => labels.push((label_name(name), value.to_owned())),
            }
        }
        labels.push(("job".to_owned(), job.unwrap_or(DEFAULT_JOB).to_owned()));
        labels.sort();
        labels.dedup_by(|a, b| a.0 == b.0);
        let class = match line.kind {
            Kind::Counter => 0,
            Kind::Gauge | Kind::GaugeDelta => 1,
            Kind::Timer | Kind::Histogram => 2,
            Kind::Set => 3,
        };
        let key = Key {
            name: metric_name(line.name),
            class,
            labels,
        };
        if !self.series.contains_key(&key) && !self.budget.admit(key.job(), &key.text(), 1) {
            return false;
        }
        self.lines += 1;
        let state = self.series.entry(key).or_insert_with(|| match line.kind {
            Kind::Counter => State::Counter(0.0),
            Kind::Gauge | Kind::GaugeDelta => State::Gauge(0.0),
            Kind::Timer | Kind::Histogram => State::Distribution {
                buckets: [0.0; BUCKETS.len()],
                count: 0.0,
                sum: 0.0,
                interval: Vec::new(),
                seen: 0,
            },
            Kind::Set => State::Set(HashSet::new()),
        });
        match (state, line.kind) {
            (State::Counter(total), _) => *total += line.value / line.rate,
            (State::Gauge(value), Kind::GaugeDelta) => *value += line.value,
            (State::Gauge(value), _) => *value = line.value,
            (
                State::Distribution {
                    buckets,
                    count,
                    sum,
                    interval,
                    seen,
                },
                kind,
            ) => {
                let value = if kind == Kind::Timer {
                    line.value / 1000.0
                } else {
                    line.value
                };
                let weight = 1.0 / line.rate;
                for (bound, bucket) in BUCKETS.iter().zip(buckets.iter_mut()) {
                    if value <= *bound {
                        *bucket += weight;
                    }
                }
                *count += weight;
                *sum += value * weight;
                *seen += 1;
                if interval.len() < RESERVOIR {
                    interval.push(value);
                } else {
                    let slot = fastrand::u64(..*seen) as usize;
                    if slot < RESERVOIR {
                        interval[slot] = value;
                    }
                }
            }
            (State::Set(members), _) => {
                members.insert(hash(line.member));
            }
        }
        true
    }

    /// The series at `at_ms`; starts a new interval (quantiles and sets).
    pub fn flush(&mut self, at_ms: i64) -> Vec<Series> {
        let mut out = Vec::with_capacity(self.series.len());
        let mut push = |name: String, labels: Vec<(String, String)>, counter: bool, value: f64| {
            out.push(Series {
                name,
                labels,
                counter,
                samples: vec![(at_ms, value)],
            });
        };
        for (key, state) in &mut self.series {
            let Key { name, labels, .. } = key;
            match state {
                State::Counter(total) => {
                    let name = match name.ends_with("_total") {
                        true => name.clone(),
                        false => format!("{name}_total"),
                    };
                    push(name, labels.clone(), true, *total);
                }
                State::Gauge(value) => push(name.clone(), labels.clone(), false, *value),
                State::Distribution {
                    buckets,
                    count,
                    sum,
                    interval,
                    seen,
                } => {
                    for (bound, cumulative) in BUCKETS.iter().zip(buckets.iter()) {
                        push(
                            format!("{name}_bucket"),
                            with_label(labels, "le", format!("{bound}")),
                            true,
                            *cumulative,
                        );
                    }
                    push(
                        format!("{name}_bucket"),
                        with_label(labels, "le", "+Inf".to_owned()),
                        true,
                        *count,
                    );
                    push(format!("{name}_sum"), labels.clone(), true, *sum);
                    push(format!("{name}_count"), labels.clone(), true, *count);
                    if !interval.is_empty() {
                        interval.sort_by(f64::total_cmp);
                        for (q, text) in QUANTILES {
                            let rank = ((q * interval.len() as f64).ceil() as usize)
                                .clamp(1, interval.len());
                            push(
                                name.clone(),
                                with_label(labels, "quantile", text.to_owned()),
                                false,
                                interval[rank - 1],
                            );
                        }
                    }
                    interval.clear();
                    *seen = 0;
                }
                State::Set(members) => {
                    push(name.clone(), labels.clone(), false, members.len() as f64);
                    members.clear();
                }
            }
        }
        out
    }
}

fn with_label(labels: &[(String, String)], name: &str, value: String) -> Vec<(String, String)> {
    let mut out = labels.to_vec();
    let at = out.partition_point(|(n, _)| n.as_str() < name);
    out.insert(at, (name.to_owned(), value));
    out
}

fn hash(text: &str) -> u64 {
    use std::hash::{BuildHasher, RandomState};
    // One hasher per process keeps members of one set comparable within the interval.
    static STATE: std::sync::OnceLock<RandomState> = std::sync::OnceLock::new();
    STATE.get_or_init(RandomState::new).hash_one(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::statsd::parse;

    fn record(agg: &mut StatsdAggregator, lines: &[&str]) {
        for line in lines {
            assert!(agg.record(&parse(line).unwrap()), "{line}");
        }
    }

    fn value(series: &[Series], name: &str, label: Option<(&str, &str)>) -> Option<f64> {
        series
            .iter()
            .find(|s| {
                s.name == name
                    && label.is_none_or(|(n, v)| s.labels.iter().any(|(a, b)| a == n && b == v))
            })
            .map(|s| s.samples[0].1)
    }

    #[test]
    fn counters_gauges_timers_and_sets_aggregate_per_interval() {
        let mut agg = StatsdAggregator::new(100);
        record(
            &mut agg,
            &[
                "shop.orders:2|c|#service:shop,region:eu",
                "shop.orders:1|c|@0.5|#service:shop,region:eu",
                "shop.queue:10|g|#service:shop",
                "shop.queue:-3|g|#service:shop",
                "shop.latency:100|ms|#service:shop",
                "shop.latency:300|ms|#service:shop",
                "shop.latency:2000|ms|#service:shop",
                "shop.users:alice|s|#service:shop",
                "shop.users:bob|s|#service:shop",
                "shop.users:alice|s|#service:shop",
            ],
        );
        let out = agg.flush(10_000);
        assert_eq!(
            value(&out, "shop_orders_total", Some(("region", "eu"))),
            Some(4.0)
        );
        assert_eq!(value(&out, "shop_queue", Some(("job", "shop"))), Some(7.0));
        assert_eq!(value(&out, "shop_latency_count", None), Some(3.0));
        assert!((value(&out, "shop_latency_sum", None).unwrap() - 2.4).abs() < 1e-9);
        assert_eq!(
            value(&out, "shop_latency_bucket", Some(("le", "0.25"))),
            Some(1.0)
        );
        assert_eq!(
            value(&out, "shop_latency_bucket", Some(("le", "0.5"))),
            Some(2.0)
        );
        assert_eq!(
            value(&out, "shop_latency_bucket", Some(("le", "+Inf"))),
            Some(3.0)
        );
        assert_eq!(
            value(&out, "shop_latency", Some(("quantile", "0.5"))),
            Some(0.3)
        );
        assert_eq!(
            value(&out, "shop_latency", Some(("quantile", "0.99"))),
            Some(2.0)
        );
        assert_eq!(value(&out, "shop_users", None), Some(2.0));

        // The next interval: totals go on, quantiles and sets start again.
        record(&mut agg, &["shop.orders:1|c|#service:shop,region:eu"]);
        let out = agg.flush(20_000);
        assert_eq!(value(&out, "shop_orders_total", None), Some(5.0));
        assert_eq!(value(&out, "shop_latency_count", None), Some(3.0));
        assert_eq!(value(&out, "shop_latency", Some(("quantile", "0.5"))), None);
        assert_eq!(value(&out, "shop_users", None), Some(0.0));
        assert!(
            out.iter()
                .all(|s| s.samples == vec![(20_000, s.samples[0].1)])
        );
    }

    #[test]
    fn lines_without_an_app_are_job_statsd_and_the_budget_holds_per_app() {
        let mut agg = StatsdAggregator::new(2);
        record(&mut agg, &["a:1|c", "b:1|c"]);
        assert!(
            !agg.record(&parse("c:1|c").unwrap()),
            "third series of job statsd"
        );
        record(&mut agg, &["a:1|c", "c:1|c|#job:other"]);
        let out = agg.flush(1);
        assert_eq!(value(&out, "a_total", Some(("job", "statsd"))), Some(2.0));
        assert_eq!(value(&out, "c_total", Some(("job", "other"))), Some(1.0));
        assert_eq!(out.len(), 3);
        assert_eq!(
            agg.budget().refused().collect::<Vec<_>>(),
            vec![("statsd", 1)]
        );
    }
}

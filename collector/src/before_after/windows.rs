//! A series' values over a before and an after window, read from the store, and their
//! comparison.
//!
//! **Where the values come from.** Both windows of a series are read from the same source, so
//! their spreads compare (a rollup's averages vary less than raw samples): raw samples when
//! both windows are at most [`MAX_RAW_SPAN_MS`] long and inside raw retention; else the finest
//! rollup that gives each window at most [`MAX_BUCKETS`] buckets and still holds it (the
//! buckets' averages); else hourly rollups.
//!
//! **Half-open windows.** A window holds the samples (or buckets) from its start up to but not
//! including its end, `[start, end)`: a before window that ends where the after window starts
//! leaves the sample at that instant to the after window alone.
//!
//! **Counters** are compared as per-second rates (between raw samples, or a bucket's increase
//! over its length): a cumulative count always "increases".

use super::Window;
use crate::analytics::compare::{Comparison, compare, rank_order};
use crate::storage::{MetricKind, Resolution, SeriesMeta, StoreError, Tsdb};
use std::sync::Arc;
use std::time::Duration;

/// Longest window read as raw samples: six hours of 10 s samples is 2,160 values.
pub const MAX_RAW_SPAN_MS: i64 = 6 * 3_600_000;

/// Most rollup buckets per window before a coarser resolution is read.
pub const MAX_BUCKETS: i64 = 1_500;

/// Units recognised at the end of a metric name (`_total` aside), when the sender declared none.
const NAME_UNITS: [&str; 9] = [
    "bytes", "seconds", "ratio", "celsius", "percent", "hertz", "volts", "watts", "joules",
];

/// One series' values over both windows.
#[derive(Debug, Clone)]
pub struct SeriesWindows {
    pub meta: Arc<SeriesMeta>,
    /// Its unit, per second for a counter (`bytes/s`), if known.
    pub unit: Option<String>,
    pub before: Vec<f64>,
    pub after: Vec<f64>,
}

/// One series' comparison.
#[derive(Debug, Clone)]
pub struct ComparedSeries {
    pub meta: Arc<SeriesMeta>,
    pub unit: Option<String>,
    pub comparison: Comparison,
}

/// Where a pair of windows is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Raw,
    Rollup(Resolution),
}

/// Reads `series` over both windows (see the module header); `now_ms` places retention.
pub fn read_windows(
    tsdb: &Tsdb,
    series: &[Arc<SeriesMeta>],
    before: Window,
    after: Window,
    now_ms: i64,
) -> Result<Vec<SeriesWindows>, StoreError> {
    let source = source(tsdb, before, after, now_ms);
    series
        .iter()
        .map(|meta| {
            Ok(SeriesWindows {
                meta: meta.clone(),
                unit: unit(tsdb, meta),
                before: values(tsdb, meta, before, source)?,
                after: values(tsdb, meta, after, source)?,
            })
        })
        .collect()
}

/// Compares every series' windows, most changed first (`analytics::compare::rank_order`).
pub fn compare_windows(windows: &[SeriesWindows]) -> Vec<ComparedSeries> {
    let mut out: Vec<ComparedSeries> = windows
        .iter()
        .map(|w| ComparedSeries {
            meta: w.meta.clone(),
            unit: w.unit.clone(),
            comparison: compare(&w.before, &w.after),
        })
        .collect();
    out.sort_by(|a, b| rank_order(&a.comparison, &b.comparison));
    out
}

fn source(tsdb: &Tsdb, before: Window, after: Window, now_ms: i64) -> Source {
    let retention = &tsdb.config().retention;
    let kept_since = |keep: Duration| now_ms.saturating_sub(keep.as_millis() as i64);
    let earliest = before.start_ms.min(after.start_ms);
    let span = (before.end_ms - before.start_ms).max(after.end_ms - after.start_ms);
    if span <= MAX_RAW_SPAN_MS && earliest >= kept_since(retention.raw) {
        return Source::Raw;
    }
    Resolution::ALL
        .into_iter()
        .find(|&res| {
            let keep = match res {
                Resolution::OneMinute => retention.rollup_1m,
                Resolution::FiveMinutes => retention.rollup_5m,
                Resolution::OneHour => retention.rollup_1h,
            };
            span / res.millis() <= MAX_BUCKETS && earliest >= kept_since(keep)
        })
        .map_or(Source::Rollup(Resolution::OneHour), Source::Rollup)
}

/// The values of one series over `window` (half-open) from `source`, rates for a counter.
fn values(
    tsdb: &Tsdb,
    meta: &SeriesMeta,
    window: Window,
    source: Source,
) -> Result<Vec<f64>, StoreError> {
    let counter = meta.kind == MetricKind::Counter;
    // The store's reads include both ends.
    let last_ms = window.end_ms - 1;
    Ok(match source {
        Source::Raw => {
            let samples = tsdb.read_raw(meta.id, window.start_ms, last_ms)?;
            if counter {
                rates(&samples)
            } else {
                samples.into_iter().map(|(_, v)| v).collect()
            }
        }
        Source::Rollup(res) => {
            let buckets = tsdb.read_rollup(meta.id, res, window.start_ms, last_ms)?;
            let seconds = res.millis() as f64 / 1000.0;
            buckets
                .into_iter()
                .map(|(_, a)| {
                    if counter {
                        a.increase / seconds
                    } else {
                        a.avg()
                    }
                })
                .collect()
        }
    })
}

/// Per-second rates between consecutive samples of a counter; a decrease is a reset from 0.
fn rates(samples: &[(i64, f64)]) -> Vec<f64> {
    samples
        .windows(2)
        .filter(|w| w[1].0 > w[0].0)
        .map(|w| {
            let increase = if w[1].1 >= w[0].1 {
                w[1].1 - w[0].1
            } else {
                w[1].1
            };
            increase / ((w[1].0 - w[0].0) as f64 / 1000.0)
        })
        .collect()
}

/// The series' unit: as its sender declared it, else from its name's suffix; per second for a
/// counter.
fn unit(tsdb: &Tsdb, meta: &SeriesMeta) -> Option<String> {
    let name = meta.labels.metric_name();
    let declared = tsdb.family(name).map(|f| f.unit).filter(|u| !u.is_empty());
    let base = name.strip_suffix("_total").unwrap_or(name);
    let unit = declared.or_else(|| {
        NAME_UNITS
            .iter()
            .find(|u| base.ends_with(&format!("_{u}")))
            .map(|u| (*u).to_owned())
    });
    match meta.kind {
        MetricKind::Counter => Some(format!("{}/s", unit.as_deref().unwrap_or("1"))),
        MetricKind::Gauge => unit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{MemoryKv, Sample, SeriesId, StorageConfig};
    use hcmon_common::Labels;

    const T0: i64 = 1_700_000_000_000;
    const HOUR: i64 = 3_600_000;

    fn meta(id: u64, name: &str, kind: MetricKind) -> Arc<SeriesMeta> {
        Arc::new(SeriesMeta {
            id: SeriesId(id),
            labels: Labels::new(name, [("node".to_owned(), "a".to_owned())]).unwrap(),
            kind,
            help: String::new(),
        })
    }

    #[test]
    fn counters_are_rates_gauges_values_and_the_shifted_series_ranks_first() {
        let tsdb = Tsdb::open(Box::new(MemoryKv::default()), StorageConfig::default())
            .unwrap()
            .tsdb;
        let flat = meta(1, "queue_depth", MetricKind::Gauge);
        let shifted = meta(2, "app_latency_seconds", MetricKind::Gauge);
        let counter = meta(3, "requests_total", MetricKind::Counter);
        let mut samples = Vec::new();
        for i in 0..720i64 {
            let ts = T0 + i * 10_000;
            let wobble = (i % 7) as f64 * 0.01;
            let after = i >= 360;
            samples.push(Sample {
                series: SeriesId(1),
                timestamp_ms: ts,
                value: 5.0 + wobble,
            });
            samples.push(Sample {
                series: SeriesId(2),
                timestamp_ms: ts,
                value: if after { 0.5 } else { 0.2 } + wobble,
            });
            // 2/s throughout, reset to 0 half-way.
            let count = if after { (i - 360) * 20 } else { i * 20 };
            samples.push(Sample {
                series: SeriesId(3),
                timestamp_ms: ts,
                value: count as f64,
            });
        }
        tsdb.append(None, &samples).unwrap();
        let before = Window {
            start_ms: T0,
            end_ms: T0 + HOUR - 1,
        };
        let after = Window {
            start_ms: T0 + HOUR,
            end_ms: T0 + 2 * HOUR,
        };
        let all = [flat, shifted, counter];
        let windows = read_windows(&tsdb, &all, before, after, T0 + 2 * HOUR).unwrap();
        assert_eq!(windows[0].before.len(), 360);
        assert_eq!(windows[2].before, vec![2.0; 359]);
        assert_eq!(windows[2].after.len(), 359);
        assert!(windows[2].after.iter().all(|&r| r == 2.0));
        let units: Vec<_> = windows.iter().map(|w| w.unit.clone()).collect();
        assert_eq!(
            units,
            [None, Some("seconds".into()), Some("1/s".into())],
            "units"
        );
        let compared = compare_windows(&windows);
        let name = |c: &ComparedSeries| c.meta.labels.metric_name().to_owned();
        assert_eq!(name(&compared[0]), "app_latency_seconds");
        assert!(compared[0].comparison.significant);
        assert!(compared[1..].iter().all(|c| !c.comparison.significant));
        // Long windows read rollups: a day each gives 1-minute buckets.
        let day = 24 * HOUR;
        let long = |start| Window {
            start_ms: start,
            end_ms: start + day,
        };
        assert_eq!(
            source(&tsdb, long(T0), long(T0 + day), T0 + 2 * day),
            Source::Rollup(Resolution::OneMinute)
        );
        assert_eq!(source(&tsdb, before, after, T0 + 2 * HOUR), Source::Raw);
        let old = T0 - 60 * day;
        assert_eq!(
            source(&tsdb, long(old), long(old + day), T0),
            Source::Rollup(Resolution::FiveMinutes)
        );
    }

    #[test]
    fn a_sample_at_the_boundary_belongs_to_the_after_window_only() {
        let tsdb = Tsdb::open(Box::new(MemoryKv::default()), StorageConfig::default())
            .unwrap()
            .tsdb;
        let gauge = meta(1, "queue_depth", MetricKind::Gauge);
        let samples: Vec<Sample> = (0..=12i64)
            .map(|i| Sample {
                series: SeriesId(1),
                timestamp_ms: T0 + i * 10_000,
                value: i as f64,
            })
            .collect();
        tsdb.append(None, &samples).unwrap();
        let boundary = T0 + 60_000;
        let before = Window {
            start_ms: T0,
            end_ms: boundary,
        };
        let after = Window {
            start_ms: boundary,
            end_ms: T0 + 120_000,
        };
        let windows = read_windows(&tsdb, &[gauge], before, after, T0 + HOUR).unwrap();
        assert_eq!(windows[0].before, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(windows[0].after, [6.0, 7.0, 8.0, 9.0, 10.0, 11.0]);
    }
}

//! A node's data-quality report from the tracker's counts: the five dimensions' scores with
//! the checks behind them, the gaps, and the worst series. Pure given the catalog.
//!
//! - **Completeness**: received ÷ expected at each series' interval, up to one interval (and
//!   the on-time slack) before now. A series that stopped while the node's other series at
//!   the same interval go on is *retired* after ten intervals (a process that left the top
//!   ten, an unmounted disk) and no longer counted; when the whole node is silent nothing is
//!   retired, so an outage counts as missing data.
//! - **Consistency**: counters that went backwards without a reset and duplicates with another
//!   value, per sample; and per node, values that contradict each other (available memory or
//!   filesystem space above the total, a used ratio that is not 1 − available ÷ total).
//! - **Accuracy**: impossible values for the series' unit; per node, the clock offset
//!   estimated from the smallest batch lag (1 s is free, a minute or more scores 0).
//! - **Timeliness**: live samples arriving within their interval plus 2 s; back-fill (over
//!   5 min late) is counted apart, as late but not bad.
//! - **Validity**: label values outside their schema (`le`, `quantile`, `cpu`), and samples
//!   ingest refused from the node as invalid.

use super::dimension::{Dimension, Scores};
use super::node::{LAG_BOUNDS_MS, NodeQuality};
use super::series::{Counts, ON_TIME_SLACK_MS, SeriesQuality};
use crate::catalog::SeriesCatalog;
use crate::storage::SeriesId;
use serde::Serialize;
use std::collections::HashMap;

/// A series silent for this many of its intervals while its node's others go on is retired.
const RETIRE_AFTER_INTERVALS: i64 = 10;

/// Gaps listed per node.
const GAPS_LISTED: usize = 10;

/// One check and what it found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub dimension: Dimension,
    /// What is checked, e.g. `counter_backwards`.
    pub check: &'static str,
    pub failed: u64,
    /// Out of how many (samples, pairs, series).
    pub of: u64,
    /// The worst example, for a person.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub example: String,
}

/// A run of missing samples of one series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesGap {
    pub series: String,
    pub after_ms: i64,
    pub before_ms: i64,
    pub missing: u32,
}

/// One series' scores.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesReport {
    pub series: String,
    pub scores: Scores,
    pub overall: f64,
    pub interval_ms: i64,
    pub received: u32,
    pub expected: u32,
    pub last_ms: i64,
    /// Silent since `last_ms` while the node goes on.
    pub retired: bool,
    pub gaps: Vec<SeriesGap>,
}

/// One node's report. For remote-written and OTLP series (no node) the node is empty.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeReport {
    pub node: String,
    pub scores: Scores,
    pub overall: f64,
    pub failing: Vec<Dimension>,
    pub checks: Vec<Check>,
    pub series: usize,
    pub received: u64,
    pub expected: u64,
    /// The smallest batch lag's reading of the node's clock against the collector's
    /// (positive: ahead), when it is off by more than a second.
    pub clock_offset_ms: Option<i64>,
    /// 99th percentile of live batches' lag (arrival − newest sample), as a bucket bound.
    pub lag_p99_ms: Option<i64>,
    /// The newest gaps, newest first.
    pub gaps: Vec<SeriesGap>,
    /// The series with the lowest overall scores, worst first.
    pub worst: Vec<SeriesReport>,
    /// Series whose completeness or validity is below its threshold: their anomaly verdicts
    /// are low-confidence.
    #[serde(skip)]
    pub low_confidence: Vec<SeriesId>,
    /// The smallest interval among the node's series.
    pub interval_ms: i64,
    /// Since when samples are missing, for the recommendation: the oldest gap or silence in
    /// the window.
    pub missing_since_ms: Option<i64>,
    /// What to do, naming the cause (`recommend.rs`).
    pub recommendations: Vec<String>,
}

/// Every node's report at one evaluation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct QualityReport {
    pub evaluated_ms: i64,
    pub window_ms: i64,
    pub nodes: Vec<NodeReport>,
    /// All low-confidence series, sorted.
    #[serde(skip)]
    pub low_confidence: Vec<SeriesId>,
}

fn share(bad: u64, of: u64) -> f64 {
    if of == 0 {
        1.0
    } else {
        1.0 - (bad as f64 / of as f64).min(1.0)
    }
}

/// Accuracy left by a clock offset: a second is free, a minute or more scores 0.
pub fn clock_factor(offset_ms: i64) -> f64 {
    let off = offset_ms.unsigned_abs() as f64;
    (1.0 - (off - 1_000.0).max(0.0) / 59_000.0).clamp(0.0, 1.0)
}

/// The value pairs that must hold `part ≤ whole` on a node: metric names, and the label that
/// pairs their series (empty: the node's one series).
const PART_OF_WHOLE: [(&str, &str, &str); 4] = [
    (
        "node_memory_MemAvailable_bytes",
        "node_memory_MemTotal_bytes",
        "",
    ),
    (
        "node_memory_SwapFree_bytes",
        "node_memory_SwapTotal_bytes",
        "",
    ),
    (
        "node_filesystem_avail_bytes",
        "node_filesystem_size_bytes",
        "mountpoint",
    ),
    (
        "node_filesystem_free_bytes",
        "node_filesystem_size_bytes",
        "mountpoint",
    ),
];

/// A ratio and the parts it is computed from, `ratio = 1 − available ÷ total`, as the agent
/// computes its used ratios in the same collection: the three must agree to a point.
const RATIO_OF_PARTS: [(&str, &str, &str); 2] = [
    (
        "node_memory_used_ratio",
        "node_memory_MemAvailable_bytes",
        "node_memory_MemTotal_bytes",
    ),
    (
        "node_filesystem_used_ratio",
        "node_filesystem_avail_bytes",
        "node_filesystem_size_bytes",
    ),
];

/// How far a ratio may stray from what its parts give (rounding, a part read a moment apart).
const RATIO_TOLERANCE: f64 = 0.01;

/// Among a node's newest values, keyed by (metric name, mountpoint): the pairs checked, those
/// that contradict each other (a part above its whole, a ratio its parts do not give), and
/// the first contradiction as a person reads it.
fn contradictions(last: &HashMap<(String, String), f64>) -> (u64, u64, Option<String>) {
    let (mut pairs, mut found, mut example) = (0u64, 0u64, None);
    let on = |mountpoint: &str| match mountpoint.is_empty() {
        true => String::new(),
        false => format!(" on {mountpoint}"),
    };
    let get = |name: &str, mountpoint: &str| last.get(&(name.to_owned(), mountpoint.to_owned()));
    // In name order, so the example named is the same at every evaluation.
    let mut sorted: Vec<_> = last.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    for ((name, mountpoint), &value) in sorted {
        for (part, whole, _) in PART_OF_WHOLE.iter().filter(|(p, ..)| p == name) {
            let Some(&total) = get(whole, mountpoint) else {
                continue;
            };
            pairs += 1;
            if value > total {
                found += 1;
                example.get_or_insert_with(|| {
                    format!("{part} ({value}) above {whole} ({total}){}", on(mountpoint))
                });
            }
        }
        for (ratio, available, total) in RATIO_OF_PARTS.iter().filter(|(r, ..)| r == name) {
            let (Some(&avail), Some(&size)) = (get(available, mountpoint), get(total, mountpoint))
            else {
                continue;
            };
            if size <= 0.0 {
                continue;
            }
            pairs += 1;
            let implied = 1.0 - avail / size;
            if (value - implied).abs() > RATIO_TOLERANCE {
                found += 1;
                example.get_or_insert_with(|| {
                    format!(
                        "{ratio} ({value}) is not 1 − {available} ÷ {total} ({implied:.4}){}",
                        on(mountpoint)
                    )
                });
            }
        }
    }
    (pairs, found, example)
}

/// The series text and (name, pairing label value) of a series.
struct Named {
    text: String,
    name: String,
    mountpoint: String,
    probe: Option<String>,
}

fn named(catalog: &SeriesCatalog, id: SeriesId) -> Named {
    match catalog.get(id) {
        Some(meta) => {
            let labels = &meta.labels;
            // A probe's series carry the probe's `name` and its `target`.
            let probe = labels
                .get("target")
                .and(labels.get("name"))
                .map(str::to_owned);
            Named {
                text: labels.to_string(),
                name: labels.metric_name().to_owned(),
                mountpoint: labels.get("mountpoint").unwrap_or_default().to_owned(),
                probe,
            }
        }
        None => Named {
            text: format!("(series {})", id.0),
            name: String::new(),
            mountpoint: String::new(),
            probe: None,
        },
    }
}

/// When a series' expected samples end: one interval and the slack before now, or its last
/// sample once it is retired.
fn until(series: &SeriesQuality, now_ms: i64, retired: bool) -> i64 {
    if retired {
        series.last_ms
    } else {
        now_ms - series.interval_ms - ON_TIME_SLACK_MS
    }
}

fn series_scores(counts: &Counts, received: u32, expected: u32, labels_valid: bool) -> Scores {
    Scores {
        completeness: if expected == 0 {
            1.0
        } else {
            (f64::from(received) / f64::from(expected)).min(1.0)
        },
        consistency: share(
            u64::from(counts.backwards + counts.duplicates),
            u64::from(counts.judged),
        ),
        accuracy: share(u64::from(counts.impossible), u64::from(counts.judged)),
        timeliness: share(
            u64::from(counts.late),
            u64::from(counts.on_time + counts.late),
        ),
        validity: if labels_valid { 1.0 } else { 0.0 },
    }
}

/// Per interval, the newest sample among a node's series: what "the node goes on" means.
fn newest_at(quality: &NodeQuality) -> HashMap<i64, i64> {
    let mut newest_at: HashMap<i64, i64> = HashMap::new();
    for s in quality.series.values() {
        let newest = newest_at.entry(s.interval_ms).or_insert(i64::MIN);
        *newest = (*newest).max(s.last_ms);
    }
    newest_at
}

/// One series evaluated, with what the node's totals need.
struct Evaluated {
    report: SeriesReport,
    counts: Counts,
    named: Named,
    /// Since when it misses samples in the window, if it does.
    missing_since: Option<i64>,
}

/// Evaluates one series; `None` when it has nothing in the window.
fn evaluate_series(
    id: SeriesId,
    s: &SeriesQuality,
    catalog: &SeriesCatalog,
    newest_at: &HashMap<i64, i64>,
    now_ms: i64,
    half_ms: i64,
) -> Option<Evaluated> {
    let window_start = (now_ms.div_euclid(half_ms) - 1) * half_ms;
    let counts = s.window(now_ms, half_ms);
    if counts.received == 0 && counts.judged == 0 && s.last_ms < window_start {
        // Nothing in the window: not part of the node's present.
        return None;
    }
    let retired = s.interval_ms > 0
        && newest_at
            .get(&s.interval_ms)
            .is_some_and(|&newest| s.last_ms < newest - RETIRE_AFTER_INTERVALS * s.interval_ms);
    let expected = s.expected(until(s, now_ms, retired), now_ms, half_ms) as u32;
    let received = counts.received;
    let scores = series_scores(&counts, received, expected, s.labels_valid);
    let named = named(catalog, id);
    let mut missing_since = None;
    if !retired && expected > received && s.interval_ms > 0 {
        // Silent since its last sample, or missing in gaps: the oldest in the window.
        let silent = now_ms - s.last_ms > 2 * s.interval_ms + ON_TIME_SLACK_MS;
        missing_since = s
            .gaps
            .iter()
            .map(|g| g.after_ms)
            .filter(|&t| t >= window_start)
            .min()
            .or(silent.then_some(s.last_ms));
    }
    let gaps: Vec<SeriesGap> = s
        .gaps
        .iter()
        .filter(|g| g.before_ms >= window_start)
        .map(|g| SeriesGap {
            series: match &named.probe {
                Some(probe) => format!("probe {probe}: {}", named.text),
                None => named.text.clone(),
            },
            after_ms: g.after_ms,
            before_ms: g.before_ms,
            missing: g.missing,
        })
        .collect();
    Some(Evaluated {
        report: SeriesReport {
            series: named.text.clone(),
            overall: scores.overall(),
            scores,
            interval_ms: s.interval_ms,
            received,
            expected,
            last_ms: s.last_ms,
            retired,
            gaps,
        },
        counts,
        named,
        missing_since,
    })
}

/// The reports of the series `ids` among a node's.
pub fn series(
    quality: &NodeQuality,
    ids: &[SeriesId],
    catalog: &SeriesCatalog,
    now_ms: i64,
    half_ms: i64,
) -> Vec<SeriesReport> {
    let newest_at = newest_at(quality);
    ids.iter()
        .filter_map(|id| {
            let s = quality.series.get(id)?;
            evaluate_series(*id, s, catalog, &newest_at, now_ms, half_ms).map(|e| e.report)
        })
        .collect()
}

/// The report of node `node`.
pub fn node(
    node: &str,
    quality: &NodeQuality,
    catalog: &SeriesCatalog,
    now_ms: i64,
    half_ms: i64,
    worst_series: usize,
) -> NodeReport {
    let newest_at = newest_at(quality);
    let mut totals = Counts::default();
    let (mut received, mut expected) = (0u64, 0u64);
    let mut invalid_series = 0u64;
    let mut reports: Vec<SeriesReport> = Vec::new();
    let mut gaps: Vec<SeriesGap> = Vec::new();
    let mut low_confidence = Vec::new();
    let mut missing_since: Option<i64> = None;
    let mut interval_ms = i64::MAX;
    let mut examples: HashMap<&'static str, (u32, String)> = HashMap::new();
    let mut last_values: HashMap<(String, String), f64> = HashMap::new();
    for (&id, s) in &quality.series {
        let Some(Evaluated {
            report,
            counts,
            named,
            missing_since: since,
        }) = evaluate_series(id, s, catalog, &newest_at, now_ms, half_ms)
        else {
            continue;
        };
        if s.interval_ms > 0 {
            interval_ms = interval_ms.min(s.interval_ms);
        }
        if !report.retired {
            received += u64::from(report.received.min(report.expected));
            expected += u64::from(report.expected);
        }
        if let Some(since) = since {
            missing_since = Some(missing_since.map_or(since, |m| m.min(since)));
        }
        totals.add(&counts);
        if !s.labels_valid {
            invalid_series += 1;
            examples
                .entry("labels_outside_schema")
                .or_insert((1, named.text.clone()));
        }
        for (check, failed) in [
            ("counter_backwards", counts.backwards),
            ("conflicting_duplicates", counts.duplicates),
            ("impossible_values", counts.impossible),
            ("late_samples", counts.late),
        ] {
            if failed > 0 {
                let worst = examples.entry(check).or_insert((0, String::new()));
                if failed > worst.0 {
                    let text = match check {
                        "impossible_values" => format!("{} ({})", named.text, s.class.rule()),
                        _ => named.text.clone(),
                    };
                    *worst = (failed, text);
                }
            }
        }
        if !report.scores.confident() {
            low_confidence.push(id);
        }
        if !named.name.is_empty() && s.last_value.is_finite() {
            last_values.insert((named.name.clone(), named.mountpoint.clone()), s.last_value);
        }
        gaps.extend(report.gaps.iter().cloned());
        reports.push(report);
    }
    let (pairs, contradictions, example) = contradictions(&last_values);
    if let Some(example) = example {
        examples.insert("values_contradict", (1, example));
    }
    // Batches: lag percentile, clock offset, refusals.
    let half = now_ms.div_euclid(half_ms);
    let batches: Vec<_> = quality
        .batches
        .iter()
        .filter(|b| b.index >= half - 1)
        .collect();
    let mut lags = [0u64; LAG_BOUNDS_MS.len() + 1];
    let mut min_lag: Option<i64> = None;
    let mut refused = 0u64;
    for b in &batches {
        for (total, &n) in lags.iter_mut().zip(b.lags.iter()) {
            *total += u64::from(n);
        }
        if let Some(m) = b.min_lag_ms {
            min_lag = Some(min_lag.map_or(m, |x| x.min(m)));
        }
        refused += u64::from(b.refused_samples);
    }
    let batch_count: u64 = lags.iter().sum();
    let lag_p99_ms = (batch_count > 0).then(|| {
        let target = (batch_count as f64 * 0.99).ceil() as u64;
        let mut seen = 0;
        for (i, &n) in lags.iter().enumerate() {
            seen += n;
            if seen >= target {
                return LAG_BOUNDS_MS.get(i).copied().unwrap_or(BACKFILL_BOUND_MS);
            }
        }
        BACKFILL_BOUND_MS
    });
    // The smallest lag is the offset plus the quickest delivery: a negative one is a clock
    // ahead; one over a second is a clock behind, or a slow path.
    let clock_offset_ms = min_lag
        .filter(|&m| !(-1_000..=1_000).contains(&m))
        .map(|m| -m);
    let judged = u64::from(totals.judged);
    let series_count = reports.len() as u64;
    let scores = Scores {
        completeness: share(expected.saturating_sub(received), expected),
        consistency: share(u64::from(totals.backwards + totals.duplicates), judged)
            * share(contradictions, pairs),
        accuracy: share(u64::from(totals.impossible), judged)
            * clock_offset_ms.map_or(1.0, clock_factor),
        timeliness: share(
            u64::from(totals.late),
            u64::from(totals.on_time + totals.late),
        ),
        validity: share(invalid_series, series_count) * share(refused, judged + refused),
    };
    let mut checks = vec![
        Check {
            dimension: Dimension::Completeness,
            check: "samples_missing",
            failed: expected.saturating_sub(received),
            of: expected,
            example: String::new(),
        },
        Check {
            dimension: Dimension::Consistency,
            check: "counter_backwards",
            failed: u64::from(totals.backwards),
            of: judged,
            example: String::new(),
        },
        Check {
            dimension: Dimension::Consistency,
            check: "conflicting_duplicates",
            failed: u64::from(totals.duplicates),
            of: judged,
            example: String::new(),
        },
        Check {
            dimension: Dimension::Consistency,
            check: "values_contradict",
            failed: contradictions,
            of: pairs,
            example: String::new(),
        },
        Check {
            dimension: Dimension::Accuracy,
            check: "impossible_values",
            failed: u64::from(totals.impossible),
            of: judged,
            example: String::new(),
        },
        Check {
            dimension: Dimension::Accuracy,
            check: "clock_offset",
            failed: u64::from(clock_offset_ms.is_some_and(|o| clock_factor(o) < 1.0)),
            of: u64::from(min_lag.is_some()),
            example: clock_offset_ms
                .map(|o| format!("{:+.1} s against the collector", o as f64 / 1000.0))
                .unwrap_or_default(),
        },
        Check {
            dimension: Dimension::Timeliness,
            check: "late_samples",
            failed: u64::from(totals.late),
            of: u64::from(totals.on_time + totals.late),
            example: String::new(),
        },
        Check {
            dimension: Dimension::Timeliness,
            check: "backfilled_samples",
            failed: 0,
            of: u64::from(totals.backfill),
            example: String::new(),
        },
        Check {
            dimension: Dimension::Validity,
            check: "labels_outside_schema",
            failed: invalid_series,
            of: series_count,
            example: String::new(),
        },
        Check {
            dimension: Dimension::Validity,
            check: "refused_at_ingest",
            failed: refused,
            of: judged + refused,
            example: String::new(),
        },
    ];
    for check in &mut checks {
        if let Some((_, example)) = examples.remove(check.check)
            && check.example.is_empty()
        {
            check.example = example;
        }
    }
    gaps.sort_by_key(|g| std::cmp::Reverse(g.before_ms));
    gaps.truncate(GAPS_LISTED);
    reports.sort_by(|a, b| {
        a.overall
            .total_cmp(&b.overall)
            .then(a.series.cmp(&b.series))
    });
    reports.truncate(worst_series);
    low_confidence.sort();
    NodeReport {
        node: node.to_owned(),
        overall: scores.overall(),
        failing: scores.failing(),
        scores,
        checks,
        series: series_count as usize,
        received,
        expected,
        clock_offset_ms,
        lag_p99_ms,
        gaps,
        worst: reports,
        low_confidence,
        interval_ms: if interval_ms == i64::MAX {
            0
        } else {
            interval_ms
        },
        missing_since_ms: missing_since,
        recommendations: Vec::new(),
    }
}

/// The lag bucket above the last bound.
const BACKFILL_BOUND_MS: i64 = super::series::BACKFILL_AFTER_MS;

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str, f64)]) -> HashMap<(String, String), f64> {
        pairs
            .iter()
            .map(|(n, m, v)| (((*n).to_owned(), (*m).to_owned()), *v))
            .collect()
    }

    #[test]
    fn parts_above_wholes_and_ratios_their_parts_do_not_give_contradict() {
        let consistent = values(&[
            ("node_memory_MemAvailable_bytes", "", 2e9),
            ("node_memory_MemTotal_bytes", "", 8e9),
            ("node_memory_used_ratio", "", 0.75),
            ("node_filesystem_avail_bytes", "/", 30.0),
            ("node_filesystem_size_bytes", "/", 100.0),
            ("node_filesystem_used_ratio", "/", 0.7),
        ]);
        assert_eq!(contradictions(&consistent), (4, 0, None));
        let broken = values(&[
            ("node_filesystem_avail_bytes", "/srv", 30.0),
            ("node_filesystem_size_bytes", "/srv", 100.0),
            ("node_filesystem_used_ratio", "/srv", 0.2),
        ]);
        let (pairs, found, example) = contradictions(&broken);
        assert_eq!((pairs, found), (2, 1));
        assert_eq!(
            example.unwrap(),
            "node_filesystem_used_ratio (0.2) is not 1 − node_filesystem_avail_bytes ÷ node_filesystem_size_bytes (0.7000) on /srv"
        );
    }
}

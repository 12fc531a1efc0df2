//! The comparison and experiment API's bodies (`/api/v1/compare`, `/api/v1/experiments`).
//! Differences are after − before; `null` where a window has too few values to say.

use super::Metric;
use super::annotations::TimeValue;
use serde::{Deserialize, Serialize};

/// A window of an answer, both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    /// Unix ms.
    pub start_ms: i64,
    pub end_ms: i64,
}

/// Count, mean, median and 95th percentile of one window; the statistics are `null` when it
/// has no values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowSummary {
    pub n: usize,
    #[serde(with = "crate::json_f64::option")]
    pub mean: Option<f64>,
    #[serde(with = "crate::json_f64::option")]
    pub median: Option<f64>,
    #[serde(with = "crate::json_f64::option")]
    pub p95: Option<f64>,
}

/// One series of a comparison.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareRow {
    pub metric: Metric,
    /// Per second for a counter, which is compared as a rate (`bytes/s`).
    pub unit: Option<String>,
    pub before: WindowSummary,
    pub after: WindowSummary,
    #[serde(with = "crate::json_f64::option")]
    pub diff_mean: Option<f64>,
    /// 95 % bootstrap interval, `[low, high]`.
    #[serde(with = "crate::json_f64::option_pair")]
    pub diff_mean_ci: Option<(f64, f64)>,
    #[serde(with = "crate::json_f64::option")]
    pub diff_median: Option<f64>,
    /// 95 % bootstrap interval, `[low, high]`.
    #[serde(with = "crate::json_f64::option_pair")]
    pub diff_median_ci: Option<(f64, f64)>,
    /// (mean after − mean before) / |mean before|, a fraction (0.1 is 10 % up); `null` when
    /// the mean before is 0.
    #[serde(with = "crate::json_f64::option")]
    pub relative_change: Option<f64>,
    #[serde(with = "crate::json_f64::option")]
    pub p_value: Option<f64>,
    /// Cliff's delta, -1..1: positive when after is larger.
    #[serde(with = "crate::json_f64::option")]
    pub effect_size: Option<f64>,
    pub significant: bool,
}

/// `GET /api/v1/compare`: the series, most changed first (significant ones by |effect size|,
/// then the rest).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub before: Range,
    pub after: Range,
    /// How the rows were computed, in words.
    pub method: String,
    pub series: Vec<CompareRow>,
}

/// Which statistic a criterion compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Statistic {
    Mean,
    Median,
    P95,
}

/// Which way success moves the statistic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Decrease,
    Increase,
}

/// "p95 down 10 %": `{"statistic": "p95", "direction": "decrease", "by_percent": 10}`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Criterion {
    pub statistic: Statistic,
    pub direction: Direction,
    pub by_percent: f64,
}

/// A window as a request gives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeRange {
    pub start: TimeValue,
    pub end: TimeValue,
}

/// `POST /api/v1/experiments`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewExperiment {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub baseline: TimeRange,
    pub treatment: TimeRange,
    /// Selectors of the series that define success.
    #[serde(rename = "match")]
    pub selectors: Vec<String>,
    pub criterion: Criterion,
}

/// An experiment, as listed, made and deleted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Experiment {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub baseline: Range,
    pub treatment: Range,
    #[serde(rename = "match")]
    pub selectors: Vec<String>,
    pub criterion: Criterion,
    pub created_by: String,
    /// Unix ms.
    pub created_ms: i64,
}

/// `GET /api/v1/experiments/{id}`: the experiment and its result now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentWithResult {
    #[serde(flatten)]
    pub experiment: Experiment,
    pub result: ExperimentResult,
}

/// Whether the criterion was met over every matched series with values in both windows, how
/// sure that is (the least sure series' share of bootstrap resamples meeting it), and the
/// comparison of baseline (before) and treatment (after).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentResult {
    pub met: bool,
    /// 0..1.
    #[serde(with = "crate::json_f64")]
    pub confidence: f64,
    /// The least sure series' change of the statistic, in %.
    #[serde(with = "crate::json_f64::option")]
    pub observed_change_percent: Option<f64>,
    /// How the comparison was computed, in words.
    pub method: String,
    pub series: Vec<CompareRow>,
}

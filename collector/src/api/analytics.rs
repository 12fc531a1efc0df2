//! The analytics endpoints' answers: anomaly verdicts (`/api/v1/anomalies`,
//! `/node_anomalies`), trends (`/trend`) and correlations (`/related`, `/correlations`).
//! Names the engines give (detectors, severities, features) are their own strings.

use super::Metric;
use serde::{Deserialize, Serialize};

/// One series' newest verdict in `GET /api/v1/anomalies`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesAnomaly {
    pub metric: Metric,
    /// Unix seconds of the judged sample.
    pub timestamp: f64,
    #[serde(with = "crate::json_f64")]
    pub value: f64,
    /// 0..1.
    #[serde(with = "crate::json_f64")]
    pub score: f64,
    pub is_anomaly: bool,
    /// `none`, `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// Not enough history yet: nothing can fire.
    pub learning: bool,
    /// The detectors that fired, strongest first.
    pub detectors: Vec<DetectorFired>,
    /// With `related=true`, the series that moved with an anomaly; `null` otherwise.
    pub related: Option<Vec<RelatedSeries>>,
    /// The series' data is incomplete or invalid (its completeness or validity below its
    /// threshold, `/api/v1/quality`): the verdict is low-confidence and anomaly rules do not
    /// fire on it.
    #[serde(default)]
    pub low_confidence: bool,
}

/// A detector that fired, with the range it expected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectorFired {
    pub detector: String,
    #[serde(with = "crate::json_f64")]
    pub strength: f64,
    /// `[low, high]`.
    pub expected: [crate::json_f64::JsonF64; 2],
}

/// One node's newest model verdict in `GET /api/v1/node_anomalies`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeAnomaly {
    pub node: String,
    /// Unix seconds of the start of the scored minute.
    pub minute: f64,
    #[serde(with = "crate::json_f64")]
    pub score: f64,
    pub is_anomaly: bool,
    /// Largest share of the isolation first.
    pub features: Vec<FeatureShare>,
    /// Unix seconds.
    pub trained_at: f64,
    pub training_rows: usize,
    /// The model that judged it: `isolation_forest` or `one_class_svm`.
    #[serde(default)]
    pub method: String,
}

/// A feature's value in the scored minute and its share of the isolation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureShare {
    pub feature: String,
    #[serde(with = "crate::json_f64")]
    pub value: f64,
    #[serde(with = "crate::json_f64")]
    pub share: f64,
}

/// One series in `GET /api/v1/trend`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Trend {
    pub metric: Metric,
    /// Samples the line was fitted to.
    pub samples: usize,
    #[serde(with = "crate::json_f64")]
    pub slope_per_second: f64,
    #[serde(with = "crate::json_f64")]
    pub r2: f64,
    /// Enough samples, explained well enough, to extrapolate.
    pub reliable: bool,
    pub forecast: Forecast,
    /// With `limit`: when the line reaches it; `null` when it cannot be told.
    pub time_to_limit: Option<TimeToLimit>,
    /// With `seasonal_step`: the Holt-Winters (or Holt) forecast; `null` otherwise.
    pub seasonal: Option<SeasonalForecast>,
}

/// The line's value at the horizon, with its prediction interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// Unix milliseconds.
    pub at_ms: i64,
    #[serde(with = "crate::json_f64")]
    pub value: f64,
    #[serde(with = "crate::json_f64")]
    pub low: f64,
    #[serde(with = "crate::json_f64")]
    pub high: f64,
    /// Coverage of `low..=high`.
    #[serde(with = "crate::json_f64")]
    pub confidence: f64,
}

/// When the line reaches the limit; the seconds count from the newest sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeToLimit {
    /// Unix milliseconds.
    pub at_ms: i64,
    #[serde(with = "crate::json_f64")]
    pub seconds: f64,
    #[serde(with = "crate::json_f64")]
    pub low_seconds: f64,
    /// `"+Inf"` when the limit might never be reached.
    #[serde(with = "crate::json_f64")]
    pub high_seconds: f64,
}

/// The smoothed forecast at the horizon, and the period it found (`null`: none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeasonalForecast {
    pub period_seconds: Option<f64>,
    #[serde(with = "crate::json_f64")]
    pub forecast: f64,
}

/// A series that moved with the one asked about (`/api/v1/related`, anomalies' evidence).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelatedSeries {
    /// The series' labels as a selector.
    pub series: String,
    /// Pearson's r at the lag.
    #[serde(with = "crate::json_f64")]
    pub r: f64,
    /// Positive: it moved this long before the anchor. Negative: after it.
    pub lag_seconds: f64,
    /// Grid points compared.
    pub points: usize,
    /// One line for people.
    pub description: String,
}

/// Two series that moved together, in `GET /api/v1/correlations`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CorrelatedPair {
    pub leader: String,
    pub follower: String,
    #[serde(with = "crate::json_f64")]
    pub r: f64,
    /// How long after the leader the follower moves; never negative.
    pub lag_seconds: f64,
    pub points: usize,
    pub description: String,
}

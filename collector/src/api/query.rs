//! Prometheus' query API (`/api/v1/query`, `/query_range`, `/series`, labels) and the
//! VictoriaMetrics export format.
//!
//! The server writes range answers by hand, for speed (see `http/query.rs`); [`Matrix`]
//! describes the same JSON, and the CLI decodes it.

use super::Metric;
use serde::{Deserialize, Serialize};

/// Which shape `result` has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResultType {
    Vector,
    Matrix,
    Scalar,
    String,
}

/// `GET /api/v1/query`: one sample per series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstantVector {
    #[serde(rename = "resultType")]
    pub result_type: ResultType,
    pub result: Vec<VectorSample>,
}

/// `GET /api/v1/query` of a scalar (`1+1`) or string expression: the one value, at the query's
/// time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstantValue {
    #[serde(rename = "resultType")]
    pub result_type: ResultType,
    pub result: Point,
}

/// A point as Prometheus writes it: Unix seconds and the value as text (`"+Inf"`, `"NaN"` too).
pub type Point = (f64, String);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VectorSample {
    pub metric: Metric,
    pub value: Point,
}

/// `GET /api/v1/query_range`: each series' points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Matrix {
    #[serde(rename = "resultType")]
    pub result_type: ResultType,
    pub result: Vec<RangeSeries>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RangeSeries {
    pub metric: Metric,
    pub values: Vec<Point>,
}

/// One line of `GET /api/v1/export`: a series' raw samples. Stored values are finite (ingest
/// refuses the rest), so they are plain JSON numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportLine {
    pub metric: Metric,
    pub values: Vec<f64>,
    /// Unix milliseconds, one per value.
    pub timestamps: Vec<i64>,
}

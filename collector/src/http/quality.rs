//! `/api/v1/quality`: data-quality scores per node, with the checks behind them, gaps, the worst
//! series, recommendations, and the overall score's trend and forecast (the trend engine over
//! the stored `hcmon_data_quality_score` history); `/api/v1/quality/series?match[]=` per series.

use super::error::{ApiError, success};
use super::params::Params;
use super::{ApiState, blocking};
use crate::analytics::trend::{Bound, TrendConfig, fit_line};
use crate::quality::{Dimension, NodeReport};
use crate::recorded::quality::OVERALL;
use crate::telemetry::DATA_QUALITY_SCORE;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use hcmon_common::{MatchOp, Matcher, Selector};
use serde::Serialize;
use std::time::Duration;

const DISABLED: &str =
    "data quality is disabled in this collector's config ([quality] enabled = false)";

/// History the trend is fitted on, and how far it is extrapolated.
const TREND_WINDOW: Duration = Duration::from_secs(6 * 3600);
const TREND_HORIZON: Duration = Duration::from_secs(3600);

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/quality", get(nodes))
        .route("/api/v1/quality/series", get(series))
}

/// The overall score's direction over the stored history.
#[derive(Debug, Serialize)]
struct Trend {
    /// Change per hour of the overall score.
    per_hour: f64,
    /// The overall score forecast an hour ahead, clamped to 0..1.
    forecast_1h: f64,
    /// When the fitted line falls below the lowest threshold (0.90), if it is heading there.
    #[serde(skip_serializing_if = "Option::is_none")]
    below_threshold_at: Option<f64>,
    samples: usize,
}

#[derive(Debug, Serialize)]
struct NodeQuality {
    #[serde(flatten)]
    report: NodeReport,
    thresholds: Vec<(Dimension, f64)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trend: Option<Trend>,
}

#[derive(Debug, Serialize)]
struct Nodes {
    evaluated: f64,
    window_seconds: f64,
    nodes: Vec<NodeQuality>,
}

/// The trend of `node`'s stored overall score. Blocking.
fn trend(state: &ApiState, node: &str, now_ms: i64) -> Option<Trend> {
    let selector = Selector {
        matchers: vec![
            Matcher::new("__name__", MatchOp::Equal, DATA_QUALITY_SCORE).ok()?,
            Matcher::new("node", MatchOp::Equal, node).ok()?,
            Matcher::new("dimension", MatchOp::Equal, OVERALL).ok()?,
        ],
    };
    let meta = state.catalog.select(&selector).into_iter().next()?;
    let start = now_ms - TREND_WINDOW.as_millis() as i64;
    let samples = state.tsdb.read_raw(meta.id, start, now_ms).ok()?;
    let fit = fit_line(&samples)?;
    let config = TrendConfig {
        window: TREND_WINDOW,
        horizon: TREND_HORIZON,
        ..TrendConfig::default()
    };
    let lowest = Dimension::ALL
        .iter()
        .map(|d| d.threshold())
        .fold(1.0, f64::min);
    Some(Trend {
        per_hour: fit.slope * 3600.0,
        forecast_1h: fit.forecast_with(&config).value.clamp(0.0, 1.0),
        below_threshold_at: fit
            .time_to_threshold(lowest, Bound::Lower, &config)
            .filter(|t| t.seconds > 0.0)
            .map(|t| t.at_ms as f64 / 1000.0),
        samples: samples.len(),
    })
}

/// Every node's newest scores (`?node=` one node's).
async fn nodes(State(state): State<ApiState>, params: Params) -> Result<Response, ApiError> {
    let Some(tracker) = state.quality.clone() else {
        return Err(ApiError::BadRequest(DISABLED.into()));
    };
    let only = params.get("node").map(str::to_owned);
    let data = blocking("/api/v1/quality", move || {
        let report = tracker.latest();
        let now = state.now_ms();
        let nodes = report
            .nodes
            .iter()
            .filter(|n| only.as_ref().is_none_or(|o| *o == n.node))
            .map(|n| NodeQuality {
                trend: trend(&state, &n.node, now),
                report: n.clone(),
                thresholds: Dimension::ALL.iter().map(|d| (*d, d.threshold())).collect(),
            })
            .collect();
        Nodes {
            evaluated: report.evaluated_ms as f64 / 1000.0,
            window_seconds: report.window_ms as f64 / 1000.0,
            nodes,
        }
    })
    .await?;
    Ok(success(data))
}

/// The series matching `match[]`, evaluated now, worst first.
async fn series(State(state): State<ApiState>, params: Params) -> Result<Response, ApiError> {
    let Some(tracker) = state.quality.clone() else {
        return Err(ApiError::BadRequest(DISABLED.into()));
    };
    let selected = state.select(&params.matches()?);
    let data = blocking("/api/v1/quality/series", move || {
        let ids: Vec<_> = selected.iter().map(|m| m.id).collect();
        tracker.series(&ids)
    })
    .await?;
    Ok(success(data))
}

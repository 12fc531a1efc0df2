//! The analytics endpoints: live anomaly verdicts (`/api/v1/anomalies`, `/node_anomalies`) and
//! the on-demand analyses over stored history (`/trend`, `/related`, `/correlations`), which
//! refuse inputs over their limits here and then run in [`Analyses`]' slots.

use super::analysis::Analyses;
use super::error::{ApiError, Feature, success};
use super::params::{Params, millis};
use super::{ApiState, metric};
use crate::analysis::{read_windows, related::related_series};
use crate::analytics::correlation::{CorrelationConfig, Related, correlated_pairs};
use crate::anomaly_watch::LatestVerdict;
use crate::api::analytics::{
    CorrelatedPair, DetectorFired, FeatureShare, Forecast, NodeAnomaly, RelatedSeries,
    SeasonalForecast, SeriesAnomaly, TimeToLimit, Trend,
};
use crate::json_f64::JsonF64;
use crate::storage::SeriesMeta;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/anomalies", get(anomalies))
        .route("/api/v1/node_anomalies", get(node_anomalies))
        .route("/api/v1/trend", get(trend))
        .route("/api/v1/related", get(related))
        .route("/api/v1/correlations", get(correlations))
}

/// Most series one trend or correlation request looks at: these read raw history on demand.
const MAX_ANALYSED_SERIES: usize = 200;

/// Most points a series is resampled to for `seasonal_step`: period detection costs n²/2, so
/// this is ~0.3 s of one core per series in a release build. Two weeks at one minute, or
/// 30 days at two minutes, fit.
const MAX_SEASONAL_POINTS: u128 = 25_000;

/// Longest correlation window, as points of the 10 s correlation grid: one day. Each pair of
/// series costs points × 61 lags, and `/api/v1/correlations` compares up to 19,900 pairs.
const MAX_CORRELATION_POINTS: u128 = 8_640;

/// How far back an anomaly's related series are searched.
const ANOMALY_RELATED_WINDOW: Duration = Duration::from_secs(1800);

/// `12345678` as `12,345,678`: limits are read by people.
fn thousands(n: u128) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Refuses a selection of more series than one analysis request looks at.
fn at_most_analysed(selected: usize) -> Result<(), ApiError> {
    if selected <= MAX_ANALYSED_SERIES {
        return Ok(());
    }
    Err(ApiError::BadParam {
        name: "match[]",
        message: format!(
            "selects {} series; one request analyses at most {MAX_ANALYSED_SERIES}: narrow the selector",
            thousands(selected as u128)
        ),
    })
}

/// The newest anomaly verdict of every series matching `match[]` (all when absent), highest
/// score first; `anomalous=true` keeps only series whose newest sample is an anomaly.
async fn anomalies(
    State(state): State<ApiState>,
    Extension(analyses): Extension<Analyses>,
    params: Params,
) -> Result<Response, ApiError> {
    let Some(watch) = &state.watch else {
        return Err(ApiError::Disabled(Feature::Analytics));
    };
    let series = if params.all("match[]").next().is_none() {
        state.catalog.all()
    } else {
        state.select(&params.matches()?)
    };
    let only_anomalous = params.get("anomalous") == Some("true");
    let mut found: Vec<_> = series
        .iter()
        .filter_map(|m| Some((m, watch.latest(m.id)?)))
        .filter(|(_, v)| !only_anomalous || v.is_anomaly)
        .collect();
    found.sort_by(|a, b| b.1.score.total_cmp(&a.1.score));
    // With related=true, the series that moved with each anomaly (the first five anomalies: the
    // search reads history) are attached as evidence.
    let mut related = HashMap::new();
    if params.get("related") == Some("true") {
        for (m, v) in found.iter().filter(|(_, v)| v.is_anomaly).take(5) {
            let window = ANOMALY_RELATED_WINDOW;
            let moved =
                find_related(&state, &analyses, (*m).clone(), v.timestamp_ms, window).await?;
            related.insert(m.id, moved);
        }
    }
    let data: Vec<SeriesAnomaly> = found
        .into_iter()
        .map(|(m, v)| {
            let low = state.quality.as_ref().is_some_and(|q| !q.confident(m.id));
            series_anomaly(m, &v, related.remove(&m.id), low)
        })
        .collect();
    Ok(success(data))
}

/// A series' verdict as `/api/v1/anomalies` lists it (and the live stream sends it).
pub(super) fn series_anomaly(
    m: &SeriesMeta,
    v: &LatestVerdict,
    related: Option<Vec<RelatedSeries>>,
    low_confidence: bool,
) -> SeriesAnomaly {
    SeriesAnomaly {
        metric: metric(&m.labels),
        timestamp: v.timestamp_ms as f64 / 1000.0,
        value: v.value,
        score: v.score,
        is_anomaly: v.is_anomaly,
        severity: v.severity.name().to_owned(),
        learning: v.learning,
        detectors: v
            .fired
            .iter()
            .map(|d| DetectorFired {
                detector: d.detector.name().to_owned(),
                strength: d.strength,
                expected: [JsonF64(d.expected.0), JsonF64(d.expected.1)],
            })
            .collect(),
        related,
        low_confidence,
    }
}

/// Every node's newest Isolation Forest verdict over its feature vector, with each feature's
/// value and share of the isolation.
async fn node_anomalies(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let Some(forests) = &state.forests else {
        return Err(ApiError::Disabled(Feature::Analytics));
    };
    let data: Vec<NodeAnomaly> = forests
        .verdicts()
        .into_iter()
        .map(|(node, v)| NodeAnomaly {
            node,
            minute: v.minute_ms as f64 / 1000.0,
            score: v.score,
            is_anomaly: v.is_anomaly,
            features: v
                .features
                .iter()
                .map(|&(feature, value, share)| FeatureShare {
                    feature: feature.to_owned(),
                    value,
                    share,
                })
                .collect(),
            trained_at: v.trained_at_ms as f64 / 1000.0,
            training_rows: v.training_rows,
            method: crate::node_forest::method_name(v.method).to_owned(),
        })
        .collect();
    Ok(success(data))
}

/// The trend of every series matching `match[]` over the last `window` (default 1 h): slope,
/// fit, a forecast at `horizon` (default 1 h) with its interval, and with `limit` (and `bound`
/// `upper`, the default, or `lower`) when the line reaches it: "disk full in 9 h (±2 h)".
async fn trend(
    State(state): State<ApiState>,
    Extension(analyses): Extension<Analyses>,
    params: Params,
) -> Result<Response, ApiError> {
    use crate::analytics::trend::{Bound, Smoother, TrendConfig, fit_line, resample};
    let selectors = params.matches()?;
    let config = TrendConfig {
        window: params.duration_or("window", Duration::from_secs(3600))?,
        horizon: params.duration_or("horizon", Duration::from_secs(3600))?,
        ..TrendConfig::default()
    };
    let limit = params.number("limit")?;
    let bounds = [("upper", Bound::Upper), ("lower", Bound::Lower)];
    let bound = params.choice("bound", &bounds)?.unwrap_or(Bound::Upper);
    // With seasonal_step, the window is also resampled to that step and smoothed with
    // Holt-Winters at its detected period (Holt's linear method when none is found).
    let seasonal_step = params.duration("seasonal_step")?;
    if let Some(step) = seasonal_step {
        // The grid runs from the oldest to the newest sample, so the window bounds it.
        let points = config.window.as_millis() / step.as_millis() + 1;
        if points > MAX_SEASONAL_POINTS {
            return Err(ApiError::BadParam {
                name: "seasonal_step",
                message: format!(
                    "seasonal_step={} over window={} gives up to {} points per series; the limit is {}: raise seasonal_step or shorten window",
                    params.get("seasonal_step").unwrap_or_default(),
                    params.get("window").unwrap_or("1h"),
                    thousands(points),
                    thousands(MAX_SEASONAL_POINTS)
                ),
            });
        }
    }
    // The parser bounds durations to ~3000 years, far from overflow.
    let end = state.now_ms();
    let start = end - millis(config.window);
    let series = state.select(&selectors);
    at_most_analysed(series.len())?;
    let history = state.history.clone();
    let advice = "select fewer series with match[], shorten window or raise seasonal_step";
    let data = analyses
        .run(&state.metrics, "/api/v1/trend", advice, move |budget| {
            let mut data = Vec::new();
            // One series at a time, so a long window holds one series' samples in memory.
            for meta in series {
                budget.check()?;
                let samples = history.read_raw(&meta, start, end)?;
                let Some(fit) = fit_line(&samples) else {
                    continue;
                };
                let forecast = fit.forecast_with(&config);
                let reaches = limit.and_then(|l| fit.time_to_threshold(l, bound, &config));
                let smoother = match seasonal_step.and_then(|step| resample(&samples, step)) {
                    Some(values) => Smoother::fit(&values, budget)?,
                    None => None,
                };
                let seasonal = seasonal_step.zip(smoother).map(|(step, smoother)| {
                    // Both durations are at most ~3000 years in ms, so this fits a usize.
                    let steps = (config.horizon.as_millis() / step.as_millis()) as usize;
                    SeasonalForecast {
                        period_seconds: smoother.period().map(|p| p as f64 * step.as_secs_f64()),
                        forecast: smoother.forecast_at(steps),
                    }
                });
                data.push(Trend {
                    metric: metric(&meta.labels),
                    samples: fit.n,
                    slope_per_second: fit.slope,
                    r2: fit.r2,
                    reliable: fit.is_reliable(&config),
                    forecast: Forecast {
                        at_ms: forecast.at_ms,
                        value: forecast.value,
                        low: forecast.low,
                        high: forecast.high,
                        confidence: forecast.confidence,
                    },
                    time_to_limit: reaches.map(|t| TimeToLimit {
                        at_ms: t.at_ms,
                        seconds: t.seconds,
                        low_seconds: t.low_seconds,
                        high_seconds: t.high_seconds,
                    }),
                    seasonal,
                });
            }
            Ok(data)
        })
        .await?;
    Ok(success(data))
}

/// A correlation `window` parameter (default 30 min), refused when longer than the grid allows.
fn correlation_window(params: &Params) -> Result<Duration, ApiError> {
    let window = params.duration_or("window", Duration::from_secs(1800))?;
    let step = CorrelationConfig::default().step;
    let points = window.as_millis() / step.as_millis();
    if points > MAX_CORRELATION_POINTS {
        return Err(ApiError::BadParam {
            name: "window",
            message: format!(
                "window={} gives {} points per series on the {}s correlation grid; the limit is {} (one day): shorten window",
                params.get("window").unwrap_or("30m"),
                thousands(points),
                step.as_secs(),
                thousands(MAX_CORRELATION_POINTS)
            ),
        });
    }
    Ok(window)
}

/// The series that moved with `anchor` in the `window` before `time`, in a slot.
async fn find_related(
    state: &ApiState,
    analyses: &Analyses,
    anchor: Arc<SeriesMeta>,
    time: i64,
    window: Duration,
) -> Result<Vec<RelatedSeries>, ApiError> {
    let (history, catalog) = (state.history.clone(), state.catalog.clone());
    let found = analyses
        .run(
            &state.metrics,
            "/api/v1/related",
            "shorten window",
            move |budget| related_series(&history, &catalog, &anchor, time, window, budget),
        )
        .await?;
    Ok(found.iter().map(related_series_response).collect())
}

fn related_series_response(r: &Related) -> RelatedSeries {
    RelatedSeries {
        series: r.candidate.clone(),
        r: r.r,
        lag_seconds: r.lag_ms as f64 / 1000.0,
        points: r.points,
        description: r.describe(),
    }
}

/// Series that moved with the one `match[]` selects, around `time` (default now): lagged
/// Pearson correlation over `window` (default 30 min, at most a day) with lags up to ±5 min,
/// strongest first, among at most 200 candidates (the anchor's node first).
async fn related(
    State(state): State<ApiState>,
    Extension(analyses): Extension<Analyses>,
    params: Params,
) -> Result<Response, ApiError> {
    let anchors = state.select(&params.matches()?);
    let [anchor] = anchors.as_slice() else {
        return Err(ApiError::BadParam {
            name: "match[]",
            message: format!(
                "selects {} series; it must select exactly one",
                anchors.len()
            ),
        });
    };
    let window = correlation_window(&params)?;
    let time = params.time_ms("time")?.unwrap_or_else(|| state.now_ms());
    let found = find_related(&state, &analyses, anchor.clone(), time, window).await?;
    Ok(success(found))
}

/// Every pair among the series `match[]` selects (at most 200) whose lagged correlation over
/// `window` (default 30 min, at most a day) before `time` (default now) reaches |r| ≥ 0.7,
/// strongest first.
async fn correlations(
    State(state): State<ApiState>,
    Extension(analyses): Extension<Analyses>,
    params: Params,
) -> Result<Response, ApiError> {
    let config = CorrelationConfig::default();
    let window = correlation_window(&params)?;
    let time = params.time_ms("time")?.unwrap_or_else(|| state.now_ms());
    let series = state.select(&params.matches()?);
    at_most_analysed(series.len())?;
    // Time, window (a day at most) and lag are bounded, far from overflow.
    let lag = millis(config.max_lag);
    let (start, end) = (time - millis(window) - lag, time);
    let history = state.history.clone();
    let advice = "select fewer series with match[] or shorten window";
    let pairs = analyses
        .run(
            &state.metrics,
            "/api/v1/correlations",
            advice,
            move |budget| {
                let windows =
                    read_windows(&history, series.iter().map(|m| &**m), start, end, budget)?;
                Ok(correlated_pairs(&windows, &config, budget)?)
            },
        )
        .await?;
    let data: Vec<CorrelatedPair> = pairs
        .iter()
        .map(|p| CorrelatedPair {
            leader: p.leader.clone(),
            follower: p.follower.clone(),
            r: p.r,
            lag_seconds: p.lag_ms as f64 / 1000.0,
            points: p.points,
            description: p.describe(),
        })
        .collect();
    Ok(success(data))
}

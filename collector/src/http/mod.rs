//! The HTTP face: `/metrics`, `/healthz` and the versioned API, shaped like Prometheus' HTTP API
//! so Grafana's Prometheus data source and Prometheus tooling can read hcmon directly.
//!
//! Handlers parse and validate parameters, then call the catalog and store; all failures go
//! through [`ApiError`], the one place that maps errors to HTTP responses.

mod exposition;

mod alerts;

mod analysis;

use crate::analytics::budget::Budget;
use crate::catalog::SeriesCatalog;
use crate::ingest::IngestService;
use crate::json_f64::JsonF64;
use crate::query::{self, MAX_POINTS, QueryError};
use crate::storage::{SeriesMeta, StoreError, Tsdb};
use crate::telemetry::CollectorMetrics;
use analysis::{ANALYSIS_TIME_LIMIT, Analyses, AnalysisError};
use axum::extract::{FromRequest, RawForm, RawQuery, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use hcmon_common::{Labels, Selector, SelectorError};
use prometheus::Encoder;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

/// What every handler can reach.
#[derive(Clone)]
pub struct ApiState {
    pub tsdb: Arc<Tsdb>,
    pub catalog: Arc<SeriesCatalog>,
    pub ingest: Arc<IngestService>,
    /// Live anomaly verdicts; `None` when `[analytics] enabled = false`.
    pub watch: Option<Arc<crate::anomaly_watch::AnomalyWatch>>,
    /// Per-node Isolation Forest verdicts; `None` when analytics are off.
    pub forests: Option<Arc<crate::node_forest::NodeForests>>,
    /// Alerts, silences and incidents; `None` when `[alerting] enabled = false`.
    pub alerting: Option<crate::alerting::service::Alerting>,
    pub metrics: Arc<CollectorMetrics>,
    pub metrics_staleness: Duration,
    pub clock: crate::ingest::Clock,
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/api/v1/query_range", get(query_range).post(query_range))
        .route("/api/v1/query", get(query_instant).post(query_instant))
        .route("/api/v1/series", get(series).post(series))
        .route("/api/v1/export", get(export).post(export))
        .route("/api/v1/labels", get(labels).post(labels))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/agents", get(agents))
        .route("/api/v1/agents/{node}", axum::routing::delete(forget_agent))
        .route("/api/v1/anomalies", get(anomalies))
        .route("/api/v1/node_anomalies", get(node_anomalies))
        .route("/api/v1/trend", get(trend))
        .route("/api/v1/related", get(related))
        .route("/api/v1/correlations", get(correlations))
        .route("/api/v1/admin/compact", post(compact))
        .merge(alerts::routes())
        .route(
            "/api/v1/write",
            post(remote_write).layer(axum::extract::DefaultBodyLimit::max(
                REMOTE_WRITE_BODY_LIMIT,
            )),
        )
        .layer(Extension(Analyses::new()))
        .with_state(state)
}

/// Largest compressed remote-write body accepted.
const REMOTE_WRITE_BODY_LIMIT: usize = 32 << 20;

/// A failed API request, rendered in Prometheus' error shape.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing parameter {0:?}")]
    MissingParam(&'static str),
    #[error("invalid parameter {name:?}: {message}")]
    BadParam { name: &'static str, message: String },
    #[error("invalid parameter {name:?}: {source}")]
    BadSelector {
        name: &'static str,
        source: SelectorError,
    },
    #[error("invalid parameter \"query\": {0}")]
    BadQuery(QueryError),
    #[error(
        "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"
    )]
    TooManyPoints,
    #[error("remote write refused: {0}")]
    RemoteWrite(#[from] crate::ingest::RemoteWriteError),
    #[error("{0}")]
    Forget(#[from] crate::ingest::ForgetError),
    #[error(
        "{request} stopped at its time limit of {}s: {advice}",
        ANALYSIS_TIME_LIMIT.as_secs()
    )]
    TimeLimit {
        request: &'static str,
        advice: &'static str,
    },
    #[error("the analysis failed; the collector's log says why")]
    AnalysisFailed,
    #[error("storage failure")]
    Store(#[from] StoreError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error_type) = match &self {
            ApiError::Store(e) => {
                tracing::error!(error = %e, "API request failed in storage");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
            // A sender retries on 5xx and drops on 4xx: only our own failures deserve a retry.
            ApiError::RemoteWrite(e) if e.retryable() => {
                tracing::error!(error = %e, "remote write failed in storage");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
            ApiError::Forget(crate::ingest::ForgetError::Unknown(_)) => {
                (StatusCode::NOT_FOUND, "not_found")
            }
            ApiError::Forget(crate::ingest::ForgetError::Connected(_)) => {
                (StatusCode::CONFLICT, "conflict")
            }
            ApiError::Forget(crate::ingest::ForgetError::Store(e)) => {
                tracing::error!(error = %e, "forgetting a node failed in storage");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
            // As Prometheus answers a query that ran out of time.
            ApiError::TimeLimit { .. } => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
            ApiError::AnalysisFailed => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            _ => (StatusCode::BAD_REQUEST, "bad_data"),
        };
        let body = json!({"status": "error", "errorType": error_type, "error": self.to_string()});
        (status, axum::Json(body)).into_response()
    }
}

/// Request parameters from the query string and, for POST, the form body.
struct Params(Vec<(String, String)>);

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let method = req.method().clone();
        let query = RawQuery(req.uri().query().map(str::to_owned));
        let form = RawForm::from_request(req, state)
            .await
            .map_err(|e| ApiError::BadParam {
                name: "body",
                message: e.body_text(),
            })?;
        Params::parse(method, query, form)
    }
}

impl Params {
    /// For GET, axum's `RawForm` already holds the query string; for POST it holds the body and
    /// the query string may add more.
    fn parse(method: Method, query: RawQuery, form: RawForm) -> Result<Self, ApiError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        let bad = |e: serde_urlencoded::de::Error| ApiError::BadParam {
            name: "query string",
            message: e.to_string(),
        };
        if let Some(q) = query.0.filter(|_| method == Method::POST) {
            pairs.extend(serde_urlencoded::from_str::<Vec<(String, String)>>(&q).map_err(bad)?);
        }
        if !form.0.is_empty() {
            pairs.extend(
                serde_urlencoded::from_bytes::<Vec<(String, String)>>(&form.0).map_err(bad)?,
            );
        }
        Ok(Self(pairs))
    }

    /// Parameters of a request that has no form body (DELETE).
    fn from_query(query: Option<&str>) -> Result<Self, ApiError> {
        let pairs = serde_urlencoded::from_str::<Vec<(String, String)>>(query.unwrap_or(""))
            .map_err(|e| ApiError::BadParam {
                name: "query string",
                message: e.to_string(),
            })?;
        Ok(Self(pairs))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `match[]` selectors (at least one).
    fn matches(&self) -> Result<Vec<Selector>, ApiError> {
        let selectors = self
            .all("match[]")
            .map(|s| {
                Selector::parse(s).map_err(|source| ApiError::BadSelector {
                    name: "match[]",
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if selectors.is_empty() {
            return Err(ApiError::MissingParam("match[]"));
        }
        Ok(selectors)
    }

    /// A time as Unix seconds (fractions allowed) or RFC 3339, in milliseconds.
    fn time_ms(&self, name: &'static str) -> Result<Option<i64>, ApiError> {
        let Some(text) = self.get(name) else {
            return Ok(None);
        };
        parse_time_ms(text)
            .map(Some)
            .ok_or_else(|| ApiError::BadParam {
                name,
                message: format!(
                    "{text:?} is neither Unix seconds (within ±3000 years) nor an RFC 3339 time"
                ),
            })
    }
}

/// Times beyond ±3000 years are refused, which keeps all time arithmetic far from overflow.
const MAX_ABS_TIME_S: f64 = 1e11;

fn parse_time_ms(text: &str) -> Option<i64> {
    if let Ok(seconds) = text.parse::<f64>() {
        return (seconds.abs() <= MAX_ABS_TIME_S).then(|| (seconds * 1000.0).round() as i64);
    }
    let time = humantime::parse_rfc3339_weak(text).ok()?;
    let since = time.duration_since(std::time::UNIX_EPOCH).ok()?;
    Some(since.as_millis() as i64)
}

/// A step as seconds (fractions allowed) or a duration such as `15s`, in milliseconds.
fn parse_step_ms(text: &str) -> Option<i64> {
    let ms = match text.parse::<f64>() {
        Ok(seconds) if seconds.abs() <= MAX_ABS_TIME_S => (seconds * 1000.0).round() as i64,
        Ok(_) => return None,
        Err(_) => i64::try_from(humantime::parse_duration(text).ok()?.as_millis()).ok()?,
    };
    (ms > 0).then_some(ms)
}

fn metric_json(labels: &Labels) -> Value {
    let map: Map<String, Value> = labels
        .iter()
        .map(|(n, v)| (n.to_owned(), Value::String(v.to_owned())))
        .collect();
    Value::Object(map)
}

fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        value.to_string()
    }
}

/// Writes Unix milliseconds as seconds the way Prometheus does (`1700000000`, `1700000000.5`),
/// with integer arithmetic: a range answer writes thousands of these.
fn push_unix_seconds(out: &mut String, ms: i64) {
    if ms < 0 {
        out.push('-');
    }
    let (secs, frac) = (ms.unsigned_abs() / 1000, ms.unsigned_abs() % 1000);
    let _ = write!(out, "{secs}");
    if frac != 0 {
        let digits = format!("{frac:03}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
}

/// Writes a sample value as [`format_value`] does, without an intermediate String.
fn push_value(out: &mut String, value: f64) {
    if value.is_finite() {
        let _ = write!(out, "{value}");
    } else {
        out.push_str(&format_value(value));
    }
}

fn success(data: Value) -> Response {
    axum::Json(json!({"status": "success", "data": data})).into_response()
}

async fn metrics(State(state): State<ApiState>) -> Response {
    // Rendering walks every series: off the async workers, like all work that grows with the
    // store.
    match tokio::task::spawn_blocking(move || render_metrics(&state)).await {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering /metrics failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The `/metrics` text: the stored series' newest values, the live verdicts, then the
/// collector's own metrics. Blocking.
fn render_metrics(state: &ApiState) -> String {
    let oldest = (state.clock)() - state.metrics_staleness.as_millis() as i64;
    let mut body = String::with_capacity(64 * 1024);
    let series: Vec<_> = state
        .catalog
        .all()
        .into_iter()
        .map(|m| {
            let latest = state.tsdb.latest(m.id);
            (m, latest)
        })
        .collect();
    // Stored families named like the collector's own would repeat their TYPE line: the names
    // reserved on ingest, and whatever the registry exports now (which the reservation is
    // tested to cover, but an old store may predate it).
    let registry_names: std::collections::HashSet<String> = state
        .metrics
        .registry
        .gather()
        .into_iter()
        .map(|family| family.name().to_owned())
        .collect();
    let own = |name: &str| {
        registry_names.contains(name) || crate::telemetry::check_metric_name(name).is_err()
    };
    let hidden = exposition::render(&series, oldest, own, &mut body);
    state.metrics.exposition_hidden_series.set(hidden as i64);
    if let Some(watch) = &state.watch {
        let verdicts: Vec<_> = series
            .iter()
            .filter_map(|(m, _)| Some((m.clone(), watch.latest(m.id)?)))
            .collect();
        exposition::render_anomalies(&verdicts, oldest, &mut body);
        if let Some(forests) = &state.forests {
            exposition::render_node_verdicts(&forests.verdicts(), &mut body);
        }
        let skipped = watch.skipped_samples();
        let counted = state.metrics.anomaly_skipped_samples.get();
        state
            .metrics
            .anomaly_skipped_samples
            .inc_by(skipped.saturating_sub(counted));
        let (watched, learning) = watch.counts();
        state.metrics.anomaly_series.set(watched as i64);
        state.metrics.anomaly_learning_series.set(learning as i64);
    }
    let stats = state.tsdb.stats();
    state.metrics.head_series.set(stats.head_series as i64);
    state.metrics.head_samples.set(stats.head_samples as i64);
    state
        .metrics
        .chunks_written
        .set(stats.chunks_written as i64);
    for (table, bytes) in state.tsdb.table_sizes() {
        state
            .metrics
            .storage_bytes
            .with_label_values(&[table.name()])
            .set(bytes as i64);
    }
    let mut own = Vec::new();
    prometheus::TextEncoder::new()
        .encode(&state.metrics.registry.gather(), &mut own)
        .expect("text encoding into memory cannot fail");
    body.push_str(&String::from_utf8_lossy(&own));
    body
}

/// The newest anomaly verdict of every series matching `match[]` (all when absent), highest
/// score first; `anomalous=true` keeps only series whose newest sample is an anomaly.
async fn anomalies(
    State(state): State<ApiState>,
    Extension(analyses): Extension<Analyses>,
    params: Params,
) -> Result<Response, ApiError> {
    let Some(watch) = &state.watch else {
        return Err(ApiError::BadParam {
            name: "analytics",
            message: "live anomaly detection is off ([analytics] enabled = false)".into(),
        });
    };
    let series = if params.all("match[]").next().is_none() {
        state.catalog.all()
    } else {
        select_all(&state, &params.matches()?)
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
            let window = Duration::from_secs(1800);
            let moved =
                find_related(&state, &analyses, (*m).clone(), v.timestamp_ms, window).await?;
            related.insert(m.id, moved);
        }
    }
    let data: Vec<Value> = found
        .into_iter()
        .map(|(m, v)| {
            let detectors: Vec<Value> = v
                .fired
                .iter()
                .map(|d| {
                    json!({
                        "detector": d.detector.name(),
                        "strength": JsonF64(d.strength),
                        "expected": [JsonF64(d.expected.0), JsonF64(d.expected.1)],
                    })
                })
                .collect();
            json!({
                "metric": metric_json(&m.labels),
                "timestamp": v.timestamp_ms as f64 / 1000.0,
                "value": JsonF64(v.value),
                "score": JsonF64(v.score),
                "is_anomaly": v.is_anomaly,
                "severity": v.severity.name(),
                "learning": v.learning,
                "detectors": detectors,
                "related": related.remove(&m.id),
            })
        })
        .collect();
    Ok(success(Value::Array(data)))
}

/// Every node's newest Isolation Forest verdict over its feature vector, with each feature's
/// value and share of the isolation.
async fn node_anomalies(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let Some(forests) = &state.forests else {
        return Err(ApiError::BadParam {
            name: "analytics",
            message: "analytics are off ([analytics] enabled = false)".into(),
        });
    };
    let data: Vec<Value> = forests
        .verdicts()
        .into_iter()
        .map(|(node, v)| {
            let features: Vec<Value> = v
                .features
                .iter()
                .map(
                    |(name, value, share)| json!({"feature": name, "value": JsonF64(*value), "share": JsonF64(*share)}),
                )
                .collect();
            json!({
                "node": node,
                "minute": v.minute_ms as f64 / 1000.0,
                "score": JsonF64(v.score),
                "is_anomaly": v.is_anomaly,
                "features": features,
                "trained_at": v.trained_at_ms as f64 / 1000.0,
                "training_rows": v.training_rows,
            })
        })
        .collect();
    Ok(success(Value::Array(data)))
}

/// A duration parameter (`1h`, `30m`, or seconds), with a default.
fn duration_param(
    params: &Params,
    name: &'static str,
    default: Duration,
) -> Result<Duration, ApiError> {
    match params.get(name) {
        None => Ok(default),
        Some(text) => parse_step_ms(text)
            .map(|ms| Duration::from_millis(ms as u64))
            .ok_or_else(|| ApiError::BadParam {
                name,
                message: format!("{text:?} is not a duration like 1h or 30m"),
            }),
    }
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
        window: duration_param(&params, "window", Duration::from_secs(3600))?,
        horizon: duration_param(&params, "horizon", Duration::from_secs(3600))?,
        ..TrendConfig::default()
    };
    let limit = match params.get("limit") {
        None => None,
        Some(text) => Some(
            text.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| ApiError::BadParam {
                    name: "limit",
                    message: format!("{text:?} is not a number"),
                })?,
        ),
    };
    let bound = match params.get("bound") {
        None | Some("upper") => Bound::Upper,
        Some("lower") => Bound::Lower,
        Some(other) => {
            return Err(ApiError::BadParam {
                name: "bound",
                message: format!("{other:?} is neither upper nor lower"),
            });
        }
    };
    // With seasonal_step, the window is also resampled to that step and smoothed with
    // Holt-Winters at its detected period (Holt's linear method when none is found).
    let seasonal_step = match params.get("seasonal_step") {
        None => None,
        Some(text) => {
            let step = duration_param(&params, "seasonal_step", Duration::ZERO)?;
            // The grid runs from the oldest to the newest sample, so the window bounds it.
            let points = config.window.as_millis() / step.as_millis() + 1;
            if points > MAX_SEASONAL_POINTS {
                return Err(ApiError::BadParam {
                    name: "seasonal_step",
                    message: format!(
                        "seasonal_step={text} over window={} gives up to {} points per series; the limit is {}: raise seasonal_step or shorten window",
                        params.get("window").unwrap_or("1h"),
                        thousands(points),
                        thousands(MAX_SEASONAL_POINTS)
                    ),
                });
            }
            Some(step)
        }
    };
    let end = (state.clock)();
    let start = end - config.window.as_millis() as i64;
    let series = select_all(&state, &selectors);
    at_most_analysed(series.len())?;
    let tsdb = state.tsdb.clone();
    let advice = "select fewer series with match[], shorten window or raise seasonal_step";
    let data = analyses
        .run(&state.metrics, "/api/v1/trend", advice, move |budget| {
            let mut data = Vec::new();
            // One series at a time, so a long window holds one series' samples in memory.
            for meta in series {
                budget.check()?;
                let samples = tsdb.read_raw(meta.id, start, end)?;
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
                    // Durations are parsed to at most i64::MAX ms, so this fits a usize.
                    let steps = (config.horizon.as_millis() / step.as_millis()) as usize;
                    json!({
                        "period_seconds": smoother.period().map(|p| p as f64 * step.as_secs_f64()),
                        "forecast": JsonF64(smoother.forecast_at(steps)),
                    })
                });
                data.push(json!({
                    "metric": metric_json(&meta.labels),
                    "samples": fit.n,
                    "slope_per_second": JsonF64(fit.slope),
                    "r2": JsonF64(fit.r2),
                    "reliable": fit.is_reliable(&config),
                    "forecast": forecast,
                    "time_to_limit": reaches,
                    "seasonal": seasonal,
                }));
            }
            Ok(data)
        })
        .await?;
    Ok(success(Value::Array(data)))
}

/// A correlation `window` parameter (default 30 min), refused when longer than the grid allows.
fn correlation_window(params: &Params) -> Result<Duration, ApiError> {
    use crate::analytics::correlation::CorrelationConfig;
    let window = duration_param(params, "window", Duration::from_secs(1800))?;
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

/// Series that moved with the one `match[]` selects, around `time` (default now): lagged
/// Pearson correlation over `window` (default 30 min, at most a day) with lags up to ±5 min,
/// strongest first, among at most 200 candidates (the target's node first).
async fn related(
    State(state): State<ApiState>,
    Extension(analyses): Extension<Analyses>,
    params: Params,
) -> Result<Response, ApiError> {
    let targets = select_all(&state, &params.matches()?);
    let [target] = targets.as_slice() else {
        return Err(ApiError::BadParam {
            name: "match[]",
            message: format!(
                "selects {} series; it must select exactly one",
                targets.len()
            ),
        });
    };
    let window = correlation_window(&params)?;
    let time = params.time_ms("time")?.unwrap_or_else(|| (state.clock)());
    let found = find_related(&state, &analyses, target.clone(), time, window).await?;
    Ok(success(Value::Array(found)))
}

/// Every pair among the series `match[]` selects (at most 200) whose lagged correlation over
/// `window` (default 30 min, at most a day) before `time` (default now) reaches |r| ≥ 0.7,
/// strongest first.
async fn correlations(
    State(state): State<ApiState>,
    Extension(analyses): Extension<Analyses>,
    params: Params,
) -> Result<Response, ApiError> {
    use crate::analytics::correlation::{CorrelationConfig, correlated_pairs};
    let config = CorrelationConfig::default();
    let window = correlation_window(&params)?;
    let time = params.time_ms("time")?.unwrap_or_else(|| (state.clock)());
    let series = select_all(&state, &params.matches()?);
    at_most_analysed(series.len())?;
    let lag = config.max_lag.as_millis() as i64;
    let (start, end) = (time - window.as_millis() as i64 - lag, time);
    let tsdb = state.tsdb.clone();
    let advice = "select fewer series with match[] or shorten window";
    let pairs = analyses
        .run(
            &state.metrics,
            "/api/v1/correlations",
            advice,
            move |budget| {
                let windows = read_windows(&tsdb, series, start, end, budget)?;
                Ok(correlated_pairs(&windows, &config, budget)?)
            },
        )
        .await?;
    let data: Vec<Value> = pairs
        .iter()
        .map(|p| {
            json!({
                "leader": p.leader,
                "follower": p.follower,
                "r": JsonF64(p.r),
                "lag_seconds": p.lag_ms as f64 / 1000.0,
                "points": p.points,
                "description": p.describe(),
            })
        })
        .collect();
    Ok(success(Value::Array(data)))
}

/// The samples of `series` over `[start, end]`, each named by its labels, asking `budget`
/// before each read. Blocking.
fn read_windows(
    tsdb: &Tsdb,
    series: Vec<Arc<SeriesMeta>>,
    start: i64,
    end: i64,
    budget: &Budget,
) -> Result<Vec<crate::analytics::correlation::SeriesWindow>, AnalysisError> {
    use crate::analytics::correlation::SeriesWindow;
    series
        .into_iter()
        .map(|meta| {
            budget.check()?;
            let samples = tsdb.read_raw(meta.id, start, end)?;
            Ok(SeriesWindow::new(meta.labels.to_string(), samples))
        })
        .collect()
}

/// The series that moved with `target` in the `window` before `time`, as API values.
async fn find_related(
    state: &ApiState,
    analyses: &Analyses,
    target: Arc<SeriesMeta>,
    time: i64,
    window: Duration,
) -> Result<Vec<Value>, ApiError> {
    use crate::analytics::correlation::{CorrelationConfig, SeriesWindow, rank_related_within};
    let config = CorrelationConfig::default();
    let lag = config.max_lag.as_millis() as i64;
    let (start, end) = (time - window.as_millis() as i64 - lag, time + lag);
    let (tsdb, catalog) = (state.tsdb.clone(), state.catalog.clone());
    let advice = "shorten window";
    let found = analyses
        .run(&state.metrics, "/api/v1/related", advice, move |budget| {
            let node = target.labels.get("node").unwrap_or_default().to_owned();
            let mut candidates: Vec<_> = catalog
                .all()
                .into_iter()
                .filter(|m| m.id != target.id)
                .collect();
            // Same node first: that is where a cause usually is, and the candidate cap cuts the
            // rest.
            candidates.sort_by_key(|m| m.labels.get("node").unwrap_or_default() != node);
            candidates.truncate(config.max_candidates);
            let samples = tsdb.read_raw(target.id, start, end)?;
            let target = SeriesWindow::new(target.labels.to_string(), samples);
            let candidates = read_windows(&tsdb, candidates, start, end, budget)?;
            Ok(rank_related_within(&target, &candidates, &config, budget)?)
        })
        .await?;
    Ok(found
        .iter()
        .map(|r| {
            json!({
                "series": r.candidate,
                "r": JsonF64(r.r),
                "lag_seconds": r.lag_ms as f64 / 1000.0,
                "points": r.points,
                "description": r.describe(),
            })
        })
        .collect())
}

async fn healthz(State(state): State<ApiState>) -> Response {
    axum::Json(json!({
        "status": "ok",
        "series": state.catalog.len(),
        "connected_agents": state.metrics.connected_agents.get(),
    }))
    .into_response()
}

/// Runs a query off the async workers; the header says which resolution answered it.
async fn run_query(
    state: &ApiState,
    text: &str,
    start: i64,
    end: i64,
    step: i64,
) -> Result<(Vec<query::SeriesResult>, query::Source), ApiError> {
    let expr = query::parse(text).map_err(|e| match e {
        QueryError::Store(e) => ApiError::Store(e),
        other => ApiError::BadQuery(other),
    })?;
    let source = query::StoreSource {
        catalog: state.catalog.clone(),
        tsdb: state.tsdb.clone(),
    };
    tokio::task::spawn_blocking(move || query::evaluate(&source, &expr, start, end, step))
        .await
        .expect("query task does not panic")
        .map_err(|e| match e {
            QueryError::Store(e) => ApiError::Store(e),
            other => ApiError::BadQuery(other),
        })
}

fn with_resolution(source: query::Source, body: Value) -> Response {
    let mut response = success(body);
    response.headers_mut().insert(
        "x-hcmon-resolution",
        axum::http::HeaderValue::from_static(source.name()),
    );
    response
}

async fn query_range(State(state): State<ApiState>, params: Params) -> Result<Response, ApiError> {
    let text = params
        .get("query")
        .ok_or(ApiError::MissingParam("query"))?
        .to_owned();
    let start = params
        .time_ms("start")?
        .ok_or(ApiError::MissingParam("start"))?;
    let end = params
        .time_ms("end")?
        .ok_or(ApiError::MissingParam("end"))?;
    let step_text = params.get("step").ok_or(ApiError::MissingParam("step"))?;
    let step = parse_step_ms(step_text).ok_or_else(|| ApiError::BadParam {
        name: "step",
        message: format!("{step_text:?} is not a positive number of seconds or a duration"),
    })?;
    if end < start {
        return Err(ApiError::BadParam {
            name: "end",
            message: "end is before start".into(),
        });
    }
    if (end - start) / step + 1 > MAX_POINTS {
        return Err(ApiError::TooManyPoints);
    }
    let (series, source) = run_query(&state, &text, start, end, step).await?;
    // Up to 11,000 points for each of possibly thousands of series: off the async workers.
    let body = tokio::task::spawn_blocking(move || matrix_body(&series))
        .await
        .expect("encoding a matrix does not panic");
    let headers = [
        (header::CONTENT_TYPE, "application/json"),
        (
            header::HeaderName::from_static("x-hcmon-resolution"),
            source.name(),
        ),
    ];
    Ok((headers, body).into_response())
}

/// A range query's answer. Written directly: a day at 10 s is 8,640 points per series, and a
/// JSON value per point would cost more than reading them.
fn matrix_body(series: &[query::SeriesResult]) -> String {
    let capacity = 64 + series.iter().map(|s| 32 * s.1.len() + 128).sum::<usize>();
    let mut body = String::with_capacity(capacity);
    body.push_str(r#"{"status":"success","data":{"resultType":"matrix","result":["#);
    for (i, (labels, points)) in series.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(r#"{"metric":"#);
        body.push_str(&serde_json::to_string(labels).expect("labels serialise"));
        body.push_str(r#","values":["#);
        for (j, (t, v)) in points.iter().enumerate() {
            if j > 0 {
                body.push(',');
            }
            body.push('[');
            push_unix_seconds(&mut body, *t);
            body.push_str(",\"");
            push_value(&mut body, *v);
            body.push_str("\"]");
        }
        body.push_str("]}");
    }
    body.push_str("]}}");
    body
}

async fn query_instant(
    State(state): State<ApiState>,
    params: Params,
) -> Result<Response, ApiError> {
    let text = params
        .get("query")
        .ok_or(ApiError::MissingParam("query"))?
        .to_owned();
    let time = params.time_ms("time")?.unwrap_or_else(|| (state.clock)());
    let (series, source) = run_query(&state, &text, time, time, 1).await?;
    let result: Vec<Value> = series
        .into_iter()
        .filter_map(|(labels, points)| {
            let (t, v) = *points.last()?;
            Some(json!({"metric": labels, "value": [t as f64 / 1000.0, format_value(v)]}))
        })
        .collect();
    Ok(with_resolution(
        source,
        json!({"resultType": "vector", "result": result}),
    ))
}

fn select_all(state: &ApiState, selectors: &[Selector]) -> Vec<Arc<SeriesMeta>> {
    let mut out: Vec<Arc<SeriesMeta>> = Vec::new();
    for selector in selectors {
        for meta in state.catalog.select(selector) {
            if !out.iter().any(|m| m.id == meta.id) {
                out.push(meta);
            }
        }
    }
    out
}

async fn series(State(state): State<ApiState>, params: Params) -> Result<Response, ApiError> {
    let selectors = params.matches()?;
    let data: Vec<Value> = select_all(&state, &selectors)
        .iter()
        .map(|m| metric_json(&m.labels))
        .collect();
    Ok(success(Value::Array(data)))
}

/// Label names, optionally only those of series matching `match[]`.
async fn labels(State(state): State<ApiState>, params: Params) -> Result<Response, ApiError> {
    if params.all("match[]").next().is_none() {
        return Ok(success(json!(state.catalog.label_names())));
    }
    let mut names: Vec<String> = select_all(&state, &params.matches()?)
        .iter()
        .flat_map(|m| {
            m.labels
                .iter()
                .map(|(n, _)| n.to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    names.sort();
    names.dedup();
    Ok(success(json!(names)))
}

/// Values of one label (`__name__` lists metric names).
async fn label_values(
    State(state): State<ApiState>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Response {
    success(json!(state.catalog.label_values(&name)))
}

/// VictoriaMetrics' export format: one JSON object per series and line.
async fn export(State(state): State<ApiState>, params: Params) -> Result<Response, ApiError> {
    let selectors = params.matches()?;
    let start = params.time_ms("start")?.unwrap_or(i64::MIN);
    let end = params.time_ms("end")?.unwrap_or(i64::MAX);
    let series = select_all(&state, &selectors);
    let tsdb = state.tsdb.clone();
    // Reading and encoding a series at a time, off the async workers: an export may span the
    // whole history of many series.
    let body = tokio::task::spawn_blocking(move || {
        let mut body = String::new();
        for meta in series {
            let samples = tsdb.read_raw(meta.id, start, end)?;
            if samples.is_empty() {
                continue;
            }
            let (timestamps, values): (Vec<i64>, Vec<f64>) = samples.into_iter().unzip();
            let line = json!({"metric": metric_json(&meta.labels), "values": values, "timestamps": timestamps});
            body.push_str(&line.to_string());
            body.push('\n');
        }
        Ok::<_, StoreError>(body)
    })
    .await
    .expect("export task does not panic")?;
    Ok(([(header::CONTENT_TYPE, "application/stream+json")], body).into_response())
}

/// `POST /api/v1/write`: Prometheus remote write 1.0.
async fn remote_write(
    State(state): State<ApiState>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let ingest = state.ingest.clone();
    let outcome = tokio::task::spawn_blocking(move || ingest.remote_write(&body))
        .await
        .expect("remote write task does not panic");
    let label = match &outcome {
        Ok(_) => "ok",
        Err(e) if e.retryable() => "failed",
        Err(_) => "refused",
    };
    state
        .metrics
        .remote_write_requests
        .with_label_values(&[label])
        .inc();
    let outcome = outcome?;
    if outcome.non_finite + outcome.out_of_range > 0 {
        tracing::debug!(?outcome, "remote write: some samples not stored");
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /api/v1/admin/compact`: seals every open chunk, persists everything and compacts the
/// store, answering with the bytes each table takes afterwards on disk (`tables`) and as keys
/// and values alone (`encoded`), for benchmarks and before backups.
async fn compact(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let tsdb = state.tsdb.clone();
    let (disk, encoded) = tokio::task::spawn_blocking(move || {
        tsdb.compact()?;
        Ok::<_, StoreError>((tsdb.table_sizes(), tsdb.logical_sizes()?))
    })
    .await
    .expect("compaction task does not panic")?;
    let by_name = |sizes: Vec<(crate::storage::Table, u64)>| -> Map<String, Value> {
        sizes
            .into_iter()
            .map(|(t, bytes)| (t.name().to_owned(), json!(bytes)))
            .collect()
    };
    Ok(success(
        json!({"tables": by_name(disk), "encoded": by_name(encoded)}),
    ))
}

/// `DELETE /api/v1/agents/{node}[?series=keep|delete]`: forgets a node that no longer
/// reports; its series stay unless `series=delete`.
async fn forget_agent(
    State(state): State<ApiState>,
    axum::extract::Path(node): axum::extract::Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Result<Response, ApiError> {
    let params = Params::from_query(query.as_deref())?;
    let series = match params.get("series") {
        None | Some("keep") => crate::ingest::SeriesFate::Keep,
        Some("delete") => crate::ingest::SeriesFate::Delete,
        Some(other) => {
            return Err(ApiError::BadParam {
                name: "series",
                message: format!("{other:?}: want keep or delete"),
            });
        }
    };
    let forgotten =
        crate::forget::forget_node(&state.ingest, state.alerting.as_ref(), &node, series).await?;
    Ok(success(json!({
        "node": node,
        "series_deleted": forgotten.series_deleted,
        "blocks_deleted": forgotten.blocks_deleted,
    })))
}

async fn agents(State(state): State<ApiState>) -> Response {
    let nodes = state.ingest.node_statuses().await;
    success(serde_json::to_value(nodes).expect("plain structs always serialise"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_times_and_steps_like_prometheus() {
        assert_eq!(parse_time_ms("1700000000"), Some(1_700_000_000_000));
        assert_eq!(parse_time_ms("1700000000.5"), Some(1_700_000_000_500));
        assert_eq!(
            parse_time_ms("2023-11-14T22:13:20Z"),
            Some(1_700_000_000_000)
        );
        assert_eq!(parse_time_ms("yesterday"), None);
        assert_eq!(
            parse_time_ms("9223372036854775"),
            None,
            "far future refused, no overflow"
        );
        assert_eq!(parse_step_ms("15"), Some(15_000));
        assert_eq!(parse_step_ms("1m"), Some(60_000));
        assert_eq!(parse_step_ms("0"), None);
        assert_eq!(parse_step_ms("-5"), None);
    }

    #[test]
    fn writes_times_and_values_like_prometheus() {
        let mut out = String::new();
        for (ms, v) in [
            (1_700_000_000_000, 1.5),
            (1_700_000_000_250, f64::NAN),
            (-1_500, 1e21),
        ] {
            push_unix_seconds(&mut out, ms);
            out.push(' ');
            push_value(&mut out, v);
            out.push(';');
        }
        assert_eq!(
            out,
            "1700000000 1.5;1700000000.25 NaN;-1.5 1000000000000000000000;"
        );
    }
}

//! Prometheus' query API (`/api/v1/query`, `/query_range`, `/series`, `/labels`,
//! `/label/{name}/values`, whose handlers are in `listing.rs`); the export (`/api/v1/export`),
//! under the same limits, is in `export.rs`.
//!
//! Range answers are written by hand rather than through [`crate::api::query::Matrix`]: they run
//! to millions of points, and a JSON value per point would cost more than reading them. A test
//! holds the hand-written JSON to that type.

use super::error::{ApiError, success};
use super::params::{Params, millis};
use super::{ApiState, blocking, export, listing};
use crate::api::query::{
    InstantValue, InstantVector, Matrix, RangeSeries, ResultType, VectorSample,
};
use crate::json_f64::non_finite_text;
use crate::query::{self, MAX_POINTS, Value};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::fmt::Write;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/query_range", get(query_range).post(query_range))
        .route("/api/v1/query", get(query_instant).post(query_instant))
        .route("/api/v1/series", get(listing::series).post(listing::series))
        .route("/api/v1/labels", get(listing::labels).post(listing::labels))
        .route("/api/v1/label/{name}/values", get(listing::label_values))
        .merge(export::routes())
}

/// The response header naming the resolution that answered a query (`raw`, `1m`, …).
const RESOLUTION: &str = "x-hcmon-resolution";

/// Runs a query for `endpoint` off the async workers; also says which resolution answered it.
async fn run_query(
    endpoint: &'static str,
    state: &ApiState,
    text: &str,
    start: i64,
    end: i64,
    step: i64,
) -> Result<(Value, query::Source), ApiError> {
    let span = tracing::info_span!("query", endpoint, query = %text, start, end, step);
    let expr = query::parse(text)?;
    let source = query::StoreSource {
        catalog: state.catalog.clone(),
        tsdb: state.tsdb.clone(),
    };
    let evaluated = blocking(endpoint, move || {
        let _entered = span.entered();
        query::evaluate(&source, &expr, start, end, step)
    })
    .await?;
    Ok(evaluated?)
}

async fn query_range(State(state): State<ApiState>, params: Params) -> Result<Response, ApiError> {
    let text = params.required("query")?.to_owned();
    let start = params
        .time_ms("start")?
        .ok_or(ApiError::MissingParam("start"))?;
    let end = params
        .time_ms("end")?
        .ok_or(ApiError::MissingParam("end"))?;
    let step = params
        .duration("step")?
        .ok_or(ApiError::MissingParam("step"))?;
    if end < start {
        return Err(ApiError::BadParam {
            name: "end",
            message: "end is before start".into(),
        });
    }
    // Times and steps are bounded by the parser, so this cannot overflow.
    let step = millis(step);
    if (end - start) / step + 1 > MAX_POINTS {
        return Err(ApiError::TooManyPoints);
    }
    let (value, source) = run_query("/api/v1/query_range", &state, &text, start, end, step).await?;
    let series = match value {
        Value::Vector(series) => series,
        Value::Scalar(points) => vec![(query::Metric::new(), points)],
        Value::Matrix(_) => return Err(not_for_range("range vector")),
        Value::String(..) => return Err(not_for_range("string")),
    };
    // Up to 11,000 points for each of possibly thousands of series: off the async workers.
    let body = blocking("/api/v1/query_range", move || matrix_body(&series)).await?;
    let headers = [
        (
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ),
        (
            HeaderName::from_static(RESOLUTION),
            HeaderValue::from_static(source.name()),
        ),
    ];
    Ok((headers, body).into_response())
}

/// Prometheus' refusal of a range query whose expression is not a scalar or instant vector.
fn not_for_range(kind: &str) -> ApiError {
    ApiError::BadParam {
        name: "query",
        message: format!(
            "invalid expression type \"{kind}\" for range query, must be Scalar or instant Vector"
        ),
    }
}

/// A range query's answer, as [`crate::api::query::Matrix`] in the success envelope. Written
/// directly: a day at 10 s is 8,640 points per series.
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

/// A sample value as Prometheus writes it: `1.5`, `+Inf`, `-Inf`, `NaN`.
fn format_value(value: f64) -> String {
    let mut out = String::new();
    push_value(&mut out, value);
    out
}

/// Writes a sample value as [`format_value`] does, without an intermediate String.
fn push_value(out: &mut String, value: f64) {
    match non_finite_text(value) {
        Some(text) => out.push_str(text),
        None => {
            let _ = write!(out, "{value}");
        }
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

async fn query_instant(
    State(state): State<ApiState>,
    params: Params,
) -> Result<Response, ApiError> {
    let text = params.required("query")?.to_owned();
    let time = params.time_ms("time")?.unwrap_or_else(|| state.now_ms());
    let (value, source) = run_query("/api/v1/query", &state, &text, time, time, 1).await?;
    let seconds = |t: i64| t as f64 / 1000.0;
    let mut response = match value {
        Value::Scalar(points) => success(InstantValue {
            result_type: ResultType::Scalar,
            result: (
                seconds(time),
                format_value(points.last().map_or(f64::NAN, |p| p.1)),
            ),
        }),
        Value::String(t, text) => success(InstantValue {
            result_type: ResultType::String,
            result: (seconds(t), text),
        }),
        Value::Vector(series) => success(InstantVector {
            result_type: ResultType::Vector,
            result: series
                .into_iter()
                .filter_map(|(metric, points)| {
                    let (t, v) = *points.last()?;
                    Some(VectorSample {
                        metric,
                        value: (seconds(t), format_value(v)),
                    })
                })
                .collect(),
        }),
        Value::Matrix(series) => success(Matrix {
            result_type: ResultType::Matrix,
            result: series
                .into_iter()
                .map(|(metric, points)| RangeSeries {
                    metric,
                    values: points
                        .into_iter()
                        .map(|(t, v)| (seconds(t), format_value(v)))
                        .collect(),
                })
                .collect(),
        }),
    };
    response.headers_mut().insert(
        HeaderName::from_static(RESOLUTION),
        HeaderValue::from_static(source.name()),
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ApiResponse;
    use std::collections::BTreeMap;

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

    #[test]
    fn the_hand_written_matrix_is_the_typed_one() {
        let metric = BTreeMap::from([("__name__".to_owned(), "load \"x\"".to_owned())]);
        let points = vec![(1_700_000_000_000, 1.5), (1_700_000_010_500, f64::INFINITY)];
        let body = matrix_body(&[(metric.clone(), points), (BTreeMap::new(), vec![])]);
        let decoded: ApiResponse<Matrix> = serde_json::from_str(&body).unwrap();
        let expected = Matrix {
            result_type: ResultType::Matrix,
            result: vec![
                RangeSeries {
                    metric,
                    values: vec![
                        (1_700_000_000.0, "1.5".into()),
                        (1_700_000_010.5, "+Inf".into()),
                    ],
                },
                RangeSeries {
                    metric: BTreeMap::new(),
                    values: vec![],
                },
            ],
        };
        assert_eq!(decoded, ApiResponse::success(expected));
    }
}

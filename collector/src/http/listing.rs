//! What is stored, as Prometheus lists it: `/api/v1/series`, `/api/v1/labels` and
//! `/api/v1/label/{name}/values`, each narrowed by `match[]` selectors and by `start`/`end`
//! (series with a sample in that range) and cut to `limit` items with a warning, as
//! Prometheus 2.x and 3.x answer.

use super::error::ApiError;
use super::params::Params;
use super::{ApiState, blocking, metric};
use crate::api::Status;
use crate::api::prometheus::Warned;
use crate::storage::{SeriesMeta, Tsdb};
use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Prometheus' warning when `limit` cut an answer.
const TRUNCATED: &str = "results truncated due to limit";

/// `GET|POST /api/v1/series?match[]=…[&start=][&end=][&limit=]`.
pub async fn series(State(state): State<ApiState>, params: Params) -> Result<Response, ApiError> {
    params.matches()?;
    let limit = limit(&params)?;
    let chosen = chosen(&state, &params).await?.unwrap_or_default();
    let series = chosen.iter().map(|m| metric(&m.labels)).collect();
    Ok(warned(series, limit))
}

/// `GET|POST /api/v1/labels[?match[]=…][&start=][&end=][&limit=]`: label names, sorted.
pub async fn labels(State(state): State<ApiState>, params: Params) -> Result<Response, ApiError> {
    let limit = limit(&params)?;
    let names = match chosen(&state, &params).await? {
        None => state.catalog.label_names(),
        Some(series) => series
            .iter()
            .flat_map(|m| m.labels.iter().map(|(n, _)| n.to_owned()))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
    };
    Ok(warned(names, limit))
}

/// `GET /api/v1/label/{name}/values[?match[]=…][&start=][&end=][&limit=]`: the values a label
/// takes, sorted (`__name__` lists metric names).
pub async fn label_values(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let limit = limit(&params)?;
    let values = match chosen(&state, &params).await? {
        None => state.catalog.label_values(&name),
        Some(series) => series
            .iter()
            .filter_map(|m| m.labels.get(&name).map(str::to_owned))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
    };
    Ok(warned(values, limit))
}

/// `limit`: none when absent or 0, as Prometheus reads it.
fn limit(params: &Params) -> Result<Option<usize>, ApiError> {
    Ok(params.count("limit", usize::MAX)?.filter(|n| *n > 0))
}

/// `items` cut to `limit`, with Prometheus' warning when that dropped some.
fn warned<T: serde::Serialize>(mut items: Vec<T>, limit: Option<usize>) -> Response {
    let mut warnings = Vec::new();
    if let Some(limit) = limit
        && items.len() > limit
    {
        items.truncate(limit);
        warnings.push(TRUNCATED.to_owned());
    }
    Json(Warned {
        status: Status::Success,
        data: items,
        warnings,
    })
    .into_response()
}

/// The series the request chooses: those `match[]` selects (every series without `match[]`),
/// kept only if they have a sample between `start` and `end` when either is given. `None`
/// when the request gives none of the three: the catalog's indexes answer then.
async fn chosen(
    state: &ApiState,
    params: &Params,
) -> Result<Option<Vec<Arc<SeriesMeta>>>, ApiError> {
    let start = params.time_ms("start")?;
    let end = params.time_ms("end")?;
    let matched = params.all("match[]").next().is_some();
    if !matched && start.is_none() && end.is_none() {
        return Ok(None);
    }
    let (start, end) = (start.unwrap_or(i64::MIN), end.unwrap_or(i64::MAX));
    if end < start {
        return Err(ApiError::BadParam {
            name: "end",
            message: "end timestamp must not be before start timestamp".into(),
        });
    }
    let series = if matched {
        state.select(&params.matches()?)
    } else {
        state.catalog.all()
    };
    if start == i64::MIN && end == i64::MAX {
        return Ok(Some(series));
    }
    let tsdb = state.tsdb.clone();
    let kept = blocking("/api/v1/series", move || {
        let mut kept = Vec::with_capacity(series.len());
        for meta in series {
            if has_sample(&tsdb, &meta, start, end)? {
                kept.push(meta);
            }
        }
        Ok::<_, crate::storage::StoreError>(kept)
    })
    .await??;
    Ok(Some(kept))
}

/// Whether the series has a sample in `[start, end]`: its newest sample answers most cases
/// without a read.
fn has_sample(
    tsdb: &Tsdb,
    meta: &SeriesMeta,
    start: i64,
    end: i64,
) -> Result<bool, crate::storage::StoreError> {
    match tsdb.latest(meta.id) {
        Some((newest, _)) if newest < start => Ok(false),
        Some((newest, _)) if newest <= end => Ok(true),
        _ => Ok(!tsdb.read_raw(meta.id, start, end)?.is_empty()),
    }
}

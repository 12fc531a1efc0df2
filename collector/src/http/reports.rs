//! Reports: `GET /api/v1/report?from=&to=&format=pdf|html|csv|json` makes one on demand over
//! any range (at most [`MAX_RANGE_MS`]); `GET /api/v1/reports` lists the stored scheduled ones
//! and `GET /api/v1/reports/{id}?format=` downloads one. Answers are downloads, named by
//! `Content-Disposition`.
//!
//! Making and rendering a report reads the store for the whole range, so it runs on the
//! blocking pool, on the query-type routes (shed over `max_concurrent_queries`, stopped at
//! `query_timeout`) and in a few slots of its own, one per core but one, so a core stays for
//! ingest however many reports are asked for.

use super::ApiState;
use super::error::{ApiError, success};
use super::params::Params;
use crate::analytics::slo::Window;
use crate::api::reports::StoredReportInfo;
use crate::report::handle::ReportHandle;
use crate::report::model::{ReportError, ReportKind};
use crate::report::render::{ReportFormat, render};
use crate::report::schedule::period_label;
use crate::report::store::ReportId;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::{Arc, LazyLock};
use tokio::sync::Semaphore;

/// Longest range an on-demand report may cover.
pub const MAX_RANGE_MS: i64 = 400 * 86_400_000;

/// Reports made or rendered at once, in this process.
static SLOTS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    Arc::new(Semaphore::new(cores.saturating_sub(1).max(1)))
});

/// The report routes that make or render a report (query-type: limited) and the listing.
pub fn routes() -> (Router<ApiState>, Router<ApiState>) {
    let heavy = Router::new()
        .route("/api/v1/report", get(on_demand))
        .route("/api/v1/reports/{id}", get(download));
    let light = Router::new().route("/api/v1/reports", get(list));
    (heavy, light)
}

fn handle(state: &ApiState) -> Result<ReportHandle, ApiError> {
    state.reports.clone().ok_or_else(|| {
        ApiError::NotFound(
            "reports need SLOs, which are disabled in this collector's config ([slo] enabled = false)"
                .into(),
        )
    })
}

fn format(params: &Params) -> Result<ReportFormat, ApiError> {
    match params.get("format") {
        None => Ok(ReportFormat::Pdf),
        Some(text) => text
            .parse::<ReportFormat>()
            .map_err(|e| ApiError::BadParam {
                name: "format",
                message: e.to_string(),
            }),
    }
}

async fn on_demand(State(state): State<ApiState>, params: Params) -> Result<Response, ApiError> {
    let handle = handle(&state)?;
    let from = params
        .time_ms("from")?
        .ok_or(ApiError::MissingParam("from"))?;
    let to = params.time_ms("to")?.ok_or(ApiError::MissingParam("to"))?;
    let format = format(&params)?;
    if to <= from {
        return Err(ApiError::BadParam {
            name: "to",
            message: "must be after from".into(),
        });
    }
    if to - from > MAX_RANGE_MS {
        return Err(ApiError::BadParam {
            name: "to",
            message: format!(
                "a report covers at most {} days; ask for a shorter range",
                MAX_RANGE_MS / 86_400_000
            ),
        });
    }
    let now_ms = state.now_ms();
    let window = Window {
        start_ms: from,
        end_ms: to,
    };
    let bytes = run("/api/v1/report", move || {
        let report = handle
            .generate(ReportKind::OnDemand, window, now_ms)
            .map_err(|e| match e {
                ReportError::ReadIncidents(e) => ApiError::Store(e),
                other => failed("/api/v1/report", other.to_string()),
            })?;
        render(&report, format).map_err(|e| failed("/api/v1/report", e.to_string()))
    })
    .await?;
    let filename = format!(
        "hcmon-report-{}-{}.{}",
        compact_time(from),
        compact_time(to),
        format.extension()
    );
    Ok(download_response(bytes, format, &filename))
}

async fn list(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let handle = handle(&state)?;
    let entries = super::blocking("/api/v1/reports", move || {
        let zone = handle.zone().time_zone().clone();
        handle.store.list_all().map(|entries| {
            entries
                .into_iter()
                .map(|entry| StoredReportInfo {
                    id: ReportId::of(&entry, &zone).map_or_else(
                        || format!("{}-{}", entry.schedule, entry.window.start_ms),
                        |id| id.to_string(),
                    ),
                    kind: entry.schedule.name().to_owned(),
                    period: period_label(entry.schedule, &zone, entry.window.start_ms),
                    start_ms: entry.window.start_ms,
                    end_ms: entry.window.end_ms,
                    generated_ms: entry.generated_ms,
                    mailed: entry.mailed,
                })
                .collect::<Vec<_>>()
        })
    })
    .await??;
    Ok(success(entries))
}

async fn download(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    params: Params,
) -> Result<Response, ApiError> {
    let handle = handle(&state)?;
    let id: ReportId = id
        .parse()
        .map_err(|e: crate::report::store::BadReportId| ApiError::BadRequest(e.to_string()))?;
    let format = format(&params)?;
    let found = super::blocking("/api/v1/reports/{id}", move || {
        let zone = handle.zone().time_zone().clone();
        handle.store.find(id, &zone)
    })
    .await??;
    let Some(stored) = found else {
        return Err(ApiError::NotFound(format!(
            "no stored report {id}; GET /api/v1/reports (hcmon reports list) lists them"
        )));
    };
    let bytes = run("/api/v1/reports/{id}", move || {
        render(&stored.report, format).map_err(|e| failed("/api/v1/reports/{id}", e.to_string()))
    })
    .await?;
    let filename = format!("hcmon-{id}.{}", format.extension());
    Ok(download_response(bytes, format, &filename))
}

/// A failure of the collector's own (the request was checked): logged, answered 500 without
/// details, as a panic in the request's work is.
fn failed(endpoint: &'static str, error: String) -> ApiError {
    tracing::error!(endpoint, %error, "cannot make the report");
    ApiError::Internal(crate::tasks::Panicked {
        task: endpoint,
        message: error,
    })
}

/// Runs `work` in a slot on the blocking pool.
async fn run(
    endpoint: &'static str,
    work: impl FnOnce() -> Result<Vec<u8>, ApiError> + Send + 'static,
) -> Result<Vec<u8>, ApiError> {
    // The semaphore is never closed.
    let Ok(slot) = SLOTS.clone().acquire_owned().await else {
        return Err(ApiError::Unavailable("the report slots are closed".into()));
    };
    super::blocking(endpoint, move || {
        let _slot = slot;
        work()
    })
    .await?
}

fn download_response(bytes: Vec<u8>, format: ReportFormat, filename: &str) -> Response {
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    let disposition = format!("attachment; filename=\"{filename}\"");
    if let Ok(value) = HeaderValue::try_from(disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    if format == ReportFormat::Pdf {
        // Its streams are compressed already: gzip on top would only cost time.
        headers.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static("identity"),
        );
    }
    response
}

/// A time for a file name: `20231114T221320Z`.
fn compact_time(ms: i64) -> String {
    let text = crate::export::rfc3339(ms);
    text.chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .take_while(|c| *c != '.')
        .chain(['Z'])
        .collect()
}

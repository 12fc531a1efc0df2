//! `/healthz` and the admin endpoints.

use super::error::{ApiError, success};
use super::{ApiState, blocking};
use crate::api::admin::{CompactReport, Health};
use crate::storage::{StoreError, Table};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::collections::BTreeMap;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/api/v1/admin/compact", post(compact))
}

async fn healthz(State(state): State<ApiState>) -> Response {
    Json(Health {
        status: "ok".into(),
        series: state.catalog.len(),
        connected_agents: state.metrics.connected_agents.get(),
    })
    .into_response()
}

/// `POST /api/v1/admin/compact`: seals every open chunk, persists everything and compacts the
/// store, answering with the bytes each table takes afterwards on disk (`tables`) and as keys
/// and values alone (`encoded`), for benchmarks and before backups.
async fn compact(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let tsdb = state.tsdb.clone();
    let (disk, encoded) = blocking("/api/v1/admin/compact", move || {
        tsdb.compact()?;
        Ok::<_, StoreError>((tsdb.table_sizes(), tsdb.logical_sizes()?))
    })
    .await??;
    let by_name = |sizes: Vec<(Table, u64)>| -> BTreeMap<String, u64> {
        sizes
            .into_iter()
            .map(|(t, bytes)| (t.name().to_owned(), bytes))
            .collect()
    };
    Ok(success(CompactReport {
        tables: by_name(disk),
        encoded: by_name(encoded),
    }))
}

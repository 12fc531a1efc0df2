//! `/` (the landing page a login link opens), `/healthz` and the admin endpoints.

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
        .route("/", get(landing))
        .route("/healthz", get(healthz))
        .route("/api/v1/admin/compact", post(compact))
}

/// Where the login link `/?token=…` lands (the token is then in a cookie): what this collector
/// serves, one link each.
async fn landing() -> Response {
    const PAGE: &str = concat!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<title>hcmon collector</title>",
        "<style>body{font:16px/1.5 system-ui,sans-serif;max-width:44em;margin:3em auto;padding:0 1em}",
        "code{background:#f3f3f3;padding:0 .2em}li{margin:.3em 0}</style></head><body>",
        "<h1>hcmon collector</h1><p>You are logged in: this browser keeps the token in a cookie.</p>",
        "<ul>",
        "<li><a href=\"/api/v1/agents\">Agents</a>: known nodes, connected or not</li>",
        "<li><a href=\"/api/v1/alerts\">Alerts</a> and <a href=\"/api/v1/silences\">silences</a></li>",
        "<li><a href=\"/api/v1/anomalies?anomalous=true\">Anomalies</a> and ",
        "<a href=\"/api/v1/node_anomalies\">node anomalies</a></li>",
        "<li><a href=\"/metrics\">/metrics</a>: the latest value of every series, for Prometheus</li>",
        "<li><a href=\"/api/v1/query?query=node_cpu_usage_ratio\">A query</a>: ",
        "<code>/api/v1/query</code> and <code>/api/v1/query_range</code> speak Prometheus' API, ",
        "for Grafana</li>",
        "<li><a href=\"/api/v1/audit\">Audit log</a> (admin)</li>",
        "</ul><p>From a shell: <code>hcmon status</code>. Version ",
        env!("CARGO_PKG_VERSION"),
        ".</p></body></html>"
    );
    (
        [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
        PAGE,
    )
        .into_response()
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

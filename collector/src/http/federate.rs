//! `GET /federate?match[]=…`: the newest sample of every series a selector matches, in the
//! Prometheus text format with timestamps, so a Prometheus can federate from hcmon. Stale
//! series (nothing newer than `metrics_staleness`) are left out, as on `/metrics`.

use super::error::ApiError;
use super::exposition::{self, Options};
use super::params::Params;
use super::{ApiState, blocking};
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

pub fn routes() -> Router<ApiState> {
    Router::new().route("/federate", get(federate))
}

async fn federate(State(state): State<ApiState>, params: Params) -> Result<Response, ApiError> {
    let selected = state.select(&params.matches()?);
    let oldest_ms = state.now_ms() - state.metrics_staleness.as_millis() as i64;
    let tsdb = state.tsdb.clone();
    let body = blocking("/federate", move || {
        let series: Vec<_> = selected
            .into_iter()
            .map(|meta| {
                let latest = tsdb.latest(meta.id);
                (meta, latest)
            })
            .collect();
        let options = Options {
            oldest_ms,
            timestamps: true,
        };
        let mut body = String::with_capacity(128 * series.len());
        // Stored series never carry the collector's own names (they are refused on ingest).
        let help = |family: &str| tsdb.family(family).map(|f| f.help);
        exposition::render(&series, options, |_| false, help, &mut body);
        body
    })
    .await?;
    let content_type = "text/plain; version=0.0.4; charset=utf-8";
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

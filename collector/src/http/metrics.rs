//! `GET /metrics`: the stored series' newest values, the live anomaly verdicts, the data-quality
//! scores, then the collector's own metrics, in the Prometheus text format ([`super::exposition`]
//! writes it; by hand, for speed: it walks every series). `collect[]` picks some of these parts,
//! as node_exporter's parameter of that name picks its collectors: a scrape of the collector's
//! own health (`collect[]=collector`) then costs nothing per stored series' text.

use super::error::ApiError;
use super::params::QueryParams;
use super::{ApiState, blocking, exposition};
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus::Encoder;

pub fn routes() -> Router<ApiState> {
    Router::new().route("/metrics", get(metrics))
}

/// A part of the `/metrics` text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// The stored series' newest values.
    Series,
    /// The live anomaly verdicts, the series' and the node models'.
    Anomaly,
    /// The data-quality scores.
    Quality,
    /// The collector's own metrics.
    Collector,
}

/// `collect[]`'s words, in the order the parts are written.
const PARTS: [(&str, Part); 4] = [
    ("series", Part::Series),
    ("quality", Part::Quality),
    ("anomaly", Part::Anomaly),
    ("collector", Part::Collector),
];

async fn metrics(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams,
) -> Result<Response, ApiError> {
    let mut parts = params.choices("collect[]", &PARTS)?;
    if parts.is_empty() {
        parts = PARTS.iter().map(|&(_, part)| part).collect();
    }
    let body = blocking("/metrics", move || render(&state, &parts)).await?;
    let content_type = "text/plain; version=0.0.4; charset=utf-8";
    Ok(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

/// The `/metrics` text of `parts`. Blocking.
fn render(state: &ApiState, parts: &[Part]) -> String {
    let wants = |part| parts.contains(&part);
    let oldest = state.now_ms() - state.metrics_staleness.as_millis() as i64;
    let mut body = String::with_capacity(64 * 1024);
    let series: Vec<_> = if wants(Part::Series) || wants(Part::Anomaly) {
        state
            .catalog
            .all()
            .into_iter()
            .map(|m| {
                let latest = state.tsdb.latest(m.id);
                (m, latest)
            })
            .collect()
    } else {
        Vec::new()
    };
    if wants(Part::Series) {
        // Stored families named like the collector's own would repeat their TYPE line: the
        // names reserved on ingest, and whatever the registry exports now (which the
        // reservation is tested to cover, but an old store may predate it).
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
        let options = exposition::Options {
            oldest_ms: oldest,
            timestamps: false,
        };
        let help = |family: &str| state.tsdb.family(family).map(|f| f.help);
        let hidden = exposition::render(&series, options, own, help, &mut body);
        state.metrics.exposition_hidden_series.set(hidden as i64);
    }
    if wants(Part::Quality)
        && let Some(quality) = &state.quality
    {
        exposition::render_quality(&quality.latest(), &mut body);
    }
    if wants(Part::Anomaly)
        && let Some(watch) = &state.watch
    {
        let verdicts: Vec<_> = series
            .iter()
            .filter_map(|(m, _)| Some((m.clone(), watch.latest(m.id)?)))
            .collect();
        exposition::render_anomalies(&verdicts, oldest, &mut body);
        if let Some(forests) = &state.forests {
            exposition::render_node_verdicts(&forests.verdicts(), &mut body);
        }
    }
    if wants(Part::Collector) {
        refresh_gauges(state);
        let mut own = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&state.metrics.registry.gather(), &mut own)
            .expect("text encoding into memory cannot fail");
        body.push_str(&String::from_utf8_lossy(&own));
    }
    body
}

/// Sets the collector's gauges that are read, not counted: state sizes, the engines' backlog,
/// the store's figures.
fn refresh_gauges(state: &ApiState) {
    if let Some(quality) = &state.quality {
        let (series, bytes) = quality.state();
        state.metrics.quality_series.set(series as i64);
        state
            .metrics
            .state_bytes
            .with_label_values(&["quality"])
            .set(bytes as i64);
    }
    if let Some(watch) = &state.watch {
        let backlog = watch.backlog();
        let metrics = &state.metrics;
        metrics.anomaly_backlog_samples.set(backlog.samples as i64);
        metrics.anomaly_lag_seconds.set(backlog.lag.as_secs_f64());
        let counted = metrics.anomaly_waited_seconds.get();
        metrics
            .anomaly_waited_seconds
            .inc_by((backlog.waited.as_secs_f64() - counted).max(0.0));
        metrics.anomaly_workers.set(backlog.workers as i64);
        state
            .metrics
            .state_bytes
            .with_label_values(&["anomaly"])
            .set(watch.state_bytes() as i64);
        let (watched, learning) = watch.counts();
        state.metrics.anomaly_series.set(watched as i64);
        state.metrics.anomaly_learning_series.set(learning as i64);
    }
    state
        .metrics
        .state_bytes
        .with_label_values(&["catalog"])
        .set(state.catalog.state_bytes() as i64);
    let stats = state.tsdb.stats();
    state.metrics.head_series.set(stats.head_series as i64);
    state.metrics.head_samples.set(stats.head_samples as i64);
    state
        .metrics
        .chunks_written
        .set(stats.chunks_written as i64);
    for (kind, bytes) in [
        ("cache", stats.kv_memory.cache as usize),
        ("memtables", stats.kv_memory.memtables as usize),
        ("head", stats.head_bytes),
    ] {
        state
            .metrics
            .storage_memory_bytes
            .with_label_values(&[kind])
            .set(bytes as i64);
    }
    if let Some(heap) = crate::heap::heap_bytes() {
        for (kind, bytes) in [
            ("allocated", heap.allocated),
            ("resident", heap.resident),
            ("retained", heap.retained),
        ] {
            state
                .metrics
                .allocator_bytes
                .with_label_values(&[kind])
                .set(bytes as i64);
        }
    }
    for (table, bytes) in state.tsdb.table_sizes() {
        state
            .metrics
            .storage_bytes
            .with_label_values(&[table.name()])
            .set(bytes as i64);
    }
}

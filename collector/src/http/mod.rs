//! The HTTP face: `/metrics`, `/healthz` and the versioned API, shaped like Prometheus' HTTP API
//! so Grafana's Prometheus data source and Prometheus tooling can read hcmon directly.
//!
//! One module per API area; handlers read their parameters through [`params::Params`] (the one
//! parser), answer with [`error::success`] and the typed bodies of [`crate::api`], and fail with
//! [`error::ApiError`], the one place that maps errors to HTTP responses. This file holds what
//! every handler reaches ([`ApiState`]) and the router.

mod admin;
mod agents;
mod alerts;
mod analysis;
mod analytics;
mod error;
mod exposition;
mod metrics;
mod params;
mod query;
mod remote_write;

use crate::api::Metric;
use crate::catalog::SeriesCatalog;
use crate::ingest::IngestService;
use crate::storage::{SeriesMeta, Tsdb};
use crate::telemetry::CollectorMetrics;
use analysis::Analyses;
use axum::{Extension, Router};
use error::ApiError;
use hcmon_common::{Labels, Selector};
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
    pub alerting: Option<crate::alerting::handle::Alerting>,
    pub metrics: Arc<CollectorMetrics>,
    pub metrics_staleness: Duration,
    pub clock: crate::clock::Clock,
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .merge(metrics::routes())
        .merge(admin::routes())
        .merge(query::routes())
        .merge(agents::routes())
        .merge(analytics::routes())
        .merge(alerts::routes())
        .merge(remote_write::routes())
        .layer(Extension(Analyses::new()))
        .with_state(state)
}

impl ApiState {
    /// The series any of `selectors` matches, each once.
    fn select(&self, selectors: &[Selector]) -> Vec<Arc<SeriesMeta>> {
        let mut out: Vec<Arc<SeriesMeta>> = Vec::new();
        for selector in selectors {
            for meta in self.catalog.select(selector) {
                if !out.iter().any(|m| m.id == meta.id) {
                    out.push(meta);
                }
            }
        }
        out
    }

    fn now_ms(&self) -> i64 {
        (self.clock)()
    }
}

/// Runs work that grows with the store (reads, large answers) on the blocking pool, off the
/// async workers. A panic there is logged and counted as the `endpoint` task's, and answered
/// 500.
async fn blocking<T: Send + 'static>(
    endpoint: &'static str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    Ok(crate::tasks::blocking(endpoint, work).await?)
}

/// A label set as the API writes a series' `metric`.
fn metric(labels: &Labels) -> Metric {
    labels
        .iter()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{MemoryKv, StorageConfig};
    use serde_json::Value;

    /// The API of a collector with analytics and alerting switched off, on a loopback port.
    async fn serve() -> String {
        let opened = Tsdb::open(Box::new(MemoryKv::default()), StorageConfig::default()).unwrap();
        let tsdb = Arc::new(opened.tsdb);
        let catalog = Arc::new(SeriesCatalog::new(vec![]));
        let metrics = Arc::new(CollectorMetrics::new());
        let clock: crate::clock::Clock = Arc::new(|| 1_700_000_000_000);
        let ingest = IngestService::new(
            tsdb.clone(),
            catalog.clone(),
            vec![],
            metrics.clone(),
            Default::default(),
            clock.clone(),
            Default::default(),
        );
        let state = ApiState {
            tsdb,
            catalog,
            ingest,
            watch: None,
            forests: None,
            alerting: None,
            metrics,
            metrics_staleness: Duration::from_secs(300),
            clock,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router(state)).await });
        base
    }

    /// Sends `method path`; the status and the JSON answer.
    async fn ask(base: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let client = reqwest::Client::new();
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = client.request(method, format!("{base}{path}"));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: {text}"));
        (status, json)
    }

    #[tokio::test]
    async fn a_disabled_feature_answers_404_not_found_on_every_endpoint() {
        let base = serve().await;
        let silence =
            serde_json::json!({"matchers": "{node=\"nas\"}", "duration": "1h", "created_by": "me"});
        let alerting =
            "alerting is disabled in this collector's config ([alerting] enabled = false)";
        let analytics =
            "analytics are disabled in this collector's config ([analytics] enabled = false)";
        for (method, path, body, message) in [
            ("GET", "/api/v1/alerts", None, alerting),
            ("GET", "/api/v1/alerts/abc", None, alerting),
            ("POST", "/api/v1/alerts/abc/ack?by=me", None, alerting),
            (
                "GET",
                "/api/v1/alerts/abc/ack?by=me&expires=2000000000&sig=00",
                None,
                alerting,
            ),
            ("GET", "/api/v1/silences", None, alerting),
            ("POST", "/api/v1/silences", Some(silence), alerting),
            ("DELETE", "/api/v1/silences/abc", None, alerting),
            ("GET", "/api/v1/incidents", None, alerting),
            ("GET", "/api/v1/incidents/abc", None, alerting),
            ("GET", "/api/v1/anomalies", None, analytics),
            ("GET", "/api/v1/node_anomalies", None, analytics),
        ] {
            let (status, answer) = ask(&base, method, path, body).await;
            assert_eq!(status, 404, "{method} {path}: {answer}");
            let expected =
                serde_json::json!({"status": "error", "errorType": "not_found", "error": message});
            assert_eq!(answer, expected, "{method} {path}");
        }
    }

    #[tokio::test]
    async fn huge_and_negative_numbers_are_refused_with_400_naming_the_parameter() {
        let base = serve().await;
        let max = i64::MAX;
        let range = "/api/v1/query_range?query=up&start=0";
        for (method, path, parameter) in [
            ("GET", format!("{range}&end={max}&step=15"), "end"),
            ("GET", format!("{range}&end=1e300&step=15"), "end"),
            ("GET", format!("{range}&end=60&step=1e300"), "step"),
            ("GET", format!("{range}&end=60&step=-15"), "step"),
            ("GET", format!("{range}&end=60&step={max}"), "step"),
            ("GET", "/api/v1/query?query=up&time=-1e300".into(), "time"),
            (
                "GET",
                format!("/api/v1/export?match[]=up&start=-{max}"),
                "start",
            ),
            (
                "GET",
                format!("/api/v1/trend?match[]=up&window={max}"),
                "window",
            ),
            (
                "GET",
                "/api/v1/trend?match[]=up&horizon=1e300".into(),
                "horizon",
            ),
            (
                "GET",
                "/api/v1/trend?match[]=up&horizon=300000000years".into(),
                "horizon",
            ),
            (
                "GET",
                "/api/v1/trend?match[]=up&seasonal_step=-1".into(),
                "seasonal_step",
            ),
            (
                "GET",
                "/api/v1/trend?match[]=up&limit=1e309".into(),
                "limit",
            ),
            (
                "GET",
                "/api/v1/correlations?match[]=up&time=1e300".into(),
                "time",
            ),
            (
                "GET",
                "/api/v1/correlations?match[]=up&window=-1".into(),
                "window",
            ),
            ("GET", "/api/v1/incidents?limit=-1".into(), "limit"),
            (
                "GET",
                "/api/v1/alerts/abc/ack?by=me&expires=9223372036854775808&sig=00".into(),
                "expires",
            ),
            (
                "GET",
                "/api/v1/alerts/abc/ack?by=me&expires=1e300&sig=00".into(),
                "expires",
            ),
            ("DELETE", "/api/v1/agents/nas?series=all".into(), "series"),
        ] {
            let (status, answer) = ask(&base, method, &path, None).await;
            assert_eq!(status, 400, "{path}: {answer}");
            assert_eq!(answer["errorType"], "bad_data", "{path}");
            let message = answer["error"].as_str().unwrap();
            assert!(
                message.contains(&format!("{parameter:?}")),
                "{path}: {message}"
            );
        }
        let (status, health) = ask(&base, "GET", "/healthz", None).await;
        assert_eq!((status, &health["status"]), (200, &Value::from("ok")));
    }
}

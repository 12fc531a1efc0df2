//! The HTTP face: `/metrics`, `/healthz` and the versioned API, shaped like Prometheus' HTTP API
//! so Grafana's Prometheus data source and Prometheus tooling can read hcmon directly.
//!
//! One module per API area; handlers read their parameters through [`params::Params`] (the one
//! parser), answer with [`error::success`] and the typed bodies of [`crate::api`], and fail with
//! [`error::ApiError`], the one place that maps errors to HTTP responses. This file holds what
//! every handler reaches ([`ApiState`]) and the router; `limits.rs` the listener's limits and
//! `server.rs` the listener itself.

mod admin;
mod agents;
mod alerts;
mod analysis;
mod analytics;
mod annotations;
mod audit;
mod auth;
mod compare;
mod dashboard;
mod error;
mod export;
mod exposition;
mod federate;
mod limits;
mod listing;
mod metrics;
mod otlp;
mod pair;
mod params;
mod pki;
mod prometheus;
mod quality;
mod query;
mod remote_write;
mod reports;
mod rules;
mod server;
mod slo;
mod stream;
mod tokens;

pub use self::prometheus::Runtime;
use crate::api::Metric;
use crate::catalog::SeriesCatalog;
use crate::ingest::IngestService;
use crate::storage::{SeriesMeta, Tsdb};
use crate::telemetry::CollectorMetrics;
use analysis::Analyses;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::{Extension, Router};
use error::ApiError;
use hcmon_common::{Labels, Selector};
pub use limits::HttpLimits;
pub use rules::AlertRules;
pub use server::serve;
use std::sync::Arc;
use std::time::Duration;
use tower_http::compression::CompressionLayer;

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
    /// Where every state-changing call is recorded (see `audit.rs`).
    pub audit: Arc<crate::audit::AuditLog>,
    /// The API's tokens and the limits on their use (see `auth.rs`).
    pub access: Arc<crate::access::AccessControl>,
    /// The collector's CA: enrollment tokens, enrolled nodes, revocation; `None` without TLS.
    pub enrollment: Option<Arc<crate::pki::Enrollment>>,
    pub metrics_staleness: Duration,
    pub clock: crate::clock::Clock,
    /// What the status and rules endpoints report (see `prometheus.rs`).
    pub runtime: Arc<Runtime>,
    /// The live stream's hub (`stream.rs`).
    pub live: Arc<crate::live::LiveHub>,
    /// The SLOs in force (`slo.rs`); `None` when `[slo] enabled = false`.
    pub slo: Option<Arc<crate::slo::objectives::Objectives>>,
    /// Reports on demand and the stored scheduled ones (`reports.rs`); `None` when
    /// `[slo] enabled = false`.
    pub reports: Option<crate::report::handle::ReportHandle>,
    /// Data-quality scores (`quality.rs`); `None` when `[quality] enabled = false`.
    pub quality: Option<Arc<crate::quality::QualityTracker>>,
    /// This collector's half of an HA pair (`pair.rs`); `None` outside a pair.
    pub pair: Option<Arc<crate::pair::Pair>>,
    /// What the on-demand engines read: the store, and `[history]`'s remote API before it.
    pub history: Arc<crate::analysis::history::History>,
}

/// Every route, held to `limits`: sizes everywhere, time and concurrency on the query-type
/// routes (see `limits.rs`).
pub fn router(state: ApiState, limits: HttpLimits) -> Router {
    let body_limit = DefaultBodyLimit::max(limits.max_body_bytes);
    let guard = limits::Guard::new(limits, state.metrics.clone());
    let queries = from_fn_with_state(guard.clone(), limits::limit_queries);
    let (report_making, report_listing) = reports::routes();
    Router::new()
        .merge(metrics::routes())
        .merge(admin::routes())
        .merge(dashboard::routes())
        .merge(auth::routes())
        .merge(query::routes().route_layer(queries.clone()))
        .merge(agents::routes())
        .merge(analytics::routes().route_layer(queries.clone()))
        .merge(alerts::routes())
        .merge(annotations::routes())
        .merge(compare::routes().route_layer(queries.clone()))
        .merge(report_making.route_layer(queries.clone()))
        .merge(report_listing)
        .merge(slo::routes().route_layer(queries.clone()))
        .merge(remote_write::routes())
        .merge(otlp::routes())
        .merge(quality::routes())
        .merge(pair::routes())
        .merge(audit::routes())
        .merge(pki::routes())
        .merge(tokens::routes())
        .merge(prometheus::routes())
        .merge(rules::routes())
        .merge(stream::routes())
        .merge(federate::routes().route_layer(queries))
        .layer(from_fn_with_state(state.clone(), audit::record))
        .layer(Extension(Analyses::new()))
        .layer(body_limit)
        .layer(from_fn_with_state(state.clone(), auth::authenticate))
        .layer(from_fn_with_state(guard, limits::check_sizes))
        // Outermost, so refusals are compressed too; see `tower-http` in Cargo.toml.
        .layer(CompressionLayer::new())
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

    /// A collector's API served for a test.
    pub(super) struct Served {
        pub base: String,
        pub metrics: Arc<CollectorMetrics>,
        /// An admin token with the write scope, named `test`.
        pub token: String,
        /// A client that sends `token` with every request.
        pub client: reqwest::Client,
    }

    impl Served {
        /// Posts `request` to remote write as Prometheus sends it (snappy-compressed protobuf)
        /// and fails the test, with the server's words, unless it is accepted.
        pub(super) async fn remote_write(&self, request: &hcmon_proto::prometheus::WriteRequest) {
            let body = prost::Message::encode_to_vec(request);
            let body = snap::raw::Encoder::new().compress_vec(&body).unwrap();
            let answer = self
                .client
                .post(format!("{}/api/v1/write", self.base))
                .header("Content-Encoding", "snappy")
                .header("Content-Type", "application/x-protobuf")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = answer.status();
            assert!(
                status.is_success(),
                "{status}: {}",
                answer.text().await.unwrap()
            );
        }
    }

    /// The API of a collector with analytics and alerting switched off, on a loopback port.
    async fn serve() -> Served {
        serve_with(HttpLimits::default()).await
    }

    /// As [`serve`], held to `limits`.
    async fn serve_with(limits: HttpLimits) -> Served {
        serve_on(Box::new(MemoryKv::default()), limits).await
    }

    /// As [`serve_with`], on the store `kv` (e.g. one that fails on demand).
    pub(super) async fn serve_on(kv: Box<dyn crate::storage::Kv>, limits: HttpLimits) -> Served {
        use crate::access::{AccessControl, NewToken, Role, TokenStore, WriteLimiter};
        let opened = Tsdb::open(kv, StorageConfig::default()).unwrap();
        let tsdb = Arc::new(opened.tsdb);
        let audit = Arc::new(crate::audit::AuditLog::open(tsdb.clone()).unwrap());
        let tokens = TokenStore::open(tsdb.clone()).unwrap();
        let admin = NewToken {
            name: "test".into(),
            role: Role::Admin,
            write: true,
            expires_ms: None,
        };
        let (_, token) = tokens.create(admin, 0).unwrap();
        let access = Arc::new(AccessControl {
            tokens,
            failures: Default::default(),
            writes: WriteLimiter::new(0),
            data_dir: "test-data".into(),
        });
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
        let live = crate::live::LiveHub::new(catalog.clone());
        let state = ApiState {
            tsdb: tsdb.clone(),
            catalog,
            ingest,
            watch: None,
            forests: None,
            alerting: None,
            metrics: metrics.clone(),
            audit,
            access,
            enrollment: None,
            metrics_staleness: Duration::from_secs(300),
            clock,
            runtime: Arc::new(Runtime {
                started_ms: 1_700_000_000_000,
                rules: Default::default(),
            }),
            live,
            slo: None,
            reports: None,
            quality: None,
            pair: None,
            history: Arc::new(crate::analysis::history::History::local(tsdb.clone())),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let tasks = crate::tasks::TaskTree::new(Default::default());
        let served = metrics.clone();
        tokio::spawn(async move {
            super::serve(
                listener,
                None,
                router(state, limits.clone()),
                &limits,
                served,
                tasks,
            )
            .await;
        });
        let mut headers = reqwest::header::HeaderMap::new();
        let bearer = format!("Bearer {token}").parse().unwrap();
        headers.insert(reqwest::header::AUTHORIZATION, bearer);
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap();
        Served {
            base,
            metrics,
            token,
            client,
        }
    }

    /// Sends `method path` with `client`; the status and the JSON answer.
    async fn ask(
        client: &reqwest::Client,
        base: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
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
        let Served { base, client, .. } = serve().await;
        let silence =
            serde_json::json!({"matchers": "{node=\"nas\"}", "duration": "1h", "created_by": "me"});
        let alerting =
            "alerting is disabled in this collector's config ([alerting] enabled = false)";
        let analytics =
            "analytics are disabled in this collector's config ([analytics] enabled = false)";
        for (method, path, body, message) in [
            ("GET", "/api/v1/alerts", None, alerting),
            ("GET", "/api/v1/rules", None, alerting),
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
            let (status, answer) = ask(&client, &base, method, path, body).await;
            assert_eq!(status, 404, "{method} {path}: {answer}");
            let expected =
                serde_json::json!({"status": "error", "errorType": "not_found", "error": message});
            assert_eq!(answer, expected, "{method} {path}");
        }
    }

    #[tokio::test]
    async fn huge_and_negative_numbers_are_refused_with_400_naming_the_parameter() {
        let Served { base, client, .. } = serve().await;
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
            let (status, answer) = ask(&client, &base, method, &path, None).await;
            assert_eq!(status, 400, "{path}: {answer}");
            assert_eq!(answer["errorType"], "bad_data", "{path}");
            let message = answer["error"].as_str().unwrap();
            assert!(
                message.contains(&format!("{parameter:?}")),
                "{path}: {message}"
            );
        }
        let (status, health) = ask(&client, &base, "GET", "/healthz", None).await;
        assert_eq!((status, &health["status"]), (200, &Value::from("ok")));
    }

    /// How often `listener` refused for `reason`.
    fn refused(metrics: &CollectorMetrics, listener: &str, reason: &str) -> u64 {
        let counter = metrics
            .refused_requests
            .with_label_values(&[listener, reason]);
        counter.get()
    }

    /// A raw connection to `base` that has sent `head` (and, for a POST, part of its body).
    async fn connect_raw(base: &str, head: &str) -> tokio::net::TcpStream {
        use tokio::io::AsyncWriteExt;
        let address = base.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream.write_all(head.as_bytes()).await.unwrap();
        stream
    }

    /// Reads what the server sends until it closes the connection (or resets it).
    async fn read_to_close(stream: &mut tokio::net::TcpStream) -> String {
        use tokio::io::AsyncReadExt;
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer).into_owned()
    }

    /// `collect[]` picks parts of `/metrics` as node_exporter's picks collectors: the stored
    /// series alone, the collector's own metrics alone, both; a word it does not know is a 400
    /// naming the parameter and the words it takes.
    #[tokio::test]
    async fn metrics_parts_are_picked_with_collect() {
        use hcmon_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
        let served = serve().await;
        let label = |name: &str, value: &str| Label {
            name: name.into(),
            value: value.into(),
        };
        let request = WriteRequest {
            timeseries: vec![TimeSeries {
                labels: vec![label("__name__", "disk_used_ratio"), label("node", "nas")],
                samples: vec![Sample {
                    value: 0.5,
                    timestamp: 1_700_000_000_000,
                }],
            }],
        };
        served.remote_write(&request).await;
        let Served { base, client, .. } = served;
        let metrics = |query: &'static str| {
            let client = client.clone();
            let url = format!("{base}/metrics{query}");
            async move {
                let answer = client.get(url).send().await.unwrap();
                (answer.status().as_u16(), answer.text().await.unwrap())
            }
        };
        let series = "disk_used_ratio{node=\"nas\"} 0.5";
        let own = "hcmon_collector_ingested_samples_total 1";
        for (query, with_series, with_own) in [
            ("", true, true),
            ("?collect[]=series", true, false),
            ("?collect[]=collector", false, true),
            ("?collect[]=collector&collect[]=series", true, true),
        ] {
            let (status, text) = metrics(query).await;
            assert_eq!(status, 200, "{query}: {text}");
            assert_eq!(text.contains(series), with_series, "{query}: {text}");
            assert_eq!(text.contains(own), with_own, "{query}: {text}");
        }
        let (status, text) = metrics("?collect[]=everything").await;
        assert_eq!(status, 400, "{text}");
        assert!(
            text.contains("collect[]") && text.contains("series, quality, anomaly, collector"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn an_oversized_body_is_refused_with_413_naming_the_limit() {
        let limits = HttpLimits {
            max_body_bytes: 1024,
            ..HttpLimits::default()
        };
        let Served {
            base,
            metrics,
            token,
            client,
        } = serve_with(limits).await;
        let message = "request body over the limit of 1024 bytes (`server.http.max_body_bytes`)";
        // Declared too large up front.
        let response = client
            .post(format!("{base}/api/v1/write"))
            .body(vec![0u8; 4096])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 413);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["errorType"], "bad_data");
        assert_eq!(answer["error"], message);
        // Sent in chunks with no length: found out while it is read.
        let chunk = format!("{:x}\r\n{}\r\n", 800, "a".repeat(800));
        let head = format!(
            "POST /api/v1/write HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Authorization: Bearer {token}\r\n\
             Transfer-Encoding: chunked\r\n\r\n{chunk}{chunk}0\r\n\r\n"
        );
        let mut stream = connect_raw(&base, &head).await;
        let raw = read_to_close(&mut stream).await;
        assert!(raw.starts_with("HTTP/1.1 413"), "{raw}");
        assert!(raw.contains(message), "{raw}");
        assert_eq!(refused(&metrics, "http", "max_body_bytes"), 2);
    }

    #[tokio::test]
    async fn long_urls_and_headers_are_refused_with_414_and_431() {
        let limits = HttpLimits {
            max_url_bytes: 512,
            max_header_bytes: 2048,
            ..HttpLimits::default()
        };
        let Served {
            base,
            metrics,
            token: _,
            client,
        } = serve_with(limits).await;
        let long = "a".repeat(600);
        let response = client
            .get(format!("{base}/api/v1/query?query={long}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 414);
        let response = client
            .get(format!("{base}/healthz"))
            .header("x-padding", "b".repeat(4096))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 431);
        let answer: Value = response.json().await.unwrap();
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .contains("server.http.max_header_bytes"),
            "{answer}"
        );
        assert_eq!(refused(&metrics, "http", "max_url_bytes"), 1);
        assert_eq!(refused(&metrics, "http", "max_header_bytes"), 1);
    }

    #[tokio::test]
    async fn queries_over_the_concurrency_limit_are_shed_with_retry_after_while_healthz_answers() {
        let limits = HttpLimits {
            max_concurrent_queries: 2,
            retry_after: Duration::from_secs(7),
            ..HttpLimits::default()
        };
        let Served {
            base,
            metrics,
            token,
            client,
        } = serve_with(limits).await;
        // Two slow queries: each holds its slot while it waits for the rest of its body.
        let slow = format!(
            "POST /api/v1/query HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
                    Content-Type: application/x-www-form-urlencoded\r\n\
                    Content-Length: 100\r\n\r\nquery=up"
        );
        let _held = [
            connect_raw(&base, &slow).await,
            connect_raw(&base, &slow).await,
        ];
        let mut shed = None;
        // The slow queries reach their slots soon; until then, a query may still be served.
        for _ in 0..500 {
            let response = client
                .get(format!("{base}/api/v1/query?query=up"))
                .send()
                .await
                .unwrap();
            if response.status().as_u16() == 503 {
                shed = Some(response);
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let response = shed.expect("a third query was never shed");
        assert_eq!(response.headers()["retry-after"], "7");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["errorType"], "unavailable");
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .contains("server.http.max_concurrent_queries"),
            "{answer}"
        );
        let (status, health) = ask(&client, &base, "GET", "/healthz", None).await;
        assert_eq!((status, &health["status"]), (200, &Value::from("ok")));
        let text = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            text.contains(
                "hcmon_collector_refused_requests_total{listener=\"http\",reason=\"max_concurrent_queries\"}"
            ),
            "{text}"
        );
        assert!(refused(&metrics, "http", "max_concurrent_queries") >= 1);
    }

    #[tokio::test]
    async fn a_slowloris_client_is_cut_off_while_a_normal_client_is_served() {
        use tokio::io::AsyncWriteExt;
        let limits = HttpLimits {
            header_read_timeout: Duration::from_millis(300),
            ..HttpLimits::default()
        };
        let Served {
            base,
            metrics,
            token: _,
            client,
        } = serve_with(limits).await;
        let mut slow = connect_raw(&base, "G").await;
        let (mut reader, mut writer) = slow.split();
        let cut_off = async {
            use tokio::io::AsyncReadExt;
            let mut sink = Vec::new();
            let _ = reader.read_to_end(&mut sink).await;
        };
        let dribble = async {
            // Headers that never end, a byte at a time.
            let bytes = "ET /healthz HTTP/1.1\r\nHost: x\r\n"
                .bytes()
                .chain(b"X: ".repeat(1000));
            for byte in bytes {
                if writer.write_all(&[byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            panic!("the slow client was never cut off");
        };
        let normal = async {
            let (status, health) = ask(&client, &base, "GET", "/healthz", None).await;
            assert_eq!((status, &health["status"]), (200, &Value::from("ok")));
        };
        let slowloris = async {
            tokio::select! {
                () = cut_off => {}
                () = dribble => {}
            }
        };
        tokio::join!(slowloris, normal);
        // The connection task counts the cut once the connection has ended. The normal
        // client's kept-alive connection, idle past the same timeout, may be counted too:
        // hyper times out waiting for the headers of a next request alike.
        for _ in 0..500 {
            if refused(&metrics, "http", "header_read_timeout") >= 1 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the cut-off connection was not counted");
    }
}

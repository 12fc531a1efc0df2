//! Applications' own metrics, taken on this node's loopback and delivered with the node's
//! batches (`[apps]` in the agent's config):
//!
//! - **StatsD / DogStatsD** on UDP and TCP 127.0.0.1:8125 (`statsd.rs` parses,
//!   `aggregate.rs` aggregates per `interval`, `statsd_listen.rs` owns the sockets);
//! - **OTLP** on 127.0.0.1:4317 (gRPC) and 127.0.0.1:4318 (HTTP) (`otlp.rs`,
//!   `otlp_listen.rs`): each export is spooled before it is answered;
//! - one **cardinality budget** per application over both (`budget.rs`).
//!
//! Everything becomes ordinary spool records (`record.rs`): application metrics get the spool's
//! durability and exactly-once delivery, and survive collector outages like host metrics.
//!
//! A listener whose address is taken (a collector on the same host already serves OTLP on
//! 4317) is logged and left out; the agent's own collection never depends on it.

mod aggregate;
mod budget;
mod otlp;
mod otlp_listen;
mod record;
mod statsd;
mod statsd_listen;

use crate::collect::{BatchBuilder, Metric};
use crate::spool::{self, Spool, SpoolError, SpoolRecord};
use aggregate::StatsdAggregator;
use budget::SeriesBudget;
use serde::Deserialize;
use statsd_listen::StatsdCounts;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// `[apps]`: the listeners for applications' metrics. An empty address switches one off.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AppsConfig {
    /// StatsD/DogStatsD, UDP and TCP on the same address.
    pub statsd_listen: String,
    /// OTLP/gRPC.
    pub otlp_grpc_listen: String,
    /// OTLP/HTTP (`POST /v1/metrics`).
    pub otlp_http_listen: String,
    /// How often StatsD aggregates are written (counters' totals, gauges, histograms, the
    /// interval's quantiles and set sizes).
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Most distinct series one application (`job`) may create on this node; beyond it, new
    /// series are refused and counted in `hcmon_agent_app_refused_samples_total`.
    pub max_series_per_app: usize,
}

impl Default for AppsConfig {
    fn default() -> Self {
        Self {
            statsd_listen: "127.0.0.1:8125".into(),
            otlp_grpc_listen: "127.0.0.1:4317".into(),
            otlp_http_listen: "127.0.0.1:4318".into(),
            interval: Duration::from_secs(10),
            max_series_per_app: 2_000,
        }
    }
}

impl AppsConfig {
    /// Checks the addresses and bounds, naming the key at fault.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        for (key, address) in [
            ("apps.statsd_listen", &self.statsd_listen),
            ("apps.otlp_grpc_listen", &self.otlp_grpc_listen),
            ("apps.otlp_http_listen", &self.otlp_http_listen),
        ] {
            if !address.is_empty() && address.parse::<SocketAddr>().is_err() {
                return Err((
                    key,
                    format!(
                        "{address:?} is not an address like \"127.0.0.1:8125\" (or \"\" to switch it off)"
                    ),
                ));
            }
        }
        if self.interval < Duration::from_millis(100) {
            return Err((
                "apps.interval",
                format!(
                    "{:?} is too short; use at least 100ms, e.g. \"10s\"",
                    self.interval
                ),
            ));
        }
        if self.max_series_per_app == 0 {
            return Err((
                "apps.max_series_per_app",
                "0 would refuse every application series; set at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Where application records go: the agent's spool, waking the sender.
#[derive(Clone)]
pub struct Sink {
    pub spool: Arc<Mutex<Spool>>,
    pub new_batch: Arc<crate::sender::SenderWakers>,
    /// Application samples spooled, for `hcmon_agent_app_samples_total`.
    pub samples: Arc<AtomicU64>,
}

impl Sink {
    pub fn write(&self, record: &SpoolRecord) -> Result<u64, SpoolError> {
        let seq = spool::lock(&self.spool).append(record)?;
        let samples: usize = record.samples.iter().map(|s| s.values.len()).sum();
        self.samples.fetch_add(samples as u64, Ordering::Relaxed);
        self.new_batch.wake();
        Ok(seq)
    }
}

/// The apps' own figures, pushed by the basic tier with the agent's other figures (so they are
/// counted in `hcmon_agent_samples_total` like them).
pub struct AppFigures {
    aggregator: Arc<Mutex<StatsdAggregator>>,
    budget: Arc<Mutex<SeriesBudget>>,
    counts: Arc<StatsdCounts>,
    samples: Arc<AtomicU64>,
}

impl AppFigures {
    pub fn push(&self, out: &mut BatchBuilder) {
        let mut aggregator = self.aggregator.lock().unwrap_or_else(|p| p.into_inner());
        out.push(
            APP_SAMPLES,
            &[],
            self.samples.load(Ordering::Relaxed) as f64,
        );
        out.push(STATSD_LINES, &[], aggregator.lines() as f64);
        out.push(
            STATSD_BAD_LINES,
            &[],
            self.counts.bad_lines.load(Ordering::Relaxed) as f64,
        );
        let budget = self.budget.lock().unwrap_or_else(|p| p.into_inner());
        let mut per_app: std::collections::BTreeMap<String, (usize, u64)> = Default::default();
        for (app, n) in aggregator.budget().series().chain(budget.series()) {
            per_app.entry(app.to_owned()).or_default().0 += n;
        }
        for (app, n) in aggregator.budget().refused().chain(budget.refused()) {
            per_app.entry(app.to_owned()).or_default().1 += n;
        }
        for (app, (series, refused)) in per_app {
            out.push(APP_SERIES, &[("app", app.as_str())], series as f64);
            out.push(APP_REFUSED, &[("app", app.as_str())], refused as f64);
        }
    }
}

const APP_SAMPLES: Metric = Metric::counter(
    "hcmon_agent_app_samples_total",
    "Samples of applications' own metrics (StatsD, OTLP) this agent process has spooled.",
);
const STATSD_LINES: Metric = Metric::counter(
    "hcmon_agent_statsd_lines_total",
    "StatsD lines this agent process has aggregated.",
);
const STATSD_BAD_LINES: Metric = Metric::counter(
    "hcmon_agent_statsd_bad_lines_total",
    "StatsD lines this agent process skipped because they could not be parsed.",
);
const APP_SERIES: Metric = Metric::gauge(
    "hcmon_agent_app_series",
    "Distinct series an application has created on this node (its cardinality budget's use).",
);
const APP_REFUSED: Metric = Metric::counter(
    "hcmon_agent_app_refused_samples_total",
    "Samples of an application's series refused because it was past its cardinality budget.",
);

/// Binds `address` with `bind`; a failure is logged (naming the key) and the listener left out.
async fn bound<T, F>(key: &str, address: &str, bind: impl FnOnce(SocketAddr) -> F) -> Option<T>
where
    F: std::future::Future<Output = std::io::Result<T>>,
{
    if address.is_empty() {
        return None;
    }
    let parsed: SocketAddr = address.parse().ok()?;
    match bind(parsed).await {
        Ok(socket) => {
            tracing::info!(%address, "{key}: listening");
            Some(socket)
        }
        Err(error) => {
            tracing::warn!(%address, %error, "{key}: cannot listen; applications cannot send here (set [apps] {key} to another address, or \"\" to switch it off)");
            None
        }
    }
}

/// Starts the listeners `config` asks for and the StatsD flush loop, until `shutdown`.
pub async fn start(
    config: &AppsConfig,
    sink: Sink,
    shutdown: &CancellationToken,
) -> (Vec<JoinHandle<()>>, AppFigures) {
    let mut tasks = Vec::new();
    let budget = Arc::new(Mutex::new(SeriesBudget::new(config.max_series_per_app)));
    let aggregator = Arc::new(Mutex::new(StatsdAggregator::new(config.max_series_per_app)));
    let counts = Arc::new(StatsdCounts::default());
    if let Some(socket) = bound(
        "statsd_listen",
        &config.statsd_listen,
        tokio::net::UdpSocket::bind,
    )
    .await
    {
        tasks.push(tokio::spawn(statsd_listen::serve_udp(
            socket,
            aggregator.clone(),
            counts.clone(),
            shutdown.clone(),
        )));
    }
    if let Some(listener) = bound(
        "statsd_listen",
        &config.statsd_listen,
        tokio::net::TcpListener::bind,
    )
    .await
    {
        tasks.push(tokio::spawn(statsd_listen::serve_tcp(
            listener,
            aggregator.clone(),
            counts.clone(),
            shutdown.clone(),
        )));
    }
    let receiver = Arc::new(otlp::OtlpReceiver::new(sink.clone(), budget.clone()));
    if let Some(listener) = bound(
        "otlp_grpc_listen",
        &config.otlp_grpc_listen,
        tokio::net::TcpListener::bind,
    )
    .await
    {
        let (receiver, shutdown) = (receiver.clone(), shutdown.clone());
        tasks.push(tokio::spawn(async move {
            if let Err(error) = otlp_listen::serve_grpc(listener, receiver, shutdown).await {
                tracing::error!(%error, "OTLP/gRPC listener failed");
            }
        }));
    }
    if let Some(listener) = bound(
        "otlp_http_listen",
        &config.otlp_http_listen,
        tokio::net::TcpListener::bind,
    )
    .await
    {
        tasks.push(tokio::spawn(otlp_listen::serve_http(
            listener,
            receiver,
            shutdown.clone(),
        )));
    }
    let figures = AppFigures {
        aggregator: aggregator.clone(),
        budget: budget.clone(),
        counts,
        samples: sink.samples.clone(),
    };
    let flush = Flush {
        interval: config.interval,
        aggregator,
        budget,
        sink,
    };
    tasks.push(tokio::spawn(flush.run(shutdown.clone())));
    (tasks, figures)
}

/// Writes StatsD's aggregates on the interval grid, and warns of budget refusals.
struct Flush {
    interval: Duration,
    aggregator: Arc<Mutex<StatsdAggregator>>,
    budget: Arc<Mutex<SeriesBudget>>,
    sink: Sink,
}

impl Flush {
    async fn run(self, shutdown: CancellationToken) {
        let interval_ms = self.interval.as_millis().max(1) as i64;
        let mut last = None;
        loop {
            let now = crate::now_ms();
            let at = crate::next_collection(now, interval_ms, last);
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis((at - now) as u64)) => {}
                _ = shutdown.cancelled() => {
                    // What was aggregated since the last flush is not lost at a clean stop.
                    self.write(crate::now_ms());
                    return;
                }
            }
            last = Some(at);
            self.write(at);
        }
    }

    fn write(&self, at_ms: i64) {
        let series = {
            let mut aggregator = self.aggregator.lock().unwrap_or_else(|p| p.into_inner());
            let series = aggregator.flush(at_ms);
            let mut budget = self.budget.lock().unwrap_or_else(|p| p.into_inner());
            for (app, example) in aggregator
                .budget()
                .take_examples()
                .into_iter()
                .chain(budget.take_examples())
            {
                tracing::warn!(%app, refused = %example, max = budget.max_per_app(), "application past its cardinality budget ([apps] max_series_per_app): new series refused");
            }
            series
        };
        for record in record::records(series, |_| String::new()) {
            if let Err(error) = self.sink.write(&record) {
                tracing::error!(%error, "cannot spool application metrics; these samples are lost");
            }
        }
    }
}

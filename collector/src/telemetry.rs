//! The collector's own metrics, served on `/metrics` beside the agents' series. Names follow
//! `hcmon_collector_<name>_<unit>`; the typed events that update them live with the code that
//! emits them (e.g. `ingest/events.rs`).
//!
//! The names the collector exports about itself are reserved for it ([`check_metric_name`]):
//! a stored series of the same name would give its family a second TYPE line on `/metrics`,
//! which makes the whole exposition invalid and Prometheus' scrape of the collector fail. They
//! are the registry's namespaces (`hcmon_collector_`, and `process_` from the client library's
//! process collector), the live verdicts' namespace `hcmon_anomaly_`, and the exact names of the
//! families rendered from verdicts ([`VERDICT_FAMILIES`]). A test checks that every family the
//! registry exports falls under them, and `/metrics` also leaves out any stored family whose
//! name the registry exports, so an old store written before a name was reserved cannot break
//! the exposition either.

use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

/// Namespaces of the collector's own metric names: its registry's, the process collector's and
/// the live anomaly verdicts'.
const RESERVED_PREFIXES: [&str; 3] = ["hcmon_collector_", "process_", "hcmon_anomaly_"];

/// The per-series anomaly score on `/metrics`, rendered from live verdicts.
pub const ANOMALY_SCORE: &str = "hcmon_anomaly_score";
/// The per-series "still learning" flag on `/metrics`, rendered from live verdicts.
pub const ANOMALY_LEARNING: &str = "hcmon_anomaly_learning";
/// The per-node Isolation Forest score on `/metrics`.
pub const NODE_ANOMALY_SCORE: &str = "hcmon_node_anomaly_score";
/// The per-node Isolation Forest verdict on `/metrics`.
pub const NODE_ANOMALY: &str = "hcmon_node_anomaly";
/// The per-node data-quality score per dimension on `/metrics`, from the newest evaluation.
pub const DATA_QUALITY_SCORE: &str = "hcmon_data_quality_score";
/// The worst series' overall data-quality score on `/metrics`.
pub const DATA_QUALITY_SERIES_SCORE: &str = "hcmon_data_quality_series_score";
/// The families `/metrics` renders from analytics verdicts and quality evaluations rather than
/// from the registry.
pub const VERDICT_FAMILIES: [&str; 6] = [
    ANOMALY_SCORE,
    ANOMALY_LEARNING,
    NODE_ANOMALY_SCORE,
    NODE_ANOMALY,
    DATA_QUALITY_SCORE,
    DATA_QUALITY_SERIES_SCORE,
];

/// A metric name kept for the collector's own metrics, refused on ingest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReservedName {
    #[error(
        "metric name {name:?} is reserved: names starting with {prefix} belong to the collector's own metrics on /metrics"
    )]
    Prefix { name: String, prefix: &'static str },
    #[error(
        "metric name {name:?} is reserved: the collector exports its own metric of that name on /metrics"
    )]
    Exact { name: String },
}

/// Err when `name` belongs to the collector's own metrics; see the module doc.
pub fn check_metric_name(name: &str) -> Result<(), ReservedName> {
    if let Some(prefix) = RESERVED_PREFIXES.into_iter().find(|p| name.starts_with(p)) {
        return Err(ReservedName::Prefix {
            name: name.to_owned(),
            prefix,
        });
    }
    if VERDICT_FAMILIES.contains(&name) {
        return Err(ReservedName::Exact {
            name: name.to_owned(),
        });
    }
    Ok(())
}

pub struct CollectorMetrics {
    pub registry: Registry,
    pub ingested_samples: IntCounter,
    pub ingested_batches: IntCounter,
    pub duplicate_batches: IntCounter,
    pub lost_batches: IntCounter,
    pub rejected_batches: IntCounterVec,
    pub connected_agents: IntGauge,
    pub anomaly_series: IntGauge,
    pub anomaly_learning_series: IntGauge,
    pub quality_series: IntGauge,
    pub state_bytes: IntGaugeVec,
    pub anomaly_backlog_samples: IntGauge,
    pub anomaly_lag_seconds: prometheus::Gauge,
    pub anomaly_waited_seconds: prometheus::Counter,
    pub anomaly_workers: IntGauge,
    pub series: IntGauge,
    pub batch_write_seconds: Histogram,
    pub batch_stage_seconds: HistogramVec,
    pub runtime_lag_seconds: Histogram,
    pub checkpoint_seconds: HistogramVec,
    pub checkpoint_bytes: IntGauge,
    pub samples_too_old: IntCounter,
    pub remote_write_requests: IntCounterVec,
    pub otlp_requests: IntCounterVec,
    pub storage_bytes: IntGaugeVec,
    pub storage_memory_bytes: IntGaugeVec,
    pub allocator_bytes: IntGaugeVec,
    pub forward_samples: IntCounterVec,
    pub forward_filtered_samples: IntCounterVec,
    pub forward_dropped_samples: IntCounterVec,
    pub forward_failures: IntCounterVec,
    pub forward_backlog_bytes: IntGaugeVec,
    pub forward_lag_seconds: prometheus::GaugeVec,
    pub head_series: IntGauge,
    pub head_samples: IntGauge,
    pub chunks_written: IntGauge,
    pub analyses_running: IntGauge,
    pub analyses_stopped: IntCounterVec,
    pub exposition_hidden_series: IntGauge,
    pub refused_requests: IntCounterVec,
    pub live_connections: IntGauge,
    pub live_dropped_messages: IntCounter,
}

impl CollectorMetrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let r = Registrar(&registry);
        let metrics = Self {
            ingested_samples: r.counter(
                "hcmon_collector_ingested_samples_total",
                "Samples made durable from agent batches.",
            ),
            ingested_batches: r.counter(
                "hcmon_collector_ingested_batches_total",
                "Agent batches made durable and acknowledged.",
            ),
            duplicate_batches: r.counter(
                "hcmon_collector_duplicate_batches_total",
                "Agent batches received again after they were already durable; acknowledged, not stored twice.",
            ),
            lost_batches: r.counter(
                "hcmon_collector_lost_batches_total",
                "Agent batches that never arrived: sequence numbers an agent declared skipped (dropped from a full spool, set aside after a refusal, or never written).",
            ),
            rejected_batches: r.counter_vec(
                "hcmon_collector_rejected_batches_total",
                "Agent batches and requests refused, by reason.",
                &["reason"],
            ),
            connected_agents: r.gauge(
                "hcmon_collector_connected_agents",
                "Nodes with an open ingest stream.",
            ),
            anomaly_series: r.gauge(
                "hcmon_collector_anomaly_series",
                "Series the live anomaly detectors have seen since start.",
            ),
            anomaly_learning_series: r.gauge(
                "hcmon_collector_anomaly_learning_series",
                "Series still learning: too little history for their detectors to fire.",
            ),
            quality_series: r.gauge(
                "hcmon_collector_quality_series",
                "Series the data-quality tracker keeps counts for (those with data in its window).",
            ),
            state_bytes: r.gauge_vec(
                "hcmon_collector_state_bytes",
                "Bytes of per-series state held in memory: engine=anomaly, quality, catalog (labels, help, postings), from their types' sizes.",
                &["engine"],
            ),
            anomaly_backlog_samples: r.gauge(
                "hcmon_collector_anomaly_backlog_samples",
                "Stored samples queued for the live anomaly detectors and not yet judged.",
            ),
            anomaly_lag_seconds: r.add(prometheus::Gauge::new(
                "hcmon_collector_anomaly_lag_seconds",
                "Age of the oldest stored batch the live anomaly detectors have not finished; 0 when caught up.",
            )),
            anomaly_waited_seconds: r.add(prometheus::Counter::new(
                "hcmon_collector_anomaly_backpressure_seconds_total",
                "Time ingest waited for room in the anomaly detectors' backlog ([analytics] backlog_samples) rather than skip samples.",
            )),
            anomaly_workers: r.gauge(
                "hcmon_collector_anomaly_workers",
                "Threads running the live anomaly detectors, each owning a share of the series.",
            ),
            series: r.gauge("hcmon_collector_series", "Series known to the collector."),
            batch_write_seconds: r.histogram(
                "hcmon_collector_batch_write_seconds",
                "Time from receiving a batch to its durable write, before the ack.",
                &[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
                ],
            ),
            batch_stage_seconds: r.histogram_vec(
                "hcmon_collector_batch_stage_seconds",
                "Where an agent batch's time before its ack goes, by stage (lane: waiting for a back-fill lane; node_lock: waiting for the node's lock; validate: checking it against its stream and limits; queue: waiting for a blocking thread; resolve: creating new series; append: the log write and the head; observe: handing samples to the engines, waiting when their backlog is full; resume: the batch's task waiting for a runtime thread after the store; sync: waiting for the log sync that makes it durable) and batch (live, backfill: newest sample over 5 min old).",
                &[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
                ],
                &["stage", "batch"],
            ),
            runtime_lag_seconds: r.histogram(
                "hcmon_collector_runtime_lag_seconds",
                "How late the async runtime ran a task that was ready (a 50 ms timer's, measured against its deadline): long when work holds the runtime's threads, which delays every connection's reads and acks.",
                &[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
                ],
            ),
            checkpoint_seconds: r.histogram_vec(
                "hcmon_collector_checkpoint_seconds",
                "Periodic storage checkpoints, by part: appends_held (appends wait while the head is cut and copied), write (the synced write of chunks, rollups and head snapshots; appends queue behind it in the store), total.",
                &[
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ],
                &["part"],
            ),
            checkpoint_bytes: r.gauge(
                "hcmon_collector_checkpoint_bytes",
                "Bytes the newest periodic checkpoint wrote in its atomic batch (chunks, rollups, head snapshots).",
            ),
            samples_too_old: r.counter(
                "hcmon_collector_samples_too_old_total",
                "Samples refused because they were older than their series' out-of-order window.",
            ),
            remote_write_requests: r.counter_vec(
                "hcmon_collector_remote_write_requests_total",
                "Prometheus remote-write requests, by outcome.",
                &["outcome"],
            ),
            otlp_requests: r.counter_vec(
                "hcmon_collector_otlp_requests_total",
                "OTLP metrics export requests, by transport (grpc, http) and outcome (ok, partial, refused, failed).",
                &["transport", "outcome"],
            ),
            storage_bytes: r.gauge_vec(
                "hcmon_collector_storage_bytes",
                "Bytes on disk per storage table.",
                &["table"],
            ),
            storage_memory_bytes: r.gauge_vec(
                "hcmon_collector_storage_memory_bytes",
                "Memory the storage holds: kind=cache (RocksDB's block cache, memtables charged to it, within [storage] memory_bytes), memtables, head (open chunks encoded, late samples, chunks waiting for a checkpoint).",
                &["kind"],
            ),
            allocator_bytes: r.gauge_vec(
                "hcmon_collector_allocator_bytes",
                "The heap as the allocator (jemalloc, also RocksDB's malloc) sees it: kind=allocated (live allocations, the storage's cache and memtables among them), resident (pages it holds: allocations, metadata, freed pages not yet returned), retained (returned to the system, kept mapped).",
                &["kind"],
            ),
            forward_samples: r.counter_vec(
                "hcmon_collector_remote_write_out_samples_total",
                "Stored samples a remote-write destination accepted.",
                &["destination"],
            ),
            forward_filtered_samples: r.counter_vec(
                "hcmon_collector_remote_write_out_filtered_samples_total",
                "Stored samples a destination's relabel rules left out (or of series deleted since).",
                &["destination"],
            ),
            forward_dropped_samples: r.counter_vec(
                "hcmon_collector_remote_write_out_dropped_samples_total",
                "Samples given up: reason=refused (the receiver answered 4xx), backlog_full (behind by more than max_backlog_bytes).",
                &["destination", "reason"],
            ),
            forward_failures: r.counter_vec(
                "hcmon_collector_remote_write_out_failed_requests_total",
                "Requests to retry: reason=transport, timeout, status_429, status_5xx, protocol (2.0 refused, falling back to 1.0).",
                &["destination", "reason"],
            ),
            forward_backlog_bytes: r.gauge_vec(
                "hcmon_collector_remote_write_out_backlog_bytes",
                "Bytes of stored batches (WAL records) a destination has not been sent yet.",
                &["destination"],
            ),
            forward_lag_seconds: r.add(prometheus::GaugeVec::new(
                Opts::new(
                    "hcmon_collector_remote_write_out_lag_seconds",
                    "Time since a destination last had every stored sample; 0 when caught up.",
                ),
                &["destination"],
            )),
            head_series: r.gauge(
                "hcmon_collector_head_series",
                "Series with state in the in-memory head.",
            ),
            head_samples: r.gauge(
                "hcmon_collector_head_samples",
                "Samples in open (not yet compressed) chunks.",
            ),
            chunks_written: r.gauge(
                "hcmon_collector_chunks_written",
                "Compressed chunks written since start.",
            ),
            analyses_running: r.gauge(
                "hcmon_collector_analyses_running",
                "Trend and correlation requests computing now, on the blocking pool.",
            ),
            analyses_stopped: r.counter_vec(
                "hcmon_collector_analyses_stopped_total",
                "Trend and correlation requests stopped before they finished, by reason: time_limit (answered 503) or client_gone.",
                &["reason"],
            ),
            exposition_hidden_series: r.gauge(
                "hcmon_collector_exposition_hidden_series",
                "Stored series left out of the last /metrics because their name belongs to the collector's own metrics.",
            ),
            refused_requests: r.counter_vec(
                "hcmon_collector_refused_requests_total",
                "Requests and connections a listener (http, grpc) refused under its limits, by reason: the limit's config key (max_body_bytes, max_streams, ...), or header_read_timeout for a connection closed because its headers came too slowly.",
                &["listener", "reason"],
            ),
            live_connections: r.gauge(
                "hcmon_collector_live_connections",
                "Open /api/v1/stream WebSocket connections (dashboard pages).",
            ),
            live_dropped_messages: r.counter(
                "hcmon_collector_live_dropped_messages_total",
                "Stored batches and events live connections lost because they fell behind (each told `lagged`).",
            ),
            registry: registry.clone(),
        };
        let process = prometheus::process_collector::ProcessCollector::for_self();
        registry
            .register(Box::new(process))
            .expect("metric names are unique");
        metrics
    }
}

/// Builds the collector's own metrics and registers each in one step, so that a metric is one
/// call. A name that is invalid or registered twice is a bug: it panics.
pub struct Registrar<'a>(pub &'a Registry);

impl Registrar<'_> {
    /// Registers `metric` and hands it back.
    pub fn add<M>(&self, metric: prometheus::Result<M>) -> M
    where
        M: prometheus::core::Collector + Clone + 'static,
    {
        let metric = metric.expect("valid metric");
        self.0
            .register(Box::new(metric.clone()))
            .expect("metric names are unique");
        metric
    }

    pub fn counter(&self, name: &str, help: &str) -> IntCounter {
        self.add(IntCounter::new(name, help))
    }

    pub fn counter_vec(&self, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
        self.add(IntCounterVec::new(Opts::new(name, help), labels))
    }

    pub fn gauge(&self, name: &str, help: &str) -> IntGauge {
        self.add(IntGauge::new(name, help))
    }

    pub fn gauge_vec(&self, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
        self.add(IntGaugeVec::new(Opts::new(name, help), labels))
    }

    pub fn histogram(&self, name: &str, help: &str, buckets: &[f64]) -> Histogram {
        let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
        self.add(Histogram::with_opts(opts))
    }

    pub fn histogram_vec(
        &self,
        name: &str,
        help: &str,
        buckets: &[f64],
        labels: &[&str],
    ) -> HistogramVec {
        let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
        self.add(HistogramVec::new(opts, labels))
    }
}

impl Default for CollectorMetrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_the_collector_exports_is_reserved() {
        let metrics = CollectorMetrics::new();
        let alerts = crate::alerting::metrics::AlertMetrics::new(&metrics.registry);
        crate::alerting::notify::NotifyMetrics::new(&metrics.registry);
        // A labelled family is exported only once it has a child.
        for family in [
            &metrics.rejected_batches,
            &metrics.remote_write_requests,
            &metrics.analyses_stopped,
        ] {
            family.with_label_values(&["x"]).inc();
        }
        metrics.storage_bytes.with_label_values(&["x"]).set(1);
        metrics.state_bytes.with_label_values(&["x"]).set(1);
        metrics.otlp_requests.with_label_values(&["x", "y"]).inc();
        metrics
            .refused_requests
            .with_label_values(&["x", "y"])
            .inc();
        alerts.alerts.with_label_values(&["x"]).set(1);
        let names: Vec<String> = metrics
            .registry
            .gather()
            .iter()
            .map(|f| f.name().to_owned())
            .collect();
        assert!(names.iter().any(|n| n.starts_with("process_")), "{names:?}");
        for name in names.iter().map(String::as_str).chain(VERDICT_FAMILIES) {
            assert!(check_metric_name(name).is_err(), "{name} is not reserved");
        }
    }

    #[test]
    fn reserved_names_are_refused_with_what_reserves_them() {
        let refusal = |name: &str| check_metric_name(name).unwrap_err().to_string();
        assert_eq!(
            refusal("process_resident_memory_bytes"),
            "metric name \"process_resident_memory_bytes\" is reserved: names starting with \
             process_ belong to the collector's own metrics on /metrics"
        );
        assert!(refusal("hcmon_collector_ingested_samples_total").contains("hcmon_collector_"));
        assert!(refusal("hcmon_anomaly_score").contains("hcmon_anomaly_"));
        assert!(refusal("hcmon_node_anomaly").contains("exports its own metric of that name"));
        // The agents' own figures and look-alikes outside the namespaces are not the collector's.
        for allowed in [
            "hcmon_agent_samples_total",
            "hcmon_probe_errors_total",
            "hcmon_node_anomaly_scores",
            "node_top_process_resident_bytes",
            "processes_running",
        ] {
            assert_eq!(check_metric_name(allowed), Ok(()), "{allowed}");
        }
    }
}

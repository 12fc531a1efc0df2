//! The collector's own metrics, served on `/metrics` beside the agents' series, and the typed
//! events that update them. Names follow `hcmon_collector_<name>_<unit>`.

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

pub struct CollectorMetrics {
    pub registry: Registry,
    pub ingested_samples: IntCounter,
    pub ingested_batches: IntCounter,
    pub duplicate_batches: IntCounter,
    pub rejected_batches: IntCounterVec,
    pub connected_agents: IntGauge,
    pub anomaly_series: IntGauge,
    pub anomaly_learning_series: IntGauge,
    pub anomaly_skipped_samples: IntCounter,
    pub series: IntGauge,
    pub batch_write_seconds: Histogram,
    pub samples_too_old: IntCounter,
    pub remote_write_requests: IntCounterVec,
    pub storage_bytes: IntGaugeVec,
    pub head_series: IntGauge,
    pub head_samples: IntGauge,
    pub chunks_written: IntGauge,
}

impl CollectorMetrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let ingested_samples = IntCounter::new(
            "hcmon_collector_ingested_samples_total",
            "Samples made durable from agent batches.",
        )
        .expect("valid metric");
        let ingested_batches = IntCounter::new(
            "hcmon_collector_ingested_batches_total",
            "Agent batches made durable and acknowledged.",
        )
        .expect("valid metric");
        let duplicate_batches = IntCounter::new(
            "hcmon_collector_duplicate_batches_total",
            "Agent batches received again after they were already durable; acknowledged, not stored twice.",
        )
        .expect("valid metric");
        let rejected_batches = IntCounterVec::new(
            Opts::new(
                "hcmon_collector_rejected_batches_total",
                "Agent batches and requests refused, by reason.",
            ),
            &["reason"],
        )
        .expect("valid metric");
        let connected_agents = IntGauge::new(
            "hcmon_collector_connected_agents",
            "Nodes with an open ingest stream.",
        )
        .expect("valid metric");
        let anomaly_series = IntGauge::new(
            "hcmon_collector_anomaly_series",
            "Series the live anomaly detectors have seen since start.",
        )
        .expect("valid metric");
        let anomaly_learning_series = IntGauge::new(
            "hcmon_collector_anomaly_learning_series",
            "Series still learning: too little history for their detectors to fire.",
        )
        .expect("valid metric");
        let anomaly_skipped_samples = IntCounter::new(
            "hcmon_collector_anomaly_skipped_samples_total",
            "Stored samples the live anomaly detectors skipped because they were behind.",
        )
        .expect("valid metric");
        let series = IntGauge::new("hcmon_collector_series", "Series known to the collector.")
            .expect("valid metric");
        let batch_write_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "hcmon_collector_batch_write_seconds",
                "Time from receiving a batch to its durable write, before the ack.",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ]),
        )
        .expect("valid metric");
        let samples_too_old = IntCounter::new(
            "hcmon_collector_samples_too_old_total",
            "Samples refused because they were older than their series' out-of-order window.",
        )
        .expect("valid metric");
        let remote_write_requests = IntCounterVec::new(
            Opts::new(
                "hcmon_collector_remote_write_requests_total",
                "Prometheus remote-write requests, by outcome.",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let storage_bytes = IntGaugeVec::new(
            Opts::new(
                "hcmon_collector_storage_bytes",
                "Bytes on disk per storage table.",
            ),
            &["table"],
        )
        .expect("valid metric");
        let head_series = IntGauge::new(
            "hcmon_collector_head_series",
            "Series with state in the in-memory head.",
        )
        .expect("valid metric");
        let head_samples = IntGauge::new(
            "hcmon_collector_head_samples",
            "Samples in open (not yet compressed) chunks.",
        )
        .expect("valid metric");
        let chunks_written = IntGauge::new(
            "hcmon_collector_chunks_written",
            "Compressed chunks written since start.",
        )
        .expect("valid metric");
        for collector in [
            Box::new(ingested_samples.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(ingested_batches.clone()),
            Box::new(duplicate_batches.clone()),
            Box::new(rejected_batches.clone()),
            Box::new(connected_agents.clone()),
            Box::new(anomaly_series.clone()),
            Box::new(anomaly_learning_series.clone()),
            Box::new(anomaly_skipped_samples.clone()),
            Box::new(series.clone()),
            Box::new(batch_write_seconds.clone()),
            Box::new(samples_too_old.clone()),
            Box::new(remote_write_requests.clone()),
            Box::new(storage_bytes.clone()),
            Box::new(head_series.clone()),
            Box::new(head_samples.clone()),
            Box::new(chunks_written.clone()),
            Box::new(prometheus::process_collector::ProcessCollector::for_self()),
        ] {
            registry
                .register(collector)
                .expect("metric names are unique");
        }
        Self {
            registry,
            ingested_samples,
            ingested_batches,
            duplicate_batches,
            rejected_batches,
            connected_agents,
            anomaly_series,
            anomaly_learning_series,
            anomaly_skipped_samples,
            series,
            batch_write_seconds,
            samples_too_old,
            remote_write_requests,
            storage_bytes,
            head_series,
            head_samples,
            chunks_written,
        }
    }
}

impl Default for CollectorMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// An agent's batch or request was refused.
pub struct BatchRejected<'a> {
    pub node: &'a str,
    pub error: &'a crate::ingest::IngestError,
}

impl BatchRejected<'_> {
    pub fn emit(&self, metrics: &CollectorMetrics) {
        let reason = self.error.reason();
        metrics.rejected_batches.with_label_values(&[reason]).inc();
        if reason == "storage_failure" {
            tracing::error!(node = self.node, reason, error = ?self.error, "batch not stored");
        } else {
            tracing::warn!(node = self.node, reason, error = %self.error, "batch refused");
        }
    }
}

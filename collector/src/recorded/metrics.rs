//! The writers' own metrics: samples stored and rounds that failed, per writer task.

use crate::telemetry::Registrar;
use prometheus::IntCounterVec;

#[derive(Clone)]
pub struct RecordedMetrics {
    /// `{task}`: samples and staleness markers stored.
    samples: IntCounterVec,
    /// `{task, reason}`: rounds (or their new series) not stored.
    failures: IntCounterVec,
}

impl RecordedMetrics {
    /// Registers the metrics in `registry`; panics when they are registered twice.
    pub fn new(registry: &prometheus::Registry) -> Self {
        let r = Registrar(registry);
        Self {
            samples: r.counter_vec(
                "hcmon_collector_recorded_samples_total",
                "Samples (staleness markers included) of the series the collector writes about itself (up, ALERTS, anomaly verdicts), by writer.",
                &["task"],
            ),
            failures: r.counter_vec(
                "hcmon_collector_recorded_failures_total",
                "Rounds of the collector's own series that were not stored, or whose new series a cap kept out, by writer and reason.",
                &["task", "reason"],
            ),
        }
    }

    pub fn stored(&self, task: &str, samples: usize) {
        self.samples
            .with_label_values(&[task])
            .inc_by(samples as u64);
    }

    pub fn failed(&self, task: &str, reason: &str) {
        self.failures.with_label_values(&[task, reason]).inc();
    }
}

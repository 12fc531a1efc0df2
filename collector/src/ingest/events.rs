//! Ingest's typed events: each `emit` logs once and bumps its counter in [`CollectorMetrics`].

use super::{IngestError, RemoteWriteError};
use crate::telemetry::CollectorMetrics;

/// An agent declared sequence numbers skipped: batches that will never arrive.
pub struct BatchesLost<'a> {
    pub node: &'a str,
    /// The batch that declared them.
    pub seq: u64,
    pub lost: u64,
}

impl BatchesLost<'_> {
    pub fn emit(&self, metrics: &CollectorMetrics) {
        metrics.lost_batches.inc_by(self.lost);
        tracing::warn!(
            node = self.node,
            seq = self.seq,
            lost = self.lost,
            "the agent skipped batches it no longer holds; they are lost"
        );
    }
}

/// An agent's batch or request was refused.
pub struct BatchRejected<'a> {
    pub node: &'a str,
    pub error: &'a IngestError,
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

/// A remote-write request was refused (in whole, or the new series a cap kept out).
pub struct RemoteWriteRejected<'a> {
    pub error: &'a RemoteWriteError,
}

impl RemoteWriteRejected<'_> {
    pub fn emit(&self, metrics: &CollectorMetrics) {
        let reason = self.error.reason();
        metrics.rejected_batches.with_label_values(&[reason]).inc();
        // Storage failures are logged where they are answered with a 500.
        if !self.error.retryable() {
            tracing::warn!(reason, error = %self.error, "remote write refused");
        }
    }
}

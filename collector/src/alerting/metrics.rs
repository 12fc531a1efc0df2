//! The alert engine's own metrics: alerts by state, how long a sample takes to be judged, store
//! failures and records set aside at start.

use super::lifecycle::StateKind;
use super::records::RecordKind;
use super::view::AlertsView;
use crate::telemetry::Registrar;
use prometheus::{Histogram, IntCounter, IntCounterVec, IntGaugeVec};

/// Metrics of the alert engine itself.
pub struct AlertMetrics {
    /// `{state}`: alerts known now.
    pub alerts: IntGaugeVec,
    pub evaluation_delay: Histogram,
    pub store_errors: IntCounter,
    /// `{record}`: stored values that could not be read at start, set aside (store.rs).
    pub quarantined: IntCounterVec,
}

impl AlertMetrics {
    /// Registers the metrics in `registry`; panics when they are registered twice.
    pub fn new(registry: &prometheus::Registry) -> Self {
        let r = Registrar(registry);
        let metrics = Self {
            alerts: r.gauge_vec(
                "hcmon_collector_alerts",
                "Alerts known to the collector, by state.",
                &["state"],
            ),
            evaluation_delay: r.histogram(
                "hcmon_collector_alert_evaluation_delay_seconds",
                "From a stored batch reaching the alert rules to its verdicts being visible in the API.",
                &[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ],
            ),
            store_errors: r.counter(
                "hcmon_collector_alert_store_errors_total",
                "Alerting state that could not be written to the store.",
            ),
            quarantined: r.counter_vec(
                "hcmon_collector_quarantined_records_total",
                "Stored alerting records that could not be read at start, moved aside under the q/ prefix of the alerts table (the rest loaded), by kind of record.",
                &["record"],
            ),
        };
        // Every kind shows from the start, so an increase is visible as one.
        for kind in RecordKind::ALL {
            metrics.quarantined.with_label_values(&[kind.name()]);
        }
        metrics
    }

    /// Counts the alerts of `view` by state.
    pub(super) fn count(&self, view: &AlertsView) {
        for state in StateKind::ALL {
            let n = view
                .alerts
                .iter()
                .filter(|a| a.record.lifecycle.state.kind() == state)
                .count();
            self.alerts.with_label_values(&[state.name()]).set(n as i64);
        }
    }
}

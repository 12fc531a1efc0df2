//! OTLP metrics ingest: an OpenTelemetry SDK's export request, translated to Prometheus series
//! (`hcmon_common::otlp`) and stored through remote write's path (`store_wire`), so the same
//! limits, caps, metadata and observers apply. The transports are `grpc_otlp.rs` (the gRPC
//! listener, OTLP's port 4317) and `http/otlp.rs` (`POST /v1/metrics`).
//!
//! OTLP's answer has no "stored some, refused the rest" error: points left out (untranslatable,
//! over a series cap, bad labels) are a partial success, which SDKs log and do not retry;
//! only a request refused whole, or a storage failure (retryable), is an error.

use super::IngestService;
use super::remote_write::{
    Declared, RemoteWriteError, RemoteWriteOutcome, WireRequest, WireSeries,
};
use crate::storage::FamilyType;
use hcmon_common::METRIC_NAME_LABEL;
use hcmon_common::otlp::{ExportMetricsServiceRequest, FamilyKind, Translation, translate};

/// Delta series the collector keeps running totals for; beyond, delta points are refused
/// (partial success) and cumulative ones still stored.
pub(super) const MAX_DELTA_SERIES: usize = 100_000;

/// What an export did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OtlpOutcome {
    /// Samples stored.
    pub stored: usize,
    /// Data points (or, past translation, samples) not stored.
    pub rejected: i64,
    /// Why, for OTLP's partial success; empty when nothing was left out.
    pub message: String,
}

fn family_type(kind: FamilyKind) -> FamilyType {
    match kind {
        FamilyKind::Counter => FamilyType::Counter,
        FamilyKind::Gauge => FamilyType::Gauge,
        FamilyKind::Histogram => FamilyType::Histogram,
        FamilyKind::Summary => FamilyType::Summary,
        FamilyKind::Info => FamilyType::Info,
    }
}

/// The translation in remote write's wire form, borrowing its strings.
fn wire(translation: &Translation) -> WireRequest<'_> {
    let mut request = WireRequest::default();
    for series in &translation.series {
        let labels = request.labels.len();
        request
            .labels
            .push((METRIC_NAME_LABEL.as_bytes(), series.name.as_bytes()));
        request.labels.extend(
            series
                .labels
                .iter()
                .map(|(n, v)| (n.as_bytes(), v.as_bytes())),
        );
        let samples = request.samples.len();
        request.samples.extend_from_slice(&series.samples);
        request.series.push(WireSeries {
            labels: labels..request.labels.len(),
            samples: samples..request.samples.len(),
            declared: None,
            histograms: 0,
        });
    }
    request.families = translation
        .families
        .iter()
        .map(|f| {
            (
                f.name.as_bytes(),
                Declared {
                    kind: family_type(f.kind),
                    help: f.help.as_bytes(),
                    unit: f.unit.as_bytes(),
                },
            )
        })
        .collect();
    request
}

impl IngestService {
    /// Translates and stores one OTLP export. Blocking: call from a blocking task.
    pub fn otlp(
        &self,
        request: &ExportMetricsServiceRequest,
    ) -> Result<OtlpOutcome, RemoteWriteError> {
        let now = (self.clock)();
        let translation = {
            let mut deltas = self.otlp_deltas.lock().unwrap_or_else(|p| p.into_inner());
            translate(request, &mut deltas, now)
        };
        let mut outcome = OtlpOutcome {
            rejected: translation.skipped_points() as i64,
            message: translation.skipped_message(),
            ..Default::default()
        };
        let mut note = |count: usize, why: &str| {
            if count == 0 {
                return;
            }
            outcome.rejected += count as i64;
            if !outcome.message.is_empty() {
                outcome.message.push_str("; ");
            }
            outcome.message.push_str(why);
        };
        match self.store_wire(wire(&translation)) {
            Ok(RemoteWriteOutcome {
                accepted,
                non_finite,
                out_of_range,
            }) => {
                outcome.stored = accepted;
                note(
                    non_finite,
                    &format!("{non_finite} NaN or infinite value(s) not stored"),
                );
                note(
                    out_of_range,
                    &format!("{out_of_range} sample(s) outside the accepted time range not stored"),
                );
            }
            Err(RemoteWriteError::SeriesSkipped(skipped)) => {
                note(skipped.samples.max(1), &skipped.to_string());
            }
            Err(RemoteWriteError::OverCap { refused, samples }) => {
                note(
                    samples.max(1),
                    &format!(
                        "{} new series not created ({samples} samples): {}",
                        refused.series, refused.cap
                    ),
                );
            }
            Err(other) => return Err(other),
        }
        Ok(outcome)
    }
}

//! The agent's OTLP receiver: applications on this node export metrics to the agent (OTLP/gRPC
//! on 127.0.0.1:4317, OTLP/HTTP `POST /v1/metrics` on 127.0.0.1:4318, protobuf or JSON), and
//! the agent answers success only once the translated series are in its spool. From there they
//! travel with the node's own batches: through collector outages, agent restarts and kill -9,
//! exactly once.
//!
//! Translation is the collector's (`hcmon_common::otlp`); the agent adds the cardinality budget
//! (`budget.rs`): points of series past an application's budget are left out and reported in
//! OTLP's `partial_success`, which SDKs log.

use super::Sink;
use super::budget::SeriesBudget;
use super::record::records;
use hcmon_common::otlp::{
    DeltaSums, ExportMetricsPartialSuccess, ExportMetricsServiceRequest,
    ExportMetricsServiceResponse, FamilyKind, Translation, translate,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Delta series the agent keeps running totals for.
const MAX_DELTA_SERIES: usize = 50_000;

/// Why an export was not taken: the spool could not store it (the application should retry).
#[derive(Debug, thiserror::Error)]
#[error("the agent cannot spool these metrics: {0}")]
pub struct SpoolFailed(String);

pub struct OtlpReceiver {
    sink: Sink,
    budget: Arc<Mutex<SeriesBudget>>,
    deltas: Mutex<DeltaSums>,
}

/// The job an application's series carry: OTLP's `service.name`.
fn app_of(labels: &[(String, String)]) -> &str {
    labels
        .iter()
        .find(|(n, _)| n == "job")
        .map_or("unknown_service", |(_, v)| v.as_str())
}

/// The series as the application sent it, for the budget: a histogram's or summary's parts
/// and buckets count once.
fn budget_key(name: &str, labels: &[(String, String)], parts: &HashMap<&str, ()>) -> String {
    let family = ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|suffix| {
            let family = name.strip_suffix(suffix)?;
            parts.contains_key(family).then_some(family)
        })
        .unwrap_or(name);
    let labels: Vec<String> = labels
        .iter()
        .filter(|(n, _)| n != "le" && n != "quantile")
        .map(|(n, v)| format!("{n}={v:?}"))
        .collect();
    format!("{family}{{{}}}", labels.join(","))
}

impl OtlpReceiver {
    pub fn new(sink: Sink, budget: Arc<Mutex<SeriesBudget>>) -> Self {
        Self {
            sink,
            budget,
            deltas: Mutex::new(DeltaSums::new(MAX_DELTA_SERIES)),
        }
    }

    /// Translates, budgets and spools one export; blocking (the spool fsyncs).
    pub fn accept(
        &self,
        request: &ExportMetricsServiceRequest,
    ) -> Result<ExportMetricsServiceResponse, SpoolFailed> {
        let now = crate::now_ms();
        let translation = {
            let mut deltas = self.deltas.lock().unwrap_or_else(|p| p.into_inner());
            translate(request, &mut deltas, now)
        };
        let mut rejected = translation.skipped_points() as i64;
        let mut message = translation.skipped_message();
        let Translation {
            families, series, ..
        } = translation;
        let parts: HashMap<&str, ()> = families
            .iter()
            .filter(|f| matches!(f.kind, FamilyKind::Histogram | FamilyKind::Summary))
            .map(|f| (f.name.as_str(), ()))
            .collect();
        let mut refused_series = 0usize;
        let mut kept = Vec::with_capacity(series.len());
        {
            let mut budget = self.budget.lock().unwrap_or_else(|p| p.into_inner());
            for s in series {
                let key = budget_key(&s.name, &s.labels, &parts);
                if budget.admit(app_of(&s.labels), &key, s.samples.len() as u64) {
                    kept.push(s);
                } else {
                    refused_series += 1;
                    rejected += s.samples.len() as i64;
                }
            }
            if refused_series > 0 {
                if !message.is_empty() {
                    message.push_str("; ");
                }
                message.push_str(&format!(
                    "{refused_series} series refused: the application is at this agent's budget of {} series per application ([apps] max_series_per_app)",
                    budget.max_per_app()
                ));
            }
        }
        let help: HashMap<&str, &str> = families
            .iter()
            .map(|f| (f.name.as_str(), f.help.as_str()))
            .collect();
        let help_of = |name: &str| {
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| help.contains_key(f)))
                .unwrap_or(name);
            help.get(family)
                .map_or_else(String::new, |h| (*h).to_owned())
        };
        for record in records(kept, help_of) {
            self.sink
                .write(&record)
                .map_err(|e| SpoolFailed(e.to_string()))?;
        }
        Ok(ExportMetricsServiceResponse {
            partial_success: (rejected > 0).then_some(ExportMetricsPartialSuccess {
                rejected_data_points: rejected,
                error_message: message,
            }),
        })
    }
}

//! Prometheus remote-write 1.0 ingest: snappy-compressed `WriteRequest`s from Prometheus,
//! vmagent, Grafana Alloy and others, stored through the same engine as agent batches.
//!
//! Series are looked up by their raw label bytes in a cache first, so a known series costs one
//! hash lookup and no allocation; only new series are parsed into [`Labels`] and created.

use super::IngestService;
use crate::catalog::{ResolveError, SeriesDefinition};
use crate::storage::{MetricKind, Sample, SeriesId, StoreError};
use hcmon_common::{LabelError, Labels, METRIC_NAME_LABEL};
use hcmon_proto::prometheus::WriteRequest;
use prost::Message;

/// Largest decompressed request accepted.
const MAX_DECOMPRESSED_BYTES: usize = 64 << 20;

/// Why a remote-write request was refused.
#[derive(Debug, thiserror::Error)]
pub enum RemoteWriteError {
    #[error(
        "body is not snappy-compressed protobuf (block format, as remote write 1.0 requires): {0}"
    )]
    Snappy(String),
    #[error("request decompresses to {0} bytes, over the limit of {MAX_DECOMPRESSED_BYTES}")]
    TooLarge(usize),
    #[error("body is not a remote-write WriteRequest: {0}")]
    Protobuf(String),
    #[error("series #{index} has no __name__ label")]
    MissingName { index: usize },
    #[error("series #{index} ({name}): {source}")]
    Labels {
        index: usize,
        name: String,
        source: LabelError,
    },
    #[error("request has {count} samples, over the limit of {max}")]
    TooManySamples { count: usize, max: usize },
    #[error(transparent)]
    KindConflict(ResolveError),
    #[error("storage failure")]
    Store(#[from] StoreError),
}

impl RemoteWriteError {
    /// Whether the sender should retry (the fault is ours) rather than drop the request.
    pub fn retryable(&self) -> bool {
        matches!(self, RemoteWriteError::Store(_))
    }
}

/// What a request did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RemoteWriteOutcome {
    pub accepted: usize,
    /// NaN/Inf (including Prometheus staleness markers): not stored.
    pub non_finite: usize,
    /// Outside the accepted time range or the out-of-order window.
    pub out_of_range: usize,
}

fn raw_key(key: &mut Vec<u8>, labels: &[hcmon_proto::prometheus::Label]) {
    key.clear();
    for l in labels {
        key.extend_from_slice(l.name.as_bytes());
        key.push(0);
        key.extend_from_slice(l.value.as_bytes());
        key.push(0);
    }
}

/// Prometheus conventions: `_total` names are counters; anything else is stored as a gauge.
fn kind_of(name: &str) -> MetricKind {
    if name.ends_with("_total") {
        MetricKind::Counter
    } else {
        MetricKind::Gauge
    }
}

impl IngestService {
    /// Decodes and stores one remote-write request. Blocking: call from a blocking task.
    pub fn remote_write(&self, body: &[u8]) -> Result<RemoteWriteOutcome, RemoteWriteError> {
        let len =
            snap::raw::decompress_len(body).map_err(|e| RemoteWriteError::Snappy(e.to_string()))?;
        if len > MAX_DECOMPRESSED_BYTES {
            return Err(RemoteWriteError::TooLarge(len));
        }
        let raw = snap::raw::Decoder::new()
            .decompress_vec(body)
            .map_err(|e| RemoteWriteError::Snappy(e.to_string()))?;
        let request = WriteRequest::decode(raw.as_slice())
            .map_err(|e| RemoteWriteError::Protobuf(e.to_string()))?;
        let count: usize = request.timeseries.iter().map(|t| t.samples.len()).sum();
        if count > self.limits.max_samples_per_batch {
            return Err(RemoteWriteError::TooManySamples {
                count,
                max: self.limits.max_samples_per_batch,
            });
        }

        let mut ids = vec![SeriesId(0); request.timeseries.len()];
        let mut missing = Vec::new();
        let mut key = Vec::with_capacity(256);
        {
            let cache = self
                .remote_write_cache
                .read()
                .unwrap_or_else(|p| p.into_inner());
            for (index, series) in request.timeseries.iter().enumerate() {
                raw_key(&mut key, &series.labels);
                match cache.get(key.as_slice()) {
                    Some(&id) => ids[index] = id,
                    None => missing.push(index),
                }
            }
        }
        if !missing.is_empty() {
            let mut defs = Vec::with_capacity(missing.len());
            for &index in &missing {
                let labels = &request.timeseries[index].labels;
                let name = labels
                    .iter()
                    .find(|l| l.name == METRIC_NAME_LABEL)
                    .map(|l| l.value.as_str())
                    .ok_or(RemoteWriteError::MissingName { index })?;
                // An empty value means "no such label" in Prometheus' model.
                let others = labels
                    .iter()
                    .filter(|l| l.name != METRIC_NAME_LABEL && !l.value.is_empty())
                    .map(|l| (l.name.clone(), l.value.clone()));
                let labels =
                    Labels::new(name, others).map_err(|source| RemoteWriteError::Labels {
                        index,
                        name: name.to_owned(),
                        source,
                    })?;
                defs.push(SeriesDefinition {
                    labels,
                    kind: kind_of(name),
                    help: String::new(),
                });
            }
            let resolved = self
                .catalog
                .resolve(&self.tsdb, &defs)
                .map_err(|e| match e {
                    ResolveError::Store(e) => RemoteWriteError::Store(e),
                    other => RemoteWriteError::KindConflict(other),
                })?;
            let mut cache = self
                .remote_write_cache
                .write()
                .unwrap_or_else(|p| p.into_inner());
            for (&index, id) in missing.iter().zip(resolved) {
                ids[index] = id;
                raw_key(&mut key, &request.timeseries[index].labels);
                cache.insert(key.clone(), id);
            }
            self.metrics.series.set(self.catalog.len() as i64);
        }

        let now = (self.clock)();
        let earliest = now - self.limits.max_sample_age.as_millis() as i64;
        let latest = now + self.limits.max_future_skew.as_millis() as i64;
        let mut outcome = RemoteWriteOutcome::default();
        let mut samples = Vec::with_capacity(count);
        for (series, &id) in request.timeseries.iter().zip(&ids) {
            for s in &series.samples {
                if !s.value.is_finite() {
                    outcome.non_finite += 1;
                } else if s.timestamp < earliest || s.timestamp > latest {
                    outcome.out_of_range += 1;
                } else {
                    samples.push(Sample {
                        series: id,
                        timestamp_ms: s.timestamp,
                        value: s.value,
                    });
                }
            }
        }
        let appended = self.tsdb.append(None, &samples)?;
        outcome.accepted = appended.accepted;
        outcome.out_of_range += appended.too_old;
        self.metrics
            .ingested_samples
            .inc_by(appended.accepted as u64);
        self.metrics
            .samples_too_old
            .inc_by(outcome.out_of_range as u64);
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::SeriesCatalog;
    use crate::config::IngestLimits;
    use crate::storage::{MemoryKv, StorageConfig, Tsdb};
    use crate::telemetry::CollectorMetrics;
    use hcmon_common::Selector;
    use hcmon_proto::prometheus::{Label, Sample as WireSample, TimeSeries};
    use std::sync::Arc;

    const NOW: i64 = 1_700_000_000_000;

    fn service() -> Arc<IngestService> {
        let recovered =
            Tsdb::open(Box::new(MemoryKv::default()), StorageConfig::default()).unwrap();
        IngestService::new(
            Arc::new(recovered.tsdb),
            Arc::new(SeriesCatalog::new(recovered.series)),
            recovered.nodes,
            Arc::new(CollectorMetrics::new()),
            IngestLimits::default(),
            String::new(),
            Arc::new(|| NOW),
        )
    }

    fn series(name: &str, instance: &str, samples: &[(i64, f64)]) -> TimeSeries {
        let label = |n: &str, v: &str| Label {
            name: n.into(),
            value: v.into(),
        };
        TimeSeries {
            labels: vec![
                label("__name__", name),
                label("instance", instance),
                label("job", ""),
            ],
            samples: samples
                .iter()
                .map(|&(timestamp, value)| WireSample { value, timestamp })
                .collect(),
        }
    }

    fn body(timeseries: Vec<TimeSeries>) -> Vec<u8> {
        let raw = WriteRequest { timeseries }.encode_to_vec();
        snap::raw::Encoder::new().compress_vec(&raw).unwrap()
    }

    #[test]
    fn stores_series_and_counts_what_it_cannot() {
        let svc = service();
        let req = body(vec![
            series("up", "a:9100", &[(NOW - 1000, 1.0), (NOW, f64::NAN)]),
            series(
                "requests_total",
                "a:9100",
                &[(NOW, 5.0), (NOW + 86_400_000, 6.0)],
            ),
        ]);
        let outcome = svc.remote_write(&req).unwrap();
        assert_eq!(
            outcome,
            RemoteWriteOutcome {
                accepted: 2,
                non_finite: 1,
                out_of_range: 1
            }
        );
        svc.remote_write(&body(vec![series("up", "a:9100", &[(NOW, 0.0)])]))
            .unwrap();
        let up = svc
            .catalog
            .select(&Selector::parse(r#"up{instance="a:9100"}"#).unwrap());
        assert_eq!(up.len(), 1);
        assert_eq!(
            up[0].labels.get("job"),
            None,
            "empty label values are absent labels"
        );
        assert_eq!(
            svc.tsdb.read_raw(up[0].id, 0, NOW).unwrap(),
            vec![(NOW - 1000, 1.0), (NOW, 0.0)]
        );
        let total = svc
            .catalog
            .select(&Selector::parse("requests_total").unwrap());
        assert_eq!(total[0].kind, MetricKind::Counter);
    }

    #[test]
    fn refuses_garbage_with_a_reason() {
        let svc = service();
        let err = svc.remote_write(b"not snappy at all").unwrap_err();
        assert!(err.to_string().contains("snappy"), "{err}");
        let not_proto = snap::raw::Encoder::new()
            .compress_vec(b"\xff\xff\xff")
            .unwrap();
        assert!(
            svc.remote_write(&not_proto)
                .unwrap_err()
                .to_string()
                .contains("WriteRequest")
        );
        let nameless = body(vec![TimeSeries {
            labels: vec![Label {
                name: "job".into(),
                value: "x".into(),
            }],
            samples: vec![WireSample {
                value: 1.0,
                timestamp: NOW,
            }],
        }]);
        assert!(matches!(
            svc.remote_write(&nameless),
            Err(RemoteWriteError::MissingName { index: 0 })
        ));
        let bad = body(vec![series("bad-name", "a", &[(NOW, 1.0)])]);
        assert!(
            svc.remote_write(&bad)
                .unwrap_err()
                .to_string()
                .contains("bad-name")
        );
    }
}

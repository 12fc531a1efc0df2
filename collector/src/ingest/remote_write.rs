//! Prometheus remote-write 1.0 ingest: snappy-compressed `WriteRequest`s from Prometheus,
//! vmagent, Grafana Alloy and others, stored through the same engine as agent batches.
//!
//! The request is read in place (`WireRequest`): labels stay slices of the decompressed body,
//! so a known series costs one hash lookup of its raw label bytes and no allocation; only new
//! series are turned into [`Labels`] and created. (prost would allocate two strings per label,
//! which for one-sample series cost more than everything else.)
//!
//! A series with nothing to store (no samples, or only NaN and out-of-range ones) is not created.
//! New series meet the agents' limits (`limits.rs`) or the request is refused whole, before
//! anything is created; the series caps, which depend on what others created, and the names
//! reserved for the collector's own metrics keep out only the series concerned: the rest of the
//! request is stored and the answer (400) says what was not.

use super::IngestService;
use super::events::RemoteWriteRejected;
use super::limits::{OverLimit, check_help, check_metric_name, check_series, check_unit, excerpt};
use crate::catalog::{CapRefusal, ResolveError, SeriesDefinition};
use crate::storage::{MetricKind, Sample, SeriesId, StoreError};
use hcmon_common::{LabelError, Labels, METRIC_NAME_LABEL};
use std::ops::Range;

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
    #[error("series #{index}: {source}")]
    Reserved {
        index: usize,
        source: crate::telemetry::ReservedName,
    },
    /// Returned after the rest of the request was stored: a Prometheus forwarding its
    /// targets' `process_*` series loses nothing else, and is told what to drop.
    #[error(
        "{series} series ({samples} samples) were not stored, first {source}; the request's other samples were stored. Drop or rename them in the sender (e.g. write_relabel_configs)"
    )]
    ReservedSkipped {
        series: usize,
        samples: usize,
        source: crate::telemetry::ReservedName,
    },
    /// `name` is a bounded excerpt of the metric name.
    #[error("series #{index} ({name}) {source}")]
    SeriesOverLimit {
        index: usize,
        name: String,
        source: OverLimit,
    },
    /// `family` is a bounded excerpt of the metric family name.
    #[error("metadata #{index} ({family}) {source}")]
    MetadataOverLimit {
        index: usize,
        family: String,
        source: OverLimit,
    },
    #[error("request has {count} samples, over the limit of {max}")]
    TooManySamples { count: usize, max: usize },
    #[error(transparent)]
    KindConflict(ResolveError),
    /// Returned after the rest of the request was stored.
    #[error(
        "{} new series were not created and their {samples} samples not stored: {}; the request's other samples were stored",
        refused.series,
        refused.cap
    )]
    OverCap { refused: CapRefusal, samples: usize },
    #[error("storage failure")]
    Store(#[from] StoreError),
}

impl RemoteWriteError {
    /// Whether the sender should retry (the fault is ours) rather than drop the request.
    pub fn retryable(&self) -> bool {
        matches!(self, RemoteWriteError::Store(_))
    }

    /// A short, bounded label for the rejected-batches metric (the reasons agents' batches use).
    pub fn reason(&self) -> &'static str {
        use RemoteWriteError::*;
        match self {
            Snappy(_) | Protobuf(_) => "malformed",
            TooLarge(_) => "over_decode_limit",
            MissingName { .. } | Labels { .. } => "invalid_series",
            Reserved { .. } | ReservedSkipped { .. } => "reserved_name",
            SeriesOverLimit { source, .. } | MetadataOverLimit { source, .. } => source.reason(),
            TooManySamples { .. } => "too_many_samples",
            KindConflict(_) => "kind_conflict",
            OverCap { refused, .. } => refused.cap.reason(),
            Store(_) => "storage_failure",
        }
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

/// A `WriteRequest` read in place: label names and values borrow from the body.
#[derive(Default)]
struct WireRequest<'a> {
    /// Per series: its range in `labels` and in `samples`.
    series: Vec<(Range<usize>, Range<usize>)>,
    labels: Vec<(&'a [u8], &'a [u8])>,
    /// (timestamp ms, value)
    samples: Vec<(i64, f64)>,
    /// Metric metadata, only checked against the limits: help texts are not stored from
    /// remote write (Prometheus sends them apart from the samples, once a minute).
    metadata: Vec<Metadata<'a>>,
}

#[derive(Default)]
struct Metadata<'a> {
    family: &'a [u8],
    help: &'a [u8],
    unit: &'a [u8],
}

fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, &'static str> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or("truncated varint")?;
        *pos += 1;
        out |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(out);
        }
    }
    Err("varint too long")
}

/// One field of a protobuf message: number, wire type, and its bytes (a varint's or fixed
/// value's own bytes; a length-delimited field's content).
type Field<'a> = (u64, u8, &'a [u8]);

/// Reads the next field at `pos`.
fn next_field<'a>(buf: &'a [u8], pos: &mut usize) -> Result<Field<'a>, &'static str> {
    let key = varint(buf, pos)?;
    let (number, wire) = (key >> 3, (key & 7) as u8);
    let start = *pos;
    let end = match wire {
        0 => {
            varint(buf, pos)?;
            *pos
        }
        1 => start + 8,
        2 => {
            let len = usize::try_from(varint(buf, pos)?).map_err(|_| "length overflow")?;
            let content = *pos;
            *pos = content.checked_add(len).ok_or("length overflow")?;
            return Ok((
                number,
                wire,
                buf.get(content..*pos).ok_or("truncated field")?,
            ));
        }
        5 => start + 4,
        _ => return Err("unsupported wire type"),
    };
    *pos = end;
    Ok((number, wire, buf.get(start..end).ok_or("truncated field")?))
}

/// Calls `visit` for each field of a message.
fn for_each_field<'a>(
    buf: &'a [u8],
    mut visit: impl FnMut(Field<'a>) -> Result<(), &'static str>,
) -> Result<(), &'static str> {
    let mut pos = 0;
    while pos < buf.len() {
        visit(next_field(buf, &mut pos)?)?;
    }
    Ok(())
}

impl<'a> WireRequest<'a> {
    /// Reads `WriteRequest { repeated TimeSeries timeseries = 1; }`, where `TimeSeries` is
    /// `{ repeated Label labels = 1; repeated Sample samples = 2; }`, `Label` is
    /// `{ string name = 1; string value = 2; }` and `Sample` is
    /// `{ double value = 1; int64 timestamp = 2; }`; and `repeated MetricMetadata metadata = 3`,
    /// `{ string metric_family_name = 2; string help = 4; string unit = 5; }`. Other fields
    /// (exemplars, histograms, the metadata's type) are skipped.
    fn parse(buf: &'a [u8]) -> Result<Self, &'static str> {
        let mut out = WireRequest::default();
        for_each_field(buf, |(number, wire, series)| {
            if number == 3 && wire == 2 {
                let mut metadata = Metadata::default();
                for_each_field(series, |part| {
                    match part {
                        (2, 2, bytes) => metadata.family = bytes,
                        (4, 2, bytes) => metadata.help = bytes,
                        (5, 2, bytes) => metadata.unit = bytes,
                        _ => {}
                    }
                    Ok(())
                })?;
                out.metadata.push(metadata);
                return Ok(());
            }
            if number != 1 || wire != 2 {
                return Ok(());
            }
            let (label_start, sample_start) = (out.labels.len(), out.samples.len());
            for_each_field(series, |field| {
                match field {
                    (1, 2, label) => {
                        let (mut name, mut value): (&[u8], &[u8]) = (&[], &[]);
                        for_each_field(label, |part| {
                            match part {
                                (1, 2, bytes) => name = bytes,
                                (2, 2, bytes) => value = bytes,
                                _ => {}
                            }
                            Ok(())
                        })?;
                        out.labels.push((name, value));
                    }
                    (2, 2, sample) => {
                        let (mut value, mut timestamp) = (0.0, 0i64);
                        for_each_field(sample, |part| {
                            match part {
                                (1, 1, bytes) => {
                                    value = f64::from_le_bytes(
                                        bytes.try_into().map_err(|_| "bad double")?,
                                    )
                                }
                                (2, 0, bytes) => timestamp = varint(bytes, &mut 0)? as i64,
                                _ => {}
                            }
                            Ok(())
                        })?;
                        out.samples.push((timestamp, value));
                    }
                    _ => {}
                }
                Ok(())
            })?;
            out.series.push((
                label_start..out.labels.len(),
                sample_start..out.samples.len(),
            ));
            Ok(())
        })?;
        Ok(out)
    }
}

fn raw_key(key: &mut Vec<u8>, labels: &[(&[u8], &[u8])]) {
    key.clear();
    for (name, value) in labels {
        key.extend_from_slice(name);
        key.push(0);
        key.extend_from_slice(value);
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

fn text(bytes: &[u8]) -> Result<String, RemoteWriteError> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| RemoteWriteError::Protobuf("a label is not UTF-8".into()))
}

impl IngestService {
    /// Decodes and stores one remote-write request; a refusal is counted and logged. Blocking:
    /// call from a blocking task.
    pub fn remote_write(&self, body: &[u8]) -> Result<RemoteWriteOutcome, RemoteWriteError> {
        self.store_remote_write(body)
            .inspect_err(|error| RemoteWriteRejected { error }.emit(&self.metrics))
    }

    fn store_remote_write(&self, body: &[u8]) -> Result<RemoteWriteOutcome, RemoteWriteError> {
        let len =
            snap::raw::decompress_len(body).map_err(|e| RemoteWriteError::Snappy(e.to_string()))?;
        if len > MAX_DECOMPRESSED_BYTES {
            return Err(RemoteWriteError::TooLarge(len));
        }
        let raw = snap::raw::Decoder::new()
            .decompress_vec(body)
            .map_err(|e| RemoteWriteError::Snappy(e.to_string()))?;
        let request =
            WireRequest::parse(&raw).map_err(|e| RemoteWriteError::Protobuf(e.to_owned()))?;
        let count = request.samples.len();
        if count > self.limits.max_samples_per_batch {
            return Err(RemoteWriteError::TooManySamples {
                count,
                max: self.limits.max_samples_per_batch,
            });
        }
        for (index, metadata) in request.metadata.iter().enumerate() {
            check_metric_name(&self.limits, metadata.family)
                .and_then(|()| check_help(&self.limits, metadata.help))
                .and_then(|()| check_unit(&self.limits, metadata.unit))
                .map_err(|source| RemoteWriteError::MetadataOverLimit {
                    index,
                    family: excerpt(metadata.family),
                    source,
                })?;
        }

        let now = (self.clock)();
        let earliest = now - self.limits.max_sample_age.as_millis() as i64;
        let latest = now + self.limits.max_future_skew.as_millis() as i64;
        let storable = |&(timestamp, value): &(i64, f64)| {
            value.is_finite() && (earliest..=latest).contains(&timestamp)
        };
        // Per series, its id; none for a series with nothing to store (only NaN, staleness
        // markers or samples out of range: it is not created) or one a cap kept out.
        let mut ids: Vec<Option<SeriesId>> = vec![None; request.series.len()];
        let mut missing = Vec::new();
        let mut key = Vec::with_capacity(256);
        {
            let cache = self
                .remote_write_cache
                .read()
                .unwrap_or_else(|p| p.into_inner());
            for (index, (labels, samples)) in request.series.iter().enumerate() {
                if !request.samples[samples.clone()].iter().any(storable) {
                    continue;
                }
                raw_key(&mut key, &request.labels[labels.clone()]);
                match cache.get(key.as_slice()) {
                    Some(&id) => ids[index] = Some(id),
                    None => missing.push(index),
                }
            }
        }
        let mut refused = None;
        let mut reserved = vec![false; request.series.len()];
        let mut first_reserved = None;
        if !missing.is_empty() {
            // Every new series is checked before any is created: a request refused for a
            // limit creates nothing.
            // Series under a reserved name are set aside, the request's others go on.
            let mut defs = Vec::with_capacity(missing.len());
            let mut defined = Vec::with_capacity(missing.len());
            for &index in &missing {
                match self.definition(&request, index) {
                    Ok(def) => {
                        defs.push(def);
                        defined.push(index);
                    }
                    Err(RemoteWriteError::Reserved { source, .. }) => {
                        reserved[index] = true;
                        first_reserved.get_or_insert(source);
                    }
                    Err(other) => return Err(other),
                }
            }
            let resolved = self
                .catalog
                .resolve_within_caps(&self.tsdb, &defs, self.series_caps())
                .map_err(|e| match e {
                    ResolveError::Store(e) => RemoteWriteError::Store(e),
                    other => RemoteWriteError::KindConflict(other),
                })?;
            refused = resolved.refused;
            let mut cache = self
                .remote_write_cache
                .write()
                .unwrap_or_else(|p| p.into_inner());
            for (&index, id) in defined.iter().zip(resolved.ids) {
                if let Some(id) = id {
                    ids[index] = Some(id);
                    // Under the cache's lock, a series a forgetting just deleted is not
                    // remembered (see `IngestService::forget_series`).
                    if self.catalog.get(id).is_some() {
                        raw_key(&mut key, &request.labels[request.series[index].0.clone()]);
                        cache.insert(key.clone(), id);
                    }
                }
            }
            self.metrics.series.set(self.catalog.len() as i64);
        }

        let mut outcome = RemoteWriteOutcome::default();
        let (mut over_cap, mut reserved_samples) = (0, 0);
        let mut samples = Vec::with_capacity(count);
        for (index, ((_, range), id)) in request.series.iter().zip(&ids).enumerate() {
            for &(timestamp, value) in &request.samples[range.clone()] {
                if !value.is_finite() {
                    outcome.non_finite += 1;
                } else if !storable(&(timestamp, value)) {
                    outcome.out_of_range += 1;
                } else if let Some(series) = *id {
                    samples.push(Sample {
                        series,
                        timestamp_ms: timestamp,
                        value,
                    });
                } else if reserved[index] {
                    reserved_samples += 1;
                } else {
                    over_cap += 1;
                }
            }
        }
        let appended = self.tsdb.append(None, &samples)?;
        self.observers.stored(None, samples);
        outcome.accepted = appended.accepted;
        outcome.out_of_range += appended.too_old;
        self.metrics
            .ingested_samples
            .inc_by(appended.accepted as u64);
        self.metrics
            .samples_too_old
            .inc_by(outcome.out_of_range as u64);
        if let Some(source) = first_reserved {
            return Err(RemoteWriteError::ReservedSkipped {
                series: reserved.iter().filter(|r| **r).count(),
                samples: reserved_samples,
                source,
            });
        }
        match refused {
            Some(refused) => Err(RemoteWriteError::OverCap {
                refused,
                samples: over_cap,
            }),
            None => Ok(outcome),
        }
    }

    /// The definition of request series `index`, checked against the limits.
    fn definition(
        &self,
        request: &WireRequest<'_>,
        index: usize,
    ) -> Result<SeriesDefinition, RemoteWriteError> {
        let name_label = METRIC_NAME_LABEL.as_bytes();
        let labels = &request.labels[request.series[index].0.clone()];
        let name = labels
            .iter()
            .find(|(n, _)| *n == name_label)
            .map(|(_, v)| *v)
            .ok_or(RemoteWriteError::MissingName { index })?;
        // An empty value means "no such label" in Prometheus' model.
        let others: Vec<(&[u8], &[u8])> = labels
            .iter()
            .filter(|(n, v)| *n != name_label && !v.is_empty())
            .copied()
            .collect();
        // +1: the metric name is a label too.
        check_series(&self.limits, name, others.iter().copied(), 1, b"").map_err(|source| {
            RemoteWriteError::SeriesOverLimit {
                index,
                name: excerpt(name),
                source,
            }
        })?;
        let name = text(name)?;
        crate::telemetry::check_metric_name(&name)
            .map_err(|source| RemoteWriteError::Reserved { index, source })?;
        let others = others
            .into_iter()
            .map(|(n, v)| Ok((text(n)?, text(v)?)))
            .collect::<Result<Vec<_>, RemoteWriteError>>()?;
        let labels = Labels::new(&name, others).map_err(|source| RemoteWriteError::Labels {
            index,
            name: name.clone(),
            source,
        })?;
        Ok(SeriesDefinition {
            labels,
            kind: kind_of(&name),
            help: String::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::SeriesCatalog;
    use crate::ingest::Admission;
    use crate::storage::{MemoryKv, StorageConfig, Tsdb};
    use crate::telemetry::CollectorMetrics;
    use hcmon_common::Selector;
    use hcmon_proto::prometheus::{Label, Sample as WireSample, TimeSeries, WriteRequest};
    use prost::Message;
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
            Admission::default(),
            Arc::new(|| NOW),
            Default::default(),
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
    fn the_in_place_reader_sees_what_prost_wrote() {
        let request = WriteRequest {
            timeseries: vec![
                series(
                    "ünïcode_is_not_a_valid_name",
                    "h:1",
                    &[(-5, -0.5), (7, 1e300)],
                ),
                series("empty", "", &[]),
                series("m", "x", &[(i64::MAX, f64::MIN_POSITIVE)]),
            ],
        };
        let bytes = request.encode_to_vec();
        let wire = WireRequest::parse(&bytes).unwrap();
        assert_eq!(wire.series.len(), 3);
        for (ts, (labels, samples)) in request.timeseries.iter().zip(&wire.series) {
            let got: Vec<(String, String)> = wire.labels[labels.clone()]
                .iter()
                .map(|(n, v)| (text(n).unwrap(), text(v).unwrap()))
                .collect();
            let want: Vec<(String, String)> = ts
                .labels
                .iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect();
            assert_eq!(got, want);
            let want: Vec<(i64, f64)> = ts.samples.iter().map(|s| (s.timestamp, s.value)).collect();
            assert_eq!(wire.samples[samples.clone()].to_vec(), want);
        }
        for cut in [1, bytes.len() / 2, bytes.len() - 1] {
            assert!(
                WireRequest::parse(&bytes[..cut]).is_err(),
                "truncated at {cut}"
            );
        }
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

    #[test]
    fn series_with_nothing_to_store_are_not_created() {
        let svc = service();
        let mut timeseries: Vec<TimeSeries> = (0..20_000)
            .map(|i| series("empty", &format!("h{i}"), &[]))
            .collect();
        timeseries.push(series("stale", "a", &[(NOW, f64::NAN)]));
        timeseries.push(series("ancient", "a", &[(0, 1.0)]));
        timeseries.push(series("up", "a", &[(NOW, 1.0)]));
        let outcome = svc.remote_write(&body(timeseries)).unwrap();
        assert_eq!(
            outcome,
            RemoteWriteOutcome {
                accepted: 1,
                non_finite: 1,
                out_of_range: 1
            }
        );
        let created: Vec<String> = svc
            .catalog
            .all()
            .iter()
            .map(|m| m.labels.to_string())
            .collect();
        assert_eq!(created, vec![r#"up{instance="a"}"#]);
    }

    /// Appends a `WriteRequest.metadata` entry (field 3), which the proto the tests encode
    /// with leaves out.
    fn with_metadata(mut raw: Vec<u8>, family: &str, help: &str, unit: &str) -> Vec<u8> {
        let mut metadata = Vec::new();
        for (tag, text) in [(2, family), (4, help), (5, unit)] {
            prost::encoding::string::encode(tag, &text.to_owned(), &mut metadata);
        }
        prost::encoding::bytes::encode(3, &metadata, &mut raw);
        raw
    }

    fn compress(raw: &[u8]) -> Vec<u8> {
        snap::raw::Encoder::new().compress_vec(raw).unwrap()
    }

    #[test]
    fn each_series_and_metadata_limit_refuses_the_request_naming_its_key() {
        let long = |n: usize| "x".repeat(n);
        let labelled = |name: &str, labels: Vec<(String, String)>| {
            let timeseries = vec![TimeSeries {
                labels: [("__name__".to_owned(), name.to_owned())]
                    .into_iter()
                    .chain(labels)
                    .map(|(name, value)| Label { name, value })
                    .collect(),
                samples: vec![WireSample {
                    value: 1.0,
                    timestamp: NOW,
                }],
            }];
            WriteRequest { timeseries }.encode_to_vec()
        };
        let many = |n: usize, name_len: usize, value_len: usize| -> Vec<(String, String)> {
            (0..n)
                .map(|i| (format!("l{i:0w$}", w = name_len - 1), long(value_len)))
                .collect()
        };
        let plain = labelled("up", vec![]);
        let cases = [
            (
                "33 labels",
                labelled("m", many(32, 3, 1)),
                "`limits.max_labels_per_series`",
                "too_many_labels",
            ),
            (
                "a 129-byte label name",
                labelled("m", many(1, 129, 1)),
                "`limits.max_label_name_len`",
                "label_name_too_long",
            ),
            (
                "a 1025-byte label value",
                labelled("m", many(1, 3, 1025)),
                "`limits.max_label_value_len`",
                "label_value_too_long",
            ),
            (
                "a 257-byte metric name",
                labelled(&long(257), vec![]),
                "`limits.max_metric_name_len`",
                "metric_name_too_long",
            ),
            (
                "a 257-byte metadata family name",
                with_metadata(plain.clone(), &long(257), "", ""),
                "`limits.max_metric_name_len`",
                "metric_name_too_long",
            ),
            (
                "a 1025-byte help text",
                with_metadata(plain.clone(), "up", &long(1025), ""),
                "`limits.max_help_len`",
                "help_too_long",
            ),
            (
                "a 257-byte unit",
                with_metadata(plain.clone(), "up", "", &long(257)),
                "`limits.max_metric_name_len`",
                "metric_name_too_long",
            ),
        ];
        for (what, raw, key, reason) in cases {
            let svc = service();
            let err = svc.remote_write(&compress(&raw)).expect_err(what);
            assert!(!err.retryable(), "{what}: the sender must not retry");
            assert!(err.to_string().contains(key), "{what}: {err}");
            assert!(err.to_string().len() < 300, "{what}: {err}");
            assert_eq!(svc.catalog.len(), 0, "{what}: nothing is created");
            let counted = svc.metrics.rejected_batches.with_label_values(&[reason]);
            assert_eq!(counted.get(), 1, "{what}: counted as {reason}");
        }

        // Exactly at every limit, the request is stored.
        let svc = service();
        let at_limits = with_metadata(
            labelled(&long(256), many(31, 128, 1024)),
            &long(256),
            &long(1024),
            &long(256),
        );
        assert_eq!(svc.remote_write(&compress(&at_limits)).unwrap().accepted, 1);
    }
}

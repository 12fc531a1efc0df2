//! Prometheus remote-write ingest, 1.0 and 2.0: snappy-compressed requests from Prometheus,
//! vmagent, Grafana Alloy and others, stored through the same engine as agent batches.
//!
//! - **Metadata.** Types, help and units the sender declares (1.0's metadata list, 2.0's
//!   per-series metadata) are recorded per family (`Tsdb::declare_families`), and a new
//!   series takes its kind (counter or gauge) and help from its family's declaration; only a
//!   family declared by nobody is guessed from its name (`_total` is a counter).
//! - **Staleness markers** are stored for series that exist, so PromQL stops showing a series
//!   at once when its target goes away; a series with nothing else to store is not created.
//! - **One bad series is refused alone.** A series without a name, with bad labels, over a
//!   label limit, under a reserved name or carrying only native histograms is left out; the
//!   rest of the request is stored and the answer (400, not retried) names the series left out
//!   and why. The series caps, which depend on what others created, keep out only the new
//!   series concerned, the same way. Refusals of the whole request are for what cannot be read
//!   or is over a request limit (samples per request, metadata over a length limit).

pub(super) mod known;
pub(super) mod wire;

use super::IngestService;
use super::events::RemoteWriteRejected;
use super::limits::{OverLimit, check_help, check_metric_name, check_series, check_unit, excerpt};
use crate::catalog::{CapRefusal, ResolveError, SeriesDefinition};
use crate::storage::{
    FamilyMeta, FamilyType, MetricKind, Sample, SeriesId, StoreError, is_stale_marker,
};
use hcmon_common::{LabelError, Labels, METRIC_NAME_LABEL};
use known::LabelsDigest;
use std::fmt;
pub use wire::Protocol;
pub(super) use wire::{Declared, WireRequest, WireSeries};

/// Largest decompressed request accepted.
const MAX_DECOMPRESSED_BYTES: usize = 64 << 20;

/// How many of the series left out a refusal names.
const NAMED_REFUSALS: usize = 3;

/// Why one series of a request was left out. Each names the series by its index in the
/// request and, where it has one, a bounded excerpt of its metric name.
#[derive(Debug, thiserror::Error)]
pub enum SeriesRefusal {
    #[error("series #{index} has no __name__ label")]
    MissingName { index: usize },
    #[error("series #{index} ({name}): {source}")]
    Labels {
        index: usize,
        name: String,
        source: LabelError,
    },
    /// The reserved name's own message names the metric.
    #[error("{source}")]
    Reserved {
        index: usize,
        source: crate::telemetry::ReservedName,
    },
    #[error("series #{index} ({name}) {source}")]
    OverLimit {
        index: usize,
        name: String,
        source: OverLimit,
    },
    #[error(
        "series #{index} ({name}) carries native histogram samples, which hcmon does not store: send classic histograms (`_bucket` series) instead"
    )]
    NativeHistogram { index: usize, name: String },
}

impl SeriesRefusal {
    fn reason(&self) -> &'static str {
        match self {
            SeriesRefusal::MissingName { .. } | SeriesRefusal::Labels { .. } => "invalid_series",
            SeriesRefusal::Reserved { .. } => "reserved_name",
            SeriesRefusal::OverLimit { source, .. } => source.reason(),
            SeriesRefusal::NativeHistogram { .. } => "native_histogram",
        }
    }
}

/// The series a request left out: how many, their samples, and the first few.
#[derive(Debug)]
pub struct SkippedSeries {
    pub series: usize,
    pub samples: usize,
    pub named: Vec<SeriesRefusal>,
}

impl fmt::Display for SkippedSeries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} series ({} samples) were not stored",
            self.series, self.samples
        )?;
        for (i, refusal) in self.named.iter().enumerate() {
            write!(
                f,
                "{}{refusal}",
                if i == 0 { ", first " } else { "; then " }
            )?;
        }
        if self.series > self.named.len() {
            write!(f, "; and {} more", self.series - self.named.len())?;
        }
        Ok(())
    }
}

/// Why a remote-write request was refused, in whole or in part.
#[derive(Debug, thiserror::Error)]
pub enum RemoteWriteError {
    #[error("body is not snappy-compressed protobuf (block format, as remote write requires): {0}")]
    Snappy(String),
    #[error("request decompresses to {0} bytes, over the limit of {MAX_DECOMPRESSED_BYTES}")]
    TooLarge(usize),
    #[error("body is not a remote-write {protocol}: {detail}")]
    Protobuf {
        protocol: &'static str,
        detail: String,
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
        "{0}; the request's other samples were stored. Drop or fix them in the sender (e.g. write_relabel_configs)"
    )]
    SeriesSkipped(SkippedSeries),
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
            Snappy(_) | Protobuf { .. } => "malformed",
            TooLarge(_) => "over_decode_limit",
            MetadataOverLimit { source, .. } => source.reason(),
            SeriesSkipped(skipped) => skipped
                .named
                .first()
                .map_or("invalid_series", SeriesRefusal::reason),
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
    /// Samples stored, staleness markers included.
    pub accepted: usize,
    /// NaN/Inf other than staleness markers, and markers of series that do not exist: not
    /// stored.
    pub non_finite: usize,
    /// Outside the accepted time range or the out-of-order window.
    pub out_of_range: usize,
}

/// The family a series belongs to, by Prometheus' naming: a histogram's `_bucket`, `_sum` and
/// `_count` series and a summary's `_sum` and `_count` belong to the family without the suffix.
fn family_of(series: &str, kind: FamilyType) -> &str {
    kind.part_suffixes()
        .iter()
        .find_map(|s| series.strip_suffix(s))
        .unwrap_or(series)
}

fn text(bytes: &[u8]) -> Result<String, LabelError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| LabelError::NotUtf8)
}

impl IngestService {
    /// Decodes and stores one remote-write request; a refusal is counted and logged. Blocking:
    /// call from a blocking task.
    pub fn remote_write(
        &self,
        protocol: Protocol,
        body: &[u8],
    ) -> Result<RemoteWriteOutcome, RemoteWriteError> {
        self.store_remote_write(protocol, body)
            .inspect_err(|error| RemoteWriteRejected { error }.emit(&self.metrics))
    }

    fn store_remote_write(
        &self,
        protocol: Protocol,
        body: &[u8],
    ) -> Result<RemoteWriteOutcome, RemoteWriteError> {
        let len =
            snap::raw::decompress_len(body).map_err(|e| RemoteWriteError::Snappy(e.to_string()))?;
        if len > MAX_DECOMPRESSED_BYTES {
            return Err(RemoteWriteError::TooLarge(len));
        }
        let raw = snap::raw::Decoder::new()
            .decompress_vec(body)
            .map_err(|e| RemoteWriteError::Snappy(e.to_string()))?;
        let request =
            WireRequest::parse(protocol, &raw).map_err(|e| RemoteWriteError::Protobuf {
                protocol: match protocol {
                    Protocol::V1 => "1.0 WriteRequest",
                    Protocol::V2 => "2.0 io.prometheus.write.v2.Request",
                },
                detail: e.to_owned(),
            })?;
        self.store_wire(request)
    }

    /// Stores a request read into the wire form: remote write's, or OTLP's translated
    /// (`ingest/otlp.rs`).
    pub(super) fn store_wire(
        &self,
        request: WireRequest<'_>,
    ) -> Result<RemoteWriteOutcome, RemoteWriteError> {
        let count = request.samples.len();
        if count > self.limits.max_samples_per_batch {
            return Err(RemoteWriteError::TooManySamples {
                count,
                max: self.limits.max_samples_per_batch,
            });
        }
        self.declare_families(&request)?;

        let now = (self.clock)();
        let earliest = now - self.limits.max_sample_age.as_millis() as i64;
        let latest = now + self.limits.max_future_skew.as_millis() as i64;
        let in_range = |timestamp: i64| (earliest..=latest).contains(&timestamp);
        let storable = |&(timestamp, value): &(i64, f64)| {
            (value.is_finite() || is_stale_marker(value)) && in_range(timestamp)
        };
        // A series is created only for a value: a staleness marker ends a series that exists.
        let creatable = |&(timestamp, value): &(i64, f64)| value.is_finite() && in_range(timestamp);
        // Per series, its id; none for a series with nothing to store (only NaN, markers of a
        // series that does not exist, or samples out of range: it is not created), or one
        // refused or kept out by a cap.
        let mut ids: Vec<Option<SeriesId>> = vec![None; request.series.len()];
        let mut missing = Vec::new();
        // Every digest first, then the lookups in a loop of their own: the cache's table
        // outgrows the CPU's caches, and a short loop of independent lookups lets their misses
        // overlap, where one lookup per long iteration (the digest's hashing between) waited
        // for each.
        let mut scratch = Vec::with_capacity(256);
        let digests: Vec<Option<LabelsDigest>> = request
            .series
            .iter()
            .map(|series| {
                let samples = &request.samples[series.samples.clone()];
                (samples.iter().any(storable) || series.histograms > 0).then(|| {
                    let labels = &request.labels[series.labels.clone()];
                    self.labels_digester.digest(labels, &mut scratch)
                })
            })
            .collect();
        {
            let cache = self
                .remote_write_cache
                .read()
                .unwrap_or_else(|p| p.into_inner());
            for (index, digest) in digests.iter().enumerate() {
                let Some(digest) = digest else { continue };
                match cache.get(digest) {
                    Some(&id) => ids[index] = Some(id),
                    None => missing.push(index),
                }
            }
        }
        // A series is created only for a value or a histogram.
        missing.retain(|&index| {
            let series = &request.series[index];
            request.samples[series.samples.clone()]
                .iter()
                .any(creatable)
                || series.histograms > 0
        });
        let mut refused = None;
        let mut skipped = vec![false; request.series.len()];
        let mut refusals = Vec::new();
        if !missing.is_empty() {
            // Every new series is checked before any is created; one that fails is left out
            // and the request's others go on.
            let mut defs = Vec::with_capacity(missing.len());
            let mut defined = Vec::with_capacity(missing.len());
            for &index in &missing {
                match self.definition(&request, index) {
                    Ok(def) => {
                        defs.push(def);
                        defined.push(index);
                    }
                    Err(refusal) => {
                        skipped[index] = true;
                        refusals.push(refusal);
                    }
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
                    if self.catalog.get(id).is_some()
                        && let Some(digest) = digests[index]
                    {
                        cache.insert(digest, id);
                    }
                }
            }
            self.metrics.series.set(self.catalog.len() as i64);
        }
        // A known series with native histograms: its float samples are stored, the
        // histograms said to be left out.
        for (index, series) in request.series.iter().enumerate() {
            if series.histograms > 0 && !skipped[index] {
                skipped[index] = true;
                refusals.push(SeriesRefusal::NativeHistogram {
                    index,
                    name: excerpt(self.name_bytes(&request, index)),
                });
            }
        }

        let mut outcome = RemoteWriteOutcome::default();
        let (mut over_cap, mut skipped_samples) = (0, 0);
        let mut samples = Vec::with_capacity(count);
        for (index, (series, id)) in request.series.iter().zip(&ids).enumerate() {
            skipped_samples += series.histograms;
            for &(timestamp, value) in &request.samples[series.samples.clone()] {
                if !storable(&(timestamp, value)) {
                    if value.is_finite() || is_stale_marker(value) {
                        outcome.out_of_range += 1;
                    } else {
                        outcome.non_finite += 1;
                    }
                } else if let Some(series) = *id {
                    samples.push(Sample {
                        series,
                        timestamp_ms: timestamp,
                        value,
                    });
                } else if is_stale_marker(value) {
                    outcome.non_finite += 1;
                } else if skipped[index] {
                    skipped_samples += 1;
                } else {
                    over_cap += 1;
                }
            }
        }
        let appended = self.tsdb.append(None, &samples)?;
        // Observers judge values; a marker is none.
        samples.retain(|s| !is_stale_marker(s.value));
        self.observers.stored(None, samples);
        outcome.accepted = appended.accepted;
        outcome.out_of_range += appended.too_old;
        self.metrics
            .ingested_samples
            .inc_by(appended.accepted as u64);
        self.metrics
            .samples_too_old
            .inc_by(outcome.out_of_range as u64);
        if !refusals.is_empty() {
            let series = refusals.len();
            refusals.truncate(NAMED_REFUSALS);
            return Err(RemoteWriteError::SeriesSkipped(SkippedSeries {
                series,
                samples: skipped_samples,
                named: refusals,
            }));
        }
        match refused {
            Some(refused) => Err(RemoteWriteError::OverCap {
                refused,
                samples: over_cap,
            }),
            None => Ok(outcome),
        }
    }

    /// Records the families the request declares (1.0's metadata list, 2.0's per-series
    /// metadata), after checking 1.0's against the length limits.
    fn declare_families(&self, request: &WireRequest<'_>) -> Result<(), RemoteWriteError> {
        for (index, (family, declared)) in request.families.iter().enumerate() {
            check_metric_name(&self.limits, family)
                .and_then(|()| check_help(&self.limits, declared.help))
                .and_then(|()| check_unit(&self.limits, declared.unit))
                .map_err(|source| RemoteWriteError::MetadataOverLimit {
                    index,
                    family: excerpt(family),
                    source,
                })?;
        }
        let per_series = request.series.iter().enumerate().filter_map(|(index, s)| {
            let declared = s.declared?;
            let name = std::str::from_utf8(self.name_bytes(request, index)).ok()?;
            let fits = check_metric_name(&self.limits, name.as_bytes())
                .and_then(|()| check_help(&self.limits, declared.help))
                .and_then(|()| check_unit(&self.limits, declared.unit));
            // A series over a limit is refused with its reason when it is defined.
            fits.is_ok()
                .then(|| (family_of(name, declared.kind).as_bytes(), declared))
        });
        // Only what changes anything is turned into owned declarations.
        let declared: Vec<(&str, FamilyMeta)> = request
            .families
            .iter()
            .copied()
            .chain(per_series)
            .filter_map(|(family, declared)| {
                let family = std::str::from_utf8(family).ok()?;
                let Declared { kind, help, unit } = declared;
                if self.tsdb.already_declared(family, kind, help, unit) {
                    return None;
                }
                let meta = FamilyMeta {
                    kind: declared.kind,
                    help: String::from_utf8_lossy(declared.help).into_owned(),
                    unit: String::from_utf8_lossy(declared.unit).into_owned(),
                };
                // Prometheus' "no metadata" entries declare nothing.
                let empty = meta.kind == FamilyType::Unknown
                    && meta.help.is_empty()
                    && meta.unit.is_empty();
                (!family.is_empty() && !empty).then_some((family, meta))
            })
            .collect();
        if !declared.is_empty() {
            self.tsdb.declare_families(declared)?;
        }
        Ok(())
    }

    /// The raw `__name__` of request series `index` (empty when it has none).
    fn name_bytes<'a>(&self, request: &WireRequest<'a>, index: usize) -> &'a [u8] {
        let name_label = METRIC_NAME_LABEL.as_bytes();
        request.labels[request.series[index].labels.clone()]
            .iter()
            .find(|(n, _)| *n == name_label)
            .map_or(&[], |(_, v)| *v)
    }

    /// What the sender declared about the family of `name`: on the series itself (2.0), else
    /// as a family (recorded earlier, or in this request), trying the name itself and then the
    /// family a histogram or summary part belongs to.
    fn declaration(&self, name: &str, on_series: Option<Declared<'_>>) -> Option<FamilyMeta> {
        if let Some(d) = on_series.filter(|d| d.kind != FamilyType::Unknown) {
            return Some(FamilyMeta {
                kind: d.kind,
                help: String::from_utf8_lossy(d.help).into_owned(),
                unit: String::from_utf8_lossy(d.unit).into_owned(),
            });
        }
        self.tsdb.family(name).or_else(|| {
            ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
                let meta = self.tsdb.family(name.strip_suffix(suffix)?)?;
                meta.kind.part_suffixes().contains(suffix).then_some(meta)
            })
        })
    }

    /// The definition of request series `index`, checked against the limits.
    fn definition(
        &self,
        request: &WireRequest<'_>,
        index: usize,
    ) -> Result<SeriesDefinition, SeriesRefusal> {
        let name_label = METRIC_NAME_LABEL.as_bytes();
        let series = &request.series[index];
        let labels = &request.labels[series.labels.clone()];
        let name = labels
            .iter()
            .find(|(n, _)| *n == name_label)
            .map(|(_, v)| *v)
            .ok_or(SeriesRefusal::MissingName { index })?;
        if series.histograms > 0 && series.samples.is_empty() {
            return Err(SeriesRefusal::NativeHistogram {
                index,
                name: excerpt(name),
            });
        }
        // An empty value means "no such label" in Prometheus' model.
        let others: Vec<(&[u8], &[u8])> = labels
            .iter()
            .filter(|(n, v)| *n != name_label && !v.is_empty())
            .copied()
            .collect();
        // +1: the metric name is a label too.
        check_series(&self.limits, name, others.iter().copied(), 1, b"").map_err(|source| {
            SeriesRefusal::OverLimit {
                index,
                name: excerpt(name),
                source,
            }
        })?;
        let invalid = |source| SeriesRefusal::Labels {
            index,
            name: excerpt(name),
            source,
        };
        let name = text(name).map_err(invalid)?;
        crate::telemetry::check_metric_name(&name)
            .map_err(|source| SeriesRefusal::Reserved { index, source })?;
        let others = others
            .into_iter()
            .map(|(n, v)| Ok((text(n)?, text(v)?)))
            .collect::<Result<Vec<_>, LabelError>>()
            .map_err(invalid)?;
        let labels = Labels::new(&name, others).map_err(invalid)?;
        let declared = self.declaration(&name, series.declared);
        let kind = declared
            .as_ref()
            .and_then(|d| d.kind.series_kind(&name))
            .unwrap_or(if name.ends_with("_total") {
                MetricKind::Counter
            } else {
                MetricKind::Gauge
            });
        Ok(SeriesDefinition {
            labels,
            kind,
            help: declared.map(|d| d.help).unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests;

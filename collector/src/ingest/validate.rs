//! Pure validation of a registration, and of one batch against the stream's interned series and
//! the limits.
//! No I/O: the caller resolves series ids and writes.

use super::IngestError;
use super::limits::{self, check_series};
use crate::ingest::IngestLimits;
use crate::storage::{MetricKind, SeriesId};
use hcmon_common::Labels;
use hcmon_proto::v1::{
    Batch, HostFacts, MAX_HOST_FACT_BYTES, MetricKind as WireKind, RegisterRequest, check_node_name,
};
use std::collections::HashMap;

/// A series defined on a stream.
#[derive(Debug, Clone)]
pub struct Interned {
    /// Set with the series' first sample: a definition no sample uses creates no series.
    pub id: Option<SeriesId>,
    pub kind: MetricKind,
    pub labels: Labels,
    /// Kept until the series is created, which stores it.
    pub help: String,
}

/// A new series definition that passed validation.
#[derive(Debug)]
pub struct NewSeries {
    pub wire_id: u32,
    pub labels: Labels,
    pub kind: MetricKind,
    pub help: String,
}

/// The `job` and `instance` labels the collector adds to an agent's series, as Prometheus adds
/// them to what it scrapes, so rules and dashboards written for node_exporter select the agent's
/// series. They come with the registration, not the batches: they cost no bytes per series or
/// sample on the wire or in the agent's spool.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TargetLabels {
    pub job: String,
    pub instance: String,
}

/// The job of an agent that names none: the one node_exporter's scrape configs use.
const DEFAULT_JOB: &str = "node";

impl TargetLabels {
    /// The labels a registration asks for; an empty field (and an agent older than these fields)
    /// takes the default: job `node`, instance the node name.
    pub fn new(node: &str, job: &str, instance: &str) -> Self {
        let or =
            |value: &str, default: &str| if value.is_empty() { default } else { value }.to_owned();
        Self {
            job: or(job, DEFAULT_JOB),
            instance: or(instance, node),
        }
    }
}

/// A batch that passed validation.
#[derive(Debug)]
pub struct ValidBatch {
    pub seq: u64,
    pub new_series: Vec<NewSeries>,
    /// (wire id, timestamp ms, value)
    pub samples: Vec<(u32, i64, f64)>,
}

/// Checks what a `Register` says about the node: its name (the rule on
/// `RegisterRequest.node_name`), agent version and host facts, each bounded in length and free of
/// control characters, since they are stored and shown to people.
pub fn validate_registration(req: &RegisterRequest) -> Result<(), IngestError> {
    let name = &req.node_name;
    if name.is_empty() {
        return Err(IngestError::EmptyNodeName);
    }
    if let Err(problem) = check_node_name(name) {
        return Err(IngestError::InvalidNodeName {
            name: limits::excerpt(name.as_bytes()),
            bytes: name.len(),
            problem,
        });
    }
    let default = HostFacts::default();
    let host = req.host.as_ref().unwrap_or(&default);
    let facts = [
        ("agent_version", &req.agent_version),
        ("job", &req.job),
        ("instance", &req.instance),
        ("host.hostname", &host.hostname),
        ("host.os_name", &host.os_name),
        ("host.os_version", &host.os_version),
        ("host.kernel_version", &host.kernel_version),
        ("host.arch", &host.arch),
    ];
    for (field, value) in facts {
        let problem = if value.len() > MAX_HOST_FACT_BYTES {
            format!(
                "is {} bytes, over the limit of {MAX_HOST_FACT_BYTES}",
                value.len()
            )
        } else if value.chars().any(char::is_control) {
            let shown = limits::excerpt(value.as_bytes());
            format!("{shown} holds a control character")
        } else {
            continue;
        };
        return Err(IngestError::InvalidHostFact { field, problem });
    }
    Ok(())
}

/// Checks a batch. `node` becomes the `node` label of every new series, and `target` its `job`
/// and `instance` labels unless the series sets its own (as Prometheus' `honor_labels`). A resend
/// of a batch already stored (`resend`) has only its series definitions checked: its samples were
/// accepted once and will not be stored again, so the clock may have moved past them.
pub fn validate(
    batch: Batch,
    node: &str,
    target: &TargetLabels,
    interned: &HashMap<u32, Interned>,
    limits: &IngestLimits,
    now_ms: i64,
    resend: bool,
) -> Result<ValidBatch, IngestError> {
    let seq = batch.seq;
    if seq == 0 {
        return Err(IngestError::ZeroSequence);
    }
    let count: usize = batch
        .samples
        .iter()
        .map(|s| s.values.len().max(s.timestamps_ms.len()))
        .sum();
    if count > limits.max_samples_per_batch {
        return Err(IngestError::TooManySamples {
            seq,
            count,
            max: limits.max_samples_per_batch,
        });
    }
    let series_after = interned.len() + batch.new_series.len();
    if series_after > limits.max_series_per_agent {
        return Err(IngestError::TooManySeries {
            seq,
            count: series_after,
            max: limits.max_series_per_agent,
        });
    }

    let mut new_series = Vec::with_capacity(batch.new_series.len());
    let mut new_kinds: HashMap<u32, (MetricKind, Labels)> = HashMap::new();
    for def in batch.new_series {
        let id = def.id;
        if interned.contains_key(&id) || new_kinds.contains_key(&id) {
            return Err(IngestError::DuplicateSeriesId { seq, id });
        }
        let sets = |name: &str| def.labels.iter().any(|label| label.name == name);
        let target_labels: Vec<(&str, &str)> =
            [("job", &target.job), ("instance", &target.instance)]
                .into_iter()
                .filter(|(name, _)| !sets(name))
                .map(|(name, value)| (name, value.as_str()))
                .collect();
        let labels = def.labels.iter();
        let labels = labels.map(|l| (l.name.as_bytes(), l.value.as_bytes()));
        // The metric name and the node label count too, with the target labels added.
        let implied = 2 + target_labels.len();
        check_series(
            limits,
            def.name.as_bytes(),
            labels,
            implied,
            def.help.as_bytes(),
        )
        .map_err(|source| IngestError::SeriesOverLimit {
            seq,
            id,
            name: limits::excerpt(def.name.as_bytes()),
            source,
        })?;
        if sets("node") {
            return Err(IngestError::ReservedLabel { seq, id });
        }
        if let Err(source) = crate::telemetry::check_metric_name(&def.name) {
            return Err(IngestError::ReservedName { seq, id, source });
        }
        let kind = match WireKind::try_from(def.kind) {
            Ok(WireKind::Gauge) => MetricKind::Gauge,
            Ok(WireKind::Counter) => MetricKind::Counter,
            Ok(WireKind::Unspecified) | Err(_) => {
                return Err(IngestError::UnspecifiedKind { seq, id });
            }
        };
        let pairs = def
            .labels
            .into_iter()
            .map(|l| (l.name, l.value))
            .chain([("node".to_owned(), node.to_owned())])
            .chain(
                target_labels
                    .into_iter()
                    .map(|(name, value)| (name.to_owned(), value.to_owned())),
            );
        let labels = Labels::new(&def.name, pairs)
            .map_err(|source| IngestError::InvalidSeries { seq, id, source })?;
        new_kinds.insert(id, (kind, labels.clone()));
        new_series.push(NewSeries {
            wire_id: id,
            labels,
            kind,
            help: def.help,
        });
    }

    if resend {
        return Ok(ValidBatch {
            seq,
            new_series,
            samples: Vec::new(),
        });
    }
    let max_future_ms = limits.max_future_skew.as_millis() as i64;
    let max_age_ms = limits.max_sample_age.as_millis() as i64;
    let mut samples = Vec::with_capacity(count);
    for group in batch.samples {
        let id = group.series_id;
        let (kind, labels) = match (interned.get(&id), new_kinds.get(&id)) {
            (Some(known), _) => (known.kind, &known.labels),
            (None, Some((kind, labels))) => (*kind, labels),
            (None, None) => return Err(IngestError::UnknownSeriesId { seq, id }),
        };
        // Formatted only for an error message: most groups never need it.
        let name = || labels.to_string();
        if group.timestamps_ms.len() != group.values.len() {
            return Err(IngestError::LengthMismatch {
                seq,
                series: name(),
                timestamps: group.timestamps_ms.len(),
                values: group.values.len(),
            });
        }
        for (&timestamp_ms, &value) in group.timestamps_ms.iter().zip(&group.values) {
            if !value.is_finite() {
                return Err(IngestError::NonFiniteValue {
                    seq,
                    series: name(),
                    value,
                    timestamp_ms,
                });
            }
            if kind == MetricKind::Counter && value < 0.0 {
                return Err(IngestError::NegativeCounter {
                    seq,
                    series: name(),
                    value,
                    timestamp_ms,
                });
            }
            let ahead = timestamp_ms.saturating_sub(now_ms);
            if ahead > max_future_ms {
                return Err(IngestError::TimestampInFuture {
                    seq,
                    series: name(),
                    timestamp_ms,
                    skew_s: ahead / 1000,
                    max_s: limits.max_future_skew.as_secs(),
                });
            }
            let age = now_ms.saturating_sub(timestamp_ms);
            if age > max_age_ms {
                return Err(IngestError::TimestampTooOld {
                    seq,
                    series: name(),
                    timestamp_ms,
                    age_s: age / 1000,
                    max_s: limits.max_sample_age.as_secs(),
                });
            }
            samples.push((id, timestamp_ms, value));
        }
    }
    Ok(ValidBatch {
        seq,
        new_series,
        samples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::Refusal;
    use hcmon_proto::v1::{Label, SeriesDef, SeriesSamples};

    const NOW: i64 = 1_700_000_000_000;

    fn def(id: u32, name: &str, kind: WireKind) -> SeriesDef {
        SeriesDef {
            id,
            name: name.into(),
            labels: vec![Label {
                name: "cpu".into(),
                value: "0".into(),
            }],
            kind: kind as i32,
            help: "h".into(),
        }
    }

    fn samples(id: u32, ts: &[i64], values: &[f64]) -> SeriesSamples {
        SeriesSamples {
            series_id: id,
            timestamps_ms: ts.to_vec(),
            values: values.to_vec(),
        }
    }

    fn good() -> Batch {
        Batch {
            seq: 1,
            new_series: vec![def(1, "cpu_usage_ratio", WireKind::Gauge)],
            samples: vec![samples(1, &[NOW], &[0.5])],
            skipped_from: 0,
        }
    }

    fn check(mutate: impl FnOnce(&mut Batch), expected: Refusal, needle: &str) {
        let mut batch = good();
        mutate(&mut batch);
        let err = validate(
            batch,
            "a",
            &TargetLabels::new("a", "", ""),
            &HashMap::new(),
            &IngestLimits::default(),
            NOW,
            false,
        )
        .expect_err("batch should be refused");
        assert_eq!(err.refusal(), expected, "{err}");
        assert!(err.to_string().contains(needle), "{err:?} lacks {needle:?}");
    }

    #[test]
    fn accepts_a_good_batch_and_adds_the_node_job_and_instance_labels() {
        let valid = validate(
            good(),
            "nas",
            &TargetLabels::new("nas", "", ""),
            &HashMap::new(),
            &IngestLimits::default(),
            NOW,
            false,
        )
        .unwrap();
        assert_eq!(valid.samples, vec![(1, NOW, 0.5)]);
        let labels = &valid.new_series[0].labels;
        assert_eq!(labels.get("node"), Some("nas"));
        assert_eq!(labels.get("job"), Some("node"));
        assert_eq!(labels.get("instance"), Some("nas"));
    }

    #[test]
    fn configured_target_labels_apply_unless_the_series_sets_its_own() {
        let mut batch = good();
        batch.new_series.push(SeriesDef {
            id: 2,
            labels: vec![Label {
                name: "instance".into(),
                value: "redis:6379".into(),
            }],
            ..def(2, "redis_up", WireKind::Gauge)
        });
        batch.samples.push(samples(2, &[NOW], &[1.0]));
        let target = TargetLabels::new("nas", "hosts", "nas.lan:9100");
        let limits = IngestLimits::default();
        let valid = validate(batch, "nas", &target, &HashMap::new(), &limits, NOW, false).unwrap();
        let labels = |i: usize| &valid.new_series[i].labels;
        assert_eq!(labels(0).get("job"), Some("hosts"));
        assert_eq!(labels(0).get("instance"), Some("nas.lan:9100"));
        assert_eq!(labels(1).get("job"), Some("hosts"));
        assert_eq!(labels(1).get("instance"), Some("redis:6379"));
    }

    #[test]
    fn refuses_each_kind_of_bad_batch_with_a_named_reason() {
        check(|b| b.seq = 0, Refusal::Invalid, "seq must be 1");
        check(
            |b| b.samples[0].values[0] = f64::NAN,
            Refusal::Invalid,
            "NaN and Inf",
        );
        check(
            |b| b.samples[0].values[0] = f64::INFINITY,
            Refusal::Invalid,
            "non-finite",
        );
        check(
            |b| b.samples[0].timestamps_ms[0] = NOW + 3_600_000,
            Refusal::Invalid,
            "ahead",
        );
        check(
            |b| b.samples[0].timestamps_ms[0] = 0,
            Refusal::Invalid,
            "behind",
        );
        check(
            |b| b.samples[0].values.push(1.0),
            Refusal::Invalid,
            "1 timestamps but 2 values",
        );
        check(
            |b| b.samples[0].series_id = 9,
            Refusal::UnknownReference,
            "series id 9",
        );
        check(
            |b| b.new_series[0].name = "bad name".into(),
            Refusal::Invalid,
            "metric name",
        );
        check(
            |b| b.new_series[0].kind = 0,
            Refusal::Invalid,
            "unspecified metric kind",
        );
        check(
            |b| b.new_series.push(def(1, "x", WireKind::Gauge)),
            Refusal::Invalid,
            "twice",
        );
        check(
            |b| b.new_series[0].labels[0].name = "node".into(),
            Refusal::Invalid,
            "reserved label",
        );
        check(
            |b| {
                b.new_series[0] = def(1, "c_total", WireKind::Counter);
                b.samples[0].values[0] = -1.0;
            },
            Refusal::Invalid,
            "negative",
        );
        check(
            |b| b.new_series[0].labels[0].value = "x".repeat(2000),
            Refusal::OverLimit,
            "2000 bytes",
        );
        check(
            |b| b.samples[0] = samples(1, &vec![NOW; 100_001], &vec![1.0; 100_001]),
            Refusal::OverLimit,
            "100001 samples",
        );
    }
}

//! The limits on what agents and remote-write senders may send (`[limits]` in the collector's
//! config), and the checks of a series' identity (metric name, labels, help text) that agent
//! batches (`validate.rs`) and remote write share, so both paths accept the same series.

use serde::Deserialize;
use std::time::Duration;

/// Limits on what agents and remote-write senders may send; breaking one refuses the batch
/// (with a gRPC status) or the request (with HTTP 400), with a message naming the limit.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestLimits {
    /// Largest encoded batch, in bytes.
    pub max_batch_bytes: usize,
    /// Most samples in one batch or remote-write request.
    pub max_samples_per_batch: usize,
    /// Most series one node may have: those with its `node` label, whichever streams or
    /// remote writes created them (also the most one stream may define).
    pub max_series_per_agent: usize,
    /// Most series the collector holds in all. Each keeps a few KiB in memory for good (its
    /// catalog entry, open chunk and, with analytics on, its detectors' state), so the default
    /// fits the shipped unit's `MemoryMax=2G` with room for the store's caches: a cardinality
    /// bomb is refused rather than grown into an out-of-memory kill.
    pub max_series: usize,
    /// Most labels on a series, `node` and the metric name included.
    pub max_labels_per_series: usize,
    /// Longest label name, in bytes.
    pub max_label_name_len: usize,
    /// Longest label value, in bytes.
    pub max_label_value_len: usize,
    /// Longest metric name (and remote-write metadata unit), in bytes.
    pub max_metric_name_len: usize,
    /// Longest help text of a series or of remote-write metadata, in bytes.
    pub max_help_len: usize,
    /// How far ahead of the collector's clock a sample may be.
    #[serde(with = "humantime_serde")]
    pub max_future_skew: Duration,
    /// How far behind the collector's clock a sample may be (spooled back-fill included).
    #[serde(with = "humantime_serde")]
    pub max_sample_age: Duration,
    /// Most open streams of one node's current registration. An agent that registers again
    /// replaces its older streams rather than counting against this.
    pub max_streams_per_node: usize,
    /// Most open agent streams in all.
    pub max_streams: usize,
    /// Most back-filled agent batches (newest sample over [`BACKFILL_AFTER_MS`] old: a spool
    /// draining after an outage) stored at once; 0 is one per core. Live batches never wait
    /// for these, so fifty agents draining an hour of spool each cannot take every core from
    /// the agents reporting now.
    ///
    /// [`BACKFILL_AFTER_MS`]: super::BACKFILL_AFTER_MS
    pub backfill_stores: usize,
}

impl Default for IngestLimits {
    fn default() -> Self {
        Self {
            max_batch_bytes: 4 << 20,
            max_samples_per_batch: 100_000,
            max_series_per_agent: 50_000,
            max_series: 250_000,
            max_labels_per_series: 32,
            max_label_name_len: 128,
            max_label_value_len: 1024,
            max_metric_name_len: 256,
            max_help_len: 1024,
            max_future_skew: Duration::from_secs(10 * 60),
            max_sample_age: Duration::from_secs(7 * 24 * 3600),
            max_streams_per_node: 4,
            max_streams: 10_000,
            backfill_stores: 0,
        }
    }
}

impl IngestLimits {
    /// [`backfill_stores`](Self::backfill_stores) with 0 resolved to the number of cores.
    pub fn backfill_lanes(&self) -> usize {
        match self.backfill_stores {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

/// A series over one of the [`IngestLimits`]. Each message names the config key to raise.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverLimit {
    #[error("has {count} labels, over the limit of {max} (`limits.max_labels_per_series`)")]
    TooManyLabels { count: usize, max: usize },
    #[error(
        "has a label name of {len} bytes ({start}), over the limit of {max} (`limits.max_label_name_len`)"
    )]
    LabelNameTooLong {
        start: String,
        len: usize,
        max: usize,
    },
    #[error(
        "has label {label:?} with a value of {len} bytes, over the limit of {max} (`limits.max_label_value_len`)"
    )]
    LabelValueTooLong {
        label: String,
        len: usize,
        max: usize,
    },
    #[error(
        "has a metric name of {len} bytes, over the limit of {max} (`limits.max_metric_name_len`)"
    )]
    MetricNameTooLong { len: usize, max: usize },
    #[error("has a unit of {len} bytes, over the limit of {max} (`limits.max_metric_name_len`)")]
    UnitTooLong { len: usize, max: usize },
    #[error("has a help text of {len} bytes, over the limit of {max} (`limits.max_help_len`)")]
    HelpTooLong { len: usize, max: usize },
}

impl OverLimit {
    /// A short, bounded label for the rejected-batches metric.
    pub fn reason(&self) -> &'static str {
        match self {
            OverLimit::TooManyLabels { .. } => "too_many_labels",
            OverLimit::LabelNameTooLong { .. } => "label_name_too_long",
            OverLimit::LabelValueTooLong { .. } => "label_value_too_long",
            OverLimit::MetricNameTooLong { .. } | OverLimit::UnitTooLong { .. } => {
                "metric_name_too_long"
            }
            OverLimit::HelpTooLong { .. } => "help_too_long",
        }
    }
}

/// Checks a series: its metric name, its labels (name, value; the metric name not among them)
/// and its help text. `implied` counts labels the collector adds (the metric name itself, and
/// `node` for agents' series) towards the label limit.
pub fn check_series<'a>(
    limits: &IngestLimits,
    metric_name: &[u8],
    labels: impl ExactSizeIterator<Item = (&'a [u8], &'a [u8])>,
    implied: usize,
    help: &[u8],
) -> Result<(), OverLimit> {
    check_metric_name(limits, metric_name)?;
    let count = labels.len() + implied;
    if count > limits.max_labels_per_series {
        return Err(OverLimit::TooManyLabels {
            count,
            max: limits.max_labels_per_series,
        });
    }
    for (name, value) in labels {
        if name.len() > limits.max_label_name_len {
            return Err(OverLimit::LabelNameTooLong {
                start: excerpt(name),
                len: name.len(),
                max: limits.max_label_name_len,
            });
        }
        if value.len() > limits.max_label_value_len {
            return Err(OverLimit::LabelValueTooLong {
                label: String::from_utf8_lossy(name).into_owned(),
                len: value.len(),
                max: limits.max_label_value_len,
            });
        }
    }
    check_help(limits, help)
}

pub fn check_metric_name(limits: &IngestLimits, name: &[u8]) -> Result<(), OverLimit> {
    if name.len() > limits.max_metric_name_len {
        return Err(OverLimit::MetricNameTooLong {
            len: name.len(),
            max: limits.max_metric_name_len,
        });
    }
    Ok(())
}

pub fn check_unit(limits: &IngestLimits, unit: &[u8]) -> Result<(), OverLimit> {
    if unit.len() > limits.max_metric_name_len {
        return Err(OverLimit::UnitTooLong {
            len: unit.len(),
            max: limits.max_metric_name_len,
        });
    }
    Ok(())
}

pub fn check_help(limits: &IngestLimits, help: &[u8]) -> Result<(), OverLimit> {
    if help.len() > limits.max_help_len {
        return Err(OverLimit::HelpTooLong {
            len: help.len(),
            max: limits.max_help_len,
        });
    }
    Ok(())
}

/// The start of a name for an error message: a refused name may be megabytes long, and the
/// message goes to logs and back to the sender.
pub fn excerpt(bytes: &[u8]) -> String {
    const SHOWN: usize = 64;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(SHOWN)]);
    if bytes.len() > SHOWN {
        format!("{text:?}…")
    } else {
        format!("{text:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(labels: &[(&str, &str)], name: &str, help: &str) -> Result<(), OverLimit> {
        let labels: Vec<(&[u8], &[u8])> = labels
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .collect();
        let limits = IngestLimits {
            max_labels_per_series: 3,
            max_label_name_len: 4,
            max_label_value_len: 5,
            max_metric_name_len: 6,
            max_help_len: 7,
            ..IngestLimits::default()
        };
        check_series(
            &limits,
            name.as_bytes(),
            labels.into_iter(),
            1,
            help.as_bytes(),
        )
    }

    #[test]
    fn each_limit_refuses_one_byte_over_and_names_its_key() {
        assert_eq!(
            check(&[("abcd", "12345"), ("b", "")], "metric", "1234567"),
            Ok(())
        );
        for (got, key) in [
            (
                check(&[("a", ""), ("b", ""), ("c", "")], "m", ""),
                "max_labels_per_series",
            ),
            (check(&[("abcde", "")], "m", ""), "max_label_name_len"),
            (check(&[("a", "123456")], "m", ""), "max_label_value_len"),
            (check(&[], "metric_", ""), "max_metric_name_len"),
            (check(&[], "m", "12345678"), "max_help_len"),
        ] {
            let err = got.expect_err(key);
            assert!(err.to_string().contains(key), "{err}");
        }
    }

    #[test]
    fn excerpts_keep_error_messages_short() {
        assert_eq!(excerpt(b"cpu"), "\"cpu\"");
        let long = excerpt(&[b'x'; 10_000]);
        assert!(long.len() < 80 && long.ends_with('…'), "{long}");
    }
}

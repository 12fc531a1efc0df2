//! Application series as spool records: the same batches the agent's own collection writes,
//! so they share its spool, sequence numbers and exactly-once delivery.

use crate::spool::SpoolRecord;
use hcmon_common::otlp::Series;
use hcmon_proto::v1::{Label, MetricKind, SeriesDef, SeriesSamples};

/// Most samples in one record: far under the collector's default batch limits (100,000
/// samples, 4 MiB), so a large export never makes a batch the collector refuses.
pub const MAX_SAMPLES_PER_RECORD: usize = 20_000;

/// `series` as records of at most [`MAX_SAMPLES_PER_RECORD`] samples. Values the agent
/// protocol cannot carry (NaN, infinities, OTLP's staleness markers) are left out: a missing
/// reading is absent. `help` gives a series' description from its name.
pub fn records(series: Vec<Series>, help: impl Fn(&str) -> String) -> Vec<SpoolRecord> {
    let mut out = Vec::new();
    let mut record = SpoolRecord::default();
    let mut samples_in_record = 0usize;
    for series in series {
        let (timestamps, values): (Vec<i64>, Vec<f64>) = series
            .samples
            .iter()
            .filter(|(_, v)| v.is_finite())
            .copied()
            .unzip();
        if timestamps.is_empty() {
            continue;
        }
        if samples_in_record + timestamps.len() > MAX_SAMPLES_PER_RECORD
            && !record.series.is_empty()
        {
            out.push(std::mem::take(&mut record));
            samples_in_record = 0;
        }
        samples_in_record += timestamps.len();
        let id = record.series.len() as u32;
        record.series.push(SeriesDef {
            id,
            help: help(&series.name),
            name: series.name,
            labels: series
                .labels
                .into_iter()
                .map(|(name, value)| Label { name, value })
                .collect(),
            kind: if series.counter {
                MetricKind::Counter
            } else {
                MetricKind::Gauge
            } as i32,
        });
        record.samples.push(SeriesSamples {
            series_id: id,
            timestamps_ms: timestamps,
            values,
        });
    }
    if !record.series.is_empty() {
        out.push(record);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(name: &str, samples: Vec<(i64, f64)>) -> Series {
        Series {
            name: name.into(),
            labels: vec![("job".into(), "app".into())],
            counter: true,
            samples,
        }
    }

    #[test]
    fn records_are_split_and_drop_what_the_protocol_cannot_carry() {
        let many: Vec<(i64, f64)> = (0..MAX_SAMPLES_PER_RECORD as i64)
            .map(|t| (t, 1.0))
            .collect();
        let out = records(
            vec![
                series("a_total", vec![(1, 1.0), (2, f64::NAN)]),
                series("b_total", many),
                series("c_total", vec![(1, f64::INFINITY)]),
            ],
            |name| format!("help of {name}"),
        );
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].series[0].name, "a_total");
        assert_eq!(out[0].samples[0].values, vec![1.0]);
        assert_eq!(out[0].series[0].help, "help of a_total");
        assert_eq!(out[1].series.len(), 1, "c_total had nothing to carry");
        assert_eq!(out[1].series[0].kind, MetricKind::Counter as i32);
    }
}

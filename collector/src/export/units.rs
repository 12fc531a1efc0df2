//! A series' unit for export headers: what its family declared (remote write's metadata), else
//! what its name says, by Prometheus' naming convention (`_bytes`, `_seconds_total`, …).

use crate::storage::Tsdb;
use hcmon_common::Labels;

/// Name endings that are not units: counters' `_total` and the parts of histograms and
/// summaries.
const PARTS: [&str; 5] = ["_total", "_bucket", "_count", "_sum", "_created"];

/// Base units Prometheus names metrics with, and a few common derived ones.
const UNITS: [&str; 16] = [
    "bytes", "seconds", "ratio", "celsius", "percent", "hertz", "volts", "amperes", "joules",
    "watts", "meters", "grams", "kelvin", "packets", "requests", "errors",
];

/// The unit of the series `labels` names, if its family declared one or its name ends in one.
pub fn unit_of(tsdb: &Tsdb, labels: &Labels) -> Option<String> {
    let name = labels.metric_name();
    let family = PARTS
        .iter()
        .find_map(|part| name.strip_suffix(part))
        .into_iter()
        .chain([name]);
    for family in family {
        if let Some(meta) = tsdb.family(family).filter(|m| !m.unit.is_empty()) {
            return Some(meta.unit);
        }
    }
    unit_of_name(name)
}

/// The unit a metric name ends in (before `_total` and the like).
pub(super) fn unit_of_name(name: &str) -> Option<String> {
    let base = PARTS
        .iter()
        .find_map(|part| name.strip_suffix(part))
        .unwrap_or(name);
    let last = base.rsplit('_').next()?;
    (last != base && UNITS.contains(&last)).then(|| last.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_come_from_the_name_as_prometheus_names_them() {
        for (name, unit) in [
            ("node_memory_available_bytes", Some("bytes")),
            ("node_cpu_seconds_total", Some("seconds")),
            ("node_cpu_usage_ratio", Some("ratio")),
            ("node_hwmon_temp_celsius", Some("celsius")),
            ("http_request_duration_seconds_bucket", Some("seconds")),
            ("node_network_receive_packets_total", Some("packets")),
            ("up", None),
            ("bytes", None),
            ("node_forks_total", None),
        ] {
            assert_eq!(unit_of_name(name).as_deref(), unit, "{name}");
        }
    }
}

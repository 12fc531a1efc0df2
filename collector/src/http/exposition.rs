//! Rendering agent series in the Prometheus text exposition format (version 0.0.4).

use crate::anomaly_watch::LatestVerdict;
use crate::storage::SeriesMeta;
use hcmon_common::labels::escape_label_value;
use std::fmt::Write;
use std::sync::Arc;

/// A series and its newest sample (timestamp ms, value), if any.
pub type SeriesLatest = (Arc<SeriesMeta>, Option<(i64, f64)>);

/// Renders the latest value of every series newer than `oldest_ms`, grouped by metric name with
/// one HELP and TYPE line per name, as Prometheus requires. `series` must have all series of
/// a metric name adjacent, as [`SeriesCatalog::all`](crate::catalog::SeriesCatalog::all) returns them.
pub fn render(series: &[SeriesLatest], oldest_ms: i64, out: &mut String) {
    let mut current_name = "";
    for (meta, latest) in series {
        let Some((_, value)) = latest.filter(|l| l.0 >= oldest_ms) else {
            continue;
        };
        let name = meta.labels.metric_name();
        if name != current_name {
            let help = meta.help.replace('\\', "\\\\").replace('\n', "\\n");
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {}", meta.kind.as_str());
            current_name = name;
        }
        out.push_str(name);
        let mut first = true;
        for (label, value) in meta.labels.without_name() {
            out.push(if first { '{' } else { ',' });
            first = false;
            let _ = write!(out, "{label}=\"{}\"", escape_label_value(value));
        }
        if !first {
            out.push('}');
        }
        let _ = writeln!(out, " {value}");
    }
}

/// A metric family derived from verdicts: name, help, and the value of one verdict.
type Family = (&'static str, &'static str, fn(&LatestVerdict) -> f64);

/// Renders `hcmon_anomaly_score` and `hcmon_anomaly_learning` for every series with a verdict
/// on a sample newer than `oldest_ms`. The series' name goes in `metric_name`, beside its labels.
pub fn render_anomalies(
    verdicts: &[(Arc<SeriesMeta>, LatestVerdict)],
    oldest_ms: i64,
    out: &mut String,
) {
    let fresh: Vec<&(Arc<SeriesMeta>, LatestVerdict)> = verdicts
        .iter()
        .filter(|(_, v)| v.timestamp_ms >= oldest_ms)
        .collect();
    if fresh.is_empty() {
        return;
    }
    let families: [Family; 2] = [
        (
            "hcmon_anomaly_score",
            "Anomaly score (0..1) of the newest sample of the series named by metric_name.",
            |v| v.score,
        ),
        (
            "hcmon_anomaly_learning",
            "1 while the series named by metric_name has too little history for its detectors to fire.",
            |v| f64::from(u8::from(v.learning)),
        ),
    ];
    for (name, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (meta, verdict) in &fresh {
            let _ = write!(
                out,
                "{name}{{metric_name=\"{}\"",
                escape_label_value(meta.labels.metric_name())
            );
            for (label, v) in meta.labels.without_name() {
                let _ = write!(out, ",{label}=\"{}\"", escape_label_value(v));
            }
            let _ = writeln!(out, "}} {}", value(verdict));
        }
    }
}

/// Renders `hcmon_node_anomaly_score` and `hcmon_node_anomaly` (the per-node Isolation Forest).
pub fn render_node_verdicts(
    verdicts: &std::collections::BTreeMap<String, crate::node_forest::NodeVerdict>,
    out: &mut String,
) {
    if verdicts.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "# HELP hcmon_node_anomaly_score Isolation Forest score (0..1) of a node's newest complete minute over CPU, memory, disk IO, network and cache probes."
    );
    let _ = writeln!(out, "# TYPE hcmon_node_anomaly_score gauge");
    for (node, v) in verdicts {
        let node = escape_label_value(node);
        let _ = writeln!(
            out,
            "hcmon_node_anomaly_score{{node=\"{node}\"}} {}",
            v.score
        );
    }
    let _ = writeln!(
        out,
        "# HELP hcmon_node_anomaly 1 when a node's newest minute scores above its model's contamination threshold."
    );
    let _ = writeln!(out, "# TYPE hcmon_node_anomaly gauge");
    for (node, v) in verdicts {
        let node = escape_label_value(node);
        let _ = writeln!(
            out,
            "hcmon_node_anomaly{{node=\"{node}\"}} {}",
            u8::from(v.is_anomaly)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{MetricKind, SeriesId};
    use hcmon_common::Labels;

    fn series(name: &str, node: &str, kind: MetricKind, ts: i64, value: f64) -> SeriesLatest {
        let labels = Labels::new(name, [("node".to_owned(), node.to_owned())]).unwrap();
        let meta = SeriesMeta {
            id: SeriesId(1),
            labels,
            kind,
            help: "Some help.".into(),
        };
        (Arc::new(meta), Some((ts, value)))
    }

    #[test]
    fn groups_by_name_and_drops_stale_series() {
        let all = vec![
            series("a_total", "n1", MetricKind::Counter, 100, 5.0),
            series("a_total", "n\"2", MetricKind::Counter, 100, 6.5),
            series("b", "n1", MetricKind::Gauge, 10, 1.0),
        ];
        let mut out = String::new();
        render(&all, 50, &mut out);
        assert_eq!(
            out,
            "# HELP a_total Some help.\n# TYPE a_total counter\n\
             a_total{node=\"n1\"} 5\na_total{node=\"n\\\"2\"} 6.5\n"
        );
    }
}

//! Rendering agent series in the Prometheus text exposition format (version 0.0.4).
//!
//! Prometheus refuses a whole scrape over one family with two TYPE or HELP lines, so every
//! family here has exactly one of each: series are grouped by name whatever order they come
//! in, a stored family whose name is one of the collector's own is left out (the caller says
//! which, see [`crate::telemetry::check_metric_name`]), and a family stored with two kinds (by
//! an older version) is declared `untyped` rather than split.

use crate::anomaly_watch::LatestVerdict;
use crate::storage::SeriesMeta;
use crate::telemetry::{ANOMALY_LEARNING, ANOMALY_SCORE, NODE_ANOMALY, NODE_ANOMALY_SCORE};
use hcmon_common::labels::escape_label_value;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

/// A series and its newest sample (timestamp ms, value), if any.
pub type SeriesLatest = (Arc<SeriesMeta>, Option<(i64, f64)>);

/// HELP of a family stored without one (remote write 1.0 sends none): an empty HELP is legal
/// but fails `promtool check metrics`, which scrape pipelines run.
const NO_HELP: &str = "No help text was sent with this metric.";

/// Renders the latest value of every series newer than `oldest_ms`, grouped by metric name with
/// one HELP and TYPE line per name, as Prometheus requires. Families for which `own` is true
/// (the collector's own names) are left out; returns how many fresh series that hid.
pub fn render(
    series: &[SeriesLatest],
    oldest_ms: i64,
    own: impl Fn(&str) -> bool,
    out: &mut String,
) -> usize {
    let mut families: BTreeMap<&str, Vec<(&SeriesMeta, f64)>> = BTreeMap::new();
    for (meta, latest) in series {
        if let Some((_, value)) = latest.filter(|l| l.0 >= oldest_ms) {
            families
                .entry(meta.labels.metric_name())
                .or_default()
                .push((meta, value));
        }
    }
    let mut hidden = 0;
    for (name, members) in families {
        if own(name) {
            hidden += members.len();
            continue;
        }
        let (first, _) = members[0];
        let help = match first.help.as_str() {
            "" => NO_HELP.to_owned(),
            help => help.replace('\\', "\\\\").replace('\n', "\\n"),
        };
        let kind = if members.iter().all(|(m, _)| m.kind == first.kind) {
            first.kind.as_str()
        } else {
            "untyped"
        };
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for (meta, value) in members {
            out.push_str(name);
            let mut first_label = true;
            for (label, value) in meta.labels.without_name() {
                out.push(if first_label { '{' } else { ',' });
                first_label = false;
                let _ = write!(out, "{label}=\"{}\"", escape_label_value(value));
            }
            if !first_label {
                out.push('}');
            }
            out.push(' ');
            push_sample_value(out, value);
            out.push('\n');
        }
    }
    hidden
}

/// A value as the text format spells it: Rust would write `inf`, which Prometheus cannot parse.
fn push_sample_value(out: &mut String, value: f64) {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{value}");
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
            ANOMALY_SCORE,
            "Anomaly score (0..1) of the newest sample of the series named by metric_name.",
            |v| v.score,
        ),
        (
            ANOMALY_LEARNING,
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
            out.push_str("} ");
            push_sample_value(out, value(verdict));
            out.push('\n');
        }
    }
}

/// Renders `hcmon_node_anomaly_score` and `hcmon_node_anomaly` (the per-node Isolation Forest).
pub fn render_node_verdicts(
    verdicts: &BTreeMap<String, crate::node_forest::NodeVerdict>,
    out: &mut String,
) {
    if verdicts.is_empty() {
        return;
    }
    type NodeFamily = (
        &'static str,
        &'static str,
        fn(&crate::node_forest::NodeVerdict) -> f64,
    );
    let families: [NodeFamily; 2] = [
        (
            NODE_ANOMALY_SCORE,
            "Isolation Forest score (0..1) of a node's newest complete minute over CPU, memory, disk IO, network and cache probes.",
            |v| v.score,
        ),
        (
            NODE_ANOMALY,
            "1 when a node's newest minute scores above its model's contamination threshold.",
            |v| f64::from(u8::from(v.is_anomaly)),
        ),
    ];
    for (name, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (node, verdict) in verdicts {
            let _ = write!(out, "{name}{{node=\"{}\"}} ", escape_label_value(node));
            push_sample_value(out, value(verdict));
            out.push('\n');
        }
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

    /// The text for `series` newer than 50 ms, with `process_*` as the collector's own names,
    /// and how many series that hid.
    fn check(series: &[SeriesLatest], expected: &str, expected_hidden: usize) {
        let mut out = String::new();
        let hidden = render(series, 50, |name| name.starts_with("process_"), &mut out);
        assert_eq!(out, expected);
        assert_eq!(hidden, expected_hidden);
    }

    #[test]
    fn groups_by_name_and_drops_stale_series() {
        check(
            &[
                series("a_total", "n1", MetricKind::Counter, 100, 5.0),
                series("a_total", "n\"2", MetricKind::Counter, 100, 6.5),
                series("b", "n1", MetricKind::Gauge, 10, 1.0),
            ],
            "# HELP a_total Some help.\n# TYPE a_total counter\n\
             a_total{node=\"n1\"} 5\na_total{node=\"n\\\"2\"} 6.5\n",
            0,
        );
    }

    #[test]
    fn every_family_gets_one_help_and_type_line() {
        let mut unhelpful = series("c", "n1", MetricKind::Gauge, 100, 1.0);
        Arc::make_mut(&mut unhelpful.0).help.clear();
        check(
            &[
                // Not adjacent: still one family.
                series("a", "n1", MetricKind::Gauge, 100, 1.0),
                series("b", "n1", MetricKind::Gauge, 100, f64::INFINITY),
                series("a", "n2", MetricKind::Counter, 100, 2.0),
                // The collector's own name, as an older version stored it: left out, counted.
                series("process_open_fds", "n1", MetricKind::Gauge, 100, 3.0),
                series("process_open_fds", "n2", MetricKind::Gauge, 10, 3.0),
                unhelpful,
            ],
            "# HELP a Some help.\n# TYPE a untyped\na{node=\"n1\"} 1\na{node=\"n2\"} 2\n\
             # HELP b Some help.\n# TYPE b gauge\nb{node=\"n1\"} +Inf\n\
             # HELP c No help text was sent with this metric.\n# TYPE c gauge\nc{node=\"n1\"} 1\n",
            1,
        );
    }
}

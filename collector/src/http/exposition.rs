//! Rendering stored series in the Prometheus text exposition format (version 0.0.4), for
//! `/metrics` and `/federate`.
//!
//! Prometheus refuses a whole scrape over one family with two TYPE or HELP lines, and
//! `promtool check metrics` (which scrape pipelines run) also refuses `_bucket`, `_sum` and
//! `_count` series outside a histogram or summary. So series are gathered into families
//! whatever order they come in: a name's series are one family; `X_bucket` (with `le`),
//! `X_sum` and `X_count` are merged into the histogram `X`, and `X` (with `quantile`),
//! `X_sum` and `X_count` into the summary `X`, as remote write (which sends them apart)
//! splits them. Each family has one HELP (the first a member was stored with, so a member
//! stored without help does not hide it) and one TYPE: a family stored with two kinds (by an
//! older version, or by two senders) is declared `untyped` rather than split, as is a lone
//! `_sum`/`_count`/`_bucket` name. A family whose name is one of the collector's own is left
//! out (the caller says which, see [`crate::telemetry::check_metric_name`]).

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

/// Suffixes only histograms and summaries may use.
const RESERVED_SUFFIXES: [&str; 3] = ["_bucket", "_sum", "_count"];

/// What to render.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Series whose newest sample is older are stale and left out.
    pub oldest_ms: i64,
    /// Whether each sample carries its timestamp (`/federate` does, as Prometheus' does).
    pub timestamps: bool,
}

/// A fresh sample of a series: its metadata, timestamp ms and value.
type Fresh<'a> = (&'a SeriesMeta, i64, f64);

/// A family of stored series as rendered: its TYPE word, and its members by name.
struct StoredFamily<'a> {
    kind: &'static str,
    members: Vec<(&'a str, Vec<Fresh<'a>>)>,
}

/// Renders the latest value of every fresh series (see [`Options`]), in families with one
/// HELP and TYPE line each, as Prometheus requires. Families for which `own` is true (the
/// collector's own names) are left out; returns how many fresh series that hid. A family
/// whose series were stored without help takes the help its sender declared apart
/// (`declared_help`, remote write's metadata).
pub fn render(
    series: &[SeriesLatest],
    options: Options,
    own: impl Fn(&str) -> bool,
    declared_help: impl Fn(&str) -> Option<String>,
    out: &mut String,
) -> usize {
    let mut names: BTreeMap<&str, Vec<Fresh>> = BTreeMap::new();
    for (meta, latest) in series {
        if let Some((ts, value)) = latest.filter(|l| l.0 >= options.oldest_ms) {
            names
                .entry(meta.labels.metric_name())
                .or_default()
                .push((meta, ts, value));
        }
    }
    let mut hidden = 0;
    for (name, family) in families(names) {
        if family.members.iter().any(|(member, _)| own(member)) || own(name) {
            hidden += family.members.iter().map(|(_, s)| s.len()).sum::<usize>();
            continue;
        }
        let help = family
            .members
            .iter()
            .flat_map(|(_, series)| series)
            .map(|(meta, _, _)| meta.help.as_str())
            .find(|help| !help.is_empty())
            .map(str::to_owned)
            .or_else(|| declared_help(name).filter(|help| !help.is_empty()))
            .map_or_else(
                || NO_HELP.to_owned(),
                |help| help.replace('\\', "\\\\").replace('\n', "\\n"),
            );
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {}", family.kind);
        for (member, series) in family.members {
            for (meta, ts, value) in series {
                push_sample(out, member, meta, value, options.timestamps.then_some(ts));
            }
        }
    }
    hidden
}

/// Gathers the names' series into families, keyed by family name (see the module doc).
fn families<'a>(
    mut names: BTreeMap<&'a str, Vec<Fresh<'a>>>,
) -> BTreeMap<&'a str, StoredFamily<'a>> {
    let all_have = |series: &[Fresh], label: &str| {
        series.iter().all(|(m, _, _)| m.labels.get(label).is_some())
    };
    let mut families: BTreeMap<&str, StoredFamily> = BTreeMap::new();
    // Histograms and summaries first: they take their `_sum` and `_count` names along.
    let mut merged: Vec<(&str, &'static str, &'static [&'static str])> = Vec::new();
    for (&name, series) in &names {
        let has_parts = |base: &str| {
            ["_sum", "_count"]
                .iter()
                .any(|s| names.contains_key(format!("{base}{s}").as_str()))
        };
        if let Some(base) = name.strip_suffix("_bucket")
            && !names.contains_key(base)
            && all_have(series, "le")
            && has_parts(base)
        {
            merged.push((base, "histogram", &["_bucket", "_sum", "_count"]));
        } else if all_have(series, "quantile") && has_parts(name) {
            merged.push((name, "summary", &["", "_sum", "_count"]));
        }
    }
    for (base, kind, suffixes) in merged {
        let members = suffixes
            .iter()
            .filter_map(|suffix| {
                let key: &'a str = names.keys().find(|n| **n == format!("{base}{suffix}"))?;
                Some((key, names.remove(key)?))
            })
            .collect();
        families.insert(base, StoredFamily { kind, members });
    }
    for (name, series) in names {
        let (first, _, _) = series[0];
        let same = series.iter().all(|(m, _, _)| m.kind == first.kind);
        let lone_part = RESERVED_SUFFIXES.iter().any(|s| name.ends_with(s))
            || series.iter().any(|(m, _, _)| {
                m.labels.get("le").is_some() || m.labels.get("quantile").is_some()
            });
        let kind = match first.kind.as_str() {
            word @ ("gauge" | "counter") if same && !lone_part => word,
            _ => "untyped",
        };
        families.insert(
            name,
            StoredFamily {
                kind,
                members: vec![(name, series)],
            },
        );
    }
    families
}

/// One sample line: `name{labels} value[ timestamp]`.
fn push_sample(out: &mut String, name: &str, meta: &SeriesMeta, value: f64, ts: Option<i64>) {
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
    if let Some(ts) = ts {
        let _ = write!(out, " {ts}");
    }
    out.push('\n');
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
/// on a sample newer than `oldest_ms`. The series' name goes in `metric_name`, beside its labels
/// (`le` and `quantile` as `exported_le` and `exported_quantile`).
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
                // A histogram's `le` or a summary's `quantile` on a gauge fails
                // `promtool check metrics`: renamed as Prometheus renames clashing labels.
                let prefix = if matches!(label, "le" | "quantile") {
                    "exported_"
                } else {
                    ""
                };
                let _ = write!(out, ",{prefix}{label}=\"{}\"", escape_label_value(v));
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
            "Model score (0..1; Isolation Forest or One-Class SVM) of a node's newest complete minute over CPU, memory, disk IO, network and cache probes.",
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

/// Renders the newest data-quality evaluation: `hcmon_data_quality_score{node, dimension}` for
/// every agent node (the five dimensions and `overall`), and
/// `hcmon_data_quality_series_score{node, series}` for each node's worst series only, so the
/// family stays as small as the node count.
pub fn render_quality(report: &crate::quality::QualityReport, out: &mut String) {
    use crate::quality::Dimension;
    use crate::telemetry::{DATA_QUALITY_SCORE, DATA_QUALITY_SERIES_SCORE};
    let nodes: Vec<_> = report
        .nodes
        .iter()
        .filter(|n| n.node != crate::quality::tracker::REMOTE)
        .collect();
    if nodes.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "# HELP {DATA_QUALITY_SCORE} Data-quality score (0..1) of a node's data per dimension (completeness, consistency, accuracy, timeliness, validity) and overall, over the quality window."
    );
    let _ = writeln!(out, "# TYPE {DATA_QUALITY_SCORE} gauge");
    for node in &nodes {
        let scores = Dimension::ALL
            .iter()
            .map(|d| (d.as_str(), node.scores.get(*d)))
            .chain([("overall", node.overall)]);
        for (dimension, score) in scores {
            let _ = write!(
                out,
                "{DATA_QUALITY_SCORE}{{node=\"{}\",dimension=\"{dimension}\"}} ",
                escape_label_value(&node.node)
            );
            push_sample_value(out, score);
            out.push('\n');
        }
    }
    let _ = writeln!(
        out,
        "# HELP {DATA_QUALITY_SERIES_SCORE} Overall data-quality score (0..1) of each node's worst series ([quality] worst_series per node)."
    );
    let _ = writeln!(out, "# TYPE {DATA_QUALITY_SERIES_SCORE} gauge");
    for node in &nodes {
        for series in &node.worst {
            let _ = write!(
                out,
                "{DATA_QUALITY_SERIES_SCORE}{{node=\"{}\",series=\"{}\"}} ",
                escape_label_value(&node.node),
                escape_label_value(&series.series)
            );
            push_sample_value(out, series.overall);
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
        labelled(name, &[("node", node)], kind, ts, value)
    }

    fn labelled(
        name: &str,
        labels: &[(&str, &str)],
        kind: MetricKind,
        ts: i64,
        value: f64,
    ) -> SeriesLatest {
        let labels = labels.iter().map(|(n, v)| (n.to_string(), v.to_string()));
        let labels = Labels::new(name, labels).unwrap();
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
        let options = Options {
            oldest_ms: 50,
            timestamps: false,
        };
        let hidden = render(
            series,
            options,
            |name| name.starts_with("process_"),
            |_| None,
            &mut out,
        );
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

    #[test]
    fn help_comes_from_any_member_that_has_it() {
        let mut unhelpful = series("a", "n1", MetricKind::Gauge, 100, 1.0);
        Arc::make_mut(&mut unhelpful.0).help.clear();
        check(
            &[unhelpful, series("a", "n2", MetricKind::Gauge, 100, 2.0)],
            "# HELP a Some help.\n# TYPE a gauge\na{node=\"n1\"} 1\na{node=\"n2\"} 2\n",
            0,
        );
    }

    #[test]
    fn histogram_and_summary_parts_sent_apart_are_one_family() {
        let g = MetricKind::Gauge;
        let c = MetricKind::Counter;
        check(
            &[
                labelled("h_count", &[], c, 100, 3.0),
                labelled("h_bucket", &[("le", "+Inf")], c, 100, 3.0),
                labelled("h_bucket", &[("le", "0.5")], c, 100, 1.0),
                labelled("h_sum", &[], c, 100, 2.5),
                labelled("s", &[("quantile", "0.5")], g, 100, 0.1),
                labelled("s_sum", &[], g, 100, 4.0),
                labelled("s_count", &[], g, 100, 9.0),
                // Alone: not a histogram's, so not typed as if it were an ordinary gauge.
                labelled("lone_count", &[], g, 100, 1.0),
            ],
            "# HELP h Some help.\n# TYPE h histogram\n\
             h_bucket{le=\"+Inf\"} 3\nh_bucket{le=\"0.5\"} 1\nh_sum 2.5\nh_count 3\n\
             # HELP lone_count Some help.\n# TYPE lone_count untyped\nlone_count 1\n\
             # HELP s Some help.\n# TYPE s summary\n\
             s{quantile=\"0.5\"} 0.1\ns_sum 4\ns_count 9\n",
            0,
        );
    }

    #[test]
    fn federation_writes_timestamps() {
        let mut out = String::new();
        let options = Options {
            oldest_ms: 0,
            timestamps: true,
        };
        let fresh = [series("a", "n1", MetricKind::Gauge, 1234, 1.0)];
        render(&fresh, options, |_| false, |_| None, &mut out);
        assert!(out.ends_with("a{node=\"n1\"} 1 1234\n"), "{out}");
    }
}

//! The objectives every installation has without configuring any, so the first report is
//! useful on day one: each node's availability, each probe's availability and latency, and
//! incident response (MTTA) and resolution (MTTR), all with the default target of 0.95.

use super::config::SloConfig;
use super::definition::{AvailabilitySource, Origin, Sli, SloDefinition, SloName};
use super::probe::PROBES;
use crate::analytics::slo::IncidentSeverity;
use crate::catalog::SeriesCatalog;
use hcmon_common::{METRIC_NAME_LABEL, MatchOp, Matcher, Selector};
use std::collections::BTreeMap;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;

/// Latency thresholds when no alert rule sets a warning level, by probe success series.
const DEFAULT_LATENCY_MS: [(&str, f64); 4] = [
    ("http_check_up", 1000.0),
    ("tcp_check_up", 500.0),
    ("redis_up", 100.0),
    ("memcached_up", 100.0),
];

/// Default objectives for what the catalog holds (none when `[slo] defaults = false`).
/// `latency_warnings` maps a probe duration metric (e.g. `http_check_duration_seconds`) to the
/// warning threshold of an alert rule on it, in seconds.
pub fn default_objectives(
    catalog: &SeriesCatalog,
    config: &SloConfig,
    latency_warnings: &BTreeMap<String, f64>,
) -> Vec<SloDefinition> {
    if !config.defaults {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut nodes: Vec<String> = Vec::new();
    for metric in ["up", "hcmon_agent_samples_total"] {
        for meta in catalog.select(&by_name(metric)) {
            if let Some(node) = meta.labels.get("node")
                && !nodes.iter().any(|n| n == node)
            {
                nodes.push(node.to_owned());
            }
        }
    }
    nodes.sort();
    for node in nodes {
        let Some(name) = name_for("node", &node, "availability") else {
            continue;
        };
        let mut def = SloDefinition::new(
            name,
            format!("{{node=\"{}\"}}", escape(&node)),
            Sli::Availability {
                source: AvailabilitySource::Node,
                retries: 0,
            },
            Origin::Default,
        );
        def.description = format!("The agent on {node} reports (1-minute slices)");
        out.push(def);
    }
    // Probe names, each with the kind it was first seen under (for the latency default).
    let mut probes: BTreeMap<String, &str> = BTreeMap::new();
    for (up, _) in PROBES {
        for meta in catalog.select(&by_name(up)) {
            if let Some(name) = meta.labels.get("name") {
                probes.entry(name.to_owned()).or_insert(up);
            }
        }
    }
    for (probe, up) in probes {
        let selector = format!("{{name=\"{}\"}}", escape(&probe));
        let (Some(availability), Some(latency)) = (
            name_for("probe", &probe, "availability"),
            name_for("probe", &probe, "latency"),
        ) else {
            continue;
        };
        let mut def = SloDefinition::new(
            availability,
            selector.clone(),
            Sli::Availability {
                source: AvailabilitySource::Probe,
                retries: 0,
            },
            Origin::Default,
        );
        def.description = format!("Probe {probe} succeeds");
        out.push(def);
        let duration = PROBES
            .iter()
            .find(|(u, _)| *u == up)
            .map(|(_, d)| *d)
            .unwrap_or_default();
        let threshold_ms = latency_warnings
            .get(duration)
            .filter(|s| s.is_finite() && **s > 0.0)
            .map(|s| s * 1000.0)
            .or_else(|| {
                DEFAULT_LATENCY_MS
                    .iter()
                    .find(|(u, _)| *u == up)
                    .map(|(_, ms)| *ms)
            })
            .unwrap_or(1000.0);
        let mut def = SloDefinition::new(
            latency,
            selector,
            Sli::Latency {
                threshold_ms,
                quantile: super::definition::DEFAULT_LATENCY_QUANTILE,
            },
            Origin::Default,
        );
        def.description = format!("Probe {probe} answers within {threshold_ms} ms");
        out.push(def);
    }
    out.extend(incident_objectives());
    out
}

/// MTTA and MTTR targets per severity, as the original system had them.
fn incident_objectives() -> Vec<SloDefinition> {
    let targets = |critical: i64, error: i64, warning: i64| {
        BTreeMap::from([
            (IncidentSeverity::Critical, critical),
            (IncidentSeverity::Error, error),
            (IncidentSeverity::Warning, warning),
        ])
    };
    let mut out = Vec::new();
    for (name, sli, description) in [
        (
            "incidents:response",
            Sli::Response {
                targets: targets(15 * MINUTE_MS, HOUR_MS, 4 * HOUR_MS),
            },
            "Incidents acknowledged within 15 min (critical), 1 h (error), 4 h (warning)",
        ),
        (
            "incidents:resolution",
            Sli::Resolution {
                targets: targets(4 * HOUR_MS, 24 * HOUR_MS, 72 * HOUR_MS),
            },
            "Incidents resolved within 4 h (critical), 24 h (error), 72 h (warning)",
        ),
    ] {
        if let Ok(name) = name.parse::<SloName>() {
            let mut def = SloDefinition::new(name, "", sli, Origin::Default);
            def.description = description.to_owned();
            out.push(def);
        }
    }
    out
}

fn by_name(metric: &str) -> Selector {
    Selector {
        matchers: Matcher::new(METRIC_NAME_LABEL, MatchOp::Equal, metric)
            .into_iter()
            .collect(),
    }
}

/// `kind:<value>:what`, with characters names cannot hold replaced by `_`.
fn name_for(kind: &str, value: &str, what: &str) -> Option<SloName> {
    let safe: String = value
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{kind}:{safe}:{what}").parse().ok()
}

fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{MetricKind, SeriesId, SeriesMeta};
    use hcmon_common::Labels;

    fn meta(id: u64, name: &str, labels: &[(&str, &str)]) -> SeriesMeta {
        SeriesMeta {
            id: SeriesId(id),
            labels: Labels::new(
                name,
                labels.iter().map(|(k, v)| (k.to_string(), v.to_string())),
            )
            .unwrap(),
            kind: MetricKind::Gauge,
            help: String::new(),
        }
    }

    #[test]
    fn slo_defaults_cover_nodes_probes_and_incidents() {
        let catalog = SeriesCatalog::new(vec![
            meta(1, "up", &[("node", "nas"), ("job", "node")]),
            meta(2, "hcmon_agent_samples_total", &[("node", "nas")]),
            meta(3, "hcmon_agent_samples_total", &[("node", "db")]),
            meta(
                4,
                "http_check_up",
                &[("node", "nas"), ("name", "web"), ("target", "http://x")],
            ),
            meta(5, "redis_up", &[("node", "db"), ("name", "cache")]),
        ]);
        let warnings = BTreeMap::from([("http_check_duration_seconds".to_owned(), 0.25)]);
        let defs = default_objectives(&catalog, &SloConfig::default(), &warnings);
        let names: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "node:db:availability",
                "node:nas:availability",
                "probe:cache:availability",
                "probe:cache:latency",
                "probe:web:availability",
                "probe:web:latency",
                "incidents:response",
                "incidents:resolution",
            ]
        );
        for def in &defs {
            def.validate().unwrap();
            assert_eq!((def.target, def.origin), (0.95, Origin::Default));
        }
        assert_eq!(defs[1].selector, r#"{node="nas"}"#);
        let threshold = |i: usize| match defs[i].sli {
            Sli::Latency { threshold_ms, .. } => threshold_ms,
            _ => panic!("not latency"),
        };
        assert_eq!(threshold(3), 100.0); // redis default
        assert_eq!(threshold(5), 250.0); // the alert rule's warning level
        let off = SloConfig {
            defaults: false,
            ..SloConfig::default()
        };
        assert!(default_objectives(&catalog, &off, &warnings).is_empty());
    }
}

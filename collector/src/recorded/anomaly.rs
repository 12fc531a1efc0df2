//! The anomaly verdicts per node, kept as series so PromQL has their history (`/metrics` shows
//! only the newest): `hcmon_node_anomaly_score{node, job, instance}`, the node's Isolation
//! Forest score (0..1), once per verdict; and `hcmon_anomalous_series{node, job, instance}`,
//! how many of the node's series the per-series engine flags now, every round.

use super::node_labels;
use super::writer::{Family, Round, Tracked};
use crate::anomaly_watch::{AnomalyWatch, LatestVerdict};
use crate::catalog::SeriesCatalog;
use crate::clock::Clock;
use crate::ingest::IngestService;
use crate::node_forest::{NodeForests, NodeVerdict};
use crate::tasks;
use hcmon_common::{MatchOp, Matcher, Selector};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const NODE_SCORE: Family = Family {
    name: crate::telemetry::NODE_ANOMALY_SCORE,
    help: "Model score (0..1; Isolation Forest or One-Class SVM) of a node's newest complete minute, once per verdict (written by the collector).",
};

pub const ANOMALOUS_SERIES: Family = Family {
    name: "hcmon_anomalous_series",
    help: "How many of the node's series the anomaly engine flags now (written by the collector).",
};

/// What a round knows about one node.
#[derive(Debug, Clone)]
pub struct NodeFacts {
    pub node: String,
    /// `node`, `job` and `instance`.
    pub labels: [(String, String); 3],
    /// The node's newest Isolation Forest verdict, if it has a model.
    pub verdict: Option<NodeVerdict>,
    /// How many of its series are flagged now; none without the per-series engine.
    pub anomalous: Option<usize>,
}

/// Whether a series' newest verdict flags it now: an anomaly, judged on a sample newer than
/// `oldest_ms` (a series that stopped reporting is not flagged forever).
pub fn flags(verdict: &LatestVerdict, oldest_ms: i64) -> bool {
    verdict.is_anomaly && verdict.timestamp_ms >= oldest_ms
}

/// One round: each node's score when its verdict is newer than the one last written
/// (`written`, minute per node), and its flagged series count.
pub fn round(nodes: &[NodeFacts], written: &BTreeMap<String, i64>) -> Round {
    let mut out = Round::default();
    for facts in nodes {
        let labels = facts.labels.clone();
        if let Some(verdict) = &facts.verdict
            && let Ok(score) = NODE_SCORE.sample(labels.clone(), verdict.score)
        {
            if written.get(&facts.node) >= Some(&verdict.minute_ms) {
                out.unchanged.push(score.labels);
            } else {
                out.samples.push(score);
            }
        }
        if let Some(count) = facts.anomalous
            && let Ok(sample) = ANOMALOUS_SERIES.sample(labels, count as f64)
        {
            out.samples.push(sample);
        }
    }
    out
}

/// What the anomaly writer reads.
pub struct Sources {
    pub ingest: Arc<IngestService>,
    pub catalog: Arc<SeriesCatalog>,
    pub watch: Option<Arc<AnomalyWatch>>,
    pub forests: Option<Arc<NodeForests>>,
}

/// Per node, how many of its series `watch` flags at `oldest_ms`. Blocking.
fn anomalous_counts(
    catalog: &SeriesCatalog,
    watch: &AnomalyWatch,
    nodes: &[String],
    oldest_ms: i64,
) -> BTreeMap<String, usize> {
    nodes
        .iter()
        .map(|node| {
            let count = match Matcher::new("node", MatchOp::Equal, node) {
                Ok(by_node) => catalog
                    .select(&Selector {
                        matchers: vec![by_node],
                    })
                    .iter()
                    .filter(|meta| watch.latest(meta.id).is_some_and(|v| flags(&v, oldest_ms)))
                    .count(),
                Err(_) => 0,
            };
            (node.clone(), count)
        })
        .collect()
}

/// Writes a round every `interval` until `shutdown`; a verdict counts as current for
/// `freshness` (the `/metrics` staleness).
pub async fn run(
    sources: Sources,
    mut tracked: Tracked,
    clock: Clock,
    (interval, freshness): (Duration, Duration),
    shutdown: CancellationToken,
) {
    let mut every = tokio::time::interval(interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut written: BTreeMap<String, i64> = BTreeMap::new();
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let statuses = sources.ingest.node_statuses().await;
        let names: Vec<String> = statuses.iter().map(|s| s.node.clone()).collect();
        let now = clock();
        let counts = match &sources.watch {
            Some(watch) => {
                let (catalog, watch) = (sources.catalog.clone(), watch.clone());
                let oldest = now - freshness.as_millis() as i64;
                let counted = tasks::blocking("recorded-anomaly", move || {
                    anomalous_counts(&catalog, &watch, &names, oldest)
                })
                .await;
                match counted {
                    Ok(counts) => Some(counts),
                    // Logged and counted by `tasks`; the next round counts again.
                    Err(_panicked) => continue,
                }
            }
            None => None,
        };
        let mut verdicts = sources
            .forests
            .as_ref()
            .map(|f| f.verdicts())
            .unwrap_or_default();
        let nodes: Vec<NodeFacts> = statuses
            .iter()
            .map(|s| NodeFacts {
                node: s.node.clone(),
                labels: node_labels(s),
                verdict: verdicts.remove(&s.node),
                anomalous: counts
                    .as_ref()
                    .map(|c| c.get(&s.node).copied().unwrap_or(0)),
            })
            .collect();
        if tracked.write(round(&nodes, &written), now).await {
            written = nodes
                .iter()
                .filter_map(|n| Some((n.node.clone(), n.verdict.as_ref()?.minute_ms)))
                .collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::anomaly::Severity;

    const MIN: i64 = 60_000;

    fn verdict(minute_ms: i64, score: f64) -> NodeVerdict {
        NodeVerdict {
            minute_ms,
            score,
            is_anomaly: score > 0.6,
            features: Vec::new(),
            trained_at_ms: 0,
            training_rows: 0,
            method: crate::analytics::forest::NodeModelMethod::IsolationForest,
        }
    }

    fn facts(node: &str, verdict: Option<NodeVerdict>, anomalous: Option<usize>) -> NodeFacts {
        NodeFacts {
            node: node.into(),
            labels: [
                ("node".to_owned(), node.to_owned()),
                ("job".to_owned(), "node".to_owned()),
                ("instance".to_owned(), node.to_owned()),
            ],
            verdict,
            anomalous,
        }
    }

    fn text(round: &Round) -> (Vec<String>, Vec<String>) {
        let samples = round
            .samples
            .iter()
            .map(|s| format!("{} {}", s.labels, s.value))
            .collect();
        let unchanged = round.unchanged.iter().map(ToString::to_string).collect();
        (samples, unchanged)
    }

    #[test]
    fn a_score_is_written_once_per_verdict_and_counts_every_round() {
        let nodes = [
            facts("nas", Some(verdict(10 * MIN, 0.7)), Some(3)),
            facts("db", Some(verdict(10 * MIN, 0.4)), Some(0)),
            facts("web", None, None),
        ];
        let written = BTreeMap::from([("db".to_owned(), 10 * MIN), ("nas".to_owned(), 9 * MIN)]);
        let (samples, unchanged) = text(&round(&nodes, &written));
        assert_eq!(
            samples,
            [
                r#"hcmon_node_anomaly_score{instance="nas",job="node",node="nas"} 0.7"#,
                r#"hcmon_anomalous_series{instance="nas",job="node",node="nas"} 3"#,
                r#"hcmon_anomalous_series{instance="db",job="node",node="db"} 0"#,
            ]
        );
        assert_eq!(
            unchanged,
            [r#"hcmon_node_anomaly_score{instance="db",job="node",node="db"}"#]
        );
    }

    #[test]
    fn only_fresh_anomalies_are_flagged() {
        let verdict = |timestamp_ms, is_anomaly| LatestVerdict {
            timestamp_ms,
            value: 1.0,
            score: 0.9,
            is_anomaly,
            severity: Severity::High,
            learning: false,
            fired: Box::default(),
        };
        assert!(flags(&verdict(100, true), 100));
        assert!(!flags(&verdict(99, true), 100));
        assert!(!flags(&verdict(100, false), 100));
    }
}

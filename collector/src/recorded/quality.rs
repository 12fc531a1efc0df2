//! Data quality, evaluated every `[quality] interval` and kept as series so its trend and
//! history are PromQL's (and the trend engine's, and reports'):
//! `hcmon_data_quality_score{node, job, instance, dimension}`, one per dimension and
//! `dimension="overall"`, per agent node. `/metrics` shows the newest evaluation under the same
//! name itself (with the worst series), so the stored family is left out there.

use super::node_labels;
use super::writer::{Family, Round, Tracked};
use crate::clock::Clock;
use crate::ingest::{IngestService, NodeStatus};
use crate::quality::{Dimension, NodeReport, QualityTracker};
use crate::tasks;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const SCORE: Family = Family {
    name: crate::telemetry::DATA_QUALITY_SCORE,
    help: "Data-quality score (0..1) of a node's data per dimension, and overall (written by the collector).",
};

/// The `dimension` label of the overall score.
pub const OVERALL: &str = "overall";

/// One round: every agent node's six scores. Remote-written series have no node and are
/// scored per series only.
pub fn round(reports: &[NodeReport], statuses: &HashMap<String, &NodeStatus>) -> Round {
    let mut out = Round::default();
    for report in reports {
        let Some(status) = statuses.get(&report.node) else {
            continue;
        };
        let scores = Dimension::ALL
            .iter()
            .map(|d| (d.as_str(), report.scores.get(*d)))
            .chain([(OVERALL, report.overall)]);
        for (dimension, score) in scores {
            let labels = node_labels(status)
                .into_iter()
                .chain([("dimension".to_owned(), dimension.to_owned())]);
            if let Ok(sample) = SCORE.sample(labels, score) {
                out.samples.push(sample);
            }
        }
    }
    out
}

/// Evaluates every `interval` until `shutdown`, writing each round when `tracked` is given
/// (`[recorded] enabled`).
pub async fn run(
    tracker: Arc<QualityTracker>,
    ingest: Arc<IngestService>,
    mut tracked: Option<Tracked>,
    clock: Clock,
    interval: Duration,
    shutdown: CancellationToken,
) {
    let mut every = tokio::time::interval(interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let evaluating = tracker.clone();
        let Ok(report) = tasks::blocking("quality-evaluate", move || evaluating.evaluate()).await
        else {
            // Logged and counted by `tasks`; the next round evaluates again.
            continue;
        };
        if let Some(tracked) = &mut tracked {
            let statuses = ingest.node_statuses().await;
            let by_node: HashMap<String, &NodeStatus> =
                statuses.iter().map(|s| (s.node.clone(), s)).collect();
            tracked.write(round(&report.nodes, &by_node), clock()).await;
        }
    }
}

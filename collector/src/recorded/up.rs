//! `up{job, instance, node}`: 1 for an agent that is streaming, 0 for one that is registered
//! but disconnected or silent, as Prometheus writes `up` for each target it scrapes.

use super::node_labels;
use super::writer::{Family, Round, Tracked};
use crate::clock::Clock;
use crate::ingest::{IngestService, NodeStatus};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const UP: Family = Family {
    name: "up",
    help: "1 when the node's agent is streaming, 0 when it is registered but disconnected or has sent nothing for a while (written by the collector).",
};

/// Whether the agent of `node` is up at `now_ms`: its stream is open and it sent a batch (or
/// registered) within `silent_after_ms`.
pub fn is_up(node: &NodeStatus, now_ms: i64, silent_after_ms: i64) -> bool {
    let heard = node.last_batch_at_ms.max(node.registered_at_ms);
    node.connected && now_ms - heard <= silent_after_ms
}

/// The `up` samples of every node at `now_ms`.
pub fn round(nodes: &[NodeStatus], now_ms: i64, silent_after_ms: i64) -> Round {
    let samples = nodes
        .iter()
        .filter_map(|node| {
            let up = is_up(node, now_ms, silent_after_ms);
            // Node names and target labels were checked at registration.
            UP.sample(node_labels(node), f64::from(u8::from(up))).ok()
        })
        .collect();
    Round {
        samples,
        unchanged: Vec::new(),
    }
}

/// Writes `up` every `interval` until `shutdown`.
pub async fn run(
    ingest: Arc<IngestService>,
    mut tracked: Tracked,
    clock: Clock,
    (interval, silent_after): (Duration, Duration),
    shutdown: CancellationToken,
) {
    let mut every = tokio::time::interval(interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let silent_after_ms = silent_after.as_millis() as i64;
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let nodes = ingest.node_statuses().await;
        let now = clock();
        tracked
            .write(round(&nodes, now, silent_after_ms), now)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::TargetLabels;
    use crate::storage::HostInfo;

    const NOW: i64 = 1_700_000_000_000;

    fn node(name: &str, connected: bool, last_batch_at_ms: i64) -> NodeStatus {
        NodeStatus {
            node: name.into(),
            connected,
            agent_version: String::new(),
            host: HostInfo::default(),
            registered_at_ms: NOW - 3_600_000,
            last_batch_at_ms,
            last_durable_seq: 0,
            lost_batches: 0,
            target: TargetLabels::new(name, "", ""),
        }
    }

    fn check(nodes: &[NodeStatus], expected: &[&str]) {
        let written: Vec<String> = round(nodes, NOW, 30_000)
            .samples
            .iter()
            .map(|s| format!("{} {}", s.labels, s.value))
            .collect();
        assert_eq!(written, expected);
    }

    #[test]
    fn streaming_agents_are_up_and_closed_or_silent_ones_down() {
        check(
            &[
                node("nas", true, NOW - 10_000),
                node("db", true, NOW - 31_000),
                node("web", false, NOW - 1_000),
            ],
            &[
                r#"up{instance="nas",job="node",node="nas"} 1"#,
                r#"up{instance="db",job="node",node="db"} 0"#,
                r#"up{instance="web",job="node",node="web"} 0"#,
            ],
        );
        let mut custom = node("nas", true, NOW);
        custom.target = TargetLabels::new("nas", "hosts", "nas:9100");
        check(
            &[custom],
            &[r#"up{instance="nas:9100",job="hosts",node="nas"} 1"#],
        );
    }

    #[test]
    fn a_fresh_registration_counts_as_heard_from() {
        let mut fresh = node("nas", true, 0);
        fresh.registered_at_ms = NOW - 5_000;
        assert!(is_up(&fresh, NOW, 30_000));
        fresh.registered_at_ms = NOW - 60_000;
        assert!(!is_up(&fresh, NOW, 30_000));
    }
}

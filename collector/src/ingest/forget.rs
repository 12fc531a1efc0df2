//! Forgetting nodes: an operator's command, or automatically once a node has been silent for
//! `forget_nodes_after`.
//!
//! A node name that stops reporting (a decommissioned box, a typo, a hostile peer inventing
//! names) would otherwise keep its `AgentSilent`/`AgentDisconnected` alerts firing forever.
//! Forgetting removes what ingest remembers (the durable node record, its session, its
//! disconnected-since time); the node's series stay queryable. An agent that comes back under
//! a forgotten name registers as a new node and is stored from its next batch on.

use super::{IngestService, lock};

/// Why a node could not be forgotten.
#[derive(Debug, thiserror::Error)]
pub enum ForgetError {
    #[error("no node named {0:?} is known")]
    Unknown(String),
    #[error(
        "node {0:?} has an agent streaming right now; stop that agent first, or it would register again at once"
    )]
    Connected(String),
    #[error("storage failure")]
    Store(#[from] crate::storage::StoreError),
}

impl IngestService {
    /// Forgets `node`: refused while its agent streams.
    pub async fn forget_node(&self, node: &str) -> Result<(), ForgetError> {
        let Some(cell) = lock(&self.nodes).get(node).cloned() else {
            return Err(ForgetError::Unknown(node.to_owned()));
        };
        // Holding the node's lock, no batch of it is half-processed while its record goes.
        let _record = cell.lock().await;
        if lock(&self.streams).contains_key(node) {
            return Err(ForgetError::Connected(node.to_owned()));
        }
        let (tsdb, name) = (self.tsdb.clone(), node.to_owned());
        tokio::task::spawn_blocking(move || tsdb.delete_node(&name))
            .await
            .map_err(|_| {
                ForgetError::Store(crate::storage::StoreError::Write(
                    "the store task panicked".into(),
                ))
            })??;
        lock(&self.nodes).remove(node);
        lock(&self.disconnected).remove(node);
        lock(&self.sessions).retain(|_, session| session.node != node);
        tracing::info!(%node, "node forgotten");
        Ok(())
    }

    /// Nodes without a stream whose last sign of life (a batch, a registration or, for nodes
    /// known before this start, the start itself) is older than `now_ms - idle_ms`.
    pub async fn idle_nodes(&self, now_ms: i64, idle_ms: i64) -> Vec<String> {
        let cells: Vec<_> = lock(&self.nodes)
            .iter()
            .map(|(node, cell)| (node.clone(), cell.clone()))
            .collect();
        let mut idle = Vec::new();
        for (node, cell) in cells {
            if lock(&self.streams).contains_key(&node) {
                continue;
            }
            let closed_at = lock(&self.disconnected).get(&node).copied().unwrap_or(0);
            let record = cell.lock().await;
            let last_seen = closed_at
                .max(record.last_batch_at_ms)
                .max(record.registered_at_ms);
            if now_ms.saturating_sub(last_seen) > idle_ms {
                idle.push(node);
            }
        }
        idle.sort();
        idle
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::SeriesCatalog;
    use crate::config::IngestLimits;
    use crate::storage::{MemoryKv, StorageConfig, Tsdb};
    use crate::telemetry::CollectorMetrics;
    use hcmon_proto::v1::RegisterRequest;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};

    const START: i64 = 1_700_000_000_000;

    fn service(disk: &MemoryKv, now: Arc<AtomicI64>) -> Arc<IngestService> {
        let crate::storage::Recovered {
            tsdb,
            series,
            nodes,
        } = Tsdb::open(Box::new(disk.clone()), StorageConfig::default()).unwrap();
        IngestService::new(
            Arc::new(tsdb),
            Arc::new(SeriesCatalog::new(series)),
            nodes,
            Arc::new(CollectorMetrics::new()),
            IngestLimits::default(),
            String::new(),
            Arc::new(move || now.load(Ordering::SeqCst)),
        )
    }

    async fn register(svc: &IngestService, node: &str) -> String {
        svc.register(RegisterRequest {
            node_name: node.into(),
            spool_epoch: 7,
            ..Default::default()
        })
        .await
        .unwrap()
        .session_id
    }

    async fn names(svc: &IngestService) -> Vec<String> {
        svc.node_statuses()
            .await
            .into_iter()
            .map(|s| s.node)
            .collect()
    }

    #[tokio::test]
    async fn a_forgotten_node_is_gone_across_restarts_and_a_streaming_one_is_kept() {
        let disk = MemoryKv::default();
        let now = Arc::new(AtomicI64::new(START));
        let svc = service(&disk, now.clone());
        register(&svc, "gone").await;
        let session = register(&svc, "live").await;
        let stream = svc.open_stream(Some(&session)).unwrap();

        let err = svc.forget_node("live").await.unwrap_err();
        assert!(matches!(err, ForgetError::Connected(_)), "{err}");
        let err = svc.forget_node("nobody").await.unwrap_err();
        assert!(matches!(err, ForgetError::Unknown(_)), "{err}");
        svc.forget_node("gone").await.unwrap();
        assert_eq!(names(&svc).await, ["live"]);
        assert!(svc.disconnected_nodes().iter().all(|(n, _)| n != "gone"));

        drop(stream);
        let svc = service(&disk, now);
        assert_eq!(names(&svc).await, ["live"], "forgetting is durable");
    }

    #[tokio::test]
    async fn only_nodes_silent_for_longer_than_the_limit_are_idle() {
        let disk = MemoryKv::default();
        let now = Arc::new(AtomicI64::new(START));
        let svc = service(&disk, now.clone());
        register(&svc, "old").await;
        now.store(START + 3_600_000, Ordering::SeqCst);
        register(&svc, "recent").await;
        let session = register(&svc, "streaming").await;
        let _stream = svc.open_stream(Some(&session)).unwrap();
        now.store(START + 2 * 3_600_000, Ordering::SeqCst);

        assert_eq!(
            svc.idle_nodes(START + 2 * 3_600_000, 90 * 60_000).await,
            ["old"]
        );
        assert!(svc.idle_nodes(START + 2 * 3_600_000, 3 * 3_600_000).await.is_empty());
    }
}

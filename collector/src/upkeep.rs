//! The collector's periodic background work: storage checkpoints and retention, and the
//! per-node Isolation Forests' training and scoring. Each loop ends at shutdown between two
//! units of work; the work runs on the blocking pool, off the async workers and the ingest path.

use crate::clock::Clock;
use crate::node_forest::NodeForests;
use crate::storage::{CheckpointReport, StoreError, Tsdb};
use crate::tasks;
use crate::telemetry::CollectorMetrics;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Checkpoints on their interval (timed on `/metrics`), retention every ten minutes.
pub async fn maintain_storage(
    tsdb: Arc<Tsdb>,
    clock: Clock,
    metrics: Arc<CollectorMetrics>,
    shutdown: CancellationToken,
) {
    const RETENTION_EVERY: Duration = Duration::from_secs(600);
    let mut checkpoints = tokio::time::interval(tsdb.config().checkpoint_interval);
    let mut retention = tokio::time::interval(RETENTION_EVERY);
    checkpoints.tick().await;
    loop {
        type Work = fn(&Tsdb, i64) -> Result<Option<CheckpointReport>, StoreError>;
        let work: Work = tokio::select! {
            _ = checkpoints.tick() => |db, _| db.checkpoint(false).map(Some),
            _ = retention.tick() => |db, now| db.enforce_retention(now).map(|_| None),
            _ = shutdown.cancelled() => return,
        };
        let db = tsdb.clone();
        let now = clock();
        let started = std::time::Instant::now();
        match tasks::blocking("storage-upkeep", move || work(&db, now)).await {
            Ok(Ok(Some(report))) => {
                let seconds = |part: &str, took: Duration| {
                    metrics
                        .checkpoint_seconds
                        .with_label_values(&[part])
                        .observe(took.as_secs_f64())
                };
                seconds("appends_held", report.appends_held);
                seconds("write", report.write);
                seconds("total", report.total);
                metrics.checkpoint_bytes.set(report.bytes as i64);
                tracing::debug!(?report, "checkpoint done");
            }
            Ok(Ok(None)) => tracing::debug!(elapsed = ?started.elapsed(), "storage upkeep done"),
            Ok(Err(error)) => {
                tracing::error!(%error, "storage upkeep failed; the WAL keeps the data")
            }
            // Logged and counted; the next round tries again.
            Err(_panicked) => {}
        }
    }
}

/// Trains the node models at start and every `retrain_every`, and scores every minute.
pub async fn analyse_nodes(forests: Arc<NodeForests>, clock: Clock, shutdown: CancellationToken) {
    let mut training = tokio::time::interval(forests.config().retrain_every);
    let mut scoring = tokio::time::interval(Duration::from_secs(60));
    loop {
        let train = tokio::select! {
            _ = training.tick() => true,
            _ = scoring.tick() => false,
            _ = shutdown.cancelled() => return,
        };
        let (forests, now) = (forests.clone(), clock());
        let work = tasks::blocking("node-models", move || {
            if train {
                let trained = forests.train_all(now)?;
                tracing::debug!(trained, "node models trained");
            }
            forests.score_all(now)
        });
        match work.await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(%error, "node anomaly models could not read their history")
            }
            // Logged and counted; the next round tries again.
            Err(_panicked) => {}
        }
    }
}

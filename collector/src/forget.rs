//! Forgetting a node in every part that remembers it: ingest (its record and session), then
//! alerting (its missing-data alerts resolve). Used by `DELETE /api/v1/agents/{node}` and by the
//! background task that forgets nodes silent for longer than `forget_nodes_after`.

use crate::alerting::handle::Alerting;
use crate::clock::Clock;
use crate::ingest::{ForgetError, Forgotten, Idle, IngestService, SeriesFate};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Forgets `node`; refused while its agent streams.
pub async fn forget_node(
    ingest: &IngestService,
    alerting: Option<&Alerting>,
    node: &str,
    series: SeriesFate,
) -> Result<Forgotten, ForgetError> {
    let forgotten = ingest.forget_node(node, series).await?;
    forget_alerts(alerting, node).await;
    Ok(forgotten)
}

/// Forgets a node the sweep found idle, if it still is once its lock is held.
async fn forget_idle_node(
    ingest: &IngestService,
    alerting: Option<&Alerting>,
    node: &str,
    idle: Idle,
) -> Result<Forgotten, ForgetError> {
    let forgotten = ingest.forget_idle_node(node, idle).await?;
    forget_alerts(alerting, node).await;
    Ok(forgotten)
}

async fn forget_alerts(alerting: Option<&Alerting>, node: &str) {
    if let Some(alerting) = alerting
        && let Err(error) = alerting.forget_node(node).await
    {
        tracing::warn!(%node, %error, "alerting did not take the forgotten node");
    }
}

/// Every `check_every`, forgets the nodes with no sign of life for longer than `after`.
pub async fn forget_idle_nodes(
    ingest: Arc<IngestService>,
    alerting: Option<Alerting>,
    clock: Clock,
    after: Duration,
    shutdown: CancellationToken,
) {
    // Often enough that a forgotten node's alerts do not linger, rarely enough to cost nothing.
    let check_every = (after / 10).clamp(Duration::from_secs(1), Duration::from_secs(600));
    let mut ticks = tokio::time::interval(check_every);
    let after_ms = i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let now_ms = clock();
        for node in ingest.idle_nodes(now_ms, after_ms).await {
            let idle = Idle {
                now_ms,
                idle_ms: after_ms,
            };
            match forget_idle_node(&ingest, alerting.as_ref(), &node, idle).await {
                Ok(_) => tracing::info!(
                    %node,
                    after = %humantime::format_duration(after),
                    "forgot a node silent for longer than forget_nodes_after"
                ),
                // It reconnected between the check and now: nothing to forget.
                Err(ForgetError::Connected(_) | ForgetError::Unknown(_)) => {}
                Err(error) => tracing::warn!(%node, %error, "could not forget an idle node"),
            }
        }
    }
}

//! How late the async runtime runs a task that is ready: a timer's task measures its own
//! wake-up, on `/metrics` as `hcmon_collector_runtime_lag_seconds`.
//!
//! Every connection's reads and acks are tasks on the same few runtime threads, so work that
//! holds one of them (a long synchronous section in an async task) delays them all, before any
//! of ingest's own stages start. This is the figure that tells that wait apart from a slow
//! store.

use prometheus::Histogram;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often the probe wakes: short enough to catch a stall of a few tens of milliseconds,
/// long enough to cost nothing.
const PERIOD: Duration = Duration::from_millis(50);

/// Observes, every [`PERIOD`], how long after its timer fired the probe ran, until shutdown.
pub async fn probe(lag: Histogram, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(PERIOD);
    // A stall is counted once, not again as a burst of catch-up ticks.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let due = tokio::select! {
            due = tick.tick() => due,
            _ = shutdown.cancelled() => return,
        };
        lag.observe(
            Instant::now()
                .saturating_duration_since(due.into_std())
                .as_secs_f64(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::CollectorMetrics;

    /// A task that holds the runtime's only thread shows up as the probe's lag.
    #[tokio::test(flavor = "current_thread")]
    async fn a_held_runtime_thread_shows_as_lag() {
        let metrics = CollectorMetrics::new();
        let shutdown = CancellationToken::new();
        let probing = tokio::spawn(probe(metrics.runtime_lag_seconds.clone(), shutdown.clone()));
        tokio::time::sleep(PERIOD * 2).await;
        // Blocks the one thread, as a long synchronous section in an async task would.
        std::thread::sleep(Duration::from_millis(300));
        tokio::time::sleep(PERIOD * 2).await;
        shutdown.cancel();
        probing.await.unwrap();
        let lag = &metrics.runtime_lag_seconds;
        assert!(lag.get_sample_count() >= 3);
        assert!(lag.get_sample_sum() >= 0.2, "{}", lag.get_sample_sum());
    }
}

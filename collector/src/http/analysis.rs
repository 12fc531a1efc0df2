//! Where the on-demand analyses (`/api/v1/trend`, `/related`, `/correlations`) run: never on an
//! async worker, whose stall would stop `/healthz`, the API and gRPC ingest with it.
//!
//! - **Off the workers, a few at a time.** Each analysis reads the store and computes on the
//!   blocking pool, holding one of [`Analyses`]' slots: one per core but one, so a core stays
//!   for ingest and the API however many analyses are asked for. The rest wait their turn.
//! - **Bounded in time.** Each request has [`ANALYSIS_TIME_LIMIT`] from its arrival, waiting
//!   included. The engines are pure and never read the clock, so the limit reaches them as a
//!   [`Budget`] whose test reads it; past the limit they stop and the request is answered 503
//!   with Prometheus' `timeout` error type and what to ask for instead. (Input sizes are bounded
//!   before that by the handlers, which refuse a request that could not fit.)
//! - **Stopped when nobody waits.** hyper drops a handler's future when its client disconnects;
//!   a guard in that future then raises the flag the budget also reads, so the blocking work
//!   stops too and frees its slot.

use super::error::ApiError;
use crate::analysis::AnalysisError;
use crate::analysis::history::HistoryError;
use crate::analytics::budget::Budget;
use crate::telemetry::CollectorMetrics;
use prometheus::IntGauge;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::time::Instant;

/// Longest an analysis request may take, waiting for a slot included.
const ANALYSIS_TIME_LIMIT: Duration = Duration::from_secs(15);

/// The slots analyses run in; cloned into every request.
#[derive(Clone)]
pub struct Analyses {
    slots: Arc<Semaphore>,
}

impl Analyses {
    /// One slot per core but one, and at least one.
    pub fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        Self {
            slots: Arc::new(Semaphore::new(cores.saturating_sub(1).max(1))),
        }
    }

    /// Runs `work` on the blocking pool in a slot, with a budget that stops it at the time limit
    /// or when the client goes away. A stopped analysis is answered with [`ApiError::Timeout`],
    /// naming `request` and giving `advice` (what to ask for instead).
    pub async fn run<T: Send + 'static>(
        &self,
        metrics: &Arc<CollectorMetrics>,
        request: &'static str,
        advice: &'static str,
        work: impl FnOnce(&Budget) -> Result<T, AnalysisError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let deadline = Instant::now() + ANALYSIS_TIME_LIMIT;
        let timeout = || ApiError::Timeout {
            request,
            limit: ANALYSIS_TIME_LIMIT,
            advice,
        };
        let stopped = |metrics: &CollectorMetrics, reason: &str| {
            metrics.analyses_stopped.with_label_values(&[reason]).inc();
        };
        let waited = tokio::time::timeout_at(deadline, self.slots.clone().acquire_owned()).await;
        // The semaphore is never closed, so the only failure is the deadline.
        let Ok(Ok(slot)) = waited else {
            stopped(metrics, "time_limit");
            return Err(timeout());
        };
        let cancelled = Arc::new(AtomicBool::new(false));
        let _guard = CancelOnDrop(cancelled.clone());
        let metrics = metrics.clone();
        let task = crate::tasks::blocking(request, move || {
            // Held until the work has really stopped, even when the request is long gone.
            let _slot = slot;
            let _running = Running::enter(metrics.analyses_running.clone());
            let deadline = deadline.into_std();
            let should_stop =
                || cancelled.load(Ordering::Relaxed) || std::time::Instant::now() >= deadline;
            let outcome = work(&Budget::new(&should_stop));
            if let Err(AnalysisError::Interrupted(_)) = outcome {
                // Counted here: when the client left, nothing awaits this task any more.
                let gone = cancelled.load(Ordering::Relaxed);
                stopped(&metrics, if gone { "client_gone" } else { "time_limit" });
            }
            outcome
        });
        match task.await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(AnalysisError::Store(e))) => Err(ApiError::Store(e)),
            Ok(Err(AnalysisError::Interrupted(_))) => Err(timeout()),
            Ok(Err(AnalysisError::History(HistoryError::Store(e)))) => Err(ApiError::Store(e)),
            // The remote history is another server: 503, as for a part that is down.
            Ok(Err(AnalysisError::History(e))) => Err(ApiError::Unavailable(e.to_string())),
            Err(panicked) => Err(panicked.into()),
        }
    }
}

/// Raises its flag when dropped, as the handler's future is when its client disconnects.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Counts an analysis as running for as long as it lives, panics included.
struct Running(IntGauge);

impl Running {
    fn enter(gauge: IntGauge) -> Self {
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.dec();
    }
}

//! The collector's one source of wall-clock time, injectable so tests can move it.
//!
//! Alerting, ingest and the upkeep tasks read time only through a [`Clock`], so a test clock
//! drives hour-long escalations in milliseconds.

use std::sync::Arc;

/// Milliseconds since the Unix epoch.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The wall clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    })
}

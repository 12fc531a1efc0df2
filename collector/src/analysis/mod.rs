//! On-demand analyses over stored history: read windows of series from the store and hand
//! them to the pure engines in `analytics/`. Blocking (they read the store); callers run them
//! off the async workers. Layer: above ingest, query, catalog and storage; below `http/` and
//! `alerting/`. No transport, no alerting.

pub mod history;
pub mod related;
mod remote_answers;

use crate::analytics::budget::{Budget, Interrupted};
use crate::analytics::correlation::SeriesWindow;
use crate::storage::{SeriesMeta, StoreError};
use history::History;

/// Why an analysis ended without an answer.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Interrupted(#[from] Interrupted),
    #[error(transparent)]
    History(#[from] history::HistoryError),
}

/// The samples of each of `series` over `[start_ms, end_ms]` (from the remote history too, when
/// configured), each named by its labels, asking `budget` before each read.
pub fn read_windows<'a>(
    history: &History,
    series: impl IntoIterator<Item = &'a SeriesMeta>,
    start_ms: i64,
    end_ms: i64,
    budget: &Budget,
) -> Result<Vec<SeriesWindow>, AnalysisError> {
    series
        .into_iter()
        .map(|meta| {
            budget.check()?;
            let samples = history.read_raw(meta, start_ms, end_ms)?;
            Ok(SeriesWindow::new(meta.labels.to_string(), samples))
        })
        .collect()
}

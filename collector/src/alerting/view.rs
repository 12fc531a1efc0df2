//! What the API reads: a snapshot of every alert (with why it is muted, if it is) and every
//! silence, made by the service's loop after each change and swapped in whole, so a reader
//! never waits for the loop nor sees half a change.

use super::book::{AlertBook, AlertRecord, SilenceRecord};
use std::sync::{Arc, RwLock};

/// One alert as the API lists it.
#[derive(Debug, Clone)]
pub struct AlertView {
    pub record: Arc<AlertRecord>,
    /// Why it is not notified now (silenced, inhibited), if so.
    pub muted: Option<String>,
}

/// Every alert and silence at one moment.
#[derive(Debug, Clone, Default)]
pub struct AlertsView {
    pub alerts: Vec<AlertView>,
    pub silences: Vec<SilenceRecord>,
}

impl AlertsView {
    /// The book as it stands at `now_ms`.
    pub(super) fn of(book: &AlertBook, now_ms: i64) -> Self {
        let down = book.down_nodes();
        Self {
            alerts: book
                .shared_alerts()
                .map(|record| AlertView {
                    muted: book.muted(&record.id, &down, now_ms),
                    record: record.clone(),
                })
                .collect(),
            silences: book.silences().cloned().collect(),
        }
    }
}

/// The latest snapshot, shared between the loop that makes it and the API that reads it.
#[derive(Clone, Default)]
pub(super) struct Published(Arc<RwLock<Arc<AlertsView>>>);

impl Published {
    pub(super) fn get(&self) -> Arc<AlertsView> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(super) fn set(&self, view: AlertsView) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(view);
    }
}

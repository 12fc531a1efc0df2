//! What ingest tells the rest of the collector: every batch it just stored.
//!
//! A batch is told once its samples are in the head, just before the sync that makes them
//! durable (ingest acks only after that sync). A failed sync fails the whole store until a
//! restart, so an engine never goes on from samples the store lost.
//!
//! Observers (the alert feed, the live anomaly watch) are handed to [`IngestService::new`]
//! at construction and never set afterwards, so ingest depends on this trait only, never on
//! the layers above it that implement it.
//!
//! [`IngestService::new`]: super::IngestService::new

use crate::storage::Sample;
use std::sync::Arc;

/// A batch whose samples are stored, as its observers see it.
pub struct StoredBatch {
    /// The agent that sent it; `None` for remote write.
    pub node: Option<String>,
    /// The stored samples, grouped by series in the order they were stored (shared, so no
    /// observer copies them).
    pub samples: Arc<Vec<Sample>>,
}

/// Sees every stored batch, on the ingest path and under the node's lock (so per node in
/// stored order): it must return quickly and never block on I/O; anything slow is queued.
/// Ingest may call it on an async runtime's thread, but only after [`BatchObserver::has_room`]
/// said it would not wait.
pub trait BatchObserver: Send + Sync {
    fn stored(&self, batch: &StoredBatch);

    /// Whether [`BatchObserver::stored`] would take a batch of `samples` samples now without
    /// waiting for room (an observer whose queue is bounded makes ingest wait when it is full).
    fn has_room(&self, _samples: usize) -> bool {
        true
    }

    /// A batch of `samples` samples from `node` was refused as invalid (nothing stored).
    fn refused(&self, _node: Option<&str>, _samples: usize) {}
}

/// The observers of one collector, told in the order they were given.
#[derive(Clone, Default)]
pub struct Observers(Vec<Arc<dyn BatchObserver>>);

impl Observers {
    pub fn new(observers: Vec<Arc<dyn BatchObserver>>) -> Self {
        Self(observers)
    }

    /// Whether every observer would take a batch of `samples` samples now without waiting.
    pub fn have_room(&self, samples: usize) -> bool {
        self.0.iter().all(|observer| observer.has_room(samples))
    }

    /// Tells every observer a batch was refused as invalid.
    pub fn refused(&self, node: Option<&str>, samples: usize) {
        for observer in &self.0 {
            observer.refused(node, samples);
        }
    }

    /// Tells every observer about `samples`, just stored.
    pub fn stored(&self, node: Option<&str>, samples: Vec<Sample>) {
        if self.0.is_empty() {
            return;
        }
        let batch = StoredBatch {
            node: node.map(str::to_owned),
            samples: Arc::new(samples),
        };
        for observer in &self.0 {
            observer.stored(&batch);
        }
    }
}

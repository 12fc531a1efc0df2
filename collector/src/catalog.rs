//! The in-memory series catalog: label set ↔ series id, plus each series' latest sample.
//!
//! Rebuilt from the store at start-up; afterwards updated only after a write is durable, so it
//! never names a series the store does not have.

use crate::storage::{SeriesId, SeriesMeta, Store, StoreError};
use hcmon_common::{Labels, Selector};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// The latest sample of a series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latest {
    pub timestamp_ms: i64,
    pub value: f64,
}

#[derive(Default)]
struct Inner {
    by_labels: HashMap<Labels, SeriesId>,
    by_id: HashMap<SeriesId, Arc<SeriesMeta>>,
    latest: HashMap<SeriesId, Latest>,
}

pub struct SeriesCatalog {
    inner: RwLock<Inner>,
    next_id: AtomicU64,
}

impl SeriesCatalog {
    /// Loads every series and its newest sample from the store.
    pub fn load(store: &dyn Store) -> Result<Self, StoreError> {
        let mut inner = Inner::default();
        let mut max_id = 0;
        for meta in store.load_series()? {
            max_id = max_id.max(meta.id.0);
            if let Some((timestamp_ms, value)) = store.last_sample(meta.id)? {
                inner.latest.insert(
                    meta.id,
                    Latest {
                        timestamp_ms,
                        value,
                    },
                );
            }
            inner.by_labels.insert(meta.labels.clone(), meta.id);
            inner.by_id.insert(meta.id, Arc::new(meta));
        }
        Ok(Self {
            inner: RwLock::new(inner),
            next_id: AtomicU64::new(max_id + 1),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The id of a known series.
    pub fn lookup(&self, labels: &Labels) -> Option<SeriesId> {
        self.read().by_labels.get(labels).copied()
    }

    /// A fresh id for a series about to be written. Ids of failed writes are simply never used.
    pub fn allocate(&self) -> SeriesId {
        SeriesId(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Adds series whose definitions are now durable.
    pub fn insert(&self, metas: &[SeriesMeta]) {
        let mut inner = self.write();
        for meta in metas {
            inner.by_labels.insert(meta.labels.clone(), meta.id);
            inner.by_id.insert(meta.id, Arc::new(meta.clone()));
        }
    }

    /// Records durable samples as the latest of their series when they are newer.
    pub fn observe(&self, samples: impl IntoIterator<Item = (SeriesId, i64, f64)>) {
        let mut inner = self.write();
        for (id, timestamp_ms, value) in samples {
            let entry = inner.latest.entry(id).or_insert(Latest {
                timestamp_ms,
                value,
            });
            if timestamp_ms >= entry.timestamp_ms {
                *entry = Latest {
                    timestamp_ms,
                    value,
                };
            }
        }
    }

    /// Every series matching a selector, sorted by metric name, then labels.
    pub fn select(&self, selector: &Selector) -> Vec<Arc<SeriesMeta>> {
        let mut out: Vec<_> = self
            .read()
            .by_id
            .values()
            .filter(|m| selector.matches(&m.labels))
            .cloned()
            .collect();
        out.sort_by(|a, b| by_name_then_labels(&a.labels, &b.labels));
        out
    }

    /// Every series with its latest sample, sorted by metric name, then labels.
    pub fn snapshot(&self) -> Vec<(Arc<SeriesMeta>, Option<Latest>)> {
        let inner = self.read();
        let mut out: Vec<_> = inner
            .by_id
            .values()
            .map(|m| (m.clone(), inner.latest.get(&m.id).copied()))
            .collect();
        out.sort_by(|a, b| by_name_then_labels(&a.0.labels, &b.0.labels));
        out
    }

    /// Number of series known.
    pub fn len(&self) -> usize {
        self.read().by_id.len()
    }

    /// Whether no series is known yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Orders series so that all series of one metric name are adjacent (label names may sort before
/// `__name__`, so plain label order does not guarantee that).
fn by_name_then_labels(a: &Labels, b: &Labels) -> std::cmp::Ordering {
    a.metric_name().cmp(b.metric_name()).then_with(|| a.cmp(b))
}

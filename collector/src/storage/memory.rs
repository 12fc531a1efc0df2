//! An in-memory [`Store`] for unit tests: same contract, nothing on disk.

use super::{IngestWrite, NodeRecord, SeriesId, SeriesMeta, Store, StoreError};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    series: Vec<SeriesMeta>,
    nodes: HashMap<String, NodeRecord>,
    samples: BTreeMap<(SeriesId, i64), f64>,
}

impl MemoryStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Store for MemoryStore {
    fn write(&self, write: IngestWrite<'_>) -> Result<(), StoreError> {
        let mut inner = self.lock();
        inner.series.extend_from_slice(write.new_series);
        inner
            .nodes
            .insert(write.node.to_owned(), write.record.clone());
        for s in write.samples {
            inner.samples.insert((s.series, s.timestamp_ms), s.value);
        }
        Ok(())
    }

    fn put_node(&self, node: &str, record: &NodeRecord) -> Result<(), StoreError> {
        self.lock().nodes.insert(node.to_owned(), record.clone());
        Ok(())
    }

    fn load_series(&self) -> Result<Vec<SeriesMeta>, StoreError> {
        Ok(self.lock().series.clone())
    }

    fn load_nodes(&self) -> Result<Vec<(String, NodeRecord)>, StoreError> {
        Ok(self
            .lock()
            .nodes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn read_range(
        &self,
        series: SeriesId,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<(i64, f64)>, StoreError> {
        if start_ms > end_ms {
            return Ok(Vec::new());
        }
        Ok(self
            .lock()
            .samples
            .range((series, start_ms)..=(series, end_ms))
            .map(|(&(_, ts), &v)| (ts, v))
            .collect())
    }

    fn last_sample(&self, series: SeriesId) -> Result<Option<(i64, f64)>, StoreError> {
        Ok(self
            .lock()
            .samples
            .range((series, i64::MIN)..=(series, i64::MAX))
            .next_back()
            .map(|(&(_, ts), &v)| (ts, v)))
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

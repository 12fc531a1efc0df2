//! An in-memory [`Kv`] for unit tests: same contract, nothing on disk. Clones share their data,
//! so a test can "restart" an engine on the same "disk".

use super::StoreError;
use super::kv::{Kv, KvBatch, KvOp, Table, Visit};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

type Tables = HashMap<Table, BTreeMap<Vec<u8>, Vec<u8>>>;

#[derive(Default, Clone)]
pub struct MemoryKv {
    tables: Arc<Mutex<Tables>>,
    /// What a power cut would leave: the tables as of the last durable write. Kept only by a
    /// store made with [`MemoryKv::with_power_cuts`] (a copy per durable write).
    durable: Option<Arc<Mutex<Tables>>>,
}

impl MemoryKv {
    /// A store that can lose power: [`MemoryKv::power_cut`] drops every write after the last
    /// durable one, as a crash of the machine (not only of the process) may.
    pub fn with_power_cuts() -> Self {
        Self {
            durable: Some(Arc::default()),
            ..Self::default()
        }
    }

    /// Forgets the writes since the last durable one.
    pub fn power_cut(&self) {
        let durable = self.durable.as_ref().expect("made with_power_cuts");
        let kept = durable.lock().unwrap_or_else(|p| p.into_inner()).clone();
        *self.tables.lock().unwrap_or_else(|p| p.into_inner()) = kept;
    }
}

impl Kv for MemoryKv {
    fn write(&self, batch: KvBatch, durable: bool) -> Result<(), StoreError> {
        let mut tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        for op in batch.ops {
            match op {
                KvOp::Put(t, k, v) => {
                    tables.entry(t).or_default().insert(k, v);
                }
                KvOp::Delete(t, k) => {
                    tables.entry(t).or_default().remove(&k);
                }
                KvOp::DeleteRange(t, start, end) => {
                    let table = tables.entry(t).or_default();
                    let doomed: Vec<Vec<u8>> =
                        table.range(start..end).map(|(k, _)| k.clone()).collect();
                    for k in doomed {
                        table.remove(&k);
                    }
                }
            }
        }
        // A durable write keeps every write before it too (the `Kv::write` contract).
        if let (Some(kept), true) = (&self.durable, durable) {
            *kept.lock().unwrap_or_else(|p| p.into_inner()) = tables.clone();
        }
        Ok(())
    }

    fn scan(
        &self,
        table: Table,
        start: &[u8],
        end: &[u8],
        visit: &mut Visit<'_>,
    ) -> Result<(), StoreError> {
        if start >= end {
            return Ok(());
        }
        let tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = tables.get(&table) {
            for (k, v) in t.range(start.to_vec()..end.to_vec()) {
                if !visit(k, v) {
                    break;
                }
            }
        }
        Ok(())
    }

    fn disk_size(&self, table: Table) -> u64 {
        let tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        tables.get(&table).map_or(0, |t| {
            t.iter().map(|(k, v)| (k.len() + v.len()) as u64).sum()
        })
    }

    fn compact(&self, _table: Table) -> Result<(), StoreError> {
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

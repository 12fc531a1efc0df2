//! An in-memory [`Kv`] and [`Log`] for unit tests: same contracts, nothing on disk. Clones share
//! their data, so a test can "restart" an engine on the same "disk".

use super::StoreError;
use super::kv::{Kv, KvBatch, KvOp, Table, Visit};
use super::log::{Log, LogVisit};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

type Tables = HashMap<Table, BTreeMap<Vec<u8>, Vec<u8>>>;

#[derive(Default, Clone)]
pub struct MemoryKv {
    tables: Arc<Mutex<Tables>>,
    /// What a power cut would leave: the tables as of the last durable write. Kept only by a
    /// store made with [`MemoryKv::with_power_cuts`] (a copy per durable write).
    durable: Option<Arc<Mutex<Tables>>>,
    log: MemoryLog,
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

    /// Takes `tables` as what survives a power cut (made `with_power_cuts`; else nothing to do).
    fn keep(&self, tables: &Tables) {
        if let Some(kept) = &self.durable {
            *kept.lock().unwrap_or_else(|p| p.into_inner()) = tables.clone();
        }
    }

    /// Forgets the writes since the last durable one.
    pub fn power_cut(&self) {
        let durable = self.durable.as_ref().expect("made with_power_cuts");
        let kept = durable.lock().unwrap_or_else(|p| p.into_inner()).clone();
        *self.tables.lock().unwrap_or_else(|p| p.into_inner()) = kept;
        self.log.power_cut();
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
        if durable {
            self.keep(&tables);
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

    fn sync(&self) -> Result<(), StoreError> {
        self.keep(&self.tables.lock().unwrap_or_else(|p| p.into_inner()));
        Ok(())
    }

    fn log(&self) -> &dyn Log {
        &self.log
    }
}

#[derive(Default)]
struct LogState {
    records: Vec<(u64, Vec<u8>)>,
    last: u64,
    durable: u64,
}

/// The log of a [`MemoryKv`]: records in a vector; a power cut drops the imported ones not
/// synced yet (an append is durable when it returns, as on disk).
#[derive(Default, Clone)]
struct MemoryLog {
    state: Arc<Mutex<LogState>>,
}

impl MemoryLog {
    fn state(&self) -> MutexGuard<'_, LogState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn power_cut(&self) {
        let mut state = self.state();
        let durable = state.durable;
        state.records.retain(|&(id, _)| id <= durable);
        state.last = durable;
    }
}

impl Log for MemoryLog {
    fn write(&self, record: &[u8]) -> Result<u64, StoreError> {
        let mut state = self.state();
        let id = (state.last.checked_add(1)).ok_or_else(super::segment_log::ids_exhausted)?;
        state.records.push((id, record.to_vec()));
        state.last = id;
        Ok(id)
    }

    fn sync_through(&self, id: u64) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.durable < id {
            state.durable = state.last;
        }
        Ok(())
    }

    fn import(&self, id: u64, record: &[u8]) -> Result<(), StoreError> {
        let mut state = self.state();
        if id <= state.last {
            return Err(StoreError::Write(
                format!("log record {id} imported after record {}", state.last).into(),
            ));
        }
        state.records.push((id, record.to_vec()));
        state.last = id;
        Ok(())
    }

    fn continue_after(&self, id: u64) {
        let mut state = self.state();
        if id > state.last {
            state.last = id;
            state.durable = id;
        }
    }

    fn durable(&self) -> u64 {
        self.state().durable
    }

    fn last_id(&self) -> u64 {
        self.state().last
    }

    fn read(&self, after: u64, visit: &mut LogVisit<'_>) -> Result<(), StoreError> {
        let state = self.state();
        let from = state.records.partition_point(|&(id, _)| id <= after);
        for (id, record) in &state.records[from..] {
            if *id > state.durable || !visit(*id, record) {
                break;
            }
        }
        Ok(())
    }

    fn bytes_after(&self, after: u64) -> Result<u64, StoreError> {
        let state = self.state();
        Ok(state
            .records
            .iter()
            .filter(|&&(id, _)| id > after)
            .map(|(_, r)| r.len() as u64)
            .sum())
    }

    fn release(&self, upto: u64) -> Result<(), StoreError> {
        self.state().records.retain(|&(id, _)| id > upto);
        Ok(())
    }

    fn rotate(&self) {}

    fn disk_size(&self) -> u64 {
        self.bytes_after(0).unwrap_or(0)
    }
}

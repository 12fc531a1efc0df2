//! WAL records: the input is the one record of a store being opened, which recovery decodes and
//! replays into the head; a checkpoint then seals what was replayed into chunks and rollups.
#![no_main]

use hcmon_collector::storage::{Kv, KvBatch, MemoryKv, StorageConfig, Table, Tsdb};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let kv = MemoryKv::default();
    let mut batch = KvBatch::default();
    batch.put(Table::Wal, 1u64.to_be_bytes(), data);
    kv.write(batch, false)
        .expect("the in-memory store takes any batch");
    if let Ok(recovered) = Tsdb::open(Box::new(kv), StorageConfig::default()) {
        let _ = recovered.tsdb.checkpoint(true);
    }
});

//! WAL records: the input is the one record of a store being opened, which recovery decodes and
//! replays (samples into the head, a node's sequence into its table); a checkpoint then seals
//! what was replayed into chunks and rollups. The first byte picks where the record is: in the
//! log (even) or in the `wal` table of older stores (odd), which recovery moves into the log.
#![no_main]

use hcmon_collector::storage::{Kv, KvBatch, MemoryKv, StorageConfig, Table, Tsdb};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&place, record)) = data.split_first() else {
        return;
    };
    let kv = MemoryKv::default();
    if place % 2 == 0 {
        kv.log()
            .append(record)
            .expect("the in-memory log takes any record");
    } else {
        let mut batch = KvBatch::default();
        batch.put(Table::Wal, 1u64.to_be_bytes(), record);
        kv.write(batch, false)
            .expect("the in-memory store takes any batch");
    }
    if let Ok(recovered) = Tsdb::open(Box::new(kv), StorageConfig::default()) {
        let _ = recovered.tsdb.checkpoint(true);
    }
});

//! Rollup blocks: the input (after a first byte picking the resolution) is the stored block of
//! series 1 starting at time 0, read back through `Tsdb::read_rollup`.
#![no_main]

use hcmon_collector::storage::{Kv, KvBatch, MemoryKv, Resolution, SeriesId, StorageConfig, Tsdb};
use std::sync::LazyLock;

static STORE: LazyLock<(MemoryKv, Tsdb)> = LazyLock::new(|| {
    let kv = MemoryKv::default();
    let recovered =
        Tsdb::open(Box::new(kv.clone()), StorageConfig::default()).expect("an empty store opens");
    (kv, recovered.tsdb)
});

/// The key of series 1's block starting at 0: UTC day of 0 (days count from -2³¹), series,
/// block start with its sign bit flipped; see `storage/tsdb/keys.rs`.
fn key() -> Vec<u8> {
    let mut key = (1u32 << 31).to_be_bytes().to_vec();
    key.extend_from_slice(&1u64.to_be_bytes());
    key.extend_from_slice(&(1u64 << 63).to_be_bytes());
    key
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let res = match mode % 3 {
        0 => Resolution::OneMinute,
        1 => Resolution::FiveMinutes,
        _ => Resolution::OneHour,
    };
    let (kv, tsdb) = &*STORE;
    let mut batch = KvBatch::default();
    batch.put(res.table(), key(), rest);
    kv.write(batch, false)
        .expect("the in-memory store takes any batch");
    let _ = tsdb.read_rollup(SeriesId(1), res, 0, 86_400_000);
});

//! Head snapshots: the input is the snapshot of series 1 in a store being opened; the series is
//! then read back, raw and at every rollup resolution, and checkpointed.
#![no_main]

use hcmon_collector::storage::{
    Kv, KvBatch, MemoryKv, Resolution, SeriesId, StorageConfig, Table, Tsdb,
};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let kv = MemoryKv::default();
    let mut batch = KvBatch::default();
    batch.put(Table::Head, 1u64.to_be_bytes(), data);
    kv.write(batch, false)
        .expect("the in-memory store takes any batch");
    let Ok(recovered) = Tsdb::open(Box::new(kv), StorageConfig::default()) else {
        return;
    };
    let tsdb = recovered.tsdb;
    let series = SeriesId(1);
    let _ = tsdb.latest(series);
    let _ = tsdb.read_raw(series, i64::MIN, i64::MAX);
    for res in [
        Resolution::OneMinute,
        Resolution::FiveMinutes,
        Resolution::OneHour,
    ] {
        let _ = tsdb.read_rollup(series, res, i64::MIN, i64::MAX);
    }
    let _ = tsdb.checkpoint(true);
});

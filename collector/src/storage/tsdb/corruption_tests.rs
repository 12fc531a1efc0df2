//! A short or garbled key and a garbled value planted in each table the engine parses: opening,
//! reading, checkpointing and retention report corruption naming the table, or skip and log
//! where the engine skips unreadable records (node records, the stale-rollup list). Never a
//! panic. (`meta` keys are looked up by name, never parsed: a garbled one is never read.)

use super::keys::{
    ChunkKey, DAY_MS, META_CHECKPOINT, META_DELETED_SERIES, META_STALE_ROLLUPS, RollupKey, day_of,
    id_key,
};
use super::recovery::decode_node;
use super::testing::{T0, config, open, samples};
use super::{RetentionConfig, StorageConfig, Tsdb};
use crate::storage::kv::{Kv, KvBatch, Table};
use crate::storage::records::{NodeRecordV1, NodeSequenceRecordV1, Record};
use crate::storage::rollup::Resolution;
use crate::storage::{MemoryKv, NodeRecord, NodeSequence, SeriesId, StoreError};

/// A store with one series' samples in chunks, rollups, the head and the WAL.
fn store() -> MemoryKv {
    let kv = MemoryKv::default();
    let db = open(&kv);
    db.append(None, &samples(1, 0..20, 10_000)).unwrap();
    db.checkpoint(true).unwrap();
    db.append(None, &samples(1, 20..25, 10_000)).unwrap();
    kv
}

fn plant(kv: &MemoryKv, table: Table, key: &[u8], value: &[u8]) {
    let mut batch = KvBatch::default();
    batch.put(table, key.to_vec(), value.to_vec());
    kv.write(batch, true).unwrap();
}

/// The table a corruption error names.
#[track_caller]
fn table_of<T: std::fmt::Debug>(result: Result<T, StoreError>) -> Table {
    match result {
        Err(StoreError::Corrupt { table, .. }) => table,
        other => panic!("expected a corruption error, got {other:?}"),
    }
}

#[track_caller]
fn open_fails_naming(kv: &MemoryKv, table: Table) {
    let error = Tsdb::open(Box::new(kv.clone()), config()).err();
    assert_eq!(table_of(error.map_or(Ok(()), Err)), table);
}

/// Raw samples of series 1 in `[start, end]`, from a freshly opened engine.
fn read_raw(kv: &MemoryKv, start: i64, end: i64) -> Result<Vec<(i64, f64)>, StoreError> {
    open(kv).read_raw(SeriesId(1), start, end)
}

#[test]
fn chunks() {
    // A key too short to hold a day, found by a read over all time, retention and deletion.
    let kv = store();
    plant(&kv, Table::Chunks, &[0x85], b"");
    assert_eq!(table_of(read_raw(&kv, i64::MIN, i64::MAX)), Table::Chunks);
    let budget = StorageConfig {
        retention: RetentionConfig {
            disk_budget_bytes: 1,
            ..RetentionConfig::default()
        },
        ..config()
    };
    let db = Tsdb::open(Box::new(kv.clone()), budget).unwrap().tsdb;
    let error = db.enforce_retention(T0 + 3 * DAY_MS).unwrap_err();
    assert!(error.to_string().contains("chunks table"), "{error}");
    assert_eq!(table_of(db.delete_series(&[SeriesId(1)])), Table::Chunks);

    // A key cut short inside the series' range of a day.
    let kv = store();
    let mut key = day_of(T0).to_be_bytes().to_vec();
    key.extend_from_slice(&1u64.to_be_bytes());
    key.extend_from_slice(&[0x80, 0]);
    plant(&kv, Table::Chunks, &key, b"");
    assert_eq!(table_of(read_raw(&kv, T0, T0 + DAY_MS)), Table::Chunks);

    // A garbled chunk under a good key.
    let kv = store();
    let key = ChunkKey {
        series: SeriesId(1),
        first_ts: T0 + 1,
        order: (0, 0),
    };
    plant(&kv, Table::Chunks, &key.encode(), b"\x10\xff\xff\xff");
    assert_eq!(table_of(read_raw(&kv, T0, T0 + DAY_MS)), Table::Chunks);
}

#[test]
fn rollups() {
    let res = Resolution::OneHour;
    let read = |kv: &MemoryKv, start, end| open(kv).read_rollup(SeriesId(1), res, start, end);

    let kv = store();
    plant(&kv, Table::Rollup1h, &[0x85, 1], b"");
    assert_eq!(table_of(read(&kv, i64::MIN, i64::MAX)), Table::Rollup1h);
    assert_eq!(
        table_of(open(&kv).delete_series(&[SeriesId(1)])),
        Table::Rollup1h
    );

    let kv = store();
    let mut key = day_of(T0).to_be_bytes().to_vec();
    key.extend_from_slice(&1u64.to_be_bytes());
    key.push(0x80);
    plant(&kv, Table::Rollup1h, &key, b"");
    assert_eq!(table_of(read(&kv, T0, T0 + DAY_MS)), Table::Rollup1h);

    // A garbled block is reported by reads, and by the checkpoint that would merge into it.
    let kv = store();
    let key = RollupKey {
        series: SeriesId(1),
        block_start: T0,
    };
    plant(&kv, Table::Rollup1h, &key.encode(), &[9, 0, 0, 0, 1]);
    assert_eq!(table_of(read(&kv, T0, T0 + DAY_MS)), Table::Rollup1h);
    assert_eq!(table_of(open(&kv).checkpoint(true)), Table::Rollup1h);
}

#[test]
fn head() {
    let kv = store();
    plant(&kv, Table::Head, &[1, 2, 3], &[0]);
    open_fails_naming(&kv, Table::Head);

    let kv = store();
    plant(&kv, Table::Head, &id_key(7), &[1, 2]);
    open_fails_naming(&kv, Table::Head);
}

#[test]
fn wal() {
    let kv = store();
    plant(&kv, Table::Wal, &[0, 0, 0, 0, 0, 0, 0, 9, 9], &[0]);
    open_fails_naming(&kv, Table::Wal);

    let kv = store();
    plant(&kv, Table::Wal, &id_key(1000), &[5, 1]);
    open_fails_naming(&kv, Table::Wal);
}

#[test]
fn series() {
    let kv = store();
    plant(
        &kv,
        Table::Series,
        &[1, 2, 3],
        br#"{"labels":"","kind":"gauge","help":""}"#,
    );
    open_fails_naming(&kv, Table::Series);

    let kv = store();
    plant(&kv, Table::Series, &id_key(1), br#"{"labels":1}"#);
    open_fails_naming(&kv, Table::Series);
}

#[test]
fn nodes_and_node_sequences_are_skipped_and_named() {
    for table in [Table::Nodes, Table::NodeSequences] {
        let good = match table {
            Table::Nodes => NodeRecordV1::from(&NodeRecord::default()).encode(),
            _ => NodeSequenceRecordV1::from(&NodeSequence::default()).encode(),
        };
        let planted = [
            (&b"\xff\xfe"[..], &good[..]),
            (b"nas", b"{\"spool_epoch\":"),
        ];
        let kv = store();
        for (key, value) in planted {
            plant(&kv, table, key, value);
        }
        let recovered = Tsdb::open(Box::new(kv.clone()), config()).unwrap();
        assert!(recovered.nodes.is_empty(), "{table:?}: both skipped");
        for (key, value) in planted {
            let decoded = match table {
                Table::Nodes => decode_node::<NodeRecordV1>(key, value).map(drop),
                _ => decode_node::<NodeSequenceRecordV1>(key, value).map(drop),
            };
            assert_eq!(table_of(decoded), table);
        }
    }
}

#[test]
fn meta() {
    let kv = store();
    plant(&kv, Table::Meta, META_CHECKPOINT, &[1, 2, 3]);
    open_fails_naming(&kv, Table::Meta);

    let kv = store();
    plant(&kv, Table::Meta, META_CHECKPOINT, &u64::MAX.to_be_bytes());
    open_fails_naming(&kv, Table::Meta);

    let kv = store();
    plant(&kv, Table::Meta, META_DELETED_SERIES, &[0; 9]);
    open_fails_naming(&kv, Table::Meta);

    // The stale-rollup list is skipped (and logged): the start goes on.
    let kv = store();
    plant(
        &kv,
        Table::Meta,
        META_STALE_ROLLUPS,
        b"{\"format\":1,\"record\":7}",
    );
    let db = open(&kv);
    assert_eq!(db.read_raw(SeriesId(1), T0, T0 + DAY_MS).unwrap().len(), 25);

    // A garbled meta key is never read.
    let kv = store();
    plant(&kv, Table::Meta, b"\xff", b"\xff");
    assert_eq!(read_raw(&kv, T0, T0 + DAY_MS).unwrap().len(), 25);
}

/// Random keys and values in every table: whatever the engine makes of them, it does not panic.
#[test]
fn random_garbage_never_panics() {
    let mut rng = fastrand::Rng::with_seed(12);
    let tables = [
        Table::Series,
        Table::Nodes,
        Table::NodeSequences,
        Table::Wal,
        Table::Head,
        Table::Chunks,
        Table::Rollup1m,
        Table::Rollup5m,
        Table::Rollup1h,
        Table::Meta,
    ];
    for _ in 0..200 {
        let kv = store();
        let table = tables[rng.usize(..tables.len())];
        // Often a real key prefix, so the garbage lands where the engine looks.
        let mut key = match rng.u8(..3) {
            0 => day_of(T0).to_be_bytes().to_vec(),
            1 => [&day_of(T0).to_be_bytes()[..], &1u64.to_be_bytes()].concat(),
            _ => Vec::new(),
        };
        key.extend((0..rng.usize(..24)).map(|_| rng.u8(..)));
        if table == Table::Meta {
            key =
                [META_CHECKPOINT, META_DELETED_SERIES, META_STALE_ROLLUPS][rng.usize(..3)].to_vec();
        }
        let value: Vec<u8> = (0..rng.usize(..64)).map(|_| rng.u8(..)).collect();
        plant(&kv, table, &key, &value);
        let Ok(recovered) = Tsdb::open(Box::new(kv.clone()), config()) else {
            continue;
        };
        let db = recovered.tsdb;
        let _ = db.read_raw(SeriesId(1), i64::MIN, i64::MAX);
        for res in Resolution::ALL {
            let _ = db.read_rollup(SeriesId(1), res, i64::MIN, i64::MAX);
        }
        let _ = db.checkpoint(true);
        let _ = db.enforce_retention(T0 + 400 * DAY_MS);
        let _ = db.delete_series(&[SeriesId(1)]);
    }
}

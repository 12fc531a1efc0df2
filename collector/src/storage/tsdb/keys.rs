//! The engine's on-disk key layouts and their checked parsing: a key that does not parse is a
//! corruption error naming its table, never a panic. The layouts are listed in the module
//! header of `tsdb`; integers are big-endian, so keys sort by them.

use crate::storage::kv::Table;
use crate::storage::{SeriesId, StoreError};

pub(super) const DAY_MS: i64 = 86_400_000;

/// `meta` keys.
pub(super) const META_CHECKPOINT: &[u8] = b"checkpoint";
/// Rollup buckets awaiting recompute, persisted with the checkpoint that took them from memory.
pub(super) const META_STALE_ROLLUPS: &[u8] = b"stale_rollups";
/// Where stored 1 min and 5 min buckets end and those computed from raw begin (see
/// `Tsdb::read_rollup`).
pub(super) const META_RAW_ROLLUPS: &[u8] = b"raw_rollups";
/// The same for 1 min buckets only, in stores from before 5 min ones were computed from raw.
pub(super) const META_MINUTE_ROLLUPS: &[u8] = b"minute_rollups";
/// Ids of deleted series: their samples are dropped wherever they turn up (WAL replay, a late
/// append), and new series are numbered above them.
pub(super) const META_DELETED_SERIES: &[u8] = b"deleted_series";

/// Timestamps are clamped to this magnitude (±5.8 million years) so every one has a day.
const MAX_ABS_TS: i64 = ((1 << 31) - 1) * DAY_MS;

/// The UTC day partition of a timestamp.
pub(super) fn day_of(ts: i64) -> u32 {
    (ts.clamp(-MAX_ABS_TS, MAX_ABS_TS).div_euclid(DAY_MS) + (1 << 31)) as u32
}

pub(super) fn day_start(day: u32) -> i64 {
    (i64::from(day) - (1 << 31)) * DAY_MS
}

/// A timestamp as an unsigned integer that sorts like it.
fn flip(ts: i64) -> u64 {
    (ts as u64) ^ (1 << 63)
}

fn unflip(v: u64) -> i64 {
    (v ^ (1 << 63)) as i64
}

/// Write order of a chunk: the checkpoint's WAL position, then its index in that checkpoint.
/// Where chunks overlap, the later write holds the newer value of a repeated timestamp.
pub(super) type WriteOrder = (u64, u32);

/// A corrupt key of `table`, shown in hex.
fn bad_key(table: Table, key: &[u8], why: &str) -> StoreError {
    let hex: String = key.iter().take(48).map(|b| format!("{b:02x}")).collect();
    let more = if key.len() > 48 { "…" } else { "" };
    StoreError::corrupt(
        table,
        "key",
        format!("{hex}{more} ({} bytes): {why}", key.len()),
    )
}

/// `N` bytes of `key` from `at`.
fn field<const N: usize>(table: Table, key: &[u8], at: usize) -> Result<[u8; N], StoreError> {
    key.get(at..at + N)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad_key(table, key, "too short"))
}

/// Every key of a table keyed by names or 8-byte ids sorts below this.
pub(super) const SCAN_END: &[u8] = &[0xff; 9];

/// The key of a `series`, `head` or `wal` entry: its id.
pub(super) fn id_key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

pub(super) fn parse_id(table: Table, key: &[u8]) -> Result<u64, StoreError> {
    let id: [u8; 8] = key
        .try_into()
        .map_err(|_| bad_key(table, key, "not an 8-byte id"))?;
    Ok(u64::from_be_bytes(id))
}

/// The key of a `nodes` or `node_sequences` entry: the node name.
pub(super) fn parse_node_name(table: Table, key: &[u8]) -> Result<String, StoreError> {
    String::from_utf8(key.to_vec()).map_err(|_| bad_key(table, key, "node name is not UTF-8"))
}

/// The day partition of a `chunks` or `rollup_*` key.
pub(super) fn parse_day(table: Table, key: &[u8]) -> Result<u32, StoreError> {
    field(table, key, 0).map(u32::from_be_bytes)
}

/// The series of a `chunks` or `rollup_*` key.
pub(super) fn parse_series(table: Table, key: &[u8]) -> Result<SeriesId, StoreError> {
    field(table, key, 4).map(|id| SeriesId(u64::from_be_bytes(id)))
}

/// Key range of one series in one day partition of `chunks` or `rollup_*`.
pub(super) fn series_day_range(day: u32, series: SeriesId) -> (Vec<u8>, Vec<u8>) {
    let mut start = day.to_be_bytes().to_vec();
    start.extend_from_slice(&series.0.to_be_bytes());
    let mut end = start.clone();
    end.push(0xff);
    end.extend_from_slice(&[0xff; 16]);
    (start, end)
}

/// A `chunks` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ChunkKey {
    pub(super) series: SeriesId,
    pub(super) first_ts: i64,
    pub(super) order: WriteOrder,
}

impl ChunkKey {
    /// Its length; keys written before write orders were kept end in a random u32 instead
    /// (24 bytes) and read as write order (0, 0).
    const LEN: usize = 32;
    const LEGACY_LEN: usize = 24;

    pub(super) fn encode(&self) -> Vec<u8> {
        let mut k = Vec::with_capacity(Self::LEN);
        k.extend_from_slice(&day_of(self.first_ts).to_be_bytes());
        k.extend_from_slice(&self.series.0.to_be_bytes());
        k.extend_from_slice(&flip(self.first_ts).to_be_bytes());
        k.extend_from_slice(&self.order.0.to_be_bytes());
        k.extend_from_slice(&self.order.1.to_be_bytes());
        k
    }

    pub(super) fn parse(key: &[u8]) -> Result<Self, StoreError> {
        let table = Table::Chunks;
        let order = match key.len() {
            Self::LEN => (
                u64::from_be_bytes(field(table, key, 20)?),
                u32::from_be_bytes(field(table, key, 28)?),
            ),
            Self::LEGACY_LEN => (0, 0),
            _ => return Err(bad_key(table, key, "not 32 (or 24) bytes")),
        };
        Ok(Self {
            series: parse_series(table, key)?,
            first_ts: unflip(u64::from_be_bytes(field(table, key, 12)?)),
            order,
        })
    }
}

/// A `rollup_*` key: the series and the start of its block of buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RollupKey {
    pub(super) series: SeriesId,
    pub(super) block_start: i64,
}

impl RollupKey {
    const LEN: usize = 20;

    pub(super) fn encode(&self) -> Vec<u8> {
        let mut k = Vec::with_capacity(Self::LEN);
        k.extend_from_slice(&day_of(self.block_start).to_be_bytes());
        k.extend_from_slice(&self.series.0.to_be_bytes());
        k.extend_from_slice(&flip(self.block_start).to_be_bytes());
        k
    }

    pub(super) fn parse(table: Table, key: &[u8]) -> Result<Self, StoreError> {
        if key.len() != Self::LEN {
            return Err(bad_key(table, key, "not 20 bytes"));
        }
        Ok(Self {
            series: parse_series(table, key)?,
            block_start: unflip(u64::from_be_bytes(field(table, key, 12)?)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_of(error: StoreError) -> Table {
        match error {
            StoreError::Corrupt { table, .. } => table,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn keys_round_trip_and_sort_by_day_series_time() {
        let key = |series, first_ts| ChunkKey {
            series: SeriesId(series),
            first_ts,
            order: (7, 1),
        };
        for k in [key(1, -5), key(u64::MAX, i64::MAX), key(0, i64::MIN)] {
            assert_eq!(ChunkKey::parse(&k.encode()).unwrap(), k);
        }
        assert!(key(2, 1000).encode() < key(1, DAY_MS).encode(), "day first");
        assert!(
            key(1, -1).encode() < key(1, 0).encode(),
            "negative times sort first"
        );
        let rollup = RollupKey {
            series: SeriesId(9),
            block_start: -3_600_000,
        };
        assert_eq!(
            RollupKey::parse(Table::Rollup1m, &rollup.encode()).unwrap(),
            rollup
        );
        assert_eq!(
            parse_day(Table::Rollup1m, &rollup.encode()).unwrap(),
            day_of(-1)
        );
        assert_eq!(parse_id(Table::Wal, &id_key(42)).unwrap(), 42);
        assert_eq!(day_start(day_of(DAY_MS + 5)), DAY_MS);
    }

    #[test]
    fn a_chunk_key_of_the_older_24_byte_layout_reads_with_write_order_zero() {
        let mut legacy = key_prefix();
        legacy.extend_from_slice(&[0xab; 4]);
        let parsed = ChunkKey::parse(&legacy).unwrap();
        assert_eq!(
            (parsed.series, parsed.first_ts, parsed.order),
            (SeriesId(3), 60_000, (0, 0))
        );
    }

    fn key_prefix() -> Vec<u8> {
        let mut k = day_of(60_000).to_be_bytes().to_vec();
        k.extend_from_slice(&3u64.to_be_bytes());
        k.extend_from_slice(&flip(60_000).to_be_bytes());
        k
    }

    #[test]
    fn short_or_garbled_keys_are_corruption_naming_the_table() {
        for len in [0, 3, 11, 19, 20, 25, 31, 33] {
            let key = vec![0x5a; len];
            assert_eq!(
                table_of(ChunkKey::parse(&key).unwrap_err()),
                Table::Chunks,
                "{len}"
            );
            if len != RollupKey::LEN {
                let error = RollupKey::parse(Table::Rollup5m, &key).unwrap_err();
                assert_eq!(table_of(error), Table::Rollup5m);
            }
            for table in [Table::Series, Table::Head, Table::Wal] {
                assert_eq!(table_of(parse_id(table, &key).unwrap_err()), table);
            }
        }
        assert_eq!(
            table_of(parse_day(Table::Chunks, &[1, 2]).unwrap_err()),
            Table::Chunks
        );
        let error = parse_series(Table::Rollup1h, &[0; 11]).unwrap_err();
        assert!(error.to_string().contains("rollup_1h table"), "{error}");
        let error = parse_node_name(Table::NodeSequences, b"\xffnas").unwrap_err();
        assert_eq!(
            error.to_string(),
            "corrupt key in the node_sequences table: ff6e6173 (4 bytes): node name is not UTF-8"
        );
    }
}

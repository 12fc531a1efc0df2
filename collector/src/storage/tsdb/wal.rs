//! The WAL record codec: one append's samples as varints, per sample the series id XOR the
//! previous one, the zigzag timestamp delta from the previous one, then the value (f64 LE),
//! after a varint count. The record has no version byte.

use crate::storage::kv::Table;
use crate::storage::{Sample, SeriesId, StoreError};

pub(super) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(super) fn get_varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*pos)?;
        *pos += 1;
        out |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(out);
        }
    }
    None
}

pub(super) fn encode_wal(samples: &[Sample]) -> Vec<u8> {
    let mut out = Vec::with_capacity(samples.len() * 11 + 8);
    put_varint(&mut out, samples.len() as u64);
    let mut prev_ts = 0i64;
    let mut prev_series = 0u64;
    for s in samples {
        put_varint(&mut out, s.series.0 ^ prev_series);
        let d = s.timestamp_ms.wrapping_sub(prev_ts);
        put_varint(&mut out, ((d << 1) ^ (d >> 63)) as u64);
        out.extend_from_slice(&s.value.to_le_bytes());
        prev_ts = s.timestamp_ms;
        prev_series = s.series.0;
    }
    out
}

pub(super) fn decode_wal(bytes: &[u8]) -> Result<Vec<Sample>, StoreError> {
    decode(bytes).ok_or_else(|| {
        StoreError::corrupt(
            Table::Wal,
            "record",
            format!("{} bytes, truncated or malformed", bytes.len()),
        )
    })
}

fn decode(bytes: &[u8]) -> Option<Vec<Sample>> {
    let mut pos = 0;
    let n = get_varint(bytes, &mut pos)? as usize;
    let mut out = Vec::with_capacity(n.min(1 << 20));
    let mut prev_ts = 0i64;
    let mut prev_series = 0u64;
    for _ in 0..n {
        let series = get_varint(bytes, &mut pos)? ^ prev_series;
        let z = get_varint(bytes, &mut pos)?;
        let ts = prev_ts.wrapping_add(((z >> 1) as i64) ^ -((z & 1) as i64));
        let value = f64::from_le_bytes(bytes.get(pos..pos + 8)?.try_into().ok()?);
        pos += 8;
        out.push(Sample {
            series: SeriesId(series),
            timestamp_ms: ts,
            value,
        });
        prev_ts = ts;
        prev_series = series;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `wal` fuzz target: a timestamp near `i64::MIN` overflowed its rollup
    /// bucket's start when replayed.
    #[test]
    fn a_record_at_the_earliest_timestamps_replays_and_checkpoints() {
        use crate::storage::{Kv, KvBatch, MemoryKv, StorageConfig, Tsdb};
        let record = [
            0x01, 0x3a, 0xf5, 0xff, 0xf5, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0, 0, 0, 0,
            0, 0x08, 0xff, 0xff, 0xff, 0xff, 0x2f, 0x00,
        ];
        let kv = MemoryKv::default();
        let mut batch = KvBatch::default();
        batch.put(Table::Wal, 1u64.to_be_bytes(), &record[..]);
        kv.write(batch, false).unwrap();
        let recovered = Tsdb::open(Box::new(kv), StorageConfig::default()).unwrap();
        recovered.tsdb.checkpoint(true).unwrap();
    }

    #[test]
    fn wal_records_round_trip() {
        let s = vec![
            Sample {
                series: SeriesId(5),
                timestamp_ms: -3,
                value: 1.5,
            },
            Sample {
                series: SeriesId(1 << 40),
                timestamp_ms: i64::MAX,
                value: f64::MIN,
            },
        ];
        assert_eq!(decode_wal(&encode_wal(&s)).unwrap(), s);
        for garbled in [&[5, 1][..], &[], &[0xff; 11], &[1, 1, 1, 1]] {
            let error = decode_wal(garbled).unwrap_err();
            assert!(error.to_string().contains("wal table"), "{error}");
        }
    }
}

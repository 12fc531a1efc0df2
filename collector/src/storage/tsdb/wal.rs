//! The WAL record codec.
//!
//! A log record ([`LogEntry`]) is a tag byte, then for a node change the node's name (varint
//! length, UTF-8) and for a new sequence state its versioned record (varint length, bytes), then
//! the samples. Tags: 0 samples only, 1 a node's new sequence state (with the samples that
//! advanced it, or none, for a registration), 2 a node forgotten.
//!
//! Samples are a varint count, then per sample the series id XOR the previous one, the zigzag
//! timestamp delta from the previous one, then the value (f64 LE). The records of the older
//! `Wal` table are the samples alone.

use crate::storage::kv::Table;
use crate::storage::records::{NodeSequenceRecordV1, Record};
use crate::storage::{NodeSequence, Sample, SeriesId, StoreError};

const TAG_SAMPLES: u8 = 0;
const TAG_SEQUENCE: u8 = 1;
const TAG_FORGOTTEN: u8 = 2;

/// What a log record changes in a node's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum NodeChange {
    Sequence(NodeSequence),
    Forgotten,
}

/// One log record: an append's samples and the node change written atomically with them.
#[derive(Debug, PartialEq)]
pub(super) struct LogEntry {
    pub node: Option<(String, NodeChange)>,
    pub samples: Vec<Sample>,
}

pub(super) fn encode_entry(node: Option<(&str, NodeChange)>, samples: &[Sample]) -> Vec<u8> {
    let mut out = Vec::with_capacity(samples.len() * 11 + 64);
    match node {
        None => out.push(TAG_SAMPLES),
        Some((name, change)) => {
            out.push(match change {
                NodeChange::Sequence(_) => TAG_SEQUENCE,
                NodeChange::Forgotten => TAG_FORGOTTEN,
            });
            put_varint(&mut out, name.len() as u64);
            out.extend_from_slice(name.as_bytes());
            if let NodeChange::Sequence(sequence) = change {
                let record = NodeSequenceRecordV1::from(&sequence).encode();
                put_varint(&mut out, record.len() as u64);
                out.extend_from_slice(&record);
            }
        }
    }
    encode_samples(&mut out, samples);
    out
}

pub(super) fn decode_entry(bytes: &[u8]) -> Result<LogEntry, StoreError> {
    let malformed = |what: &str| {
        StoreError::corrupt(
            Table::Wal,
            "log record",
            format!("{} bytes: {what}", bytes.len()),
        )
    };
    let (&tag, rest) = bytes.split_first().ok_or_else(|| malformed("empty"))?;
    let mut pos = 0;
    let node = match tag {
        TAG_SAMPLES => None,
        TAG_SEQUENCE | TAG_FORGOTTEN => {
            let name = take(rest, &mut pos).ok_or_else(|| malformed("node name cut short"))?;
            let name = std::str::from_utf8(name)
                .map_err(|_| malformed("node name not UTF-8"))?
                .to_owned();
            let change = if tag == TAG_SEQUENCE {
                let record =
                    take(rest, &mut pos).ok_or_else(|| malformed("sequence state cut short"))?;
                NodeChange::Sequence(NodeSequenceRecordV1::decode(record)?.into())
            } else {
                NodeChange::Forgotten
            };
            Some((name, change))
        }
        other => return Err(malformed(&format!("unknown kind {other}"))),
    };
    let samples = decode_samples(&rest[pos..]).ok_or_else(|| malformed("samples malformed"))?;
    Ok(LogEntry { node, samples })
}

/// A varint-length-prefixed field.
fn take<'a>(bytes: &'a [u8], pos: &mut usize) -> Option<&'a [u8]> {
    let len = usize::try_from(get_varint(bytes, pos)?).ok()?;
    let field = bytes.get(*pos..pos.checked_add(len)?)?;
    *pos += len;
    Some(field)
}

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

fn encode_samples(out: &mut Vec<u8>, samples: &[Sample]) {
    put_varint(out, samples.len() as u64);
    let mut prev_ts = 0i64;
    let mut prev_series = 0u64;
    for s in samples {
        put_varint(out, s.series.0 ^ prev_series);
        let d = s.timestamp_ms.wrapping_sub(prev_ts);
        put_varint(out, ((d << 1) ^ (d >> 63)) as u64);
        out.extend_from_slice(&s.value.to_le_bytes());
        prev_ts = s.timestamp_ms;
        prev_series = s.series.0;
    }
}

/// A record of the older `Wal` table: samples alone.
pub(super) fn decode_table_record(bytes: &[u8]) -> Result<Vec<Sample>, StoreError> {
    decode_samples(bytes).ok_or_else(|| {
        StoreError::corrupt(
            Table::Wal,
            "record",
            format!("{} bytes, truncated or malformed", bytes.len()),
        )
    })
}

fn decode_samples(bytes: &[u8]) -> Option<Vec<Sample>> {
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
    fn log_entries_round_trip() {
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
        let sequence = NodeSequence {
            spool_epoch: 7,
            last_durable_seq: 42,
            durable_from: 3,
            lost_batches: 1,
            last_batch_at_ms: -5,
        };
        let cases = [
            (None, s.clone()),
            (Some(("nas", NodeChange::Sequence(sequence))), s.clone()),
            (Some(("nas", NodeChange::Sequence(sequence))), Vec::new()),
            (Some(("gone", NodeChange::Forgotten)), Vec::new()),
        ];
        for (node, samples) in cases {
            let entry = decode_entry(&encode_entry(node, &samples)).unwrap();
            let expected = LogEntry {
                node: node.map(|(name, change)| (name.to_owned(), change)),
                samples,
            };
            assert_eq!(entry, expected);
        }
        assert_eq!(
            decode_table_record(&encode_entry(None, &s)[1..]).unwrap(),
            s
        );
        for garbled in [
            &[0, 5, 1][..],
            &[],
            &[0, 0xff, 11],
            &[1, 1, 1, 1],
            &[1, 9, b'x'],
            &[7, 0],
        ] {
            let error = decode_entry(garbled).unwrap_err();
            assert!(error.to_string().contains("wal table"), "{error}");
        }
        for garbled in [&[5, 1][..], &[], &[0xff; 11], &[1, 1, 1, 1]] {
            let error = decode_table_record(garbled).unwrap_err();
            assert!(error.to_string().contains("wal table"), "{error}");
        }
    }
}

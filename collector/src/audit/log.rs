//! The audit log in the store: appends serialised through one lock (numbers dense, each record
//! chained to the one before) and synced before they return; reads in stored order.
//!
//! Table `audit`: key the record's number, 8 bytes big-endian; value `{"format": 1, "record":
//! <AuditRecord>}` (unknown fields ignored, an unknown format is corruption, as in
//! `storage/records.rs`).

use super::chain::{AuditRecord, Entry, GENESIS};
use crate::storage::{KvBatch, StoreError, Table, Tsdb};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};

/// The format this version writes.
const FORMAT: u64 = 1;

/// What a corrupt value is called in errors.
const WHAT: &str = "audit record";

#[derive(Serialize)]
struct Envelope<'a> {
    format: u64,
    record: &'a AuditRecord,
}

/// Just the format of a value, read before the record.
#[derive(Deserialize)]
struct Marker {
    format: u64,
}

#[derive(Deserialize)]
struct Enveloped {
    record: AuditRecord,
}

/// Where the next append goes.
struct Head {
    next: u64,
    prev: String,
}

/// The collector's audit log (see the module header).
pub struct AuditLog {
    tsdb: Arc<Tsdb>,
    head: Mutex<Head>,
}

impl AuditLog {
    /// Opens the log in `tsdb`'s store, finding its head by reading it to the end.
    pub fn open(tsdb: Arc<Tsdb>) -> Result<Self, StoreError> {
        let log = Self {
            tsdb,
            head: Mutex::new(Head {
                next: 0,
                prev: GENESIS.to_owned(),
            }),
        };
        let mut last = None;
        log.read(0, &mut |record| {
            last = Some(record);
            true
        })?;
        if let Some(last) = last {
            *log.head.lock().expect("audit head lock") = Head {
                next: last.seq + 1,
                prev: last.digest(),
            };
        }
        Ok(log)
    }

    /// Seals `entry` at `at_ms` as the next record and writes it durably. One append at a time:
    /// the lock is held across the synced write, so numbers stay dense and in chain order.
    pub fn append(&self, entry: Entry, at_ms: i64) -> Result<AuditRecord, StoreError> {
        let mut head = self.head.lock().expect("audit head lock");
        let record = AuditRecord::seal(head.next, at_ms, head.prev.clone(), entry);
        let value = serde_json::to_vec(&Envelope {
            format: FORMAT,
            record: &record,
        })
        .expect("audit records serialize");
        let mut batch = KvBatch::default();
        batch.put(Table::Audit, record.seq.to_be_bytes(), value);
        self.tsdb.kv().write(batch, true)?;
        *head = Head {
            next: record.seq + 1,
            prev: record.hash.clone(),
        };
        Ok(record)
    }

    /// Visits the records from number `from` on, in stored order, until `visit` returns false.
    pub fn read(
        &self,
        from: u64,
        visit: &mut dyn FnMut(AuditRecord) -> bool,
    ) -> Result<(), StoreError> {
        let mut failed = None;
        self.tsdb.kv().scan(
            Table::Audit,
            &from.to_be_bytes(),
            &[0xff; 9],
            &mut |key, value| match decode(key, value) {
                Ok(record) => visit(record),
                Err(error) => {
                    failed = Some(error);
                    false
                }
            },
        )?;
        failed.map_or(Ok(()), Err)
    }
}

fn decode(key: &[u8], value: &[u8]) -> Result<AuditRecord, StoreError> {
    let corrupt = |detail: String| StoreError::corrupt(Table::Audit, WHAT, detail);
    let seq = <[u8; 8]>::try_from(key)
        .map(u64::from_be_bytes)
        .map_err(|_| corrupt(format!("a key of {} bytes, not 8", key.len())))?;
    let not_json =
        |e: serde_json::Error| corrupt(format!("record {seq} is not a JSON record: {e}"));
    let marker: Marker = serde_json::from_slice(value).map_err(not_json)?;
    if marker.format != FORMAT {
        return Err(corrupt(format!(
            "record {seq} has format {}, not one this version reads ({FORMAT}); written by a newer hcmon?",
            marker.format
        )));
    }
    let enveloped: Enveloped = serde_json::from_slice(value).map_err(not_json)?;
    Ok(enveloped.record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::chain::{AuditEvent, verify};
    use crate::storage::{MemoryKv, StorageConfig};

    fn open(kv: &MemoryKv) -> AuditLog {
        let opened = Tsdb::open(Box::new(kv.clone()), StorageConfig::default()).unwrap();
        AuditLog::open(Arc::new(opened.tsdb)).unwrap()
    }

    fn entry(node: &str) -> Entry {
        Entry {
            who: "anonymous".into(),
            role: None,
            client: None,
            route: "DELETE /api/v1/agents/{node}".into(),
            event: AuditEvent::ForgetAgent { node: node.into() },
            outcome: 200,
        }
    }

    fn all(log: &AuditLog) -> Vec<AuditRecord> {
        let mut records = Vec::new();
        log.read(0, &mut |r| {
            records.push(r);
            true
        })
        .unwrap();
        records
    }

    #[test]
    fn appends_chain_on_across_a_restart() {
        let kv = MemoryKv::default();
        let log = open(&kv);
        log.append(entry("a"), 10).unwrap();
        log.append(entry("b"), 20).unwrap();
        drop(log);
        let log = open(&kv);
        let third = log.append(entry("c"), 30).unwrap();
        assert_eq!(third.seq, 2);
        let records = all(&log);
        assert_eq!(records.len(), 3);
        assert_eq!(verify(&records), Ok(third.hash));
        let mut from_one = Vec::new();
        log.read(1, &mut |r| {
            from_one.push(r.seq);
            true
        })
        .unwrap();
        assert_eq!(from_one, [1, 2]);
    }

    #[test]
    fn values_carry_the_format_and_an_unknown_one_is_corruption() {
        let kv = MemoryKv::default();
        let log = open(&kv);
        log.append(entry("a"), 10).unwrap();
        let value = crate::storage::Kv::get(&kv, Table::Audit, &0u64.to_be_bytes())
            .unwrap()
            .unwrap();
        assert!(value.starts_with(br#"{"format":1,"record":{"seq":0,"#));
        let mut batch = KvBatch::default();
        batch.put(
            Table::Audit,
            1u64.to_be_bytes(),
            br#"{"format":2,"record":{}}"#.to_vec(),
        );
        crate::storage::Kv::write(&kv, batch, true).unwrap();
        let error = log.read(0, &mut |_| true).unwrap_err().to_string();
        assert!(error.contains("record 1 has format 2"), "{error}");
    }
}

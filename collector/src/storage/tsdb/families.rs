//! Metric family metadata (type, help, unit) as remote-write senders declare it: kept in
//! memory for lookups on every request, written through to the `families` table only when a
//! declaration changes (Prometheus resends every family's metadata each minute).

use super::Tsdb;
use crate::storage::kv::{Kv, KvBatch, Table};
use crate::storage::records::{FamilyRecordV1, Record};
use crate::storage::{FamilyMeta, FamilyType, StoreError};
use std::collections::HashMap;

/// Reads every stored family; an unreadable record is logged and skipped (the sender's next
/// declaration rewrites it).
pub(super) fn load_families(kv: &dyn Kv) -> Result<HashMap<String, FamilyMeta>, StoreError> {
    let mut families = HashMap::new();
    kv.scan(Table::Families, &[], &[0xff], &mut |k, v| {
        let name = String::from_utf8(k.to_vec());
        match (name, FamilyRecordV1::decode(v)) {
            (Ok(name), Ok(record)) => {
                families.insert(name, FamilyMeta::from(record));
            }
            (name, record) => tracing::error!(
                key = %String::from_utf8_lossy(k),
                name_ok = name.is_ok(),
                error = ?record.err(),
                "unreadable metric family record skipped"
            ),
        }
        true
    })?;
    Ok(families)
}

impl Tsdb {
    /// What was declared about a family, if anything.
    pub fn family(&self, name: &str) -> Option<FamilyMeta> {
        self.families
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    /// Whether declaring `kind`, `help` and `unit` for `name` would change nothing: checked
    /// without allocating, as 2.0 senders repeat every series' metadata in every request.
    pub fn already_declared(&self, name: &str, kind: FamilyType, help: &[u8], unit: &[u8]) -> bool {
        let families = self.families.read().unwrap_or_else(|p| p.into_inner());
        families.get(name).is_some_and(|known| {
            (kind == known.kind || kind == FamilyType::Unknown)
                && known.help.as_bytes() == help
                && known.unit.as_bytes() == unit
        })
    }

    /// Every declared family, by name.
    pub fn families(&self) -> Vec<(String, FamilyMeta)> {
        let families = self.families.read().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<_> = families
            .iter()
            .map(|(name, meta)| (name.clone(), meta.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Records declarations durably, writing only those that differ from what is known. A
    /// declaration with no type keeps a known type (a sender that lost track of it does not
    /// erase what another said). Returns how many changed.
    pub fn declare_families<'a>(
        &self,
        declared: impl IntoIterator<Item = (&'a str, FamilyMeta)>,
    ) -> Result<usize, StoreError> {
        let changed: Vec<(&str, FamilyMeta)> = {
            let known = self.families.read().unwrap_or_else(|p| p.into_inner());
            declared
                .into_iter()
                .filter_map(|(name, mut meta)| {
                    let old = known.get(name);
                    if meta.kind == FamilyType::Unknown
                        && let Some(old) = old
                    {
                        meta.kind = old.kind;
                    }
                    (old != Some(&meta)).then_some((name, meta))
                })
                .collect()
        };
        if changed.is_empty() {
            return Ok(0);
        }
        let mut batch = KvBatch::default();
        for (name, meta) in &changed {
            batch.put(
                Table::Families,
                name.as_bytes(),
                FamilyRecordV1::from(meta).encode(),
            );
        }
        self.kv.write(batch, true)?;
        let mut known = self.families.write().unwrap_or_else(|p| p.into_inner());
        let count = changed.len();
        for (name, meta) in changed {
            known.insert(name.to_owned(), meta);
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use crate::storage::{FamilyMeta, FamilyType, MemoryKv, StorageConfig, Tsdb};

    fn meta(kind: FamilyType, help: &str) -> FamilyMeta {
        FamilyMeta {
            kind,
            help: help.into(),
            unit: String::new(),
        }
    }

    #[test]
    fn declarations_survive_a_restart_and_only_changes_are_written() {
        let kv = MemoryKv::default();
        let db = Tsdb::open(Box::new(kv.clone()), StorageConfig::default())
            .unwrap()
            .tsdb;
        let declared = [
            (
                "http_request_duration_seconds",
                meta(FamilyType::Histogram, "Latency."),
            ),
            ("up", meta(FamilyType::Gauge, "")),
        ];
        assert_eq!(db.declare_families(declared.clone()).unwrap(), 2);
        assert_eq!(db.declare_families(declared).unwrap(), 0, "unchanged");
        assert!(db.already_declared("up", FamilyType::Gauge, b"", b""));
        assert!(db.already_declared("up", FamilyType::Unknown, b"", b""));
        assert!(!db.already_declared("up", FamilyType::Counter, b"", b""));
        assert!(!db.already_declared("up", FamilyType::Gauge, b"Other.", b""));
        assert!(!db.already_declared("nothing", FamilyType::Gauge, b"", b""));
        // A declaration without a type keeps the known one; new help is taken.
        let untyped = [("up", meta(FamilyType::Unknown, "Target up."))];
        assert_eq!(db.declare_families(untyped).unwrap(), 1);
        drop(db);
        let db = Tsdb::open(Box::new(kv), StorageConfig::default())
            .unwrap()
            .tsdb;
        assert_eq!(db.family("up"), Some(meta(FamilyType::Gauge, "Target up.")));
        let names: Vec<String> = db.families().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["http_request_duration_seconds", "up"]);
    }
}

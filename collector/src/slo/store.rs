//! The SLOs created through the API, in table `slos` keyed by name (see `records.rs` for the
//! values). Every write is durable before it returns.

use super::definition::{SloDefinition, SloName};
use super::records::{decode, encode};
use crate::storage::{KvBatch, StoreError, Table, Tsdb};

/// The API-created SLOs of a store.
pub struct SloStore<'a> {
    tsdb: &'a Tsdb,
}

impl<'a> SloStore<'a> {
    pub fn new(tsdb: &'a Tsdb) -> Self {
        Self { tsdb }
    }

    /// Every stored SLO, by name; the first unreadable one fails the listing.
    pub fn list(&self) -> Result<Vec<SloDefinition>, StoreError> {
        let mut out = Vec::new();
        let mut failed = None;
        self.tsdb.kv().scan(
            Table::Slos,
            &[],
            &[0xff],
            &mut |key, value| match decode(key, value) {
                Ok(def) => {
                    out.push(def);
                    true
                }
                Err(e) => {
                    failed = Some(e);
                    false
                }
            },
        )?;
        match failed {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Stores `def` under its name, replacing one of that name.
    pub fn put(&self, def: &SloDefinition) -> Result<(), StoreError> {
        let mut batch = KvBatch::default();
        batch.put(Table::Slos, def.name.as_str().as_bytes(), encode(def));
        self.tsdb.kv().write(batch, true)
    }

    /// Deletes the SLO `name`; false when there was none.
    pub fn delete(&self, name: &SloName) -> Result<bool, StoreError> {
        let key = name.as_str().as_bytes();
        if self.tsdb.kv().get(Table::Slos, key)?.is_none() {
            return Ok(false);
        }
        let mut batch = KvBatch::default();
        batch.delete(Table::Slos, key);
        self.tsdb.kv().write(batch, true)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slo::definition::{Origin, Sli};
    use crate::storage::{MemoryKv, StorageConfig};

    #[test]
    fn put_list_replace_and_delete() {
        let tsdb = Tsdb::open(Box::new(MemoryKv::default()), StorageConfig::default())
            .unwrap()
            .tsdb;
        let store = SloStore::new(&tsdb);
        let def = |name: &str, target: f64| SloDefinition {
            target,
            ..SloDefinition::new(
                name.parse().unwrap(),
                "",
                Sli::Ratio {
                    good: "a".into(),
                    valid: "b".into(),
                },
                Origin::Api,
            )
        };
        store.put(&def("b", 0.95)).unwrap();
        store.put(&def("a", 0.95)).unwrap();
        store.put(&def("b", 0.99)).unwrap();
        let listed = store.list().unwrap();
        assert_eq!(listed, vec![def("a", 0.95), def("b", 0.99)]);
        assert!(store.delete(&"a".parse().unwrap()).unwrap());
        assert!(!store.delete(&"a".parse().unwrap()).unwrap());
        assert_eq!(store.list().unwrap(), vec![def("b", 0.99)]);
    }
}

//! The series catalog: label set ↔ series id, with an inverted index (label → value → ids) so
//! selectors find their series without scanning all of them.
//!
//! Rebuilt from the store at start-up. A series enters the catalog only after its definition is
//! durable, so the catalog never names a series the store lacks.

use crate::storage::{MetricKind, SeriesId, SeriesMeta, StoreError, Tsdb};
use hcmon_common::{Labels, MatchOp, Selector};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

#[derive(Default)]
struct Inner {
    by_labels: HashMap<Labels, SeriesId>,
    by_id: HashMap<SeriesId, Arc<SeriesMeta>>,
    /// label name → label value → ids, each list sorted (ids only grow).
    postings: HashMap<String, HashMap<String, Vec<SeriesId>>>,
    /// metric name → kind, so one name never carries two kinds.
    kinds: HashMap<String, MetricKind>,
    next_id: u64,
}

impl Inner {
    fn insert(&mut self, meta: SeriesMeta) {
        for (name, value) in meta.labels.iter() {
            self.postings
                .entry(name.to_owned())
                .or_default()
                .entry(value.to_owned())
                .or_default()
                .push(meta.id);
        }
        self.kinds
            .entry(meta.labels.metric_name().to_owned())
            .or_insert(meta.kind);
        self.next_id = self.next_id.max(meta.id.0 + 1);
        self.by_labels.insert(meta.labels.clone(), meta.id);
        self.by_id.insert(meta.id, Arc::new(meta));
    }
}

/// A series a writer wants, by identity.
#[derive(Debug, Clone)]
pub struct SeriesDefinition {
    pub labels: Labels,
    pub kind: MetricKind,
    pub help: String,
}

/// A definition that cannot be accepted.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error("metric {name:?} is already a {existing} here; it cannot also be a {requested}")]
    KindConflict {
        name: String,
        existing: &'static str,
        requested: &'static str,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct SeriesCatalog {
    inner: RwLock<Inner>,
    /// Held while creating series, so two writers never give one label set two ids.
    creating: Mutex<()>,
}

impl SeriesCatalog {
    pub fn new(series: Vec<SeriesMeta>) -> Self {
        let mut inner = Inner {
            next_id: 1,
            ..Inner::default()
        };
        for meta in series {
            inner.insert(meta);
        }
        Self {
            inner: RwLock::new(inner),
            creating: Mutex::new(()),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    /// The id of a known series.
    pub fn lookup(&self, labels: &Labels) -> Option<SeriesId> {
        self.read().by_labels.get(labels).copied()
    }

    /// A known series by id.
    pub fn get(&self, id: SeriesId) -> Option<Arc<SeriesMeta>> {
        self.read().by_id.get(&id).cloned()
    }

    /// Ids for the given definitions, creating (durably, in `tsdb`) those not yet known.
    pub fn resolve(
        &self,
        tsdb: &Tsdb,
        defs: &[SeriesDefinition],
    ) -> Result<Vec<SeriesId>, ResolveError> {
        let mut out = Vec::with_capacity(defs.len());
        let mut missing = Vec::new();
        {
            let inner = self.read();
            for (i, def) in defs.iter().enumerate() {
                match inner.by_labels.get(&def.labels) {
                    Some(&id) => out.push(id),
                    None => {
                        out.push(SeriesId(0));
                        missing.push(i);
                    }
                }
            }
        }
        if missing.is_empty() {
            return Ok(out);
        }
        let _creating = self.creating.lock().unwrap_or_else(|p| p.into_inner());
        let mut created: Vec<SeriesMeta> = Vec::new();
        {
            let inner = self.read();
            let mut next = inner.next_id;
            for i in missing {
                let def = &defs[i];
                if let Some(&id) = inner.by_labels.get(&def.labels) {
                    out[i] = id; // another writer created it meanwhile
                    continue;
                }
                if let Some(same) = created.iter().find(|m| m.labels == def.labels) {
                    out[i] = same.id;
                    continue;
                }
                let name = def.labels.metric_name();
                let existing = inner.kinds.get(name).copied().or_else(|| {
                    created
                        .iter()
                        .find(|m| m.labels.metric_name() == name)
                        .map(|m| m.kind)
                });
                if let Some(existing) = existing.filter(|k| *k != def.kind) {
                    return Err(ResolveError::KindConflict {
                        name: name.to_owned(),
                        existing: existing.as_str(),
                        requested: def.kind.as_str(),
                    });
                }
                out[i] = SeriesId(next);
                created.push(SeriesMeta {
                    id: SeriesId(next),
                    labels: def.labels.clone(),
                    kind: def.kind,
                    help: def.help.clone(),
                });
                next += 1;
            }
        }
        if !created.is_empty() {
            tsdb.create_series(&created)?;
            let mut inner = self.inner.write().unwrap_or_else(|p| p.into_inner());
            for meta in created {
                inner.insert(meta);
            }
        }
        Ok(out)
    }

    /// Every series matching a selector, sorted by metric name, then labels.
    pub fn select(&self, selector: &Selector) -> Vec<Arc<SeriesMeta>> {
        let inner = self.read();
        // Narrow with the index: equality matchers give id lists directly; regex matchers that
        // cannot match "" give the union over the label's matching values. Others filter after.
        let mut candidates: Option<Vec<SeriesId>> = None;
        for m in &selector.matchers {
            let ids = match m.op {
                MatchOp::Equal if !m.value.is_empty() => inner
                    .postings
                    .get(&m.name)
                    .and_then(|values| values.get(&m.value))
                    .cloned()
                    .unwrap_or_default(),
                MatchOp::Regex if !m.matches("") => {
                    let mut ids: Vec<SeriesId> = inner
                        .postings
                        .get(&m.name)
                        .into_iter()
                        .flatten()
                        .filter(|(value, _)| m.matches(value))
                        .flat_map(|(_, ids)| ids.iter().copied())
                        .collect();
                    ids.sort_unstable();
                    ids
                }
                _ => continue,
            };
            candidates = Some(match candidates {
                None => ids,
                Some(current) => intersect(&current, &ids),
            });
        }
        let mut out: Vec<Arc<SeriesMeta>> = match candidates {
            Some(ids) => ids
                .iter()
                .filter_map(|id| inner.by_id.get(id))
                .filter(|m| selector.matches(&m.labels))
                .cloned()
                .collect(),
            None => inner
                .by_id
                .values()
                .filter(|m| selector.matches(&m.labels))
                .cloned()
                .collect(),
        };
        out.sort_by(|a, b| by_name_then_labels(&a.labels, &b.labels));
        out
    }

    /// Label names in use, sorted.
    pub fn label_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.read().postings.keys().cloned().collect();
        names.sort();
        names
    }

    /// Values a label takes, sorted.
    pub fn label_values(&self, name: &str) -> Vec<String> {
        let mut values: Vec<String> = self
            .read()
            .postings
            .get(name)
            .map(|v| v.keys().cloned().collect())
            .unwrap_or_default();
        values.sort();
        values
    }

    /// Every series, sorted by metric name, then labels.
    pub fn all(&self) -> Vec<Arc<SeriesMeta>> {
        let mut out: Vec<_> = self.read().by_id.values().cloned().collect();
        out.sort_by(|a, b| by_name_then_labels(&a.labels, &b.labels));
        out
    }

    /// Number of series known.
    pub fn len(&self) -> usize {
        self.read().by_id.len()
    }

    /// Whether no series is known yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn intersect(a: &[SeriesId], b: &[SeriesId]) -> Vec<SeriesId> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// Orders series so that all series of one metric name are adjacent (label names may sort before
/// `__name__`, so plain label order does not guarantee that).
fn by_name_then_labels(a: &Labels, b: &Labels) -> std::cmp::Ordering {
    a.metric_name().cmp(b.metric_name()).then_with(|| a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{MemoryKv, StorageConfig};

    fn def(name: &str, node: &str, kind: MetricKind) -> SeriesDefinition {
        SeriesDefinition {
            labels: Labels::new(name, [("node".to_owned(), node.to_owned())]).unwrap(),
            kind,
            help: String::new(),
        }
    }

    #[test]
    fn resolves_once_selects_by_index_and_refuses_kind_conflicts() {
        let crate::storage::Recovered { tsdb, .. } =
            Tsdb::open(Box::new(MemoryKv::default()), StorageConfig::default()).unwrap();
        let catalog = SeriesCatalog::new(vec![]);
        let defs = [
            def("cpu", "a", MetricKind::Gauge),
            def("cpu", "b", MetricKind::Gauge),
            def("cpu", "a", MetricKind::Gauge),
        ];
        let ids = catalog.resolve(&tsdb, &defs).unwrap();
        assert_eq!(ids[0], ids[2], "one label set, one id");
        assert_ne!(ids[0], ids[1]);
        assert_eq!(catalog.resolve(&tsdb, &defs[..1]).unwrap(), vec![ids[0]]);

        let names = |sel: &str| -> Vec<String> {
            catalog
                .select(&Selector::parse(sel).unwrap())
                .iter()
                .map(|m| m.labels.to_string())
                .collect()
        };
        assert_eq!(names(r#"cpu{node="b"}"#), vec![r#"cpu{node="b"}"#]);
        assert_eq!(names(r#"{node=~"a|b"}"#).len(), 2);
        assert_eq!(names(r#"cpu{node!="a"}"#), vec![r#"cpu{node="b"}"#]);
        assert!(names(r#"cpu{node="zzz"}"#).is_empty());

        let err = catalog
            .resolve(&tsdb, &[def("cpu", "c", MetricKind::Counter)])
            .unwrap_err();
        assert!(err.to_string().contains("already a gauge"), "{err}");
    }
}

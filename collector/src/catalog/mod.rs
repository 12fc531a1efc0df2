//! The series catalog: label set ↔ series id, with an inverted index (label → value → ids) so
//! selectors find their series without scanning all of them.
//!
//! Rebuilt from the store at start-up. A series enters the catalog only after its definition is
//! written, so the catalog never names a series the store lacks, and every sample naming it is
//! appended after it: the append syncs the store before its log record when definitions were
//! written since the last sync (`Tsdb::append`), so a sample on disk always has its series.
//!
//! Creating series. One writer may bring 100 000 new series (a remote write) while agents keep
//! streaming, so creation is linear and never holds anything for the whole of a large request:
//! - Label sets are looked up and deduplicated by hash, in chunks of [`LOOKUP_CHUNK`] under the
//!   read lock, so a creator waiting for the write lock is never held up for long (and, since a
//!   waiting writer blocks new readers, neither are queries).
//! - Creation is serialised (one label set, one id) by a lock granted in arrival order. A
//!   request first *admits* its new series under it: kinds are checked and claimed, and the
//!   per-node and total caps are checked against the series that exist plus those other writers
//!   have admitted but not created yet (`reserved`), so concurrent creators cannot together
//!   overshoot a cap, and nothing is created for a request that is refused. Then the series are
//!   written and entered in the catalog [`CREATE_CHUNK`] at a time, the lock given up between
//!   chunks: a writer with a few new series waits for one chunk, not the whole request. The
//!   write is not synced (see [`Tsdb::create_series`]), so a turn holds no `fdatasync`.

mod size;

use crate::storage::{MetricKind, SeriesId, SeriesMeta, StoreError, Tsdb};
use hcmon_common::{Labels, MatchOp, Selector};
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::BuildHasher;
use std::sync::{Arc, Condvar, Mutex, RwLock};

/// Label sets looked up per read-lock hold.
const LOOKUP_CHUNK: usize = 4096;
/// Series written (one batch) and entered in the catalog per creation turn.
const CREATE_CHUNK: usize = 2048;
/// The label naming the node a series belongs to; the per-node cap counts series by it.
const NODE_LABEL: &str = "node";

#[derive(Default)]
struct Inner {
    /// Label set → id, through the label set's hash: the labels themselves live once, in
    /// `by_id` (a map keyed by `Labels` would hold a second copy of every series' strings).
    by_labels: HashMap<u64, Vec<SeriesId>>,
    hasher: std::hash::RandomState,
    by_id: HashMap<SeriesId, Arc<SeriesMeta>>,
    /// Counts changes to `by_id` (and with them to `by_labels` and `postings`), so a sorted
    /// copy and a walked size know whether they are still current.
    generation: u64,
    /// label name → label value → ids, each list sorted (ids only grow).
    postings: HashMap<String, HashMap<String, Vec<SeriesId>>>,
    /// metric name → kind, so one name never carries two kinds.
    kinds: HashMap<String, MetricKind>,
    next_id: u64,
    /// Series admitted for creation but not entered yet, in all and per node: the caps count
    /// them as existing.
    reserved: usize,
    reserved_by_node: HashMap<String, usize>,
}

impl Inner {
    /// The id of a series with exactly these labels.
    fn find(&self, labels: &Labels) -> Option<SeriesId> {
        let ids = self.by_labels.get(&self.hasher.hash_one(labels))?;
        ids.iter()
            .copied()
            .find(|id| self.by_id.get(id).is_some_and(|m| m.labels == *labels))
    }

    fn unindex(&mut self, labels: &Labels, id: SeriesId) {
        let hash = self.hasher.hash_one(labels);
        if let Some(ids) = self.by_labels.get_mut(&hash) {
            ids.retain(|&i| i != id);
            if ids.is_empty() {
                self.by_labels.remove(&hash);
            }
        }
    }

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
        let hash = self.hasher.hash_one(&meta.labels);
        self.by_labels.entry(hash).or_default().push(meta.id);
        self.by_id.insert(meta.id, Arc::new(meta));
        self.generation += 1;
    }

    /// Series of `node`, admitted ones included.
    fn node_series(&self, node: &str) -> usize {
        let existing = self
            .postings
            .get(NODE_LABEL)
            .and_then(|values| values.get(node))
            .map_or(0, Vec::len);
        existing + self.reserved_by_node.get(node).copied().unwrap_or(0)
    }

    /// Series in all, admitted ones included.
    fn total_series(&self) -> usize {
        self.by_id.len() + self.reserved
    }

    fn reserve(&mut self, labels: &Labels) {
        self.reserved += 1;
        if let Some(node) = labels.get(NODE_LABEL) {
            *self.reserved_by_node.entry(node.to_owned()).or_default() += 1;
        }
    }

    fn release(&mut self, labels: &Labels) {
        self.reserved = self.reserved.saturating_sub(1);
        if let Some(node) = labels.get(NODE_LABEL)
            && let Some(count) = self.reserved_by_node.get_mut(node)
        {
            *count -= 1;
            if *count == 0 {
                self.reserved_by_node.remove(node);
            }
        }
    }
}

/// A series a writer wants, by identity.
#[derive(Debug, Clone)]
pub struct SeriesDefinition {
    pub labels: Labels,
    pub kind: MetricKind,
    pub help: String,
}

/// How many series may exist: per node (series with that `node` label) and in all.
#[derive(Debug, Clone, Copy)]
pub struct SeriesCaps {
    pub per_node: usize,
    pub total: usize,
}

/// A cap that creating a writer's new series would break.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CapExceeded {
    #[error(
        "node {node:?} would have {count} series, over the limit of {max} per node; if it really has that many, raise `limits.max_series_per_agent` in the collector's config"
    )]
    PerNode {
        node: String,
        count: usize,
        max: usize,
    },
    #[error(
        "the collector would hold {count} series, over its limit of {max} in all; raise `limits.max_series` in the collector's config"
    )]
    Total { count: usize, max: usize },
}

impl CapExceeded {
    /// A short, bounded label for the rejected-batches metric.
    pub fn reason(&self) -> &'static str {
        match self {
            CapExceeded::PerNode { .. } => "node_series_limit",
            CapExceeded::Total { .. } => "total_series_limit",
        }
    }
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
    OverCap(#[from] CapExceeded),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// New series left uncreated because a cap was reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapRefusal {
    /// The first cap a definition ran into.
    pub cap: CapExceeded,
    /// Label sets not created.
    pub series: usize,
}

/// The outcome of [`SeriesCatalog::resolve_within_caps`].
#[derive(Debug)]
pub struct Resolved {
    /// Per definition, its id; `None` for those a cap refused.
    pub ids: Vec<Option<SeriesId>>,
    pub refused: Option<CapRefusal>,
}

/// What happens to a request whose new series do not all fit under the caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OverCap {
    /// Create none of them (an agent's batch is stored whole or not at all).
    RefuseAll,
    /// Create those that fit (remote write stores what it can, as Prometheus backends do).
    CreateWhatFits,
}

/// A lock granted in arrival order. With std's `Mutex`, a thread that gives the lock up between
/// chunks usually takes it straight back, and a writer with one new series could wait out a
/// whole large creation.
#[derive(Default)]
struct FairLock {
    tickets: Mutex<Tickets>,
    turn: Condvar,
}

#[derive(Default)]
struct Tickets {
    issued: u64,
    serving: u64,
}

struct FairGuard<'a>(&'a FairLock);

impl FairLock {
    fn tickets(&self) -> std::sync::MutexGuard<'_, Tickets> {
        self.tickets.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock(&self) -> FairGuard<'_> {
        let mut tickets = self.tickets();
        let mine = tickets.issued;
        tickets.issued += 1;
        while tickets.serving != mine {
            tickets = self.turn.wait(tickets).unwrap_or_else(|p| p.into_inner());
        }
        FairGuard(self)
    }

    /// Threads waiting for their turn.
    #[cfg(test)]
    fn waiting(&self) -> u64 {
        let tickets = self.tickets();
        (tickets.issued - tickets.serving).saturating_sub(1)
    }
}

impl Drop for FairGuard<'_> {
    fn drop(&mut self) {
        self.0.tickets().serving += 1;
        self.0.turn.notify_all();
    }
}

/// Admitted series not entered in the catalog yet; their reservations are given back as they
/// are entered, and the rest when creation stops early (a storage failure).
struct Reservation<'a> {
    catalog: &'a SeriesCatalog,
    defs: &'a [SeriesDefinition],
    /// Indices into `defs`, in creation order; `entered` of them are done.
    admitted: Vec<usize>,
    entered: usize,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let left = &self.admitted[self.entered..];
        if left.is_empty() {
            return;
        }
        let mut inner = self.catalog.write();
        for &i in left {
            inner.release(&self.defs[i].labels);
        }
    }
}

pub struct SeriesCatalog {
    inner: RwLock<Inner>,
    /// Whose turn it is to create series (see the module header).
    creating: FairLock,
    /// [`SeriesCatalog::all`]'s answer and the generation of `inner` it was sorted at: every
    /// `/metrics` scrape walks all series in order, and sorting 20,000 of them took most of
    /// the scrape, again at every scrape of an unchanged catalog.
    sorted: Mutex<Option<(u64, Vec<Arc<SeriesMeta>>)>>,
    /// [`SeriesCatalog::state_bytes`]' walk of every series and the generation it was made
    /// at: a scrape of `/metrics?collect[]=collector` asks for it, and walking 20,000 series
    /// was most of that scrape, again at every scrape of an unchanged catalog.
    sized: Mutex<Option<(u64, usize)>>,
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
            creating: FairLock::default(),
            sorted: Mutex::new(None),
            sized: Mutex::new(None),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The id of a known series.
    pub fn lookup(&self, labels: &Labels) -> Option<SeriesId> {
        self.read().find(labels)
    }

    /// A known series by id.
    pub fn get(&self, id: SeriesId) -> Option<Arc<SeriesMeta>> {
        self.read().by_id.get(&id).cloned()
    }

    /// Ids for the given definitions, creating (durably, in `tsdb`) those not yet known. If the
    /// new ones do not all fit under `caps`, none is created.
    pub fn resolve(
        &self,
        tsdb: &Tsdb,
        defs: &[SeriesDefinition],
        caps: SeriesCaps,
    ) -> Result<Vec<SeriesId>, ResolveError> {
        let (ids, _) = self.resolve_with(tsdb, defs, caps, OverCap::RefuseAll)?;
        Ok(ids
            .into_iter()
            .map(|id| id.expect("with nothing refused, every definition has an id"))
            .collect())
    }

    /// Ids for the given definitions, creating (durably, in `tsdb`) those not yet known and
    /// fitting under `caps`, in order; the others get none.
    pub fn resolve_within_caps(
        &self,
        tsdb: &Tsdb,
        defs: &[SeriesDefinition],
        caps: SeriesCaps,
    ) -> Result<Resolved, ResolveError> {
        let (ids, refused) = self.resolve_with(tsdb, defs, caps, OverCap::CreateWhatFits)?;
        Ok(Resolved { ids, refused })
    }

    fn resolve_with(
        &self,
        tsdb: &Tsdb,
        defs: &[SeriesDefinition],
        caps: SeriesCaps,
        over_cap: OverCap,
    ) -> Result<(Vec<Option<SeriesId>>, Option<CapRefusal>), ResolveError> {
        let mut ids: Vec<Option<SeriesId>> = vec![None; defs.len()];
        // The first definition of each unknown label set, and repeats → that first one.
        let mut missing = Vec::new();
        let mut repeats = Vec::new();
        let mut first_of: HashMap<&Labels, usize> = HashMap::new();
        for (start, chunk) in (0..).step_by(LOOKUP_CHUNK).zip(defs.chunks(LOOKUP_CHUNK)) {
            let inner = self.read();
            for (i, def) in (start..).zip(chunk) {
                if let Some(id) = inner.find(&def.labels) {
                    ids[i] = Some(id);
                    continue;
                }
                match first_of.entry(&def.labels) {
                    Entry::Occupied(first) => repeats.push((i, *first.get())),
                    Entry::Vacant(slot) => {
                        slot.insert(i);
                        missing.push(i);
                    }
                }
            }
        }
        if missing.is_empty() {
            return Ok((ids, None));
        }

        let mut turn = Some(self.creating.lock());
        let (admitted, refused) = self.admit(defs, &missing, &mut ids, caps, over_cap)?;
        let mut reservation = Reservation {
            catalog: self,
            defs,
            admitted,
            entered: 0,
        };
        while reservation.entered < reservation.admitted.len() {
            // The first chunk goes in the turn that admitted it; each later one waits its turn
            // behind whoever queued meanwhile.
            let _turn = turn.take().unwrap_or_else(|| self.creating.lock());
            let end = (reservation.entered + CREATE_CHUNK).min(reservation.admitted.len());
            let chunk = &reservation.admitted[reservation.entered..end];
            let mut created = Vec::with_capacity(chunk.len());
            {
                let inner = self.read();
                let mut next = inner.next_id;
                for &i in chunk {
                    let def = &defs[i];
                    // Another writer may have created it since it was admitted.
                    if let Some(id) = inner.find(&def.labels) {
                        ids[i] = Some(id);
                        continue;
                    }
                    ids[i] = Some(SeriesId(next));
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
            }
            let mut inner = self.write();
            for meta in created {
                inner.insert(meta);
            }
            for &i in chunk {
                inner.release(&defs[i].labels);
            }
            reservation.entered = end;
        }
        for (i, first) in repeats {
            ids[i] = ids[first];
        }
        Ok((ids, refused))
    }

    /// Under the creation turn: finds which of `missing` are still unknown, checks their kinds
    /// (any conflict refuses the request) and the caps, then claims the kinds and reserves room
    /// for those admitted. Returns the admitted, in order, and what the caps refused.
    fn admit(
        &self,
        defs: &[SeriesDefinition],
        missing: &[usize],
        ids: &mut [Option<SeriesId>],
        caps: SeriesCaps,
        over_cap: OverCap,
    ) -> Result<(Vec<usize>, Option<CapRefusal>), ResolveError> {
        let inner = self.read();
        let mut new = Vec::with_capacity(missing.len());
        for &i in missing {
            match inner.find(&defs[i].labels) {
                Some(id) => ids[i] = Some(id),
                None => new.push(i),
            }
        }
        let mut kinds: HashMap<&str, MetricKind> = HashMap::new();
        let mut wanted_by_node: HashMap<&str, usize> = HashMap::new();
        for &i in &new {
            let def = &defs[i];
            let name = def.labels.metric_name();
            let existing = inner.kinds.get(name).or_else(|| kinds.get(name)).copied();
            match existing {
                Some(existing) if existing != def.kind => {
                    return Err(ResolveError::KindConflict {
                        name: name.to_owned(),
                        existing: existing.as_str(),
                        requested: def.kind.as_str(),
                    });
                }
                Some(_) => {}
                None => {
                    kinds.insert(name, def.kind);
                }
            }
            if let Some(node) = def.labels.get(NODE_LABEL) {
                *wanted_by_node.entry(node).or_default() += 1;
            }
        }

        let total = inner.total_series();
        // What a cap would be reached at, were all of the request's new series created.
        let over_node = |node: &str| CapExceeded::PerNode {
            node: node.to_owned(),
            count: inner.node_series(node) + wanted_by_node.get(node).copied().unwrap_or(0),
            max: caps.per_node,
        };
        let wanted_total = total + new.len();
        let over_total = || CapExceeded::Total {
            count: wanted_total,
            max: caps.total,
        };
        let (admitted, refused) = match over_cap {
            OverCap::RefuseAll => {
                let crowded = new.iter().find_map(|&i| {
                    let node = defs[i].labels.get(NODE_LABEL)?;
                    (inner.node_series(node) + wanted_by_node[node] > caps.per_node).then_some(node)
                });
                if let Some(node) = crowded {
                    return Err(over_node(node).into());
                }
                if wanted_total > caps.total {
                    return Err(over_total().into());
                }
                (new, None)
            }
            OverCap::CreateWhatFits => {
                let mut admitted = Vec::with_capacity(new.len());
                let mut added_by_node: HashMap<&str, usize> = HashMap::new();
                let mut refused: Option<CapRefusal> = None;
                for i in new {
                    let node = defs[i].labels.get(NODE_LABEL);
                    let cap = if total + admitted.len() >= caps.total {
                        Some(over_total())
                    } else {
                        node.filter(|node| {
                            inner.node_series(node) + added_by_node.get(node).copied().unwrap_or(0)
                                >= caps.per_node
                        })
                        .map(over_node)
                    };
                    match cap {
                        Some(cap) => {
                            refused.get_or_insert(CapRefusal { cap, series: 0 }).series += 1
                        }
                        None => {
                            admitted.push(i);
                            if let Some(node) = node {
                                *added_by_node.entry(node).or_default() += 1;
                            }
                        }
                    }
                }
                (admitted, refused)
            }
        };
        drop(inner);

        // A kind claimed for series whose creation then fails in storage stays claimed until a
        // restart: refusing that name another kind meanwhile is the lesser harm.
        let mut inner = self.write();
        for &i in &admitted {
            let labels = &defs[i].labels;
            if !inner.kinds.contains_key(labels.metric_name()) {
                inner
                    .kinds
                    .insert(labels.metric_name().to_owned(), defs[i].kind);
            }
            inner.reserve(labels);
        }
        Ok((admitted, refused))
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

    /// Every series, sorted by metric name, then labels. Sorted once per change of the
    /// catalog.
    pub fn all(&self) -> Vec<Arc<SeriesMeta>> {
        let (generation, mut out) = {
            let inner = self.read();
            let sorted = self.sorted.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, list)) = &*sorted
                && *at == inner.generation
            {
                return list.clone();
            }
            let all: Vec<_> = inner.by_id.values().cloned().collect();
            (inner.generation, all)
        };
        // Outside the catalog's lock, so creators do not wait for the sort.
        out.sort_by(|a, b| by_name_then_labels(&a.labels, &b.labels));
        let mut sorted = self.sorted.lock().unwrap_or_else(|p| p.into_inner());
        if sorted.as_ref().is_none_or(|(at, _)| *at < generation) {
            *sorted = Some((generation, out.clone()));
        }
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

    /// New series get ids from `first` on (at least): the store's deleted ids are never handed
    /// out again.
    pub fn start_ids_at(&self, first: u64) {
        let mut inner = self.write();
        inner.next_id = inner.next_id.max(first);
    }

    /// Takes every series of `node` (by its `node` label) out of the catalog and returns their
    /// ids, for the store to delete. Ids are not reused: a series created again under the same
    /// labels gets a new one (after a restart too, see [`Self::start_ids_at`]).
    pub fn remove_node_series(&self, node: &str) -> Vec<SeriesId> {
        // In turn with creators: a creation that already holds its turn finishes its current
        // chunk first. One that resumes after this removal may create series of the node
        // again; they are new series (new ids), as if written just after the forgetting.
        let _turn = self.creating.lock();
        let mut inner = self.write();
        let ids: Vec<SeriesId> = inner
            .postings
            .get(NODE_LABEL)
            .and_then(|values| values.get(node))
            .cloned()
            .unwrap_or_default();
        for id in &ids {
            let Some(meta) = inner.by_id.remove(id) else {
                continue;
            };
            inner.generation += 1;
            inner.unindex(&meta.labels, meta.id);
            let metric = meta.labels.metric_name();
            let still_named = inner
                .postings
                .get("__name__")
                .and_then(|values| values.get(metric))
                .is_some_and(|list| list.iter().any(|other| other != id));
            if !still_named {
                // The last series of a name frees its kind for whoever uses the name next.
                inner.kinds.remove(metric);
            }
            for (name, value) in meta.labels.iter() {
                let Some(values) = inner.postings.get_mut(name) else {
                    continue;
                };
                if let Some(list) = values.get_mut(value) {
                    list.retain(|other| other != id);
                    if list.is_empty() {
                        values.remove(value);
                    }
                }
                if values.is_empty() {
                    inner.postings.remove(name);
                }
            }
        }
        drop(inner);
        // The sorted list would keep the removed series' metadata until the next listing.
        *self.sorted.lock().unwrap_or_else(|p| p.into_inner()) = None;
        ids
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
    use crate::storage::{Kv, KvBatch, MemoryKv, StorageConfig, Table};

    /// Caps no test here reaches unless it means to.
    const ROOMY: SeriesCaps = SeriesCaps {
        per_node: usize::MAX,
        total: usize::MAX,
    };

    fn def(name: &str, node: &str, kind: MetricKind) -> SeriesDefinition {
        SeriesDefinition {
            labels: Labels::new(name, [("node".to_owned(), node.to_owned())]).unwrap(),
            kind,
            help: String::new(),
        }
    }

    fn gauge(name: &str, node: &str) -> SeriesDefinition {
        def(name, node, MetricKind::Gauge)
    }

    fn store() -> Tsdb {
        Tsdb::open(Box::new(MemoryKv::default()), StorageConfig::default())
            .unwrap()
            .tsdb
    }

    /// The sorted list is kept between calls, and follows every creation and removal.
    #[test]
    fn all_lists_every_series_in_order_after_each_change() {
        let tsdb = store();
        let catalog = SeriesCatalog::new(vec![]);
        let names =
            || -> Vec<String> { catalog.all().iter().map(|m| m.labels.to_string()).collect() };
        assert!(names().is_empty());
        catalog
            .resolve(&tsdb, &[gauge("mem", "b"), gauge("cpu", "b")], ROOMY)
            .unwrap();
        assert_eq!(names(), [r#"cpu{node="b"}"#, r#"mem{node="b"}"#]);
        assert_eq!(names(), [r#"cpu{node="b"}"#, r#"mem{node="b"}"#]);
        catalog.resolve(&tsdb, &[gauge("cpu", "a")], ROOMY).unwrap();
        let three = [r#"cpu{node="a"}"#, r#"cpu{node="b"}"#, r#"mem{node="b"}"#];
        assert_eq!(names(), three);
        catalog.remove_node_series("b");
        assert_eq!(names(), [r#"cpu{node="a"}"#]);
    }

    /// The size kept between calls follows every creation and removal.
    #[test]
    fn state_bytes_follow_each_change() {
        let tsdb = store();
        let catalog = SeriesCatalog::new(vec![]);
        let empty = catalog.state_bytes();
        catalog.resolve(&tsdb, &[gauge("mem", "b")], ROOMY).unwrap();
        let one = catalog.state_bytes();
        assert!(one > empty, "{one} after a series, {empty} before");
        assert_eq!(catalog.state_bytes(), one);
        catalog
            .resolve(&tsdb, &[gauge("cpu", "a"), gauge("disk", "a")], ROOMY)
            .unwrap();
        let three = catalog.state_bytes();
        assert!(three > one, "{three} after three series, {one} after one");
        catalog.remove_node_series("a");
        assert!(catalog.state_bytes() < three);
        catalog.remove_node_series("b");
        assert_eq!(catalog.state_bytes(), empty);
    }

    #[test]
    fn resolves_once_selects_by_index_and_refuses_kind_conflicts() {
        let tsdb = store();
        let catalog = SeriesCatalog::new(vec![]);
        let defs = [gauge("cpu", "a"), gauge("cpu", "b"), gauge("cpu", "a")];
        let ids = catalog.resolve(&tsdb, &defs, ROOMY).unwrap();
        assert_eq!(ids[0], ids[2], "one label set, one id");
        assert_ne!(ids[0], ids[1]);
        assert_eq!(
            catalog.resolve(&tsdb, &defs[..1], ROOMY).unwrap(),
            vec![ids[0]]
        );

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
            .resolve(&tsdb, &[def("cpu", "c", MetricKind::Counter)], ROOMY)
            .unwrap_err();
        assert!(err.to_string().contains("already a gauge"), "{err}");

        // Two kinds for one new name in one request: refused before anything is created.
        let err = catalog
            .resolve(
                &tsdb,
                &[
                    gauge("disk", "a"),
                    gauge("net", "a"),
                    def("disk", "b", MetricKind::Counter),
                ],
                ROOMY,
            )
            .unwrap_err();
        assert!(
            err.to_string().contains("\"disk\" is already a gauge"),
            "{err}"
        );
        assert_eq!(catalog.len(), 2);
    }

    type Hook = Box<dyn FnOnce() + Send>;

    /// A store that runs a hook inside the first write after it is armed.
    #[derive(Clone, Default)]
    struct HookedKv {
        kv: MemoryKv,
        hook: Arc<Mutex<Option<Hook>>>,
    }

    impl Kv for HookedKv {
        fn write(&self, batch: KvBatch, durable: bool) -> Result<(), StoreError> {
            let hook = self.hook.lock().unwrap().take();
            if let Some(hook) = hook {
                hook();
            }
            self.kv.write(batch, durable)
        }
        fn scan(
            &self,
            table: Table,
            start: &[u8],
            end: &[u8],
            visit: &mut (dyn FnMut(&[u8], &[u8]) -> bool + '_),
        ) -> Result<(), StoreError> {
            self.kv.scan(table, start, end, visit)
        }
        fn disk_size(&self, table: Table) -> u64 {
            self.kv.disk_size(table)
        }
        fn compact(&self, table: Table) -> Result<(), StoreError> {
            self.kv.compact(table)
        }
        fn flush(&self) -> Result<(), StoreError> {
            self.kv.flush()
        }
        fn sync(&self) -> Result<(), StoreError> {
            self.kv.sync()
        }
        fn log(&self) -> &dyn crate::storage::Log {
            self.kv.log()
        }
    }

    #[test]
    fn a_large_creation_lets_another_writer_create_between_its_chunks() {
        let kv = HookedKv::default();
        let tsdb = Arc::new(
            Tsdb::open(Box::new(kv.clone()), StorageConfig::default())
                .unwrap()
                .tsdb,
        );
        let catalog = Arc::new(SeriesCatalog::new(vec![]));

        // While the large creation writes its first chunk, another writer asks for one new
        // series and queues for its turn.
        let other = Arc::new(Mutex::new(None));
        let (c, t, slot) = (catalog.clone(), tsdb.clone(), other.clone());
        *kv.hook.lock().unwrap() = Some(Box::new(move || {
            let (c2, t2) = (c.clone(), t.clone());
            let handle = std::thread::spawn(move || {
                c2.resolve(&t2, &[gauge("other", "b")], ROOMY).unwrap()[0]
            });
            while c.creating.waiting() == 0 {
                std::thread::yield_now();
            }
            *slot.lock().unwrap() = Some(handle);
        }));

        let flood = |i: usize| {
            let labels = [
                ("node".to_owned(), "a".to_owned()),
                ("i".to_owned(), i.to_string()),
            ];
            SeriesDefinition {
                labels: Labels::new("flood", labels).unwrap(),
                kind: MetricKind::Gauge,
                help: String::new(),
            }
        };
        // 100 000 label sets, the first thousand asked for twice.
        let defs: Vec<_> = (0..100_000).chain(0..1000).map(flood).collect();
        let ids = catalog.resolve(&tsdb, &defs, ROOMY).unwrap();
        let other = other.lock().unwrap().take().unwrap().join().unwrap();

        assert_eq!(
            ids[..1000],
            ids[100_000..],
            "a repeated label set gets its one id"
        );
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), 100_000);
        assert_eq!(catalog.len(), 100_001);
        let (first, last) = (ids.iter().min().unwrap(), ids.iter().max().unwrap());
        assert!(
            *first < other && other < *last,
            "the other writer's series ({other:?}) was created after the whole large creation ({first:?}..={last:?})"
        );
        // Everything is written: a restart sees the same catalog.
        let reopened = Tsdb::open(Box::new(kv.kv.clone()), StorageConfig::default()).unwrap();
        assert_eq!(reopened.series.len(), 100_001);
    }

    #[test]
    fn a_power_cut_keeps_a_series_with_its_samples_and_never_a_sample_without_its_series() {
        use crate::storage::Sample;
        let kv = MemoryKv::with_power_cuts();
        let open = || {
            let opened = Tsdb::open(Box::new(kv.clone()), StorageConfig::default()).unwrap();
            (opened.tsdb, SeriesCatalog::new(opened.series))
        };
        let (tsdb, catalog) = open();
        // Created, then the power goes before any sample of it was stored: nothing to keep.
        catalog
            .resolve(&tsdb, &[gauge("lost", "a")], ROOMY)
            .unwrap();
        kv.power_cut();
        let (tsdb, catalog) = open();
        assert_eq!(catalog.len(), 0, "a series no sample named may go");

        // Created, then a sample of it stored (synced): the cut keeps both.
        let id = catalog
            .resolve(&tsdb, &[gauge("kept", "a")], ROOMY)
            .unwrap()[0];
        let sample = Sample {
            series: id,
            timestamp_ms: 1_700_000_000_000,
            value: 4.0,
        };
        tsdb.append(None, &[sample]).unwrap();
        kv.power_cut();
        let (tsdb, catalog) = open();
        assert_eq!(catalog.len(), 1);
        let found = catalog
            .resolve(&tsdb, &[gauge("kept", "a")], ROOMY)
            .unwrap()[0];
        assert_eq!(
            found, id,
            "the stored sample's series survived under its id"
        );
        let stored = tsdb
            .read_raw(id, sample.timestamp_ms, sample.timestamp_ms)
            .unwrap();
        assert_eq!(stored, vec![(sample.timestamp_ms, 4.0)]);
    }

    #[test]
    fn caps_count_series_per_node_and_in_all() {
        let tsdb = store();
        let catalog = SeriesCatalog::new(vec![]);
        let caps = SeriesCaps {
            per_node: 3,
            total: 5,
        };
        let a12 = catalog
            .resolve(&tsdb, &[gauge("a1", "a"), gauge("a2", "a")], caps)
            .unwrap();

        let err = catalog
            .resolve(&tsdb, &[gauge("a3", "a"), gauge("a4", "a")], caps)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "node \"a\" would have 4 series, over the limit of 3 per node; if it really has that \
             many, raise `limits.max_series_per_agent` in the collector's config"
        );
        assert_eq!(catalog.len(), 2, "nothing is created for a refused request");

        let other_nodes = [gauge("b1", "b"), gauge("b2", "b"), gauge("b3", "b")];
        catalog.resolve(&tsdb, &other_nodes, caps).unwrap();
        let err = catalog
            .resolve(&tsdb, &[gauge("c1", "c")], caps)
            .unwrap_err();
        assert!(matches!(
            err,
            ResolveError::OverCap(CapExceeded::Total { count: 6, max: 5 })
        ));
        assert!(err.to_string().contains("`limits.max_series`"), "{err}");
        assert_eq!(
            catalog.resolve(&tsdb, &[gauge("a1", "a")], caps).unwrap(),
            a12[..1],
            "series that exist resolve at the cap"
        );

        // Creating what fits: node a gets its third series, the collector its seventh.
        let caps = SeriesCaps {
            per_node: 3,
            total: 7,
        };
        let wanted = [
            gauge("a3", "a"),
            gauge("a4", "a"),
            gauge("c1", "c"),
            gauge("c2", "c"),
        ];
        let resolved = catalog.resolve_within_caps(&tsdb, &wanted, caps).unwrap();
        let created: Vec<bool> = resolved.ids.iter().map(Option::is_some).collect();
        assert_eq!(created, [true, false, true, false]);
        assert_eq!(
            resolved.refused,
            Some(CapRefusal {
                cap: CapExceeded::PerNode {
                    node: "a".into(),
                    count: 4,
                    max: 3
                },
                series: 2
            })
        );
        assert_eq!(catalog.len(), 7);
    }
}

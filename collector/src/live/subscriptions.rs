//! One connection's subscriptions and the routing of stored samples to them.
//!
//! A subscription is a client-chosen id and series selectors. Subscriptions live in slots whose
//! index stays theirs until unsubscribed, so routed points (in the outbox) name a slot. Which
//! slots a series goes to is decided once per series, from its labels in the catalog, and
//! cached until the subscriptions change: routing a sample is then one hash lookup, whatever
//! the selectors (regexes included) cost.

use super::outbox::Outbox;
use crate::catalog::SeriesCatalog;
use crate::storage::{Sample, SeriesId, SeriesMeta, is_stale_marker};
use hcmon_common::Selector;
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// Most subscriptions one connection holds.
pub const MAX_SUBSCRIPTIONS: usize = 64;

/// Most selectors in one subscription.
pub const MAX_SELECTORS: usize = 32;

/// Longest subscription id, in bytes.
pub const MAX_ID_BYTES: usize = 128;

/// Most series whose routing a connection remembers; past it the cache starts again (a
/// connection sees every stored series, so this bounds its memory on a large fleet).
const MAX_CACHED_SERIES: usize = 1 << 20;

/// Why a subscription was refused.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum SubscribeError {
    #[error("subscription {id:?}: bad selector {selector:?}: {message}")]
    BadSelector {
        id: String,
        selector: String,
        message: String,
    },
    #[error("subscription {id:?}: give between 1 and {MAX_SELECTORS} selectors in \"match\"")]
    SelectorCount { id: String },
    #[error("a subscription id is 1 to {MAX_ID_BYTES} bytes long")]
    BadId,
    #[error("a connection holds at most {MAX_SUBSCRIPTIONS} subscriptions: unsubscribe first")]
    TooMany,
}

struct Subscription {
    id: String,
    selectors: Vec<Selector>,
}

/// Where one series' samples go.
struct Route {
    series: Arc<SeriesMeta>,
    slots: Box<[usize]>,
}

/// See the module header.
#[derive(Default)]
pub struct Subscriptions {
    slots: Vec<Option<Subscription>>,
    /// `None`: the series goes to no subscription (or is unknown).
    routes: FxHashMap<SeriesId, Option<Route>>,
}

impl Subscriptions {
    /// Adds the subscription `id`, or replaces the one of that id; its slot.
    pub fn subscribe(&mut self, id: &str, selectors: &[String]) -> Result<usize, SubscribeError> {
        if id.is_empty() || id.len() > MAX_ID_BYTES {
            return Err(SubscribeError::BadId);
        }
        if selectors.is_empty() || selectors.len() > MAX_SELECTORS {
            return Err(SubscribeError::SelectorCount { id: id.to_owned() });
        }
        let selectors = selectors
            .iter()
            .map(|text| {
                Selector::parse(text).map_err(|e| SubscribeError::BadSelector {
                    id: id.to_owned(),
                    selector: text.clone(),
                    message: e.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let subscription = Some(Subscription {
            id: id.to_owned(),
            selectors,
        });
        let slot = match self.slot_of(id) {
            Some(slot) => slot,
            None if self.len() >= MAX_SUBSCRIPTIONS => return Err(SubscribeError::TooMany),
            None => match self.slots.iter().position(Option::is_none) {
                Some(free) => free,
                None => {
                    self.slots.push(None);
                    self.slots.len() - 1
                }
            },
        };
        self.slots[slot] = subscription;
        self.routes.clear();
        Ok(slot)
    }

    /// Ends the subscription `id`; its former slot, `None` when there was none.
    pub fn unsubscribe(&mut self, id: &str) -> Option<usize> {
        let slot = self.slot_of(id)?;
        self.slots[slot] = None;
        self.routes.clear();
        Some(slot)
    }

    /// How many subscriptions there are.
    fn len(&self) -> usize {
        self.slots.iter().flatten().count()
    }

    /// The id of the subscription in `slot`.
    pub fn id(&self, slot: usize) -> Option<&str> {
        self.slots.get(slot)?.as_ref().map(|s| s.id.as_str())
    }

    fn slot_of(&self, id: &str) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.as_ref().is_some_and(|s| s.id == id))
    }

    /// Puts the samples of `batch` that some subscription selects into `outbox` (staleness
    /// markers left out).
    pub fn route(&mut self, batch: &[Sample], catalog: &SeriesCatalog, outbox: &mut Outbox) {
        if self.slots.iter().all(Option::is_none) {
            return;
        }
        for run in batch.chunk_by(|a, b| a.series == b.series) {
            let series = run[0].series;
            if !self.routes.contains_key(&series) {
                if self.routes.len() >= MAX_CACHED_SERIES {
                    self.routes.clear();
                }
                let route = self.decide(catalog.get(series));
                self.routes.insert(series, route);
            }
            let Some(Some(route)) = self.routes.get(&series) else {
                continue;
            };
            for sample in run.iter().filter(|s| !is_stale_marker(s.value)) {
                for &slot in &route.slots {
                    outbox.push(slot, &route.series, sample.timestamp_ms, sample.value);
                }
            }
        }
    }

    /// Which subscriptions select `series`.
    fn decide(&self, series: Option<Arc<SeriesMeta>>) -> Option<Route> {
        let series = series?;
        let slots: Box<[usize]> = (self.slots.iter().enumerate())
            .filter_map(|(slot, s)| {
                let s = s.as_ref()?;
                s.selectors
                    .iter()
                    .any(|selector| selector.matches(&series.labels))
                    .then_some(slot)
            })
            .collect();
        (!slots.is_empty()).then_some(Route { series, slots })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{MetricKind, STALE_MARKER};
    use hcmon_common::Labels;

    fn catalog() -> SeriesCatalog {
        let series = [
            (1, "node_cpu_seconds_total", "nas"),
            (2, "node_cpu_seconds_total", "web"),
            (3, "node_memory_MemFree_bytes", "nas"),
        ];
        SeriesCatalog::new(
            series
                .into_iter()
                .map(|(id, name, node)| SeriesMeta {
                    id: SeriesId(id),
                    labels: Labels::new(name, [("node".to_owned(), node.to_owned())]).unwrap(),
                    kind: MetricKind::Gauge,
                    help: String::new(),
                })
                .collect(),
        )
    }

    fn sample(series: u64, timestamp_ms: i64, value: f64) -> Sample {
        Sample {
            series: SeriesId(series),
            timestamp_ms,
            value,
        }
    }

    /// What `outbox` delivers: per subscription id, per series' node label, the points.
    fn delivered(subs: &Subscriptions, outbox: &mut Outbox) -> Vec<(String, String, Vec<i64>)> {
        let mut out: Vec<_> = outbox
            .take(|slot| subs.id(slot).map(str::to_owned))
            .into_iter()
            .flat_map(|d| {
                let id = d.id;
                d.series.into_iter().map(move |(meta, points)| {
                    let name = meta.labels.get("__name__").unwrap_or("");
                    let node = meta.labels.get("node").unwrap_or("");
                    let times = points.iter().map(|p| p.0).collect();
                    (id.clone(), format!("{name}/{node}"), times)
                })
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn samples_go_to_every_subscription_that_selects_their_series() {
        let catalog = catalog();
        let mut subs = Subscriptions::default();
        let mut outbox = Outbox::default();
        subs.subscribe("cpu", &["{__name__=~\"node_cpu.*\"}".into()])
            .unwrap();
        subs.subscribe("nas", &["{node=\"nas\"}".into(), "nothing_here".into()])
            .unwrap();
        let batch = [
            sample(1, 10, 1.0),
            sample(1, 20, STALE_MARKER),
            sample(2, 10, 2.0),
            sample(3, 10, 3.0),
            sample(9, 10, 9.0),
        ];
        subs.route(&batch, &catalog, &mut outbox);
        subs.route(&[sample(1, 30, 1.5)], &catalog, &mut outbox);
        assert_eq!(
            delivered(&subs, &mut outbox),
            vec![
                (
                    "cpu".into(),
                    "node_cpu_seconds_total/nas".into(),
                    vec![10, 30]
                ),
                ("cpu".into(), "node_cpu_seconds_total/web".into(), vec![10]),
                (
                    "nas".into(),
                    "node_cpu_seconds_total/nas".into(),
                    vec![10, 30]
                ),
                (
                    "nas".into(),
                    "node_memory_MemFree_bytes/nas".into(),
                    vec![10]
                ),
            ]
        );
        assert!(outbox.is_empty());
    }

    #[test]
    fn changing_subscriptions_reroutes_cached_series() {
        let catalog = catalog();
        let mut subs = Subscriptions::default();
        let mut outbox = Outbox::default();
        subs.subscribe("a", &["node_cpu_seconds_total".into()])
            .unwrap();
        subs.route(&[sample(1, 10, 1.0)], &catalog, &mut outbox);
        assert_eq!(delivered(&subs, &mut outbox).len(), 1);
        // Replaced: the cached decision for series 1 must not survive.
        subs.subscribe("a", &["node_memory_MemFree_bytes".into()])
            .unwrap();
        subs.route(
            &[sample(1, 20, 1.0), sample(3, 20, 1.0)],
            &catalog,
            &mut outbox,
        );
        let got = delivered(&subs, &mut outbox);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, "node_memory_MemFree_bytes/nas");
        assert_eq!(subs.unsubscribe("a"), Some(0));
        assert_eq!(subs.unsubscribe("a"), None);
        subs.route(&[sample(3, 30, 1.0)], &catalog, &mut outbox);
        assert!(outbox.is_empty());
    }

    #[test]
    fn bad_subscriptions_are_refused_with_a_reason() {
        let mut subs = Subscriptions::default();
        let bad = subs.subscribe("x", &["up{".into()]).unwrap_err();
        assert!(
            matches!(&bad, SubscribeError::BadSelector { selector, .. } if selector == "up{"),
            "{bad}"
        );
        assert_eq!(
            subs.subscribe("x", &[]),
            Err(SubscribeError::SelectorCount { id: "x".into() })
        );
        assert_eq!(
            subs.subscribe("", &["up".into()]),
            Err(SubscribeError::BadId)
        );
        for i in 0..MAX_SUBSCRIPTIONS {
            subs.subscribe(&i.to_string(), &["up".into()]).unwrap();
        }
        assert_eq!(
            subs.subscribe("one more", &["up".into()]),
            Err(SubscribeError::TooMany)
        );
        // Replacing one is not one more.
        subs.subscribe("0", &["down".into()]).unwrap();
        assert_eq!(subs.len(), MAX_SUBSCRIPTIONS);
    }
}

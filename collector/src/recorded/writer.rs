//! The storage path of the series the collector writes about itself: series are defined through
//! the catalog (within the total series cap) and samples appended through [`Tsdb::append`], as
//! ingest does, so they are durable and PromQL, `/federate`, export and retention see them like
//! any other. Ingest's checks on names (the reserved `hcmon_` names) are for senders, not for
//! the collector itself, and are not applied here.
//!
//! Each writer task keeps a [`Tracked`]: the series its last round wrote. A series a round no
//! longer has (a resolved alert, a forgotten node) gets a Prometheus staleness marker, so PromQL
//! stops showing it at once instead of five minutes (its lookback) later.

use super::metrics::RecordedMetrics;
use crate::catalog::{CapRefusal, ResolveError, SeriesCaps, SeriesCatalog, SeriesDefinition};
use crate::ingest::ForgetGate;
use crate::storage::{MetricKind, STALE_MARKER, Sample, SeriesId, StoreError, Tsdb};
use crate::tasks;
use hcmon_common::{LabelError, Labels, METRIC_NAME_LABEL, MatchOp, Matcher, Selector};
use std::collections::BTreeSet;
use std::sync::Arc;

/// A family of collector-written series: its name and help. All are gauges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
}

/// One sample the collector writes about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    pub family: Family,
    pub labels: Labels,
    pub value: f64,
}

impl Family {
    /// A sample of this family. An empty label value is left out: in Prometheus' model it is
    /// no label at all.
    pub fn sample(
        self,
        labels: impl IntoIterator<Item = (String, String)>,
        value: f64,
    ) -> Result<Recorded, LabelError> {
        let labels = labels.into_iter().filter(|(_, v)| !v.is_empty());
        Ok(Recorded {
            family: self,
            labels: Labels::new(self.name, labels)?,
            value,
        })
    }
}

/// Why a round's samples were not stored.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot define the collector's own series: {0}")]
    Define(#[from] ResolveError),
    #[error("cannot store the collector's own series: {0}")]
    Store(#[from] StoreError),
}

impl WriteError {
    /// A short, bounded label for the failures metric.
    pub fn reason(&self) -> &'static str {
        match self {
            WriteError::Define(ResolveError::KindConflict { .. }) => "kind_conflict",
            WriteError::Define(ResolveError::OverCap(cap)) => cap.reason(),
            WriteError::Define(ResolveError::Store(_)) | WriteError::Store(_) => "storage",
        }
    }
}

/// What one round stored.
#[derive(Debug, Default)]
pub struct Written {
    pub samples: usize,
    pub markers: usize,
    /// New series a cap kept out (their samples were not stored).
    pub refused: Option<CapRefusal>,
}

/// Defines and appends the collector's own series.
pub struct Writer {
    tsdb: Arc<Tsdb>,
    catalog: Arc<SeriesCatalog>,
    /// Nodes being forgotten get no new series.
    gate: Arc<ForgetGate>,
    caps: SeriesCaps,
    metrics: RecordedMetrics,
    /// The collector's series count, kept current as ingest keeps it.
    series_gauge: prometheus::IntGauge,
}

impl Writer {
    /// The total cap applies as to every series. The per-node cap does not: it bounds what an
    /// agent sends, and the collector writes a few series per node whatever the agent sends.
    pub fn new(
        tsdb: Arc<Tsdb>,
        catalog: Arc<SeriesCatalog>,
        gate: Arc<ForgetGate>,
        max_series: usize,
        metrics: RecordedMetrics,
        series_gauge: prometheus::IntGauge,
    ) -> Self {
        Self {
            tsdb,
            catalog,
            gate,
            caps: SeriesCaps {
                per_node: usize::MAX,
                total: max_series,
            },
            metrics,
            series_gauge,
        }
    }

    /// Stores `samples` at `at_ms`, creating their series as needed, and a staleness marker
    /// for each series of `ended` that exists (none is created only to end it). Samples of a
    /// node being forgotten are left out. Blocking.
    pub fn write(
        &self,
        samples: &[Recorded],
        ended: &[Labels],
        at_ms: i64,
    ) -> Result<Written, WriteError> {
        self.gate
            .define(|forgotten| self.define_and_write(samples, ended, at_ms, forgotten))
    }

    fn define_and_write(
        &self,
        samples: &[Recorded],
        ended: &[Labels],
        at_ms: i64,
        forgotten: &dyn Fn(&str) -> bool,
    ) -> Result<Written, WriteError> {
        let kept: Vec<&Recorded> = samples
            .iter()
            .filter(|s| !s.labels.get("node").is_some_and(forgotten))
            .collect();
        let samples = kept.as_slice();
        let mut ids: Vec<Option<SeriesId>> = samples
            .iter()
            .map(|s| self.catalog.lookup(&s.labels))
            .collect();
        let missing: Vec<usize> = (0..samples.len()).filter(|&i| ids[i].is_none()).collect();
        let mut refused = None;
        if !missing.is_empty() {
            let defs: Vec<SeriesDefinition> = missing
                .iter()
                .map(|&i| SeriesDefinition {
                    labels: samples[i].labels.clone(),
                    kind: MetricKind::Gauge,
                    help: samples[i].family.help.to_owned(),
                })
                .collect();
            let resolved = self
                .catalog
                .resolve_within_caps(&self.tsdb, &defs, self.caps)?;
            for (&i, id) in missing.iter().zip(resolved.ids) {
                ids[i] = id;
            }
            refused = resolved.refused;
            self.series_gauge.set(self.catalog.len() as i64);
        }
        let values: Vec<Sample> = samples
            .iter()
            .zip(&ids)
            .filter_map(|(s, id)| Some(sample((*id)?, at_ms, s.value)))
            .collect();
        let markers: Vec<Sample> = ended
            .iter()
            .filter_map(|labels| Some(sample(self.catalog.lookup(labels)?, at_ms, STALE_MARKER)))
            .collect();
        let stored = [values.as_slice(), markers.as_slice()].concat();
        self.tsdb.append(None, &stored)?;
        Ok(Written {
            samples: values.len(),
            markers: markers.len(),
            refused,
        })
    }

    /// The series of `families` that a staleness marker has not ended yet: what an earlier run
    /// wrote last. Blocking.
    pub fn live_series(&self, families: &[Family]) -> BTreeSet<Labels> {
        let mut live = BTreeSet::new();
        for family in families {
            let Ok(by_name) = Matcher::new(METRIC_NAME_LABEL, MatchOp::Equal, family.name) else {
                continue;
            };
            let selector = Selector {
                matchers: vec![by_name],
            };
            live.extend(
                self.catalog
                    .select(&selector)
                    .into_iter()
                    .filter(|meta| self.tsdb.latest(meta.id).is_some())
                    .map(|meta| meta.labels.clone()),
            );
        }
        live
    }
}

fn sample(series: SeriesId, timestamp_ms: i64, value: f64) -> Sample {
    Sample {
        series,
        timestamp_ms,
        value,
    }
}

/// One writer task's rounds: what its last round wrote, to end the series the next one leaves
/// out.
pub struct Tracked {
    writer: Arc<Writer>,
    /// The task's name, in logs and metrics.
    task: &'static str,
    families: Vec<Family>,
    previous: BTreeSet<Labels>,
}

/// The series of `families` an earlier round wrote and no staleness marker ended, from
/// storage; none if reading them panicked (logged and counted by `tasks`).
async fn live(writer: &Arc<Writer>, task: &'static str, families: &[Family]) -> BTreeSet<Labels> {
    let (reader, families) = (writer.clone(), families.to_vec());
    tasks::blocking(task, move || reader.live_series(&families))
        .await
        .unwrap_or_default()
}

/// One round of a writer: the samples to store, and the series still current without a new
/// sample this round (a verdict not renewed yet), which are not to be ended.
#[derive(Debug, Default)]
pub struct Round {
    pub samples: Vec<Recorded>,
    pub unchanged: Vec<Labels>,
}

/// The series of `previous` that `round` has neither a sample for nor keeps.
pub fn ended(previous: &BTreeSet<Labels>, round: &Round) -> Vec<Labels> {
    let current: BTreeSet<&Labels> = round
        .samples
        .iter()
        .map(|s| &s.labels)
        .chain(&round.unchanged)
        .collect();
    previous
        .iter()
        .filter(|labels| !current.contains(labels))
        .cloned()
        .collect()
}

impl Tracked {
    /// A task's rounds, starting from the series of `families` an earlier run left live, so a
    /// series that ended while the collector was down is ended at the first round.
    pub async fn start(writer: Arc<Writer>, task: &'static str, families: &[Family]) -> Self {
        let families = families.to_vec();
        let previous = live(&writer, task, &families).await;
        Self {
            writer,
            task,
            families,
            previous,
        }
    }

    /// Stores one round at `at_ms`; false when it failed. A failure is logged and counted, and
    /// the series of this round are remembered with the earlier ones, so the next round ends
    /// what it leaves out; after a panic, the series still live are read back from storage.
    ///
    /// Working out what ended, over thousands of series (two per open alert), held a runtime
    /// thread for tens of milliseconds while agents' acks waited for it: it is done on the
    /// blocking pool with the write.
    pub async fn write(&mut self, round: Round, at_ms: i64) -> bool {
        let (writer, previous) = (self.writer.clone(), std::mem::take(&mut self.previous));
        let written = tasks::blocking(self.task, move || {
            let ended = ended(&previous, &round);
            let current: BTreeSet<Labels> = (round.samples.iter())
                .map(|s| s.labels.clone())
                .chain(round.unchanged)
                .collect();
            let written = writer.write(&round.samples, &ended, at_ms);
            match written {
                Ok(written) => (Ok(written), current),
                Err(error) => {
                    let mut previous = previous;
                    previous.extend(current);
                    (Err(error), previous)
                }
            }
        })
        .await;
        let metrics = &self.writer.metrics;
        match written {
            Ok((Ok(written), current)) => {
                metrics.stored(self.task, written.samples + written.markers);
                if let Some(refused) = written.refused {
                    metrics.failed(self.task, refused.cap.reason());
                    tracing::warn!(task = self.task, series = refused.series, error = %refused.cap, "collector-written series not created");
                }
                self.previous = current;
                true
            }
            Ok((Err(error), previous)) => {
                metrics.failed(self.task, error.reason());
                tracing::warn!(task = self.task, %error, "collector-written samples not stored; the next round writes again");
                self.previous = previous;
                false
            }
            // Logged and counted as a panic by `tasks`. The series written and not ended are
            // read back from storage, as at start.
            Err(_panicked) => {
                metrics.failed(self.task, "panic");
                self.previous = live(&self.writer, self.task, &self.families).await;
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: Family = Family {
        name: "g",
        help: "A test gauge.",
    };

    fn labels(node: &str) -> Labels {
        Labels::new("g", [("node".to_owned(), node.to_owned())]).unwrap()
    }

    fn sample(node: &str) -> Recorded {
        G.sample([("node".to_owned(), node.to_owned())], 1.0)
            .unwrap()
    }

    fn writer() -> Arc<Writer> {
        let crate::storage::Recovered { tsdb, series, .. } = Tsdb::open(
            Box::new(crate::storage::MemoryKv::default()),
            crate::storage::StorageConfig::default(),
        )
        .unwrap();
        let registry = prometheus::Registry::new();
        Arc::new(Writer::new(
            Arc::new(tsdb),
            Arc::new(SeriesCatalog::new(series)),
            Default::default(),
            2,
            RecordedMetrics::new(&registry),
            prometheus::IntGauge::new("series", "Series.").unwrap(),
        ))
    }

    fn latest(writer: &Writer, node: &str) -> Option<(i64, f64)> {
        let id = writer.catalog.lookup(&labels(node))?;
        writer.tsdb.latest(id)
    }

    #[test]
    fn samples_create_their_series_and_markers_end_only_existing_ones() {
        let writer = writer();
        let written = writer.write(&[sample("a")], &[], 1_000).unwrap();
        assert_eq!((written.samples, written.markers), (1, 0));
        assert_eq!(latest(&writer, "a"), Some((1_000, 1.0)));
        assert_eq!(writer.live_series(&[G]), BTreeSet::from([labels("a")]));

        let written = writer
            .write(&[sample("b")], &[labels("a"), labels("never")], 2_000)
            .unwrap();
        assert_eq!((written.samples, written.markers), (1, 1));
        assert_eq!(latest(&writer, "a"), None, "ended by its marker");
        assert!(writer.catalog.lookup(&labels("never")).is_none());
        assert_eq!(writer.live_series(&[G]), BTreeSet::from([labels("b")]));

        // Over the total cap of 2: the new series is left out, the others stored.
        let written = writer
            .write(&[sample("b"), sample("c")], &[], 3_000)
            .unwrap();
        assert_eq!(written.samples, 1);
        assert!(written.refused.is_some());
        assert_eq!(latest(&writer, "b"), Some((3_000, 1.0)));
    }

    #[test]
    fn a_node_being_forgotten_gets_no_series_until_it_registers_again() {
        let writer = writer();
        writer.gate.forgetting("gone");
        let written = writer
            .write(&[sample("gone"), sample("here")], &[], 1_000)
            .unwrap();
        assert_eq!(written.samples, 1);
        assert!(writer.catalog.lookup(&labels("gone")).is_none());
        assert_eq!(latest(&writer, "here"), Some((1_000, 1.0)));
    }

    #[tokio::test]
    async fn a_series_an_earlier_run_left_live_ends_at_the_first_round() {
        let writer = writer();
        writer.write(&[sample("a")], &[], 1_000).unwrap();
        let mut tracked = Tracked::start(writer.clone(), "test-recorded", &[G]).await;
        let round = Round {
            samples: vec![sample("b")],
            unchanged: Vec::new(),
        };
        assert!(tracked.write(round, 2_000).await);
        assert_eq!(latest(&writer, "a"), None);
        assert_eq!(latest(&writer, "b"), Some((2_000, 1.0)));
    }

    #[test]
    fn a_series_left_out_of_a_round_ends_unless_kept() {
        let previous: BTreeSet<Labels> = ["a", "b", "c"].map(labels).into();
        let round = Round {
            samples: vec![sample("a"), sample("d")],
            unchanged: vec![labels("b")],
        };
        assert_eq!(ended(&previous, &round), vec![labels("c")]);
        assert!(ended(&BTreeSet::new(), &round).is_empty());
    }

    #[test]
    fn empty_label_values_are_no_labels() {
        let s = G
            .sample(
                [
                    ("node".to_owned(), "a".to_owned()),
                    ("job".to_owned(), String::new()),
                ],
                2.0,
            )
            .unwrap();
        assert_eq!(s.labels, labels("a"));
        assert!(G.sample([("__x".to_owned(), "v".to_owned())], 1.0).is_err());
    }
}

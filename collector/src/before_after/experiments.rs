//! The `experiments` table, and whether an experiment's criterion was met.
//!
//! **Judging several series.** The criterion must hold for every series the experiment's
//! selectors match that has values in both windows: a change that helps one node and not
//! another is not the success asked for. The confidence is the smallest of the series', and
//! the observed change the one of that least sure series. No series with values: not met,
//! confidence 0.

use super::records::{decode_experiment, encode_experiment};
use super::windows::SeriesWindows;
use super::{BeforeAfterError, Experiment, NewExperiment, is_id, mint_id};
use crate::analytics::compare::{Criterion, evaluate};
use crate::storage::{KvBatch, StoreError, Table, Tsdb};
use hcmon_common::Selector;

/// Longest name and description, in characters; most selectors.
const MAX_NAME_CHARS: usize = 200;
const MAX_DESCRIPTION_CHARS: usize = 4000;
const MAX_SELECTORS: usize = 20;

/// What a missing experiment is called in errors.
const WHAT: &str = "experiment";

/// The experiments in a store.
pub struct ExperimentStore<'a> {
    tsdb: &'a Tsdb,
}

impl<'a> ExperimentStore<'a> {
    pub fn new(tsdb: &'a Tsdb) -> Self {
        Self { tsdb }
    }

    /// Stores a new experiment durably, made by `created_by` at `now_ms`.
    pub fn create(
        &self,
        new: NewExperiment,
        created_by: &str,
        now_ms: i64,
    ) -> Result<Experiment, BeforeAfterError> {
        let invalid = |m: String| Err(BeforeAfterError::Invalid(m));
        let name = new.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || has_control(name) {
            return invalid(format!(
                "name: give 1 to {MAX_NAME_CHARS} printable characters"
            ));
        }
        let description = new.description.map(|d| d.trim().to_owned());
        if description
            .as_ref()
            .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_CHARS)
        {
            return invalid(format!(
                "description: at most {MAX_DESCRIPTION_CHARS} characters"
            ));
        }
        for (field, window) in [("baseline", new.baseline), ("treatment", new.treatment)] {
            if window.end_ms <= window.start_ms {
                return invalid(format!("{field}: its end must be after its start"));
            }
        }
        if new.selectors.is_empty() || new.selectors.len() > MAX_SELECTORS {
            return invalid(format!("match: give 1 to {MAX_SELECTORS} selectors"));
        }
        for selector in &new.selectors {
            if let Err(e) = Selector::parse(selector) {
                return invalid(format!("match: {selector:?}: {e}"));
            }
        }
        let Criterion { by_percent, .. } = new.criterion;
        if !(by_percent.is_finite() && by_percent >= 0.0) {
            return invalid("criterion: by_percent must be a number from 0".into());
        }
        let experiment = Experiment {
            id: mint_id(now_ms)?,
            name: name.to_owned(),
            description: description.filter(|d| !d.is_empty()),
            baseline: new.baseline,
            treatment: new.treatment,
            selectors: new.selectors,
            criterion: new.criterion,
            created_by: created_by.to_owned(),
            created_ms: now_ms,
        };
        let mut batch = KvBatch::default();
        let value = encode_experiment(&experiment);
        batch.put(Table::Experiments, experiment.id.as_bytes(), value);
        self.tsdb.kv().write(batch, true)?;
        Ok(experiment)
    }

    /// Every experiment, oldest first.
    pub fn list(&self) -> Result<Vec<Experiment>, StoreError> {
        let mut out = Vec::new();
        let mut failed = None;
        self.tsdb
            .kv()
            .scan(Table::Experiments, &[], &[0xff], &mut |key, value| {
                match decode_experiment(key, value) {
                    Ok(e) => out.push(e),
                    Err(e) => failed = Some(e),
                }
                failed.is_none()
            })?;
        match failed {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// The experiment `id`.
    pub fn get(&self, id: &str) -> Result<Experiment, BeforeAfterError> {
        let missing = || BeforeAfterError::NotFound {
            what: WHAT,
            id: id.to_owned(),
        };
        if !is_id(id) {
            return Err(missing());
        }
        let value = self.tsdb.kv().get(Table::Experiments, id.as_bytes())?;
        let value = value.ok_or_else(missing)?;
        Ok(decode_experiment(id.as_bytes(), &value)?)
    }

    /// Deletes the experiment `id` durably; what it was.
    pub fn delete(&self, id: &str) -> Result<Experiment, BeforeAfterError> {
        let experiment = self.get(id)?;
        let mut batch = KvBatch::default();
        batch.delete(Table::Experiments, id.as_bytes());
        self.tsdb.kv().write(batch, true)?;
        Ok(experiment)
    }
}

/// Whether an experiment's criterion was met over its series (see the module header).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judgement {
    pub met: bool,
    pub confidence: f64,
    pub observed_change_percent: Option<f64>,
}

/// Judges `criterion` over the series' baseline (`before`) and treatment (`after`) windows.
pub fn judge(criterion: &Criterion, windows: &[SeriesWindows]) -> Judgement {
    let least_sure = windows
        .iter()
        .filter(|w| !w.before.is_empty() && !w.after.is_empty())
        .map(|w| evaluate(&w.before, &w.after, criterion))
        .min_by(|a, b| {
            (a.met, a.confidence)
                .partial_cmp(&(b.met, b.confidence))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
    match least_sure {
        Some(outcome) => Judgement {
            met: outcome.met,
            confidence: outcome.confidence,
            observed_change_percent: outcome.observed_change_percent,
        },
        None => Judgement {
            met: false,
            confidence: 0.0,
            observed_change_percent: None,
        },
    }
}

fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::compare::{Direction, Statistic};
    use crate::before_after::Window;
    use crate::storage::{MemoryKv, MetricKind, SeriesId, SeriesMeta, StorageConfig};
    use hcmon_common::Labels;
    use std::sync::Arc;

    fn new(name: &str, selectors: &[&str]) -> NewExperiment {
        NewExperiment {
            name: name.into(),
            description: Some("  ".into()),
            baseline: Window {
                start_ms: 0,
                end_ms: 10,
            },
            treatment: Window {
                start_ms: 20,
                end_ms: 30,
            },
            selectors: selectors.iter().map(|s| (*s).to_owned()).collect(),
            criterion: criterion(),
        }
    }

    fn criterion() -> Criterion {
        Criterion {
            statistic: Statistic::Mean,
            direction: Direction::Decrease,
            by_percent: 10.0,
        }
    }

    #[test]
    fn experiments_are_kept_listed_and_deleted() {
        let kv = MemoryKv::default();
        let open = || {
            Tsdb::open(Box::new(kv.clone()), StorageConfig::default())
                .unwrap()
                .tsdb
        };
        let tsdb = open();
        let store = ExperimentStore::new(&tsdb);
        let first = store.create(new("a", &["up"]), "ops", 1000).unwrap();
        let second = store
            .create(new("b", &["x{y=\"z\"}"]), "ops", 2000)
            .unwrap();
        assert_eq!(first.description, None);
        let tsdb = open();
        let store = ExperimentStore::new(&tsdb);
        let names: Vec<_> = store.list().unwrap().into_iter().map(|e| e.name).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(store.get(&second.id).unwrap(), second);
        store.delete(&first.id).unwrap();
        assert_eq!(store.list().unwrap(), vec![second]);
        assert!(matches!(
            store.get(&first.id),
            Err(BeforeAfterError::NotFound { .. })
        ));
        for (bad, field) in [
            (new(" ", &["up"]), "name"),
            (new("x", &[]), "match"),
            (new("x", &["{"]), "match"),
            (
                NewExperiment {
                    treatment: Window {
                        start_ms: 5,
                        end_ms: 5,
                    },
                    ..new("x", &["up"])
                },
                "treatment",
            ),
        ] {
            let error = store.create(bad, "ops", 3000).unwrap_err().to_string();
            assert!(error.starts_with(field), "{error}");
        }
    }

    #[test]
    fn every_series_must_meet_the_criterion() {
        let meta = |id| {
            Arc::new(SeriesMeta {
                id: SeriesId(id),
                labels: Labels::new("latency", []).unwrap(),
                kind: MetricKind::Gauge,
                help: String::new(),
            })
        };
        let windows = |id, before: f64, after: f64| SeriesWindows {
            meta: meta(id),
            unit: None,
            before: (0..100).map(|i| before + (i % 5) as f64).collect(),
            after: (0..100).map(|i| after + (i % 5) as f64).collect(),
        };
        let better = windows(1, 100.0, 70.0);
        let same = windows(2, 100.0, 100.0);
        let empty = SeriesWindows {
            after: vec![],
            ..windows(3, 1.0, 1.0)
        };
        let met = judge(&criterion(), &[better.clone(), empty.clone()]);
        assert!(met.met && met.confidence == 1.0, "{met:?}");
        assert!(met.observed_change_percent.unwrap() < -25.0);
        let not = judge(&criterion(), &[better, same]);
        assert!(!not.met && not.confidence == 0.0, "{not:?}");
        assert_eq!(not.observed_change_percent, Some(0.0));
        let nothing = judge(&criterion(), &[empty]);
        assert_eq!((nothing.met, nothing.confidence), (false, 0.0));
    }
}

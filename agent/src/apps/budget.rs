//! The cardinality budget: how many distinct series one application may create on this node.
//! An application is its `job` (OTLP's `service.name`, a StatsD line's `service` or `job`
//! tag). A series is a metric with one set of labels as the application sends it: a
//! histogram's buckets and a timer's quantiles count once. Past the budget a new series is
//! refused (its samples dropped and counted) while the application's known series go on, so
//! one runaway label (a user id, a request path with ids in it) cannot push the node's own
//! metrics, or other applications', past the collector's per-agent series cap.

use std::collections::{HashMap, HashSet};

#[derive(Debug)]
pub struct SeriesBudget {
    max_per_app: usize,
    apps: HashMap<String, AppSeries>,
}

#[derive(Debug, Default)]
struct AppSeries {
    known: HashSet<String>,
    refused_samples: u64,
    /// A refused series' key, for the log (the first one refused since the last report).
    example: Option<String>,
}

impl SeriesBudget {
    pub fn new(max_per_app: usize) -> Self {
        Self {
            max_per_app,
            apps: HashMap::new(),
        }
    }

    pub fn max_per_app(&self) -> usize {
        self.max_per_app
    }

    /// Whether `app` may record `samples` samples of series `key` (a known series always
    /// may; a new one while the app is under its budget).
    pub fn admit(&mut self, app: &str, key: &str, samples: u64) -> bool {
        let max = self.max_per_app;
        let series = match self.apps.get_mut(app) {
            Some(series) => series,
            None => self.apps.entry(app.to_owned()).or_default(),
        };
        if series.known.contains(key) {
            return true;
        }
        if series.known.len() < max {
            series.known.insert(key.to_owned());
            return true;
        }
        series.refused_samples += samples;
        series.example.get_or_insert_with(|| key.to_owned());
        false
    }

    /// Series per application, for the agent's own metrics.
    pub fn series(&self) -> impl Iterator<Item = (&str, usize)> {
        self.apps
            .iter()
            .map(|(app, s)| (app.as_str(), s.known.len()))
    }

    /// Refused samples per application since the agent started.
    pub fn refused(&self) -> impl Iterator<Item = (&str, u64)> {
        self.apps
            .iter()
            .filter(|(_, s)| s.refused_samples > 0)
            .map(|(app, s)| (app.as_str(), s.refused_samples))
    }

    /// Takes the examples of what was refused since the last call, for one warning each.
    pub fn take_examples(&mut self) -> Vec<(String, String)> {
        self.apps
            .iter_mut()
            .filter_map(|(app, s)| Some((app.clone(), s.example.take()?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::SeriesBudget;

    #[test]
    fn a_full_app_keeps_its_series_and_refuses_new_ones_alone() {
        let mut budget = SeriesBudget::new(2);
        assert!(budget.admit("shop", "a", 1));
        assert!(budget.admit("shop", "b", 1));
        assert!(!budget.admit("shop", "c", 3), "past the budget");
        assert!(budget.admit("shop", "a", 1), "known series go on");
        assert!(
            budget.admit("billing", "c", 1),
            "another app has its own budget"
        );
        assert_eq!(budget.refused().collect::<Vec<_>>(), vec![("shop", 3)]);
        assert_eq!(
            budget.take_examples(),
            vec![("shop".to_owned(), "c".to_owned())]
        );
        assert!(budget.take_examples().is_empty(), "reported once");
    }
}

//! "What moved with this series?": the one ranking of related series, for `/api/v1/related`,
//! the evidence of `/api/v1/anomalies` and an alert's evidence. Reads the anchor's and the
//! candidates' stored windows and ranks the candidates by lagged correlation
//! ([`rank_related_within`]).

use super::history::History;
use super::{AnalysisError, read_windows};
use crate::analytics::budget::Budget;
use crate::analytics::correlation::{
    CorrelationConfig, Related, SeriesWindow, rank_related_within,
};
use crate::catalog::SeriesCatalog;
use crate::storage::SeriesMeta;
use hcmon_common::{MatchOp, Matcher, Selector};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// The series that moved with `anchor` over the `window` before `at_ms`, strongest first (at
/// most `top_k` of the default [`CorrelationConfig`]). The window is widened by the largest
/// lag on both sides, so a series moving up to that long before or after still lines up.
/// Candidates are every other series, the anchor's node's first (that is where a cause usually
/// is), cut at `max_candidates`. `budget` is asked before each read and each candidate.
/// Blocking.
pub fn related_series(
    history: &History,
    catalog: &SeriesCatalog,
    anchor: &SeriesMeta,
    at_ms: i64,
    window: Duration,
    budget: &Budget,
) -> Result<Vec<Related>, AnalysisError> {
    let config = CorrelationConfig::default();
    let (start_ms, end_ms) = span(at_ms, window, config.max_lag);
    let candidates = candidates(catalog, anchor, config.max_candidates);
    let samples = history.read_raw(anchor, start_ms, end_ms)?;
    let anchor = SeriesWindow::new(anchor.labels.to_string(), samples);
    // One unreadable candidate (a corrupt chunk) is left out, not the whole answer.
    let mut windows = Vec::with_capacity(candidates.len());
    for meta in &candidates {
        match read_windows(history, [&**meta], start_ms, end_ms, budget) {
            Ok(window) => windows.extend(window),
            Err(AnalysisError::Store(error)) => {
                tracing::warn!(series = %meta.labels, %error, "related series: a candidate could not be read; left out")
            }
            Err(AnalysisError::History(error)) => {
                tracing::warn!(series = %meta.labels, %error, "related series: a candidate could not be read; left out")
            }
            Err(interrupted) => return Err(interrupted),
        }
    }
    Ok(rank_related_within(&anchor, &windows, &config, budget)?)
}

/// The series an anomaly of `anchor` is compared with, at most `max`: its node's own series,
/// then the same metric on other nodes, then (while there is room) the rest. Found through
/// the catalog's index, so in a fleet the cost follows the candidates, not every series known.
fn candidates(catalog: &SeriesCatalog, anchor: &SeriesMeta, max: usize) -> Vec<Arc<SeriesMeta>> {
    let equal = |name: &str, value: &str| {
        Matcher::new(name, MatchOp::Equal, value)
            .ok()
            .map(|m| Selector { matchers: vec![m] })
    };
    let node = anchor.labels.get("node").unwrap_or_default();
    let mut seen = HashSet::from([anchor.id]);
    let mut out = Vec::new();
    let mut take = |found: Vec<Arc<SeriesMeta>>, out: &mut Vec<Arc<SeriesMeta>>| {
        for meta in found {
            if out.len() >= max {
                return;
            }
            if seen.insert(meta.id) {
                out.push(meta);
            }
        }
    };
    let same_node = equal("node", node)
        .map(|s| catalog.select(&s))
        .unwrap_or_default();
    take(same_node, &mut out);
    let same_metric = equal("__name__", anchor.labels.metric_name())
        .map(|s| catalog.select(&s))
        .unwrap_or_default();
    take(same_metric, &mut out);
    if out.len() < max && catalog.len() <= max.saturating_mul(4) {
        take(catalog.all(), &mut out);
    }
    out
}

/// `[at − window − lag, at + lag]`, saturating: `at_ms` and `window` may come from a request.
fn span(at_ms: i64, window: Duration, lag: Duration) -> (i64, i64) {
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    let lag = ms(lag);
    let start = at_ms.saturating_sub(ms(window)).saturating_sub(lag);
    (start, at_ms.saturating_add(lag))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{SeriesCaps, SeriesDefinition};
    use crate::storage::{MemoryKv, MetricKind, Sample, StorageConfig, Tsdb};
    use hcmon_common::Labels;

    const MINUTE: Duration = Duration::from_secs(60);

    /// `load{node="a"}` follows `cpu{node="a"}`; `noise{node="b"}` does not.
    fn store() -> (Tsdb, SeriesCatalog) {
        let tsdb = Tsdb::open(Box::new(MemoryKv::default()), StorageConfig::default())
            .unwrap()
            .tsdb;
        let catalog = SeriesCatalog::new(vec![]);
        let def = |name: &str, node: &str| SeriesDefinition {
            labels: Labels::new(name, [("node".to_owned(), node.to_owned())]).unwrap(),
            kind: MetricKind::Gauge,
            help: String::new(),
        };
        let all = SeriesCaps {
            per_node: usize::MAX,
            total: usize::MAX,
        };
        let defs = [def("cpu", "a"), def("load", "a"), def("noise", "b")];
        let ids = catalog.resolve(&tsdb, &defs, all).unwrap();
        let mut samples = Vec::new();
        for i in 0..180_i64 {
            let cpu = ((i * 7) % 13) as f64;
            let noise = ((i * i * 31 + 5) % 17) as f64;
            for (id, value) in [(ids[0], cpu), (ids[1], 2.0 * cpu + 1.0), (ids[2], noise)] {
                samples.push(Sample {
                    series: id,
                    timestamp_ms: i * 10_000,
                    value,
                });
            }
        }
        tsdb.append(None, &samples).unwrap();
        (tsdb, catalog)
    }

    #[test]
    fn ranks_the_series_that_moved_with_the_anchor_and_stops_when_told() {
        let (tsdb, catalog) = store();
        let history = History::local(std::sync::Arc::new(tsdb));
        let anchor = catalog
            .all()
            .into_iter()
            .find(|m| m.labels.to_string().starts_with("cpu"))
            .unwrap();
        let found = related_series(
            &history,
            &catalog,
            &anchor,
            1_800_000,
            30 * MINUTE,
            &Budget::UNLIMITED,
        )
        .unwrap();
        let names: Vec<&str> = found.iter().map(|r| r.candidate.as_str()).collect();
        assert_eq!(names, [r#"load{node="a"}"#]);
        assert!(found[0].r > 0.99, "{found:?}");

        let stop = || true;
        let stopped = related_series(
            &history,
            &catalog,
            &anchor,
            1_800_000,
            30 * MINUTE,
            &Budget::new(&stop),
        );
        assert!(matches!(stopped, Err(AnalysisError::Interrupted(_))));
    }

    #[test]
    fn the_span_is_widened_by_the_lag_and_never_overflows() {
        assert_eq!(span(3_600_000, MINUTE, MINUTE), (3_480_000, 3_660_000));
        assert_eq!(
            span(i64::MAX, MINUTE, MINUTE),
            (i64::MAX - 120_000, i64::MAX)
        );
        assert_eq!(
            span(i64::MIN, Duration::MAX, MINUTE),
            (i64::MIN, i64::MIN + 60_000)
        );
    }
}

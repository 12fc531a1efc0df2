//! The report's I/O: reads the SLOs in force, the maintenance windows and the incidents,
//! evaluates every SLO, then hands it all to the pure `build`. Blocking (RocksDB reads): the
//! caller runs it on `tasks::blocking`.
//!
//! Each SLO is evaluated once over the window and, when the window does not reach 30 days
//! back, once more over only the days before it that the trends need; the two sets of days are
//! joined, never evaluated twice. An SLO that cannot be evaluated (a query that fails) gets a
//! row saying why instead of failing the whole report; only failing to read the store's
//! incidents or maintenance windows fails it.

use super::build::{self, BuildInput, SloInput, SloOutcome};
use super::model::{Report, ReportError, ReportKind};
use crate::alerting::book::SilenceRecord;
use crate::analytics::slo::{CalendarUnit, Period, Tally, Window, Zone};
use crate::catalog::SeriesCatalog;
use crate::slo::objectives::Objectives;
use crate::slo::{EvalContext, SloDefinition, SloError, SloResult, SloSource, evaluate};
use crate::storage::Tsdb;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Most threads one report evaluates SLOs on.
const MAX_WORKERS: usize = 4;

/// What a report reads.
#[derive(Clone)]
pub struct ReportSources {
    pub objectives: Arc<Objectives>,
    pub tsdb: Arc<Tsdb>,
    pub catalog: Arc<SeriesCatalog>,
    /// The alerting silences; those marked maintenance leave the SLOs' denominators.
    pub silences: Vec<SilenceRecord>,
    /// Names of the alerting forecast rules (`AlertingConfig::all_forecast_rules`, e.g.
    /// "DiskWillFill"): their incidents are resources heading for a limit.
    pub forecast_alerts: Vec<String>,
}

/// One SLO evaluated for the report.
struct Evaluated {
    result: SloResult,
    /// The days of the trend span, oldest first.
    trend_days: Vec<(Window, Tally)>,
}

/// Generates the report of `kind` over `window`. Blocking.
pub fn generate(
    sources: &ReportSources,
    kind: ReportKind,
    window: Window,
    now_ms: i64,
) -> Result<Report, ReportError> {
    if window.end_ms <= window.start_ms {
        return Err(ReportError::InvalidWindow {
            start_ms: window.start_ms,
            end_ms: window.end_ms,
        });
    }
    let objectives = &sources.objectives;
    let zone = objectives.zone();
    let span = build::look_back(window, zone);
    let definitions = objectives.list();
    let silences: Vec<_> = sources
        .silences
        .iter()
        .filter_map(SilenceRecord::maintenance_span)
        .collect();
    let maintenance = objectives
        .maintenance(&silences, span)
        .map_err(ReportError::ReadMaintenance)?;
    let incidents = crate::alerting::store::incident_facts(sources.tsdb.kv(), span)
        .map_err(ReportError::ReadIncidents)?;
    let source = objectives.source();
    let ctx = EvalContext {
        maintenance: &maintenance,
        incidents: &incidents,
        zone,
        now_ms,
    };
    let trend = build::trend_span(window, zone);
    let evaluated = in_parallel(&definitions, |definition| {
        evaluate_for_report(&source, definition, window, trend, &ctx).map_err(|error| {
            tracing::warn!(slo = %definition.name, %error, "SLO left out of the report's figures");
            error.to_string()
        })
    });
    let slos = definitions
        .iter()
        .zip(&evaluated)
        .map(|(definition, outcome)| SloInput {
            definition,
            outcome: match outcome {
                Ok(e) => SloOutcome::Evaluated {
                    result: &e.result,
                    trend_days: &e.trend_days,
                },
                Err(error) => SloOutcome::Failed { error },
            },
        })
        .collect();
    let coverage = coverage(sources, window);
    Ok(build::build(&BuildInput {
        kind,
        window,
        generated_ms: now_ms,
        zone,
        slos,
        incidents: &incidents,
        forecast_alerts: &sources.forecast_alerts,
        coverage: &coverage,
    }))
}

/// Per node, its stored data-quality scores over `window` as coverage rows. A node whose
/// scores cannot be read is left out (and logged): coverage is context, not the report's core.
fn coverage(sources: &ReportSources, window: Window) -> Vec<super::model::CoverageRow> {
    use hcmon_common::{MatchOp, Matcher, Selector};
    let Ok(name) = Matcher::new(
        "__name__",
        MatchOp::Equal,
        crate::telemetry::DATA_QUALITY_SCORE,
    ) else {
        return Vec::new();
    };
    let mut nodes: std::collections::BTreeMap<String, build::coverage::NodeScores> =
        Default::default();
    for meta in sources.catalog.select(&Selector {
        matchers: vec![name],
    }) {
        let (Some(node), Some(dimension)) = (meta.labels.get("node"), meta.labels.get("dimension"))
        else {
            continue;
        };
        if dimension != "completeness" && dimension != "overall" {
            continue;
        }
        let samples = match sources
            .tsdb
            .read_raw(meta.id, window.start_ms, window.end_ms - 1)
        {
            Ok(samples) => samples,
            Err(error) => {
                tracing::warn!(%node, %error, "data coverage of a node left out of the report");
                continue;
            }
        };
        let scores = nodes
            .entry(node.to_owned())
            .or_insert_with(|| build::coverage::NodeScores {
                node: node.to_owned(),
                completeness: Vec::new(),
                overall: Vec::new(),
            });
        let values = samples.iter().map(|&(_, v)| v).filter(|v| v.is_finite());
        match dimension {
            "completeness" => scores.completeness.extend(values),
            _ => scores.overall.extend(values),
        }
    }
    build::coverage::rows(nodes.into_values().collect())
}

/// `work` on every item, in order, on up to [`MAX_WORKERS`] threads. SLOs are independent and
/// each spends its time reading the store, so a monthly report over 100 of them uses the cores
/// it has; the threads live only inside this call (the caller's blocking task).
fn in_parallel<T: Sync, R: Send>(items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_WORKERS)
        .min(items.len());
    if workers <= 1 {
        return items.iter().map(work).collect();
    }
    let next = AtomicUsize::new(0);
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else {
                            return mine;
                        };
                        mine.push((i, work(item)));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// The SLO over the window, and its days over the trend span: the window's own days where it
/// covers them, plus the days before it evaluated separately.
fn evaluate_for_report(
    source: &SloSource,
    definition: &SloDefinition,
    window: Window,
    trend: Window,
    ctx: &EvalContext,
) -> Result<Evaluated, SloError> {
    let result = evaluate(source, definition, window, ctx, false)?.result;
    let mut trend_days = match trend.start_ms < window.start_ms {
        true => {
            let before = Window::new(trend.start_ms, window.start_ms);
            evaluate(source, definition, before, ctx, false)?
                .result
                .daily
        }
        false => Vec::new(),
    };
    let window_days = result
        .daily
        .iter()
        .filter(|(day, _)| day.start_ms >= trend.start_ms);
    join_days(&mut trend_days, window_days.copied(), ctx.zone);
    Ok(Evaluated { result, trend_days })
}

/// Appends `more` to `days`; a day split in two by a window starting mid-day is merged back.
fn join_days(
    days: &mut Vec<(Window, Tally)>,
    more: impl Iterator<Item = (Window, Tally)>,
    zone: &Zone,
) {
    let day = Period::Calendar(CalendarUnit::Day);
    for (window, tally) in more {
        match days.last_mut() {
            Some((last, total))
                if last.end_ms == window.start_ms
                    && day.containing(last.start_ms, zone)
                        == day.containing(window.start_ms, zone) =>
            {
                last.end_ms = window.end_ms;
                total.merge(&tally);
            }
            _ => days.push((window, tally)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;
    const DAY: i64 = 24 * HOUR;

    fn tally(good: f64) -> Tally {
        Tally {
            good,
            ..Tally::default()
        }
    }

    /// A store with one HTTP probe, `web`, run every 5 minutes for 40 days to 2026-12-01 and
    /// down from 12:00 to 13:00 UTC every day: 12 of 288 runs, 95.83 % a day.
    fn probe_store() -> (Arc<Tsdb>, Arc<SeriesCatalog>) {
        use crate::storage::{MemoryKv, MetricKind, Sample, SeriesId, SeriesMeta, StorageConfig};
        let tsdb = Tsdb::open(Box::new(MemoryKv::default()), StorageConfig::default())
            .unwrap()
            .tsdb;
        let labels = [("node", "nas"), ("name", "web"), ("target", "http://x")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let meta = SeriesMeta {
            id: SeriesId(1),
            labels: hcmon_common::Labels::new("http_check_up", labels).unwrap(),
            kind: MetricKind::Gauge,
            help: String::new(),
        };
        tsdb.create_series(std::slice::from_ref(&meta)).unwrap();
        let end = 1_796_083_200_000; // 2026-12-01T00:00:00Z
        let step = 5 * 60_000;
        let samples: Vec<Sample> = (0..40 * DAY / step)
            .map(|k| {
                let ts = end - 40 * DAY + k * step;
                let down = (12 * HOUR..13 * HOUR).contains(&ts.rem_euclid(DAY));
                Sample {
                    series: SeriesId(1),
                    timestamp_ms: ts,
                    value: if down { 0.0 } else { 1.0 },
                }
            })
            .collect();
        for chunk in samples.chunks(5000) {
            tsdb.append(None, chunk).unwrap();
        }
        (Arc::new(tsdb), Arc::new(SeriesCatalog::new(vec![meta])))
    }

    #[test]
    fn report_generate_reads_the_store_and_evaluates_each_slo() {
        let (tsdb, catalog) = probe_store();
        let objectives = Objectives::open(
            Default::default(),
            Default::default(),
            tsdb.clone(),
            catalog.clone(),
        )
        .unwrap();
        let sources = ReportSources {
            objectives: Arc::new(objectives),
            tsdb,
            catalog,
            silences: Vec::new(),
            forecast_alerts: Vec::new(),
        };
        // The daily report of 2026-11-30: the window is one day, the trends see 30.
        let end = 1_796_083_200_000;
        let day = Window::new(end - DAY, end);
        let report = generate(&sources, ReportKind::Daily, day, end + 60_000).unwrap();
        assert_eq!(report.title, "Daily SLA report: 2026-11-30");
        let web = report
            .compliance
            .iter()
            .find(|r| r.name == "probe:web:availability")
            .unwrap();
        let c = web.compliance.unwrap();
        assert!((c - 276.0 / 288.0).abs() < 1e-3, "{c}");
        assert_eq!(web.daily.len(), 1);
        let trend = report
            .trends
            .iter()
            .find(|t| t.subject == "compliance of probe:web:availability")
            .unwrap();
        assert_eq!(trend.samples, 30);
        assert!(!trend.significant, "{trend:?}");

        let err = generate(&sources, ReportKind::OnDemand, Window::new(end, end), end).unwrap_err();
        assert!(matches!(err, ReportError::InvalidWindow { .. }), "{err}");
    }

    #[test]
    fn report_in_parallel_keeps_the_order() {
        let items: Vec<u64> = (0..100).collect();
        assert_eq!(
            in_parallel(&items, |i| i * 2),
            (0..100).map(|i| i * 2).collect::<Vec<_>>()
        );
        assert!(in_parallel(&[] as &[u64], |i| *i).is_empty());
    }

    #[test]
    fn report_join_days_merges_a_split_day_only() {
        let zone = Zone::utc();
        // Days 0 and 1 before a window starting at 12:00 on day 1.
        let mut days = vec![
            (Window::new(0, DAY), tally(1.0)),
            (Window::new(DAY, DAY + 12 * HOUR), tally(2.0)),
        ];
        let window_days = [
            (Window::new(DAY + 12 * HOUR, 2 * DAY), tally(3.0)),
            (Window::new(2 * DAY, 3 * DAY), tally(4.0)),
        ];
        join_days(&mut days, window_days.into_iter(), &zone);
        assert_eq!(
            days,
            vec![
                (Window::new(0, DAY), tally(1.0)),
                (Window::new(DAY, 2 * DAY), tally(5.0)),
                (Window::new(2 * DAY, 3 * DAY), tally(4.0)),
            ]
        );
        // Whole days are appended as they are.
        let mut days = vec![(Window::new(0, DAY), tally(1.0))];
        join_days(
            &mut days,
            [(Window::new(DAY, 2 * DAY), tally(1.0))].into_iter(),
            &zone,
        );
        assert_eq!(days.len(), 2);
    }
}

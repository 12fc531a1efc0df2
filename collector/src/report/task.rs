//! The scheduler: every [`TICK`] it looks at the injected clock and, for each enabled schedule,
//! makes the newest due report unless the store holds it (generation and rendering on the
//! blocking pool), then mails a stored report that is not yet marked mailed.
//!
//! Idempotent by the store: a report is generated iff its key is missing and mailed iff its
//! record says it was not, and the mark is set only after every recipient's server accepted
//! it. A restart at 00:00:30 finds the day's report stored (or not) and does what is left; a
//! crash between mailing and marking sends it again, never skips it. Only the newest period's
//! report is mailed: one left unmailed when the next is due stays in the store, downloadable.
//! A failed mailing is tried again on later ticks with backoff (1 min doubling to 1 h); a
//! permanent refusal (bad recipient, failed AUTH) waits for a restart with a fixed config.

use super::config::{MailRoute, ReportsConfig};
use super::handle::ReportHandle;
use super::mail::{self, Contents, Mailer};
use super::records::{ReportEntry, StoredReport};
use super::render::{ReportFormat, render};
use super::schedule::{self, Schedule, period_label};
use super::store::ReportId;
use crate::alerting::config::AlertingConfig;
use crate::clock::Clock;
use crate::telemetry::Registrar;
use prometheus::{IntCounterVec, Registry};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often the clock is looked at.
pub const TICK: Duration = Duration::from_secs(30);

/// First wait after a failed mailing, doubled per further failure up to [`MAX_RETRY_MS`].
const FIRST_RETRY_MS: i64 = 60_000;
const MAX_RETRY_MS: i64 = 3_600_000;

/// The report metrics.
struct ReportMetrics {
    /// `{kind, outcome}`: reports generated (`ok`) or failed (`error`).
    generated: IntCounterVec,
    /// `{kind, outcome}`: mailings delivered (`sent`) or given up for now (`failed`).
    mailed: IntCounterVec,
}

impl ReportMetrics {
    fn new(registry: &Registry) -> Self {
        let r = Registrar(registry);
        Self {
            generated: r.counter_vec(
                "hcmon_collector_reports_generated_total",
                "Scheduled reports generated and stored (outcome=ok) or failed (outcome=error), by kind.",
                &["kind", "outcome"],
            ),
            mailed: r.counter_vec(
                "hcmon_collector_report_mails_total",
                "Scheduled reports mailed to every recipient (outcome=sent) or not after all tries (outcome=failed), by kind.",
                &["kind", "outcome"],
            ),
        }
    }
}

/// A report whose mailing failed: failures so far, when to try again (ms), and whether the
/// server refused it for good.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    failures: u32,
    next_ms: i64,
    permanent: bool,
}

/// The scheduled reports' task.
pub struct Scheduler {
    handle: ReportHandle,
    /// Enabled schedules and their mail routes (empty: stored, not mailed).
    schedules: BTreeMap<Schedule, Vec<MailRoute>>,
    mailer: Mailer,
    clock: Clock,
    metrics: ReportMetrics,
    backoff: HashMap<(Schedule, i64), Backoff>,
}

impl Scheduler {
    /// The scheduler of `config`'s enabled schedules; `None` when `[reports] enabled = false`.
    /// The config was validated, so its routes resolve; building the email channels reads
    /// their CA files.
    pub fn new(
        handle: ReportHandle,
        config: &ReportsConfig,
        alerting: &AlertingConfig,
        clock: Clock,
        registry: &Registry,
    ) -> anyhow::Result<Option<Self>> {
        if !config.enabled {
            return Ok(None);
        }
        let mut schedules = BTreeMap::new();
        for schedule in Schedule::ALL {
            if config.schedule(schedule).enabled {
                schedules.insert(schedule, config.routes(schedule, alerting)?);
            }
        }
        Ok(Some(Self {
            handle,
            schedules,
            mailer: Mailer::new(alerting)?,
            clock,
            metrics: ReportMetrics::new(registry),
            backoff: HashMap::new(),
        }))
    }

    /// Ticks until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            self.round().await;
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(TICK) => {}
            }
        }
    }

    /// One look at the clock: generates and mails what is due.
    pub async fn round(&mut self) {
        let schedules: Vec<(Schedule, Vec<MailRoute>)> = self
            .schedules
            .iter()
            .map(|(s, r)| (*s, r.clone()))
            .collect();
        for (schedule, routes) in schedules {
            let now_ms = (self.clock)();
            let zone = self.handle.zone().time_zone().clone();
            let due = match schedule::due(schedule, &zone, now_ms) {
                Ok(due) => due,
                Err(error) => {
                    tracing::error!(%schedule, %error, "cannot place the clock's time in the calendar");
                    continue;
                }
            };
            let Some(stored) = self.generate_if_missing(schedule, due.window, now_ms).await else {
                continue;
            };
            if !routes.is_empty() && !stored.mailed {
                self.mail(&stored, &routes, now_ms).await;
            }
        }
    }

    /// The stored report of `schedule` over `window`, generated and stored first if missing;
    /// `None` when that failed (logged and counted).
    async fn generate_if_missing(
        &mut self,
        schedule: Schedule,
        window: crate::analytics::slo::Window,
        now_ms: i64,
    ) -> Option<ReportEntry> {
        let handle = self.handle.clone();
        let work = move || -> anyhow::Result<(ReportEntry, bool)> {
            let store = &handle.store;
            if let Some(found) = store.entry(schedule, window.start_ms)? {
                return Ok((found, false));
            }
            let report = handle.generate(schedule.kind(), window, now_ms)?;
            let stored = StoredReport {
                schedule,
                window,
                generated_ms: now_ms,
                mailed: false,
                report,
            };
            store.put(&stored)?;
            Ok((stored.entry(), true))
        };
        let kind = schedule.name();
        match crate::tasks::blocking("report-generate", work).await {
            Ok(Ok((entry, generated))) => {
                if generated {
                    self.metrics
                        .generated
                        .with_label_values(&[kind, "ok"])
                        .inc();
                    tracing::info!(%schedule, start_ms = window.start_ms, end_ms = window.end_ms, "report generated and stored");
                }
                Some(entry)
            }
            Ok(Err(error)) => {
                self.metrics
                    .generated
                    .with_label_values(&[kind, "error"])
                    .inc();
                tracing::error!(%schedule, error = format!("{error:#}"), "cannot generate the report");
                None
            }
            // Logged and counted by `tasks::blocking`.
            Err(_) => {
                self.metrics
                    .generated
                    .with_label_values(&[kind, "error"])
                    .inc();
                None
            }
        }
    }

    /// Renders and mails `entry`'s stored report unless it waits out a backoff; marks it mailed
    /// once delivered.
    async fn mail(&mut self, entry: &ReportEntry, routes: &[MailRoute], now_ms: i64) {
        let key = (entry.schedule, entry.window.start_ms);
        if let Some(backoff) = self.backoff.get(&key)
            && (backoff.permanent || now_ms < backoff.next_ms)
        {
            return;
        }
        let schedule = entry.schedule;
        let kind = schedule.name();
        let handle = self.handle.clone();
        let start_ms = entry.window.start_ms;
        let render_work = move || -> anyhow::Result<Contents> {
            let stored = handle
                .store
                .get(schedule, start_ms)?
                .ok_or_else(|| anyhow::anyhow!("the report left the store"))?;
            let zone = handle.zone().time_zone();
            let period = period_label(schedule, zone, start_ms);
            let id = ReportId::of(&stored.entry(), zone)
                .map_or_else(|| format!("{schedule}-{start_ms}"), |id| id.to_string());
            Ok(Contents {
                subject: mail::subject(schedule, &period, &stored.report),
                html: render(&stored.report, ReportFormat::Html)?,
                pdf: render(&stored.report, ReportFormat::Pdf)?,
                filename: format!("hcmon-{id}.pdf"),
            })
        };
        let contents = match crate::tasks::blocking("report-render", render_work).await {
            Ok(Ok(contents)) => contents,
            Ok(Err(error)) => {
                tracing::error!(%schedule, error = format!("{error:#}"), "cannot render the report to mail it");
                self.failed(key, now_ms, false);
                return;
            }
            Err(_) => {
                self.failed(key, now_ms, false);
                return;
            }
        };
        match self.mailer.send(routes, &contents).await {
            Ok(()) => {
                let handle = self.handle.clone();
                let marked = crate::tasks::blocking("report-mailed", move || {
                    handle.store.mark_mailed(schedule, start_ms)
                })
                .await;
                match marked {
                    Ok(Ok(())) => {}
                    Ok(Err(error)) => {
                        tracing::error!(%schedule, %error, "report mailed, but marking it so failed: it will be mailed again");
                    }
                    Err(_) => {}
                }
                self.backoff.remove(&key);
                self.metrics.mailed.with_label_values(&[kind, "sent"]).inc();
                tracing::info!(%schedule, subject = contents.subject, "report mailed");
            }
            Err(error) => {
                self.metrics
                    .mailed
                    .with_label_values(&[kind, "failed"])
                    .inc();
                tracing::error!(%schedule, %error, "cannot mail the report");
                self.failed(key, now_ms, error.permanent);
            }
        }
    }

    fn failed(&mut self, key: (Schedule, i64), now_ms: i64, permanent: bool) {
        let failures = self.backoff.get(&key).map_or(0, |b| b.failures) + 1;
        let wait = FIRST_RETRY_MS
            .saturating_mul(1 << failures.saturating_sub(1).min(16))
            .min(MAX_RETRY_MS);
        self.backoff.insert(
            key,
            Backoff {
                failures,
                next_ms: now_ms.saturating_add(wait),
                permanent,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::store::{ReportStore, Retention};
    use crate::slo::config::SloConfig;
    use crate::slo::objectives::Objectives;
    use crate::storage::{MemoryKv, StorageConfig, Tsdb};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicI64, Ordering};

    fn ms(text: &str) -> i64 {
        text.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    /// A collector's scheduler on the store `kv`, its clock reading `now`; daily reports only.
    fn scheduler(kv: &MemoryKv, now: &Arc<AtomicI64>) -> (Scheduler, ReportStore) {
        let opened = Tsdb::open(Box::new(kv.clone()), StorageConfig::default()).unwrap();
        let tsdb = Arc::new(opened.tsdb);
        let catalog = Arc::new(crate::catalog::SeriesCatalog::new(opened.series));
        let objectives = Objectives::open(
            SloConfig::default(),
            Default::default(),
            tsdb.clone(),
            catalog.clone(),
        )
        .unwrap();
        let store = ReportStore::new(
            tsdb.clone(),
            Retention {
                daily: 2,
                weekly: 1,
                monthly: 1,
            },
        );
        let handle = ReportHandle {
            objectives: Arc::new(objectives),
            tsdb,
            catalog,
            alerting: None,
            store: store.clone(),
            forecast_alerts: Vec::new(),
        };
        let config: ReportsConfig =
            toml::from_str("[weekly]\nenabled = false\n[monthly]\nenabled = false\n").unwrap();
        let now = now.clone();
        let clock: Clock = Arc::new(move || now.load(Ordering::SeqCst));
        let scheduler = Scheduler::new(
            handle,
            &config,
            &AlertingConfig::default(),
            clock,
            &Registry::new(),
        )
        .unwrap()
        .unwrap();
        (scheduler, store)
    }

    #[tokio::test]
    async fn a_restart_just_after_midnight_neither_skips_nor_doubles_the_daily_report() {
        let kv = MemoryKv::default();
        let now = Arc::new(AtomicI64::new(ms("2026-11-29T23:59:50Z")));
        let (mut first, store) = scheduler(&kv, &now);
        first.round().await;
        let starts = |store: &ReportStore| -> Vec<(i64, i64)> {
            store
                .list(Schedule::Daily)
                .unwrap()
                .iter()
                .map(|e| (e.window.start_ms, e.generated_ms))
                .collect()
        };
        assert_eq!(
            starts(&store),
            [(ms("2026-11-28T00:00:00Z"), ms("2026-11-29T23:59:50Z"))]
        );
        // Midnight passes; the collector makes the 29th's report, then dies.
        now.store(ms("2026-11-30T00:00:00.200Z"), Ordering::SeqCst);
        first.round().await;
        first.round().await;
        drop(first);
        let made = [
            (ms("2026-11-28T00:00:00Z"), ms("2026-11-29T23:59:50Z")),
            (ms("2026-11-29T00:00:00Z"), ms("2026-11-30T00:00:00.200Z")),
        ];
        assert_eq!(starts(&store), made);
        // Restarted at 00:00:30: the day's report is there, so nothing is made again.
        now.store(ms("2026-11-30T00:00:30Z"), Ordering::SeqCst);
        let (mut second, store) = scheduler(&kv, &now);
        second.round().await;
        assert_eq!(starts(&store), made);
        assert!(
            store
                .list(Schedule::Daily)
                .unwrap()
                .iter()
                .all(|e| !e.mailed)
        );

        // What was stored reads back whole, is found by its id, and is marked once mailed.
        let start = ms("2026-11-29T00:00:00Z");
        let stored = store.get(Schedule::Daily, start).unwrap().unwrap();
        assert_eq!(stored.report.kind, crate::report::model::ReportKind::Daily);
        assert_eq!(stored.report.window, stored.window);
        let id: ReportId = "daily-2026-11-29".parse().unwrap();
        let found = store.find(id, &jiff::tz::TimeZone::UTC).unwrap().unwrap();
        assert_eq!(found.report, stored.report);
        store.mark_mailed(Schedule::Daily, start).unwrap();
        let marked = store.get(Schedule::Daily, start).unwrap().unwrap();
        assert!(marked.mailed);
        assert_eq!(marked.report, stored.report);
        let subject = mail::subject(
            Schedule::Daily,
            &period_label(Schedule::Daily, &jiff::tz::TimeZone::UTC, start),
            &stored.report,
        );
        assert!(
            subject.starts_with("hcmon daily report: Sunday 29 November 2026 — "),
            "{subject}"
        );

        // Had it died before midnight's report, the restart makes it, once; retention keeps 2.
        let kv = MemoryKv::default();
        now.store(ms("2026-11-29T12:00:00Z"), Ordering::SeqCst);
        let (mut first, _) = scheduler(&kv, &now);
        first.round().await;
        drop(first);
        now.store(ms("2026-11-30T00:00:30Z"), Ordering::SeqCst);
        let (mut second, store) = scheduler(&kv, &now);
        second.round().await;
        second.round().await;
        let windows: Vec<i64> = starts(&store).iter().map(|(s, _)| *s).collect();
        assert_eq!(
            windows,
            [ms("2026-11-28T00:00:00Z"), ms("2026-11-29T00:00:00Z")]
        );
        now.store(ms("2026-12-01T00:00:01Z"), Ordering::SeqCst);
        second.round().await;
        let windows: Vec<i64> = starts(&store).iter().map(|(s, _)| *s).collect();
        assert_eq!(
            windows,
            [ms("2026-11-29T00:00:00Z"), ms("2026-11-30T00:00:00Z")]
        );
    }
}

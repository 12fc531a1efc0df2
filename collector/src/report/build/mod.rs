//! The report's content, pure: from SLO results, incident facts and SLO definitions, with the
//! window, the moment of generation and the zone as arguments (no I/O, no clock).
//!
//! - `compliance.rs`: rows per SLO, daily chart and burn-down, the summary and its headline;
//! - `incidents.rs`: incident counts in the zone, the list, response and resolution times;
//! - `trends.rs`: slopes of daily compliance, MTTA and MTTR over 30 days, weekday effects;
//! - `patterns.rs`: recurring incidents;
//! - `forecast.rs`: compliance and budget 30 days ahead;
//! - `recommend.rs`: at most five recommendations backed by the above;
//! - `text.rs`: how figures read in the sentences.
//!
//! Every part is computed whatever the kind (recommendations draw on trends, patterns and
//! forecasts even where those sections are not shown); the sections a kind does not have are
//! left empty in the report.

mod compliance;
pub mod coverage;
mod forecast;
mod incidents;
mod patterns;
mod recommend;
pub(crate) mod text;
mod trends;

use crate::analytics::slo::response::Measure;
use crate::analytics::slo::{IncidentFact, Tally, Window, Zone, days};
use crate::report::model::{IncidentStats, Report, ReportKind, Sections, TrendUnit};
use crate::slo::{SloDefinition, SloResult};

/// Trends and forecasts look at this many days before the report's end.
pub const TREND_DAYS: i64 = 30;
const DAY_MS: i64 = 86_400_000;

/// One SLO as the report sees it.
#[derive(Debug, Clone, Copy)]
pub struct SloInput<'a> {
    pub definition: &'a SloDefinition,
    pub outcome: SloOutcome<'a>,
}

/// What evaluating an SLO gave.
#[derive(Debug, Clone, Copy)]
pub enum SloOutcome<'a> {
    Evaluated {
        /// Its evaluation over the report's window.
        result: &'a SloResult,
        /// Its calendar days over [`trend_span`], oldest first.
        trend_days: &'a [(Window, Tally)],
    },
    /// It could not be evaluated, for this reason: its row says so and it has no trend.
    Failed { error: &'a str },
}

/// Everything a report is built from.
#[derive(Debug, Clone)]
pub struct BuildInput<'a> {
    pub kind: ReportKind,
    pub window: Window,
    pub generated_ms: i64,
    pub zone: &'a Zone,
    /// In the order the report lists them.
    pub slos: Vec<SloInput<'a>>,
    /// At least every incident that started in [`look_back`]`(window, zone)`; others are
    /// ignored.
    pub incidents: &'a [IncidentFact],
    /// Names of the alerting rules that forecast a resource reaching its limit (e.g.
    /// "DiskWillFill").
    pub forecast_alerts: &'a [String],
    /// Per node, data coverage over the window (`coverage::rows`).
    pub coverage: &'a [super::model::CoverageRow],
}

/// The 30 calendar days of `zone` ending with the day that holds the window's last instant
/// (that day clipped at the window's end).
pub fn trend_span(window: Window, zone: &Zone) -> Window {
    let last = window.end_ms.saturating_sub(1).max(window.start_ms);
    let start = zone
        .date_of(last)
        .and_then(|d| d.checked_sub(jiff::Span::new().days(TREND_DAYS - 1)).ok())
        .and_then(|d| zone.start_of(d))
        .unwrap_or(window.end_ms.saturating_sub(TREND_DAYS * DAY_MS));
    Window::new(start, window.end_ms)
}

/// The whole range a report reads: its window, widened back to the trend span's start.
pub fn look_back(window: Window, zone: &Zone) -> Window {
    Window::new(
        window.start_ms.min(trend_span(window, zone).start_ms),
        window.end_ms,
    )
}

/// The report.
pub fn build(input: &BuildInput) -> Report {
    let zone = input.zone;
    let window = input.window;
    let span = look_back(window, zone);
    let started = incidents::started_in(input.incidents, window);
    let in_span = incidents::started_in(input.incidents, span);
    let definitions: Vec<&SloDefinition> = input.slos.iter().map(|s| s.definition).collect();

    let rows: Vec<_> = input
        .slos
        .iter()
        .map(|s| match s.outcome {
            SloOutcome::Evaluated { result, .. } => compliance::row(s.definition, result),
            SloOutcome::Failed { error } => compliance::failed_row(s.definition, error),
        })
        .collect();
    let summary = compliance::summary(&rows, &started);

    let slo_trends: Vec<(String, f64, trends::Trend)> = input
        .slos
        .iter()
        .filter_map(|s| {
            let SloOutcome::Evaluated { trend_days, .. } = s.outcome else {
                return None;
            };
            let name = s.definition.name.to_string();
            let t = trends::trend(
                format!("compliance of {name}"),
                TrendUnit::Share,
                trends::daily_compliance(trend_days),
                true,
                zone,
            )?;
            Some((name, s.definition.target, t))
        })
        .collect();
    let trend_days = days(zone, trend_span(window, zone));
    let in_trend = incidents::started_in(input.incidents, trend_span(window, zone));
    let wait_trends = [(Measure::Acknowledge, "MTTA"), (Measure::Resolve, "MTTR")]
        .into_iter()
        .filter_map(|(measure, subject)| {
            let points = trends::daily_waits(&in_trend, &trend_days, measure);
            trends::trend(
                subject.to_owned(),
                TrendUnit::Milliseconds,
                points,
                false,
                zone,
            )
        });
    let mut trend_rows: Vec<_> = wait_trends.map(|t| t.row).collect();
    // The significant ones first, the strongest evidence first; the rest in the SLOs' order.
    let mut by_significance: Vec<&trends::Trend> = slo_trends.iter().map(|(_, _, t)| t).collect();
    by_significance.sort_by(|a, b| {
        b.row
            .significant
            .cmp(&a.row.significant)
            .then_with(|| match a.row.significant {
                true => a.p_value.total_cmp(&b.p_value),
                false => std::cmp::Ordering::Equal,
            })
    });
    trend_rows.extend(by_significance.into_iter().map(|t| t.row.clone()));

    let forecasts: Vec<_> = slo_trends
        .iter()
        .map(|(name, target, t)| forecast::forecast(name, *target, t))
        .collect();
    let found = patterns::patterns(input.incidents, span, zone);
    let incident_slos: Vec<String> = definitions
        .iter()
        .filter(|d| !d.sli.is_sample_based())
        .map(|d| d.name.to_string())
        .collect();
    let recommendations = recommend::recommend(&recommend::Evidence {
        rows: &rows,
        trends: &slo_trends,
        forecasts: &forecasts,
        patterns: &found,
        span,
        incidents: &in_span,
        forecast_alerts: input.forecast_alerts,
        incident_slos: &incident_slos,
        window_end_ms: window.end_ms,
        zone,
    });

    let sections = Sections::for_kind(input.kind);
    Report {
        kind: input.kind,
        title: title(input.kind, window, zone),
        window,
        generated_ms: input.generated_ms,
        timezone: zone.name().to_owned(),
        sections,
        summary,
        compliance: keep(sections.compliance, rows),
        response: keep(
            sections.response,
            incidents::response(&started, &definitions, input.generated_ms),
        ),
        incidents: match sections.incidents {
            true => incidents::stats(&started, window, zone),
            false => IncidentStats::default(),
        },
        trends: keep(sections.trends, trend_rows),
        patterns: keep(
            sections.patterns,
            found.into_iter().map(|p| p.row).collect(),
        ),
        forecast: keep(sections.forecast, forecasts),
        recommendations: keep(sections.recommendations, recommendations),
        coverage: keep(sections.coverage, input.coverage.to_vec()),
    }
}

/// `rows` when the section is on, else nothing.
fn keep<T>(on: bool, rows: Vec<T>) -> Vec<T> {
    if on { rows } else { Vec::new() }
}

/// "Daily SLA report: 2026-11-29", "Weekly SLA report: 2026-11-23 to 2026-11-29", "Monthly
/// SLA report: November 2026", "SLA report: 2026-11-01 00:00 to 2026-11-15 12:00".
fn title(kind: ReportKind, window: Window, zone: &Zone) -> String {
    let midnight = |ms: i64| text::when(ms, zone, "%H:%M:%S") == "00:00:00";
    let whole_days =
        midnight(window.start_ms) && midnight(window.end_ms) && window.end_ms > window.start_ms;
    let range = match whole_days {
        true => {
            let (first, last) = (
                text::date(window.start_ms, zone),
                text::date(window.end_ms - 1, zone),
            );
            if first == last {
                first
            } else {
                format!("{first} to {last}")
            }
        }
        false => format!(
            "{} to {}",
            text::datetime(window.start_ms, zone),
            text::datetime(window.end_ms, zone)
        ),
    };
    match kind {
        ReportKind::Monthly if whole_days => {
            format!(
                "Monthly SLA report: {}",
                text::when(window.start_ms, zone, "%B %Y")
            )
        }
        ReportKind::OnDemand => format!("SLA report: {range}"),
        kind => format!("{} SLA report: {range}", kind.label()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::slo::{Budgeting, IncidentSeverity, Status, budget, burn_rate, status};
    use crate::report::build::incidents::tests::{MIN, incident, ms};
    use crate::report::model::{Direction, PatternKind};
    use crate::slo::{AvailabilitySource, CountingPolicy, Origin, Sli};

    fn berlin() -> Zone {
        Zone::parse("Europe/Berlin").unwrap()
    }

    fn definition(name: &str) -> SloDefinition {
        let sli = Sli::Availability {
            source: AvailabilitySource::Probe,
            retries: 0,
        };
        SloDefinition::new(name.parse().unwrap(), "", sli, Origin::Default)
    }

    /// A result made of days with 1000 events each and these compliances.
    fn result(name: &str, days_: &[Window], compliance: impl Fn(usize) -> f64) -> SloResult {
        let daily: Vec<(Window, Tally)> = days_
            .iter()
            .enumerate()
            .map(|(d, w)| {
                let good = (1000.0 * compliance(d)).round();
                (
                    *w,
                    Tally {
                        good,
                        bad: 1000.0 - good,
                        unknown: 0.0,
                        excluded: 0.0,
                    },
                )
            })
            .collect();
        let mut tally = Tally::default();
        daily.iter().for_each(|(_, t)| tally.merge(t));
        let c = tally.compliance();
        SloResult {
            name: name.parse().unwrap(),
            window: Window::new(days_[0].start_ms, days_[days_.len() - 1].end_ms),
            policy: CountingPolicy {
                budgeting: Budgeting::Occurrences,
                retries: 0,
                maintenance_excluded: true,
                unknown_counts_as_up: false,
            },
            tally,
            compliance: c,
            coverage: tally.coverage(),
            status: status(c, 0.95, 0.9),
            budget: budget(&tally, 0.95),
            burn_rate: burn_rate(&tally, 0.95),
            time_to_exhaustion_ms: None,
            covered: 1,
            breaches: Vec::new(),
            daily,
        }
    }

    #[test]
    fn report_trend_span_is_thirty_local_days_across_dst() {
        let zone = berlin();
        // Ends at 2026-11-10 00:00 CET: the span starts 2026-10-11 00:00 CEST, one hour more
        // than 30 × 24 h (the clocks went back on 2026-10-25).
        let window = Window::new(ms("2026-11-08T23:00:00Z"), ms("2026-11-09T23:00:00Z"));
        let span = trend_span(window, &zone);
        assert_eq!(span, Window::new(ms("2026-10-10T22:00:00Z"), window.end_ms));
        assert_eq!(span.len_ms(), 30 * DAY_MS + 3_600_000);
        assert_eq!(days(&zone, span).len(), 30);
        assert_eq!(look_back(window, &zone), span);
        // A window longer than 30 days is its own look-back.
        let long = Window::new(ms("2026-09-01T00:00:00Z"), window.end_ms);
        assert_eq!(look_back(long, &zone), long);
    }

    #[test]
    fn report_build_monthly_and_daily() {
        let zone = berlin();
        let november = Window::new(ms("2026-10-31T23:00:00Z"), ms("2026-11-30T23:00:00Z"));
        let month_days = days(&zone, november);
        assert_eq!(month_days.len(), 30);
        let (web_def, nas_def) = (
            definition("probe:web:availability"),
            definition("node:nas:availability"),
        );
        // Web falls 0.4 points a day from 99.9 %: 94.1 % over the month. Nas is always up.
        let web = result("probe:web:availability", &month_days, |d| {
            0.999 - 0.004 * d as f64
        });
        let nas = result("node:nas:availability", &month_days, |_| 1.0);
        // HighCpu on nas at 03:05 local on 9 days, acknowledged after 5 min, resolved after 10.
        let incidents: Vec<IncidentFact> = (0..9)
            .map(|d| {
                let start = month_days[d * 3].start_ms + 3 * 3_600_000 + 5 * MIN;
                incident(
                    &format!("i{d}"),
                    "HighCpu",
                    "nas",
                    IncidentSeverity::Error,
                    start,
                    Some(5 * MIN),
                    Some(10 * MIN),
                )
            })
            .collect();
        let (definitions, results) = ([web_def, nas_def], [web, nas]);
        let input = |kind, window| BuildInput {
            kind,
            window,
            generated_ms: november.end_ms + 60_000,
            zone: &zone,
            slos: definitions
                .iter()
                .zip(&results)
                .map(|(definition, result)| SloInput {
                    definition,
                    outcome: SloOutcome::Evaluated {
                        result,
                        trend_days: &result.daily,
                    },
                })
                .collect(),
            incidents: &incidents,
            forecast_alerts: &[],
            coverage: &[],
        };

        let monthly = build(&input(ReportKind::Monthly, november));
        assert_eq!(monthly.title, "Monthly SLA report: November 2026");
        assert_eq!(monthly.timezone, "Europe/Berlin");
        assert_eq!(monthly.sections, Sections::for_kind(ReportKind::Monthly));
        let s = &monthly.summary;
        assert_eq!(
            (s.slos, s.met, s.warning, s.breached, s.incidents),
            (2, 1, 1, 0, 9)
        );
        assert_eq!(
            s.headline,
            "1 of 2 SLOs below target: probe:web:availability at 94.10 % (target 95 %)."
        );
        assert_eq!(monthly.compliance.len(), 2);
        assert_eq!(monthly.compliance[0].daily.len(), 30);
        assert_eq!(monthly.incidents.count, 9);
        assert_eq!(monthly.incidents.by_hour[3], 9);
        // MTTA and MTTR first (constant: flat), then web (significant), then nas (flat).
        let subjects: Vec<(&str, Direction)> = monthly
            .trends
            .iter()
            .map(|t| (t.subject.as_str(), t.direction))
            .collect();
        assert_eq!(
            subjects,
            [
                ("MTTA", Direction::Flat),
                ("MTTR", Direction::Flat),
                ("compliance of probe:web:availability", Direction::Worsening),
                ("compliance of node:nas:availability", Direction::Flat),
            ]
        );
        assert!((monthly.trends[2].slope_per_day + 0.004).abs() < 1e-4);
        assert_eq!(monthly.patterns.len(), 1);
        assert_eq!(
            (monthly.patterns[0].kind, monthly.patterns[0].occurrences),
            (PatternKind::Hour, 9)
        );
        assert_eq!(monthly.patterns[0].when, "between 03:00 and 04:00");
        assert_eq!(monthly.forecast.len(), 2);
        assert_eq!(monthly.forecast[1].compliance.value, 1.0);
        // One recommendation about web (budget overspent and declining: one subject), one about
        // the recurring HighCpu.
        assert_eq!(
            monthly.recommendations.len(),
            2,
            "{:#?}",
            monthly.recommendations
        );
        assert!(
            monthly
                .recommendations
                .iter()
                .any(|r| r.finding.contains("probe:web:availability"))
        );
        assert!(
            monthly
                .recommendations
                .iter()
                .any(|r| r.finding.starts_with("HighCpu on nas"))
        );
        assert!(monthly.recommendations.iter().all(|r| r.confidence >= 0.7));
        // The stored form reads back the same.
        let json = serde_json::to_string(&monthly).unwrap();
        let back: Report = serde_json::from_str(&json).unwrap();
        // (serde_json may round a float's last digit; the figures are compared as read.)
        assert_eq!(
            (&back.title, &back.summary, &back.patterns),
            (&monthly.title, &monthly.summary, &monthly.patterns)
        );
        assert_eq!(back.compliance[0].status, Status::Warning);
        let web_advice = &monthly.recommendations[0].expected_impact;
        assert!(
            web_advice.contains(
                "already below its 95 % target, it reaches 76.30 % in 30 days, spending 474.00 %"
            ),
            "{web_advice}"
        );

        // The daily report of November 30th: its sections only; trends from the 30 days.
        let day = *month_days.last().unwrap();
        let daily = build(&input(ReportKind::Daily, day));
        assert_eq!(daily.title, "Daily SLA report: 2026-11-30");
        assert_eq!(daily.trends.len(), 4);
        assert!(
            daily.patterns.is_empty()
                && daily.forecast.is_empty()
                && daily.recommendations.is_empty()
        );
        assert_eq!(daily.incidents, IncidentStats::default());
        assert_eq!(daily.summary.incidents, 0, "none started on the 30th");

        let weekly = build(&input(
            ReportKind::Weekly,
            Window::new(ms("2026-11-22T23:00:00Z"), november.end_ms),
        ));
        assert_eq!(weekly.title, "Weekly SLA report: 2026-11-23 to 2026-11-30");
        let odd = Window::new(ms("2026-11-03T11:00:00Z"), ms("2026-11-04T12:30:00Z"));
        assert_eq!(
            build(&input(ReportKind::OnDemand, odd)).title,
            "SLA report: 2026-11-03 12:00 to 2026-11-04 13:30"
        );
    }

    #[test]
    fn report_build_without_anything_is_empty_but_says_so() {
        let zone = Zone::utc();
        let window = Window::new(0, DAY_MS);
        let report = build(&BuildInput {
            kind: ReportKind::OnDemand,
            window,
            generated_ms: DAY_MS,
            zone: &zone,
            slos: Vec::new(),
            incidents: &[],
            forecast_alerts: &[],
            coverage: &[],
        });
        assert_eq!(
            report.summary.headline,
            "No SLOs are defined; no incidents."
        );
        assert!(
            report.compliance.is_empty()
                && report.trends.is_empty()
                && report.recommendations.is_empty()
        );
        assert!(
            report.response.is_empty() && report.forecast.is_empty() && report.patterns.is_empty()
        );
        assert_eq!(report.incidents.by_hour, vec![0; 24]);
        assert_eq!(report.incidents.by_weekday, vec![0; 7]);
        // An SLO that could not be evaluated has a row saying why.
        let def = definition("probe:web:availability");
        let report = build(&BuildInput {
            kind: ReportKind::OnDemand,
            window,
            generated_ms: DAY_MS,
            zone: &zone,
            slos: vec![SloInput {
                definition: &def,
                outcome: SloOutcome::Failed {
                    error: "query failed",
                },
            }],
            incidents: &[],
            forecast_alerts: &[],
            coverage: &[],
        });
        assert_eq!(report.compliance[0].status, Status::NoData);
        assert_eq!(report.compliance[0].policy, "Not evaluated: query failed");
        assert_eq!(
            report.summary.headline,
            "The SLO had no data in this period; no incidents."
        );
    }
}

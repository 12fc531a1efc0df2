//! Recommendations: at most five, each derived from a finding in the report's own figures,
//! with the numbers that back it and how sure it is. A finding below 0.7 confidence is left
//! out, and so is everything without data: no finding, no recommendation.
//!
//! Where each confidence comes from:
//! - an overspent budget: the SLO's coverage (the share of the window whose outcome was known);
//! - declining compliance: 1 − p of the slope's t-test (only significant slopes qualify);
//! - a recurring incident: the share of that alert's incidents on that node that fell in the
//!   hour or on the weekday;
//! - slow acknowledgement at night: 1 − the one-sided p of night waits against day waits (a
//!   t-test on their logarithms, as waits are skewed), when night waits are at least 1.5× longer;
//! - a resource trending to its limit: 0.9 while its forecast alert is still firing at the
//!   window's end, else 0.7 plus 0.05 per repeated firing (at most 0.85); a single firing that
//!   resolved (0.6) is not enough.

use super::forecast::budget_left;
use super::incidents::{hour_and_weekday, wait_ms};
use super::patterns::Pattern;
use super::text::{count, date, datetime, duration, percent, points, target};
use super::trends::Trend;
use crate::analytics::slo::response::Measure;
use crate::analytics::slo::{IncidentFact, IncidentSeverity, Status, Window, Zone};
use crate::analytics::trend::fit_line;
use crate::report::model::{
    ComplianceRow, Direction, ForecastRow, PatternKind, Priority, Recommendation,
};
use std::collections::{BTreeMap, BTreeSet};

/// Most recommendations a report gives.
pub(super) const MAX: usize = 5;
/// Least confidence a recommendation needs.
pub(super) const MIN_CONFIDENCE: f64 = 0.7;
/// Local hours counted as night: from 22:00 to 07:00.
const NIGHT_FROM: usize = 22;
const NIGHT_TO: usize = 7;
/// Fewest acknowledged incidents on each side before night and day are compared.
const MIN_NIGHT_DAY: usize = 3;
/// How much longer night waits must be to matter.
const NIGHT_RATIO: f64 = 1.5;

/// What the recommendations are drawn from.
pub(super) struct Evidence<'a> {
    pub rows: &'a [ComplianceRow],
    /// Per SLO with a trend: its name, target and the trend of its daily compliance.
    pub trends: &'a [(String, f64, Trend)],
    pub forecasts: &'a [ForecastRow],
    pub patterns: &'a [Pattern],
    /// The range patterns, night waits and forecast alerts are looked for in.
    pub span: Window,
    /// The incidents that started in `span`.
    pub incidents: &'a [&'a IncidentFact],
    /// Names of the alerting rules that forecast a resource reaching its limit.
    pub forecast_alerts: &'a [String],
    /// Names of the SLOs over incident response or resolution (their advice is about people,
    /// not the service).
    pub incident_slos: &'a [String],
    pub window_end_ms: i64,
    pub zone: &'a Zone,
}

/// A recommendation with what it is about, so one subject gets one recommendation.
struct Candidate {
    subject: String,
    recommendation: Recommendation,
}

/// The recommendations, most important first.
pub(super) fn recommend(e: &Evidence) -> Vec<Recommendation> {
    let mut candidates: Vec<Candidate> = Vec::new();
    candidates.extend(e.rows.iter().filter_map(|r| overspent(r, e)));
    candidates.extend(
        e.trends
            .iter()
            .filter_map(|(name, t, trend)| declining(name, *t, trend, e)),
    );
    candidates.extend(e.patterns.iter().filter_map(|p| recurring(p, e)));
    candidates.extend(night(e));
    candidates.extend(resources(e));
    candidates.retain(|c| c.recommendation.confidence >= MIN_CONFIDENCE);
    candidates.sort_by(|a, b| {
        let (a, b) = (&a.recommendation, &b.recommendation);
        a.priority
            .cmp(&b.priority)
            .then_with(|| b.confidence.total_cmp(&a.confidence))
            .then_with(|| a.finding.cmp(&b.finding))
    });
    let mut seen = BTreeSet::new();
    candidates
        .into_iter()
        .filter(|c| seen.insert(c.subject.clone()))
        .take(MAX)
        .map(|c| c.recommendation)
        .collect()
}

/// What an SLO covers, for a sentence: its selector, or its name.
fn covers(row_name: &str, selector: &str) -> String {
    match selector.trim() {
        "" => row_name.to_owned(),
        s => s.to_owned(),
    }
}

/// An SLO below target: its budget for the window is overspent.
fn overspent(row: &ComplianceRow, e: &Evidence) -> Option<Candidate> {
    let zone = e.zone;
    let (Some(compliance), Some(left)) = (row.compliance, row.budget_remaining) else {
        return None;
    };
    if !matches!(row.status, Status::Breached | Status::Warning) || left > 0.0 {
        return None;
    }
    let cause = match row.breaches.iter().max_by_key(|b| b.len_ms()) {
        Some(b) => format!(
            "find the cause of its longest breach ({}, {})",
            datetime(b.start_ms, zone),
            duration(b.len_ms() as f64)
        ),
        None => {
            let worst = row
                .daily
                .iter()
                .filter_map(|d| Some((d.start_ms, d.compliance?)))
                .min_by(|a, b| a.1.total_cmp(&b.1));
            match worst {
                Some((day, c)) => format!(
                    "find the cause of its worst day ({} at {})",
                    date(day, zone),
                    percent(c)
                ),
                None => "find the cause of its failures".to_owned(),
            }
        }
    };
    let burn = row
        .burn_rate
        .map(|b| format!(" (it burned budget {b:.1}× as fast as sustainable)"))
        .unwrap_or_default();
    Some(Candidate {
        subject: format!("slo:{}", row.name),
        recommendation: Recommendation {
            priority: match row.status {
                Status::Breached => Priority::High,
                _ => Priority::Medium,
            },
            finding: format!(
                "{} was at {} against its {} target: it spent {} of its error budget{burn}.",
                row.name,
                percent(compliance),
                target(row.target),
                percent(1.0 - left)
            ),
            recommendation: match e.incident_slos.contains(&row.name) {
                true => "Go through the incidents that missed their targets in the response table: check who was paged and when, and give the alerts that wait longest a runbook or a better route.".to_owned(),
                false => format!(
                    "Hold risky changes to {} until it is back above target, and {cause}.",
                    covers(&row.name, &row.covers)
                ),
            },
            expected_impact: format!(
                "Back at {} the budget stops overspending; each point of compliance regained is {} of the budget.",
                target(row.target),
                percent(0.01 / (1.0 - row.target))
            ),
            confidence: row.coverage.unwrap_or(0.0),
        },
    })
}

/// An SLO whose daily compliance falls significantly.
fn declining(name: &str, slo_target: f64, trend: &Trend, e: &Evidence) -> Option<Candidate> {
    if trend.row.direction != Direction::Worsening {
        return None;
    }
    let fit = &trend.fit;
    let (first, last) = (fit.value_at(fit.origin_ms), fit.value_at(fit.last_ms));
    let forecast = e.forecasts.iter().find(|f| f.slo == name);
    let already_below = last < slo_target;
    let crossing = forecast.and_then(|f| f.points.iter().find(|p| p.1 < slo_target));
    let row = e.rows.iter().find(|r| r.name == name);
    let what = row.map_or_else(|| name.to_owned(), |r| covers(name, &r.covers));
    let ahead = match (forecast, crossing) {
        (Some(f), Some(c)) => {
            let when = match already_below {
                true => format!("already below its {} target, it", target(slo_target)),
                false => format!(
                    "at this rate it falls below its {} target around {} and",
                    target(slo_target),
                    date(c.0, e.zone)
                ),
            };
            format!(
                "; {when} reaches {} in {} days, spending {} of a period's error budget",
                percent(f.compliance.value),
                f.horizon_days,
                percent(1.0 - budget_left(f.compliance.value, slo_target))
            )
        }
        (Some(f), None) => format!(
            "; at this rate it reaches {} in {} days",
            percent(f.compliance.value),
            f.horizon_days
        ),
        _ => String::new(),
    };
    Some(Candidate {
        subject: format!("slo:{name}"),
        recommendation: Recommendation {
            priority: if crossing.is_some() {
                Priority::High
            } else {
                Priority::Medium
            },
            finding: format!(
                "Daily compliance of {name} fell {} a day over {} (p = {:.3}), from {} to {}.",
                points(trend.row.slope_per_day.abs()),
                count(trend.row.samples, "day", "days"),
                trend.p_value,
                percent(first.clamp(0.0, 1.0)),
                percent(last.clamp(0.0, 1.0))
            ),
            recommendation: format!(
                "Find what changed for {what} since {}: deployments, load, dependencies, hardware; the decline is steady, not one bad day.",
                date(fit.origin_ms, e.zone)
            ),
            expected_impact: format!(
                "Stopping the decline keeps it near {}{ahead}.",
                percent(last.clamp(0.0, 1.0))
            ),
            confidence: 1.0 - trend.p_value,
        },
    })
}

fn severity_priority(severity: IncidentSeverity) -> Priority {
    match severity {
        IncidentSeverity::Critical => Priority::High,
        IncidentSeverity::Error => Priority::Medium,
        IncidentSeverity::Warning => Priority::Low,
    }
}

/// An alert that keeps firing on a node at the same hour or on the same weekday.
fn recurring(p: &Pattern, e: &Evidence) -> Option<Candidate> {
    let node = p.row.node.as_deref();
    let on = node.map(|n| format!(" on {n}")).unwrap_or_default();
    let look = match p.row.kind {
        PatternKind::Hour => "cron jobs, backups, batch work or traffic peaks",
        PatternKind::Weekday => "weekly jobs, deployments or traffic peaks",
    };
    let all = e.incidents.len().max(1);
    Some(Candidate {
        subject: format!("pattern:{}:{}", p.row.alert, node.unwrap_or_default()),
        recommendation: Recommendation {
            priority: severity_priority(p.severity),
            finding: format!(
                "{}{on} started {} on {} from {} to {} ({} of its {} incidents).",
                p.row.alert,
                p.row.when,
                count(p.row.occurrences, "day", "days"),
                date(p.row.span.start_ms, e.zone),
                date(p.row.span.end_ms - 1, e.zone),
                p.matching,
                p.total
            ),
            recommendation: format!(
                "Check what runs{on} {} ({look}) and move it, give it resources, or tune the {} rule if that load is expected.",
                p.row.when, p.row.alert
            ),
            expected_impact: format!(
                "Up to {} fewer incidents over a span like this one: {} of the {} that started in it.",
                p.matching,
                percent(p.matching as f64 / all as f64),
                e.incidents.len()
            ),
            confidence: p.matching as f64 / p.total.max(1) as f64,
        },
    })
}

/// Incidents that start at night waiting much longer for acknowledgement than by day.
fn night(e: &Evidence) -> Option<Candidate> {
    let (mut at_night, mut by_day) = (Vec::new(), Vec::new());
    for incident in e.incidents {
        let (Some(wait), Some((hour, _))) = (
            wait_ms(incident, Measure::Acknowledge),
            hour_and_weekday(incident.started_ms, e.zone),
        ) else {
            continue;
        };
        if !(NIGHT_TO..NIGHT_FROM).contains(&hour) {
            at_night.push(wait);
        } else {
            by_day.push(wait);
        }
    }
    if at_night.len() < MIN_NIGHT_DAY || by_day.len() < MIN_NIGHT_DAY {
        return None;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (night_mean, day_mean) = (mean(&at_night), mean(&by_day));
    if night_mean < NIGHT_RATIO * day_mean.max(1.0) {
        return None;
    }
    // x = 1 s for night, 0 for day: the slope is the difference of the mean log waits.
    let log = |wait: f64| (wait / 1000.0 + 1.0).ln();
    let samples: Vec<(i64, f64)> = at_night
        .iter()
        .map(|&w| (1000, log(w)))
        .chain(by_day.iter().map(|&w| (0, log(w))))
        .collect();
    let split = fit_line(&samples)?;
    if split.slope <= 0.0 {
        return None;
    }
    let one_sided_p = split.slope_p_value() / 2.0;
    let all_mean = (night_mean * at_night.len() as f64 + day_mean * by_day.len() as f64)
        / (at_night.len() + by_day.len()) as f64;
    Some(Candidate {
        subject: "night".to_owned(),
        recommendation: Recommendation {
            priority: if night_mean >= 2.0 * day_mean { Priority::High } else { Priority::Medium },
            finding: format!(
                "From {} to {}, incidents that started at night ({NIGHT_FROM}:00–{NIGHT_TO:02}:00) were acknowledged after {} on average ({}), by day after {} ({}).",
                date(e.span.start_ms, e.zone),
                date(e.span.end_ms - 1, e.zone),
                duration(night_mean),
                count(at_night.len(), "incident", "incidents"),
                duration(day_mean),
                count(by_day.len(), "incident", "incidents")
            ),
            recommendation: "Check that night pages reach someone who can act: the escalation tiers and on-call recipients for 22:00–07:00, and which of these alerts need to wake anyone at all.".to_owned(),
            expected_impact: format!(
                "Acknowledging night incidents as fast as by day brings the mean time to acknowledge from {} to about {}.",
                duration(all_mean),
                duration(day_mean)
            ),
            confidence: 1.0 - one_sided_p,
        },
    })
}

/// What a forecast alert is about: its node and other identity labels.
fn resource(incident: &IncidentFact) -> String {
    let others: Vec<String> = incident
        .labels
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "node" | "alertname" | "severity"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    match (incident.labels.get("node"), others.is_empty()) {
        (Some(node), true) => node.clone(),
        (Some(node), false) => format!("{node} ({})", others.join(", ")),
        (None, _) => others.join(", "),
    }
}

/// Resources whose forecast alerts fired: heading for their limit.
fn resources(e: &Evidence) -> Vec<Candidate> {
    let mut by_resource: BTreeMap<(String, String), Vec<&IncidentFact>> = BTreeMap::new();
    for incident in e
        .incidents
        .iter()
        .filter(|i| e.forecast_alerts.contains(&i.alert))
    {
        by_resource
            .entry((incident.alert.clone(), resource(incident)))
            .or_default()
            .push(incident);
    }
    by_resource
        .into_iter()
        .map(|((alert, what), fired)| {
            let open = fired
                .iter()
                .any(|i| i.resolved_ms.is_none_or(|r| r >= e.window_end_ms));
            let confidence = match (open, fired.len()) {
                (true, _) => 0.9,
                (false, 1) => 0.6,
                (false, n) => 0.7 + 0.05 * (n - 1).min(3) as f64,
            };
            let state = if open {
                "still firing at the end of the period".to_owned()
            } else {
                let last = fired.iter().filter_map(|i| i.resolved_ms).max().unwrap_or(e.window_end_ms);
                format!("last resolved {}", datetime(last, e.zone))
            };
            let disk = alert.to_ascii_lowercase().contains("disk")
                || fired.iter().any(|i| i.labels.contains_key("mountpoint") || i.labels.contains_key("device"));
            let recommendation = if disk {
                format!("Free space or grow the filesystem on {what} before it fills: find what grows (logs, backups, caches) and give it retention, or add capacity.")
            } else {
                format!("Add capacity to {what} or reduce what it uses before it reaches the limit the {alert} rule watches.")
            };
            Candidate {
                subject: format!("resource:{alert}:{what}"),
                recommendation: Recommendation {
                    priority: if open { Priority::High } else { Priority::Medium },
                    finding: format!(
                        "{alert} forecast {what} reaching its limit {}, {state}.",
                        match fired.len() {
                            1 => "once".to_owned(),
                            n => format!("{n} times"),
                        }
                    ),
                    recommendation,
                    expected_impact: format!("Avoids the outage when {what} reaches its limit, and {alert} stops firing."),
                    confidence,
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::build::forecast::forecast;
    use crate::report::build::incidents::tests::{HOUR, MIN, incident, ms};
    use crate::report::build::patterns::patterns;
    use crate::report::build::trends::trend;
    use crate::report::model::{DayPoint, TrendUnit};

    const DAY: i64 = 86_400_000;
    const W: IncidentSeverity = IncidentSeverity::Warning;

    fn span() -> Window {
        Window::new(ms("2026-11-02T00:00:00Z"), ms("2026-12-02T00:00:00Z"))
    }

    fn evidence<'a>(
        rows: &'a [ComplianceRow],
        trends: &'a [(String, f64, Trend)],
        forecasts: &'a [ForecastRow],
        found: &'a [Pattern],
        incidents: &'a [&'a IncidentFact],
        forecast_alerts: &'a [String],
        zone: &'a Zone,
    ) -> Evidence<'a> {
        Evidence {
            rows,
            trends,
            forecasts,
            patterns: found,
            span: span(),
            incidents,
            forecast_alerts,
            incident_slos: &[],
            window_end_ms: span().end_ms,
            zone,
        }
    }

    fn row(name: &str, compliance: f64, status: Status, coverage: f64) -> ComplianceRow {
        ComplianceRow {
            name: name.into(),
            description: String::new(),
            covers: "{name=\"web\"}".into(),
            sli: "probe availability".into(),
            period: "30d".into(),
            target: 0.95,
            warning: 0.9,
            compliance: Some(compliance),
            coverage: Some(coverage),
            status,
            budget_remaining: Some(budget_left(compliance, 0.95)),
            burn_rate: Some((1.0 - compliance) / 0.05),
            time_to_exhaustion_ms: None,
            breaches: vec![Window::new(
                span().start_ms + 3 * HOUR,
                span().start_ms + 5 * HOUR,
            )],
            policy: String::new(),
            daily: vec![DayPoint {
                start_ms: span().start_ms,
                compliance: Some(compliance),
                budget_remaining: None,
            }],
        }
    }

    #[test]
    fn report_recommendations_need_data() {
        let zone = Zone::utc();
        let e = evidence(&[], &[], &[], &[], &[], &[], &zone);
        assert!(recommend(&e).is_empty());
        // Every SLO met, flat, no incidents: nothing to recommend either.
        let rows = [row("probe:web:availability", 0.99, Status::Met, 1.0)];
        let e = evidence(&rows, &[], &[], &[], &[], &[], &zone);
        assert!(recommend(&e).is_empty());
    }

    #[test]
    fn report_recommendation_for_an_overspent_budget_is_as_sure_as_its_coverage() {
        let zone = Zone::utc();
        let rows = [row("probe:web:availability", 0.931, Status::Breached, 0.98)];
        let found = recommend(&evidence(&rows, &[], &[], &[], &[], &[], &zone));
        assert_eq!(found.len(), 1);
        let r = &found[0];
        assert_eq!((r.priority, r.confidence), (Priority::High, 0.98));
        // 1 − 0.069/0.05 = −0.38 left: 138 % spent.
        assert_eq!(
            r.finding,
            "probe:web:availability was at 93.10 % against its 95 % target: it spent 138.00 % of its error budget (it burned budget 1.4× as fast as sustainable)."
        );
        assert!(
            r.recommendation.contains("{name=\"web\"}")
                && r.recommendation.contains("2026-11-02 03:00, 2 h 00 min"),
            "{}",
            r.recommendation
        );
        // An incident SLO's advice is about the response, not the service.
        let names = ["probe:web:availability".to_owned()];
        let e = Evidence {
            incident_slos: &names,
            ..evidence(&rows, &[], &[], &[], &[], &[], &zone)
        };
        assert!(
            recommend(&e)[0]
                .recommendation
                .starts_with("Go through the incidents")
        );
        // Half the window unknown: not sure enough.
        let rows = [row("probe:web:availability", 0.931, Status::Breached, 0.5)];
        assert!(recommend(&evidence(&rows, &[], &[], &[], &[], &[], &zone)).is_empty());
    }

    #[test]
    fn report_recommendation_for_declining_compliance_only_when_significant() {
        let zone = Zone::utc();
        let declining = (0..30)
            .map(|d| {
                (
                    span().start_ms + d * DAY,
                    0.999 - 0.001 * d as f64 + 0.001 * (d % 2) as f64,
                )
            })
            .collect();
        let t = trend(
            "compliance of web".into(),
            TrendUnit::Share,
            declining,
            true,
            &zone,
        )
        .unwrap();
        let f = forecast("web", 0.95, &t);
        let trends = [("web".to_owned(), 0.95, t)];
        let forecasts = [f];
        let found = recommend(&evidence(&[], &trends, &forecasts, &[], &[], &[], &zone));
        assert_eq!(found.len(), 1);
        let r = &found[0];
        // From 97 % today the line reaches 95 % in about 20 days, inside the horizon: high priority.
        assert_eq!(r.priority, Priority::High);
        assert!(r.confidence > 0.999, "{}", r.confidence);
        assert!(
            r.finding.starts_with(
                "Daily compliance of web fell 0.1 points a day over 30 days (p = 0.000)"
            ),
            "{}",
            r.finding
        );
        assert!(
            r.expected_impact
                .contains("falls below its 95 % target around"),
            "{}",
            r.expected_impact
        );

        let flat = (0..30)
            .map(|d| {
                (
                    span().start_ms + d * DAY,
                    0.99 + 0.002 * ((d * 7 % 3) - 1) as f64,
                )
            })
            .collect();
        let t = trend(
            "compliance of web".into(),
            TrendUnit::Share,
            flat,
            true,
            &zone,
        )
        .unwrap();
        let trends = [("web".to_owned(), 0.95, t)];
        assert!(recommend(&evidence(&[], &trends, &[], &[], &[], &[], &zone)).is_empty());
    }

    #[test]
    fn report_recommendation_for_a_recurring_incident() {
        let zone = Zone::utc();
        // HighCpu on nas: 9 days at 03:xx, once at 15:00: 9 of 10.
        let mut all: Vec<IncidentFact> = (0..9)
            .map(|d| {
                incident(
                    &format!("{d}"),
                    "HighCpu",
                    "nas",
                    IncidentSeverity::Error,
                    span().start_ms + d * DAY + 3 * HOUR + 5 * MIN,
                    None,
                    Some(MIN),
                )
            })
            .collect();
        all.push(incident(
            "x",
            "HighCpu",
            "nas",
            IncidentSeverity::Error,
            span().start_ms + 15 * HOUR,
            None,
            Some(MIN),
        ));
        let found_patterns = patterns(&all, span(), &zone);
        let refs: Vec<&IncidentFact> = all.iter().collect();
        let found = recommend(&evidence(&[], &[], &[], &found_patterns, &refs, &[], &zone));
        assert_eq!(found.len(), 1);
        let r = &found[0];
        assert_eq!((r.priority, r.confidence), (Priority::Medium, 0.9));
        assert_eq!(
            r.finding,
            "HighCpu on nas started between 03:00 and 04:00 on 9 days from 2026-11-02 to 2026-12-01 (9 of its 10 incidents)."
        );
        assert!(
            r.recommendation
                .starts_with("Check what runs on nas between 03:00 and 04:00 (cron jobs"),
            "{}",
            r.recommendation
        );
        // 3 at 03:xx of 6: a pattern, but only half of that alert's incidents: no recommendation.
        let half: Vec<IncidentFact> = (0..6)
            .map(|d| {
                incident(
                    &format!("{d}"),
                    "HighCpu",
                    "nas",
                    W,
                    span().start_ms + d * DAY + if d < 3 { 3 * HOUR } else { (d + 7) * HOUR },
                    None,
                    Some(MIN),
                )
            })
            .collect();
        let found_patterns = patterns(&half, span(), &zone);
        assert_eq!(found_patterns.len(), 1);
        let refs: Vec<&IncidentFact> = half.iter().collect();
        assert!(recommend(&evidence(&[], &[], &[], &found_patterns, &refs, &[], &zone)).is_empty());
    }

    #[test]
    fn report_recommendation_for_slow_night_acknowledgement() {
        let zone = Zone::parse("Europe/Berlin").unwrap();
        // Night (local 23:00 = 22:00 UTC in November): 40, 50, 60 min. Day (local 11:00): 5, 6, 7 min.
        let mut all = Vec::new();
        for (k, ack) in [40, 50, 60].into_iter().enumerate() {
            let start = span().start_ms + k as i64 * DAY + 22 * HOUR;
            all.push(incident(
                &format!("n{k}"),
                "A",
                "nas",
                W,
                start,
                Some(ack * MIN),
                None,
            ));
        }
        for (k, ack) in [5, 6, 7].into_iter().enumerate() {
            let start = span().start_ms + k as i64 * DAY + 10 * HOUR;
            all.push(incident(
                &format!("d{k}"),
                "A",
                "nas",
                W,
                start,
                Some(ack * MIN),
                None,
            ));
        }
        let refs: Vec<&IncidentFact> = all.iter().collect();
        let found = recommend(&evidence(&[], &[], &[], &[], &refs, &[], &zone));
        assert_eq!(found.len(), 1);
        let r = &found[0];
        assert_eq!(r.priority, Priority::High);
        assert!(r.confidence > 0.99, "{}", r.confidence);
        assert_eq!(
            r.finding,
            // The span ends at 2026-12-02 00:00 UTC, 01:00 in Berlin.
            "From 2026-11-02 to 2026-12-02, incidents that started at night (22:00–07:00) were acknowledged after 50 min on average (3 incidents), by day after 6.0 min (3 incidents)."
        );
        // Mean of all six is 28 min; at the day's pace, 6 min.
        assert!(
            r.expected_impact.contains("from 28 min to about 6.0 min"),
            "{}",
            r.expected_impact
        );
        // The same waits by night and by day: nothing.
        let same: Vec<IncidentFact> = all
            .iter()
            .enumerate()
            .map(|(k, i)| IncidentFact {
                acknowledged_ms: Some(i.started_ms + (10 + k as i64 % 3) * MIN),
                ..i.clone()
            })
            .collect();
        let refs: Vec<&IncidentFact> = same.iter().collect();
        assert!(recommend(&evidence(&[], &[], &[], &[], &refs, &[], &zone)).is_empty());
        // Too few at night.
        let refs: Vec<&IncidentFact> = all.iter().skip(1).collect();
        assert!(recommend(&evidence(&[], &[], &[], &[], &refs, &[], &zone)).is_empty());
    }

    #[test]
    fn report_recommendation_for_a_resource_trending_to_its_limit() {
        let zone = Zone::utc();
        let disk = |id: &str, day: i64, resolved: Option<i64>| {
            let mut i = incident(
                id,
                "DiskWillFill",
                "nas",
                W,
                span().start_ms + day * DAY,
                None,
                resolved,
            );
            i.labels.insert("mountpoint".into(), "/data".into());
            i
        };
        let names = ["DiskWillFill".to_owned()];
        let open = [disk("a", 3, None)];
        let refs: Vec<&IncidentFact> = open.iter().collect();
        let found = recommend(&evidence(&[], &[], &[], &[], &refs, &names, &zone));
        assert_eq!(found.len(), 1);
        assert_eq!(
            (found[0].priority, found[0].confidence),
            (Priority::High, 0.9)
        );
        assert_eq!(
            found[0].finding,
            "DiskWillFill forecast nas (mountpoint=/data) reaching its limit once, still firing at the end of the period."
        );
        assert!(
            found[0]
                .recommendation
                .starts_with("Free space or grow the filesystem on nas (mountpoint=/data)")
        );
        // Once and resolved: not sure enough; three times: 0.8.
        let once = [disk("a", 3, Some(HOUR))];
        let refs: Vec<&IncidentFact> = once.iter().collect();
        assert!(recommend(&evidence(&[], &[], &[], &[], &refs, &names, &zone)).is_empty());
        let thrice = [
            disk("a", 3, Some(HOUR)),
            disk("b", 5, Some(HOUR)),
            disk("c", 7, Some(HOUR)),
        ];
        let refs: Vec<&IncidentFact> = thrice.iter().collect();
        let found = recommend(&evidence(&[], &[], &[], &[], &refs, &names, &zone));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].priority, Priority::Medium);
        assert!((found[0].confidence - 0.8).abs() < 1e-12);
        // Not a forecast rule: nothing.
        assert!(recommend(&evidence(&[], &[], &[], &[], &refs, &[], &zone)).is_empty());
    }

    #[test]
    fn report_recommendations_are_at_most_five_one_per_subject_most_important_first() {
        let zone = Zone::utc();
        let rows: Vec<ComplianceRow> = (0..7)
            .map(|k| {
                let status = if k < 5 {
                    Status::Warning
                } else {
                    Status::Breached
                };
                row(&format!("s{k}"), 0.92, status, 0.9 + 0.01 * k as f64)
            })
            .collect();
        let mut twice = rows.clone();
        twice.extend(rows.iter().cloned());
        let found = recommend(&evidence(&twice, &[], &[], &[], &[], &[], &zone));
        // The two breached ones first, then the most certain of the five warnings.
        let ranked: Vec<(Priority, i64)> = found
            .iter()
            .map(|r| (r.priority, (r.confidence * 100.0).round() as i64))
            .collect();
        assert_eq!(
            ranked,
            [
                (Priority::High, 96),
                (Priority::High, 95),
                (Priority::Medium, 94),
                (Priority::Medium, 93),
                (Priority::Medium, 92)
            ]
        );
    }
}

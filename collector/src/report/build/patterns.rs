//! Recurring incidents: one alert on one node that keeps starting at the same local hour, or
//! on the same weekday, on at least 3 different days.
//!
//! Two guards keep this from reporting noise. Occurrences are counted as distinct local days,
//! so a burst of flapping within one hour is one occurrence, not a pattern. And the hour or
//! weekday must stand out: it holds at least twice its even share of that alert's incidents
//! on that node (2/24 of them for an hour, 2/7 for a weekday); an alert that fires around the
//! clock is not "recurring at 03:00", however many times it also fired at 03:00.

use super::incidents::hour_and_weekday;
use super::text::{WEEKDAYS, local};
use crate::analytics::slo::{IncidentFact, IncidentSeverity, Window, Zone};
use crate::report::model::{PatternKind, PatternRow};
use jiff::civil::Date;
use std::collections::{BTreeMap, BTreeSet};

/// Fewest distinct days for a recurrence.
pub(super) const MIN_OCCURRENCES: usize = 3;
/// How many times its even share a bucket must hold.
const CONCENTRATION: usize = 2;

/// A pattern with what the recommendations weigh it by.
#[derive(Debug, Clone)]
pub(super) struct Pattern {
    pub row: PatternRow,
    /// Incidents of this alert on this node in the span.
    pub total: usize,
    /// Of those, the ones in this hour or on this weekday.
    pub matching: usize,
    /// The most severe of the matching ones.
    pub severity: IncidentSeverity,
}

/// Incidents of one alert on one node, by bucket.
#[derive(Default)]
struct Buckets {
    total: usize,
    /// (kind, hour or weekday) → (count, distinct local dates, most severe).
    by: BTreeMap<(PatternKind, usize), (usize, BTreeSet<Date>, IncidentSeverity)>,
}

/// The recurring incidents among those that started in `span`, most occurrences first.
pub(super) fn patterns(incidents: &[IncidentFact], span: Window, zone: &Zone) -> Vec<Pattern> {
    let mut groups: BTreeMap<(String, Option<String>), Buckets> = BTreeMap::new();
    for incident in incidents.iter().filter(|i| span.contains(i.started_ms)) {
        let (Some((hour, weekday)), Some(at)) = (
            hour_and_weekday(incident.started_ms, zone),
            local(incident.started_ms, zone),
        ) else {
            continue;
        };
        let key = (incident.alert.clone(), incident.labels.get("node").cloned());
        let group = groups.entry(key).or_default();
        group.total += 1;
        for bucket in [(PatternKind::Hour, hour), (PatternKind::Weekday, weekday)] {
            let entry = group
                .by
                .entry(bucket)
                .or_insert((0, BTreeSet::new(), incident.severity));
            entry.0 += 1;
            entry.1.insert(at.date());
            entry.2 = entry.2.max(incident.severity);
        }
    }
    let mut out = Vec::new();
    for ((alert, node), group) in groups {
        for ((kind, at), (count, dates, severity)) in group.by {
            let buckets = match kind {
                PatternKind::Hour => 24,
                PatternKind::Weekday => 7,
            };
            if dates.len() < MIN_OCCURRENCES || count * buckets < CONCENTRATION * group.total {
                continue;
            }
            let when = match kind {
                PatternKind::Hour => format!("between {at:02}:00 and {:02}:00", (at + 1) % 24),
                PatternKind::Weekday => format!("on {}s", WEEKDAYS[at]),
            };
            out.push(Pattern {
                row: PatternRow {
                    alert: alert.clone(),
                    node: node.clone(),
                    kind,
                    when,
                    occurrences: dates.len(),
                    span,
                },
                total: group.total,
                matching: count,
                severity,
            });
        }
    }
    out.sort_by(|a, b| {
        b.row
            .occurrences
            .cmp(&a.row.occurrences)
            .then_with(|| a.row.alert.cmp(&b.row.alert))
            .then_with(|| a.row.node.cmp(&b.row.node))
            .then_with(|| a.row.kind.cmp(&b.row.kind))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::build::incidents::tests::{HOUR, MIN, incident, ms};

    const DAY: i64 = 86_400_000;
    const W: IncidentSeverity = IncidentSeverity::Warning;

    fn span() -> Window {
        // 28 days from Monday 2026-11-02.
        Window::new(ms("2026-11-02T00:00:00Z"), ms("2026-11-30T00:00:00Z"))
    }

    fn at(day: i64, hour: i64, minute: i64) -> i64 {
        span().start_ms + day * DAY + hour * HOUR + minute * MIN
    }

    fn summary(found: &[Pattern]) -> Vec<(String, PatternKind, String, usize)> {
        found
            .iter()
            .map(|p| {
                (
                    p.row.alert.clone(),
                    p.row.kind,
                    p.row.when.clone(),
                    p.row.occurrences,
                )
            })
            .collect()
    }

    #[test]
    fn report_patterns_need_three_distinct_days() {
        let two: Vec<IncidentFact> = (0..2)
            .map(|d| {
                incident(
                    &format!("{d}"),
                    "HighCpu",
                    "nas",
                    W,
                    at(d, 3, 5),
                    None,
                    Some(MIN),
                )
            })
            .collect();
        assert!(patterns(&two, span(), &Zone::utc()).is_empty());
        // Five flaps within one hour of one day: one day, no pattern.
        let burst: Vec<IncidentFact> = (0..5)
            .map(|k| {
                incident(
                    &format!("{k}"),
                    "HighCpu",
                    "nas",
                    W,
                    at(0, 3, k * 10),
                    None,
                    Some(MIN),
                )
            })
            .collect();
        assert!(patterns(&burst, span(), &Zone::utc()).is_empty());
        // Three days at 03:xx: a pattern (and not a weekday one: Mon, Tue, Wed).
        let three: Vec<IncidentFact> = (0..3)
            .map(|d| {
                incident(
                    &format!("{d}"),
                    "HighCpu",
                    "nas",
                    W,
                    at(d, 3, 5 + d),
                    None,
                    Some(MIN),
                )
            })
            .collect();
        let found = patterns(&three, span(), &Zone::utc());
        assert_eq!(
            summary(&found),
            [(
                "HighCpu".to_owned(),
                PatternKind::Hour,
                "between 03:00 and 04:00".to_owned(),
                3
            )]
        );
        assert_eq!((found[0].total, found[0].matching), (3, 3));
        assert_eq!(found[0].row.node.as_deref(), Some("nas"));
    }

    #[test]
    fn report_patterns_by_weekday_and_in_the_zone() {
        // Every Monday at 23:30 UTC (Tuesday 00:30 in Berlin), four weeks.
        let mondays: Vec<IncidentFact> = (0..4)
            .map(|w| {
                incident(
                    &format!("{w}"),
                    "Backup",
                    "nas",
                    W,
                    at(7 * w, 23, 30),
                    None,
                    Some(MIN),
                )
            })
            .collect();
        let utc = summary(&patterns(&mondays, span(), &Zone::utc()));
        assert_eq!(
            utc,
            [
                (
                    "Backup".to_owned(),
                    PatternKind::Hour,
                    "between 23:00 and 00:00".to_owned(),
                    4
                ),
                (
                    "Backup".to_owned(),
                    PatternKind::Weekday,
                    "on Mondays".to_owned(),
                    4
                ),
            ]
        );
        let berlin = summary(&patterns(
            &mondays,
            span(),
            &Zone::parse("Europe/Berlin").unwrap(),
        ));
        assert_eq!(
            berlin,
            [
                (
                    "Backup".to_owned(),
                    PatternKind::Hour,
                    "between 00:00 and 01:00".to_owned(),
                    4
                ),
                (
                    "Backup".to_owned(),
                    PatternKind::Weekday,
                    "on Tuesdays".to_owned(),
                    4
                ),
            ]
        );
        // Outside the span: not seen.
        let later = Window::new(span().end_ms, span().end_ms + 7 * DAY);
        assert!(patterns(&mondays, later, &Zone::utc()).is_empty());
    }

    #[test]
    fn report_patterns_ignore_alerts_that_fire_around_the_clock() {
        // Every hour for 14 days: 03:00 holds 14 of 336, its even share; nothing stands out.
        let constant: Vec<IncidentFact> = (0..14 * 24)
            .map(|k| {
                incident(
                    &format!("{k}"),
                    "Flappy",
                    "pi",
                    W,
                    at(0, k, 0),
                    None,
                    Some(MIN),
                )
            })
            .collect();
        assert!(patterns(&constant, span(), &Zone::utc()).is_empty());
        // Separate nodes are separate patterns; the severest incident is kept.
        let mut mixed: Vec<IncidentFact> = (0..3)
            .map(|d| {
                incident(
                    &format!("a{d}"),
                    "HighCpu",
                    "nas",
                    W,
                    at(d, 3, 0),
                    None,
                    None,
                )
            })
            .collect();
        mixed.extend((0..3).map(|d| {
            let severity = if d == 1 {
                IncidentSeverity::Critical
            } else {
                W
            };
            incident(
                &format!("b{d}"),
                "HighCpu",
                "pi",
                severity,
                at(d, 3, 0),
                None,
                None,
            )
        }));
        let found = patterns(&mixed, span(), &Zone::utc());
        let nodes: Vec<Option<&str>> = found.iter().map(|p| p.row.node.as_deref()).collect();
        assert_eq!(nodes, [Some("nas"), Some("pi")]);
        assert_eq!(found[1].severity, IncidentSeverity::Critical);
    }
}

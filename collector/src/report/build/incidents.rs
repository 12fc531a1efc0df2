//! The incidents that started in the report's window: counts by node, local hour and weekday,
//! the longest, the newest 50, and the response and resolution times per severity against the
//! targets of the incident SLOs.

use super::text::local;
use crate::analytics::slo::response::{Measure, judge_incident};
use crate::analytics::slo::{IncidentFact, IncidentSeverity, Outcome, Window, Zone, distribution};
use crate::report::model::{IncidentRow, IncidentStats, ResponseRow};
use crate::slo::{Sli, SloDefinition};
use std::collections::BTreeMap;

/// How many incidents the report lists.
const LISTED: usize = 50;

/// The incidents that started inside `window`.
pub(super) fn started_in(incidents: &[IncidentFact], window: Window) -> Vec<&IncidentFact> {
    incidents
        .iter()
        .filter(|i| window.contains(i.started_ms))
        .collect()
}

/// The wait an incident's measure ended with, in ms; None while it has not ended. An incident
/// resolved without acknowledgement gives no acknowledgement time.
pub(super) fn wait_ms(incident: &IncidentFact, measure: Measure) -> Option<f64> {
    let end = match measure {
        Measure::Acknowledge => incident.acknowledged_ms,
        Measure::Resolve => incident.resolved_ms,
    }?;
    Some((end - incident.started_ms).max(0) as f64)
}

/// The mean wait of `measure` over the incidents whose wait ended.
pub(super) fn mean_wait(incidents: &[&IncidentFact], measure: Measure) -> Option<f64> {
    let waits: Vec<f64> = incidents
        .iter()
        .filter_map(|i| wait_ms(i, measure))
        .collect();
    (!waits.is_empty()).then(|| waits.iter().sum::<f64>() / waits.len() as f64)
}

/// The local hour (0..24) and weekday (0 = Monday) an instant falls on in `zone`.
pub(super) fn hour_and_weekday(ms: i64, zone: &Zone) -> Option<(usize, usize)> {
    let t = local(ms, zone)?;
    let hour = usize::try_from(t.hour()).ok()?;
    let weekday = usize::try_from(t.weekday().to_monday_zero_offset()).ok()?;
    Some((hour, weekday))
}

fn row(incident: &IncidentFact, window_end_ms: i64) -> IncidentRow {
    let end = incident.resolved_ms.unwrap_or(window_end_ms);
    IncidentRow {
        id: incident.id.clone(),
        alert: incident.alert.clone(),
        node: incident.labels.get("node").cloned(),
        severity: incident.severity,
        started_ms: incident.started_ms,
        acknowledged_ms: incident.acknowledged_ms,
        resolved_ms: incident.resolved_ms,
        duration_ms: (end - incident.started_ms).max(0),
    }
}

/// Counts, the longest and the newest incidents of those that started in the window.
pub(super) fn stats(started: &[&IncidentFact], window: Window, zone: &Zone) -> IncidentStats {
    let mut rows: Vec<IncidentRow> = started.iter().map(|i| row(i, window.end_ms)).collect();
    let mut by_node: BTreeMap<String, usize> = BTreeMap::new();
    let (mut by_hour, mut by_weekday) = (vec![0; 24], vec![0; 7]);
    for r in &rows {
        *by_node
            .entry(r.node.clone().unwrap_or_default())
            .or_default() += 1;
        if let Some((hour, weekday)) = hour_and_weekday(r.started_ms, zone) {
            by_hour[hour] += 1;
            by_weekday[weekday] += 1;
        }
    }
    let mut by_node: Vec<(String, usize)> = by_node.into_iter().collect();
    by_node.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    // The earliest of equally long ones: it had the longest time to be dealt with.
    let longest = rows
        .iter()
        .max_by(|a, b| {
            a.duration_ms
                .cmp(&b.duration_ms)
                .then_with(|| b.started_ms.cmp(&a.started_ms))
        })
        .cloned();
    rows.sort_by(|a, b| {
        b.started_ms
            .cmp(&a.started_ms)
            .then_with(|| a.id.cmp(&b.id))
    });
    let count = rows.len();
    rows.truncate(LISTED);
    IncidentStats {
        count,
        longest,
        by_node,
        by_hour,
        by_weekday,
        list: rows,
    }
}

/// The targets per severity of the SLO measuring `measure`: the one covering every incident
/// (empty selector) when there is one, else the first.
pub(super) fn targets(
    definitions: &[&SloDefinition],
    measure: Measure,
) -> BTreeMap<IncidentSeverity, i64> {
    let of = |d: &SloDefinition| match (&d.sli, measure) {
        (Sli::Response { targets }, Measure::Acknowledge)
        | (Sli::Resolution { targets }, Measure::Resolve) => Some(targets.clone()),
        _ => None,
    };
    let matching = || definitions.iter().filter(|d| of(d).is_some());
    matching()
        .find(|d| d.selector.trim().is_empty())
        .or_else(|| matching().next())
        .and_then(|d| of(d))
        .unwrap_or_default()
}

/// Time to acknowledge and to resolve per severity, critical first; a severity appears when it
/// had incidents or a target. The distribution is of the waits that ended; `met_share` judges
/// every incident as the SLO does (`judge_incident` at `now_ms`: one still open past its target
/// is late, one resolved unacknowledged was dealt with at its resolution), so the two agree.
pub(super) fn response(
    started: &[&IncidentFact],
    definitions: &[&SloDefinition],
    now_ms: i64,
) -> Vec<ResponseRow> {
    let mut rows = Vec::new();
    for measure in [Measure::Acknowledge, Measure::Resolve] {
        let targets = targets(definitions, measure);
        for severity in IncidentSeverity::ALL {
            let has_incidents = started.iter().any(|i| i.severity == severity);
            let target_ms = targets.get(&severity).copied();
            if !has_incidents && target_ms.is_none() {
                continue;
            }
            let mut values_ms: Vec<f64> = started
                .iter()
                .filter(|i| i.severity == severity)
                .filter_map(|i| wait_ms(i, measure))
                .collect();
            values_ms.sort_by(f64::total_cmp);
            let met_share = target_ms.and_then(|t| {
                let judged: Vec<Outcome> = started
                    .iter()
                    .filter(|i| i.severity == severity)
                    .filter_map(|i| Some(judge_incident(i, measure, t, now_ms)?.outcome))
                    .collect();
                let met = judged.iter().filter(|o| **o == Outcome::Good).count();
                (!judged.is_empty()).then(|| met as f64 / judged.len() as f64)
            });
            rows.push(ResponseRow {
                measure,
                severity,
                distribution: distribution(&values_ms),
                target_ms,
                met_share,
                values_ms,
            });
        }
    }
    rows
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::slo::{Origin, SloName};

    pub(crate) const MIN: i64 = 60_000;
    pub(crate) const HOUR: i64 = 3_600_000;

    pub(crate) fn ms(rfc3339: &str) -> i64 {
        rfc3339.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    pub(crate) fn incident(
        id: &str,
        alert: &str,
        node: &str,
        severity: IncidentSeverity,
        started_ms: i64,
        ack_after: Option<i64>,
        resolve_after: Option<i64>,
    ) -> IncidentFact {
        IncidentFact {
            id: id.into(),
            alert: alert.into(),
            labels: [("node".to_owned(), node.to_owned())].into(),
            severity,
            started_ms,
            acknowledged_ms: ack_after.map(|a| started_ms + a),
            resolved_ms: resolve_after.map(|r| started_ms + r),
        }
    }

    pub(crate) fn response_slo(name: &str, sli: Sli) -> SloDefinition {
        SloDefinition::new(name.parse::<SloName>().unwrap(), "", sli, Origin::Default)
    }

    #[test]
    fn report_incident_hours_and_weekdays_follow_the_zone_across_dst() {
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        // Saturday 2026-03-28 23:30 UTC = Sunday 00:30 CET; Sunday 2026-03-29 01:30 UTC = 03:30
        // CEST (the clocks jumped at 01:00 UTC); Sunday 2026-10-25 00:30 UTC = 02:30 CEST and
        // 01:30 UTC = 02:30 CET (the hour repeats).
        assert_eq!(
            hour_and_weekday(ms("2026-03-28T23:30:00Z"), &berlin),
            Some((0, 6))
        );
        assert_eq!(
            hour_and_weekday(ms("2026-03-29T01:30:00Z"), &berlin),
            Some((3, 6))
        );
        assert_eq!(
            hour_and_weekday(ms("2026-10-25T00:30:00Z"), &berlin),
            Some((2, 6))
        );
        assert_eq!(
            hour_and_weekday(ms("2026-10-25T01:30:00Z"), &berlin),
            Some((2, 6))
        );
        assert_eq!(
            hour_and_weekday(ms("2026-03-28T23:30:00Z"), &Zone::utc()),
            Some((23, 5))
        );

        let window = Window::new(ms("2026-10-19T00:00:00Z"), ms("2026-10-26T00:00:00Z"));
        let all = [
            incident(
                "a",
                "HighCpu",
                "nas",
                IncidentSeverity::Error,
                ms("2026-10-25T00:30:00Z"),
                None,
                Some(HOUR),
            ),
            incident(
                "b",
                "HighCpu",
                "nas",
                IncidentSeverity::Error,
                ms("2026-10-25T01:30:00Z"),
                None,
                None,
            ),
            incident(
                "c",
                "DiskFull",
                "pi",
                IncidentSeverity::Critical,
                ms("2026-10-20T10:00:00Z"),
                None,
                Some(10 * MIN),
            ),
            // Before the window: not counted.
            incident(
                "d",
                "DiskFull",
                "pi",
                IncidentSeverity::Critical,
                ms("2026-10-18T10:00:00Z"),
                None,
                Some(MIN),
            ),
        ];
        let started = started_in(&all, window);
        let s = stats(&started, window, &berlin);
        assert_eq!(s.count, 3);
        assert_eq!(s.by_node, vec![("nas".to_owned(), 2), ("pi".to_owned(), 1)]);
        let mut hours = vec![0; 24];
        hours[2] = 2;
        hours[12] = 1; // 10:00 UTC is 12:00 CEST on 2026-10-20
        assert_eq!(s.by_hour, hours);
        assert_eq!(s.by_weekday, vec![0, 1, 0, 0, 0, 0, 2]);
        // "b" is open: it lasts until the window's end, 22.5 h.
        let longest = s.longest.unwrap();
        assert_eq!(
            (longest.id.as_str(), longest.duration_ms),
            ("b", 22 * HOUR + 30 * MIN)
        );
        let listed: Vec<&str> = s.list.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(listed, ["b", "a", "c"]);
        assert_eq!(s.list[2].node.as_deref(), Some("pi"));
    }

    #[test]
    fn report_incident_list_keeps_the_newest_fifty() {
        let window = Window::new(0, 1_000 * MIN);
        let all: Vec<IncidentFact> = (0..60)
            .map(|k| {
                incident(
                    &format!("i{k:02}"),
                    "A",
                    "n",
                    IncidentSeverity::Warning,
                    k * MIN,
                    None,
                    Some(MIN),
                )
            })
            .collect();
        let s = stats(&started_in(&all, window), window, &Zone::utc());
        assert_eq!((s.count, s.list.len()), (60, 50));
        assert_eq!(
            (s.list[0].id.as_str(), s.list[49].id.as_str()),
            ("i59", "i10")
        );
    }

    #[test]
    fn report_response_distributions_per_severity_against_targets() {
        let targets = |critical: i64, error: i64| {
            [
                (IncidentSeverity::Critical, critical),
                (IncidentSeverity::Error, error),
            ]
            .into()
        };
        let response_slo_def = response_slo(
            "incidents:response",
            Sli::Response {
                targets: targets(15 * MIN, HOUR),
            },
        );
        let resolution_slo_def = response_slo(
            "incidents:resolution",
            Sli::Resolution {
                targets: targets(4 * HOUR, 24 * HOUR),
            },
        );
        let c = IncidentSeverity::Critical;
        let all = [
            // Critical acks after 5, 10, 20 and 40 min; one never acknowledged but resolved.
            incident("1", "A", "n", c, 0, Some(5 * MIN), Some(HOUR)),
            incident("2", "A", "n", c, 0, Some(10 * MIN), Some(2 * HOUR)),
            incident("3", "A", "n", c, 0, Some(20 * MIN), Some(5 * HOUR)),
            incident("4", "A", "n", c, 0, Some(40 * MIN), None),
            incident("5", "A", "n", c, 0, None, Some(3 * HOUR)),
        ];
        let started: Vec<&IncidentFact> = all.iter().collect();
        let rows = response(
            &started,
            &[&response_slo_def, &resolution_slo_def],
            10 * HOUR,
        );
        // Acknowledge: critical (incidents + target), error (target only); same for resolve.
        let keys: Vec<(Measure, IncidentSeverity)> =
            rows.iter().map(|r| (r.measure, r.severity)).collect();
        assert_eq!(
            keys,
            [
                (Measure::Acknowledge, c),
                (Measure::Acknowledge, IncidentSeverity::Error),
                (Measure::Resolve, c),
                (Measure::Resolve, IncidentSeverity::Error),
            ]
        );
        let ack = &rows[0];
        assert_eq!(
            ack.values_ms,
            [
                5.0 * MIN as f64,
                10.0 * MIN as f64,
                20.0 * MIN as f64,
                40.0 * MIN as f64
            ]
        );
        // Mean 18.75 min; median between ranks 1 and 2: 15 min; p90 at rank 2.7: 20 + 0.7·20 = 34 min.
        assert_eq!(ack.distribution.count, 4);
        assert_eq!(ack.distribution.mean, Some(18.75 * MIN as f64));
        assert_eq!(ack.distribution.median, Some(15.0 * MIN as f64));
        assert!((ack.distribution.p90.unwrap() - 34.0 * MIN as f64).abs() < 1e-6);
        // Judged as the SLO judges: 5 and 10 min in time; 20 and 40 min late; "5" resolved
        // unacknowledged after 3 h, late too: 2 of 5.
        assert_eq!((ack.target_ms, ack.met_share), (Some(15 * MIN), Some(0.4)));
        assert_eq!(rows[1].distribution.count, 0);
        assert_eq!(rows[1].met_share, None);
        // Resolve: 1, 2, 3, 5 h against 4 h, and "4" still open after 10 h: 3 of 5.
        assert_eq!(rows[2].distribution.count, 4);
        assert_eq!(rows[2].met_share, Some(0.6));
        assert_eq!(rows[2].distribution.mean, Some(2.75 * HOUR as f64));
        assert_eq!(
            mean_wait(&started, Measure::Acknowledge),
            Some(18.75 * MIN as f64)
        );
    }

    #[test]
    fn report_response_without_slos_or_incidents_is_empty() {
        assert!(response(&[], &[], 0).is_empty());
        let all = [incident(
            "1",
            "A",
            "n",
            IncidentSeverity::Warning,
            0,
            Some(MIN),
            None,
        )];
        let started: Vec<&IncidentFact> = all.iter().collect();
        let rows = response(&started, &[], 10 * MIN);
        assert_eq!(rows.len(), 2);
        assert_eq!((rows[0].target_ms, rows[0].met_share), (None, None));
        assert_eq!(rows[1].distribution.count, 0, "never resolved");
    }
}

//! Compliance per SLO with its daily chart and budget burn-down, and the summary with the one
//! sentence that says what matters.

use super::incidents::mean_wait;
use super::text::{count, duration, percent, target};
use crate::analytics::slo::response::Measure;
use crate::analytics::slo::{IncidentFact, Status, Tally, Window};
use crate::report::model::{ComplianceRow, DayPoint, Summary};
use crate::slo::{SloDefinition, SloResult};

/// How many SLOs the headline names before "and N more".
const NAMED: usize = 3;

/// The row of one SLO.
pub(super) fn row(definition: &SloDefinition, result: &SloResult) -> ComplianceRow {
    ComplianceRow {
        name: result.name.to_string(),
        description: definition.description.clone(),
        covers: definition.selector.clone(),
        sli: definition.sli.describe(),
        period: definition.period.to_string(),
        target: definition.target,
        warning: definition.warning,
        compliance: result.compliance,
        coverage: result.coverage,
        status: result.status,
        budget_remaining: result.compliance.map(|_| result.budget.remaining),
        burn_rate: result.burn_rate,
        time_to_exhaustion_ms: result.time_to_exhaustion_ms,
        breaches: result.breaches.clone(),
        policy: result.policy.describe(),
        daily: burn_down(&result.daily, definition.target),
    }
}

/// The row of an SLO that could not be evaluated: no figures, and why.
pub(super) fn failed_row(definition: &SloDefinition, error: &str) -> ComplianceRow {
    ComplianceRow {
        name: definition.name.to_string(),
        description: definition.description.clone(),
        covers: definition.selector.clone(),
        sli: definition.sli.describe(),
        period: definition.period.to_string(),
        target: definition.target,
        warning: definition.warning,
        compliance: None,
        coverage: None,
        status: Status::NoData,
        budget_remaining: None,
        burn_rate: None,
        time_to_exhaustion_ms: None,
        breaches: Vec::new(),
        policy: format!("Not evaluated: {error}"),
        daily: Vec::new(),
    }
}

/// Each day's compliance and the window's budget left after it: the allowance is the whole
/// window's ((1 − target) × its valid events), spent day by day, so the last point is the
/// window's budget left. No allowance (no valid events at all) has no burn-down.
pub(super) fn burn_down(days: &[(Window, Tally)], target: f64) -> Vec<DayPoint> {
    let valid: f64 = days.iter().map(|(_, t)| t.valid()).sum();
    let allowed = (1.0 - target) * valid;
    let mut spent = 0.0;
    days.iter()
        .map(|(day, tally)| {
            spent += tally.bad;
            DayPoint {
                start_ms: day.start_ms,
                compliance: tally.compliance(),
                budget_remaining: (allowed > 0.0).then(|| 1.0 - spent / allowed),
            }
        })
        .collect()
}

/// Figures over all rows and the incidents that started in the window.
pub(super) fn summary(rows: &[ComplianceRow], started: &[&IncidentFact]) -> Summary {
    let with = |status: Status| rows.iter().filter(|r| r.status == status).count();
    let coverages: Vec<f64> = rows.iter().filter_map(|r| r.coverage).collect();
    let mut summary = Summary {
        slos: rows.len(),
        met: with(Status::Met),
        warning: with(Status::Warning),
        breached: with(Status::Breached),
        no_data: with(Status::NoData),
        incidents: started.len(),
        mtta_ms: mean_wait(started, Measure::Acknowledge),
        mttr_ms: mean_wait(started, Measure::Resolve),
        coverage: (!coverages.is_empty())
            .then(|| coverages.iter().sum::<f64>() / coverages.len() as f64),
        headline: String::new(),
    };
    summary.headline = headline(&summary, rows);
    summary
}

/// The one sentence: the breached SLOs if any, else those below target, else that all met,
/// with the incidents.
fn headline(s: &Summary, rows: &[ComplianceRow]) -> String {
    let incidents = match (s.incidents, s.mtta_ms) {
        (0, _) => "no incidents".to_owned(),
        (n, Some(mtta)) => format!(
            "{}, acknowledged after {} on average",
            count(n, "incident", "incidents"),
            duration(mtta)
        ),
        (n, None) => format!("{}, none acknowledged", count(n, "incident", "incidents")),
    };
    if s.slos == 0 {
        return format!("No SLOs are defined; {incidents}.");
    }
    let (status, verb) = match (s.breached, s.warning) {
        (0, 0) => {
            let verdict = match (s.slos, s.met) {
                (1, 1) => "The SLO met its target".to_owned(),
                (1, _) => "The SLO had no data in this period".to_owned(),
                (n, 0) => format!("None of the {n} SLOs had data in this period"),
                (n, met) if met == n => format!("All {n} SLOs met their targets"),
                (n, met) => format!(
                    "{met} of {n} SLOs met their targets, {} had no data",
                    n - met
                ),
            };
            return format!("{verdict}; {incidents}.");
        }
        (0, _) => (Status::Warning, "below target"),
        (_, _) => (Status::Breached, "breached"),
    };
    let single = match status {
        Status::Breached => "was breached",
        _ => "was below target",
    };
    let mut worst: Vec<&ComplianceRow> = rows.iter().filter(|r| r.status == status).collect();
    worst.sort_by(|a, b| {
        let gap = |r: &ComplianceRow| r.compliance.unwrap_or(0.0) - r.target;
        gap(a).total_cmp(&gap(b)).then_with(|| a.name.cmp(&b.name))
    });
    let mut named: Vec<String> = worst
        .iter()
        .take(NAMED)
        .map(|r| {
            format!(
                "{} at {} (target {})",
                r.name,
                percent(r.compliance.unwrap_or(0.0)),
                target(r.target)
            )
        })
        .collect();
    if worst.len() > NAMED {
        named.push(format!("{} more", worst.len() - NAMED));
    }
    let list = match named.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
        None => String::new(),
    };
    match s.slos {
        1 => format!("The SLO {single}: {list}."),
        n => format!("{} of {n} SLOs {verb}: {list}.", worst.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analytics::slo::IncidentSeverity;
    use crate::report::build::incidents::tests::{MIN, incident};

    const DAY: i64 = 86_400_000;

    fn tally(good: f64, bad: f64) -> Tally {
        Tally {
            good,
            bad,
            unknown: 0.0,
            excluded: 0.0,
        }
    }

    fn compliance_row(name: &str, compliance: Option<f64>, status: Status) -> ComplianceRow {
        ComplianceRow {
            name: name.into(),
            description: String::new(),
            covers: String::new(),
            sli: "probe availability".into(),
            period: "30d".into(),
            target: 0.95,
            warning: 0.9,
            compliance,
            coverage: compliance.map(|_| 1.0),
            status,
            budget_remaining: None,
            burn_rate: None,
            time_to_exhaustion_ms: None,
            breaches: Vec::new(),
            policy: String::new(),
            daily: Vec::new(),
        }
    }

    #[test]
    fn report_burn_down_spends_the_window_budget_day_by_day() {
        // 3 days of 100 events, 2, 0 and 6 bad; target 0.95: 300 valid, 15 allowed.
        let days = [
            (Window::new(0, DAY), tally(98.0, 2.0)),
            (Window::new(DAY, 2 * DAY), tally(100.0, 0.0)),
            (Window::new(2 * DAY, 3 * DAY), tally(94.0, 6.0)),
        ];
        let points = burn_down(&days, 0.95);
        let left: Vec<f64> = points.iter().map(|p| p.budget_remaining.unwrap()).collect();
        let expected = [1.0 - 2.0 / 15.0, 1.0 - 2.0 / 15.0, 1.0 - 8.0 / 15.0];
        for (l, e) in left.iter().zip(expected) {
            assert!((l - e).abs() < 1e-12, "{left:?}");
        }
        assert_eq!(points[2].compliance, Some(0.94));
        assert_eq!(points[1].start_ms, DAY);
        // The last point is the window's budget left, as the SLO engine computes it.
        let mut all = Tally::default();
        days.iter().for_each(|(_, t)| all.merge(t));
        let engine = crate::analytics::slo::budget(&all, 0.95).remaining;
        assert!((left[2] - engine).abs() < 1e-12);
        // No valid events: no burn-down.
        let empty = burn_down(
            &[(
                Window::new(0, DAY),
                Tally {
                    unknown: 5.0,
                    ..Tally::default()
                },
            )],
            0.95,
        );
        assert_eq!(
            (empty[0].compliance, empty[0].budget_remaining),
            (None, None)
        );
    }

    #[test]
    fn report_summary_counts_and_headlines() {
        let rows = [
            compliance_row("probe:web:availability", Some(0.93127), Status::Warning),
            compliance_row("node:nas:availability", Some(0.89), Status::Breached),
            compliance_row("node:pi:availability", Some(0.99), Status::Met),
            compliance_row("probe:db:latency", None, Status::NoData),
        ];
        let all = [
            incident(
                "1",
                "A",
                "n",
                IncidentSeverity::Error,
                0,
                Some(10 * MIN),
                Some(30 * MIN),
            ),
            incident(
                "2",
                "A",
                "n",
                IncidentSeverity::Error,
                0,
                Some(20 * MIN),
                None,
            ),
        ];
        let started: Vec<&IncidentFact> = all.iter().collect();
        let s = summary(&rows, &started);
        assert_eq!(
            (s.slos, s.met, s.warning, s.breached, s.no_data, s.incidents),
            (4, 1, 1, 1, 1, 2)
        );
        assert_eq!(s.mtta_ms, Some(15.0 * MIN as f64));
        assert_eq!(s.mttr_ms, Some(30.0 * MIN as f64));
        assert_eq!(s.coverage, Some(1.0));
        assert_eq!(
            s.headline,
            "1 of 4 SLOs breached: node:nas:availability at 89.00 % (target 95 %)."
        );

        let warned = summary(&rows[..1], &[]);
        assert_eq!(
            warned.headline,
            "The SLO was below target: probe:web:availability at 93.13 % (target 95 %)."
        );

        let many: Vec<ComplianceRow> = (0..5)
            .map(|k| {
                compliance_row(
                    &format!("s{k}"),
                    Some(0.5 + 0.01 * k as f64),
                    Status::Breached,
                )
            })
            .collect();
        assert_eq!(
            summary(&many, &[]).headline,
            "5 of 5 SLOs breached: s0 at 50.00 % (target 95 %), s1 at 51.00 % (target 95 %), s2 at 52.00 % (target 95 %) and 2 more."
        );
        let two = &many[..2];
        assert_eq!(
            summary(two, &[]).headline,
            "2 of 2 SLOs breached: s0 at 50.00 % (target 95 %) and s1 at 51.00 % (target 95 %)."
        );
        assert_eq!(
            summary(&rows[2..], &started).headline,
            "1 of 2 SLOs met their targets, 1 had no data; 2 incidents, acknowledged after 15 min on average."
        );
        assert_eq!(
            summary(&rows[2..3], &[]).headline,
            "The SLO met its target; no incidents."
        );
        assert_eq!(
            summary(&rows[3..], &[]).headline,
            "The SLO had no data in this period; no incidents."
        );
        let met = [rows[2].clone(), rows[2].clone()];
        assert_eq!(
            summary(&met, &[]).headline,
            "All 2 SLOs met their targets; no incidents."
        );
        assert_eq!(
            summary(&[], &started[..1]).headline,
            "No SLOs are defined; 1 incident, acknowledged after 10 min on average."
        );
    }
}

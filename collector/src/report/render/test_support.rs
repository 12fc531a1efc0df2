//! A realistic monthly report for the renderers' tests: November 2026 in Europe/Berlin, 12 SLOs
//! (one breached, one warning, one without data), 40 incidents, trends, patterns, forecasts and
//! recommendations, with names long enough to test wrapping.

use crate::analytics::slo::response::Measure;
use crate::analytics::slo::{IncidentSeverity, Status, Window, distribution};
use crate::report::model::{
    Band, ComplianceRow, CoverageRow, DayPoint, Direction, ForecastRow, IncidentRow, IncidentStats,
    PatternKind, PatternRow, Priority, Recommendation, Report, ReportKind, ResponseRow, Sections,
    Summary, TrendRow, TrendUnit,
};

pub(super) const DAY: i64 = 86_400_000;
/// 2026-11-01T00:00:00+01:00.
pub(super) const START: i64 = 1_793_487_600_000;
pub(super) const END: i64 = START + 30 * DAY;
const MIN: f64 = 60_000.0;

const POLICY: &str = "Probe runs count as good or bad; runs inside maintenance windows are left out of the denominator; time without data is unknown (not up) and reported as coverage; 1 retry per run is allowed.";

fn compliance_row(i: usize) -> ComplianceRow {
    let names = [
        "probe:web-frontend:availability",
        "probe:web-frontend:latency",
        "probe:api-gateway.internal.example.com:availability",
        "probe:api-gateway.internal.example.com:latency",
        "probe:redis-cache:availability",
        "probe:redis-cache:latency",
        "node:nas:availability",
        "node:db-primary:availability",
        "node:db-replica:availability",
        "node:build-agent-03:availability",
        "incidents:response",
        "incidents:resolution",
    ];
    // Day-by-day compliance: most SLOs near 99.9 %, web-frontend availability dips mid-month
    // (breached), redis latency hovers at the warning level, build-agent-03 has no data.
    let daily: Vec<DayPoint> = (0..30)
        .map(|d| {
            let base = match i {
                0 => {
                    if (12..16).contains(&d) {
                        0.80 + 0.02 * d as f64 / 10.0
                    } else {
                        0.995
                    }
                }
                5 => 0.93 + 0.01 * ((d % 5) as f64 / 4.0),
                9 => f64::NAN,
                _ => 0.999 - 0.0003 * ((d * (i + 1)) % 7) as f64,
            };
            let compliance = base.is_finite().then_some(base);
            DayPoint {
                start_ms: START + d as i64 * DAY,
                compliance,
                budget_remaining: compliance.map(|_| match i {
                    0 => 1.0 - 0.08 * d as f64,
                    5 => 0.6 - 0.04 * d as f64,
                    _ => 1.0 - 0.01 * d as f64,
                }),
            }
        })
        .collect();
    let (compliance, status, budget, burn) = match i {
        0 => (Some(0.9632), Status::Breached, Some(-1.32), Some(2.32)),
        5 => (Some(0.9351), Status::Warning, Some(-0.6), Some(1.6)),
        9 => (None, Status::NoData, None, None),
        _ => (Some(0.9987), Status::Met, Some(0.74), Some(0.26)),
    };
    ComplianceRow {
        name: names[i].to_owned(),
        description: format!("Default objective for {}", names[i]),
        covers: if i < 6 {
            format!("{{name=\"{}\"}}", names[i].split(':').nth(1).unwrap_or(""))
        } else {
            String::new()
        },
        sli: if i % 2 == 1 && i < 6 {
            "latency: probe runs faster than 100 ms (p95 per 1-minute slice)".to_owned()
        } else {
            "availability of probe runs".to_owned()
        },
        period: "30d".to_owned(),
        target: if i == 2 { 0.999 } else { 0.95 },
        warning: 0.9,
        compliance,
        coverage: if i == 9 { None } else { Some(0.9974) },
        status,
        budget_remaining: budget,
        burn_rate: burn,
        time_to_exhaustion_ms: (i == 3).then_some(9 * DAY),
        breaches: if i == 0 {
            vec![
                Window::new(
                    START + 12 * DAY + 3_600_000,
                    START + 12 * DAY + 5 * 3_600_000,
                ),
                Window::new(START + 14 * DAY, START + 14 * DAY + 2 * 3_600_000),
            ]
        } else {
            vec![]
        },
        policy: POLICY.to_owned(),
        daily,
    }
}

fn incident(i: usize) -> IncidentRow {
    let severity = match i % 5 {
        0 => IncidentSeverity::Critical,
        1 | 2 => IncidentSeverity::Error,
        _ => IncidentSeverity::Warning,
    };
    let started_ms = START + (i as i64 * 17 + 3) * 3_600_000 + (i as i64 % 7) * 60_000;
    let ack = (5.0 + (i * 37 % 90) as f64) * MIN;
    let resolve = ack + (20.0 + (i * 53 % 600) as f64) * MIN;
    IncidentRow {
        id: format!("inc-{:04}", 1000 + i),
        alert: ["HighCpu", "DiskAlmostFull", "ProbeFailed", "SloBurnRate"][i % 4].to_owned(),
        node: (i % 6 != 5)
            .then(|| ["nas", "db-primary", "web-1", "build-agent-03"][i % 4].to_owned()),
        severity,
        started_ms,
        acknowledged_ms: (i != 7).then_some(started_ms + ack as i64),
        resolved_ms: (i != 39).then_some(started_ms + resolve as i64),
        duration_ms: if i == 39 {
            END - started_ms
        } else {
            resolve as i64
        },
    }
}

fn response(incidents: &[IncidentRow]) -> Vec<ResponseRow> {
    let mut rows = Vec::new();
    for measure in [Measure::Acknowledge, Measure::Resolve] {
        for severity in IncidentSeverity::ALL {
            let mut values: Vec<f64> = incidents
                .iter()
                .filter(|inc| inc.severity == severity)
                .filter_map(|inc| {
                    let end = match measure {
                        Measure::Acknowledge => inc.acknowledged_ms,
                        Measure::Resolve => inc.resolved_ms,
                    };
                    end.map(|e| (e - inc.started_ms) as f64)
                })
                .collect();
            values.sort_by(f64::total_cmp);
            let target_ms: i64 = match (measure, severity) {
                (Measure::Acknowledge, IncidentSeverity::Critical) => 15 * 60_000,
                (Measure::Acknowledge, IncidentSeverity::Error) => 3_600_000,
                (Measure::Acknowledge, IncidentSeverity::Warning) => 4 * 3_600_000,
                (Measure::Resolve, IncidentSeverity::Critical) => 4 * 3_600_000,
                (Measure::Resolve, IncidentSeverity::Error) => 24 * 3_600_000,
                (Measure::Resolve, IncidentSeverity::Warning) => 72 * 3_600_000,
            };
            let met = values.iter().filter(|v| **v <= target_ms as f64).count();
            rows.push(ResponseRow {
                measure,
                severity,
                distribution: distribution(&values),
                target_ms: Some(target_ms),
                met_share: (!values.is_empty()).then(|| met as f64 / values.len() as f64),
                values_ms: values,
            });
        }
    }
    rows
}

fn forecast(slo: &str, now: f64, slope: f64) -> ForecastRow {
    let points: Vec<(i64, f64, f64, f64)> = (1..=30)
        .map(|d| {
            let v = (now + slope * d as f64).min(1.0);
            let w = 0.002 + 0.0004 * d as f64;
            (END + (d - 1) * DAY, v, v - w, (v + w).min(1.0))
        })
        .collect();
    let last = points.last().copied().unwrap_or((END, now, now, now));
    ForecastRow {
        slo: slo.to_owned(),
        horizon_days: 30,
        compliance: Band {
            value: last.1,
            lower: last.2,
            upper: last.3,
        },
        budget_remaining: Band {
            value: 1.0 - (1.0 - last.1) / 0.05,
            lower: 1.0 - (1.0 - last.2) / 0.05,
            upper: 1.0 - (1.0 - last.3) / 0.05,
        },
        points,
        history: (0..30)
            .map(|d| (START + d * DAY, now - slope * (30 - d) as f64))
            .collect(),
    }
}

pub(super) fn report() -> Report {
    let compliance: Vec<ComplianceRow> = (0..12).map(compliance_row).collect();
    let incidents: Vec<IncidentRow> = (0..40).map(incident).collect();
    let mut list = incidents.clone();
    list.sort_by_key(|inc| std::cmp::Reverse(inc.started_ms));
    let mut by_hour = vec![0; 24];
    let mut by_weekday = vec![0; 7];
    for inc in &incidents {
        by_hour[((inc.started_ms - START) / 3_600_000 % 24) as usize] += 1;
        // 2026-11-01 is a Sunday (index 6 from Monday).
        by_weekday[(((inc.started_ms - START) / DAY + 6) % 7) as usize] += 1;
    }
    Report {
        kind: ReportKind::Monthly,
        title: "Monthly SLA report: November 2026".to_owned(),
        window: Window::new(START, END),
        generated_ms: END + 90_000,
        timezone: "Europe/Berlin".to_owned(),
        sections: Sections::for_kind(ReportKind::Monthly),
        summary: Summary {
            slos: 12,
            met: 9,
            warning: 1,
            breached: 1,
            no_data: 1,
            incidents: 40,
            mtta_ms: Some(47.5 * MIN),
            mttr_ms: Some(6.2 * 60.0 * MIN),
            coverage: Some(0.9974),
            headline: "1 of 12 SLOs breached: probe:web-frontend:availability at 96.32 % (target 95 %) after four bad days from Nov 13; 1 in warning.".to_owned(),
        },
        compliance,
        response: response(&incidents),
        incidents: IncidentStats {
            count: 40,
            longest: incidents.iter().max_by_key(|inc| inc.duration_ms).cloned(),
            by_node: vec![
                ("nas".to_owned(), 9),
                ("db-primary".to_owned(), 9),
                ("web-1".to_owned(), 8),
                ("build-agent-03".to_owned(), 8),
                (String::new(), 6),
            ],
            by_hour,
            by_weekday,
            list,
        },
        trends: vec![
            TrendRow {
                subject: "compliance of probe:web-frontend:availability".to_owned(),
                unit: TrendUnit::Share,
                samples: 30,
                slope_per_day: -0.00121,
                p_value: 0.0031,
                significant: true,
                direction: Direction::Worsening,
                seasonality: Some("lower on Mondays (−2.1 points)".to_owned()),
            },
            TrendRow {
                subject: "compliance of node:nas:availability".to_owned(),
                unit: TrendUnit::Share,
                samples: 30,
                slope_per_day: 0.00002,
                p_value: 0.61,
                significant: false,
                direction: Direction::Flat,
                seasonality: None,
            },
            TrendRow {
                subject: "MTTA".to_owned(),
                unit: TrendUnit::Milliseconds,
                samples: 27,
                slope_per_day: 41_000.0,
                p_value: 0.012,
                significant: true,
                direction: Direction::Worsening,
                seasonality: None,
            },
            TrendRow {
                subject: "MTTR".to_owned(),
                unit: TrendUnit::Milliseconds,
                samples: 26,
                slope_per_day: -120_000.0,
                p_value: 1.0,
                significant: false,
                direction: Direction::Flat,
                seasonality: None,
            },
        ],
        patterns: vec![
            PatternRow {
                alert: "DiskAlmostFull".to_owned(),
                node: Some("nas".to_owned()),
                kind: PatternKind::Hour,
                when: "around 03:00".to_owned(),
                occurrences: 6,
                span: Window::new(START, END),
            },
            PatternRow {
                alert: "HighCpu".to_owned(),
                node: None,
                kind: PatternKind::Weekday,
                when: "on Mondays".to_owned(),
                occurrences: 4,
                span: Window::new(START, END),
            },
        ],
        forecast: vec![
            forecast("probe:web-frontend:availability", 0.962, -0.0009),
            forecast("probe:redis-cache:latency", 0.936, 0.0002),
            forecast("node:nas:availability", 0.9991, 0.0),
        ],
        recommendations: vec![
            Recommendation {
                priority: Priority::High,
                finding: "probe:web-frontend:availability fell to 96.32 % with 4 bad days (Nov 13–16) and is trending down 0.12 points a day (p = 0.003).".to_owned(),
                recommendation: "Review the web-frontend deployment of Nov 13 and add a second replica behind the load balancer.".to_owned(),
                expected_impact: "Back above the 95 % target within the next period; about 1.3 budgets saved.".to_owned(),
                confidence: 0.9,
            },
            Recommendation {
                priority: Priority::Medium,
                finding: "DiskAlmostFull fired on nas 6 times around 03:00.".to_owned(),
                recommendation: "Move the nightly backup's temporary files off the data volume or rotate them before 03:00.".to_owned(),
                expected_impact: "About 6 fewer incidents a month.".to_owned(),
                confidence: 0.8,
            },
            Recommendation {
                priority: Priority::Low,
                finding: "Critical incidents between 22:00 and 06:00 were acknowledged after 58 min on median, against 15 min by day.".to_owned(),
                recommendation: "Route night-time critical alerts to the on-call phone instead of e-mail.".to_owned(),
                expected_impact: "Night MTTA down to the 15-minute target.".to_owned(),
                confidence: 0.72,
            },
        ],
        coverage: vec![
            CoverageRow {
                node: "build-agent-03".to_owned(),
                evaluations: 43_200,
                coverage: 0.9412,
                quality: 0.9305,
                lowest: 0.41,
                below_threshold: 0.062,
            },
            CoverageRow {
                node: "nas".to_owned(),
                evaluations: 43_200,
                coverage: 0.9981,
                quality: 0.9876,
                lowest: 0.88,
                below_threshold: 0.003,
            },
        ],
    }
}

/// The fixture grown to `slos` SLOs, for timing.
pub(super) fn large_report(slos: usize) -> Report {
    let mut report = report();
    let template = report.compliance.clone();
    report.compliance = (0..slos)
        .map(|i| {
            let mut row = template[i % template.len()].clone();
            row.name = format!("{}-{i}", row.name);
            row
        })
        .collect();
    report.summary.slos = slos;
    report
}

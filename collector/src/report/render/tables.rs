//! The report's tables. Two audiences: people (PDF, HTML) get rounded figures with units, an
//! interval in one cell, a wide row where a list would be long; programs (CSV) get raw figures
//! in base units (shares in [0, 1], durations in ms, instants in RFC 3339), one value per
//! column, long lists, and the chart data too.

use crate::analytics::slo::response::Measure;
use crate::analytics::slo::{IncidentSeverity, Status, Zone};
use crate::report::model::{
    Direction, IncidentRow, PatternKind, Priority, Report, ResponseRow, TrendRow, TrendUnit,
};

use super::format::{self, NONE};
use super::table::{Cell, Table, Tone, col, num};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Audience {
    People,
    Programs,
}

/// Rows the printed breach list shows; the CSV has them all.
const PRINTED_BREACHES: usize = 40;

fn opt_raw(v: Option<f64>) -> String {
    v.filter(|v| v.is_finite())
        .map(|v| v.to_string())
        .unwrap_or_default()
}

fn opt_ms(v: Option<i64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

pub(super) fn status_cell(status: Status) -> Cell {
    let (text, tone) = match status {
        Status::Met => ("met", Tone::Good),
        Status::Warning => ("warning", Tone::Warn),
        Status::Breached => ("breached", Tone::Bad),
        Status::NoData => ("no data", Tone::Muted),
    };
    Cell::figure(text, status.name()).toned(tone)
}

pub(super) fn measure_name(measure: Measure) -> &'static str {
    match measure {
        Measure::Acknowledge => "acknowledge",
        Measure::Resolve => "resolve",
    }
}

pub(super) fn summary(report: &Report, zone: &Zone) -> Table {
    let s = &report.summary;
    let w = report.window;
    let rows = [
        ("title", report.title.clone()),
        ("kind", report.kind.name().to_owned()),
        ("window_start", format::rfc3339(w.start_ms)),
        ("window_end", format::rfc3339(w.end_ms)),
        ("period", format::window(w, zone)),
        ("timezone", zone.name().to_owned()),
        ("generated", format::rfc3339(report.generated_ms)),
        ("slos", s.slos.to_string()),
        ("met", s.met.to_string()),
        ("warning", s.warning.to_string()),
        ("breached", s.breached.to_string()),
        ("no_data", s.no_data.to_string()),
        ("incidents", s.incidents.to_string()),
        ("mtta_ms", opt_raw(s.mtta_ms)),
        ("mttr_ms", opt_raw(s.mttr_ms)),
        ("coverage_ratio", opt_raw(s.coverage)),
        ("headline", s.headline.clone()),
    ];
    Table {
        id: "summary",
        title: "Summary",
        columns: vec![col("Figure", "figure"), col("Value", "value")],
        rows: rows
            .into_iter()
            .map(|(k, v)| vec![Cell::text(k), Cell::text(v)])
            .collect(),
        empty: "",
    }
}

pub(super) fn compliance(report: &Report, audience: Audience) -> Table {
    let mut columns = vec![col("SLO", "slo")];
    if audience == Audience::Programs {
        columns.extend([
            col("Description", "description"),
            col("Covers", "covers"),
            col("SLI", "sli"),
            col("Period", "period"),
        ]);
    }
    columns.extend([
        num("Target", "target_ratio"),
        num("Compliance", "compliance_ratio"),
        col("Status", "status"),
        num("Coverage", "coverage_ratio"),
        num("Budget left", "budget_remaining_ratio"),
        num("Burn rate", "burn_rate"),
        num("Budget gone in", "time_to_exhaustion_ms"),
        num("Breaches", "breaches"),
    ]);
    if audience == Audience::Programs {
        columns.extend([num("Warning", "warning_ratio"), col("Policy", "policy")]);
    }
    let rows = report
        .compliance
        .iter()
        .map(|r| {
            let mut row = vec![Cell::text(&r.name)];
            if audience == Audience::Programs {
                row.extend([
                    Cell::text(&r.description),
                    Cell::text(&r.covers),
                    Cell::text(&r.sli),
                    Cell::text(&r.period),
                ]);
            }
            let budget_tone = match r.budget_remaining {
                Some(b) if b < 0.0 => Tone::Bad,
                Some(b) if b < 0.25 => Tone::Warn,
                _ => Tone::Plain,
            };
            let breach_ms: i64 = r.breaches.iter().map(|b| b.len_ms()).sum();
            let breaches = if r.breaches.is_empty() {
                "none".to_owned()
            } else {
                format!(
                    "{} ({})",
                    r.breaches.len(),
                    format::duration(Some(breach_ms as f64))
                )
            };
            let breaches_raw = r
                .breaches
                .iter()
                .map(|b| {
                    format!(
                        "{}/{}",
                        format::rfc3339(b.start_ms),
                        format::rfc3339(b.end_ms)
                    )
                })
                .collect::<Vec<_>>()
                .join(" ");
            row.extend([
                Cell::figure(format::target(r.target), r.target.to_string()),
                Cell::figure(format::percent(r.compliance), opt_raw(r.compliance)),
                status_cell(r.status),
                Cell::figure(format::percent(r.coverage), opt_raw(r.coverage)),
                Cell::figure(
                    format::percent(r.budget_remaining),
                    opt_raw(r.budget_remaining),
                )
                .toned(budget_tone),
                Cell::figure(
                    r.burn_rate
                        .map(|b| format!("{b:.2}×"))
                        .unwrap_or_else(|| NONE.to_owned()),
                    opt_raw(r.burn_rate),
                ),
                Cell::figure(
                    match r.time_to_exhaustion_ms {
                        // Nothing left to burn: "0 s" would read as a figure.
                        Some(t) if t <= 0 => "exhausted".to_owned(),
                        Some(t) => format::duration(Some(t as f64)),
                        None => "not burning".to_owned(),
                    },
                    opt_ms(r.time_to_exhaustion_ms),
                ),
                Cell::figure(breaches, breaches_raw),
            ]);
            if audience == Audience::Programs {
                row.extend([Cell::text(r.warning.to_string()), Cell::text(&r.policy)]);
            }
            row
        })
        .collect();
    Table {
        id: "compliance",
        title: "Compliance per SLO",
        columns,
        rows,
        empty: "No SLOs are defined.",
    }
}

pub(super) fn breaches(report: &Report, zone: &Zone, audience: Audience) -> Table {
    let all: Vec<Vec<Cell>> = report
        .compliance
        .iter()
        .flat_map(|r| {
            r.breaches.iter().map(|b| {
                vec![
                    Cell::text(&r.name),
                    Cell::figure(
                        format::datetime(b.start_ms, zone),
                        format::rfc3339(b.start_ms),
                    ),
                    Cell::figure(format::datetime(b.end_ms, zone), format::rfc3339(b.end_ms)),
                    Cell::figure(
                        format::duration(Some(b.len_ms() as f64)),
                        b.len_ms().to_string(),
                    ),
                ]
            })
        })
        .collect();
    let total = all.len();
    let mut rows = all;
    if audience == Audience::People && total > PRINTED_BREACHES {
        rows.truncate(PRINTED_BREACHES);
        rows.push(vec![
            Cell::text(format!(
                "… and {} more (all in the CSV)",
                total - PRINTED_BREACHES
            ))
            .toned(Tone::Muted),
            Cell::text(""),
            Cell::text(""),
            Cell::text(""),
        ]);
    }
    Table {
        id: "breaches",
        title: "Breaches",
        columns: vec![
            col("SLO", "slo"),
            col("From", "start"),
            col("To", "end"),
            num("Duration", "duration_ms"),
        ],
        rows,
        empty: "No SLO had a run of bad intervals.",
    }
}

fn response_row(r: &ResponseRow, audience: Audience) -> Vec<Cell> {
    let d = &r.distribution;
    let ms = |v: Option<f64>| Cell::figure(format::duration(v), opt_raw(v));
    let met_tone = match (r.met_share, r.target_ms) {
        (Some(m), Some(_)) if m >= 0.95 => Tone::Good,
        (Some(m), Some(_)) if m >= 0.9 => Tone::Warn,
        (Some(_), Some(_)) => Tone::Bad,
        _ => Tone::Plain,
    };
    let mut row = vec![
        Cell::text(measure_name(r.measure)),
        Cell::text(r.severity.name()),
        Cell::text(d.count.to_string()),
        ms(d.mean),
        ms(d.median),
    ];
    if audience == Audience::Programs {
        row.push(ms(d.p50));
    }
    row.extend([
        ms(d.p75),
        ms(d.p90),
        ms(d.p95),
        ms(d.p99),
        Cell::figure(
            format::duration(r.target_ms.map(|t| t as f64)),
            opt_ms(r.target_ms),
        ),
        Cell::figure(format::percent(r.met_share), opt_raw(r.met_share)).toned(met_tone),
    ]);
    row
}

pub(super) fn response(report: &Report, audience: Audience) -> Table {
    let mut columns = vec![
        col("Measure", "measure"),
        col("Severity", "severity"),
        num("Incidents", "count"),
        num("Mean", "mean_ms"),
        num("Median", "median_ms"),
    ];
    if audience == Audience::Programs {
        columns.push(num("p50", "p50_ms"));
    }
    columns.extend([
        num("p75", "p75_ms"),
        num("p90", "p90_ms"),
        num("p95", "p95_ms"),
        num("p99", "p99_ms"),
        num("Target", "target_ms"),
        num("Within target", "met_ratio"),
    ]);
    Table {
        id: "response",
        title: "Response and resolution times",
        columns,
        rows: report
            .response
            .iter()
            .map(|r| response_row(r, audience))
            .collect(),
        empty: "No incident was acknowledged or resolved in this period.",
    }
}

pub(super) fn incident_cells(inc: &IncidentRow, zone: &Zone) -> Vec<Cell> {
    let after = |end: Option<i64>, open: &str| match end {
        Some(e) => Cell::figure(
            format::duration(Some((e - inc.started_ms) as f64)),
            (e - inc.started_ms).to_string(),
        ),
        None => Cell::figure(open, "").toned(Tone::Muted),
    };
    let severity_tone = match inc.severity {
        IncidentSeverity::Critical => Tone::Bad,
        IncidentSeverity::Error => Tone::Warn,
        IncidentSeverity::Warning => Tone::Plain,
    };
    vec![
        Cell::figure(
            format::datetime(inc.started_ms, zone),
            format::rfc3339(inc.started_ms),
        ),
        Cell::text(&inc.alert),
        Cell::text(inc.node.clone().unwrap_or_default()),
        Cell::text(inc.severity.name()).toned(severity_tone),
        after(inc.acknowledged_ms, "never"),
        after(inc.resolved_ms, "open"),
        Cell::figure(
            format::duration(Some(inc.duration_ms as f64)),
            inc.duration_ms.to_string(),
        ),
        Cell::text(&inc.id),
    ]
}

pub(super) fn incidents(report: &Report, zone: &Zone) -> Table {
    Table {
        id: "incidents",
        title: "Incidents (newest first)",
        columns: vec![
            col("Started", "started"),
            col("Alert", "alert"),
            col("Node", "node"),
            col("Severity", "severity"),
            num("Acknowledged after", "acknowledged_after_ms"),
            num("Resolved after", "resolved_after_ms"),
            num("Duration", "duration_ms"),
            col("ID", "id"),
        ],
        rows: report
            .incidents
            .list
            .iter()
            .map(|inc| incident_cells(inc, zone))
            .collect(),
        empty: "No incidents in this period.",
    }
}

pub(super) fn by_node(report: &Report) -> Table {
    let total: usize = report.incidents.by_node.iter().map(|(_, n)| n).sum();
    Table {
        id: "incidents_by_node",
        title: "Incidents by node",
        columns: vec![
            col("Node", "node"),
            num("Incidents", "incidents"),
            num("Share", "share_ratio"),
        ],
        rows: report
            .incidents
            .by_node
            .iter()
            .map(|(node, n)| {
                let share = (total > 0).then(|| *n as f64 / total as f64);
                vec![
                    if node.is_empty() {
                        Cell::figure("(no node)", "")
                    } else {
                        Cell::text(node)
                    },
                    Cell::text(n.to_string()),
                    Cell::figure(format::percent(share), opt_raw(share)),
                ]
            })
            .collect(),
        empty: "No incidents in this period.",
    }
}

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const HOURS: [&str; 24] = [
    "00", "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12", "13", "14", "15",
    "16", "17", "18", "19", "20", "21", "22", "23",
];

/// Counts per hour or weekday: one wide row for people, one row per bucket for programs.
fn buckets(
    id: &'static str,
    title: &'static str,
    what: (&'static str, &'static str),
    names: &[&'static str],
    counts: &[usize],
    audience: Audience,
) -> Table {
    let count = |i: usize| counts.get(i).copied().unwrap_or(0);
    let (columns, rows) = match audience {
        Audience::People => (
            names.iter().map(|n| num(n, n)).collect(),
            if counts.iter().all(|c| *c == 0) {
                vec![]
            } else {
                vec![
                    (0..names.len())
                        .map(|i| Cell::text(count(i).to_string()))
                        .collect(),
                ]
            },
        ),
        Audience::Programs => (
            vec![col(what.0, what.1), num("Incidents", "incidents")],
            names
                .iter()
                .enumerate()
                .map(|(i, n)| vec![Cell::text(*n), Cell::text(count(i).to_string())])
                .collect(),
        ),
    };
    Table {
        id,
        title,
        columns,
        rows,
        empty: "No incidents in this period.",
    }
}

pub(super) fn by_hour(report: &Report, audience: Audience) -> Table {
    buckets(
        "incidents_by_hour",
        "Incidents by hour of day (start, local time)",
        ("Hour", "hour"),
        &HOURS,
        &report.incidents.by_hour,
        audience,
    )
}

pub(super) fn by_weekday(report: &Report, audience: Audience) -> Table {
    buckets(
        "incidents_by_weekday",
        "Incidents by weekday (start, local time)",
        ("Weekday", "weekday"),
        &WEEKDAYS,
        &report.incidents.by_weekday,
        audience,
    )
}

fn slope(t: &TrendRow) -> String {
    match t.unit {
        TrendUnit::Share => format!("{:+.3} points/day", t.slope_per_day * 100.0),
        TrendUnit::Milliseconds => {
            let sign = if t.slope_per_day >= 0.0 { "+" } else { "" };
            format!("{sign}{}/day", format::duration(Some(t.slope_per_day)))
        }
    }
}

pub(super) fn trends(report: &Report) -> Table {
    let unit = |u: TrendUnit| match u {
        TrendUnit::Share => "share",
        TrendUnit::Milliseconds => "ms",
    };
    Table {
        id: "trends",
        title: "Trends",
        columns: vec![
            col("Subject", "subject"),
            num("Days", "samples"),
            num("Slope", "slope_per_day"),
            col("Unit", "unit"),
            num("p-value", "p_value"),
            col("Direction", "direction"),
            col("Seasonality", "seasonality"),
        ],
        rows: report
            .trends
            .iter()
            .map(|t| {
                let tone = match t.direction {
                    Direction::Improving => Tone::Good,
                    Direction::Worsening => Tone::Bad,
                    Direction::Flat => Tone::Plain,
                };
                let direction = if t.significant {
                    t.direction.name().to_owned()
                } else {
                    format!("{} (not significant)", t.direction.name())
                };
                vec![
                    Cell::text(&t.subject),
                    Cell::text(t.samples.to_string()),
                    Cell::figure(slope(t), t.slope_per_day.to_string()),
                    Cell::text(unit(t.unit)),
                    Cell::figure(format::number(Some(t.p_value), 3), t.p_value.to_string()),
                    Cell::figure(direction, t.direction.name()).toned(tone),
                    Cell::text(t.seasonality.clone().unwrap_or_else(|| "none".to_owned())),
                ]
            })
            .collect(),
        empty: "Too few days of data for a trend.",
    }
}

/// Per node, the share of its expected samples that arrived and the quality of its data
/// (`[quality]`), worst coverage first.
pub(super) fn coverage(report: &Report) -> Table {
    Table {
        id: "coverage",
        title: "Data coverage",
        columns: vec![
            col("Node", "node"),
            num("Coverage", "coverage"),
            num("Mean quality", "quality"),
            num("Lowest quality", "lowest"),
            num("Time below 0.90", "below_threshold"),
            num("Evaluations", "evaluations"),
        ],
        rows: report
            .coverage
            .iter()
            .map(|c| {
                let tone = |good: bool| if good { Tone::Good } else { Tone::Bad };
                vec![
                    Cell::text(&c.node),
                    Cell::figure(format::percent(Some(c.coverage)), c.coverage.to_string())
                        .toned(tone(c.coverage >= 0.95)),
                    Cell::figure(format::number(Some(c.quality), 3), c.quality.to_string())
                        .toned(tone(c.quality >= 0.90)),
                    Cell::figure(format::number(Some(c.lowest), 2), c.lowest.to_string()),
                    Cell::figure(
                        format::percent(Some(c.below_threshold)),
                        c.below_threshold.to_string(),
                    ),
                    Cell::text(c.evaluations.to_string()),
                ]
            })
            .collect(),
        empty: "No data-quality evaluations in this window ([quality] enabled = false, or no agent reported).",
    }
}

pub(super) fn patterns(report: &Report, zone: &Zone) -> Table {
    Table {
        id: "patterns",
        title: "Recurring incidents",
        columns: vec![
            col("Alert", "alert"),
            col("Node", "node"),
            col("Recurs by", "kind"),
            col("When", "when"),
            num("Occurrences", "occurrences"),
            col("Within", "span"),
        ],
        rows: report
            .patterns
            .iter()
            .map(|p| {
                vec![
                    Cell::text(&p.alert),
                    Cell::text(p.node.clone().unwrap_or_else(|| "any".to_owned())),
                    Cell::text(match p.kind {
                        PatternKind::Hour => "hour of day",
                        PatternKind::Weekday => "weekday",
                    }),
                    Cell::text(&p.when),
                    Cell::text(p.occurrences.to_string()),
                    Cell::figure(
                        format::window(p.span, zone),
                        format!(
                            "{}/{}",
                            format::rfc3339(p.span.start_ms),
                            format::rfc3339(p.span.end_ms)
                        ),
                    ),
                ]
            })
            .collect(),
        empty: "No alert recurred at least 3 times at the same hour or on the same weekday.",
    }
}

pub(super) fn forecast(report: &Report, audience: Audience) -> Table {
    let band = |b: &crate::report::model::Band| {
        format!(
            "{} ({} to {})",
            format::percent(Some(b.value)),
            format::percent(Some(b.lower)),
            format::percent(Some(b.upper))
        )
    };
    let (columns, rows) = match audience {
        Audience::People => (
            vec![
                col("SLO", "slo"),
                num("Days ahead", "horizon_days"),
                num("Compliance (95 % interval)", "compliance"),
                num("Budget left (95 % interval)", "budget_remaining"),
            ],
            report
                .forecast
                .iter()
                .map(|f| {
                    let tone = if f.budget_remaining.value < 0.0 {
                        Tone::Bad
                    } else {
                        Tone::Plain
                    };
                    vec![
                        Cell::text(&f.slo),
                        Cell::text(f.horizon_days.to_string()),
                        Cell::text(band(&f.compliance)),
                        Cell::text(band(&f.budget_remaining)).toned(tone),
                    ]
                })
                .collect(),
        ),
        Audience::Programs => (
            vec![
                col("SLO", "slo"),
                num("Days ahead", "horizon_days"),
                num("Compliance", "compliance_ratio"),
                num("Lower", "compliance_lower_ratio"),
                num("Upper", "compliance_upper_ratio"),
                num("Budget left", "budget_remaining_ratio"),
                num("Lower", "budget_remaining_lower_ratio"),
                num("Upper", "budget_remaining_upper_ratio"),
            ],
            report
                .forecast
                .iter()
                .map(|f| {
                    let raw = |v: f64| Cell::text(v.to_string());
                    vec![
                        Cell::text(&f.slo),
                        Cell::text(f.horizon_days.to_string()),
                        raw(f.compliance.value),
                        raw(f.compliance.lower),
                        raw(f.compliance.upper),
                        raw(f.budget_remaining.value),
                        raw(f.budget_remaining.lower),
                        raw(f.budget_remaining.upper),
                    ]
                })
                .collect(),
        ),
    };
    Table {
        id: "forecast",
        title: "Forecast per SLO",
        columns,
        rows,
        empty: "Too little history for a forecast.",
    }
}

pub(super) fn recommendations(report: &Report) -> Table {
    Table {
        id: "recommendations",
        title: "Recommendations",
        columns: vec![
            col("Priority", "priority"),
            col("Finding", "finding"),
            col("Recommendation", "recommendation"),
            col("Expected impact", "expected_impact"),
            num("Confidence", "confidence"),
        ],
        rows: report
            .recommendations
            .iter()
            .map(|r| {
                let tone = match r.priority {
                    Priority::High => Tone::Bad,
                    Priority::Medium => Tone::Warn,
                    Priority::Low => Tone::Plain,
                };
                vec![
                    Cell::text(r.priority.name()).toned(tone),
                    Cell::text(&r.finding),
                    Cell::text(&r.recommendation),
                    Cell::text(&r.expected_impact),
                    Cell::figure(
                        format!("{:.0} %", r.confidence * 100.0),
                        r.confidence.to_string(),
                    ),
                ]
            })
            .collect(),
        empty: "Nothing in this period's figures calls for a change.",
    }
}

/// The daily points behind the compliance and burn-down charts (programs only).
pub(super) fn daily(report: &Report) -> Table {
    Table {
        id: "compliance_daily",
        title: "Daily compliance",
        columns: vec![
            col("SLO", "slo"),
            col("Day", "day_start"),
            num("Compliance", "compliance_ratio"),
            num("Budget left", "budget_remaining_ratio"),
        ],
        rows: report
            .compliance
            .iter()
            .flat_map(|r| {
                r.daily.iter().map(|d| {
                    vec![
                        Cell::text(&r.name),
                        Cell::text(format::rfc3339(d.start_ms)),
                        Cell::text(opt_raw(d.compliance)),
                        Cell::text(opt_raw(d.budget_remaining)),
                    ]
                })
            })
            .collect(),
        empty: "",
    }
}

/// The forecast lines behind the forecast chart (programs only).
pub(super) fn forecast_points(report: &Report) -> Table {
    Table {
        id: "forecast_points",
        title: "Forecast points",
        columns: vec![
            col("SLO", "slo"),
            col("Day", "day_start"),
            num("Compliance", "compliance_ratio"),
            num("Lower", "lower_ratio"),
            num("Upper", "upper_ratio"),
        ],
        rows: report
            .forecast
            .iter()
            .flat_map(|f| {
                f.points.iter().map(|(t, v, lo, hi)| {
                    vec![
                        Cell::text(&f.slo),
                        Cell::text(format::rfc3339(*t)),
                        Cell::text(v.to_string()),
                        Cell::text(lo.to_string()),
                        Cell::text(hi.to_string()),
                    ]
                })
            })
            .collect(),
        empty: "",
    }
}

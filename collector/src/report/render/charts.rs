//! The report's four charts, as SVG: daily compliance against the target, the error-budget
//! burn-down, the response-time distribution per severity, and the compliance forecast with its
//! 95 % band. With a hundred SLOs a chart of every line is unreadable, so the compliance charts
//! show the few that need attention (lowest first) and say so in their titles; the tables carry
//! every SLO.

use std::collections::BTreeSet;

use crate::analytics::slo::Zone;
use crate::analytics::slo::response::Measure;
use crate::report::model::{ComplianceRow, Report};

use super::RenderError;
use super::plot::{self, BoxRow, LegendEntry, Line, Mark, PALETTE, Rule, Svg, TimePlot};
use super::tables::measure_name;

/// Lines per compliance chart.
const SHOWN: usize = 5;
/// Lines in the forecast chart (each has a band; more would hide each other).
const FORECASTS_SHOWN: usize = 3;

/// Which section a chart belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Place {
    Compliance,
    Response,
    Forecast,
}

pub(super) struct Chart {
    pub place: Place,
    pub svg: Svg,
    /// One sentence under the chart on how to read it.
    pub caption: String,
}

/// The charts of the report's sections, in reading order.
pub(super) fn all(report: &Report, zone: &Zone) -> Result<Vec<Chart>, RenderError> {
    let mut charts = Vec::new();
    if report.sections.compliance {
        charts.push(compliance(report, zone)?);
        charts.push(burn_down(report, zone)?);
    }
    if report.sections.response {
        charts.push(response(report)?);
    }
    if report.sections.forecast {
        charts.push(forecast(report, zone)?);
    }
    Ok(charts)
}

/// SLOs ordered worst first by `key` (lower is worse), those without a value dropped.
fn worst(report: &Report, key: impl Fn(&ComplianceRow) -> Option<f64>) -> Vec<&ComplianceRow> {
    let mut rows: Vec<(&ComplianceRow, f64)> = report
        .compliance
        .iter()
        .filter_map(|r| key(r).filter(|v| v.is_finite()).map(|v| (r, v)))
        .collect();
    rows.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.name.cmp(&b.0.name)));
    rows.into_iter().map(|(r, _)| r).take(SHOWN).collect()
}

fn which(shown: usize, total: usize, what: &str) -> String {
    if shown < total {
        format!("{what} (lowest {shown} of {total} SLOs)")
    } else {
        what.to_owned()
    }
}

/// The target lines: one when the SLOs shown share a target, else one per SLO in its colour.
fn target_rules(rows: &[(&str, f64, plotters::style::RGBColor)]) -> Vec<Rule> {
    let targets: BTreeSet<u64> = rows.iter().map(|(_, t, _)| t.to_bits()).collect();
    if targets.len() == 1 {
        let t = rows[0].1;
        return vec![Rule {
            name: format!("target {}", super::format::target(t)),
            value: t * 100.0,
            color: plot::ALERT,
        }];
    }
    rows.iter()
        .map(|(name, t, color)| Rule {
            name: format!("target of {name} ({})", super::format::target(*t)),
            value: t * 100.0,
            color: *color,
        })
        .collect()
}

fn compliance(report: &Report, zone: &Zone) -> Result<Chart, RenderError> {
    let rows = worst(report, |r| r.compliance);
    let lines: Vec<Line> = rows
        .iter()
        .zip(PALETTE)
        .map(|(r, color)| Line {
            name: r.name.clone(),
            color,
            points: r
                .daily
                .iter()
                .map(|d| (d.start_ms, d.compliance.map(|c| c * 100.0)))
                .collect(),
            dashed: false,
            band: vec![],
        })
        .collect();
    let targets: Vec<(&str, f64, _)> = rows
        .iter()
        .zip(PALETTE)
        .map(|(r, c)| (r.name.as_str(), r.target, c))
        .collect();
    let svg = plot::time_plot(&TimePlot {
        title: which(rows.len(), report.compliance.len(), "Daily compliance"),
        y_desc: "Compliance (%)",
        rules: if targets.is_empty() {
            vec![]
        } else {
            target_rules(&targets)
        },
        lines,
        zone,
        y_bounds: (0.0, 100.0),
        y_include: vec![100.0],
        y_unit: " %",
        no_data: "No SLO had data in this period",
    })?;
    Ok(Chart {
        place: Place::Compliance,
        svg,
        caption: "Each day's own compliance; a day without data leaves a gap in its line."
            .to_owned(),
    })
}

fn burn_down(report: &Report, zone: &Zone) -> Result<Chart, RenderError> {
    let rows = worst(report, |r| r.budget_remaining);
    let lines: Vec<Line> = rows
        .iter()
        .zip(PALETTE)
        .map(|(r, color)| Line {
            name: r.name.clone(),
            color,
            points: r
                .daily
                .iter()
                .map(|d| (d.start_ms, d.budget_remaining.map(|b| b * 100.0)))
                .collect(),
            dashed: false,
            band: vec![],
        })
        .collect();
    let svg = plot::time_plot(&TimePlot {
        title: which(rows.len(), report.compliance.len(), "Error budget left"),
        y_desc: "Budget left (%)",
        rules: vec![Rule {
            name: "budget exhausted".to_owned(),
            value: 0.0,
            color: plot::ALERT,
        }],
        lines,
        zone,
        // An overspent budget goes below zero; past −300 % the line runs along the edge.
        y_bounds: (-300.0, 100.0),
        y_include: vec![0.0, 100.0],
        y_unit: " %",
        no_data: "No SLO had data in this period",
    })?;
    Ok(Chart {
        place: Place::Compliance,
        svg,
        caption: "The share of the period's error budget left at the end of each day; below 0 the budget is overspent.".to_owned(),
    })
}

fn response(report: &Report) -> Result<Chart, RenderError> {
    let color = |m: Measure| match m {
        Measure::Acknowledge => PALETTE[0],
        Measure::Resolve => PALETTE[1],
    };
    let rows: Vec<BoxRow> = report
        .response
        .iter()
        .filter(|r| !r.values_ms.is_empty())
        .map(|r| BoxRow {
            label: format!(
                "{} · {} (n={})",
                r.severity.name(),
                measure_name(r.measure),
                r.values_ms.len()
            ),
            minutes: r.values_ms.iter().map(|v| v / 60_000.0).collect(),
            target_minutes: r.target_ms.map(|t| t as f64 / 60_000.0),
            color: color(r.measure),
        })
        .collect();
    let legend = [
        LegendEntry {
            name: "time to acknowledge".to_owned(),
            color: color(Measure::Acknowledge),
            mark: Mark::Fill,
        },
        LegendEntry {
            name: "time to resolve".to_owned(),
            color: color(Measure::Resolve),
            mark: Mark::Fill,
        },
        LegendEntry {
            name: "median".to_owned(),
            color: plot::INK,
            mark: Mark::Line,
        },
        LegendEntry {
            name: "target".to_owned(),
            color: plot::ALERT,
            mark: Mark::Line,
        },
    ];
    let svg = plot::box_plot(
        "Time to acknowledge and to resolve, per severity",
        &rows,
        &legend,
        "No incident was acknowledged or resolved in this period",
    )?;
    Ok(Chart {
        place: Place::Response,
        svg,
        caption: "Boxes span the middle half of the incidents, whiskers reach the fastest and the slowest; minutes on a log scale.".to_owned(),
    })
}

fn forecast(report: &Report, zone: &Zone) -> Result<Chart, RenderError> {
    let mut rows: Vec<_> = report.forecast.iter().collect();
    rows.sort_by(|a, b| {
        a.compliance
            .value
            .total_cmp(&b.compliance.value)
            .then_with(|| a.slo.cmp(&b.slo))
    });
    rows.truncate(FORECASTS_SHOWN);
    let mut lines = Vec::new();
    let mut targets = Vec::new();
    for (f, color) in rows.iter().zip(PALETTE) {
        lines.push(Line {
            name: format!("{} (observed)", f.slo),
            color,
            points: f
                .history
                .iter()
                .map(|(t, v)| (*t, Some(v * 100.0)))
                .collect(),
            dashed: false,
            band: vec![],
        });
        lines.push(Line {
            name: format!("{} (forecast)", f.slo),
            color,
            points: f
                .points
                .iter()
                .map(|(t, v, _, _)| (*t, Some(v * 100.0)))
                .collect(),
            dashed: true,
            band: f
                .points
                .iter()
                .map(|(t, _, lo, hi)| (*t, lo * 100.0, hi * 100.0))
                .collect(),
        });
        if let Some(row) = report.compliance.iter().find(|r| r.name == f.slo) {
            targets.push((f.slo.as_str(), row.target, color));
        }
    }
    let title = if report.forecast.len() > rows.len() {
        format!(
            "Compliance forecast, 30 days (lowest {} of {})",
            rows.len(),
            report.forecast.len()
        )
    } else {
        "Compliance forecast, 30 days".to_owned()
    };
    let svg = plot::time_plot(&TimePlot {
        title,
        y_desc: "Compliance (%)",
        rules: if targets.is_empty() {
            vec![]
        } else {
            target_rules(&targets)
        },
        lines,
        zone,
        y_bounds: (0.0, 100.0),
        y_include: vec![100.0],
        y_unit: " %",
        no_data: "Too little history for a forecast",
    })?;
    Ok(Chart {
        place: Place::Forecast,
        svg,
        caption: "Solid: observed daily compliance; dashed: the fitted trend carried forward, shaded: its 95 % interval.".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_support;
    use super::*;

    #[test]
    fn render_charts_show_the_worst_slos_with_text() {
        let report = test_support::report();
        let zone = Zone::parse("Europe/Berlin").unwrap();
        let charts = all(&report, &zone).unwrap();
        assert_eq!(charts.len(), 4);
        let first = &charts[0].svg.svg;
        assert!(
            first.contains("Daily compliance (lowest 5 of 12 SLOs)"),
            "{first}"
        );
        assert!(first.contains("probe:web-frontend:availability"));
        assert!(first.contains("target 95 %") || first.contains("target of"));
        assert!(first.contains("Nov 0"), "dates on the x axis");
        assert!(charts[2].svg.svg.contains("critical · acknowledge"));
        assert!(charts[3].svg.svg.contains("95 % interval"));
    }

    #[test]
    fn render_charts_of_an_empty_report_say_no_data() {
        let mut report = test_support::report();
        report.compliance.clear();
        report.response.clear();
        report.forecast.clear();
        let charts = all(&report, &Zone::utc()).unwrap();
        assert!(charts[0].svg.svg.contains("No SLO had data in this period"));
        assert!(charts[2].svg.svg.contains("No incident was acknowledged"));
        assert!(charts[3].svg.svg.contains("Too little history"));
    }
}

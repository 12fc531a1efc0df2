//! Chart drawing with plotters into SVG strings: a time plot (lines, dashed reference lines,
//! shaded bands) and a horizontal box plot on a log scale. What to plot is `charts`' business;
//! this file only knows how to make it readable: a left-aligned title, axis descriptions with
//! units, few enough tick labels not to collide, the legend in its own strip under the plot (it
//! never hides a line), and a "no data" notice instead of an empty frame.
//!
//! Sizes are in SVG pixels; plotters writes `font-size = size / 1.24`, hence [`px`].

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::RenderError;
use super::format;
use crate::analytics::slo::Zone;

pub(super) const WIDTH: u32 = 720;
pub(super) const HEIGHT: u32 = 320;
const DAY_MS: f64 = 86_400_000.0;
const FONT: &str = "sans-serif";

/// Okabe–Ito: distinguishable with the common colour-vision deficiencies, and in greyscale
/// print by lightness.
pub(super) const PALETTE: [RGBColor; 6] = [
    RGBColor(0x00, 0x72, 0xb2),
    RGBColor(0xd5, 0x5e, 0x00),
    RGBColor(0x00, 0x9e, 0x73),
    RGBColor(0xcc, 0x79, 0xa7),
    RGBColor(0xe6, 0x9f, 0x00),
    RGBColor(0x56, 0xb4, 0xe9),
];
pub(super) const ALERT: RGBColor = RGBColor(0xa4, 0x0e, 0x26);
pub(super) const INK: RGBColor = RGBColor(0x1f, 0x23, 0x28);
const MUTED: RGBColor = RGBColor(0x57, 0x60, 0x6a);
const GRID: RGBColor = RGBColor(0xe1, 0xe4, 0xe8);

/// A rendered chart: its SVG and a sentence saying what it shows (the HTML's `aria-label`).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Svg {
    pub svg: String,
    pub width: u32,
    pub height: u32,
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type Drawn = Result<(), Box<dyn std::error::Error>>;

/// Font size argument for plotters that comes out as `size` SVG pixels.
fn px(size: f64) -> f64 {
    size * 1.24
}

fn style(size: f64, color: &'static RGBColor) -> TextStyle<'static> {
    TextStyle::from((FONT, px(size)).into_font()).color(color)
}

/// One line of the plot: points may be missing (a day without data breaks the line).
pub(super) struct Line {
    pub name: String,
    pub color: RGBColor,
    pub points: Vec<(i64, Option<f64>)>,
    pub dashed: bool,
    /// A shaded band (lower, upper) around the line, e.g. a 95 % interval.
    pub band: Vec<(i64, f64, f64)>,
}

/// A horizontal reference line across the plot: a target, zero budget.
pub(super) struct Rule {
    pub name: String,
    pub value: f64,
    pub color: RGBColor,
}

pub(super) struct TimePlot<'z> {
    pub title: String,
    pub y_desc: &'static str,
    pub lines: Vec<Line>,
    pub rules: Vec<Rule>,
    pub zone: &'z Zone,
    /// Y values never go beyond these, however the data falls (e.g. 0..100 %).
    pub y_bounds: (f64, f64),
    /// Values the axis must include (e.g. 100 % and the target).
    pub y_include: Vec<f64>,
    /// Appended to the y tick labels: " %".
    pub y_unit: &'static str,
    pub no_data: &'static str,
}

/// How a legend entry's sample is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mark {
    Line,
    Dashed,
    /// A filled box with its outline (a box plot's box, a shaded band).
    Fill,
}

pub(super) struct LegendEntry {
    pub name: String,
    pub color: RGBColor,
    pub mark: Mark,
}

pub(super) fn time_plot(plot: &TimePlot) -> Result<Svg, RenderError> {
    let values = plot.lines.iter().flat_map(|l| {
        l.points
            .iter()
            .filter_map(|(t, v)| v.map(|v| (*t, v)))
            .chain(l.band.iter().flat_map(|(t, lo, hi)| [(*t, *lo), (*t, *hi)]))
    });
    let (mut t0, mut t1, mut y0, mut y1) = (i64::MAX, i64::MIN, f64::INFINITY, f64::NEG_INFINITY);
    for (t, v) in values.filter(|(_, v)| v.is_finite()) {
        t0 = t0.min(t);
        t1 = t1.max(t);
        y0 = y0.min(v);
        y1 = y1.max(v);
    }
    if t0 > t1 {
        return empty(&plot.title, plot.no_data);
    }
    if t0 == t1 {
        t0 -= DAY_MS as i64 / 2;
        t1 += DAY_MS as i64 / 2;
    }
    for v in plot
        .y_include
        .iter()
        .chain(plot.rules.iter().map(|r| &r.value))
    {
        y0 = y0.min(*v);
        y1 = y1.max(*v);
    }
    let pad = ((y1 - y0) * 0.08).max(0.05);
    let (lo, hi) = plot.y_bounds;
    let y0 = (y0 - pad).max(lo);
    let y1 = (y1 + pad).min(hi).max(y0 + 0.1);
    let span_days = (t1 - t0) as f64 / DAY_MS;
    let with_time = span_days <= 3.0;
    let x = |t: i64| (t - t0) as f64 / DAY_MS;
    let x_label = |d: &f64| {
        // Date labels sit on whole days from a local midnight; a DST day is an hour short or
        // long, so read the date a few hours in to stay on the intended day.
        let shift = if with_time { 0.0 } else { 3.0 * 3_600_000.0 };
        format::axis_date(t0 + (d * DAY_MS + shift) as i64, plot.zone, with_time)
    };
    let decimals = if y1 - y0 < 2.0 {
        2
    } else if y1 - y0 < 20.0 {
        1
    } else {
        0
    };
    let y_label = |v: &f64| format!("{v:.decimals$}{}", plot.y_unit);

    let mut legend: Vec<LegendEntry> = plot
        .lines
        .iter()
        .map(|l| LegendEntry {
            name: l.name.clone(),
            color: l.color,
            mark: if l.dashed { Mark::Dashed } else { Mark::Line },
        })
        .collect();
    legend.extend(plot.rules.iter().map(|r| LegendEntry {
        name: r.name.clone(),
        color: r.color,
        mark: Mark::Dashed,
    }));
    legend.extend(
        plot.lines
            .iter()
            .find(|l| !l.band.is_empty())
            .map(|l| LegendEntry {
                name: "95 % interval".to_owned(),
                color: l.color,
                mark: Mark::Fill,
            }),
    );
    let legend_h = legend_height(&legend);

    draw(HEIGHT + legend_h, &plot.title, |area| {
        let (chart_area, legend_area) = area.split_vertically(area.dim_in_pixel().1 - legend_h);
        let mut chart = ChartBuilder::on(&chart_area)
            .margin_left(8)
            .margin_right(22)
            .margin_top(8)
            .x_label_area_size(42)
            .y_label_area_size(74)
            .build_cartesian_2d(0.0..x(t1), y0..y1)?;
        chart
            .configure_mesh()
            .x_labels((WIDTH / 100) as usize)
            .y_labels(6)
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label)
            .x_desc(if with_time { "Time" } else { "Date" })
            .y_desc(plot.y_desc)
            .label_style(style(12.0, &INK))
            .axis_desc_style(style(12.0, &MUTED))
            .light_line_style(TRANSPARENT)
            .bold_line_style(GRID)
            .axis_style(MUTED)
            .draw()?;
        for line in &plot.lines {
            if !line.band.is_empty() {
                let mut outline: Vec<(f64, f64)> = line
                    .band
                    .iter()
                    .map(|(t, _, hi)| (x(*t), hi.min(y1)))
                    .collect();
                outline.extend(line.band.iter().rev().map(|(t, lo, _)| (x(*t), lo.max(y0))));
                chart.draw_series(std::iter::once(Polygon::new(
                    outline,
                    line.color.mix(0.18).filled(),
                )))?;
            }
        }
        for rule in &plot.rules {
            chart.draw_series(DashedLineSeries::new(
                [(0.0, rule.value), (x(t1), rule.value)],
                6,
                4,
                rule.color.stroke_width(2),
            ))?;
        }
        for line in &plot.lines {
            let stroke = line.color.stroke_width(2);
            for run in runs(&line.points) {
                // Beyond the axis bounds (a budget overspent 20 times) the line runs along the edge.
                let run: Vec<(f64, f64)> =
                    run.iter().map(|(t, v)| (x(*t), v.clamp(y0, y1))).collect();
                if run.len() == 1 {
                    chart
                        .draw_series(run.iter().map(|p| Circle::new(*p, 3, line.color.filled())))?;
                } else if line.dashed {
                    chart.draw_series(DashedLineSeries::new(run, 7, 4, stroke))?;
                } else {
                    chart.draw_series(LineSeries::new(run, stroke))?;
                }
            }
        }
        draw_legend(&legend_area, &legend)
    })
}

/// Runs of consecutive present values.
fn runs(points: &[(i64, Option<f64>)]) -> Vec<Vec<(i64, f64)>> {
    let mut runs = vec![Vec::new()];
    for (t, v) in points {
        match v.filter(|v| v.is_finite()) {
            Some(v) => runs.last_mut().map(|r| r.push((*t, v))).unwrap_or(()),
            None => runs.push(Vec::new()),
        }
    }
    runs.retain(|r| !r.is_empty());
    runs
}

/// One row of the box plot: values in minutes.
pub(super) struct BoxRow {
    pub label: String,
    pub minutes: Vec<f64>,
    pub target_minutes: Option<f64>,
    pub color: RGBColor,
}

pub(super) fn box_plot(
    title: &str,
    rows: &[BoxRow],
    legend: &[LegendEntry],
    no_data: &str,
) -> Result<Svg, RenderError> {
    let rows: Vec<&BoxRow> = rows
        .iter()
        .filter(|r| r.minutes.iter().any(|v| v.is_finite()))
        .collect();
    if rows.is_empty() {
        return empty(title, no_data);
    }
    let finite = |r: &BoxRow| -> Vec<f64> {
        let mut v: Vec<f64> = r
            .minutes
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        v.sort_by(f64::total_cmp);
        v
    };
    let all = rows
        .iter()
        .flat_map(|r| finite(r).into_iter().chain(r.target_minutes));
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in all {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    // Log scale: a zero or sub-second time would stretch the axis to nothing; floor it.
    let lo = (lo * 0.7).max(0.1);
    let hi = (hi * 1.4).max(lo * 10.0);
    let n = rows.len();
    let legend_h = legend_height(legend);
    let height = 110 + 44 * n as u32 + legend_h;
    draw(height, title, |area| {
        let (chart_area, legend_area) = area.split_vertically(area.dim_in_pixel().1 - legend_h);
        let mut chart = ChartBuilder::on(&chart_area)
            .margin_left(8)
            .margin_right(22)
            .margin_top(8)
            .x_label_area_size(42)
            .y_label_area_size(190)
            .build_cartesian_2d((lo..hi).log_scale(), -0.6..(n as f64 - 0.4))?;
        chart
            .configure_mesh()
            .x_labels(0)
            .y_labels(0)
            .x_label_formatter(&|_| String::new())
            .set_tick_mark_size(LabelAreaPosition::Bottom, 0)
            .x_desc("Time (log scale)")
            .label_style(style(12.0, &INK))
            .axis_desc_style(style(12.0, &MUTED))
            .light_line_style(TRANSPARENT)
            .bold_line_style(GRID)
            .axis_style(MUTED)
            .disable_mesh()
            .draw()?;
        // plotters' log ticks fall on powers of ten ("1.7 h"); durations read better at the
        // round values people use for targets.
        for tick in duration_ticks(lo, hi) {
            chart.draw_series([PathElement::new(
                vec![(tick, -0.6), (tick, n as f64 - 0.4)],
                GRID.stroke_width(1),
            )])?;
            chart.draw_series(std::iter::once(
                EmptyElement::at((tick, -0.6))
                    + Text::new(
                        minutes_label(tick),
                        (0, 8),
                        style(12.0, &INK).pos(Pos::new(HPos::Center, VPos::Top)),
                    ),
            ))?;
        }
        for (i, row) in rows.iter().rev().enumerate() {
            let y = i as f64;
            let v = finite(row);
            let (Some(min), Some(max)) = (v.first().copied(), v.last().copied()) else {
                continue;
            };
            let (q1, median, q3) = (quantile(&v, 0.25), quantile(&v, 0.5), quantile(&v, 0.75));
            let line = row.color.stroke_width(2);
            // Row labels left of the plot, level with their box (a categorical axis).
            chart.draw_series(std::iter::once(
                EmptyElement::at((lo, y))
                    + Text::new(
                        row.label.clone(),
                        (-10, 0),
                        style(12.0, &INK).pos(Pos::new(HPos::Right, VPos::Center)),
                    ),
            ))?;
            chart.draw_series([
                PathElement::new(vec![(min.max(lo), y), (q1.max(lo), y)], line),
                PathElement::new(vec![(q3.max(lo), y), (max.max(lo), y)], line),
                PathElement::new(vec![(min.max(lo), y - 0.15), (min.max(lo), y + 0.15)], line),
                PathElement::new(vec![(max.max(lo), y - 0.15), (max.max(lo), y + 0.15)], line),
            ])?;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(q1.max(lo), y - 0.28), (q3.max(lo), y + 0.28)],
                row.color.mix(0.35).filled(),
            )))?;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(q1.max(lo), y - 0.28), (q3.max(lo), y + 0.28)],
                line,
            )))?;
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(median.max(lo), y - 0.28), (median.max(lo), y + 0.28)],
                INK.stroke_width(3),
            )))?;
            if let Some(target) = row.target_minutes {
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(target, y - 0.4), (target, y + 0.4)],
                    ALERT.stroke_width(3),
                )))?;
            }
        }
        draw_legend(&legend_area, legend)
    })
}

/// Linear-interpolated quantile of sorted values.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q * (sorted.len() - 1) as f64;
    let below = pos.floor() as usize;
    let above = pos.ceil() as usize;
    let frac = pos - below as f64;
    sorted[below] + (sorted[above] - sorted[below]) * frac
}

/// Round durations (in minutes) between `lo` and `hi`, thinned so neighbours on the log axis
/// stay at least a label's width apart.
fn duration_ticks(lo: f64, hi: f64) -> Vec<f64> {
    const NICE: [f64; 19] = [
        0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 240.0, 480.0, 720.0, 1440.0, 2880.0,
        4320.0, 10080.0, 20160.0, 43200.0, 86400.0,
    ];
    // The plot is about 480 px wide; a label needs about 70.
    let min_ratio = (hi / lo).ln() * 70.0 / 480.0;
    let mut ticks: Vec<f64> = Vec::new();
    for v in NICE.into_iter().filter(|v| (lo..=hi).contains(v)) {
        if ticks.last().is_none_or(|last| (v / last).ln() >= min_ratio) {
            ticks.push(v);
        }
    }
    ticks
}

/// A log-axis tick: "0.5 min", "10 min", "2 h", "3 d".
fn minutes_label(minutes: f64) -> String {
    let trim = |v: f64| {
        let s = format!("{v:.1}");
        s.trim_end_matches(".0").to_owned()
    };
    if minutes < 60.0 {
        format!("{} min", trim(minutes))
    } else if minutes < 2880.0 {
        format!("{} h", trim(minutes / 60.0))
    } else {
        format!("{} d", trim(minutes / 1440.0))
    }
}

/// A chart frame that says there is nothing to plot.
pub(super) fn empty(title: &str, message: &str) -> Result<Svg, RenderError> {
    draw(140, title, |area| {
        let (w, h) = area.dim_in_pixel();
        area.draw(&Rectangle::new(
            [(8, 4), (w as i32 - 8, h as i32 - 8)],
            GRID.stroke_width(1),
        ))?;
        area.draw_text(
            message,
            &style(14.0, &MUTED).pos(Pos::new(HPos::Center, VPos::Center)),
            (w as i32 / 2, h as i32 / 2),
        )?;
        Ok(())
    })
}

/// The SVG document: white ground, title top left, `body` below it.
fn draw(height: u32, title: &str, body: impl FnOnce(&Area) -> Drawn) -> Result<Svg, RenderError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        let result: Drawn = (|| {
            root.fill(&WHITE)?;
            root.draw_text(
                title,
                &TextStyle::from((FONT, px(16.0), FontStyle::Bold).into_font()).color(&INK),
                (12, 10),
            )?;
            let (_, below) = root.split_vertically(36);
            body(&below)?;
            root.present()?;
            Ok(())
        })();
        result.map_err(|e| RenderError::Chart(format!("{title}: {e}")))?;
    }
    Ok(Svg {
        svg,
        width: WIDTH,
        height,
    })
}

const LEGEND_ROW: u32 = 20;

/// Legend entries flow left to right in rows; the width of a name is estimated from its length
/// (SVG text has no metrics here), generously, so neighbours never touch.
fn legend_layout(entries: &[LegendEntry]) -> Vec<(i32, i32)> {
    let mut positions = Vec::with_capacity(entries.len());
    let (mut x, mut row) = (16_i32, 0_i32);
    for entry in entries {
        let w = 38 + (entry.name.chars().count() as i32 * 7);
        if x > 16 && x + w > WIDTH as i32 - 12 {
            x = 16;
            row += 1;
        }
        positions.push((x, row));
        x += w + 18;
    }
    positions
}

fn legend_height(entries: &[LegendEntry]) -> u32 {
    let rows = legend_layout(entries)
        .last()
        .map(|(_, row)| *row as u32 + 1)
        .unwrap_or(0);
    rows * LEGEND_ROW + 8
}

fn draw_legend(area: &Area, entries: &[LegendEntry]) -> Drawn {
    for (entry, (x, row)) in entries.iter().zip(legend_layout(entries)) {
        let y = row * LEGEND_ROW as i32 + LEGEND_ROW as i32 / 2;
        let stroke = entry.color.stroke_width(3);
        match entry.mark {
            Mark::Line => area.draw(&PathElement::new(vec![(x, y), (x + 26, y)], stroke))?,
            Mark::Dashed => {
                area.draw(&PathElement::new(vec![(x, y), (x + 10, y)], stroke))?;
                area.draw(&PathElement::new(vec![(x + 16, y), (x + 26, y)], stroke))?;
            }
            Mark::Fill => {
                area.draw(&Rectangle::new(
                    [(x, y - 6), (x + 26, y + 6)],
                    entry.color.mix(0.35).filled(),
                ))?;
                area.draw(&Rectangle::new(
                    [(x, y - 6), (x + 26, y + 6)],
                    entry.color.stroke_width(1),
                ))?;
            }
        }
        area.draw_text(
            &entry.name,
            &style(12.0, &INK).pos(Pos::new(HPos::Left, VPos::Center)),
            (x + 34, y),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_plot_quantiles_and_labels() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(quantile(&v, 0.5), 3.0);
        assert_eq!(quantile(&v, 0.25), 2.0);
        assert_eq!(quantile(&[1.0, 2.0], 0.5), 1.5);
        assert_eq!(minutes_label(0.5), "0.5 min");
        assert_eq!(minutes_label(10.0), "10 min");
        assert_eq!(minutes_label(120.0), "2 h");
        assert_eq!(minutes_label(4320.0), "3 d");
        assert_eq!(duration_ticks(3.0, 2000.0), [5.0, 15.0, 60.0, 240.0, 720.0]);
    }

    #[test]
    fn render_plot_runs_break_at_gaps() {
        let r = runs(&[(1, Some(1.0)), (2, None), (3, Some(2.0)), (4, Some(3.0))]);
        assert_eq!(r, vec![vec![(1, 1.0)], vec![(3, 2.0), (4, 3.0)]]);
    }

    #[test]
    fn render_plot_empty_inputs_say_no_data() {
        let zone = Zone::utc();
        let plot = TimePlot {
            title: "Compliance".to_owned(),
            y_desc: "Compliance (%)",
            lines: vec![Line {
                name: "a".to_owned(),
                color: PALETTE[0],
                points: vec![(0, None)],
                dashed: false,
                band: vec![],
            }],
            rules: vec![],
            zone: &zone,
            y_bounds: (0.0, 100.0),
            y_include: vec![100.0],
            y_unit: " %",
            no_data: "No data in this period",
        };
        let svg = time_plot(&plot).unwrap().svg;
        assert!(svg.contains("No data in this period"), "{svg}");
        let svg = box_plot("Response", &[], &[], "No incidents").unwrap().svg;
        assert!(svg.contains("No incidents"));
    }

    #[test]
    fn render_plot_single_point_is_drawn() {
        let zone = Zone::utc();
        let plot = TimePlot {
            title: "Compliance".to_owned(),
            y_desc: "Compliance (%)",
            lines: vec![Line {
                name: "a".to_owned(),
                color: PALETTE[0],
                points: vec![(1_700_000_000_000, Some(99.0))],
                dashed: false,
                band: vec![],
            }],
            rules: vec![],
            zone: &zone,
            y_bounds: (0.0, 100.0),
            y_include: vec![],
            y_unit: " %",
            no_data: "none",
        };
        let svg = time_plot(&plot).unwrap().svg;
        assert!(svg.contains("<circle"), "{svg}");
    }
}

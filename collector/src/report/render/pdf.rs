//! PDF: A4, made inside the binary with krilla (no browser, no service). The layout
//! (`pdf_layout`) places everything first; then each page is drawn, with "page N of M" in the
//! footer. Text is real text in the embedded DejaVu Sans, so `pdftotext` and screen readers get
//! it, charts' text included (krilla-svg embeds it as text, resolved through our own font
//! database). The document carries its title and creation date.

use krilla::Document;
use krilla::color::rgb;
use krilla::destination::XyzDestination;
use krilla::geom::{PathBuilder, Point, Rect, Size, Transform};
use krilla::metadata::{DateTime, Metadata};
use krilla::num::NormalizedF32;
use krilla::outline::{Outline, OutlineNode};
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::surface::Surface;
use krilla::text::{Font, TextDirection};
use krilla_svg::{SurfaceExt, SvgSettings};

use crate::analytics::slo::Zone;
use crate::report::model::Report;

use super::RenderError;
use super::charts::{self, Chart, Place};
use super::fonts::{self, Metrics};
use super::format;
use super::html::{COVERAGE_NOTE, PATTERNS_NOTE, TRENDS_NOTE, incident_facts, policies, tiles};
use super::pdf_layout::{CONTENT_W, Flow, INK, MARGIN_X, MUTED, Op, PAGE_H, PAGE_W, Rgb, Tile};
use super::tables::{self, Audience};

/// Space a heading keeps with it: a chart or a few table rows.
const KEEP: f32 = 60.0;

fn section(flow: &mut Flow, title: &str) {
    flow.heading(title, 15.0, KEEP);
}

/// A section heading kept with the first chart of `place` (or a few rows when it has none).
fn chart_section(flow: &mut Flow, title: &str, charts: &[Chart], place: Place) {
    let keep = charts.iter().find(|c| c.place == place).map_or(KEEP, |c| {
        CONTENT_W * c.svg.height as f32 / c.svg.width as f32
    });
    flow.heading(title, 15.0, keep);
}

fn charts_at(flow: &mut Flow, charts: &[Chart], place: Place) {
    for (i, chart) in charts.iter().enumerate().filter(|(_, c)| c.place == place) {
        flow.chart(i, chart.svg.width as f32, chart.svg.height as f32);
        flow.paragraph(&chart.caption, 8.0, MUTED);
        flow.space(6.0);
    }
}

/// The report laid out on pages.
fn layout(report: &Report, zone: &Zone, metrics: &Metrics, charts: &[Chart]) -> Vec<Vec<Op>> {
    let mut flow = Flow::new(metrics);
    let s = &report.sections;
    let who = Audience::People;
    flow.paragraph(
        &format!("{} SLA report", report.kind.label()).to_uppercase(),
        8.5,
        MUTED,
    );
    flow.heading(&report.title, 20.0, 0.0);
    flow.facts(
        &[
            ("Period", format::window(report.window, zone)),
            ("Time zone", zone.name().to_owned()),
            ("Generated", format::datetime(report.generated_ms, zone)),
        ],
        9.5,
    );
    if s.summary || s.executive {
        section(
            &mut flow,
            if s.executive {
                "Executive summary"
            } else {
                "Summary"
            },
        );
        flow.paragraph(&report.summary.headline, 11.0, INK);
        flow.space(4.0);
        let tiles: Vec<Tile> = tiles(report)
            .into_iter()
            .map(|(value, label, tone)| Tile { value, label, tone })
            .collect();
        // Seven tiles do not fit one A4 row legibly: four, then three.
        let (first, second) = tiles.split_at(tiles.len().min(4));
        flow.tiles(first, 4);
        flow.tiles(second, 4);
    }
    if s.compliance {
        chart_section(&mut flow, "Compliance", charts, Place::Compliance);
        charts_at(&mut flow, charts, Place::Compliance);
        flow.table(&tables::compliance(report, who), true);
        flow.table(&tables::breaches(report, zone, who), true);
    }
    if s.response {
        chart_section(
            &mut flow,
            "Response and resolution",
            charts,
            Place::Response,
        );
        charts_at(&mut flow, charts, Place::Response);
        flow.table(&tables::response(report, who), true);
    }
    if s.incidents {
        section(&mut flow, "Incidents");
        flow.facts(&incident_facts(report, zone), 9.5);
        flow.table(&tables::by_node(report), true);
        flow.table(&tables::by_hour(report, who), true);
        flow.table(&tables::by_weekday(report, who), true);
        flow.table(&tables::incidents(report, zone), true);
    }
    if s.trends {
        section(&mut flow, "Trends");
        flow.paragraph(TRENDS_NOTE, 8.5, MUTED);
        flow.table(&tables::trends(report), false);
    }
    if s.coverage {
        section(&mut flow, "Data coverage");
        flow.paragraph(COVERAGE_NOTE, 8.5, MUTED);
        flow.table(&tables::coverage(report), false);
    }
    if s.patterns {
        section(&mut flow, "Patterns");
        flow.paragraph(PATTERNS_NOTE, 8.5, MUTED);
        flow.table(&tables::patterns(report, zone), false);
    }
    if s.forecast {
        chart_section(&mut flow, "Forecast", charts, Place::Forecast);
        charts_at(&mut flow, charts, Place::Forecast);
        flow.table(&tables::forecast(report, who), true);
    }
    if s.recommendations {
        section(&mut flow, "Recommendations");
        flow.table(&tables::recommendations(report), false);
    }
    section(&mut flow, "Counting policy");
    let policies = policies(report);
    if policies.is_empty() {
        flow.paragraph("No SLOs, so no counting policy applies.", 9.5, MUTED);
    }
    for (policy, n) in policies {
        let plural = if n == 1 { "" } else { "s" };
        flow.paragraph(&format!("{policy} ({n} SLO{plural})"), 9.5, INK);
    }
    flow.paragraph(
        &format!("Days, hours and weekdays are counted in {}.", zone.name()),
        9.5,
        INK,
    );
    flow.finish()
}

/// The PDF's creation date: the report's generation time, so the same report renders to the
/// same bytes.
fn creation_date(ms: i64) -> Option<DateTime> {
    let ts = jiff::Timestamp::from_millisecond(ms).ok()?;
    let utc = jiff::tz::TimeZone::UTC.to_datetime(ts);
    Some(
        DateTime::new(u16::try_from(utc.year()).ok()?)
            .month(u8::try_from(utc.month()).ok()?)
            .day(u8::try_from(utc.day()).ok()?)
            .hour(u8::try_from(utc.hour()).ok()?)
            .minute(u8::try_from(utc.minute()).ok()?)
            .second(u8::try_from(utc.second()).ok()?)
            .utc_offset_hour(0)
            .utc_offset_minute(0),
    )
}

fn color(c: Rgb) -> rgb::Color {
    rgb::Color::new(c.0, c.1, c.2)
}

fn fill(c: Rgb) -> Fill {
    Fill {
        paint: color(c).into(),
        opacity: NormalizedF32::ONE,
        rule: Default::default(),
    }
}

struct Faces {
    regular: Font,
    bold: Font,
}

/// One line of text with its baseline starting at `at`.
fn text(
    surface: &mut Surface,
    faces: &Faces,
    at: (f32, f32),
    size: f32,
    bold: bool,
    c: Rgb,
    t: &str,
) {
    surface.set_stroke(None);
    surface.set_fill(Some(fill(c)));
    let font = if bold { &faces.bold } else { &faces.regular };
    surface.draw_text(
        Point::from_xy(at.0, at.1),
        font.clone(),
        size,
        t,
        false,
        TextDirection::Auto,
    );
}

fn draw(surface: &mut Surface, faces: &Faces, trees: &[usvg::Tree], op: &Op) {
    match op {
        Op::Text {
            x,
            y,
            size,
            bold,
            color: c,
            text: t,
        } => text(surface, faces, (*x, *y), *size, *bold, *c, t),
        Op::Rect {
            x,
            y,
            w,
            h,
            color: c,
        } => {
            if let Some(rect) = Rect::from_xywh(*x, *y, *w, *h) {
                let mut path = PathBuilder::new();
                path.push_rect(rect);
                if let Some(path) = path.finish() {
                    surface.set_stroke(None);
                    surface.set_fill(Some(fill(*c)));
                    surface.draw_path(&path);
                }
            }
        }
        Op::Rule {
            x1,
            x2,
            y,
            color: c,
        } => {
            let mut path = PathBuilder::new();
            path.move_to(*x1, *y);
            path.line_to(*x2, *y);
            if let Some(path) = path.finish() {
                surface.set_fill(None);
                surface.set_stroke(Some(Stroke {
                    paint: color(*c).into(),
                    width: 0.5,
                    ..Stroke::default()
                }));
                surface.draw_path(&path);
            }
        }
        Op::Chart { index, x, y, w, h } => {
            if let (Some(tree), Some(size)) = (trees.get(*index), Size::from_wh(*w, *h)) {
                surface.push_transform(&Transform::from_translate(*x, *y));
                surface.draw_svg(tree, size, SvgSettings::default());
                surface.pop();
            }
        }
    }
}

pub(super) fn render(report: &Report) -> Result<Vec<u8>, RenderError> {
    let zone = format::zone(&report.timezone);
    let metrics = Metrics::new()?;
    let charts = charts::all(report, &zone)?;
    let options = fonts::svg_options();
    let trees = charts
        .iter()
        .map(|c| {
            usvg::Tree::from_str(&c.svg.svg, &options)
                .map_err(|e| RenderError::Chart(format!("reading its SVG back: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (regular, bold) = fonts::krilla_fonts()?;
    let faces = Faces { regular, bold };
    let pages = layout(report, &zone, &metrics, &charts);

    let mut document = Document::new();
    let mut metadata = Metadata::new()
        .title(report.title.clone())
        .description(format!(
            "{} SLA report, {} ({})",
            report.kind.label(),
            format::window(report.window, &zone),
            zone.name()
        ))
        .creator("hcmon".to_owned())
        .producer("hcmon (krilla)".to_owned())
        .language("en".to_owned());
    if let Some(date) = creation_date(report.generated_ms) {
        metadata = metadata.creation_date(date);
    }
    document.set_metadata(metadata);
    document.set_outline(outline(&pages));

    let total = pages.len();
    let footer_y = PAGE_H - 30.0;
    let settings = PageSettings::from_wh(PAGE_W, PAGE_H)
        .ok_or_else(|| RenderError::Pdf("the A4 page size was refused".to_owned()))?;
    for (n, ops) in pages.iter().enumerate() {
        let mut page = document.start_page_with(settings.clone());
        let mut surface = page.surface();
        for op in ops {
            draw(&mut surface, &faces, &trees, op);
        }
        let footer = format!("page {} of {total}", n + 1);
        let footer_w = metrics.width(&footer, 8.0, false);
        let title = fit_title(&metrics, &report.title, CONTENT_W - footer_w - 20.0);
        text(
            &mut surface,
            &faces,
            (MARGIN_X, footer_y),
            8.0,
            false,
            MUTED,
            &title,
        );
        text(
            &mut surface,
            &faces,
            (PAGE_W - MARGIN_X - footer_w, footer_y),
            8.0,
            false,
            MUTED,
            &footer,
        );
        surface.finish();
        page.finish();
    }
    document
        .finish()
        .map_err(|e| RenderError::Pdf(e.to_string()))
}

fn fit_title(metrics: &Metrics, title: &str, width: f32) -> String {
    let mut t = title.to_owned();
    while !t.is_empty() && metrics.width(&t, 8.0, false) > width {
        t.pop();
    }
    if t.len() < title.len() {
        t.push('…');
    }
    t
}

/// Bookmarks to the sections: the 15 pt bold headings the layout placed.
fn outline(pages: &[Vec<Op>]) -> Outline {
    let mut outline = Outline::new();
    for (index, page) in pages.iter().enumerate() {
        for op in page {
            if let Op::Text {
                y,
                size,
                bold: true,
                text,
                ..
            } = op
                && (*size - 15.0).abs() < f32::EPSILON
            {
                outline.push_child(OutlineNode::new(
                    text.clone(),
                    XyzDestination::new(index, Point::from_xy(0.0, (y - 20.0).max(0.0))),
                ));
            }
        }
    }
    outline
}

#[cfg(test)]
mod tests {
    use super::super::test_support;
    use super::*;

    #[test]
    fn render_pdf_is_a_pdf_with_pages() {
        let report = test_support::report();
        let pdf = render(&report).unwrap();
        assert!(pdf.starts_with(b"%PDF-"));
        let zone = format::zone(&report.timezone);
        let metrics = Metrics::new().unwrap();
        let charts = charts::all(&report, &zone).unwrap();
        let pages = layout(&report, &zone, &metrics, &charts);
        assert!(pages.len() >= 4, "{}", pages.len());
        assert!(pages.iter().all(|p| !p.is_empty()), "no empty page");
    }

    #[test]
    fn render_pdf_chart_text_resolves_to_the_embedded_font() {
        let report = test_support::report();
        let zone = format::zone(&report.timezone);
        let charts = charts::all(&report, &zone).unwrap();
        let options = fonts::svg_options();
        let tree = usvg::Tree::from_str(&charts[0].svg.svg, &options).unwrap();
        // usvg drops text it has no font for; laid-out text shows up as text nodes with spans.
        fn count_text(group: &usvg::Group) -> usize {
            group
                .children()
                .iter()
                .map(|node| match node {
                    usvg::Node::Text(t) => t.layouted().len(),
                    usvg::Node::Group(g) => count_text(g),
                    _ => 0,
                })
                .sum()
        }
        assert!(count_text(tree.root()) > 10);
    }

    /// Poppler reads what we wrote: the figures, the chart text and the page numbers come out of
    /// `pdftotext`, and `pdftoppm` rasterises every page.
    #[test]
    fn render_pdf_opens_in_poppler_with_the_figures() {
        let tool = |name: &str| std::process::Command::new(name).arg("-v").output().is_ok();
        if !tool("pdftotext") || !tool("pdftoppm") {
            eprintln!("skipped: pdftotext/pdftoppm missing (apt-get install poppler-utils)");
            return;
        }
        let report = test_support::report();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.pdf");
        std::fs::write(&path, render(&report).unwrap()).unwrap();
        let out = std::process::Command::new("pdftotext")
            .args(["-layout"])
            .arg(&path)
            .arg("-")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        for needle in [
            "Monthly SLA report: November 2026",
            "2026-11-01 to 2026-11-30",
            "96.32 %",
            "probe:web-frontend:availability",
            "breached",
            "Daily compliance (lowest 5 of 12 SLOs)",
            "Compliance (%)",
            "Budget left (%)",
            "Time (log scale)",
            "critical · acknowledge",
            "Counting policy",
            "page 1 of",
        ] {
            assert!(
                text.contains(needle),
                "{needle:?} not in the PDF's text:\n{text}"
            );
        }
        let pages = text.matches("page ").filter(|_| true).count();
        assert!(pages >= 4, "{pages}");
        let status = std::process::Command::new("pdftoppm")
            .args(["-r", "60", "-png"])
            .arg(&path)
            .arg(dir.path().join("page"))
            .status()
            .unwrap();
        assert!(status.success());
        let pngs = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "png"))
            })
            .count();
        assert!(pngs >= 4, "{pngs}");
    }

    #[test]
    fn render_pdf_creation_date_is_the_generation_time() {
        // 2026-12-01T00:01:30Z
        let date = creation_date(1_796_083_290_000).unwrap();
        assert_eq!(
            date,
            DateTime::new(2026)
                .month(12)
                .day(1)
                .hour(0)
                .minute(1)
                .second(30)
                .utc_offset_hour(0)
                .utc_offset_minute(0)
        );
    }
}

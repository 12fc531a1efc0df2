//! HTML: one self-contained file (inline CSS, charts as inline SVG, no scripts, no external
//! requests), so it can be mailed as a body, saved, or printed. Readable on a phone (375 px:
//! wide tables scroll inside their box, charts scale) and on a desktop; printed, tables repeat
//! their header on every page and rows are not split. Every text from the report is escaped.

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::analytics::slo::Zone;
use crate::report::model::Report;

use super::RenderError;
use super::charts::{self, Chart, Place};
use super::format;
use super::table::{Table, Tone};
use super::tables::{self, Audience};

const CSS: &str = r#"
:root { --ink:#1f2328; --muted:#57606a; --rule:#d0d7de; --head:#e6eaef; --zebra:#f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 15px/1.45 "DejaVu Sans", "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 20px 40px; }
h1 { font-size: 1.6em; margin: 0.1em 0 0.2em; }
h2 { font-size: 1.25em; margin: 1.8em 0 0.5em; padding-bottom: 0.2em; border-bottom: 2px solid var(--rule); }
h3 { font-size: 1.05em; margin: 1.3em 0 0.4em; }
p { margin: 0.4em 0; }
.kind { text-transform: uppercase; letter-spacing: 0.08em; color: var(--muted); font-size: 0.8em; margin: 0; }
.meta { color: var(--muted); font-size: 0.9em; }
.headline { font-size: 1.1em; font-weight: bold; }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(140px, 1fr)); gap: 8px; margin: 12px 0; }
.tile { background: var(--zebra); padding: 10px 12px; border-radius: 6px; }
.tile b { display: block; font-size: 1.45em; line-height: 1.2; }
.tile span { color: var(--muted); font-size: 0.85em; }
figure { margin: 16px 0; break-inside: avoid; overflow-x: auto; }
figure svg { display: block; width: 100%; min-width: 600px; max-width: 900px; height: auto; }
figcaption { color: var(--muted); font-size: 0.85em; }
.scroll { overflow-x: auto; margin: 6px 0 12px; }
table { border-collapse: collapse; width: 100%; font-size: 0.85em; }
th, td { padding: 4px 7px; text-align: left; vertical-align: top; border-bottom: 1px solid var(--rule); }
th { background: var(--head); }
td.n, th.n { text-align: right; white-space: nowrap; }
td.s { white-space: nowrap; }
tbody tr:nth-child(even) td { background: var(--zebra); }
tbody tr:nth-child(even) td.good, td.good { background: #dafbe1; color: #116329; font-weight: bold; }
tbody tr:nth-child(even) td.warn, td.warn { background: #fff1b8; color: #7d4e00; font-weight: bold; }
tbody tr:nth-child(even) td.bad, td.bad { background: #ffe1dd; color: #a40e26; font-weight: bold; }
tbody tr:nth-child(even) td.muted, td.muted { background: #eaeef2; color: var(--muted); }
.tile.good { background: #dafbe1; } .tile.warn { background: #fff1b8; } .tile.bad { background: #ffe1dd; }
.empty { color: var(--muted); font-style: italic; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 6px 0; }
dl.facts dt { color: var(--muted); font-weight: bold; } dl.facts dd { margin: 0; }
footer { margin-top: 32px; color: var(--muted); font-size: 0.8em; border-top: 1px solid var(--rule); padding-top: 8px; }
@media (max-width: 600px) { main { padding: 14px 10px 28px; } body { font-size: 14px; } h1 { font-size: 1.3em; } }
@media print {
  @page { size: A4; margin: 16mm 14mm; }
  body { font-size: 10pt; } main { max-width: none; padding: 0; }
  .scroll { overflow: visible; } thead { display: table-header-group; } tr { break-inside: avoid; }
  h2, h3 { break-after: avoid; }
}
"#;

/// How to read the trends table (it has no title of its own).
/// How to read the data-coverage table.
pub(super) const COVERAGE_NOTE: &str = "Per node, the share of its expected samples that arrived (completeness at each series' interval) and the mean, lowest and below-threshold share of its overall data-quality score, from the collector's evaluations over the window. Figures above rest on this data.";
pub(super) const TRENDS_NOTE: &str = "Slopes over the last 30 days of daily values (least squares); a direction is called only when the slope is significant (p < 0.05).";
/// How to read the patterns table.
pub(super) const PATTERNS_NOTE: &str = "Alerts on the same node that started at least 3 times at the same hour of day or on the same weekday.";

/// Cells up to this many characters do not wrap (a time, a name), as in the PDF.
const SHORT: usize = 18;

/// Text made safe for HTML content and attribute values.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A table under an `<h3>` of its title, or under the section's `<h2>` (`titled` false).
fn table(out: &mut String, table: &Table, titled: bool) {
    if titled {
        let _ = write!(out, "<h3>{}</h3>", escape(table.title));
    }
    if table.rows.is_empty() {
        let _ = write!(out, "<p class=\"empty\">{}</p>", escape(table.empty));
        return;
    }
    out.push_str("<div class=\"scroll\"><table><thead><tr>");
    for c in &table.columns {
        let class = if c.numeric { " class=\"n\"" } else { "" };
        let _ = write!(out, "<th{class} scope=\"col\">{}</th>", escape(c.header));
    }
    out.push_str("</tr></thead><tbody>");
    for row in &table.rows {
        out.push_str("<tr>");
        for (cell, column) in row.iter().zip(&table.columns) {
            let mut classes = Vec::new();
            if column.numeric {
                classes.push("n");
            } else if cell.text.chars().count() <= SHORT {
                classes.push("s");
            }
            if cell.tone != Tone::Plain {
                classes.push(cell.tone.class());
            }
            if classes.is_empty() {
                let _ = write!(out, "<td>{}</td>", escape(&cell.text));
            } else {
                let _ = write!(
                    out,
                    "<td class=\"{}\">{}</td>",
                    classes.join(" "),
                    escape(&cell.text)
                );
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
}

/// A chart inline: the SVG's fixed size dropped so CSS scales it by its viewBox.
fn figure(out: &mut String, chart: &Chart) {
    let svg = &chart.svg.svg;
    let sized = format!(
        "width=\"{}\" height=\"{}\"",
        chart.svg.width, chart.svg.height
    );
    let svg = svg.replacen(
        &sized,
        "role=\"img\" preserveAspectRatio=\"xMidYMid meet\"",
        1,
    );
    let _ = write!(
        out,
        "<figure>{svg}<figcaption>{}</figcaption></figure>",
        escape(&chart.caption)
    );
}

fn figures(out: &mut String, charts: &[Chart], place: Place) {
    for chart in charts.iter().filter(|c| c.place == place) {
        figure(out, chart);
    }
}

/// Key figures of the summary as (value, label, tone); shared with the PDF.
pub(super) fn tiles(report: &Report) -> Vec<(String, String, Tone)> {
    let s = &report.summary;
    let tone = |bad: bool, good: bool| {
        if bad {
            Tone::Bad
        } else if good {
            Tone::Good
        } else {
            Tone::Plain
        }
    };
    vec![
        (
            format!("{} of {}", s.met, s.slos),
            "SLOs met".to_owned(),
            tone(false, s.slos > 0 && s.met == s.slos),
        ),
        (
            s.breached.to_string(),
            "breached".to_owned(),
            tone(s.breached > 0, false),
        ),
        (
            s.warning.to_string(),
            "in warning".to_owned(),
            if s.warning > 0 {
                Tone::Warn
            } else {
                Tone::Plain
            },
        ),
        (s.incidents.to_string(), "incidents".to_owned(), Tone::Plain),
        (
            format::duration(s.mtta_ms),
            "mean time to acknowledge".to_owned(),
            Tone::Plain,
        ),
        (
            format::duration(s.mttr_ms),
            "mean time to resolve".to_owned(),
            Tone::Plain,
        ),
        (
            format::percent(s.coverage),
            "data coverage".to_owned(),
            Tone::Plain,
        ),
    ]
}

/// The counting policies of the report's SLOs, each with how many SLOs follow it.
pub(super) fn policies(report: &Report) -> Vec<(String, usize)> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for row in &report.compliance {
        *counts.entry(row.policy.as_str()).or_default() += 1;
    }
    let mut policies: Vec<(String, usize)> =
        counts.into_iter().map(|(p, n)| (p.to_owned(), n)).collect();
    policies.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    policies
}

/// Facts about the incidents as (label, value); shared with the PDF.
pub(super) fn incident_facts(report: &Report, zone: &Zone) -> Vec<(&'static str, String)> {
    let mut facts = vec![("Incidents", report.incidents.count.to_string())];
    if let Some(inc) = &report.incidents.longest {
        let node = inc
            .node
            .as_deref()
            .map(|n| format!(" on {n}"))
            .unwrap_or_default();
        facts.push((
            "Longest",
            format!(
                "{} ({}){node}, {}, started {} ({})",
                inc.alert,
                inc.severity.name(),
                format::duration(Some(inc.duration_ms as f64)),
                format::datetime(inc.started_ms, zone),
                inc.id
            ),
        ));
    }
    facts
}

pub(super) fn render(report: &Report) -> Result<String, RenderError> {
    let zone = format::zone(&report.timezone);
    let charts = charts::all(report, &zone)?;
    let s = &report.sections;
    let who = Audience::People;
    let mut out = String::with_capacity(256 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"generator\" content=\"hcmon\"><title>{}</title><style>{CSS}</style></head><body><main>",
        escape(&report.title)
    );
    let _ = write!(
        out,
        "<header><p class=\"kind\">{} SLA report</p><h1>{}</h1>\
         <p class=\"meta\">Period: <b>{}</b> (time zone {}) · generated {}</p></header>",
        escape(report.kind.label()),
        escape(&report.title),
        escape(&format::window(report.window, &zone)),
        escape(zone.name()),
        escape(&format::datetime(report.generated_ms, &zone)),
    );
    if s.summary || s.executive {
        let heading = if s.executive {
            "Executive summary"
        } else {
            "Summary"
        };
        let _ = write!(
            out,
            "<section id=\"summary\"><h2>{heading}</h2><p class=\"headline\">{}</p><div class=\"tiles\">",
            escape(&report.summary.headline)
        );
        for (value, label, tone) in tiles(report) {
            let _ = write!(
                out,
                "<div class=\"tile {}\"><b>{}</b><span>{}</span></div>",
                tone.class(),
                escape(&value),
                escape(&label)
            );
        }
        out.push_str("</div></section>");
    }
    if s.compliance {
        out.push_str("<section id=\"compliance\"><h2>Compliance</h2>");
        figures(&mut out, &charts, Place::Compliance);
        table(&mut out, &tables::compliance(report, who), true);
        table(&mut out, &tables::breaches(report, &zone, who), true);
        out.push_str("</section>");
    }
    if s.response {
        out.push_str("<section id=\"response\"><h2>Response and resolution</h2>");
        figures(&mut out, &charts, Place::Response);
        table(&mut out, &tables::response(report, who), true);
        out.push_str("</section>");
    }
    if s.incidents {
        out.push_str("<section id=\"incidents\"><h2>Incidents</h2><dl class=\"facts\">");
        for (label, value) in incident_facts(report, &zone) {
            let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", escape(label), escape(&value));
        }
        out.push_str("</dl>");
        table(&mut out, &tables::by_node(report), true);
        table(&mut out, &tables::by_hour(report, who), true);
        table(&mut out, &tables::by_weekday(report, who), true);
        table(&mut out, &tables::incidents(report, &zone), true);
        out.push_str("</section>");
    }
    if s.trends {
        let _ = write!(
            out,
            "<section id=\"trends\"><h2>Trends</h2><p class=\"meta\">{}</p>",
            escape(TRENDS_NOTE)
        );
        table(&mut out, &tables::trends(report), false);
        out.push_str("</section>");
    }
    if s.coverage {
        let _ = write!(
            out,
            "<section id=\"coverage\"><h2>Data coverage</h2><p class=\"meta\">{}</p>",
            escape(COVERAGE_NOTE)
        );
        table(&mut out, &tables::coverage(report), false);
        out.push_str("</section>");
    }
    if s.patterns {
        let _ = write!(
            out,
            "<section id=\"patterns\"><h2>Patterns</h2><p class=\"meta\">{}</p>",
            escape(PATTERNS_NOTE)
        );
        table(&mut out, &tables::patterns(report, &zone), false);
        out.push_str("</section>");
    }
    if s.forecast {
        out.push_str("<section id=\"forecast\"><h2>Forecast</h2>");
        figures(&mut out, &charts, Place::Forecast);
        table(&mut out, &tables::forecast(report, who), true);
        out.push_str("</section>");
    }
    if s.recommendations {
        out.push_str("<section id=\"recommendations\"><h2>Recommendations</h2>");
        table(&mut out, &tables::recommendations(report), false);
        out.push_str("</section>");
    }
    out.push_str("<section id=\"policy\"><h2>Counting policy</h2>");
    let policies = policies(report);
    if policies.is_empty() {
        out.push_str("<p class=\"empty\">No SLOs, so no counting policy applies.</p>");
    }
    for (policy, n) in policies {
        let _ = write!(
            out,
            "<p>{} <span class=\"meta\">({n} SLO{})</span></p>",
            escape(&policy),
            if n == 1 { "" } else { "s" }
        );
    }
    let _ = write!(
        out,
        "<p>Days, hours and weekdays are counted in {}.</p></section>",
        escape(zone.name())
    );
    let _ = writeln!(
        out,
        "<footer>{} · {} · generated by hcmon at {}</footer></main></body></html>",
        escape(&report.title),
        escape(&format::window(report.window, &zone)),
        escape(&format::datetime(report.generated_ms, &zone)),
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::test_support;
    use super::*;

    #[test]
    fn render_html_is_self_contained_with_every_section() {
        let report = test_support::report();
        let html = render(&report).unwrap();
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert_eq!(html.matches("<svg").count(), 4, "four inline charts");
        assert!(!html.contains("<script"));
        assert!(!html.contains("src=\"http"));
        assert!(!html.contains("href=\"http"));
        for text in [
            "Monthly SLA report: November 2026",
            "2026-11-01 to 2026-11-30",
            "Europe/Berlin",
            "Executive summary",
            "Compliance per SLO",
            "probe:api-gateway.internal.example.com:availability",
            "96.32 %",
            "breached",
            "Response and resolution times",
            "Incidents (newest first)",
            "Slopes over the last 30 days",
            "Forecast per SLO",
            "at least 3 times",
            "Forecast",
            "Recommendations",
            "Counting policy",
            "maintenance windows",
        ] {
            assert!(html.contains(text), "{text} missing");
        }
        // The compliance table's status cell carries colour and the word.
        assert!(html.contains("<td class=\"s bad\">breached</td>"));
    }

    #[test]
    fn render_html_escapes_report_text() {
        let mut report = test_support::report();
        report.title = "<script>alert('x')</script> & co".to_owned();
        report.compliance[0].name = "probe:<b>evil</b>".to_owned();
        let html = render(&report).unwrap();
        assert!(!html.contains("<script>alert"));
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co"));
        assert!(!html.contains("<b>evil</b>"));
    }

    #[test]
    fn render_html_of_an_empty_report_says_so() {
        let mut report = test_support::report();
        report.compliance.clear();
        report.response.clear();
        report.incidents = Default::default();
        report.trends.clear();
        report.patterns.clear();
        report.forecast.clear();
        report.recommendations.clear();
        let html = render(&report).unwrap();
        assert!(html.contains("No SLOs are defined."));
        assert!(html.contains("No incidents in this period."));
        assert!(html.contains("No SLO had data in this period"));
    }
}

//! Rendering a [`Report`] for people and programs: PDF (made here, with krilla, no browser),
//! self-contained HTML, CSV of every table, and JSON of the report itself.
//!
//! Architecture invariant: rendering is pure. A report renders to the same bytes whatever the
//! host's fonts, locale or clock (the PDF's creation date is the report's generation time);
//! the only inputs are the report and the fonts compiled into the binary.
//!
//! The formats share their pieces so they cannot disagree: `tables` turns the report into
//! [`table::Table`]s (HTML, PDF and CSV draw those), `charts` into SVG charts (inline in the HTML,
//! drawn as vectors with selectable text in the PDF), `format` words every figure.

mod charts;
mod csv;
mod fonts;
mod format;
mod html;
mod pdf;
mod pdf_layout;
mod plot;
mod table;
mod tables;
#[cfg(test)]
mod test_support;

use std::fmt;
use std::str::FromStr;

use super::model::Report;

/// An output format of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportFormat {
    Pdf,
    Html,
    Csv,
    Json,
}

impl ReportFormat {
    pub const ALL: [ReportFormat; 4] = [
        ReportFormat::Pdf,
        ReportFormat::Html,
        ReportFormat::Csv,
        ReportFormat::Json,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReportFormat::Pdf => "pdf",
            ReportFormat::Html => "html",
            ReportFormat::Csv => "csv",
            ReportFormat::Json => "json",
        }
    }

    /// The HTTP `Content-Type` of the rendered bytes.
    pub fn content_type(self) -> &'static str {
        match self {
            ReportFormat::Pdf => "application/pdf",
            ReportFormat::Html => "text/html; charset=utf-8",
            ReportFormat::Csv => "text/csv; charset=utf-8",
            ReportFormat::Json => "application/json",
        }
    }

    /// File name extension, without the dot.
    pub fn extension(self) -> &'static str {
        self.as_str()
    }
}

impl fmt::Display for ReportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A format name that is not one of pdf, html, csv, json.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown report format {0:?}: expected one of pdf, html, csv, json")]
pub struct UnknownFormat(pub String);

impl FromStr for ReportFormat {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ReportFormat::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownFormat(s.to_owned()))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("drawing the chart {0}")]
    Chart(String),
    #[error("loading the embedded font: {0}")]
    Font(String),
    #[error("writing the PDF: {0}")]
    Pdf(String),
    #[error("writing the CSV: {0}")]
    Csv(String),
    #[error("writing the JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// The report as bytes of `format`.
pub fn render(report: &Report, format: ReportFormat) -> Result<Vec<u8>, RenderError> {
    match format {
        ReportFormat::Pdf => pdf::render(report),
        ReportFormat::Html => html::render(report).map(String::into_bytes),
        ReportFormat::Csv => csv::render(report),
        ReportFormat::Json => Ok(serde_json::to_vec_pretty(report)?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_format_names_round_trip() {
        for format in ReportFormat::ALL {
            assert_eq!(format.as_str().parse::<ReportFormat>().unwrap(), format);
            assert_eq!(format.extension(), format.to_string());
        }
        assert_eq!("PDF".parse::<ReportFormat>().unwrap(), ReportFormat::Pdf);
        let err = "docx".parse::<ReportFormat>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown report format \"docx\": expected one of pdf, html, csv, json"
        );
        assert_eq!(ReportFormat::Pdf.content_type(), "application/pdf");
        assert_eq!(
            ReportFormat::Html.content_type(),
            "text/html; charset=utf-8"
        );
    }

    #[test]
    fn render_json_is_the_report() {
        let report = test_support::report();
        let bytes = render(&report, ReportFormat::Json).unwrap();
        let back: Report = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(back.title, report.title);
        assert_eq!(back.compliance.len(), 12);
        // Compared as parsed text on both sides: serde_json's float parsing may move the last
        // bit of a float, the same way on both.
        let expected: serde_json::Value =
            serde_json::from_str(&serde_json::to_string(&report).unwrap()).unwrap();
        let got: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(got, expected);
    }

    /// With `HCMON_REPORT_SAMPLES=DIR`, writes the fixture in every format to DIR, to look at.
    #[test]
    fn render_samples_on_request() {
        let Some(dir) = std::env::var_os("HCMON_REPORT_SAMPLES") else {
            return;
        };
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        let report = test_support::report();
        for format in ReportFormat::ALL {
            let started = std::time::Instant::now();
            let bytes = render(&report, format).unwrap();
            eprintln!("{format}: {} bytes in {:?}", bytes.len(), started.elapsed());
            std::fs::write(dir.join(format!("report.{}", format.extension())), bytes).unwrap();
        }
        let large = test_support::large_report(100);
        for format in [ReportFormat::Pdf, ReportFormat::Html] {
            let started = std::time::Instant::now();
            let bytes = render(&large, format).unwrap();
            eprintln!(
                "100 SLOs, {format}: {} bytes in {:?}",
                bytes.len(),
                started.elapsed()
            );
            std::fs::write(dir.join(format!("large.{}", format.extension())), bytes).unwrap();
        }
    }
}

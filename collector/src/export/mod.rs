//! Exports: any selection of series over any range, raw or aggregated to a step, as JSON lines
//! (VictoriaMetrics' format), CSV, one JSON document, or an Excel workbook, written to an
//! [`std::io::Write`] as it is read, so an export of any size holds a bounded amount in memory.
//!
//! # Memory
//! A series is read in windows of at most about [`LONG_BUDGET`] samples (the wide layout reads
//! every series over a window of about [`WIDE_BUDGET`] samples in all). The windows are planned
//! from the series' 1 h rollups, which count the samples of every hour cheaply (see `read.rs`);
//! writers keep nothing of what they wrote but the workbook's sheet list. The workbook's rows go
//! to unnamed temporary files as they are written (`rust_xlsxwriter`'s constant-memory mode) and
//! are zipped straight into the output when it is saved.
//!
//! # Layouts
//! - `long`: a series after another. CSV: one row per sample with the series' labels, header
//!   `series,metric,<label names>,timestamp,value[,min,max],unit`; Excel: a sheet per series.
//!   JSON and JSON lines are long only.
//! - `wide`: one row per timestamp, one column per series (header `timestamp,<series>…`), rows
//!   merged across series window by window. Raw samples of different series rarely share a
//!   timestamp, so wide is most useful with `step`.
//!
//! # Steps
//! With a step the values are the average of each step (`value`), with `min` and `max` in the
//! long CSV and Excel layouts. They are read from the coarsest rollup that divides the step
//! (1 h, 5 min, 1 min), which covers what that rollup's retention keeps, else from raw samples.
//! Steps start at multiples of the step since the Unix epoch, and the range is widened to whole
//! steps.
//!
//! Writers are pure: `csv.rs`, `json.rs`, `xlsx.rs` know nothing of the store; `read.rs` plans
//! and reads; `units.rs` names units.

mod csv;
mod json;
mod read;
mod units;
mod xlsx;

use crate::storage::{SeriesMeta, StoreError, Tsdb};
use hcmon_common::Labels;
use read::Reader;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;

pub use xlsx::{MAX_COLUMNS, MAX_ROWS};

/// Samples a series window holds at most, about (long layout).
pub const LONG_BUDGET: u64 = 65_536;
/// Samples of all series a window holds at most, about (wide layout).
pub const WIDE_BUDGET: u64 = 262_144;
/// Most series an Excel export in the long layout (a sheet per series) may hold: each sheet
/// keeps a temporary file open until the workbook is written.
pub const MAX_SHEETS: usize = 1_000;

/// An export's file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// VictoriaMetrics' JSON lines: `{"metric":…,"values":[…],"timestamps":[…]}` per series
    /// (a long series takes several lines).
    Jsonl,
    Csv,
    /// One document: `{"status":"success","data":{"step_ms":…,"series":[…]}}`.
    Json,
    Xlsx,
}

impl Format {
    /// Every format by its name, as `format=` takes it.
    pub const NAMES: [(&'static str, Format); 4] = [
        ("jsonl", Format::Jsonl),
        ("csv", Format::Csv),
        ("json", Format::Json),
        ("xlsx", Format::Xlsx),
    ];

    pub fn from_name(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, f)| *f)
    }

    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("jsonl", |(n, _)| n)
    }

    /// The file name extension.
    pub fn extension(self) -> &'static str {
        self.name()
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Jsonl => "application/stream+json",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }

    /// Whether the format has a wide layout.
    pub fn has_wide(self) -> bool {
        matches!(self, Format::Csv | Format::Xlsx)
    }
}

/// Rows per series (long) or per timestamp (wide); see the module header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Long,
    Wide,
}

impl Layout {
    pub const NAMES: [(&'static str, Layout); 2] = [("long", Layout::Long), ("wide", Layout::Wide)];

    pub fn from_name(name: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, l)| *l)
    }

    pub fn name(self) -> &'static str {
        match self {
            Layout::Long => "long",
            Layout::Wide => "wide",
        }
    }
}

/// What to export.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    /// Inclusive range, Unix milliseconds.
    pub start: i64,
    pub end: i64,
    /// Aggregate to this step (milliseconds, > 0); raw samples when `None`.
    pub step: Option<i64>,
    pub format: Format,
    pub layout: Layout,
    /// Where the workbook's temporary files go.
    pub temp_dir: PathBuf,
    /// Rows per Excel sheet, header rows included, before a sheet continues on the next
    /// ([`MAX_ROWS`] but in tests).
    pub max_sheet_rows: u32,
}

/// What an export wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Series with at least one point.
    pub series: usize,
    pub points: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the export: {0}")]
    Write(#[from] io::Error),
}

/// One exported point: a sample, or a step's average with its extremes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub ts: i64,
    /// The sample, or the step's average.
    pub value: f64,
    pub min: f64,
    pub max: f64,
}

impl Point {
    pub fn sample(ts: i64, value: f64) -> Self {
        Self {
            ts,
            value,
            min: value,
            max: value,
        }
    }
}

/// A series as the writers name it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportSeries {
    pub labels: Labels,
    /// `name{label="value",…}`.
    pub text: String,
    pub unit: Option<String>,
}

/// Writes a series after another (the long layout).
pub trait SeriesSink {
    /// A series begins; its points follow in time order, in one or more calls.
    fn begin(&mut self, series: &ExportSeries) -> io::Result<()>;
    fn points(&mut self, points: &[Point]) -> io::Result<()>;
    fn end(&mut self) -> io::Result<()>;
    fn finish(self: Box<Self>) -> io::Result<()>;
}

/// Writes rows across series (the wide layout).
pub trait RowSink {
    /// One row: a value (or none) per column, in the order of `columns`.
    fn row(&mut self, ts: i64, values: &[Option<f64>]) -> io::Result<()>;
    fn finish(self: Box<Self>) -> io::Result<()>;
}

/// Writes the export of `series` (in the order of their labels) to `out`.
pub fn write(
    tsdb: &Tsdb,
    series: &[Arc<SeriesMeta>],
    request: &ExportRequest,
    out: impl Write + Send + 'static,
) -> Result<Summary, ExportError> {
    let mut series: Vec<&SeriesMeta> = series.iter().map(|m| &**m).collect();
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
    let described: Vec<ExportSeries> = series
        .iter()
        .map(|m| ExportSeries {
            labels: m.labels.clone(),
            text: m.labels.to_string(),
            unit: units::unit_of(tsdb, &m.labels),
        })
        .collect();
    let reader = Reader::new(tsdb, request.start, request.end, request.step);
    let aggregated = request.step.is_some();
    match request.layout {
        Layout::Long => {
            let sink: Box<dyn SeriesSink> = match request.format {
                Format::Jsonl => Box::new(json::LinesSink::new(out)),
                Format::Json => Box::new(json::DocumentSink::new(out, request.step)?),
                Format::Csv => Box::new(csv::LongSink::new(
                    out,
                    &label_names(&described),
                    aggregated,
                )?),
                Format::Xlsx => Box::new(xlsx::LongSink::new(out, request_sheets(request))?),
            };
            write_long(&reader, &series, &described, sink)
        }
        Layout::Wide => {
            let sink: Box<dyn RowSink> = match request.format {
                Format::Xlsx => Box::new(xlsx::WideSink::new(
                    out,
                    request_sheets(request),
                    &described,
                )?),
                _ => Box::new(csv::WideSink::new(out, &described)?),
            };
            write_wide(&reader, &series, sink)
        }
    }
}

fn request_sheets(request: &ExportRequest) -> xlsx::Sheets {
    xlsx::Sheets {
        temp_dir: request.temp_dir.clone(),
        max_rows: request.max_sheet_rows,
        aggregated: request.step.is_some(),
    }
}

/// Every label name but `__name__`, sorted: the long CSV layout's label columns.
fn label_names(series: &[ExportSeries]) -> Vec<String> {
    let names: BTreeSet<&str> = series
        .iter()
        .flat_map(|s| s.labels.without_name().map(|(n, _)| n))
        .collect();
    names.into_iter().map(str::to_owned).collect()
}

fn write_long(
    reader: &Reader,
    series: &[&SeriesMeta],
    described: &[ExportSeries],
    mut sink: Box<dyn SeriesSink>,
) -> Result<Summary, ExportError> {
    let mut summary = Summary::default();
    for (meta, description) in series.iter().zip(described) {
        let windows = reader.plan(&reader.weights(meta.id)?, LONG_BUDGET);
        let mut begun = false;
        for window in windows {
            let points = reader.read(meta.id, window)?;
            if points.is_empty() {
                continue;
            }
            if !begun {
                sink.begin(description)?;
                begun = true;
                summary.series += 1;
            }
            summary.points += points.len() as u64;
            sink.points(&points)?;
        }
        if begun {
            sink.end()?;
        }
    }
    sink.finish()?;
    Ok(summary)
}

/// Reads every series over a window at a time and merges their points into rows by time.
fn write_wide(
    reader: &Reader,
    series: &[&SeriesMeta],
    mut sink: Box<dyn RowSink>,
) -> Result<Summary, ExportError> {
    let mut weights: BTreeMap<i64, u64> = BTreeMap::new();
    for meta in series {
        for (hour, weight) in reader.weights(meta.id)? {
            *weights.entry(hour).or_default() += weight;
        }
    }
    let weights: Vec<(i64, u64)> = weights.into_iter().collect();
    let mut summary = Summary::default();
    let mut seen = vec![false; series.len()];
    let mut row = vec![None; series.len()];
    for window in reader.plan(&weights, WIDE_BUDGET) {
        let mut merged: Vec<(i64, u32, f64)> = Vec::new();
        for (column, meta) in series.iter().enumerate() {
            let points = reader.read(meta.id, window)?;
            seen[column] |= !points.is_empty();
            merged.extend(points.iter().map(|p| (p.ts, column as u32, p.value)));
        }
        merged.sort_unstable_by_key(|&(ts, column, _)| (ts, column));
        summary.points += merged.len() as u64;
        let mut at = 0;
        while at < merged.len() {
            let ts = merged[at].0;
            row.fill(None);
            while at < merged.len() && merged[at].0 == ts {
                row[merged[at].1 as usize] = Some(merged[at].2);
                at += 1;
            }
            sink.row(ts, &row)?;
        }
    }
    sink.finish()?;
    summary.series = seen.iter().filter(|s| **s).count();
    Ok(summary)
}

/// A sample value as Prometheus writes a non-finite one (`NaN`, `+Inf`, `-Inf`), else as Rust
/// prints it: the shortest text that reads back to the same number, never an exponent.
fn push_value(out: &mut String, value: f64) {
    use std::fmt::Write as _;
    match crate::json_f64::non_finite_text(value) {
        Some(text) => out.push_str(text),
        None => {
            let _ = write!(out, "{value}");
        }
    }
}

/// Unix milliseconds as RFC 3339 in UTC with milliseconds: `2023-11-14T22:13:20.000Z`.
pub fn rfc3339(ms: i64) -> String {
    let mut out = String::with_capacity(24);
    push_rfc3339(&mut out, ms);
    out
}

/// Writes [`rfc3339`] into `out`.
fn push_rfc3339(out: &mut String, ms: i64) {
    use std::fmt::Write as _;
    let days = ms.div_euclid(86_400_000);
    let of_day = ms.rem_euclid(86_400_000);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        of_day / 3_600_000,
        of_day / 60_000 % 60,
        of_day / 1000 % 60,
        of_day % 1000
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A writer whose bytes stay readable after the sink that owned it has finished.
    pub(crate) struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

    impl SharedBuffer {
        pub(crate) fn of(buffer: &Arc<Mutex<Vec<u8>>>) -> Self {
            Self(buffer.clone())
        }
    }

    impl Write for SharedBuffer {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A series named `name` with `labels`, its unit from its name.
    pub(crate) fn series(name: &str, labels: &[(&str, &str)]) -> ExportSeries {
        let labels = Labels::new(
            name,
            labels.iter().map(|(n, v)| (n.to_string(), v.to_string())),
        )
        .unwrap();
        ExportSeries {
            text: labels.to_string(),
            unit: units::unit_of_name(name),
            labels,
        }
    }

    #[test]
    fn writes_times_as_rfc3339_and_values_as_prometheus_does() {
        let mut out = String::new();
        for ms in [0, 1_700_000_000_123, 951_782_400_000, -1] {
            push_rfc3339(&mut out, ms);
            out.push(' ');
        }
        assert_eq!(
            out,
            "1970-01-01T00:00:00.000Z 2023-11-14T22:13:20.123Z 2000-02-29T00:00:00.000Z \
             1969-12-31T23:59:59.999Z "
        );
        let mut out = String::new();
        for v in [1.5, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e21, -0.25] {
            push_value(&mut out, v);
            out.push(' ');
        }
        assert_eq!(out, "1.5 NaN +Inf -Inf 1000000000000000000000 -0.25 ");
    }

    #[test]
    fn formats_are_named_once() {
        for (name, format) in Format::NAMES {
            assert_eq!(Format::from_name(name), Some(format));
            assert_eq!(format.name(), name);
        }
        assert_eq!(Format::from_name("xls"), None);
    }
}

//! Excel workbooks, by `rust_xlsxwriter` in constant-memory mode: each sheet's rows go to an
//! unnamed temporary file as they are written, and saving zips them straight into the output.
//!
//! Every data sheet starts with a header row and a units row; times are Excel dates in UTC
//! (`yyyy-mm-dd hh:mm:ss.000`). Long: a first sheet `series` lists each data sheet with its
//! series and unit, then a sheet per series (`<n> <series>`, cut to Excel's 31 characters,
//! `[]:*?/\` and quotes replaced) with `timestamp, value[, min, max]`. Wide: one sheet `export`
//! with `timestamp` and a column per series. A sheet that reaches Excel's 1,048,576 rows goes
//! on in a new sheet named `<name> (2)`, `(3)`, … with the same header.
//!
//! Excel has no NaN or infinity: those values are written as the text Prometheus uses.

use super::{ExportSeries, Point, RowSink, SeriesSink};
use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};
use std::collections::HashSet;
use std::io::{self, Write};
use std::path::PathBuf;

/// Rows an Excel sheet holds.
pub const MAX_ROWS: u32 = 1_048_576;
/// Columns an Excel sheet holds.
pub const MAX_COLUMNS: usize = 16_384;
/// Longest sheet name Excel takes, in characters.
const MAX_NAME: usize = 31;
/// Longest text Excel keeps in a cell.
const MAX_CELL_TEXT: usize = 32_767;
/// Rows before the data: header and units.
const HEADER_ROWS: u32 = 2;
/// Excel's date of the Unix epoch (days since 1899-12-30).
const EPOCH_SERIAL: f64 = 25_569.0;

/// How the workbook is laid out on disk and in sheets.
#[derive(Debug, Clone)]
pub struct Sheets {
    pub temp_dir: PathBuf,
    /// Rows per sheet, header rows included (more than [`HEADER_ROWS`]).
    pub max_rows: u32,
    /// Whether points are step aggregates (adds `min`, `max` in the long layout).
    pub aggregated: bool,
}

fn xlsx_error(error: XlsxError) -> io::Error {
    io::Error::other(error)
}

/// A sheet name from `stem` with `suffix`, valid and not yet in `used` (compared without case,
/// as Excel does).
fn sheet_name(used: &mut HashSet<String>, stem: &str, suffix: &str) -> String {
    let clean: String = stem
        .chars()
        .map(|c| match c {
            '[' | ']' | ':' | '*' | '?' | '/' | '\\' | '\'' => '_',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    let mut attempt = 1;
    loop {
        let suffix = match attempt {
            1 => suffix.to_owned(),
            n => format!("{suffix} #{n}"),
        };
        let room = MAX_NAME.saturating_sub(suffix.chars().count());
        let name: String = clean.chars().take(room).chain(suffix.chars()).collect();
        let name = name.trim().to_owned();
        if !name.is_empty() && used.insert(name.to_lowercase()) {
            return name;
        }
        attempt += 1;
    }
}

/// The workbook, its formats and the sheet names taken.
struct Book<W: Write + Send> {
    workbook: Workbook,
    out: W,
    used: HashSet<String>,
    date: Format,
    bold: Format,
    sheets: Sheets,
}

impl<W: Write + Send> Book<W> {
    fn new(out: W, sheets: Sheets) -> io::Result<Self> {
        let mut workbook = Workbook::new();
        workbook.set_tempdir(&sheets.temp_dir).map_err(xlsx_error)?;
        // Excel reserves `History`.
        let used = HashSet::from(["history".to_owned()]);
        Ok(Self {
            workbook,
            out,
            used,
            date: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss.000"),
            bold: Format::new().set_bold(),
            sheets,
        })
    }

    /// Adds a sheet named `name` with the header row `header` and the units row `units`;
    /// returns its index.
    fn add_sheet(&mut self, name: &str, header: &[&str], units: &[&str]) -> io::Result<usize> {
        let index = self.workbook.worksheets().len();
        let sheet = self
            .workbook
            .add_worksheet_with_constant_memory()
            .map_err(xlsx_error)?;
        sheet.set_name(name).map_err(xlsx_error)?;
        sheet.set_column_width(0, 24).map_err(xlsx_error)?;
        for (row, texts) in [header, units].into_iter().enumerate() {
            for (col, text) in texts.iter().enumerate() {
                let text: String = text.chars().take(MAX_CELL_TEXT).collect();
                sheet
                    .write_string_with_format(row as u32, col as u16, text, &self.bold)
                    .map_err(xlsx_error)?;
            }
        }
        Ok(index)
    }

    fn sheet(&mut self, index: usize) -> io::Result<&mut Worksheet> {
        self.workbook
            .worksheet_from_index(index)
            .map_err(xlsx_error)
    }

    /// Writes a row of sheet `index`: the time, then `values` from the second column on
    /// (`None` left blank).
    fn write_row(
        &mut self,
        index: usize,
        row: u32,
        ts: i64,
        values: impl Iterator<Item = Option<f64>>,
    ) -> io::Result<()> {
        let sheet = self
            .workbook
            .worksheet_from_index(index)
            .map_err(xlsx_error)?;
        let serial = ts as f64 / 86_400_000.0 + EPOCH_SERIAL;
        sheet
            .write_number_with_format(row, 0, serial, &self.date)
            .map_err(xlsx_error)?;
        for (col, value) in (1u16..).zip(values) {
            let Some(value) = value else { continue };
            match crate::json_f64::non_finite_text(value) {
                Some(text) => sheet.write_string(row, col, text),
                None => sheet.write_number(row, col, value),
            }
            .map_err(xlsx_error)?;
        }
        Ok(())
    }

    fn save(mut self) -> io::Result<()> {
        self.workbook
            .save_to_writer(&mut self.out)
            .map_err(xlsx_error)?;
        self.out.flush()
    }
}

/// The sheet being filled: its index, the next row, and what its continuation needs.
struct Current {
    index: usize,
    row: u32,
    stem: String,
    part: u32,
    unit: String,
}

/// A sheet per series, listed on the first sheet.
pub struct LongSink<W: Write + Send> {
    book: Book<W>,
    current: Option<Current>,
    /// The `series` sheet's next row.
    listed: u32,
    /// Series begun so far, numbering the sheets.
    count: usize,
}

impl<W: Write + Send> LongSink<W> {
    pub fn new(out: W, sheets: Sheets) -> io::Result<Self> {
        let mut book = Book::new(out, sheets)?;
        let name = sheet_name(&mut book.used, "series", "");
        let index = book.add_sheet(&name, &["sheet", "series", "unit"], &[])?;
        book.sheet(index)?
            .set_column_width(1, 60)
            .map_err(xlsx_error)?;
        Ok(Self {
            book,
            current: None,
            listed: 1,
            count: 0,
        })
    }

    /// Starts part `part` of the current series' sheets.
    fn open_sheet(&mut self, stem: &str, part: u32, unit: &str) -> io::Result<Current> {
        let suffix = match part {
            1 => String::new(),
            n => format!(" ({n})"),
        };
        let name = sheet_name(&mut self.book.used, stem, &suffix);
        let (header, units): (&[&str], [&str; 4]) = match self.book.sheets.aggregated {
            true => (
                &["timestamp", "value", "min", "max"],
                ["UTC", unit, unit, unit],
            ),
            false => (&["timestamp", "value"], ["UTC", unit, "", ""]),
        };
        let index = self.book.add_sheet(&name, header, &units[..header.len()])?;
        Ok(Current {
            index,
            row: HEADER_ROWS,
            stem: stem.to_owned(),
            part,
            unit: unit.to_owned(),
        })
    }
}

impl<W: Write + Send> SeriesSink for LongSink<W> {
    fn begin(&mut self, series: &ExportSeries) -> io::Result<()> {
        self.count += 1;
        let stem = format!("{} {}", self.count, series.text);
        let unit = series.unit.clone().unwrap_or_default();
        let current = self.open_sheet(&stem, 1, &unit)?;
        let name = self.book.sheet(current.index)?.name();
        let text: String = series.text.chars().take(MAX_CELL_TEXT).collect();
        let list = self.book.sheet(0)?;
        for (col, cell) in [name, text, unit].into_iter().enumerate() {
            list.write_string(self.listed, col as u16, cell)
                .map_err(xlsx_error)?;
        }
        self.listed += 1;
        self.current = Some(current);
        Ok(())
    }

    fn points(&mut self, points: &[Point]) -> io::Result<()> {
        let Some(mut current) = self.current.take() else {
            return Err(io::Error::other("points before a series began"));
        };
        let aggregated = self.book.sheets.aggregated;
        for point in points {
            if current.row >= self.book.sheets.max_rows {
                let (stem, unit) = (current.stem.clone(), current.unit.clone());
                current = self.open_sheet(&stem, current.part + 1, &unit)?;
            }
            let values = [point.value, point.min, point.max];
            let columns = if aggregated { 3 } else { 1 };
            self.book.write_row(
                current.index,
                current.row,
                point.ts,
                values[..columns].iter().map(|v| Some(*v)),
            )?;
            current.row += 1;
        }
        self.current = Some(current);
        Ok(())
    }

    fn end(&mut self) -> io::Result<()> {
        self.current = None;
        Ok(())
    }

    fn finish(self: Box<Self>) -> io::Result<()> {
        self.book.save()
    }
}

/// One sheet, a column per series.
pub struct WideSink<W: Write + Send> {
    book: Book<W>,
    current: Current,
    header: Vec<String>,
    units: Vec<String>,
}

impl<W: Write + Send> WideSink<W> {
    pub fn new(out: W, sheets: Sheets, columns: &[ExportSeries]) -> io::Result<Self> {
        let mut book = Book::new(out, sheets)?;
        let header: Vec<String> = ["timestamp".to_owned()]
            .into_iter()
            .chain(columns.iter().map(|s| s.text.clone()))
            .collect();
        let units: Vec<String> = ["UTC".to_owned()]
            .into_iter()
            .chain(columns.iter().map(|s| s.unit.clone().unwrap_or_default()))
            .collect();
        let name = sheet_name(&mut book.used, "export", "");
        let index = add_texts_sheet(&mut book, &name, &header, &units)?;
        Ok(Self {
            book,
            current: Current {
                index,
                row: HEADER_ROWS,
                stem: "export".to_owned(),
                part: 1,
                unit: String::new(),
            },
            header,
            units,
        })
    }
}

fn add_texts_sheet<W: Write + Send>(
    book: &mut Book<W>,
    name: &str,
    header: &[String],
    units: &[String],
) -> io::Result<usize> {
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let units: Vec<&str> = units.iter().map(String::as_str).collect();
    book.add_sheet(name, &header, &units)
}

impl<W: Write + Send> RowSink for WideSink<W> {
    fn row(&mut self, ts: i64, values: &[Option<f64>]) -> io::Result<()> {
        if self.current.row >= self.book.sheets.max_rows {
            self.current.part += 1;
            let suffix = format!(" ({})", self.current.part);
            let name = sheet_name(&mut self.book.used, &self.current.stem, &suffix);
            self.current.index = add_texts_sheet(&mut self.book, &name, &self.header, &self.units)?;
            self.current.row = HEADER_ROWS;
        }
        let (index, row) = (self.current.index, self.current.row);
        self.book
            .write_row(index, row, ts, values.iter().copied())?;
        self.current.row += 1;
        Ok(())
    }

    fn finish(self: Box<Self>) -> io::Result<()> {
        self.book.save()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::tests::{SharedBuffer, series};
    use calamine::{Data, Reader, Xlsx};
    use std::sync::{Arc, Mutex};

    fn sheets(max_rows: u32, aggregated: bool) -> Sheets {
        Sheets {
            temp_dir: std::env::temp_dir(),
            max_rows,
            aggregated,
        }
    }

    /// Every sheet of the workbook in `buffer`: its name and its cells.
    fn read(buffer: &Arc<Mutex<Vec<u8>>>) -> Vec<(String, Vec<Vec<Data>>)> {
        let bytes = buffer.lock().unwrap().clone();
        let mut book = Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
        book.worksheets()
            .into_iter()
            .map(|(name, range)| (name, range.rows().map(<[Data]>::to_vec).collect()))
            .collect()
    }

    fn s(text: &str) -> Data {
        Data::String(text.to_owned())
    }

    /// Excel's date number of Unix milliseconds, as calamine reads a dated cell.
    fn date(ms: i64) -> f64 {
        ms as f64 / 86_400_000.0 + EPOCH_SERIAL
    }

    fn as_number(cell: &Data) -> f64 {
        match cell {
            Data::Float(f) => *f,
            Data::Int(i) => *i as f64,
            Data::DateTime(d) => d.as_f64(),
            other => panic!("not a number: {other:?}"),
        }
    }

    #[test]
    fn a_sheet_per_series_goes_on_in_new_sheets_at_the_row_limit() {
        let buffer = Arc::default();
        let mut sink =
            Box::new(LongSink::new(SharedBuffer::of(&buffer), sheets(5, false)).unwrap());
        let odd = series("disk_used_bytes", &[("mount", "/var/[log]:*?")]);
        sink.begin(&odd).unwrap();
        let points: Vec<Point> = (0..7)
            .map(|i| Point::sample(1_700_000_000_000 + i * 1000, i as f64))
            .collect();
        sink.points(&points[..2]).unwrap();
        sink.points(&points[2..]).unwrap();
        sink.end().unwrap();
        sink.begin(&series("up", &[])).unwrap();
        sink.points(&[Point::sample(0, f64::NAN)]).unwrap();
        sink.end().unwrap();
        sink.finish().unwrap();

        let book = read(&buffer);
        let names: Vec<&str> = book.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "series",
                "1 disk_used_bytes{mount=\"_var__",
                "1 disk_used_bytes{mount=\"_v (2)",
                "1 disk_used_bytes{mount=\"_v (3)",
                "2 up"
            ]
        );
        assert!(names.iter().all(|n| n.chars().count() <= MAX_NAME));
        let (_, list) = &book[0];
        assert_eq!(list[1][1], s(r#"disk_used_bytes{mount="/var/[log]:*?"}"#));
        assert_eq!(list[1][2], s("bytes"));
        assert_eq!(list[2][0], s("2 up"));
        // 3 data rows per sheet under the header and units rows: 3 + 3 + 1.
        let mut values = Vec::new();
        for (_, rows) in &book[1..4] {
            assert_eq!(rows[0][..2], [s("timestamp"), s("value")]);
            assert_eq!(rows[1][..2], [s("UTC"), s("bytes")]);
            assert!(rows.len() <= 5);
            for row in &rows[2..] {
                assert!(
                    (as_number(&row[0])
                        - date(1_700_000_000_000 + as_number(&row[1]) as i64 * 1000))
                    .abs()
                        < 1e-9
                );
                values.push(as_number(&row[1]));
            }
        }
        assert_eq!(values, [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert_eq!(book[4].1[2][1], s("NaN"));
    }

    #[test]
    fn the_wide_sheet_has_a_column_per_series_and_aggregates_have_extremes() {
        let buffer = Arc::default();
        let columns = [series("a_bytes", &[]), series("b", &[])];
        let mut sink =
            Box::new(WideSink::new(SharedBuffer::of(&buffer), sheets(3, false), &columns).unwrap());
        sink.row(0, &[Some(1.0), None]).unwrap();
        sink.row(60_000, &[None, Some(2.0)]).unwrap();
        sink.finish().unwrap();
        let book = read(&buffer);
        assert_eq!(book[0].0, "export");
        assert_eq!(book[1].0, "export (2)");
        assert_eq!(book[0].1[0], [s("timestamp"), s("a_bytes"), s("b")]);
        assert_eq!(
            book[0].1[1],
            [s("UTC"), s("bytes"), s("")].map(|c| match c {
                Data::String(t) if t.is_empty() => Data::Empty,
                c => c,
            })
        );
        assert_eq!(as_number(&book[0].1[2][0]), date(0));
        assert_eq!(book[0].1[2][1], Data::Float(1.0));
        assert_eq!(book[1].1[2][2], Data::Float(2.0));

        let buffer = Arc::default();
        let mut sink =
            Box::new(LongSink::new(SharedBuffer::of(&buffer), sheets(100, true)).unwrap());
        sink.begin(&series("x_seconds", &[])).unwrap();
        let point = Point {
            ts: 0,
            value: 2.0,
            min: 1.0,
            max: f64::INFINITY,
        };
        sink.points(&[point]).unwrap();
        sink.finish().unwrap();
        let book = read(&buffer);
        assert_eq!(
            book[1].1[0],
            [s("timestamp"), s("value"), s("min"), s("max")]
        );
        assert_eq!(
            book[1].1[2][1..],
            [Data::Float(2.0), Data::Float(1.0), s("+Inf")]
        );
    }

    #[test]
    fn sheet_names_are_valid_and_unique() {
        let mut used = HashSet::new();
        assert_eq!(sheet_name(&mut used, "a/b", ""), "a_b");
        assert_eq!(sheet_name(&mut used, "A/B", ""), "A_B #2");
        let long = "x".repeat(40);
        let name = sheet_name(&mut used, &long, " (12)");
        assert_eq!(name, format!("{} (12)", "x".repeat(26)));
    }
}

//! CSV, RFC 4180 quoting by the `csv` crate; times in RFC 3339 UTC with milliseconds, values
//! as Prometheus writes them (`NaN`, `+Inf`). Long: `series,metric,<label names>,timestamp,
//! value[,min,max],unit`, a label a series lacks left empty. Wide: `timestamp,<series>…`, a
//! series without a value at that time left empty.

use super::{ExportSeries, Point, RowSink, SeriesSink, push_rfc3339, push_value};
use std::io::{self, Write};

/// One row per point, the series' labels on every row.
pub struct LongSink<W: Write> {
    out: ::csv::Writer<W>,
    label_names: Vec<String>,
    aggregated: bool,
    /// The current series' leading fields (series, metric, label values) and unit.
    fields: Vec<String>,
    unit: String,
    scratch: [String; 4],
}

impl<W: Write> LongSink<W> {
    /// Writes the header: `label_names` are the label columns; `aggregated` adds `min,max`.
    pub fn new(out: W, label_names: &[String], aggregated: bool) -> io::Result<Self> {
        let mut out = ::csv::Writer::from_writer(out);
        let mut header = vec!["series", "metric"];
        header.extend(label_names.iter().map(String::as_str));
        header.extend(["timestamp", "value"]);
        if aggregated {
            header.extend(["min", "max"]);
        }
        header.push("unit");
        out.write_record(&header)?;
        Ok(Self {
            out,
            label_names: label_names.to_vec(),
            aggregated,
            fields: Vec::new(),
            unit: String::new(),
            scratch: Default::default(),
        })
    }
}

impl<W: Write> SeriesSink for LongSink<W> {
    fn begin(&mut self, series: &ExportSeries) -> io::Result<()> {
        self.fields.clear();
        self.fields.push(series.text.clone());
        self.fields.push(series.labels.metric_name().to_owned());
        for name in &self.label_names {
            self.fields
                .push(series.labels.get(name).unwrap_or_default().to_owned());
        }
        self.unit = series.unit.clone().unwrap_or_default();
        Ok(())
    }

    fn points(&mut self, points: &[Point]) -> io::Result<()> {
        for point in points {
            let [time, value, min, max] = &mut self.scratch;
            for text in [&mut *time, &mut *value, &mut *min, &mut *max] {
                text.clear();
            }
            push_rfc3339(time, point.ts);
            push_value(value, point.value);
            for field in &self.fields {
                self.out.write_field(field)?;
            }
            self.out.write_field(&*time)?;
            self.out.write_field(&*value)?;
            if self.aggregated {
                push_value(min, point.min);
                push_value(max, point.max);
                self.out.write_field(&*min)?;
                self.out.write_field(&*max)?;
            }
            self.out.write_field(&self.unit)?;
            self.out.write_record(None::<&[u8]>)?;
        }
        Ok(())
    }

    fn end(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> io::Result<()> {
        self.out.flush()
    }
}

/// One row per time, a column per series.
pub struct WideSink<W: Write> {
    out: ::csv::Writer<W>,
    scratch: String,
}

impl<W: Write> WideSink<W> {
    /// Writes the header: `timestamp` and each series' text, in the order rows give values.
    pub fn new(out: W, columns: &[ExportSeries]) -> io::Result<Self> {
        let mut out = ::csv::Writer::from_writer(out);
        out.write_field("timestamp")?;
        for series in columns {
            out.write_field(&series.text)?;
        }
        out.write_record(None::<&[u8]>)?;
        Ok(Self {
            out,
            scratch: String::new(),
        })
    }
}

impl<W: Write> RowSink for WideSink<W> {
    fn row(&mut self, ts: i64, values: &[Option<f64>]) -> io::Result<()> {
        self.scratch.clear();
        push_rfc3339(&mut self.scratch, ts);
        self.out.write_field(&self.scratch)?;
        for value in values {
            self.scratch.clear();
            if let Some(v) = value {
                push_value(&mut self.scratch, *v);
            }
            self.out.write_field(&self.scratch)?;
        }
        self.out.write_record(None::<&[u8]>)?;
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::tests::{SharedBuffer, series};

    /// What `sink` wrote into the shared buffer, once it has finished.
    fn text(buffer: &std::sync::Arc<std::sync::Mutex<Vec<u8>>>) -> String {
        String::from_utf8(buffer.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn long_rows_quote_labels_and_write_non_finite_values() {
        let buffer = std::sync::Arc::default();
        let out = SharedBuffer::of(&buffer);
        let labels = ["mount".to_owned(), "node".to_owned()];
        let mut sink = Box::new(LongSink::new(out, &labels, false).unwrap());
        let odd = series(
            "disk_used_bytes",
            &[("mount", "/a,\"b\"\nc"), ("node", "n1")],
        );
        sink.begin(&odd).unwrap();
        sink.points(&[Point::sample(0, 1.5), Point::sample(1, f64::NAN)])
            .unwrap();
        sink.end().unwrap();
        sink.begin(&series("up", &[])).unwrap();
        sink.points(&[Point::sample(2, f64::NEG_INFINITY)]).unwrap();
        sink.end().unwrap();
        sink.finish().unwrap();
        let text = text(&buffer);
        let mut reader = ::csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .unwrap()
            .iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(
            header,
            [
                "series",
                "metric",
                "mount",
                "node",
                "timestamp",
                "value",
                "unit"
            ]
        );
        let rows: Vec<Vec<String>> = reader
            .records()
            .map(|r| r.unwrap().iter().map(str::to_owned).collect())
            .collect();
        let disk = r#"disk_used_bytes{mount="/a,\"b\"\nc",node="n1"}"#;
        let expected = [
            [
                disk,
                "disk_used_bytes",
                "/a,\"b\"\nc",
                "n1",
                "1970-01-01T00:00:00.000Z",
                "1.5",
                "bytes",
            ],
            [
                disk,
                "disk_used_bytes",
                "/a,\"b\"\nc",
                "n1",
                "1970-01-01T00:00:00.001Z",
                "NaN",
                "bytes",
            ],
            ["up", "up", "", "", "1970-01-01T00:00:00.002Z", "-Inf", ""],
        ];
        assert_eq!(rows, expected.map(|r| r.map(str::to_owned)));
    }

    #[test]
    fn wide_rows_leave_missing_values_empty_and_aggregates_add_columns() {
        let buffer = std::sync::Arc::default();
        let out = SharedBuffer::of(&buffer);
        let columns = [series("a", &[("x", "1,2")]), series("b", &[])];
        let mut sink = Box::new(WideSink::new(out, &columns).unwrap());
        sink.row(0, &[Some(1.0), None]).unwrap();
        sink.row(1000, &[None, Some(f64::INFINITY)]).unwrap();
        sink.finish().unwrap();
        assert_eq!(
            text(&buffer),
            "timestamp,\"a{x=\"\"1,2\"\"}\",b\n\
             1970-01-01T00:00:00.000Z,1,\n\
             1970-01-01T00:00:01.000Z,,+Inf\n"
        );

        let buffer = std::sync::Arc::default();
        let out = SharedBuffer::of(&buffer);
        let mut sink = Box::new(LongSink::new(out, &[], true).unwrap());
        sink.begin(&series("a_seconds", &[])).unwrap();
        let point = Point {
            ts: 0,
            value: 2.0,
            min: 1.0,
            max: 3.0,
        };
        sink.points(&[point]).unwrap();
        sink.finish().unwrap();
        assert_eq!(
            text(&buffer),
            "series,metric,timestamp,value,min,max,unit\n\
             a_seconds,a_seconds,1970-01-01T00:00:00.000Z,2,1,3,seconds\n"
        );
    }
}

//! JSON: VictoriaMetrics' JSON lines, and one document written as it goes.
//!
//! Lines: `{"metric":{…},"values":[…],"timestamps":[…]}` per series and window (the format
//! `GET /api/v1/export` always had; a series longer than a window takes several lines, as in
//! VictoriaMetrics). With a step, values are the steps' averages.
//!
//! Document: `{"status":"success","data":{"step_ms":null,"series":[{"metric":{…},
//! "unit":"bytes","values":[[<ms>,<value>],…]},…]}}`; with a step, `step_ms` is it and each
//! point is `[<ms>,<average>,<min>,<max>]`. Values are JSON numbers, non-finite ones the
//! strings Prometheus writes (`"NaN"`, `"+Inf"`, `"-Inf"`), as in [`crate::json_f64`].

use super::{ExportSeries, Point, SeriesSink, push_value};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, Write};

/// A series' labels as a JSON object.
fn metric_json(series: &ExportSeries) -> String {
    let metric: BTreeMap<&str, &str> = series.labels.iter().collect();
    serde_json::to_string(&metric).expect("string maps serialise")
}

/// One line of VictoriaMetrics' export.
#[derive(Serialize)]
struct Line<'a> {
    metric: &'a BTreeMap<String, String>,
    values: Vec<f64>,
    timestamps: Vec<i64>,
}

pub struct LinesSink<W: Write> {
    out: W,
    metric: BTreeMap<String, String>,
}

impl<W: Write> LinesSink<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            metric: BTreeMap::new(),
        }
    }
}

impl<W: Write> SeriesSink for LinesSink<W> {
    fn begin(&mut self, series: &ExportSeries) -> io::Result<()> {
        self.metric = series
            .labels
            .iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        Ok(())
    }

    fn points(&mut self, points: &[Point]) -> io::Result<()> {
        let line = Line {
            metric: &self.metric,
            values: points.iter().map(|p| p.value).collect(),
            timestamps: points.iter().map(|p| p.ts).collect(),
        };
        serde_json::to_writer(&mut self.out, &line)?;
        self.out.write_all(b"\n")
    }

    fn end(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> io::Result<()> {
        self.out.flush()
    }
}

pub struct DocumentSink<W: Write> {
    out: W,
    aggregated: bool,
    /// Whether a series (a point) was written already, so the next needs a comma.
    series_written: bool,
    point_written: bool,
    scratch: String,
}

impl<W: Write> DocumentSink<W> {
    /// Writes the document's opening; `step` in milliseconds.
    pub fn new(mut out: W, step: Option<i64>) -> io::Result<Self> {
        let step_ms = step.map_or("null".to_owned(), |s| s.to_string());
        write!(
            out,
            r#"{{"status":"success","data":{{"step_ms":{step_ms},"series":["#
        )?;
        Ok(Self {
            out,
            aggregated: step.is_some(),
            series_written: false,
            point_written: false,
            scratch: String::new(),
        })
    }
}

/// A value as JSON: a number, or Prometheus' text for a non-finite one, quoted.
fn push_json_value(out: &mut String, value: f64) {
    if value.is_finite() {
        push_value(out, value);
    } else {
        out.push('"');
        push_value(out, value);
        out.push('"');
    }
}

impl<W: Write> SeriesSink for DocumentSink<W> {
    fn begin(&mut self, series: &ExportSeries) -> io::Result<()> {
        if self.series_written {
            self.out.write_all(b",")?;
        }
        self.series_written = true;
        self.point_written = false;
        let unit = serde_json::to_string(&series.unit).expect("strings serialise");
        write!(
            self.out,
            r#"{{"metric":{},"unit":{unit},"values":["#,
            metric_json(series)
        )
    }

    fn points(&mut self, points: &[Point]) -> io::Result<()> {
        use std::fmt::Write as _;
        self.scratch.clear();
        for point in points {
            if self.point_written {
                self.scratch.push(',');
            }
            self.point_written = true;
            let _ = write!(self.scratch, "[{},", point.ts);
            push_json_value(&mut self.scratch, point.value);
            if self.aggregated {
                self.scratch.push(',');
                push_json_value(&mut self.scratch, point.min);
                self.scratch.push(',');
                push_json_value(&mut self.scratch, point.max);
            }
            self.scratch.push(']');
        }
        self.out.write_all(self.scratch.as_bytes())
    }

    fn end(&mut self) -> io::Result<()> {
        self.out.write_all(b"]}")
    }

    fn finish(mut self: Box<Self>) -> io::Result<()> {
        self.out.write_all(b"]}}")?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::tests::{SharedBuffer, series};
    use serde_json::json;

    #[test]
    fn the_document_holds_every_series_with_units_and_non_finite_values_as_text() {
        let buffer = std::sync::Arc::default();
        let mut sink = Box::new(DocumentSink::new(SharedBuffer::of(&buffer), None).unwrap());
        sink.begin(&series("a_bytes", &[("node", "n\"1")])).unwrap();
        sink.points(&[Point::sample(1, 2.5)]).unwrap();
        sink.points(&[Point::sample(2, f64::NAN), Point::sample(3, f64::INFINITY)])
            .unwrap();
        sink.end().unwrap();
        sink.begin(&series("up", &[])).unwrap();
        sink.points(&[Point::sample(4, 1.0)]).unwrap();
        sink.end().unwrap();
        sink.finish().unwrap();
        let written: serde_json::Value = serde_json::from_slice(&buffer.lock().unwrap()).unwrap();
        let expected = json!({"status": "success", "data": {"step_ms": null, "series": [
            {"metric": {"__name__": "a_bytes", "node": "n\"1"}, "unit": "bytes",
             "values": [[1, 2.5], [2, "NaN"], [3, "+Inf"]]},
            {"metric": {"__name__": "up"}, "unit": null, "values": [[4, 1]]},
        ]}});
        assert_eq!(written, expected);

        let buffer = std::sync::Arc::default();
        let sink = Box::new(DocumentSink::new(SharedBuffer::of(&buffer), Some(60_000)).unwrap());
        sink.finish().unwrap();
        let written: serde_json::Value = serde_json::from_slice(&buffer.lock().unwrap()).unwrap();
        assert_eq!(
            written,
            json!({"status": "success", "data": {"step_ms": 60000, "series": []}})
        );
    }

    #[test]
    fn lines_are_victoriametrics_export_lines_one_per_window() {
        let buffer = std::sync::Arc::default();
        let mut sink = Box::new(LinesSink::new(SharedBuffer::of(&buffer)));
        sink.begin(&series("up", &[("job", "x")])).unwrap();
        sink.points(&[Point::sample(1, 1.0), Point::sample(2, 0.5)])
            .unwrap();
        sink.points(&[Point::sample(3, 0.0)]).unwrap();
        sink.finish().unwrap();
        let text = String::from_utf8(buffer.lock().unwrap().clone()).unwrap();
        assert_eq!(
            text,
            "{\"metric\":{\"__name__\":\"up\",\"job\":\"x\"},\"values\":[1.0,0.5],\"timestamps\":[1,2]}\n\
             {\"metric\":{\"__name__\":\"up\",\"job\":\"x\"},\"values\":[0.0],\"timestamps\":[3]}\n"
        );
    }
}

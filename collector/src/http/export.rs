//! `GET|POST /api/v1/export?match[]=…&start=&end=&format=jsonl|csv|json|xlsx&step=&layout=long|wide`:
//! the selected series over the range as a download (see [`crate::export`] for the formats).
//!
//! The answer streams: a blocking task reads and writes the export a window at a time into a
//! bounded channel that the response body drains, so a slow client holds the task back rather
//! than letting the export pile up in memory, and a client that goes away stops it. The request
//! is checked before the answer starts; a failure after that (the store) cuts the body off, which
//! the client sees as an incomplete transfer, and is logged. The query limits hold until the
//! answer starts: a long download is not cut at `query_timeout`.

use super::ApiState;
use super::error::ApiError;
use super::params::{Params, millis};
use crate::export::{self, ExportRequest, Format, Layout, MAX_COLUMNS, MAX_ROWS, MAX_SHEETS};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::io::{self, Write};
use std::time::Instant;
use tokio::sync::mpsc;

pub fn routes() -> Router<ApiState> {
    Router::new().route("/api/v1/export", get(export).post(export))
}

/// Bytes written into the channel at a time.
const PIECE: usize = 64 << 10;
/// Pieces the channel holds before the export waits for the client.
const PIECES_IN_FLIGHT: usize = 8;

async fn export(State(state): State<ApiState>, params: Params) -> Result<Response, ApiError> {
    let selectors = params.matches()?;
    let start = params.time_ms("start")?;
    let end = params.time_ms("end")?;
    let step = params.duration("step")?.map(millis);
    let format = params
        .choice("format", &Format::NAMES)?
        .unwrap_or(Format::Jsonl);
    let layout = params
        .choice("layout", &Layout::NAMES)?
        .unwrap_or(Layout::Long);
    let (start_ms, end_ms) = (start.unwrap_or(i64::MIN), end.unwrap_or(i64::MAX));
    if end_ms < start_ms {
        return Err(bad("end", "end is before start".into()));
    }
    if layout == Layout::Wide && !format.has_wide() {
        let message = format!(
            "format={} has no wide layout; use csv or xlsx",
            format.name()
        );
        return Err(bad("layout", message));
    }
    let series = state.select(&selectors);
    if format == Format::Xlsx {
        match layout {
            Layout::Long if series.len() > MAX_SHEETS => {
                let message = format!(
                    "{} series match; an Excel export holds a sheet per series, at most \
                     {MAX_SHEETS}: narrow the selection, or use layout=wide or format=csv",
                    series.len()
                );
                return Err(bad("match[]", message));
            }
            Layout::Wide if series.len() >= MAX_COLUMNS => {
                let message = format!(
                    "{} series match; an Excel sheet holds {} columns besides the time",
                    series.len(),
                    MAX_COLUMNS - 1
                );
                return Err(bad("match[]", message));
            }
            _ => {}
        }
    }
    let request = ExportRequest {
        start: start_ms,
        end: end_ms,
        step,
        format,
        layout,
        temp_dir: temp_dir(&state),
        max_sheet_rows: MAX_ROWS,
    };
    let filename = format!(
        "hcmon-export-{}-{}.{}",
        start.map_or("earliest".to_owned(), compact_time),
        compact_time(end.unwrap_or_else(|| state.now_ms())),
        format.extension()
    );

    let (sender, receiver) = mpsc::channel::<io::Result<Bytes>>(PIECES_IN_FLIGHT);
    let out = Pieces {
        sender: sender.clone(),
        buffer: Vec::with_capacity(PIECE),
    };
    let tsdb = state.tsdb.clone();
    tokio::spawn(async move {
        let started = Instant::now();
        let work = move || export::write(&tsdb, &series, &request, out);
        match crate::tasks::blocking("/api/v1/export", work).await {
            Ok(Ok(summary)) => tracing::debug!(
                format = format.name(),
                series = summary.series,
                points = summary.points,
                elapsed = ?started.elapsed(),
                "export written"
            ),
            Ok(Err(export::ExportError::Write(error)))
                if error.kind() == io::ErrorKind::BrokenPipe =>
            {
                tracing::debug!(format = format.name(), "export abandoned by its client");
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, format = format.name(), "export cut off");
                let _ = sender.send(Err(io::Error::other(error.to_string()))).await;
            }
            Err(panicked) => {
                let _ = sender
                    .send(Err(io::Error::other(panicked.to_string())))
                    .await;
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(receiver);
    let disposition = format!("attachment; filename=\"{filename}\"");
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::try_from(disposition).expect("the file name is ASCII"),
    );
    if format == Format::Xlsx {
        // A workbook is a zip already: gzip on top would only cost time.
        headers.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static("identity"),
        );
    }
    Ok(response)
}

fn bad(name: &'static str, message: String) -> ApiError {
    ApiError::BadParam { name, message }
}

/// Where a workbook's temporary files go: the data folder (a disk, and the collector's own),
/// else the system's.
fn temp_dir(state: &ApiState) -> std::path::PathBuf {
    let data_dir = &state.access.data_dir;
    match data_dir.is_dir() {
        true => data_dir.clone(),
        false => std::env::temp_dir(),
    }
}

/// A time for a file name: `20231114T221320Z`.
fn compact_time(ms: i64) -> String {
    let text = export::rfc3339(ms);
    text.chars()
        .filter(|c| !matches!(c, '-' | ':'))
        .take_while(|c| *c != '.')
        .chain(['Z'])
        .collect()
}

/// A [`Write`] into the response body's channel, a [`PIECE`] at a time; waits while the channel
/// is full. Fails once the body is gone (the client left).
struct Pieces {
    sender: mpsc::Sender<io::Result<Bytes>>,
    buffer: Vec<u8>,
}

impl Pieces {
    fn send(&mut self) -> io::Result<()> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let piece = std::mem::replace(&mut self.buffer, Vec::with_capacity(PIECE));
        self.sender
            .blocking_send(Ok(Bytes::from(piece)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for Pieces {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= PIECE {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Served, serve_on};
    use crate::api::query::ExportLine;
    use crate::storage::MemoryKv;

    /// A collector's API holding 30 samples, 10 s apart, of `up{job="a"}` and
    /// `load_ratio{node="n,1"}`, remote-written.
    async fn served_with_samples() -> Served {
        use hcmon_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
        let served = serve_on(Box::new(MemoryKv::default()), Default::default()).await;
        let series = |name: &str, label: (&str, &str), value: fn(i64) -> f64| TimeSeries {
            labels: [("__name__", name), label]
                .iter()
                .map(|(n, v)| Label {
                    name: n.to_string(),
                    value: v.to_string(),
                })
                .collect(),
            samples: (0..30)
                .map(|i| Sample {
                    value: value(i),
                    timestamp: 1_700_000_000_000 + i * 10_000,
                })
                .collect(),
        };
        let request = WriteRequest {
            timeseries: vec![
                series("up", ("job", "a"), |i| (i % 2) as f64),
                series("load_ratio", ("node", "n,1"), |i| i as f64 + 0.5),
            ],
        };
        served.remote_write(&request).await;
        served
    }

    async fn get(served: &Served, query: &str) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
        let url = format!("{}/api/v1/export?{query}", served.base);
        let answer = served.client.get(url).send().await.unwrap();
        let status = answer.status().as_u16();
        let headers = answer.headers().clone();
        (status, headers, answer.bytes().await.unwrap().to_vec())
    }

    #[tokio::test]
    async fn exports_every_format_as_a_named_download() {
        let served = served_with_samples().await;
        let range = "match[]={__name__=~\"up|load_ratio\"}&start=1700000000&end=1700000290";
        let (status, headers, body) = get(&served, range).await;
        assert_eq!(status, 200);
        assert_eq!(headers["content-type"], "application/stream+json");
        let lines: Vec<ExportLine> = String::from_utf8(body)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].metric["__name__"], "load_ratio");
        assert_eq!(lines[0].values.len(), 30);

        let (status, headers, body) = get(&served, &format!("{range}&format=csv")).await;
        assert_eq!(status, 200);
        assert_eq!(
            headers["content-disposition"],
            "attachment; filename=\"hcmon-export-20231114T221320Z-20231114T221810Z.csv\""
        );
        let text = String::from_utf8(body).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("series,metric,job,node,timestamp,value,unit")
        );
        assert_eq!(
            lines.next(),
            Some(
                "\"load_ratio{node=\"\"n,1\"\"}\",load_ratio,,\"n,1\",2023-11-14T22:13:20.000Z,0.5,ratio"
            )
        );
        assert_eq!(text.lines().count(), 61);

        let (_, _, body) = get(&served, &format!("{range}&format=csv&layout=wide&step=60")).await;
        let text = String::from_utf8(body).unwrap();
        assert_eq!(
            text.lines().next(),
            Some("timestamp,\"load_ratio{node=\"\"n,1\"\"}\",\"up{job=\"\"a\"\"}\"")
        );
        // 22:13:20 to 22:18:10 in 1 min steps from 22:13: six rows.
        assert_eq!(text.lines().count(), 7, "{text}");

        let (status, headers, body) = get(&served, &format!("{range}&format=json&step=60")).await;
        assert_eq!(
            (status, &headers["content-type"]),
            (200, &"application/json".parse().unwrap())
        );
        let document: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(document["data"]["step_ms"], 60_000);
        assert_eq!(document["data"]["series"][1]["metric"]["job"], "a");

        let (status, headers, body) = get(&served, &format!("{range}&format=xlsx")).await;
        assert_eq!(status, 200);
        assert!(body.starts_with(b"PK"), "a zip");
        assert_eq!(headers["content-encoding"], "identity");
    }

    #[tokio::test]
    async fn bad_formats_and_layouts_are_refused_naming_what_is_allowed() {
        let served = served_with_samples().await;
        for (query, message) in [
            (
                "match[]=up&format=xls",
                "invalid parameter \"format\": \"xls\" is not one of jsonl, csv, json, xlsx",
            ),
            (
                "match[]=up&layout=tall",
                "invalid parameter \"layout\": \"tall\" is not one of long, wide",
            ),
            (
                "match[]=up&format=json&layout=wide",
                "invalid parameter \"layout\": format=json has no wide layout; use csv or xlsx",
            ),
        ] {
            let (status, _, body) = get(&served, query).await;
            assert_eq!(status, 400, "{query}");
            let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(answer["error"], message, "{query}");
        }
    }
}

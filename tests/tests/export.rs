//! Exports from a real collector: known samples remote-written, then exported as CSV, JSON and
//! Excel over HTTP and through `hcmon export`, parsed back and compared sample by sample.

use calamine::{Data, Reader, Xlsx};
use hcmon_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
use hcmon_tests::{Collector, bin_path, remote_write};
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;

/// Samples per series, 10 s apart.
const SAMPLES: i64 = 90;

/// The written series: (labels, samples), labels chosen to need CSV quoting.
type Written = Vec<(Vec<(&'static str, &'static str)>, Vec<(i64, f64)>)>;

fn written(t0: i64) -> Written {
    let series = |labels: Vec<(&'static str, &'static str)>, value: fn(i64) -> f64| {
        let samples = (0..SAMPLES).map(|i| (t0 + i * 10_000, value(i))).collect();
        (labels, samples)
    };
    vec![
        series(
            vec![
                ("__name__", "export_used_bytes"),
                ("mount", "/srv \"a,b\""),
                ("node", "n1"),
            ],
            |i| i as f64 * 1024.5,
        ),
        series(
            vec![("__name__", "export_load_ratio"), ("node", "n2")],
            |i| (i % 7) as f64 / 8.0,
        ),
    ]
}

fn request(series: &Written) -> WriteRequest {
    WriteRequest {
        timeseries: series
            .iter()
            .map(|(labels, samples)| TimeSeries {
                labels: labels
                    .iter()
                    .map(|(n, v)| Label {
                        name: n.to_string(),
                        value: v.to_string(),
                    })
                    .collect(),
                samples: samples
                    .iter()
                    .map(|&(timestamp, value)| Sample { value, timestamp })
                    .collect(),
            })
            .collect(),
    }
}

/// A series' text as the export names it: `name{label="value",…}`.
fn text(labels: &[(&str, &str)]) -> String {
    let name = labels[0].1;
    let rest: Vec<String> = labels[1..]
        .iter()
        .map(|(n, v)| format!("{n}=\"{}\"", v.replace('"', "\\\"")))
        .collect();
    format!("{name}{{{}}}", rest.join(","))
}

/// Every written sample by series text, in time order.
fn expected(series: &Written) -> BTreeMap<String, Vec<(i64, f64)>> {
    series
        .iter()
        .map(|(labels, samples)| (text(labels), samples.clone()))
        .collect()
}

fn parse_rfc3339_ms(text: &str) -> i64 {
    let time = humantime::parse_rfc3339(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    time.duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The long CSV's samples by series.
fn from_csv(body: &[u8]) -> BTreeMap<String, Vec<(i64, f64)>> {
    let mut reader = csv::Reader::from_reader(body);
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
    let mut out: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
    for record in reader.records() {
        let record = record.unwrap();
        let unit = if record[1].ends_with("_bytes") {
            "bytes"
        } else {
            "ratio"
        };
        assert_eq!(&record[6], unit);
        out.entry(record[0].to_owned())
            .or_default()
            .push((parse_rfc3339_ms(&record[4]), record[5].parse().unwrap()));
    }
    out
}

/// The JSON document's samples by series.
fn from_json(body: &[u8]) -> BTreeMap<String, Vec<(i64, f64)>> {
    let document: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(document["status"], "success");
    let mut out = BTreeMap::new();
    for series in document["data"]["series"].as_array().unwrap() {
        let metric = series["metric"].as_object().unwrap();
        let mut labels: Vec<(&str, &str)> =
            vec![("__name__", metric["__name__"].as_str().unwrap())];
        labels.extend(
            metric
                .iter()
                .filter(|(n, _)| *n != "__name__")
                .map(|(n, v)| (n.as_str(), v.as_str().unwrap())),
        );
        let points = series["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_i64().unwrap(), p[1].as_f64().unwrap()))
            .collect();
        out.insert(text(&labels), points);
    }
    out
}

/// The workbook's samples by series, through its `series` sheet.
fn from_xlsx(body: Vec<u8>) -> BTreeMap<String, Vec<(i64, f64)>> {
    let mut book = Xlsx::new(std::io::Cursor::new(body)).unwrap();
    let sheets = book.worksheets();
    let (name, list) = &sheets[0];
    assert_eq!(name, "series");
    let mut out = BTreeMap::new();
    for row in list.rows().skip(1) {
        let (Data::String(sheet), Data::String(series)) = (&row[0], &row[1]) else {
            panic!("a row of the series sheet: {row:?}");
        };
        let (_, cells) = sheets.iter().find(|(n, _)| n == sheet).unwrap();
        let mut rows = cells.rows();
        assert_eq!(rows.next().unwrap()[..2], [s("timestamp"), s("value")]);
        assert_eq!(rows.next().unwrap()[0], s("UTC"));
        let points = rows
            .map(|r| {
                let days = number(&r[0]);
                let ms = ((days - 25_569.0) * 86_400_000.0).round() as i64;
                (ms, number(&r[1]))
            })
            .collect();
        out.insert(series.clone(), points);
    }
    out
}

fn s(text: &str) -> Data {
    Data::String(text.to_owned())
}

fn number(cell: &Data) -> f64 {
    match cell {
        Data::Float(f) => *f,
        Data::Int(i) => *i as f64,
        Data::DateTime(d) => d.as_f64(),
        other => panic!("not a number: {other:?}"),
    }
}

/// `hcmon export ARGS` against `collector`: its stdout, or a failure with its stderr.
fn hcmon_export(collector: &Collector, args: &[&str]) -> anyhow::Result<Vec<u8>> {
    let output = Command::new(bin_path("hcmon"))
        .args(["--url", &format!("http://{}", collector.http)])
        .arg("--data-dir")
        .arg(&collector.data_dir)
        .arg("export")
        .args(args)
        .env_remove("HCMON_TOKEN")
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "hcmon export {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(output.stdout)
}

#[tokio::test(flavor = "multi_thread")]
async fn exports_known_samples_as_csv_json_and_xlsx_over_http_and_the_cli() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let collector = Collector::start(&dir.path().join("data"), 0, 0)?;
    let client = collector.client()?;
    let now = hcmon_tests::now_s() as i64 * 1000;
    let t0 = now - now % 60_000 - 30 * 60_000;
    let series = written(t0);
    let (status, body) = remote_write(&client, collector.http, &request(&series)).await?;
    anyhow::ensure!(
        (200..300).contains(&status),
        "remote write: {status} {body}"
    );
    let expected = expected(&series);

    let (start, end) = (
        (t0 / 1000).to_string(),
        ((t0 + SAMPLES * 10_000) / 1000).to_string(),
    );
    let selector = "{__name__=~\"export_.*\"}";
    let export = |format: &str, extra: &[(&str, &str)]| {
        let mut query = vec![
            ("match[]", selector.to_owned()),
            ("start", start.clone()),
            ("end", end.clone()),
            ("format", format.to_owned()),
        ];
        query.extend(extra.iter().map(|(n, v)| (*n, v.to_string())));
        let request = client
            .get(format!("http://{}/api/v1/export", collector.http))
            .query(&query);
        async move {
            let answer = request.send().await?;
            anyhow::ensure!(answer.status().is_success(), "{}", answer.status());
            let disposition = answer.headers()["content-disposition"].to_str()?.to_owned();
            Ok::<_, anyhow::Error>((disposition, answer.bytes().await?.to_vec()))
        }
    };

    let (disposition, csv_body) = export("csv", &[]).await?;
    assert!(
        disposition.starts_with("attachment; filename=\"hcmon-export-")
            && disposition.ends_with(".csv\""),
        "{disposition}"
    );
    assert_eq!(from_csv(&csv_body), expected, "csv over HTTP");
    let (_, json_body) = export("json", &[]).await?;
    assert_eq!(from_json(&json_body), expected, "json over HTTP");
    let (_, xlsx_body) = export("xlsx", &[]).await?;
    assert_eq!(from_xlsx(xlsx_body), expected, "xlsx over HTTP");

    // One-minute averages, read from the 1 min rollups.
    let (_, stepped) = export("csv", &[("step", "1m"), ("layout", "wide")]).await?;
    let mut reader = csv::Reader::from_reader(stepped.as_slice());
    let columns: Vec<String> = reader.headers()?.iter().map(str::to_owned).collect();
    assert_eq!(
        columns[1..],
        expected.keys().cloned().collect::<Vec<_>>()[..]
    );
    let rows: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>()?;
    assert_eq!(rows.len(), (SAMPLES as usize).div_ceil(6));
    for (column, (_, samples)) in expected.iter().enumerate() {
        for (row, minute) in rows.iter().zip(samples.chunks(6)) {
            let average = minute.iter().map(|s| s.1).sum::<f64>() / minute.len() as f64;
            let got: f64 = row[column + 1].parse()?;
            assert!(
                (got - average).abs() <= 1e-9 * average.abs().max(1.0),
                "{got} vs {average}"
            );
            assert_eq!(parse_rfc3339_ms(&row[0]), minute[0].0);
        }
    }

    // The CLI: the same bytes to stdout, the workbook to a file.
    let args = ["--match", selector, "--start", &start, "--end", &end];
    let cli_csv = hcmon_export(&collector, &[&args[..], &["--format", "csv"]].concat())?;
    assert_eq!(from_csv(&cli_csv), expected, "csv through hcmon");
    let file = dir.path().join("out.xlsx");
    let path = file.display().to_string();
    hcmon_export(
        &collector,
        &[&args[..], &["--format", "xlsx", "--output", &path]].concat(),
    )?;
    assert_eq!(
        from_xlsx(std::fs::read(&file)?),
        expected,
        "xlsx through hcmon"
    );
    let lines = hcmon_export(&collector, &args)?;
    assert_eq!(
        String::from_utf8(lines)?.lines().count(),
        2,
        "JSON lines by default"
    );
    let refused = hcmon_export(
        &collector,
        &[&args[..], &["--format", "json", "--layout", "wide"]].concat(),
    )
    .unwrap_err()
    .to_string();
    assert!(refused.contains("has no wide layout"), "{refused}");
    Ok(())
}

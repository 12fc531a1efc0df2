//! `hcmon replay`: runs the live anomaly engine, with the live defaults, over a CSV of
//! `timestamp,value` rows (or samples fetched from a collector) and writes one verdict row per
//! input row, in order. Used to back-test a detector before trusting it with alerts.
//!
//! Input is checked whole before anything runs: every bad row is reported with its line number
//! and the run fails, so a result never silently covers only part of the file.

use crate::analytics::anomaly::{AnomalyConfig, SeriesDetector};
use std::io::{Read, Write};

/// Most bad rows listed in one error; the count says how many there were in all.
const MAX_REPORTED: usize = 20;

/// One input sample, with its timestamp and value as written (echoed in the output).
#[derive(Debug, Clone, PartialEq)]
pub struct InputRow {
    pub line: u64,
    pub timestamp_text: String,
    pub timestamp_ms: i64,
    pub value_text: String,
    pub value: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("the input has no header: expected a first line `timestamp,value`")]
    Empty,
    #[error("line 1: expected the header `timestamp,value`, found {found:?}")]
    BadHeader { found: String },
    #[error("{count} bad row(s):\n{}", list(.rows))]
    BadRows { count: usize, rows: Vec<String> },
    #[error("cannot read the input: {0}")]
    Read(#[source] csv::Error),
    #[error("cannot write the output: {0}")]
    Write(#[source] std::io::Error),
}

fn list(rows: &[String]) -> String {
    rows.iter()
        .map(|r| format!("  {r}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Parses a timestamp: RFC 3339 (`2026-11-24T10:00:00Z`, `…+01:00`), `YYYY-MM-DD HH:MM:SS`
/// (UTC), or Unix seconds (fractions allowed). Milliseconds since the epoch.
pub fn parse_timestamp(text: &str) -> Result<i64, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<f64>() {
        // ±10^11 s is year ±5138: anything beyond is a unit mistake (ms or µs given).
        if seconds.is_finite() && seconds.abs() < 1e11 {
            return Ok((seconds * 1000.0).round() as i64);
        }
        return Err(format!(
            "{text:?} is not Unix seconds (too large: milliseconds given?)"
        ));
    }
    // humantime reads RFC 3339 in UTC and the space-separated form; an explicit offset is
    // applied here.
    let (local, offset_ms) = split_offset(text);
    let time = humantime::parse_rfc3339_weak(local).map_err(|e| {
        format!(
            "{text:?} is not a timestamp ({e}); use RFC 3339, `YYYY-MM-DD HH:MM:SS` or Unix seconds"
        )
    })?;
    let ms = match time.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    };
    Ok(ms - offset_ms)
}

/// Splits `…T10:00:00+01:00` into the local part and the offset in ms.
fn split_offset(text: &str) -> (&str, i64) {
    let bytes = text.as_bytes();
    if bytes.len() > 6 && text.len() >= 19 {
        let at = bytes.len() - 6;
        let tail = &text[at..];
        let sign = match tail.as_bytes()[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return (text, 0),
        };
        if tail.as_bytes()[3] == b':'
            && let (Ok(h), Ok(m)) = (tail[1..3].parse::<i64>(), tail[4..6].parse::<i64>())
        {
            return (&text[..at], sign * (h * 3_600_000 + m * 60_000));
        }
    }
    (text, 0)
}

/// Reads and checks every row; fails with every bad row's line number (up to 20 listed).
pub fn read_csv(input: impl Read) -> Result<Vec<InputRow>, ReplayError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);
    let mut records = reader.records();
    let header = records
        .next()
        .ok_or(ReplayError::Empty)?
        .map_err(ReplayError::Read)?;
    let names: Vec<String> = header.iter().map(str::to_ascii_lowercase).collect();
    if names != ["timestamp", "value"] {
        return Err(ReplayError::BadHeader {
            found: header.iter().collect::<Vec<_>>().join(","),
        });
    }
    let mut rows = Vec::new();
    let mut bad = Vec::new();
    let mut bad_count = 0;
    for record in records {
        let record = record.map_err(ReplayError::Read)?;
        let line = record.position().map_or(0, csv::Position::line);
        let parsed = match (record.get(0), record.get(1), record.len()) {
            (Some(ts), Some(v), 2) => parse_timestamp(ts).and_then(|timestamp_ms| {
                let value = v
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .ok_or_else(|| format!("value {v:?} is not a finite number"))?;
                Ok(InputRow {
                    line,
                    timestamp_text: ts.to_owned(),
                    timestamp_ms,
                    value_text: v.to_owned(),
                    value,
                })
            }),
            (_, _, n) => Err(format!("expected 2 fields (timestamp,value), found {n}")),
        };
        match parsed {
            Ok(row) => rows.push(row),
            Err(message) => {
                bad_count += 1;
                if bad.len() < MAX_REPORTED {
                    bad.push(format!("line {line}: {message}"));
                }
            }
        }
    }
    if bad_count > 0 {
        return Err(ReplayError::BadRows {
            count: bad_count,
            rows: bad,
        });
    }
    Ok(rows)
}

/// What a replay found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    pub rows: usize,
    pub anomalies: usize,
    pub learning: usize,
}

/// Runs the detector over `rows` in order and writes one verdict row per input row.
pub fn replay(
    rows: &[InputRow],
    config: &AnomalyConfig,
    output: impl Write,
) -> Result<ReplaySummary, ReplayError> {
    let mut writer = csv::Writer::from_writer(output);
    let write_err = |e: csv::Error| match e.into_kind() {
        csv::ErrorKind::Io(io) => ReplayError::Write(io),
        other => ReplayError::Write(std::io::Error::other(format!("{other:?}"))),
    };
    writer
        .write_record([
            "timestamp",
            "value",
            "anomaly_score",
            "is_anomaly",
            "severity",
            "detectors",
        ])
        .map_err(write_err)?;
    let mut detector = SeriesDetector::new();
    let mut summary = ReplaySummary::default();
    for row in rows {
        let verdict = detector.observe(config, row.timestamp_ms, row.value);
        summary.rows += 1;
        summary.anomalies += usize::from(verdict.is_anomaly);
        summary.learning += usize::from(verdict.learning);
        let fired: Vec<&str> = verdict.fired().into_iter().map(|d| d.name()).collect();
        writer
            .write_record([
                row.timestamp_text.as_str(),
                row.value_text.as_str(),
                &format!("{:.4}", verdict.score),
                if verdict.is_anomaly { "true" } else { "false" },
                verdict.severity.name(),
                &fired.join(";"),
            ])
            .map_err(write_err)?;
    }
    writer.flush().map_err(ReplayError::Write)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_every_documented_form() {
        let t = 1_700_000_000_000;
        assert_eq!(parse_timestamp("1700000000"), Ok(t));
        assert_eq!(parse_timestamp("1700000000.5"), Ok(t + 500));
        assert_eq!(parse_timestamp("2023-11-14T22:13:20Z"), Ok(t));
        assert_eq!(parse_timestamp("2023-11-14 22:13:20"), Ok(t));
        assert_eq!(parse_timestamp("2023-11-14T23:13:20+01:00"), Ok(t));
        assert_eq!(parse_timestamp("2023-11-14T17:13:20-05:00"), Ok(t));
        assert!(
            parse_timestamp("1700000000000")
                .unwrap_err()
                .contains("milliseconds")
        );
        assert!(
            parse_timestamp("yesterday")
                .unwrap_err()
                .contains("RFC 3339")
        );
    }

    #[test]
    fn bad_rows_are_all_reported_with_line_numbers_and_nothing_runs() {
        let csv =
            "timestamp,value\n1700000000,1\nnope,2\n1700000020,x\n1700000030,4,5\n1700000040,inf\n";
        let err = read_csv(csv.as_bytes()).unwrap_err().to_string();
        assert!(err.starts_with("4 bad row(s)"), "{err}");
        for needle in ["line 3:", "line 4:", "line 5: expected 2 fields", "line 6:"] {
            assert!(err.contains(needle), "{needle} missing in {err}");
        }
        let err = read_csv("time,val\n1,2\n".as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains("timestamp,value"), "{err}");
        assert!(matches!(read_csv("".as_bytes()), Err(ReplayError::Empty)));
    }

    #[test]
    fn one_output_row_per_input_row_in_order_with_the_spike_flagged() {
        let mut csv = String::from("Timestamp, Value\n");
        for i in 0..200i32 {
            let v = if i == 150 {
                90.0
            } else {
                50.0 + f64::from(i % 7) * 0.3
            };
            // Irregular spacing and a mix of timestamp forms.
            let t = 1_700_000_000 + i64::from(i * 10 + i % 3);
            if i % 2 == 0 {
                csv.push_str(&format!("{t},{v}\n"));
            } else {
                let when = humantime::format_rfc3339(
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(t as u64),
                );
                csv.push_str(&format!("{when},{v}\n"));
            }
        }
        let rows = read_csv(csv.as_bytes()).unwrap();
        let mut out = Vec::new();
        let summary = replay(&rows, &AnomalyConfig::default(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "timestamp,value,anomaly_score,is_anomaly,severity,detectors"
        );
        assert_eq!(lines.len(), 201);
        assert_eq!(summary.rows, 200);
        assert_eq!(summary.learning, 30);
        for (row, line) in rows.iter().zip(&lines[1..]) {
            assert!(line.starts_with(&format!("{},{},", row.timestamp_text, row.value_text)));
        }
        let spike: Vec<&str> = lines[151].split(',').collect();
        assert_eq!(spike[3], "true", "{}", lines[151]);
        assert_eq!(spike[4], "critical");
        assert!(spike[5].split(';').any(|d| d == "level"));
        assert_eq!(lines[1].split(',').nth(3), Some("false"), "learning rows");
    }
}

//! The stored form of a scheduled report, apart from the in-memory types.
//!
//! Key: one byte for the schedule (`d`, `w`, `m`) ‖ the window's start in ms, big-endian with
//! the sign bit flipped, so a schedule's reports sort oldest first and one range scan lists
//! them. Value: the JSON `{"format": 1, "record": ReportRecordV1}` compressed with Snappy (raw
//! format): a report's JSON repeats its field names in every row and shrinks several times.
//! Unknown fields are ignored, an unknown format is corruption (written by a newer hcmon).
//! The report itself is kept as the report model's own JSON (`report::model::Report`), which
//! that model keeps readable across versions.

use super::model::Report;
use super::schedule::Schedule;
use crate::analytics::slo::Window;
use crate::storage::{StoreError, Table};
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};

/// The format this version writes.
const FORMAT: u64 = 1;

/// What a stored report is called in errors.
const WHAT: &str = "report";

/// A scheduled report as the store holds it.
#[derive(Debug, Clone)]
pub struct StoredReport {
    pub schedule: Schedule,
    pub window: Window,
    pub generated_ms: i64,
    /// Delivered to every recipient (set only after the mail server accepted it).
    pub mailed: bool,
    pub report: Report,
}

impl StoredReport {
    /// Its listing.
    pub fn entry(&self) -> ReportEntry {
        ReportEntry {
            schedule: self.schedule,
            window: self.window,
            generated_ms: self.generated_ms,
            mailed: self.mailed,
        }
    }
}

/// A stored report without its content, for listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportEntry {
    pub schedule: Schedule,
    pub window: Window,
    pub generated_ms: i64,
    pub mailed: bool,
}

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    format: u64,
    record: T,
}

#[derive(Deserialize)]
struct Marker {
    format: u64,
}

#[derive(Debug, Serialize, Deserialize)]
struct WindowV1 {
    start_ms: i64,
    end_ms: i64,
}

#[derive(Serialize, Deserialize)]
struct ReportRecordV1<R> {
    /// `daily`, `weekly` or `monthly`.
    kind: String,
    window: WindowV1,
    generated_ms: i64,
    mailed: bool,
    report: R,
}

/// The key of `schedule`'s report whose window starts at `start_ms`.
pub fn key(schedule: Schedule, start_ms: i64) -> Vec<u8> {
    let mut key = Vec::with_capacity(9);
    key.push(schedule_byte(schedule));
    key.extend_from_slice(&order_preserving(start_ms).to_be_bytes());
    key
}

/// The keys of `schedule`'s reports: `[start, end)`.
pub fn key_range(schedule: Schedule) -> (Vec<u8>, Vec<u8>) {
    let byte = schedule_byte(schedule);
    (vec![byte], vec![byte + 1])
}

fn schedule_byte(schedule: Schedule) -> u8 {
    match schedule {
        Schedule::Daily => b'd',
        Schedule::Weekly => b'w',
        Schedule::Monthly => b'm',
    }
}

/// `ms` as a `u64` that sorts as the `i64` does.
fn order_preserving(ms: i64) -> u64 {
    (ms as u64) ^ (1 << 63)
}

/// The stored value of `stored`.
pub fn encode(stored: &StoredReport) -> Vec<u8> {
    let record = ReportRecordV1 {
        kind: stored.schedule.name().to_owned(),
        window: WindowV1 {
            start_ms: stored.window.start_ms,
            end_ms: stored.window.end_ms,
        },
        generated_ms: stored.generated_ms,
        mailed: stored.mailed,
        report: &stored.report,
    };
    let json = serde_json::to_vec(&Envelope {
        format: FORMAT,
        record,
    })
    .expect("records serialize");
    snap::raw::Encoder::new()
        .compress_vec(&json)
        .expect("Snappy compresses any slice under 4 GiB")
}

/// The report stored under `key`.
pub fn decode(key: &[u8], value: &[u8]) -> Result<StoredReport, StoreError> {
    let record: ReportRecordV1<Report> = decode_record(key, value)?;
    let entry = entry(key, &record)?;
    Ok(StoredReport {
        schedule: entry.schedule,
        window: entry.window,
        generated_ms: entry.generated_ms,
        mailed: entry.mailed,
        report: record.report,
    })
}

/// The listing of the report stored under `key`, without building its content.
pub fn decode_entry(key: &[u8], value: &[u8]) -> Result<ReportEntry, StoreError> {
    let record: ReportRecordV1<IgnoredAny> = decode_record(key, value)?;
    entry(key, &record)
}

fn entry<R>(key: &[u8], record: &ReportRecordV1<R>) -> Result<ReportEntry, StoreError> {
    let schedule: Schedule = record
        .kind
        .parse()
        .map_err(|e| corrupt(format!("report {}: kind {e}", show(key))))?;
    let window = Window {
        start_ms: record.window.start_ms,
        end_ms: record.window.end_ms,
    };
    if self::key(schedule, window.start_ms) != key || window.end_ms <= window.start_ms {
        return Err(corrupt(format!(
            "report {} holds a {schedule} report of [{}, {}), which its key does not name",
            show(key),
            window.start_ms,
            window.end_ms
        )));
    }
    Ok(ReportEntry {
        schedule,
        window,
        generated_ms: record.generated_ms,
        mailed: record.mailed,
    })
}

fn decode_record<R: serde::de::DeserializeOwned>(
    key: &[u8],
    value: &[u8],
) -> Result<ReportRecordV1<R>, StoreError> {
    let json = snap::raw::Decoder::new()
        .decompress_vec(value)
        .map_err(|e| corrupt(format!("report {} is not Snappy data: {e}", show(key))))?;
    let not_json =
        |e: serde_json::Error| corrupt(format!("report {} is not a JSON record: {e}", show(key)));
    let marker: Marker = serde_json::from_slice(&json).map_err(not_json)?;
    if marker.format != FORMAT {
        return Err(corrupt(format!(
            "report {} has format {}, not one this version reads ({FORMAT}); written by a newer hcmon?",
            show(key),
            marker.format
        )));
    }
    let envelope: Envelope<ReportRecordV1<R>> = serde_json::from_slice(&json).map_err(not_json)?;
    Ok(envelope.record)
}

fn corrupt(detail: String) -> StoreError {
    StoreError::corrupt(Table::Reports, WHAT, detail)
}

/// A key for messages: hex.
fn show(key: &[u8]) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_schedule_then_start() {
        let a = key(Schedule::Daily, -5);
        let b = key(Schedule::Daily, 0);
        let c = key(Schedule::Daily, 1_700_000_000_000);
        assert!(a < b && b < c);
        assert_eq!(b, [b'd', 0x80, 0, 0, 0, 0, 0, 0, 0]);
        let (start, end) = key_range(Schedule::Daily);
        assert!(start.as_slice() < a.as_slice() && c.as_slice() < end.as_slice());
        assert!(key(Schedule::Weekly, 0) > end);
    }

    #[test]
    fn garbage_is_corruption_naming_the_key() {
        let key = key(Schedule::Monthly, 0);
        let error = decode_entry(&key, b"not snappy").unwrap_err().to_string();
        assert!(error.contains("6d80000000"), "{error}");
        let newer = snap::raw::Encoder::new()
            .compress_vec(br#"{"format":2,"record":{}}"#)
            .unwrap();
        let error = decode_entry(&key, &newer).unwrap_err().to_string();
        assert!(error.contains("format 2"), "{error}");
        let wrong_key = snap::raw::Encoder::new()
            .compress_vec(
                br#"{"format":1,"record":{"kind":"daily","window":{"start_ms":0,"end_ms":1},"generated_ms":2,"mailed":false,"report":{}}}"#,
            )
            .unwrap();
        let error = decode_entry(&key, &wrong_key).unwrap_err().to_string();
        assert!(error.contains("its key does not name"), "{error}");
        let entry = decode_entry(&self::key(Schedule::Daily, 0), &wrong_key).unwrap();
        assert_eq!(
            entry,
            ReportEntry {
                schedule: Schedule::Daily,
                window: Window {
                    start_ms: 0,
                    end_ms: 1
                },
                generated_ms: 2,
                mailed: false
            }
        );
    }
}

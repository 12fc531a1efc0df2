//! How the report's own sentences (headline, findings, recommendations, pattern times) write
//! figures, the same way `render/format.rs` writes them in tables: "93.13 %", target "95 %",
//! "38 min", "2026-11-03 14:05" in the report's zone.

use crate::analytics::slo::Zone;
use jiff::Timestamp;
use jiff::civil::DateTime;

/// The local date and time of `ms` in `zone`; None outside jiff's range.
pub(super) fn local(ms: i64, zone: &Zone) -> Option<DateTime> {
    let ts = Timestamp::from_millisecond(ms).ok()?;
    Some(zone.time_zone().to_datetime(ts))
}

/// A share as a percentage with two decimals: 0.93127 → "93.13 %".
pub(super) fn percent(share: f64) -> String {
    format!("{:.2} %", share * 100.0)
}

/// A target as a percentage with only the digits it has: 0.95 → "95 %", 0.999 → "99.9 %".
pub(super) fn target(share: f64) -> String {
    let text = format!("{:.3}", share * 100.0);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} %")
}

/// Percentage points: 0.004 → "0.4 points".
pub(super) fn points(share: f64) -> String {
    let text = format!("{:.2}", share * 100.0);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} points")
}

/// A duration for people: "42 s", "4.5 min", "38 min", "2 h 05 min", "3 d 4 h". The
/// renderers word durations with it too, so a finding and its table read alike.
pub(crate) fn duration(ms: f64) -> String {
    let secs = (ms.abs() / 1000.0).round() as i64;
    let sign = if ms < 0.0 && secs > 0 { "-" } else { "" };
    let body = if secs < 60 {
        format!("{secs} s")
    } else if secs < 600 {
        format!("{:.1} min", secs as f64 / 60.0)
    } else if secs < 3600 {
        format!("{} min", (secs as f64 / 60.0).round() as i64)
    } else if secs < 48 * 3600 {
        let minutes = (secs as f64 / 60.0).round() as i64;
        format!("{} h {:02} min", minutes / 60, minutes % 60)
    } else {
        let hours = (secs as f64 / 3600.0).round() as i64;
        format!("{} d {} h", hours / 24, hours % 24)
    };
    format!("{sign}{body}")
}

/// `ms` in the zone with a strftime pattern; the raw number outside jiff's range.
pub(super) fn when(ms: i64, zone: &Zone, pattern: &str) -> String {
    local(ms, zone)
        .map(|t| t.strftime(pattern).to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// "2026-11-03".
pub(super) fn date(ms: i64, zone: &Zone) -> String {
    when(ms, zone, "%Y-%m-%d")
}

/// "2026-11-03 14:05".
pub(super) fn datetime(ms: i64, zone: &Zone) -> String {
    when(ms, zone, "%Y-%m-%d %H:%M")
}

/// Weekday names from Monday, as plurals say them ("on Mondays").
pub(super) const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// "1 incident", "3 incidents".
pub(super) fn count(n: usize, one: &str, many: &str) -> String {
    match n {
        1 => format!("1 {one}"),
        _ => format!("{n} {many}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_text_figures() {
        assert_eq!(percent(0.93127), "93.13 %");
        assert_eq!(percent(1.0), "100.00 %");
        assert_eq!(target(0.95), "95 %");
        assert_eq!(target(0.999), "99.9 %");
        assert_eq!(points(0.004), "0.4 points");
        assert_eq!(points(0.0125), "1.25 points");
        assert_eq!(duration(42_000.0), "42 s");
        assert_eq!(duration(270_000.0), "4.5 min");
        assert_eq!(duration(38.0 * 60_000.0), "38 min");
        assert_eq!(duration(125.0 * 60_000.0), "2 h 05 min");
        assert_eq!(duration(76.0 * 3_600_000.0), "3 d 4 h");
        assert_eq!(duration(-90_000.0), "-1.5 min");
        assert_eq!(count(1, "day", "days"), "1 day");
        assert_eq!(count(0, "day", "days"), "0 days");
    }

    #[test]
    fn report_text_dates_in_zone() {
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        // 2026-11-01T00:00:00+01:00 is 2026-10-31T23:00:00Z.
        let start = 1_793_487_600_000;
        assert_eq!(date(start, &berlin), "2026-11-01");
        assert_eq!(datetime(start, &Zone::utc()), "2026-10-31 23:00");
        assert_eq!(datetime(start, &berlin), "2026-11-01 00:00");
    }
}

//! How figures read in every rendered format: percentages, durations, dates in the report's
//! time zone. One place, so the PDF, the HTML and the charts say the same thing the same way.

use jiff::Timestamp;

use crate::analytics::slo::{Window, Zone};

/// What a missing figure reads as (no data, no incidents, nothing to divide by).
pub(super) const NONE: &str = "n/a";

/// The report's zone; an unknown name (a report stored before its zone was renamed) falls back
/// to UTC, and the rendered period then names UTC so no reader is misled.
pub(super) fn zone(name: &str) -> Zone {
    Zone::parse(name).unwrap_or_else(|_| Zone::utc())
}

/// A share as a percentage: 0.99531 → "99.53 %".
pub(super) fn percent(share: Option<f64>) -> String {
    match share {
        Some(v) if v.is_finite() => format!("{:.2} %", v * 100.0),
        _ => NONE.to_owned(),
    }
}

/// A target as a percentage with only the digits it has: 0.95 → "95 %", 0.999 → "99.9 %".
pub(super) fn target(share: f64) -> String {
    let text = format!("{:.3}", share * 100.0);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} %")
}

/// A plain number with fixed decimals, or n/a.
pub(super) fn number(value: Option<f64>, decimals: usize) -> String {
    match value {
        Some(v) if v.is_finite() => format!("{v:.decimals$}"),
        _ => NONE.to_owned(),
    }
}

/// A duration for people ("42 s", "2 h 05 min"), worded as the report's own findings word it.
pub(super) fn duration(ms: Option<f64>) -> String {
    match ms.filter(|v| v.is_finite()) {
        Some(ms) => crate::report::build::text::duration(ms),
        None => NONE.to_owned(),
    }
}

/// A date in the zone: "2026-11-03".
pub(super) fn date(ms: i64, zone: &Zone) -> String {
    local(ms, zone, "%Y-%m-%d")
}

/// A date and minute in the zone: "2026-11-03 14:05".
pub(super) fn datetime(ms: i64, zone: &Zone) -> String {
    local(ms, zone, "%Y-%m-%d %H:%M")
}

/// A short axis label: "Nov 03", or "Nov 03 12:00" when the axis spans hours.
pub(super) fn axis_date(ms: i64, zone: &Zone, with_time: bool) -> String {
    local(ms, zone, if with_time { "%b %d %H:%M" } else { "%b %d" })
}

/// A half-open window as it reads in a title block. A window that ends at a local midnight is
/// shown with its last day ("2026-11-01 to 2026-11-30"), as a reader counts days.
pub(super) fn window(window: Window, zone: &Zone) -> String {
    let midnight = |ms: i64| local(ms, zone, "%H:%M:%S") == "00:00:00";
    if midnight(window.start_ms) && midnight(window.end_ms) && window.end_ms > window.start_ms {
        let last = date(window.end_ms - 1, zone);
        let first = date(window.start_ms, zone);
        if first == last {
            return first;
        }
        return format!("{first} to {last}");
    }
    format!(
        "{} to {}",
        datetime(window.start_ms, zone),
        datetime(window.end_ms, zone)
    )
}

/// An RFC 3339 instant for machine-readable output (CSV).
pub(super) fn rfc3339(ms: i64) -> String {
    Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ms.to_string())
}

fn local(ms: i64, zone: &Zone, pattern: &str) -> String {
    match Timestamp::from_millisecond(ms) {
        Ok(ts) => zone
            .time_zone()
            .to_datetime(ts)
            .strftime(pattern)
            .to_string(),
        Err(_) => ms.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_format_figures() {
        assert_eq!(percent(Some(0.99531)), "99.53 %");
        assert_eq!(percent(None), "n/a");
        assert_eq!(percent(Some(f64::NAN)), "n/a");
        assert_eq!(target(0.95), "95 %");
        assert_eq!(target(0.999), "99.9 %");
        assert_eq!(target(0.9995), "99.95 %");
        assert_eq!(duration(Some(42_000.0)), "42 s");
        assert_eq!(duration(Some(270_000.0)), "4.5 min");
        assert_eq!(duration(Some(38.0 * 60_000.0)), "38 min");
        assert_eq!(duration(Some(125.0 * 60_000.0)), "2 h 05 min");
        assert_eq!(duration(Some(76.0 * 3_600_000.0)), "3 d 4 h");
        assert_eq!(duration(Some(-90_000.0)), "-1.5 min");
        assert_eq!(duration(None), "n/a");
    }

    #[test]
    fn render_format_dates_in_zone() {
        let berlin = zone("Europe/Berlin");
        // 2026-11-01T00:00:00+01:00 is 2026-10-31T23:00:00Z.
        let start = 1_793_487_600_000;
        let end = start + 30 * 86_400_000;
        assert_eq!(date(start, &berlin), "2026-11-01");
        assert_eq!(datetime(start, &zone("UTC")), "2026-10-31 23:00");
        assert_eq!(
            window(Window::new(start, end), &berlin),
            "2026-11-01 to 2026-11-30"
        );
        assert_eq!(
            window(Window::new(start, start + 86_400_000), &berlin),
            "2026-11-01"
        );
        assert_eq!(
            window(Window::new(start, start + 3_600_000), &berlin),
            "2026-11-01 00:00 to 2026-11-01 01:00"
        );
        assert_eq!(axis_date(start, &berlin, false), "Nov 01");
        assert_eq!(zone("Mars/Olympus").name(), "UTC");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}

//! Periods an SLO is judged over: calendar periods in a time zone (days, weeks starting Monday,
//! months, quarters, years) and rolling windows of whole days, as half-open millisecond windows.
//!
//! Calendar boundaries are local midnights, so a day in a zone with daylight saving time lasts
//! 23 or 25 hours twice a year; a period's length is never assumed, always computed.

use jiff::Timestamp;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

const DAY_MS: i64 = 86_400_000;

/// The longest rolling window accepted, in days (a little over a year).
pub const MAX_ROLLING_DAYS: u32 = 400;

/// A calendar period's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CalendarUnit {
    Day,
    /// Monday to Monday (ISO 8601).
    Week,
    Month,
    Quarter,
    Year,
}

/// What an SLO is judged over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Period {
    Calendar(CalendarUnit),
    /// The last `days` days before the moment of evaluation.
    Rolling {
        days: u32,
    },
}

impl Default for Period {
    fn default() -> Self {
        Period::Rolling { days: 30 }
    }
}

/// Why a period could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid period {0:?}: expected day, week, month, quarter, year or a rolling window like 30d (1d..={MAX_ROLLING_DAYS}d)"
)]
pub struct PeriodError(pub String);

impl FromStr for Period {
    type Err = PeriodError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unit = match s {
            "day" => Some(CalendarUnit::Day),
            "week" => Some(CalendarUnit::Week),
            "month" => Some(CalendarUnit::Month),
            "quarter" => Some(CalendarUnit::Quarter),
            "year" => Some(CalendarUnit::Year),
            _ => None,
        };
        if let Some(unit) = unit {
            return Ok(Period::Calendar(unit));
        }
        let days = s
            .strip_suffix('d')
            .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|n| n.parse::<u32>().ok())
            .filter(|d| (1..=MAX_ROLLING_DAYS).contains(d))
            .ok_or_else(|| PeriodError(s.to_owned()))?;
        Ok(Period::Rolling { days })
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Period::Calendar(CalendarUnit::Day) => f.write_str("day"),
            Period::Calendar(CalendarUnit::Week) => f.write_str("week"),
            Period::Calendar(CalendarUnit::Month) => f.write_str("month"),
            Period::Calendar(CalendarUnit::Quarter) => f.write_str("quarter"),
            Period::Calendar(CalendarUnit::Year) => f.write_str("year"),
            Period::Rolling { days } => write!(f, "{days}d"),
        }
    }
}

impl Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A time zone with the name it was given.
#[derive(Debug, Clone)]
pub struct Zone {
    tz: TimeZone,
    name: String,
}

impl PartialEq for Zone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

/// Why a time zone name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown time zone {0:?}: expected an IANA name like \"Europe/Berlin\" or \"UTC\"")]
pub struct ZoneError(pub String);

impl Zone {
    /// An IANA zone from the bundled database.
    pub fn parse(name: &str) -> Result<Self, ZoneError> {
        let tz = TimeZone::get(name).map_err(|_| ZoneError(name.to_owned()))?;
        Ok(Self {
            tz,
            name: name.to_owned(),
        })
    }

    pub fn utc() -> Self {
        Self {
            tz: TimeZone::UTC,
            name: "UTC".to_owned(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn time_zone(&self) -> &TimeZone {
        &self.tz
    }

    /// The local calendar date at `at_ms`; `None` outside jiff's range (years -9999..=9999).
    pub fn date_of(&self, at_ms: i64) -> Option<Date> {
        let ts = Timestamp::from_millisecond(at_ms).ok()?;
        Some(self.tz.to_datetime(ts).date())
    }

    /// The instant a local date starts (its first existing moment when midnight falls in a gap).
    pub fn start_of(&self, date: Date) -> Option<i64> {
        let zoned = date.to_zoned_datetime(self.tz.clone()).ok()?;
        let start = zoned.start_of_day().ok()?;
        Some(start.timestamp().as_millisecond())
    }
}

/// A half-open window `[start_ms, end_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Window {
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Window {
    pub fn new(start_ms: i64, end_ms: i64) -> Self {
        Self { start_ms, end_ms }
    }

    pub fn len_ms(&self) -> i64 {
        (self.end_ms - self.start_ms).max(0)
    }

    pub fn contains(&self, at_ms: i64) -> bool {
        (self.start_ms..self.end_ms).contains(&at_ms)
    }

    /// The overlap of two windows, if any.
    pub fn intersect(&self, other: &Window) -> Option<Window> {
        let start = self.start_ms.max(other.start_ms);
        let end = self.end_ms.min(other.end_ms);
        (start < end).then_some(Window::new(start, end))
    }
}

impl Period {
    /// Calendar: the period holding `at_ms`; rolling: the `days` days before `at_ms`.
    pub fn containing(&self, at_ms: i64, zone: &Zone) -> Window {
        match self {
            Period::Rolling { days } => {
                Window::new(at_ms.saturating_sub(i64::from(*days) * DAY_MS), at_ms)
            }
            Period::Calendar(unit) => calendar_window(*unit, at_ms, zone)
                // Outside jiff's years -9999..=9999: nominal lengths, so callers still get a window.
                .unwrap_or_else(|| {
                    let start = at_ms.div_euclid(self.nominal_ms()) * self.nominal_ms();
                    Window::new(start, start.saturating_add(self.nominal_ms()))
                }),
        }
    }

    /// The last complete period before `at_ms` (rolling windows are always complete).
    pub fn previous(&self, at_ms: i64, zone: &Zone) -> Window {
        match self {
            Period::Rolling { .. } => self.containing(at_ms, zone),
            Period::Calendar(_) => {
                let current = self.containing(at_ms, zone);
                self.containing(current.start_ms - 1, zone)
            }
        }
    }

    /// The period's nominal length, which burn-rate windows are scaled by.
    pub fn nominal_ms(&self) -> i64 {
        let days = match self {
            Period::Calendar(CalendarUnit::Day) => 1,
            Period::Calendar(CalendarUnit::Week) => 7,
            Period::Calendar(CalendarUnit::Month) => 30,
            Period::Calendar(CalendarUnit::Quarter) => 90,
            Period::Calendar(CalendarUnit::Year) => 365,
            Period::Rolling { days } => i64::from(*days),
        };
        days * DAY_MS
    }
}

fn calendar_window(unit: CalendarUnit, at_ms: i64, zone: &Zone) -> Option<Window> {
    let date = zone.date_of(at_ms)?;
    let (first, next) = match unit {
        CalendarUnit::Day => (date, date.tomorrow().ok()?),
        CalendarUnit::Week => {
            let back = i64::from(date.weekday().to_monday_zero_offset());
            let monday = date.checked_sub(jiff::Span::new().days(back)).ok()?;
            (monday, monday.checked_add(jiff::Span::new().days(7)).ok()?)
        }
        CalendarUnit::Month => {
            let first = date.first_of_month();
            (first, first.checked_add(jiff::Span::new().months(1)).ok()?)
        }
        CalendarUnit::Quarter => {
            let month = (date.month() - 1) / 3 * 3 + 1;
            let first = Date::new(date.year(), month, 1).ok()?;
            (first, first.checked_add(jiff::Span::new().months(3)).ok()?)
        }
        CalendarUnit::Year => {
            let first = date.first_of_year();
            (first, first.checked_add(jiff::Span::new().years(1)).ok()?)
        }
    };
    Some(Window::new(zone.start_of(first)?, zone.start_of(next)?))
}

/// The calendar days of `zone` overlapping `window`, clipped to it, in order.
pub fn days(zone: &Zone, window: Window) -> Vec<Window> {
    let mut out = Vec::new();
    let mut at = window.start_ms;
    while at < window.end_ms {
        let day = Period::Calendar(CalendarUnit::Day).containing(at, zone);
        // A day always ends after `at`; the guard keeps a broken zone from looping forever.
        let end = day.end_ms.max(at + 1).min(window.end_ms);
        out.push(Window::new(at, end));
        at = end;
    }
    out
}

/// A daily local time range, minutes after midnight (`to <= from` runs past midnight), as the
/// windows it makes over `range`, clipped to it. Local times that do not exist on a DST day
/// move to the first moment after the gap.
pub fn daily_windows(zone: &Zone, range: Window, from_minute: u32, to_minute: u32) -> Vec<Window> {
    let mut out = Vec::new();
    // From the day before: a window that started yesterday evening may reach into the range.
    let Some(mut date) = zone
        .date_of(range.start_ms)
        .and_then(|d| d.yesterday().ok())
    else {
        return out;
    };
    let at = |date: Date, minute: u32| -> Option<i64> {
        let time = jiff::civil::Time::new((minute / 60) as i8, (minute % 60) as i8, 0, 0).ok()?;
        let zoned = date
            .to_datetime(time)
            .to_zoned_datetime(zone.tz.clone())
            .ok()?;
        Some(zoned.timestamp().as_millisecond())
    };
    loop {
        let Some(start) = at(date, from_minute) else {
            return out;
        };
        if start >= range.end_ms {
            return out;
        }
        let end_date = if to_minute <= from_minute {
            date.tomorrow().ok()
        } else {
            Some(date)
        };
        let Some(end) = end_date.and_then(|d| at(d, to_minute)) else {
            return out;
        };
        if let Some(w) = Window::new(start, end).intersect(&range) {
            out.push(w);
        }
        match date.tomorrow() {
            Ok(next) => date = next,
            Err(_) => return out,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR_MS: i64 = 3_600_000;

    fn ms(rfc3339: &str) -> i64 {
        rfc3339.parse::<Timestamp>().unwrap().as_millisecond()
    }

    fn berlin() -> Zone {
        Zone::parse("Europe/Berlin").unwrap()
    }

    #[test]
    fn slo_periods_parse_and_print() {
        for text in [
            "day", "week", "month", "quarter", "year", "7d", "28d", "30d", "400d",
        ] {
            assert_eq!(text.parse::<Period>().unwrap().to_string(), text);
        }
        for bad in ["", "0d", "401d", "d", "30", "-1d", "month ", "1.5d", "+3d"] {
            assert!(bad.parse::<Period>().is_err(), "{bad:?}");
        }
        assert_eq!(Period::default(), Period::Rolling { days: 30 });
        assert_eq!(
            serde_json::to_string(&Period::Rolling { days: 7 }).unwrap(),
            "\"7d\""
        );
        let back: Period = serde_json::from_str("\"quarter\"").unwrap();
        assert_eq!(back, Period::Calendar(CalendarUnit::Quarter));
    }

    #[test]
    fn slo_zone_names_are_checked() {
        assert!(Zone::parse("Europe/Berlin").is_ok());
        assert!(Zone::parse("Mars/Olympus").is_err());
        assert_eq!(Zone::utc().name(), "UTC");
    }

    #[test]
    fn slo_dst_days_last_23_and_25_hours() {
        let zone = berlin();
        let day = Period::Calendar(CalendarUnit::Day);
        // Spring forward: 2026-03-29 02:00 CET -> 03:00 CEST.
        let spring = day.containing(ms("2026-03-29T12:00:00Z"), &zone);
        assert_eq!(spring.start_ms, ms("2026-03-28T23:00:00Z"));
        assert_eq!(spring.end_ms, ms("2026-03-29T22:00:00Z"));
        assert_eq!(spring.len_ms(), 23 * HOUR_MS);
        // Fall back: 2026-10-25 03:00 CEST -> 02:00 CET.
        let autumn = day.containing(ms("2026-10-25T12:00:00Z"), &zone);
        assert_eq!(autumn.start_ms, ms("2026-10-24T22:00:00Z"));
        assert_eq!(autumn.end_ms, ms("2026-10-25T23:00:00Z"));
        assert_eq!(autumn.len_ms(), 25 * HOUR_MS);

        let all = days(
            &zone,
            Window::new(ms("2026-03-28T23:00:00Z"), ms("2026-03-31T22:00:00Z")),
        );
        let lengths: Vec<i64> = all.iter().map(|d| d.len_ms() / HOUR_MS).collect();
        assert_eq!(lengths, vec![23, 24, 24]);
        // Clipped at both ends.
        let clipped = days(
            &zone,
            Window::new(ms("2026-10-24T12:00:00Z"), ms("2026-10-25T12:00:00Z")),
        );
        assert_eq!(
            clipped,
            vec![
                Window::new(ms("2026-10-24T12:00:00Z"), ms("2026-10-24T22:00:00Z")),
                Window::new(ms("2026-10-24T22:00:00Z"), ms("2026-10-25T12:00:00Z")),
            ]
        );
        assert!(days(&zone, Window::new(5, 5)).is_empty());
    }

    #[test]
    fn slo_weeks_start_monday() {
        let zone = berlin();
        let week = Period::Calendar(CalendarUnit::Week);
        // Wednesday 2026-03-25; the week holds the spring DST change: 7 days minus an hour.
        let w = week.containing(ms("2026-03-25T10:00:00Z"), &zone);
        assert_eq!(w.start_ms, ms("2026-03-22T23:00:00Z")); // Monday 23rd, 00:00 CET
        assert_eq!(w.end_ms, ms("2026-03-29T22:00:00Z")); // Monday 30th, 00:00 CEST
        assert_eq!(w.len_ms(), 7 * DAY_MS - HOUR_MS);
        // A Monday at local midnight is its own week's start; Sunday belongs to the week before.
        assert_eq!(
            week.containing(ms("2026-03-29T22:00:00Z"), &zone).start_ms,
            ms("2026-03-29T22:00:00Z")
        );
        assert_eq!(
            week.containing(ms("2026-03-29T21:59:59Z"), &zone).start_ms,
            w.start_ms
        );
        assert_eq!(
            week.previous(ms("2026-03-25T10:00:00Z"), &zone).end_ms,
            w.start_ms
        );
    }

    #[test]
    fn slo_month_quarter_year_boundaries() {
        let zone = berlin();
        let month = Period::Calendar(CalendarUnit::Month);
        // October 2026 holds the fall-back change: 31 days plus an hour.
        let october = month.containing(ms("2026-10-31T22:59:59Z"), &zone);
        assert_eq!(october.start_ms, ms("2026-09-30T22:00:00Z"));
        assert_eq!(october.end_ms, ms("2026-10-31T23:00:00Z"));
        assert_eq!(october.len_ms(), 31 * DAY_MS + HOUR_MS);
        // The first moment of November is November's.
        assert_eq!(
            month.containing(ms("2026-10-31T23:00:00Z"), &zone).start_ms,
            october.end_ms
        );
        // Previous complete month from inside November.
        assert_eq!(month.previous(ms("2026-11-15T00:00:00Z"), &zone), october);
        // February of a leap year.
        let feb = month.containing(ms("2028-02-10T00:00:00Z"), &Zone::utc());
        assert_eq!(feb.len_ms(), 29 * DAY_MS);

        let quarter = Period::Calendar(CalendarUnit::Quarter);
        let q1 = quarter.containing(ms("2026-03-31T21:00:00Z"), &zone);
        assert_eq!(q1.start_ms, ms("2025-12-31T23:00:00Z"));
        assert_eq!(q1.end_ms, ms("2026-03-31T22:00:00Z"));
        let q4 = quarter.containing(ms("2026-12-31T12:00:00Z"), &Zone::utc());
        assert_eq!(
            q4,
            Window::new(ms("2026-10-01T00:00:00Z"), ms("2027-01-01T00:00:00Z"))
        );

        let year = Period::Calendar(CalendarUnit::Year);
        // 23:30 UTC on New Year's Eve is already next year in Berlin.
        let y = year.containing(ms("2026-12-31T23:30:00Z"), &zone);
        assert_eq!(y.start_ms, ms("2026-12-31T23:00:00Z"));
        assert_eq!(
            year.previous(ms("2026-12-31T23:30:00Z"), &zone).start_ms,
            ms("2025-12-31T23:00:00Z")
        );
    }

    #[test]
    fn slo_daily_windows_follow_local_time() {
        let zone = berlin();
        // 02:00-03:00 local over the spring DST day: 02:00 does not exist, so that day's
        // window starts at 03:00 CEST and is empty; the days around it are whole hours.
        let range = Window::new(ms("2026-03-28T00:00:00Z"), ms("2026-03-31T00:00:00Z"));
        let windows = daily_windows(&zone, range, 120, 180);
        assert_eq!(
            windows,
            vec![
                Window::new(ms("2026-03-28T01:00:00Z"), ms("2026-03-28T02:00:00Z")),
                Window::new(ms("2026-03-30T00:00:00Z"), ms("2026-03-30T01:00:00Z")),
            ]
        );
        // Past midnight: 23:00-01:00, clipped at the range's start.
        let range = Window::new(ms("2026-06-01T22:30:00Z"), ms("2026-06-02T12:00:00Z"));
        assert_eq!(
            daily_windows(&Zone::utc(), range, 23 * 60, 60),
            vec![Window::new(
                ms("2026-06-01T23:00:00Z"),
                ms("2026-06-02T01:00:00Z")
            ),]
        );
    }

    #[test]
    fn slo_rolling_windows() {
        let zone = berlin();
        let at = ms("2026-03-30T12:00:00Z");
        let rolling = Period::Rolling { days: 7 };
        let w = rolling.containing(at, &zone);
        assert_eq!(w, Window::new(at - 7 * DAY_MS, at));
        assert_eq!(rolling.previous(at, &zone), w);
        assert_eq!(rolling.nominal_ms(), 7 * DAY_MS);
        assert_eq!(
            Period::Calendar(CalendarUnit::Month).nominal_ms(),
            30 * DAY_MS
        );
    }
}

//! When the scheduled reports are sent and what each covers, in the report time zone (pure: the
//! caller passes the time).
//!
//! - daily: at 00:00, covering the calendar day before;
//! - weekly: on Monday at 09:00, covering the week before, Monday 00:00 to Monday 00:00;
//! - monthly: on the 1st at 00:00, covering the month before.
//!
//! [`due`] names the newest period whose send time has passed. The scheduler generates it iff
//! the store does not hold it yet, so a restart at 00:00:30 neither skips nor doubles the daily
//! report: the period is the same before and after the restart. Days are calendar days of the
//! zone, 23 or 25 hours long across a DST change; a midnight a DST change skips is the first
//! instant after the gap.

use super::model::ReportKind;
use crate::analytics::slo::Window;
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use std::fmt;
use std::str::FromStr;

/// The reports made on a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Schedule {
    Daily,
    Weekly,
    Monthly,
}

impl Schedule {
    pub const ALL: [Schedule; 3] = [Schedule::Daily, Schedule::Weekly, Schedule::Monthly];

    /// The report kind this schedule makes.
    pub fn kind(self) -> ReportKind {
        match self {
            Schedule::Daily => ReportKind::Daily,
            Schedule::Weekly => ReportKind::Weekly,
            Schedule::Monthly => ReportKind::Monthly,
        }
    }

    /// `daily`, `weekly` or `monthly`: in ids, file names, config keys and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Schedule::Daily => "daily",
            Schedule::Weekly => "weekly",
            Schedule::Monthly => "monthly",
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Schedule {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Schedule::ALL
            .into_iter()
            .find(|s| s.name() == text)
            .ok_or_else(|| format!("{text:?} is not daily, weekly or monthly"))
    }
}

/// A scheduled report's period and when it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub window: Window,
    pub send_ms: i64,
}

/// Why a time cannot be placed in the calendar (beyond jiff's range of years -9999..=9999).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} ms is outside the calendar's range")]
pub struct OutOfRange(pub i64);

/// The newest period of `schedule` whose send time is at or before `now_ms`.
pub fn due(schedule: Schedule, zone: &TimeZone, now_ms: i64) -> Result<Due, OutOfRange> {
    let range = |_| OutOfRange(now_ms);
    let today = Timestamp::from_millisecond(now_ms)
        .map_err(range)?
        .to_zoned_datetime(zone.clone())
        .date();
    // The first day after the period and the one that begins it.
    let (end, start, send_ms) = match schedule {
        Schedule::Daily => {
            let start = today.checked_sub(1.day()).map_err(range)?;
            (today, start, midnight(zone, today, now_ms)?)
        }
        Schedule::Weekly => {
            let monday = today
                .checked_sub(i64::from(today.weekday().to_monday_zero_offset()).days())
                .map_err(range)?;
            let send = at(zone, monday, 9, now_ms)?;
            let (monday, send) = match send <= now_ms {
                true => (monday, send),
                false => {
                    let before = monday.checked_sub(1.week()).map_err(range)?;
                    (before, at(zone, before, 9, now_ms)?)
                }
            };
            (monday, monday.checked_sub(1.week()).map_err(range)?, send)
        }
        Schedule::Monthly => {
            let first = today.first_of_month();
            let start = first.checked_sub(1.month()).map_err(range)?;
            (first, start, midnight(zone, first, now_ms)?)
        }
    };
    Ok(Due {
        window: Window {
            start_ms: midnight(zone, start, now_ms)?,
            end_ms: midnight(zone, end, now_ms)?,
        },
        send_ms,
    })
}

/// The first instant of `date` in `zone`.
pub fn midnight(zone: &TimeZone, date: Date, now_ms: i64) -> Result<i64, OutOfRange> {
    at(zone, date, 0, now_ms)
}

fn at(zone: &TimeZone, date: Date, hour: i8, now_ms: i64) -> Result<i64, OutOfRange> {
    zone.to_zoned_datetime(date.at(hour, 0, 0, 0))
        .map(|z| z.timestamp().as_millisecond())
        .map_err(|_| OutOfRange(now_ms))
}

/// The calendar date of `ms` in `zone`.
pub fn local_date(zone: &TimeZone, ms: i64) -> Result<Date, OutOfRange> {
    Ok(Timestamp::from_millisecond(ms)
        .map_err(|_| OutOfRange(ms))?
        .to_zoned_datetime(zone.clone())
        .date())
}

/// The period a scheduled report covers, as people say it: `Sunday 29 November 2026`,
/// `week of Monday 23 November 2026`, `November 2026`.
pub fn period_label(schedule: Schedule, zone: &TimeZone, start_ms: i64) -> String {
    let Ok(date) = local_date(zone, start_ms) else {
        return format!("{start_ms} ms");
    };
    let day = |d: Date| {
        format!(
            "{} {} {} {}",
            weekday_name(d.weekday()),
            d.day(),
            month_name(d.month()),
            d.year()
        )
    };
    match schedule {
        Schedule::Daily => day(date),
        Schedule::Weekly => format!("week of {}", day(date)),
        Schedule::Monthly => format!("{} {}", month_name(date.month()), date.year()),
    }
}

fn weekday_name(weekday: Weekday) -> &'static str {
    match weekday {
        Weekday::Monday => "Monday",
        Weekday::Tuesday => "Tuesday",
        Weekday::Wednesday => "Wednesday",
        Weekday::Thursday => "Thursday",
        Weekday::Friday => "Friday",
        Weekday::Saturday => "Saturday",
        Weekday::Sunday => "Sunday",
    }
}

fn month_name(month: i8) -> &'static str {
    const NAMES: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    usize::try_from(month - 1)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("?")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i64 {
        text.parse::<Timestamp>().unwrap().as_millisecond()
    }

    fn berlin() -> TimeZone {
        TimeZone::get("Europe/Berlin").unwrap()
    }

    #[track_caller]
    fn check(schedule: Schedule, zone: &TimeZone, now: &str, expected: (&str, &str, &str)) {
        let due = due(schedule, zone, ms(now)).unwrap();
        let (start, end, send) = expected;
        assert_eq!(
            due,
            Due {
                window: Window {
                    start_ms: ms(start),
                    end_ms: ms(end),
                },
                send_ms: ms(send),
            },
            "{schedule} at {now}"
        );
    }

    #[test]
    fn daily_covers_the_day_before_from_midnight_on() {
        let utc = TimeZone::UTC;
        let day = (
            "2026-11-29T00:00:00Z",
            "2026-11-30T00:00:00Z",
            "2026-11-30T00:00:00Z",
        );
        check(Schedule::Daily, &utc, "2026-11-30T00:00:00Z", day);
        check(Schedule::Daily, &utc, "2026-11-30T00:00:30Z", day);
        check(Schedule::Daily, &utc, "2026-11-30T23:59:59.999Z", day);
        check(
            Schedule::Daily,
            &utc,
            "2026-11-29T23:59:59.999Z",
            (
                "2026-11-28T00:00:00Z",
                "2026-11-29T00:00:00Z",
                "2026-11-29T00:00:00Z",
            ),
        );
        // Berlin is UTC+1 in winter: its midnight is 23:00 UTC the day before.
        check(
            Schedule::Daily,
            &berlin(),
            "2026-11-29T23:30:00Z",
            (
                "2026-11-28T23:00:00Z",
                "2026-11-29T23:00:00Z",
                "2026-11-29T23:00:00Z",
            ),
        );
    }

    #[test]
    fn daily_periods_across_dst_changes_are_23_and_25_hours() {
        let zone = berlin();
        // Summer time began on Sunday 29 March 2026 at 02:00 (UTC+1 → UTC+2).
        check(
            Schedule::Daily,
            &zone,
            "2026-03-30T08:00:00Z",
            (
                "2026-03-28T23:00:00Z",
                "2026-03-29T22:00:00Z",
                "2026-03-29T22:00:00Z",
            ),
        );
        // It ended on Sunday 25 October 2026 at 03:00 (UTC+2 → UTC+1).
        let due = due(Schedule::Daily, &zone, ms("2026-10-26T08:00:00Z")).unwrap();
        assert_eq!(due.window.end_ms - due.window.start_ms, 25 * 3_600_000);
        assert_eq!(due.window.start_ms, ms("2026-10-24T22:00:00Z"));
    }

    #[test]
    fn weekly_is_sent_monday_at_nine_for_the_week_before() {
        let utc = TimeZone::UTC;
        // Monday 30 November 2026.
        let before_nine = (
            "2026-11-16T00:00:00Z",
            "2026-11-23T00:00:00Z",
            "2026-11-23T09:00:00Z",
        );
        let after_nine = (
            "2026-11-23T00:00:00Z",
            "2026-11-30T00:00:00Z",
            "2026-11-30T09:00:00Z",
        );
        check(Schedule::Weekly, &utc, "2026-11-30T08:59:59Z", before_nine);
        check(Schedule::Weekly, &utc, "2026-11-30T09:00:00Z", after_nine);
        check(Schedule::Weekly, &utc, "2026-12-06T23:00:00Z", after_nine);
        check(Schedule::Weekly, &utc, "2026-12-01T00:00:00Z", after_nine);
        // Across the end of summer time in Berlin: 7 days and one hour.
        let zone = berlin();
        check(
            Schedule::Weekly,
            &zone,
            "2026-10-26T08:00:00Z",
            (
                "2026-10-18T22:00:00Z",
                "2026-10-25T23:00:00Z",
                "2026-10-26T08:00:00Z",
            ),
        );
    }

    #[test]
    fn monthly_is_sent_on_the_first_for_the_month_before() {
        let utc = TimeZone::UTC;
        check(
            Schedule::Monthly,
            &utc,
            "2026-12-01T00:00:00Z",
            (
                "2026-11-01T00:00:00Z",
                "2026-12-01T00:00:00Z",
                "2026-12-01T00:00:00Z",
            ),
        );
        check(
            Schedule::Monthly,
            &utc,
            "2026-11-30T23:59:59Z",
            (
                "2026-10-01T00:00:00Z",
                "2026-11-01T00:00:00Z",
                "2026-11-01T00:00:00Z",
            ),
        );
        check(
            Schedule::Monthly,
            &utc,
            "2027-01-15T12:00:00Z",
            (
                "2026-12-01T00:00:00Z",
                "2027-01-01T00:00:00Z",
                "2027-01-01T00:00:00Z",
            ),
        );
        // March in Berlin loses an hour to summer time.
        check(
            Schedule::Monthly,
            &berlin(),
            "2026-04-01T00:00:00Z",
            (
                "2026-02-28T23:00:00Z",
                "2026-03-31T22:00:00Z",
                "2026-03-31T22:00:00Z",
            ),
        );
    }

    #[test]
    fn a_midnight_inside_a_dst_gap_starts_after_the_gap() {
        // Santiago (Chile) moved its clocks from 00:00 to 01:00 on 6 September 2026.
        let zone = TimeZone::get("America/Santiago").unwrap();
        let start = midnight(&zone, jiff::civil::date(2026, 9, 6), 0).unwrap();
        assert_eq!(start, ms("2026-09-06T04:00:00Z"));
    }

    #[test]
    fn labels_name_the_period() {
        let utc = TimeZone::UTC;
        let start = ms("2026-11-29T00:00:00Z");
        assert_eq!(
            period_label(Schedule::Daily, &utc, start),
            "Sunday 29 November 2026"
        );
        assert_eq!(
            period_label(Schedule::Weekly, &utc, ms("2026-11-23T00:00:00Z")),
            "week of Monday 23 November 2026"
        );
        assert_eq!(
            period_label(Schedule::Monthly, &berlin(), ms("2026-10-31T23:00:00Z")),
            "November 2026"
        );
        assert_eq!("weekly".parse(), Ok(Schedule::Weekly));
        assert!("hourly".parse::<Schedule>().is_err());
    }
}

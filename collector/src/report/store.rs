//! The `reports` table: scheduled reports, newest kept per schedule (retention by count, applied
//! after each store), and their ids.
//!
//! An id names a report as people read it: `daily-2026-11-29`, `weekly-2026-11-23` (the Monday
//! that starts the week), `monthly-2026-11`, dates in the report time zone. It is parsed
//! strictly and looked up among the schedule's stored reports by the id each one has, so a
//! changed time zone never makes a stored report unreachable.

use super::records::{self, ReportEntry, StoredReport};
use super::schedule::{Schedule, local_date};
use crate::storage::{KvBatch, StoreError, Table, Tsdb};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// A stored report's name: its schedule and the local date its window starts on (the first of
/// the month for monthly ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ReportId {
    pub schedule: Schedule,
    pub date: Date,
}

impl ReportId {
    /// The id of `entry`, its dates read in `zone`.
    pub fn of(entry: &ReportEntry, zone: &TimeZone) -> Option<Self> {
        let date = local_date(zone, entry.window.start_ms).ok()?;
        Some(Self {
            schedule: entry.schedule,
            date,
        })
    }
}

impl fmt::Display for ReportId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.date;
        match self.schedule {
            Schedule::Monthly => write!(f, "monthly-{:04}-{:02}", d.year(), d.month()),
            s => write!(f, "{s}-{:04}-{:02}-{:02}", d.year(), d.month(), d.day()),
        }
    }
}

/// An id that is not `daily-YYYY-MM-DD`, `weekly-YYYY-MM-DD` (a Monday) or `monthly-YYYY-MM`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a report id: daily-YYYY-MM-DD, weekly-YYYY-MM-DD (a Monday) or monthly-YYYY-MM"
)]
pub struct BadReportId(pub String);

impl FromStr for ReportId {
    type Err = BadReportId;

    fn from_str(text: &str) -> Result<Self, BadReportId> {
        let bad = || BadReportId(text.to_owned());
        let (kind, date) = text.split_once('-').ok_or_else(bad)?;
        let schedule: Schedule = kind.parse().map_err(|_| bad())?;
        let parts: Vec<&str> = date.split('-').collect();
        let number = |part: &str, digits: usize| {
            (part.len() == digits && part.bytes().all(|b| b.is_ascii_digit()))
                .then(|| part.parse::<i16>().ok())
                .flatten()
                .ok_or_else(bad)
        };
        let (year, month, day) = match (schedule, parts.as_slice()) {
            (Schedule::Monthly, [y, m]) => (number(y, 4)?, number(m, 2)?, 1),
            (Schedule::Daily | Schedule::Weekly, [y, m, d]) => {
                (number(y, 4)?, number(m, 2)?, number(d, 2)?)
            }
            _ => return Err(bad()),
        };
        let month = i8::try_from(month).map_err(|_| bad())?;
        let day = i8::try_from(day).map_err(|_| bad())?;
        let date = Date::new(year, month, day).map_err(|_| bad())?;
        if schedule == Schedule::Weekly && date.weekday() != jiff::civil::Weekday::Monday {
            return Err(bad());
        }
        Ok(Self { schedule, date })
    }
}

/// How many reports of each schedule are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub daily: usize,
    pub weekly: usize,
    pub monthly: usize,
}

impl Retention {
    fn of(&self, schedule: Schedule) -> usize {
        match schedule {
            Schedule::Daily => self.daily,
            Schedule::Weekly => self.weekly,
            Schedule::Monthly => self.monthly,
        }
    }
}

/// The stored reports.
#[derive(Clone)]
pub struct ReportStore {
    tsdb: Arc<Tsdb>,
    retention: Retention,
}

impl ReportStore {
    pub fn new(tsdb: Arc<Tsdb>, retention: Retention) -> Self {
        Self { tsdb, retention }
    }

    /// `schedule`'s report starting at `start_ms`.
    pub fn get(
        &self,
        schedule: Schedule,
        start_ms: i64,
    ) -> Result<Option<StoredReport>, StoreError> {
        let key = records::key(schedule, start_ms);
        match self.tsdb.kv().get(Table::Reports, &key)? {
            Some(value) => records::decode(&key, &value).map(Some),
            None => Ok(None),
        }
    }

    /// The listing of `schedule`'s report starting at `start_ms`.
    pub fn entry(
        &self,
        schedule: Schedule,
        start_ms: i64,
    ) -> Result<Option<ReportEntry>, StoreError> {
        let key = records::key(schedule, start_ms);
        match self.tsdb.kv().get(Table::Reports, &key)? {
            Some(value) => records::decode_entry(&key, &value).map(Some),
            None => Ok(None),
        }
    }

    /// Stores `report` durably (replacing one of the same schedule and start), then drops the
    /// schedule's oldest beyond its retention.
    pub fn put(&self, report: &StoredReport) -> Result<(), StoreError> {
        let mut batch = KvBatch::default();
        let key = records::key(report.schedule, report.window.start_ms);
        batch.put(Table::Reports, key, records::encode(report));
        self.tsdb.kv().write(batch, true)?;
        self.apply_retention(report.schedule)
    }

    /// Marks a stored report as delivered.
    pub fn mark_mailed(&self, schedule: Schedule, start_ms: i64) -> Result<(), StoreError> {
        if let Some(mut stored) = self.get(schedule, start_ms)? {
            stored.mailed = true;
            let mut batch = KvBatch::default();
            let key = records::key(schedule, start_ms);
            batch.put(Table::Reports, key, records::encode(&stored));
            self.tsdb.kv().write(batch, true)?;
        }
        Ok(())
    }

    /// Every stored report of `schedule`, oldest first.
    pub fn list(&self, schedule: Schedule) -> Result<Vec<ReportEntry>, StoreError> {
        let (start, end) = records::key_range(schedule);
        let mut out = Vec::new();
        let mut failed = None;
        self.tsdb
            .kv()
            .scan(
                Table::Reports,
                &start,
                &end,
                &mut |key, value| match records::decode_entry(key, value) {
                    Ok(entry) => {
                        out.push(entry);
                        true
                    }
                    Err(e) => {
                        failed = Some(e);
                        false
                    }
                },
            )?;
        match failed {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Every stored report, by schedule (daily, weekly, monthly), oldest first within each.
    pub fn list_all(&self) -> Result<Vec<ReportEntry>, StoreError> {
        let mut all = Vec::new();
        for schedule in Schedule::ALL {
            all.extend(self.list(schedule)?);
        }
        Ok(all)
    }

    /// The report `id` names, its dates read in `zone` (the newest, should two share it after
    /// a change of time zone).
    pub fn find(&self, id: ReportId, zone: &TimeZone) -> Result<Option<StoredReport>, StoreError> {
        let found = self
            .list(id.schedule)?
            .into_iter()
            .rev()
            .find(|entry| ReportId::of(entry, zone) == Some(id));
        match found {
            Some(entry) => self.get(entry.schedule, entry.window.start_ms),
            None => Ok(None),
        }
    }

    fn apply_retention(&self, schedule: Schedule) -> Result<(), StoreError> {
        let (start, end) = records::key_range(schedule);
        let mut keys = Vec::new();
        self.tsdb
            .kv()
            .scan(Table::Reports, &start, &end, &mut |key, _| {
                keys.push(key.to_vec());
                true
            })?;
        let keep = self.retention.of(schedule);
        let excess = keys.len().saturating_sub(keep);
        if excess == 0 {
            return Ok(());
        }
        let mut batch = KvBatch::default();
        for key in keys.into_iter().take(excess) {
            batch.delete(Table::Reports, key);
        }
        self.tsdb.kv().write(batch, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_print_and_parse_strictly() {
        let id = |s: Schedule, y, m, d| ReportId {
            schedule: s,
            date: jiff::civil::date(y, m, d),
        };
        for (text, expected) in [
            ("daily-2026-11-29", id(Schedule::Daily, 2026, 11, 29)),
            ("weekly-2026-11-23", id(Schedule::Weekly, 2026, 11, 23)),
            ("monthly-2026-11", id(Schedule::Monthly, 2026, 11, 1)),
        ] {
            assert_eq!(text.parse::<ReportId>(), Ok(expected));
            assert_eq!(expected.to_string(), text);
        }
        for bad in [
            "",
            "daily",
            "daily-",
            "daily-2026-11",
            "daily-2026-11-31",
            "daily-2026-1-29",
            "daily-+026-11-29",
            "daily-2026-11-29-",
            "weekly-2026-11-24",
            "monthly-2026-11-01",
            "monthly-2026-13",
            "yearly-2026",
            "Daily-2026-11-29",
        ] {
            let error = bad.parse::<ReportId>().unwrap_err();
            assert!(error.to_string().contains("daily-YYYY-MM-DD"), "{bad}");
        }
    }
}

//! SLO arithmetic, pure: calendar periods in a time zone, tallies of good/bad/unknown/excluded
//! events or time slices, error budgets, multi-window burn rates and incident response
//! distributions. The collector's `slo` module does the I/O that turns stored samples and incidents into the
//! intervals these functions count; everything here takes time as an argument.
//!
//! Counting policy (the same everywhere, stated in every result):
//! - maintenance windows leave the denominator ([`tally::Outcome::Excluded`]);
//! - time or runs for which the collector had no data are [`tally::Outcome::Unknown`], never
//!   up, and show as coverage instead of compliance;
//! - every figure is the sum of the [`slices::Interval`]s that make it, so it can be checked.

pub mod burn;
pub mod calendar;
pub mod response;
pub mod slices;
pub mod tally;

pub use burn::{BurnRule, BurnSeverity, BurnVerdict, burn_rules, judge};
pub use calendar::{CalendarUnit, Period, Window, Zone, days};
pub use response::{Distribution, IncidentFact, IncidentSeverity, MaintenanceWindow, distribution};
pub use slices::{Budgeting, Interval};
pub use tally::{Budget, Outcome, Status, Tally, budget, burn_rate, status, time_to_exhaustion_ms};

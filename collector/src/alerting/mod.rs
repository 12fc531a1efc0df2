//! Alerting (issue 6), pure parts first: the alert lifecycle state machine and escalation
//! policies. Both take time as an argument, so the collector can persist their state in
//! RocksDB and tests can drive 15/30/60-minute escalations in microseconds.

pub mod escalation;
pub mod lifecycle;
pub mod policy;
pub mod rules;

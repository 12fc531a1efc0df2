//! Alerting (issue 6), pure parts first: the alert lifecycle state machine and escalation
//! policies. Both take time as an argument, so the collector can persist their state in
//! RocksDB and tests can drive 15/30/60-minute escalations in microseconds.

pub mod book;
pub mod config;
pub mod escalation;
pub mod evaluate;
pub mod lifecycle;
pub mod notify;
pub mod policy;
pub mod rules;
pub mod service;
pub mod store;
pub mod time;

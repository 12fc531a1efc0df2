//! Alerting: rules turned into alerts, alerts into notifications, with their state kept in the
//! store. The pure parts take time as an argument (`lifecycle`, `escalation`, `policy`,
//! `evaluate`, `book`), so tests drive 15/30/60-minute escalations in microseconds; around them
//! the service does the I/O (`feed`, `service`, `rounds`, `delivery`, `store`), and `records`
//! owns what is on disk.

mod ack_link;
mod activity;
pub mod book;
pub mod config;
mod delivery;
pub mod escalation;
pub mod evaluate;
pub mod feed;
pub mod handle;
pub mod ids;
pub mod lifecycle;
pub mod metrics;
pub mod node_rules;
pub mod notify;
pub mod operator_state;
pub mod policy;
pub mod quality_rules;
pub mod records;
mod rounds;
pub mod rule_files;
pub mod rules;
pub mod service;
pub mod store;
pub mod time;
pub mod view;

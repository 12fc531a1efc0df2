//! SLA reports: what the SLOs, incidents and their trends say about a period, as a document.
//!
//! - `model.rs`: the report as data ([`model::Report`]), what every other part speaks.
//! - `build/`: the content, pure: figures, trends, patterns, forecasts and recommendations from
//!   SLO results and incident facts, with time and zone as arguments.
//! - `gather.rs`: the I/O: reads SLOs, maintenance and incidents, evaluates, then builds.
//! - `render/`: PDF, HTML, CSV and JSON of a report.
//! - `schedule.rs`, `records.rs`, `store.rs`, `config.rs`, `mail.rs`, `task.rs`: when reports
//!   are due, how they are kept, and how they are delivered; `handle.rs`: what the scheduler and
//!   the API share to make and find reports.

pub mod build;
pub mod config;
pub mod gather;
pub mod handle;
pub mod mail;
pub mod model;
pub mod records;
pub mod render;
pub mod schedule;
pub mod store;
pub mod task;

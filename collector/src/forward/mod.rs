//! Remote write out: every stored sample forwarded, as stored, to Prometheus remote-write
//! receivers (`[[remote_write_out]]`), so a fleet that outgrows one collector scales out onto a
//! store built for it (VictoriaMetrics cluster, Mimir, Thanos Receive).
//!
//! The outbox is the storage WAL itself: each destination is a durable WAL reader
//! ([`Tsdb::open_wal_reader`](crate::storage::Tsdb::open_wal_reader)) with its own cursor, and
//! checkpoints keep what a destination has not yet sent, so nothing is lost to a receiver
//! outage or a kill -9 (within `max_backlog_bytes`).
//!
//! Invariants:
//! - Samples are sent in WAL order, one request in flight per destination, so each series'
//!   samples arrive in the order they were stored.
//! - A cursor moves past a request only once the receiver accepted it (2xx) or refused it for
//!   good (4xx other than 429, counted as dropped); 429, 5xx and transport errors are retried
//!   with backoff, forever, holding the records on disk.
//! - A destination behind by more than `max_backlog_bytes` gives up its oldest records,
//!   counted, rather than fill the disk.
//! - After a crash a destination may resend its last requests; receivers that deduplicate
//!   (VictoriaMetrics with `-dedup.minScrapeInterval`, Prometheus' TSDB for equal samples)
//!   keep each sample once.
//!
//! `config.rs` the section, `relabel.rs` (pure) the filters, `encode.rs` (pure) the bodies,
//! `destination.rs` the task per destination.

pub mod config;
mod destination;
mod encode;
pub mod relabel;

pub use config::{DestinationConfig, Protocol};
pub use destination::Destination;

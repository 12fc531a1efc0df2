//! The audit log: an append-only, hash-chained record of every state-changing API call (who,
//! what, target, outcome, client address). `chain.rs` is the pure part (records, canonical
//! bytes, verification), shared with `hcmon audit verify`; `log.rs` keeps the chain in the
//! store's `audit` table.

mod chain;
mod log;

pub use chain::{AuditEvent, AuditRecord, Broken, Entry, Problem, verify};
pub use log::AuditLog;

//! Service level objectives over stored history: definitions (defaults for every node and
//! probe, `[slo]` in the config, the API), their evaluation into tallies, budgets and the
//! intervals that prove them. The arithmetic is pure, in `crate::analytics::slo`; this layer
//! reads the store.

pub mod config;
pub mod defaults;
pub mod definition;
pub mod error;
pub mod evaluate;
mod incidents;
pub mod maintenance;
mod node;
pub mod objectives;
pub mod openslo;
mod probe;
mod ratio;
mod reading;
pub mod records;
mod source;
pub mod store;

pub use config::SloConfig;
pub use definition::{AvailabilitySource, Origin, Sli, SloDefinition, SloName};
pub use error::SloError;
pub use evaluate::{
    CountingPolicy, EvalContext, SloEvaluation, SloResult, SloSource, evaluate, tally,
};

//! `/api/v1/agents`: the nodes the collector knows, and forgetting one.

use serde::{Deserialize, Serialize};

/// One node in `GET /api/v1/agents`.
///
/// Not the spool epoch: with the node name, it is what a stream needs to pass for that node's
/// spool, so it stays between the agent and the collector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentStatus {
    pub node: String,
    pub connected: bool,
    pub agent_version: String,
    pub host: HostFacts,
    /// Unix milliseconds of the last registration.
    pub registered_at_ms: i64,
    /// Unix milliseconds of the last durable batch.
    pub last_batch_at_ms: i64,
    pub last_durable_seq: u64,
    /// Batches the node's agents declared skipped: they never reached the collector.
    pub lost_batches: u64,
}

/// Host facts the agent reported at registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostFacts {
    pub hostname: String,
    pub os_name: String,
    pub os_version: String,
    pub kernel_version: String,
    pub arch: String,
    pub cpu_count: u32,
    pub memory_total_bytes: u64,
    /// Unix seconds.
    pub boot_time: u64,
}

/// `DELETE /api/v1/agents/{node}`: what forgetting the node removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forgotten {
    pub node: String,
    /// Series taken out of the catalog and the store (0 unless `series=delete`).
    pub series_deleted: usize,
    /// Stored chunks and rollup blocks deleted with them.
    pub blocks_deleted: usize,
}

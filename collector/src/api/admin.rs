//! `/healthz` and the admin endpoints' answers.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `GET /healthz` (no envelope: load balancers and people read it as is).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// Always `ok`: a collector that answers is up.
    pub status: String,
    /// Series in the catalog.
    pub series: usize,
    pub connected_agents: i64,
}

/// `POST /api/v1/admin/compact`: bytes per table after compaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompactReport {
    /// On disk, by table name.
    pub tables: BTreeMap<String, u64>,
    /// As keys and values alone, by table name.
    pub encoded: BTreeMap<String, u64>,
}

//! `/api/v1/agents`: the nodes ingest knows, and forgetting one.

use super::ApiState;
use super::error::{ApiError, success};
use super::params::QueryParams;
use crate::api::agents::{AgentStatus, Forgotten, HostFacts};
use crate::ingest::{NodeStatus, SeriesFate};
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{delete, get};

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/agents", get(agents))
        .route("/api/v1/agents/{node}", delete(forget_agent))
}

async fn agents(State(state): State<ApiState>) -> Response {
    let nodes = state.ingest.node_statuses().await;
    success(nodes.into_iter().map(agent_status).collect::<Vec<_>>())
}

fn agent_status(node: NodeStatus) -> AgentStatus {
    let host = node.host;
    AgentStatus {
        node: node.node,
        connected: node.connected,
        agent_version: node.agent_version,
        host: HostFacts {
            hostname: host.hostname,
            os_name: host.os_name,
            os_version: host.os_version,
            kernel_version: host.kernel_version,
            arch: host.arch,
            cpu_count: host.cpu_count,
            memory_total_bytes: host.memory_total_bytes,
            boot_time: host.boot_time,
        },
        registered_at_ms: node.registered_at_ms,
        last_batch_at_ms: node.last_batch_at_ms,
        last_durable_seq: node.last_durable_seq,
        lost_batches: node.lost_batches,
    }
}

/// `DELETE /api/v1/agents/{node}[?series=keep|delete]`: forgets a node that no longer
/// reports; its series stay unless `series=delete`.
async fn forget_agent(
    State(state): State<ApiState>,
    Path(node): Path<String>,
    QueryParams(params): QueryParams,
) -> Result<Response, ApiError> {
    let fates = [("keep", SeriesFate::Keep), ("delete", SeriesFate::Delete)];
    let series = params.choice("series", &fates)?.unwrap_or(SeriesFate::Keep);
    let forgotten =
        crate::forget::forget_node(&state.ingest, state.alerting.as_ref(), &node, series).await?;
    Ok(success(Forgotten {
        node,
        series_deleted: forgotten.series_deleted,
        blocks_deleted: forgotten.blocks_deleted,
    }))
}

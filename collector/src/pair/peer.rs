//! The long poll of the peer's `GET /api/v1/pair/state`: its answers are the heartbeat and carry
//! its deliveries (see the module header of `pair`).

use super::{Pair, PairState};
use crate::outbound::{OutboundClient, bearer_headers};
use crate::tasks::{Role, TaskTree};
use hcmon_common::HttpEndpoint;
use http::Method;
use std::sync::Arc;
use std::time::Duration;

/// How long the peer may hold a poll open; below the lease, so a live peer is never counted
/// silent.
const WAIT: Duration = Duration::from_secs(3);
/// The wait after a failed poll.
const RETRY: Duration = Duration::from_millis(500);
const MAX_ANSWER: usize = 8 << 20;

/// The API's success envelope around the state.
#[derive(serde::Deserialize)]
struct Answered {
    data: PairState,
}

/// Starts polling the peer, until the tree's shutdown.
pub fn start(pair: Arc<Pair>, tasks: &TaskTree) -> anyhow::Result<()> {
    let peer = HttpEndpoint::parse(&pair.config.peer)?;
    let client = OutboundClient::with_ca_file(
        pair.config.ca_file.as_deref(),
        concat!("hcmon-collector/", env!("CARGO_PKG_VERSION")),
    )?;
    let base = format!(
        "{}://{}",
        if peer.is_tls() { "https" } else { "http" },
        peer.authority()
    );
    let headers = bearer_headers(pair.config.peer_token.as_ref(), "pair.peer_token")?;
    let shutdown = tasks.shutdown().clone();
    tasks.spawn("pair-peer", Role::Helper, async move {
        let (mut log, mut next, mut failing) = (String::new(), 1u64, false);
        let (mut leader_seen, mut operator_seen) = (false, 0u64);
        loop {
            let url = format!(
                "{base}/api/v1/pair/state?log={log}&after={next}&leader={leader_seen}&operator={operator_seen}&wait={}s",
                WAIT.as_secs()
            );
            let call = client.call(Method::GET, &url, headers.clone(), Vec::new(), MAX_ANSWER);
            let answer = tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                answer = tokio::time::timeout(WAIT * 3, call) => answer,
            };
            let heard = match answer {
                Err(_) => Err(format!("no answer within {:?}", WAIT * 3)),
                Ok(Err(error)) => Err(error.to_string()),
                Ok(Ok(answer)) if !answer.status.is_success() => Err(format!(
                    "answered {}: {}",
                    answer.status,
                    String::from_utf8_lossy(&answer.body).chars().take(200).collect::<String>()
                )),
                Ok(Ok(answer)) => serde_json::from_slice::<Answered>(&answer.body)
                    .map_err(|e| format!("an answer that is not the pair's state: {e}"))
                    .and_then(|Answered { data: state }| {
                        pair.heard(&state)?;
                        Ok(state)
                    }),
            };
            match heard {
                Ok(state) => {
                    if failing {
                        tracing::info!(peer = %pair.config.peer, "the other collector of the pair answers again");
                    }
                    failing = false;
                    (log, next, leader_seen, operator_seen) =
                        (state.log, state.next, state.leader, state.operator_version);
                }
                Err(problem) => {
                    if !failing {
                        tracing::warn!(peer = %pair.config.peer, %problem, "cannot reach the other collector of the pair");
                    }
                    failing = true;
                    pair.unheard();
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(RETRY) => {}
                    }
                }
            }
        }
    });
    Ok(())
}

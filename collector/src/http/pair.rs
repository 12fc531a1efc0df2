//! `GET /api/v1/pair/state`: this collector's half of an HA pair, as the other collector polls
//! it (see `pair`): whether it leads, what it delivered after the reader's cursor, and its
//! operator state when the reader has not seen its version (`operator=`). With
//! `wait=`, the answer is held until there is news or the wait ends: a long poll.

use super::ApiState;
use super::error::{ApiError, success};
use super::params::Params;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use std::time::Duration;

/// The longest a poll is held open.
const MAX_WAIT: Duration = Duration::from_secs(10);

const NOT_PAIRED: &str =
    "this collector is not in an HA pair ([pair] member is not set in its config)";

pub fn routes() -> Router<ApiState> {
    Router::new().route("/api/v1/pair/state", get(pair_state))
}

async fn pair_state(State(state): State<ApiState>, params: Params) -> Result<Response, ApiError> {
    let Some(pair) = state.pair.clone() else {
        return Err(ApiError::NotFound(NOT_PAIRED.into()));
    };
    let log = params.get("log").unwrap_or_default().to_owned();
    let after = counter(&params, "after")?;
    let leader_seen = params.flag("leader")?;
    let operator_seen = counter(&params, "operator")?;
    let wait = params.duration_or("wait", Duration::ZERO)?.min(MAX_WAIT);
    pair.wait_for_news(&log, after, leader_seen, operator_seen, wait)
        .await;
    Ok(success(pair.state(&log, after, operator_seen)))
}

/// A cursor or version parameter: 0 or more, 0 when absent.
fn counter(params: &Params, name: &'static str) -> Result<u64, ApiError> {
    match params.integer(name)? {
        Some(n) if n >= 0 => Ok(n as u64),
        Some(_) => Err(ApiError::BadParam {
            name,
            message: "must be 0 or more".into(),
        }),
        None => Ok(0),
    }
}

//! Alerting over HTTP: alerts in the shape of Prometheus' alerts API plus hcmon's own states,
//! acknowledgement (by API call or signed link), silences and incidents. Errors map to status
//! codes here, in one place.

use super::ApiState;
use crate::alerting::book::BookError;
use crate::alerting::book::{AlertRecord, Incident, IncidentEvent, SilenceRecord};
use crate::alerting::evaluate::fmt_value;
use crate::alerting::lifecycle::AlertState;
use crate::alerting::service::{AlertView, Alerting, AlertingError};
use crate::alerting::time::{SilenceEnd, check_link_expiry, rfc3339_millis, silence_window};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashMap;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/alerts", get(list))
        .route("/api/v1/alerts/{id}", get(show))
        .route("/api/v1/alerts/{id}/ack", get(ack_link).post(ack))
        .route("/api/v1/silences", get(silences).post(create_silence))
        .route("/api/v1/silences/{id}", delete(expire_silence))
        .route("/api/v1/incidents", get(incidents))
        .route("/api/v1/incidents/{id}", get(incident))
}

/// A failed alerting request.
#[derive(Debug, thiserror::Error)]
enum AlertApiError {
    #[error("alerting is disabled in this collector's config ([alerting] enabled = false)")]
    Disabled,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Alerting(#[from] AlertingError),
}

impl IntoResponse for AlertApiError {
    fn into_response(self) -> Response {
        let (status, kind) = match &self {
            AlertApiError::Disabled => (StatusCode::NOT_FOUND, "unavailable"),
            AlertApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_data"),
            AlertApiError::NotFound(_)
            | AlertApiError::Alerting(AlertingError::Book(
                BookError::NoSuchAlert(_) | BookError::NoSuchSilence(_),
            )) => (StatusCode::NOT_FOUND, "not_found"),
            AlertApiError::Alerting(AlertingError::Book(BookError::Refused(_))) => {
                (StatusCode::CONFLICT, "conflict")
            }
            AlertApiError::Alerting(AlertingError::Stopped) => {
                (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
            AlertApiError::Alerting(AlertingError::Store(error)) => {
                tracing::error!(%error, "alerting request failed in storage");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        let body = json!({"status": "error", "errorType": kind, "error": self.to_string()});
        (status, axum::Json(body)).into_response()
    }
}

fn alerting(state: &ApiState) -> Result<&Alerting, AlertApiError> {
    state.alerting.as_ref().ok_or(AlertApiError::Disabled)
}

fn success(data: Value) -> Response {
    axum::Json(json!({"status": "success", "data": data})).into_response()
}

/// Prometheus' state: `pending` or `firing` (acknowledged alerts are still firing).
fn prometheus_state(state: &AlertState) -> &'static str {
    match state {
        AlertState::Pending { .. } => "pending",
        AlertState::Firing { .. } | AlertState::Acknowledged { .. } => "firing",
        AlertState::Inactive => "inactive",
        AlertState::Resolved { .. } => "resolved",
    }
}

fn active_at(record: &AlertRecord) -> i64 {
    match (&record.lifecycle.state, &record.episode) {
        (_, Some(episode)) => episode.fired_ms,
        (AlertState::Pending { since_ms }, None) => *since_ms,
        _ => record.changed_ms,
    }
}

fn alert_json(view: &AlertView) -> Value {
    let record = &view.record;
    let episode = record.episode.as_ref();
    let acknowledged = match &record.lifecycle.state {
        AlertState::Acknowledged { since_ms, by } => {
            json!({"by": by, "at": rfc3339_millis(*since_ms)})
        }
        _ => Value::Null,
    };
    json!({
        "id": record.id,
        "labels": record.full_labels(),
        "annotations": record.annotations,
        "state": prometheus_state(&record.lifecycle.state),
        "activeAt": rfc3339_millis(active_at(record)),
        "value": fmt_value(record.value),
        "hcmonState": record.lifecycle.state.name(),
        "acknowledged": acknowledged,
        "escalationTier": episode.map_or(0, |e| e.tiers_notified),
        "escalationTiers": episode.map_or(0, |e| e.policy.tiers.len()),
        "flapping": record.lifecycle.flapping,
        "muted": view.muted,
        "incident": episode.map(|e| e.incident.clone()),
        "notified": episode.map(|e| e.notified.iter().cloned().collect::<Vec<_>>()).unwrap_or_default(),
        "evidence": record.evidence,
        "changedAt": rfc3339_millis(record.changed_ms),
    })
}

#[derive(Debug, Deserialize)]
struct ListParams {
    /// Also list resolved and inactive alerts (kept an hour).
    #[serde(default)]
    all: bool,
    /// Only alerts in this hcmon state.
    state: Option<String>,
}

async fn list(
    State(state): State<ApiState>,
    Query(params): Query<ListParams>,
) -> Result<Response, AlertApiError> {
    let view = alerting(&state)?.view();
    let known = ["inactive", "pending", "firing", "acknowledged", "resolved"];
    if let Some(wanted) = &params.state
        && !known.contains(&wanted.as_str())
    {
        return Err(AlertApiError::BadRequest(format!(
            "state {wanted:?} is not one of {}",
            known.join(", ")
        )));
    }
    let alerts: Vec<Value> = view
        .alerts
        .iter()
        .filter(|v| {
            let name = v.record.lifecycle.state.name();
            match &params.state {
                Some(wanted) => name == wanted,
                None => params.all || matches!(name, "pending" | "firing" | "acknowledged"),
            }
        })
        .map(alert_json)
        .collect();
    Ok(success(json!({ "alerts": alerts })))
}

async fn show(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, AlertApiError> {
    let alerting = alerting(&state)?;
    let view = alerting.view();
    let Some(alert) = view.alerts.iter().find(|a| a.record.id == id) else {
        return Err(AlertApiError::NotFound(format!("no alert with id {id:?}")));
    };
    let mut body = alert_json(alert);
    if let Some(episode) = &alert.record.episode
        && let Some((incident, events)) = alerting.incident(&episode.incident).await?
    {
        body["history"] = incident_json(&incident, &events);
    }
    Ok(success(body))
}

#[derive(Debug, Deserialize)]
struct AckBody {
    by: String,
}

/// `POST /api/v1/alerts/{id}/ack` with `{"by": "alice"}` (or `?by=alice`).
async fn ack(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    body: Option<axum::Json<AckBody>>,
) -> Result<Response, AlertApiError> {
    let by = body
        .map(|b| b.0.by)
        .or_else(|| query.get("by").cloned())
        .filter(|b| !b.trim().is_empty())
        .ok_or_else(|| {
            AlertApiError::BadRequest(
                "say who acknowledges: a JSON body {\"by\": \"name\"} or ?by=name".into(),
            )
        })?;
    alerting(&state)?.acknowledge(&id, &by).await?;
    Ok(success(json!({"id": id, "acknowledgedBy": by})))
}

#[derive(Debug, Deserialize)]
struct AckLink {
    by: String,
    expires: i64,
    sig: String,
}

/// The signed link from a notification: opening it acknowledges the alert.
async fn ack_link(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(link): Query<AckLink>,
) -> Result<Response, AlertApiError> {
    let alerting = alerting(&state)?;
    // Refused before the signature check does arithmetic on it.
    check_link_expiry(link.expires).map_err(AlertApiError::BadRequest)?;
    if !alerting.verify_link(&id, &link.by, link.expires, &link.sig) {
        let page = "This acknowledge link is invalid or has expired. Acknowledge with `hcmon alerts ack <id>` instead.\n";
        return Ok((StatusCode::FORBIDDEN, page).into_response());
    }
    let text = match alerting.acknowledge(&id, &link.by).await {
        Ok(()) => format!(
            "Acknowledged alert {id} as {}. Escalation stopped; the alert stays until it resolves.\n",
            link.by
        ),
        Err(AlertingError::Book(BookError::Refused(why))) => {
            format!("Alert {id} was not acknowledged: {why}.\n")
        }
        Err(e) => return Err(e.into()),
    };
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

fn silence_json(s: &SilenceRecord, now_ms: i64) -> Value {
    json!({
        "id": s.id,
        "matchers": s.matchers,
        "startsAt": rfc3339_millis(s.starts_ms),
        "endsAt": rfc3339_millis(s.ends_ms),
        "daily": s.daily.map(|(a, b)| format!("{:02}:{:02}-{:02}:{:02}", a / 60, a % 60, b / 60, b % 60)),
        "createdBy": s.created_by,
        "comment": s.comment,
        "status": s.status(now_ms),
    })
}

async fn silences(State(state): State<ApiState>) -> Result<Response, AlertApiError> {
    let alerting = alerting(&state)?;
    let now = alerting.now_ms();
    let list: Vec<Value> = alerting
        .view()
        .silences
        .iter()
        .map(|s| silence_json(s, now))
        .collect();
    Ok(success(json!(list)))
}

/// `POST /api/v1/silences`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSilence {
    /// A selector over alert labels, e.g. `HighCpu{node="nas"}` or `{node="nas"}`.
    matchers: String,
    /// RFC 3339; default now.
    starts_at: Option<String>,
    /// RFC 3339; or give `duration`.
    ends_at: Option<String>,
    /// e.g. `2h`, from `starts_at`.
    duration: Option<String>,
    /// A daily window `HH:MM-HH:MM` (UTC) within the silence's range: a maintenance window.
    daily: Option<String>,
    created_by: String,
    #[serde(default)]
    comment: String,
}

/// `HH:MM-HH:MM` → minutes of the day.
pub fn parse_daily(text: &str) -> Result<(u32, u32), String> {
    let minute = |part: &str| -> Option<u32> {
        let (h, m) = part.trim().split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60).then_some(h * 60 + m)
    };
    let (a, b) = text
        .split_once('-')
        .ok_or_else(|| format!("daily {text:?}: want HH:MM-HH:MM"))?;
    match (minute(a), minute(b)) {
        (Some(a), Some(b)) if a != b => Ok((a, b)),
        _ => Err(format!(
            "daily {text:?}: want HH:MM-HH:MM with two different times"
        )),
    }
}

async fn create_silence(
    State(state): State<ApiState>,
    body: Result<axum::Json<NewSilence>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, AlertApiError> {
    let alerting = alerting(&state)?;
    let axum::Json(new) = body.map_err(|e| AlertApiError::BadRequest(e.body_text()))?;
    let now = alerting.now_ms();
    let end = match (&new.ends_at, &new.duration) {
        (Some(text), None) => SilenceEnd::At(text),
        (None, Some(text)) => SilenceEnd::After(text),
        _ => {
            return Err(AlertApiError::BadRequest(
                "give exactly one of ends_at and duration".into(),
            ));
        }
    };
    // Range-checked before any arithmetic: a silence reaching past year 9999 once made every
    // later listing fail.
    let (starts_ms, ends_ms) =
        silence_window(now, new.starts_at.as_deref(), end).map_err(AlertApiError::BadRequest)?;
    if new.created_by.trim().is_empty() {
        return Err(AlertApiError::BadRequest(
            "created_by: say who silences".into(),
        ));
    }
    let daily = new
        .daily
        .as_deref()
        .map(parse_daily)
        .transpose()
        .map_err(AlertApiError::BadRequest)?;
    let record = SilenceRecord {
        id: String::new(),
        matchers: new.matchers,
        starts_ms,
        ends_ms,
        daily,
        created_by: new.created_by,
        comment: new.comment,
        created_ms: now,
    };
    // Checked here too, so a bad selector is a 400 with the reason, not a conflict.
    record.compile().map_err(AlertApiError::BadRequest)?;
    let stored = alerting.silence(record).await?;
    Ok(success(silence_json(&stored, now)))
}

async fn expire_silence(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, AlertApiError> {
    alerting(&state)?.expire_silence(&id).await?;
    Ok(success(json!({"id": id, "status": "expired"})))
}

fn incident_json(incident: &Incident, events: &[IncidentEvent]) -> Value {
    let mut body = json!({
        "id": incident.id,
        "alert": incident.alert,
        "labels": incident.labels,
        "severity": incident.severity,
        "startedAt": rfc3339_millis(incident.started_ms),
        "acknowledged": incident.acknowledged.as_ref().map(|(at, by)| json!({"by": by, "at": rfc3339_millis(*at)})),
        "resolvedAt": incident.resolved_ms.map(rfc3339_millis),
    });
    if !events.is_empty() {
        body["events"] = events
            .iter()
            .map(|e| {
                let mut v = serde_json::to_value(&e.what).unwrap_or(Value::Null);
                v["at"] = json!(rfc3339_millis(e.at_ms));
                v
            })
            .collect();
    }
    body
}

#[derive(Debug, Deserialize)]
struct IncidentParams {
    limit: Option<usize>,
}

async fn incidents(
    State(state): State<ApiState>,
    Query(params): Query<IncidentParams>,
) -> Result<Response, AlertApiError> {
    let limit = params.limit.unwrap_or(100).min(10_000);
    let list = alerting(&state)?.incidents(limit).await?;
    Ok(success(json!(
        list.iter()
            .map(|i| incident_json(i, &[]))
            .collect::<Vec<_>>()
    )))
}

async fn incident(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, AlertApiError> {
    match alerting(&state)?.incident(&id).await? {
        Some((incident, events)) => Ok(success(incident_json(&incident, &events))),
        None => Err(AlertApiError::NotFound(format!(
            "no incident with id {id:?}"
        ))),
    }
}

//! Alerting over HTTP: alerts in the shape of Prometheus' alerts API plus hcmon's own states,
//! acknowledgement (by API call or signed link), silences and incidents. Converts the alert
//! book's records into [`crate::api::alerts`]' types.

use super::ApiState;
use super::error::{ApiError, Feature, success};
use super::params::QueryParams;
use crate::alerting::book::{
    AlertRecord, BookError, Happened, Incident, IncidentEvent, SilenceRecord,
};
use crate::alerting::evaluate::fmt_value;
use crate::alerting::handle::{Alerting, AlertingError};
use crate::alerting::ids::SilenceId;
use crate::alerting::lifecycle::AlertState;
use crate::alerting::notify::NotificationKind;
use crate::alerting::policy::Severity;
use crate::alerting::time::{SilenceEnd, check_link_expiry, rfc3339_millis, silence_window};
use crate::alerting::view::AlertView;
use crate::api::alerts as api;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};

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

fn alerting(state: &ApiState) -> Result<&Alerting, ApiError> {
    state
        .alerting
        .as_ref()
        .ok_or(ApiError::Disabled(Feature::Alerting))
}

fn hcmon_state(state: &AlertState) -> api::AlertState {
    match state {
        AlertState::Inactive => api::AlertState::Inactive,
        AlertState::Pending { .. } => api::AlertState::Pending,
        AlertState::Firing { .. } => api::AlertState::Firing,
        AlertState::Acknowledged { .. } => api::AlertState::Acknowledged,
        AlertState::Resolved { .. } => api::AlertState::Resolved,
    }
}

/// Prometheus' state: `pending` or `firing` (acknowledged alerts are still firing).
fn prometheus_state(state: &AlertState) -> api::PrometheusState {
    match state {
        AlertState::Pending { .. } => api::PrometheusState::Pending,
        AlertState::Firing { .. } | AlertState::Acknowledged { .. } => api::PrometheusState::Firing,
        AlertState::Inactive => api::PrometheusState::Inactive,
        AlertState::Resolved { .. } => api::PrometheusState::Resolved,
    }
}

fn severity(severity: Severity) -> api::Severity {
    match severity {
        Severity::Warning => api::Severity::Warning,
        Severity::Error => api::Severity::Error,
        Severity::Critical => api::Severity::Critical,
    }
}

fn acknowledgement(at_ms: i64, by: &str) -> api::Acknowledgement {
    api::Acknowledgement {
        by: by.to_owned(),
        at: rfc3339_millis(at_ms),
    }
}

fn active_at(record: &AlertRecord) -> i64 {
    match (&record.lifecycle.state, &record.episode) {
        (_, Some(episode)) => episode.fired_ms,
        (AlertState::Pending { since_ms }, None) => *since_ms,
        _ => record.changed_ms,
    }
}

/// One alert as `GET /api/v1/alerts` lists it (and the live stream sends it).
pub(super) fn alert_response(view: &AlertView) -> api::AlertResponse {
    let record = &view.record;
    let episode = record.episode.as_ref();
    let acknowledged = match &record.lifecycle.state {
        AlertState::Acknowledged { since_ms, by } => Some(acknowledgement(*since_ms, by)),
        _ => None,
    };
    let evidence = &record.evidence;
    api::AlertResponse {
        id: record.id.to_string(),
        labels: record.full_labels(),
        annotations: record.annotations.clone(),
        state: prometheus_state(&record.lifecycle.state),
        active_at: rfc3339_millis(active_at(record)),
        value: fmt_value(record.value),
        hcmon_state: hcmon_state(&record.lifecycle.state),
        acknowledged,
        escalation_tier: episode.map_or(0, |e| e.tiers_notified),
        escalation_tiers: episode.map_or(0, |e| e.policy.tiers.len()),
        flapping: record.lifecycle.flapping,
        muted: view.muted.clone(),
        incident: episode.map(|e| e.incident.to_string()),
        notified: episode
            .map(|e| e.notified.iter().map(ToString::to_string).collect())
            .unwrap_or_default(),
        evidence: api::AlertEvidence {
            threshold: evidence.threshold,
            expected: evidence.expected,
            related: evidence.related.clone(),
            details: evidence.details.clone(),
        },
        changed_at: rfc3339_millis(record.changed_ms),
        history: None,
    }
}

/// `GET /api/v1/alerts[?all=true][&state=…]`: open alerts (pending, firing, acknowledged);
/// with `all=true` also resolved and inactive ones (kept an hour); with `state` only those.
async fn list(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams,
) -> Result<Response, ApiError> {
    let view = alerting(&state)?.view();
    let all = params.flag("all")?;
    let states = api::AlertState::ALL.map(|s| (s.name(), s));
    let wanted = params.choice("state", &states)?;
    let alerts = view
        .alerts
        .iter()
        .filter(|v| {
            let state = hcmon_state(&v.record.lifecycle.state);
            match wanted {
                Some(wanted) => state == wanted,
                None => all || state.is_open(),
            }
        })
        .map(alert_response)
        .collect();
    Ok(success(api::AlertList { alerts }))
}

async fn show(State(state): State<ApiState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let alerting = alerting(&state)?;
    let view = alerting.view();
    let Some(alert) = view.alerts.iter().find(|a| a.record.id.as_str() == id) else {
        return Err(ApiError::NotFound(format!("no alert with id {id:?}")));
    };
    let mut body = alert_response(alert);
    if let Some(episode) = &alert.record.episode
        && let Some((incident, events)) = alerting.incident(episode.incident.as_str()).await?
    {
        body.history = Some(incident_response(&incident, &events));
    }
    Ok(success(body))
}

/// `POST /api/v1/alerts/{id}/ack` with `{"by": "alice"}` (or `?by=alice`).
async fn ack(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    QueryParams(params): QueryParams,
    body: Result<Json<api::AckRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let from_body = match body {
        Ok(Json(body)) => Some(body.by),
        // No JSON body: `?by=` says who.
        Err(JsonRejection::MissingJsonContentType(_)) => None,
        Err(e) => return Err(ApiError::BadRequest(e.body_text())),
    };
    let by = from_body
        .or_else(|| params.get("by").map(str::to_owned))
        .filter(|b| !b.trim().is_empty())
        .ok_or_else(|| {
            ApiError::BadRequest(
                "say who acknowledges: a JSON body {\"by\": \"name\"} or ?by=name".into(),
            )
        })?;
    alerting(&state)?.acknowledge(&id, &by).await?;
    Ok(success(api::AckResponse {
        id,
        acknowledged_by: by,
    }))
}

/// The signed link from a notification (`?by=…&expires=…&sig=…`): opening it acknowledges the
/// alert. Answered in plain text, for a browser.
async fn ack_link(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    QueryParams(params): QueryParams,
) -> Result<Response, ApiError> {
    let by = params.required("by")?;
    let expires = params
        .integer("expires")?
        .ok_or(ApiError::MissingParam("expires"))?;
    let sig = params.required("sig")?;
    let alerting = alerting(&state)?;
    // Refused before the signature check does arithmetic on it.
    check_link_expiry(expires).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if !alerting.verify_link(&id, by, expires, sig) {
        let page = "This acknowledge link is invalid or has expired. Acknowledge with `hcmon alerts ack <id>` instead.\n";
        return Ok((StatusCode::FORBIDDEN, page).into_response());
    }
    let text = match alerting.acknowledge(&id, by).await {
        Ok(()) => format!(
            "Acknowledged alert {id} as {by}. Escalation stopped; the alert stays until it resolves.\n"
        ),
        Err(AlertingError::Book(BookError::Refused(why))) => {
            format!("Alert {id} was not acknowledged: {why}.\n")
        }
        Err(e) => return Err(e.into()),
    };
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

fn silence_response(s: &SilenceRecord, now_ms: i64) -> api::SilenceResponse {
    let clock = |minute: u32| format!("{:02}:{:02}", minute / 60, minute % 60);
    api::SilenceResponse {
        id: s.id.to_string(),
        matchers: s.matchers.clone(),
        starts_at: rfc3339_millis(s.starts_ms),
        ends_at: rfc3339_millis(s.ends_ms),
        daily: s.daily.map(|(a, b)| format!("{}-{}", clock(a), clock(b))),
        created_by: s.created_by.clone(),
        comment: s.comment.clone(),
        status: s.status(now_ms).to_owned(),
        maintenance: s.maintenance,
    }
}

async fn silences(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let alerting = alerting(&state)?;
    let now = alerting.now_ms();
    let list: Vec<_> = alerting
        .view()
        .silences
        .iter()
        .map(|s| silence_response(s, now))
        .collect();
    Ok(success(list))
}

/// `HH:MM-HH:MM` → minutes of the day.
fn parse_daily(text: &str) -> Result<(u32, u32), String> {
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

/// `POST /api/v1/silences` with an [`api::NewSilence`].
async fn create_silence(
    State(state): State<ApiState>,
    body: Result<Json<api::NewSilence>, JsonRejection>,
) -> Result<Response, ApiError> {
    let alerting = alerting(&state)?;
    let Json(new) = body.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let now = alerting.now_ms();
    let end = match (&new.ends_at, &new.duration) {
        (Some(text), None) => SilenceEnd::At(text),
        (None, Some(text)) => SilenceEnd::After(text),
        _ => {
            return Err(ApiError::BadRequest(
                "give exactly one of ends_at and duration".into(),
            ));
        }
    };
    // Range-checked before any arithmetic: a silence reaching past year 9999 once made every
    // later listing fail.
    let (starts_ms, ends_ms) = silence_window(now, new.starts_at.as_deref(), end)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if new.created_by.trim().is_empty() {
        return Err(ApiError::BadRequest("created_by: say who silences".into()));
    }
    let daily = new
        .daily
        .as_deref()
        .map(parse_daily)
        .transpose()
        .map_err(ApiError::BadRequest)?;
    let record = SilenceRecord {
        id: SilenceId::default(),
        matchers: new.matchers,
        starts_ms,
        ends_ms,
        daily,
        created_by: new.created_by,
        comment: new.comment,
        created_ms: now,
        maintenance: new.maintenance,
    };
    // Checked here too, so a bad selector is a 400 with the reason, not a conflict.
    record
        .compile()
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let stored = alerting.silence(record).await?;
    Ok(success(silence_response(&stored, now)))
}

async fn expire_silence(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    alerting(&state)?.expire_silence(&id).await?;
    Ok(success(api::ExpiredSilence {
        id,
        status: "expired".into(),
    }))
}

fn notification_kind(kind: NotificationKind) -> api::NotificationKind {
    match kind {
        NotificationKind::Firing => api::NotificationKind::Firing,
        NotificationKind::Resolved => api::NotificationKind::Resolved,
        NotificationKind::Flapping => api::NotificationKind::Flapping,
        NotificationKind::StoppedFlapping => api::NotificationKind::StoppedFlapping,
        NotificationKind::Escalation { tier } => api::NotificationKind::Escalation { tier },
        NotificationKind::Digest => api::NotificationKind::Digest,
    }
}

fn happened(what: &Happened) -> api::Happened {
    match what.clone() {
        Happened::Fired { severity: s, value } => api::Happened::Fired {
            severity: severity(s),
            value,
        },
        Happened::SeverityRaised { severity: s, value } => api::Happened::SeverityRaised {
            severity: severity(s),
            value,
        },
        Happened::Queued {
            channel,
            kind,
            recipients,
        } => api::Happened::Queued {
            channel,
            kind: notification_kind(kind),
            recipients,
        },
        Happened::HeldForDigest { channel } => api::Happened::HeldForDigest { channel },
        Happened::Delivered {
            channel,
            kind,
            attempts,
            errors,
        } => api::Happened::Delivered {
            channel,
            kind: notification_kind(kind),
            attempts,
            errors,
        },
        Happened::DeliveryFailed {
            channel,
            kind,
            attempts,
            errors,
        } => api::Happened::DeliveryFailed {
            channel,
            kind: notification_kind(kind),
            attempts,
            errors,
        },
        Happened::HandedToPeer {
            channel,
            kind,
            by_peer,
        } => api::Happened::HandedToPeer {
            channel,
            kind: notification_kind(kind),
            by_peer,
        },
        Happened::Muted { reason } => api::Happened::Muted { reason },
        Happened::Escalated { tier, recipients } => api::Happened::Escalated { tier, recipients },
        Happened::Acknowledged { by } => api::Happened::Acknowledged { by },
        Happened::Flapping => api::Happened::Flapping,
        Happened::StoppedFlapping => api::Happened::StoppedFlapping,
        Happened::Resolved { value } => api::Happened::Resolved { value },
    }
}

fn incident_response(incident: &Incident, events: &[IncidentEvent]) -> api::IncidentResponse {
    api::IncidentResponse {
        id: incident.id.to_string(),
        alert: incident.alert.to_string(),
        labels: incident.labels.clone(),
        severity: severity(incident.severity),
        started_at: rfc3339_millis(incident.started_ms),
        acknowledged: incident
            .acknowledged
            .as_ref()
            .map(|(at, by)| acknowledgement(*at, by)),
        resolved_at: incident.resolved_ms.map(rfc3339_millis),
        events: events
            .iter()
            .map(|e| api::IncidentEvent {
                at: rfc3339_millis(e.at_ms),
                what: happened(&e.what),
            })
            .collect(),
    }
}

/// `GET /api/v1/incidents[?limit=N]`: the newest N (default 100, at most 10,000).
async fn incidents(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams,
) -> Result<Response, ApiError> {
    let limit = params.count("limit", 10_000)?.unwrap_or(100);
    let list = alerting(&state)?.incidents(limit).await?;
    Ok(success(
        list.iter()
            .map(|i| incident_response(i, &[]))
            .collect::<Vec<_>>(),
    ))
}

async fn incident(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    match alerting(&state)?.incident(&id).await? {
        Some((incident, events)) => Ok(success(incident_response(&incident, &events))),
        None => Err(ApiError::NotFound(format!("no incident with id {id:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daily_windows_are_two_different_times_of_day() {
        assert_eq!(parse_daily("22:00-06:30"), Ok((1320, 390)));
        for bad in [
            "22:00",
            "24:00-01:00",
            "01:60-02:00",
            "03:00-03:00",
            "-1:00-02:00",
        ] {
            assert!(
                parse_daily(bad).unwrap_err().contains("want HH:MM-HH:MM"),
                "{bad}"
            );
        }
    }

    #[test]
    fn incident_events_are_shown_flat_with_their_kind() {
        let check = |what: Happened, expected: serde_json::Value| {
            let shown = api::IncidentEvent {
                at: rfc3339_millis(0),
                what: happened(&what),
            };
            let mut expected = expected;
            expected["at"] = "1970-01-01T00:00:00.000Z".into();
            assert_eq!(serde_json::to_value(shown).unwrap(), expected);
        };
        check(
            Happened::Fired {
                severity: Severity::Critical,
                value: f64::INFINITY,
            },
            serde_json::json!({"event": "fired", "severity": "critical", "value": "+Inf"}),
        );
        check(
            Happened::Queued {
                channel: "ops".into(),
                kind: NotificationKind::Escalation { tier: 1 },
                recipients: vec!["a@b".into()],
            },
            serde_json::json!({
                "event": "queued",
                "channel": "ops",
                "kind": {"escalation": {"tier": 1}},
                "recipients": ["a@b"],
            }),
        );
        check(
            Happened::StoppedFlapping,
            serde_json::json!({"event": "stopped_flapping"}),
        );
    }
}

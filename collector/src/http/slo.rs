//! `/api/v1/slos`: SLO definitions with their figures over the current period (or any window),
//! the intervals every figure is the sum of, creating and deleting API SLOs, and OpenSLO v1
//! YAML both ways. Creating, deleting and importing need the operator role (`auth.rs`).
//!
//! Evaluations read the store, so they run on the blocking pool. Maintenance comes from the
//! config, annotations tagged `maintenance` and the silences marked as maintenance; incidents
//! from the alerting store.

use super::error::{ApiError, success};
use super::params::{Params, QueryParams};
use super::{ApiState, blocking};
use crate::alerting::book::{Incident, SilenceRecord};
use crate::alerting::policy::Severity;
use crate::analytics::slo::{
    Budget, Budgeting, IncidentFact, IncidentSeverity, Interval, Outcome, Status, Tally, Window,
};
use crate::api::slo as api;
use crate::slo::definition::{AvailabilitySource, Sli, SloDefinition, SloName};
use crate::slo::error::SloError;
use crate::slo::evaluate::{EvalContext, SloResult, evaluate};
use crate::slo::maintenance::SilenceSpan;
use crate::slo::objectives::Objectives;
use crate::slo::openslo;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/slos", get(list).post(create))
        .route("/api/v1/slos/openslo", get(export).post(import))
        .route("/api/v1/slos/{name}", get(show).delete(remove))
        .route("/api/v1/slos/{name}/intervals", get(intervals))
}

const DISABLED: &str = "SLOs are disabled in this collector's config ([slo] enabled = false)";

impl From<SloError> for ApiError {
    fn from(e: SloError) -> Self {
        match e {
            e @ (SloError::Invalid { .. } | SloError::Query { .. }) => {
                ApiError::BadRequest(e.to_string())
            }
            e @ SloError::NotFound(_) => ApiError::NotFound(e.to_string()),
            e @ SloError::NotDeletable { .. } => ApiError::Conflict(e.to_string()),
            SloError::Store(e) => ApiError::Store(e),
            // Another server: 503, as for a part that is down.
            e @ SloError::RemoteHistory(_) => ApiError::Unavailable(e.to_string()),
        }
    }
}

fn objectives(state: &ApiState) -> Result<Arc<Objectives>, ApiError> {
    state
        .slo
        .clone()
        .ok_or_else(|| ApiError::NotFound(DISABLED.into()))
}

fn name(text: &str) -> Result<SloName, ApiError> {
    text.parse()
        .map_err(|e: SloError| ApiError::BadRequest(e.to_string()))
}

/// The definition `name`, or 404 naming it.
fn definition(objectives: &Objectives, text: &str) -> Result<SloDefinition, ApiError> {
    let name = name(text)?;
    objectives
        .get(&name)
        .ok_or_else(|| ApiError::NotFound(SloError::NotFound(name.to_string()).to_string()))
}

/// What an evaluation needs besides the store: the silences marked maintenance (from the
/// alerting view) and the incidents (from the alerting store).
struct Inputs {
    silences: Vec<SilenceSpan>,
    now_ms: i64,
}

impl Inputs {
    fn of(state: &ApiState) -> Self {
        let silences = match &state.alerting {
            Some(alerting) => alerting
                .view()
                .silences
                .iter()
                .filter_map(SilenceRecord::maintenance_span)
                .collect(),
            None => Vec::new(),
        };
        Self {
            silences,
            now_ms: state.now_ms(),
        }
    }
}

fn severity(s: Severity) -> IncidentSeverity {
    match s {
        Severity::Warning => IncidentSeverity::Warning,
        Severity::Error => IncidentSeverity::Error,
        Severity::Critical => IncidentSeverity::Critical,
    }
}

fn fact(incident: Incident) -> IncidentFact {
    let alert = incident
        .labels
        .get("alertname")
        .cloned()
        .unwrap_or_else(|| incident.alert.to_string());
    IncidentFact {
        id: incident.id.to_string(),
        alert,
        labels: incident.labels,
        severity: severity(incident.severity),
        started_ms: incident.started_ms,
        acknowledged_ms: incident.acknowledged.map(|(at, _)| at),
        resolved_ms: incident.resolved_ms,
    }
}

/// Evaluates `defs` over `window` (each SLO's current period when `None`), with the
/// intervals when asked. Blocking: reads the store.
fn evaluate_all(
    objectives: &Objectives,
    inputs: &Inputs,
    defs: &[SloDefinition],
    window: Option<Window>,
    with_intervals: bool,
) -> Result<Vec<Result<crate::slo::evaluate::SloEvaluation, SloError>>, SloError> {
    let source = objectives.source();
    let zone = objectives.zone();
    let needs_incidents = defs.iter().any(|d| !d.sli.is_sample_based());
    let incidents: Vec<IncidentFact> = match needs_incidents {
        true => crate::alerting::store::incidents(source.tsdb.kv(), usize::MAX)?
            .into_iter()
            .map(fact)
            .collect(),
        false => Vec::new(),
    };
    let mut out = Vec::with_capacity(defs.len());
    for def in defs {
        let window = window.unwrap_or_else(|| def.period.containing(inputs.now_ms, zone));
        let maintenance = objectives.maintenance(&inputs.silences, window)?;
        let ctx = EvalContext {
            maintenance: &maintenance,
            incidents: &incidents,
            zone,
            now_ms: inputs.now_ms,
        };
        out.push(evaluate(&source, def, window, &ctx, with_intervals));
    }
    Ok(out)
}

/// `from`/`to` (Unix seconds or RFC 3339): `None` for the current period when neither is
/// given; a missing `to` is now, a missing `from` the start of the period holding `to`.
fn window(
    params: &Params,
    def: &SloDefinition,
    objectives: &Objectives,
    now_ms: i64,
) -> Result<Option<Window>, ApiError> {
    let (from, to) = (params.time_ms("from")?, params.time_ms("to")?);
    if from.is_none() && to.is_none() {
        return Ok(None);
    }
    let to = to.unwrap_or(now_ms);
    let from = from.unwrap_or_else(|| def.period.containing(to, objectives.zone()).start_ms);
    if from >= to {
        return Err(ApiError::BadParam {
            name: "to",
            message: "must be after from".into(),
        });
    }
    Ok(Some(Window::new(from, to)))
}

fn range(w: Window) -> api::Range {
    api::Range {
        start_ms: w.start_ms,
        end_ms: w.end_ms,
    }
}

fn tally(t: &Tally) -> api::Tally {
    api::Tally {
        good: t.good,
        bad: t.bad,
        unknown: t.unknown,
        excluded: t.excluded,
    }
}

fn status(s: Status) -> api::Status {
    match s {
        Status::Met => api::Status::Met,
        Status::Warning => api::Status::Warning,
        Status::Breached => api::Status::Breached,
        Status::NoData => api::Status::NoData,
    }
}

fn budget(b: &Budget) -> api::Budget {
    api::Budget {
        allowed: b.allowed,
        spent: b.spent,
        remaining: b.remaining,
    }
}

fn outcome(o: Outcome) -> api::Outcome {
    match o {
        Outcome::Good => api::Outcome::Good,
        Outcome::Bad => api::Outcome::Bad,
        Outcome::Unknown => api::Outcome::Unknown,
        Outcome::Excluded => api::Outcome::Excluded,
    }
}

fn figures(r: &SloResult, timezone: &str) -> api::SloFigures {
    api::SloFigures {
        name: r.name.to_string(),
        window: range(r.window),
        timezone: timezone.to_owned(),
        policy: r.policy.describe(),
        tally: tally(&r.tally),
        compliance: r.compliance,
        coverage: r.coverage,
        status: status(r.status),
        budget: budget(&r.budget),
        burn_rate: r.burn_rate,
        time_to_exhaustion_ms: r.time_to_exhaustion_ms,
        covered: r.covered,
        breaches: r.breaches.iter().copied().map(range).collect(),
        daily: r
            .daily
            .iter()
            .map(|(w, t)| api::Day {
                range: range(*w),
                tally: tally(t),
                compliance: t.compliance(),
            })
            .collect(),
    }
}

fn interval(i: &Interval) -> api::Interval {
    api::Interval {
        start_ms: i.start_ms,
        end_ms: i.end_ms,
        outcome: outcome(i.outcome),
        good: i.good,
        total: i.total,
        note: i.note.clone(),
    }
}

/// A definition as the API lists it.
pub(super) fn definition_body(d: &SloDefinition) -> api::Definition {
    let targets = |t: &std::collections::BTreeMap<IncidentSeverity, i64>| {
        t.iter().map(|(s, ms)| (s.name().to_owned(), *ms)).collect()
    };
    api::Definition {
        name: d.name.to_string(),
        description: d.description.clone(),
        selector: d.selector.clone(),
        sli: match &d.sli {
            Sli::Availability { source, retries } => api::Sli::Availability {
                source: match source {
                    AvailabilitySource::Probe => "probe",
                    AvailabilitySource::Node => "node",
                }
                .into(),
                retries: *retries,
            },
            Sli::Latency {
                threshold_ms,
                quantile,
            } => api::Sli::Latency {
                threshold_ms: *threshold_ms,
                quantile: *quantile,
            },
            Sli::Ratio { good, valid } => api::Sli::Ratio {
                good: good.clone(),
                valid: valid.clone(),
            },
            Sli::Response { targets: t } => api::Sli::Response {
                targets: targets(t),
            },
            Sli::Resolution { targets: t } => api::Sli::Resolution {
                targets: targets(t),
            },
        },
        target: d.target,
        warning: d.warning,
        period: d.period.to_string(),
        budgeting: match d.budgeting {
            Budgeting::Occurrences => api::Budgeting::Occurrences,
            Budgeting::Timeslices {
                slice_ms,
                slice_target,
            } => api::Budgeting::Timeslices {
                slice: humantime::format_duration(std::time::Duration::from_millis(
                    slice_ms.max(0) as u64,
                ))
                .to_string(),
                slice_target,
            },
        },
        origin: d.origin.name().to_owned(),
    }
}

/// `GET /api/v1/slos`: every SLO with its figures over its current period.
async fn list(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let objectives = objectives(&state)?;
    let inputs = Inputs::of(&state);
    let listing = blocking("slo-list", move || {
        let defs = objectives.list();
        let results = evaluate_all(&objectives, &inputs, &defs, None, false)?;
        let zone = objectives.zone().name().to_owned();
        Ok::<_, SloError>(
            defs.iter()
                .zip(results)
                .map(|(def, result)| {
                    let (result, error) = match result {
                        Ok(e) => (Some(figures(&e.result, &zone)), None),
                        Err(e) => (None, Some(e.to_string())),
                    };
                    api::SloListing {
                        definition: definition_body(def),
                        result,
                        error,
                    }
                })
                .collect::<Vec<_>>(),
        )
    })
    .await??;
    Ok(success(listing))
}

/// One SLO evaluated over the request's window, with its intervals when asked.
async fn evaluate_one(
    state: &ApiState,
    name: &str,
    params: &Params,
    with_intervals: bool,
) -> Result<crate::slo::evaluate::SloEvaluation, ApiError> {
    let objectives = objectives(state)?;
    let def = definition(&objectives, name)?;
    let inputs = Inputs::of(state);
    let window = window(params, &def, &objectives, inputs.now_ms)?;
    let mut results = blocking("slo-evaluate", move || {
        evaluate_all(&objectives, &inputs, &[def], window, with_intervals)
    })
    .await??;
    // One definition in, one result out.
    match results.pop() {
        Some(result) => Ok(result?),
        None => Err(SloError::NotFound(name.to_owned()).into()),
    }
}

/// `GET /api/v1/slos/{name}?from=&to=`.
async fn show(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    QueryParams(params): QueryParams,
) -> Result<Response, ApiError> {
    let evaluation = evaluate_one(&state, &name, &params, false).await?;
    let zone = objectives(&state)?.zone().name().to_owned();
    Ok(success(figures(&evaluation.result, &zone)))
}

/// `GET /api/v1/slos/{name}/intervals?from=&to=`.
async fn intervals(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    QueryParams(params): QueryParams,
) -> Result<Response, ApiError> {
    let evaluation = evaluate_one(&state, &name, &params, true).await?;
    let r = &evaluation.result;
    Ok(success(api::SloIntervals {
        name: r.name.to_string(),
        window: range(r.window),
        policy: r.policy.describe(),
        tally: tally(&r.tally),
        compliance: r.compliance,
        intervals: evaluation.intervals.iter().map(interval).collect(),
    }))
}

/// `POST /api/v1/slos` with a JSON definition.
async fn create(State(state): State<ApiState>, body: Bytes) -> Result<Response, ApiError> {
    let objectives = objectives(&state)?;
    let def: SloDefinition = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("SLO definition: {e}")))?;
    let stored = blocking("slo-create", move || {
        objectives.create(def.clone())?;
        Ok::<_, SloError>(objectives.get(&def.name).unwrap_or(def))
    })
    .await??;
    Ok(success(definition_body(&stored)))
}

/// `DELETE /api/v1/slos/{name}`.
async fn remove(
    State(state): State<ApiState>,
    Path(text): Path<String>,
) -> Result<Response, ApiError> {
    let objectives = objectives(&state)?;
    let name = name(&text)?;
    let gone = name.clone();
    let deleted = blocking("slo-delete", move || objectives.delete(&gone)).await??;
    match deleted {
        true => Ok(success(api::DeletedSlo {
            name: name.to_string(),
        })),
        false => Err(SloError::NotFound(name.to_string()).into()),
    }
}

/// `GET /api/v1/slos/openslo`: every SLO OpenSLO can express, as YAML.
async fn export(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let objectives = objectives(&state)?;
    let yaml = blocking("slo-export", move || {
        openslo::export(&objectives.list(), objectives.zone())
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, "application/yaml")], yaml).into_response())
}

/// `POST /api/v1/slos/openslo` with OpenSLO v1 YAML: every SLO in it is checked before any
/// is stored.
async fn import(State(state): State<ApiState>, body: Bytes) -> Result<Response, ApiError> {
    let objectives = objectives(&state)?;
    let text = std::str::from_utf8(&body)
        .map_err(|e| ApiError::BadRequest(format!("OpenSLO YAML is not UTF-8: {e}")))?
        .to_owned();
    let created = blocking("slo-import", move || {
        let defs = openslo::import(&text, objectives.zone())
            .map_err(|e| ApiError::BadRequest(format!("OpenSLO: {e}")))?;
        for def in &defs {
            objectives
                .admissible(def)
                .map_err(|e| ApiError::BadRequest(format!("OpenSLO: SLO {}: {e}", def.name)))?;
        }
        let mut created = Vec::with_capacity(defs.len());
        for def in defs {
            let name = def.name.to_string();
            objectives.create(def)?;
            created.push(name);
        }
        Ok::<_, ApiError>(created)
    })
    .await??;
    Ok(success(api::ImportedSlos { created }))
}

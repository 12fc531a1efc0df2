//! `/api/v1/compare` (two windows of a selection of series, or of a node's series, compared
//! and ranked) and `/api/v1/experiments` (named baseline and treatment windows with a success
//! criterion, judged when read). The statistics are `analytics::compare`'s, the reading
//! `before_after/`'s; the work runs on the blocking pool, held to the query-type routes'
//! limits (`limits.rs`).

use super::annotations::time_ms;
use super::error::{ApiError, success};
use super::params::{Params, millis};
use super::{ApiState, blocking, metric};
use crate::access::Identity;
use crate::analytics::compare::{self as stats, Criterion, METHOD};
use crate::api::compare as api;
use crate::before_after::{
    AnnotationStore, ComparedSeries, Experiment, ExperimentStore, NewExperiment, Window,
    compare_windows, judge, read_windows,
};
use crate::storage::SeriesMeta;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Json, Router};
use hcmon_common::{MatchOp, Matcher, Selector};
use std::sync::Arc;

/// Most series one comparison or experiment reads.
pub const MAX_SERIES: usize = 2_000;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/compare", get(compare).post(compare))
        .route("/api/v1/experiments", get(list).post(create))
        .route("/api/v1/experiments/{id}", get(show).delete(remove))
}

/// The series `selectors` match, refused over [`MAX_SERIES`]; `asked` names the parameter.
fn select_capped(
    state: &ApiState,
    selectors: &[Selector],
    asked: &'static str,
) -> Result<Vec<Arc<SeriesMeta>>, ApiError> {
    let series = state.select(selectors);
    if series.len() > MAX_SERIES {
        return Err(ApiError::BadParam {
            name: asked,
            message: format!(
                "matches {} series, over the {MAX_SERIES} one comparison reads; narrow the selection",
                series.len()
            ),
        });
    }
    Ok(series)
}

/// A window from two time parameters, its end after its start.
fn window(params: &Params, start: &'static str, end: &'static str) -> Result<Window, ApiError> {
    let start_ms = params
        .time_ms(start)?
        .ok_or(ApiError::MissingParam(start))?;
    let end_ms = params.time_ms(end)?.ok_or(ApiError::MissingParam(end))?;
    if end_ms <= start_ms {
        return Err(ApiError::BadParam {
            name: end,
            message: format!("must be after {start}"),
        });
    }
    Ok(Window { start_ms, end_ms })
}

fn range(w: Window) -> api::Range {
    api::Range {
        start_ms: w.start_ms,
        end_ms: w.end_ms,
    }
}

fn row(c: ComparedSeries) -> api::CompareRow {
    let summary = |s: Option<stats::Summary>| api::WindowSummary {
        n: s.map_or(0, |s| s.n),
        mean: s.map(|s| s.mean),
        median: s.map(|s| s.median),
        p95: s.map(|s| s.p95),
    };
    let r = c.comparison;
    api::CompareRow {
        metric: metric(&c.meta.labels),
        unit: c.unit,
        before: summary(r.before),
        after: summary(r.after),
        diff_mean: r.diff_mean,
        diff_mean_ci: r.diff_mean_ci,
        diff_median: r.diff_median,
        diff_median_ci: r.diff_median_ci,
        relative_change: r.relative_change,
        p_value: r.p_value,
        effect_size: r.effect_size,
        significant: r.significant,
    }
}

/// `GET|POST /api/v1/compare` with `match[]=…` (or `node=<name>`) and either
/// `before_start, before_end, after_start, after_end` or `annotation=<id>&window=<duration>`
/// (before: the window up to the mark; after: the window from its end).
async fn compare(State(state): State<ApiState>, params: Params) -> Result<Response, ApiError> {
    let (selectors, asked) = match params.get("node") {
        Some(_) if params.get("match[]").is_some() => {
            return Err(ApiError::BadRequest(
                "give match[] or node, not both".into(),
            ));
        }
        Some(node) => {
            let matcher =
                Matcher::new("node", MatchOp::Equal, node).map_err(|e| ApiError::BadParam {
                    name: "node",
                    message: e.to_string(),
                })?;
            let selector = Selector {
                matchers: vec![matcher],
            };
            (vec![selector], "node")
        }
        None => (params.matches()?, "match[]"),
    };
    let (before, after) = match params.get("annotation") {
        Some(id) => {
            let width = millis(
                params
                    .duration("window")?
                    .ok_or(ApiError::MissingParam("window"))?,
            );
            let (tsdb, id) = (state.tsdb.clone(), id.to_owned());
            let mark = blocking("/api/v1/compare", move || {
                AnnotationStore::new(&tsdb).get(&id)
            })
            .await??;
            let end = mark.end_ms.unwrap_or(mark.time_ms);
            let before = Window {
                start_ms: mark.time_ms - width,
                end_ms: mark.time_ms,
            };
            let after = Window {
                start_ms: end,
                end_ms: end + width,
            };
            (before, after)
        }
        None => (
            window(&params, "before_start", "before_end")?,
            window(&params, "after_start", "after_end")?,
        ),
    };
    let series = select_capped(&state, &selectors, asked)?;
    let (tsdb, now) = (state.tsdb.clone(), state.now_ms());
    let rows = blocking("/api/v1/compare", move || {
        let windows = read_windows(&tsdb, &series, before, after, now)?;
        Ok::<_, ApiError>(compare_windows(&windows))
    })
    .await??;
    Ok(success(api::Comparison {
        before: range(before),
        after: range(after),
        method: METHOD.to_owned(),
        series: rows.into_iter().map(row).collect(),
    }))
}

fn criterion_to_api(c: &Criterion) -> api::Criterion {
    api::Criterion {
        statistic: match c.statistic {
            stats::Statistic::Mean => api::Statistic::Mean,
            stats::Statistic::Median => api::Statistic::Median,
            stats::Statistic::P95 => api::Statistic::P95,
        },
        direction: match c.direction {
            stats::Direction::Decrease => api::Direction::Decrease,
            stats::Direction::Increase => api::Direction::Increase,
        },
        by_percent: c.by_percent,
    }
}

fn criterion_from_api(c: &api::Criterion) -> Criterion {
    Criterion {
        statistic: match c.statistic {
            api::Statistic::Mean => stats::Statistic::Mean,
            api::Statistic::Median => stats::Statistic::Median,
            api::Statistic::P95 => stats::Statistic::P95,
        },
        direction: match c.direction {
            api::Direction::Decrease => stats::Direction::Decrease,
            api::Direction::Increase => stats::Direction::Increase,
        },
        by_percent: c.by_percent,
    }
}

fn experiment_body(e: Experiment) -> api::Experiment {
    api::Experiment {
        criterion: criterion_to_api(&e.criterion),
        id: e.id,
        name: e.name,
        description: e.description,
        baseline: range(e.baseline),
        treatment: range(e.treatment),
        selectors: e.selectors,
        created_by: e.created_by,
        created_ms: e.created_ms,
    }
}

/// `POST /api/v1/experiments` with `{name, description?, baseline, treatment, match,
/// criterion}`.
async fn create(
    State(state): State<ApiState>,
    Extension(identity): Extension<Identity>,
    request: Result<Json<api::NewExperiment>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = request.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let window = |field: &str, r: &api::TimeRange| -> Result<Window, ApiError> {
        Ok(Window {
            start_ms: time_ms(&format!("{field}.start"), &r.start)?,
            end_ms: time_ms(&format!("{field}.end"), &r.end)?,
        })
    };
    let new = NewExperiment {
        name: request.name,
        description: request.description,
        baseline: window("baseline", &request.baseline)?,
        treatment: window("treatment", &request.treatment)?,
        selectors: request.selectors,
        criterion: criterion_from_api(&request.criterion),
    };
    let (tsdb, now) = (state.tsdb.clone(), state.now_ms());
    let made = blocking("/api/v1/experiments", move || {
        ExperimentStore::new(&tsdb).create(new, &identity.name, now)
    })
    .await??;
    Ok(success(experiment_body(made)))
}

/// `GET /api/v1/experiments`: every experiment, oldest first (without results).
async fn list(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let tsdb = state.tsdb.clone();
    let all = blocking("/api/v1/experiments", move || {
        ExperimentStore::new(&tsdb).list()
    })
    .await??;
    Ok(success(
        all.into_iter().map(experiment_body).collect::<Vec<_>>(),
    ))
}

/// `GET /api/v1/experiments/{id}`: the experiment with its result, computed now.
async fn show(State(state): State<ApiState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let tsdb = state.tsdb.clone();
    let experiment = blocking("/api/v1/experiments", move || {
        ExperimentStore::new(&tsdb).get(&id)
    })
    .await??;
    let selectors = experiment
        .selectors
        .iter()
        .map(|s| Selector::parse(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::BadRequest(format!("the experiment's match: {e}")))?;
    let series = select_capped(&state, &selectors, "match")?;
    let (tsdb, now) = (state.tsdb.clone(), state.now_ms());
    let (baseline, treatment, criterion) = (
        experiment.baseline,
        experiment.treatment,
        experiment.criterion,
    );
    let (judgement, rows) = blocking("/api/v1/experiments", move || {
        let windows = read_windows(&tsdb, &series, baseline, treatment, now)?;
        Ok::<_, ApiError>((judge(&criterion, &windows), compare_windows(&windows)))
    })
    .await??;
    Ok(success(api::ExperimentWithResult {
        experiment: experiment_body(experiment),
        result: api::ExperimentResult {
            met: judgement.met,
            confidence: judgement.confidence,
            observed_change_percent: judgement.observed_change_percent,
            method: METHOD.to_owned(),
            series: rows.into_iter().map(row).collect(),
        },
    }))
}

/// `DELETE /api/v1/experiments/{id}`: the experiment deleted.
async fn remove(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let tsdb = state.tsdb.clone();
    let deleted = blocking("/api/v1/experiments", move || {
        ExperimentStore::new(&tsdb).delete(&id)
    })
    .await??;
    Ok(success(experiment_body(deleted)))
}

#[cfg(test)]
mod tests {
    use super::super::HttpLimits;
    use super::super::tests::serve_on;
    use crate::storage::MemoryKv;
    use serde_json::{Value, json};

    /// `method path` with an optional JSON body: the status and the answer.
    async fn ask(
        client: &reqwest::Client,
        url: String,
        method: reqwest::Method,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = client.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    #[tokio::test]
    async fn bad_requests_are_refused_naming_what_is_wrong() {
        let served = serve_on(Box::new(MemoryKv::default()), HttpLimits::default()).await;
        let (base, client) = (served.base, served.client);
        let get = |path: &str| {
            let url = format!("{base}{path}");
            ask(&client, url, reqwest::Method::GET, None)
        };
        let windows = "before_start=0&before_end=10&after_start=20&after_end=30";
        for (path, status, message) in [
            (format!("/api/v1/compare?{windows}"), 400, "\"match[]\""),
            (
                format!("/api/v1/compare?node=a&match[]=up&{windows}"),
                400,
                "not both",
            ),
            (
                "/api/v1/compare?node=a&before_start=0&before_end=10".into(),
                400,
                "\"after_start\"",
            ),
            (
                "/api/v1/compare?node=a&before_start=9&before_end=1&after_start=20&after_end=30"
                    .into(),
                400,
                "\"before_end\"",
            ),
            (
                "/api/v1/compare?node=a&annotation=00000000000000000000".into(),
                400,
                "\"window\"",
            ),
            (
                "/api/v1/compare?node=a&annotation=00000000000000000000&window=1h".into(),
                404,
                "no annotation with id",
            ),
            ("/api/v1/experiments/nope".into(), 404, "no experiment"),
        ] {
            let (got, answer) = get(&path).await;
            assert_eq!(got, status, "{path}: {answer}");
            let error = answer["error"].as_str().unwrap();
            assert!(error.contains(message), "{path}: {error}");
        }
        // Nothing matches: an empty comparison, not an error.
        let (got, answer) = get(&format!("/api/v1/compare?node=a&{windows}")).await;
        assert_eq!(got, 200, "{answer}");
        assert_eq!(answer["data"]["series"], json!([]));
        assert_eq!(
            answer["data"]["after"],
            json!({"start_ms": 20_000, "end_ms": 30_000})
        );

        let post = |path: &str, body: Value| {
            let url = format!("{base}{path}");
            ask(&client, url, reqwest::Method::POST, Some(body))
        };
        let experiment = json!({
            "name": "x",
            "baseline": {"start": 0, "end": "1970-01-01T00:00:10Z"},
            "treatment": {"start": "20", "end": 30},
            "match": ["up"],
            "criterion": {"statistic": "p99", "direction": "decrease", "by_percent": 10},
        });
        let (got, answer) = post("/api/v1/experiments", experiment.clone()).await;
        assert_eq!(got, 400, "{answer}");
        assert!(
            answer["error"].as_str().unwrap().contains("p99"),
            "{answer}"
        );
        let mut good = experiment;
        good["criterion"]["statistic"] = json!("median");
        let (got, made) = post("/api/v1/experiments", good).await;
        assert_eq!(got, 200, "{made}");
        assert_eq!(
            made["data"]["baseline"],
            json!({"start_ms": 0, "end_ms": 10_000})
        );
        assert_eq!(made["data"]["created_by"], "test");
        let id = made["data"]["id"].as_str().unwrap();
        let (got, shown) = get(&format!("/api/v1/experiments/{id}")).await;
        assert_eq!(got, 200, "{shown}");
        let result = &shown["data"]["result"];
        assert_eq!(
            (&result["met"], &result["confidence"]),
            (&json!(false), &json!(0.0))
        );
        assert_eq!(result["observed_change_percent"], Value::Null);
        let (got, answer) = post("/api/v1/annotations", json!({"time": "soon", "text": "x"})).await;
        assert_eq!(got, 400);
        assert!(
            answer["error"].as_str().unwrap().starts_with("time:"),
            "{answer}"
        );
    }
}

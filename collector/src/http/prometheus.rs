//! The endpoints Prometheus' clients call besides queries: `/-/healthy`, `/-/ready`, the
//! status pages (`buildinfo`, `runtimeinfo`, `flags`), `/api/v1/metadata`,
//! `/api/v1/query_exemplars` and `/api/v1/targets` (agents as scrape targets). Grafana, the
//! Python `prometheus-api-client` and `promtool` probe these before they query.

use super::error::{ApiError, success};
use super::params::{Params, QueryParams};
use super::{ApiState, blocking};
use crate::alerting::time::rfc3339_millis;
use crate::api::prometheus::{
    ActiveTarget, BuildInfo, MetricMetadata, RuntimeInfo, SeriesExemplars, TargetHealth, Targets,
};
use crate::ingest::NodeStatus;
use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// How Go writes a time never set; Prometheus answers it for a target never scraped.
const NEVER: &str = "0001-01-01T00:00:00Z";

/// What the status endpoints say about this collector, fixed at start.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// When the collector started (and read its config), Unix ms.
    pub started_ms: i64,
    /// The alert rules in force, for `/api/v1/rules`.
    pub rules: super::rules::AlertRules,
}

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .route("/api/v1/status/buildinfo", get(build_info))
        .route("/api/v1/status/runtimeinfo", get(runtime_info))
        .route("/api/v1/status/flags", get(flags))
        .route("/api/v1/metadata", get(metadata))
        .route(
            "/api/v1/query_exemplars",
            get(query_exemplars).post(query_exemplars),
        )
        .route("/api/v1/targets", get(targets))
}

/// Plain text, as Prometheus answers its health checks.
fn plain(text: &'static str) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}

async fn healthy() -> Response {
    plain("hcmon collector is Healthy.\n")
}

/// Ready once the store is open and recovered, which it is before the router serves.
async fn ready() -> Response {
    plain("hcmon collector is Ready.\n")
}

async fn build_info() -> Response {
    success(BuildInfo {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        // Set by a packaging build (`HCMON_REVISION=$(git rev-parse HEAD) cargo build`).
        revision: option_env!("HCMON_REVISION")
            .unwrap_or("unknown")
            .to_owned(),
        branch: option_env!("HCMON_BRANCH").unwrap_or("unknown").to_owned(),
        build_user: option_env!("HCMON_BUILD_USER")
            .unwrap_or("unknown")
            .to_owned(),
        build_date: option_env!("HCMON_BUILD_DATE")
            .unwrap_or("unknown")
            .to_owned(),
        // The compiler's own version is not known without a build script; the minimum is.
        go_version: concat!("rust ", env!("CARGO_PKG_RUST_VERSION")).to_owned(),
    })
}

async fn runtime_info(State(state): State<ApiState>) -> Response {
    let runtime = &state.runtime;
    let started = rfc3339_millis(runtime.started_ms);
    let tokio = tokio::runtime::Handle::current().metrics();
    let cwd = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    success(RuntimeInfo {
        start_time: started.clone(),
        cwd,
        reload_config_success: true,
        last_config_time: started,
        corruption_count: 0,
        goroutine_count: tokio.num_alive_tasks(),
        gomaxprocs: tokio.num_workers(),
        gomemlimit: 0,
        gogc: String::new(),
        godebug: String::new(),
        // How long raw samples are kept; rollups are kept longer.
        storage_retention: prometheus_duration(state.tsdb.config().retention.raw),
    })
}

/// A duration as Prometheus writes one: the largest unit that divides it (`15d`, `90m`).
fn prometheus_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms == 0 {
        return "0s".to_owned();
    }
    let units: [(&str, u128); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    let (unit, size) = units
        .into_iter()
        .find(|(_, size)| ms.is_multiple_of(*size))
        .unwrap_or(("ms", 1));
    format!("{}{unit}", ms / size)
}

/// The command line, as Prometheus lists its flags: `--name=value` and `--name value` as
/// `name: value`, a flag alone as `name: true`.
async fn flags() -> Response {
    success(command_line_flags(std::env::args().skip(1)))
}

fn command_line_flags(args: impl Iterator<Item = String>) -> BTreeMap<String, String> {
    let mut flags = BTreeMap::new();
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        let Some(flag) = arg.strip_prefix("--") else {
            continue;
        };
        let (name, value) = match flag.split_once('=') {
            Some((name, value)) => (name.to_owned(), value.to_owned()),
            None => {
                let value = args.next_if(|next| !next.starts_with("--"));
                (flag.to_owned(), value.unwrap_or_else(|| "true".to_owned()))
            }
        };
        flags.insert(name, value);
    }
    flags
}

/// `GET /api/v1/metadata[?metric=][&limit=][&limit_per_metric=]`: what senders declared
/// about each family (type, help, unit: remote write's metadata), and for names no sender
/// declared, the TYPE and HELP stored with their series; a name stored with two kinds or help
/// texts lists both.
async fn metadata(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams,
) -> Result<Response, ApiError> {
    let wanted = params.get("metric").map(str::to_owned);
    let limit = positive_limit(&params, "limit")?;
    let per_metric = positive_limit(&params, "limit_per_metric")?;
    let (catalog, tsdb) = (state.catalog.clone(), state.tsdb.clone());
    let families = blocking("/api/v1/metadata", move || {
        let mut families: BTreeMap<String, BTreeSet<(String, String, String)>> = BTreeMap::new();
        let declared = tsdb.families();
        for (name, meta) in &declared {
            families.entry(name.clone()).or_default().insert((
                meta.kind.as_str().to_owned(),
                meta.help.clone(),
                meta.unit.clone(),
            ));
        }
        let covered = |series: &str| {
            declared.iter().any(|(family, meta)| {
                series == family
                    || series
                        .strip_prefix(family.as_str())
                        .is_some_and(|rest| meta.kind.part_suffixes().contains(&rest))
            })
        };
        for meta in catalog.all() {
            let name = meta.labels.metric_name();
            if covered(name) {
                continue;
            }
            families.entry(name.to_owned()).or_default().insert((
                meta.kind.as_str().to_owned(),
                meta.help.clone(),
                String::new(),
            ));
        }
        families
            .into_iter()
            .filter(|(name, _)| wanted.as_deref().is_none_or(|w| w == name))
            .take(limit.unwrap_or(usize::MAX))
            .map(|(name, entries)| {
                let entries = entries
                    .into_iter()
                    .take(per_metric.unwrap_or(usize::MAX))
                    .map(|(kind, help, unit)| MetricMetadata { kind, help, unit })
                    .collect::<Vec<_>>();
                (name, entries)
            })
            .collect::<BTreeMap<_, _>>()
    })
    .await?;
    Ok(success(families))
}

/// A `limit` as Prometheus reads it: a whole number, none (all) when absent or not positive.
fn positive_limit(params: &Params, name: &'static str) -> Result<Option<usize>, ApiError> {
    Ok(params
        .integer(name)?
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| *n > 0))
}

/// `GET|POST /api/v1/query_exemplars?query=&start=&end=`: hcmon stores no exemplars, so the
/// answer is empty; the parameters are checked as Prometheus checks them.
async fn query_exemplars(params: Params) -> Result<Response, ApiError> {
    let query = params.required("query")?;
    crate::query::parse(query)?;
    let start = params.time_ms("start")?;
    let end = params.time_ms("end")?;
    if let (Some(start), Some(end)) = (start, end)
        && end < start
    {
        return Err(ApiError::BadParam {
            name: "end",
            message: "end timestamp must not be before start timestamp".into(),
        });
    }
    Ok(success(Vec::<SeriesExemplars>::new()))
}

/// `GET /api/v1/targets[?state=active|dropped|any][&scrapePool=]`: each agent as an active
/// target of its job (`node` unless configured), up while its stream is open. Remote-write senders push and are
/// no targets.
async fn targets(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams,
) -> Result<Response, ApiError> {
    let states = [("active", true), ("any", true), ("dropped", false)];
    let active = params.choice("state", &states)?.unwrap_or(true);
    let pool = params.get("scrapePool");
    let nodes = state.ingest.node_statuses().await;
    let active_targets = match active {
        true => nodes
            .into_iter()
            .filter(|node| pool.is_none_or(|p| p == node.target.job))
            .map(target)
            .collect(),
        false => Vec::new(),
    };
    Ok(success(Targets {
        active_targets,
        dropped_targets: Vec::new(),
        dropped_target_counts: BTreeMap::new(),
    }))
}

fn target(node: NodeStatus) -> ActiveTarget {
    let labels = BTreeMap::from([
        ("instance".to_owned(), node.target.instance.clone()),
        ("job".to_owned(), node.target.job.clone()),
    ]);
    let health = match (node.connected, node.last_batch_at_ms) {
        (true, _) => TargetHealth::Up,
        (false, 0) => TargetHealth::Unknown,
        (false, _) => TargetHealth::Down,
    };
    let last_error = match health {
        TargetHealth::Down => "the agent's stream is closed".to_owned(),
        TargetHealth::Up | TargetHealth::Unknown => String::new(),
    };
    let last_scrape = match node.last_batch_at_ms {
        0 => NEVER.to_owned(),
        ms => rfc3339_millis(ms),
    };
    ActiveTarget {
        discovered_labels: labels.clone(),
        labels,
        scrape_pool: node.target.job.clone(),
        scrape_url: String::new(),
        global_url: String::new(),
        last_error,
        last_scrape,
        last_scrape_duration: 0.0,
        health,
        scrape_interval: String::new(),
        scrape_timeout: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_written_in_prometheus_units() {
        let d = |s| prometheus_duration(Duration::from_secs(s));
        assert_eq!(d(15 * 86_400), "15d");
        assert_eq!(d(14 * 86_400), "2w");
        assert_eq!(d(5400), "90m");
        assert_eq!(d(0), "0s");
        assert_eq!(prometheus_duration(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn flags_are_read_from_the_command_line() {
        let args = [
            "--data-dir",
            "/var/lib/hcmon",
            "--config=/etc/h.toml",
            "--verbose",
            "x",
        ];
        let flags = command_line_flags(args.into_iter().map(String::from));
        let expected = BTreeMap::from([
            ("config".to_owned(), "/etc/h.toml".to_owned()),
            ("data-dir".to_owned(), "/var/lib/hcmon".to_owned()),
            ("verbose".to_owned(), "x".to_owned()),
        ]);
        assert_eq!(flags, expected);
    }
}

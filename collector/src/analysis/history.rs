//! History for the engines beyond what this collector keeps: when `[history] remote_url` names
//! a Prometheus-compatible query API (the VictoriaMetrics cluster or Mimir it forwards to, a
//! Prometheus), the part of a window before this collector's oldest sample of the series is read
//! from there. So a trend over 30 days, or a correlation over a week, works on a collector that
//! keeps two days (`deploy/scale-out/`), or that was installed yesterday.
//!
//! The remote samples come from an instant query of a range selector (`series[<window>]`),
//! which the Prometheus API answers with the raw samples, not a resampled grid. Only samples
//! before the first local one are taken, so nothing is counted twice where both hold it.
//! Readers of rollups (SLOs and the reports built on them) ask where the store's history
//! begins in rollups too ([`History::remote_before`]): raw retention ending is not missing
//! history there. PromQL reads through [`HistorySource`], so alert rules and ratio SLOs over
//! long windows see the remote history as well.
//!
//! The remote is asked only where this collector could not hold the window: before the first
//! day its store holds (its first day, or what retention left). Later than that a series'
//! missing samples are truly missing (a node that stopped), and a rule over it must not cost a
//! remote request every round. Rule rounds ask for the same stretch every round, so answers
//! are kept a few minutes ([`RemoteAnswers`]).

use super::remote_answers::RemoteAnswers;
use crate::catalog::SeriesCatalog;
use crate::outbound::{OutboundClient, bearer_headers};
use crate::query::{QueryError, SeriesSource};
use crate::storage::{Aggregate, Resolution, SeriesId, SeriesMeta, StoreError, Table, Tsdb};
use hcmon_common::{Secret, Selector};
use http::{HeaderMap, Method};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `[history]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    /// The query API's base, e.g. `http://vmselect:8481/select/0/prometheus` or
    /// `http://prometheus:9090`; empty: the engines read this collector's store only.
    pub remote_url: String,
    /// Sent as `Authorization: Bearer …`.
    pub bearer_token: Option<Secret>,
    pub bearer_token_file: Option<PathBuf>,
    /// A CA certificate (PEM) to trust besides the public ones.
    pub ca_file: Option<PathBuf>,
    /// Longest wait for one answer (default 30 s).
    #[serde(with = "humantime_serde")]
    pub timeout: Option<Duration>,
}

impl HistoryConfig {
    pub fn load_secrets(&mut self) -> Result<(), hcmon_common::secret::SecretError> {
        hcmon_common::secret::resolve(
            "history.bearer_token",
            &mut self.bearer_token,
            &mut self.bearer_token_file,
            std::fs::read_to_string,
        )
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.remote_url.is_empty() {
            return Ok(());
        }
        hcmon_common::HttpEndpoint::parse(&self.remote_url)
            .map(|_| ())
            .map_err(|e| format!("remote_url: {e}"))
    }
}

/// Why a window could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("remote history at {url}: {detail}")]
    Remote { url: String, detail: String },
}

/// Reads windows of a series: the local store, and before its oldest sample, the remote API.
pub struct History {
    tsdb: Arc<Tsdb>,
    remote: Option<Remote>,
}

struct Remote {
    base: String,
    client: OutboundClient,
    headers: HeaderMap,
    timeout: Duration,
    answers: Mutex<RemoteAnswers>,
}

/// Most remote samples kept for reuse (16 bytes each): 32 MiB.
const ANSWERS_KEPT: usize = 2_000_000;
/// How long a remote answer is reused.
const ANSWER_FRESH_FOR: Duration = Duration::from_secs(300);
const DAY_MS: i64 = 86_400_000;

/// A window whose first local sample comes later than this after its start is missing history
/// worth asking for. Below it the gap is the series' own interval (up to the agent's 5 min
/// extended tier), and asking the remote on every analysis would cost a request per series.
const MISSING_AFTER_MS: i64 = 10 * 60_000;

/// Most bytes of one remote answer: a month of one series at 10 s is about 10 MB of JSON.
const MAX_ANSWER: usize = 64 << 20;

impl History {
    /// This collector's store only.
    pub fn local(tsdb: Arc<Tsdb>) -> Self {
        Self { tsdb, remote: None }
    }

    pub fn new(tsdb: Arc<Tsdb>, config: &HistoryConfig) -> anyhow::Result<Self> {
        if config.remote_url.is_empty() {
            return Ok(Self::local(tsdb));
        }
        let client = OutboundClient::with_ca_file(
            config.ca_file.as_deref(),
            concat!("hcmon-collector/", env!("CARGO_PKG_VERSION")),
        )?;
        let headers = bearer_headers(config.bearer_token.as_ref(), "history.bearer_token")?;
        Ok(Self {
            tsdb,
            remote: Some(Remote {
                base: config.remote_url.trim_end_matches('/').to_owned(),
                client,
                headers,
                timeout: config.timeout.unwrap_or(Duration::from_secs(30)),
                answers: Mutex::new(RemoteAnswers::new(ANSWERS_KEPT, ANSWER_FRESH_FOR)),
            }),
        })
    }

    /// The store it reads first.
    pub fn tsdb(&self) -> &Arc<Tsdb> {
        &self.tsdb
    }

    /// Whether a remote history is configured.
    pub fn has_remote(&self) -> bool {
        self.remote.is_some()
    }

    /// The remote, if one is configured and a window from `start_ms` may reach before what the
    /// store holds of `table`: before the day after its oldest day (that day may be partly
    /// empty), or anywhere while nothing is checkpointed yet.
    fn remote_for(&self, table: Table, start_ms: i64) -> Result<Option<&Remote>, StoreError> {
        let Some(remote) = &self.remote else {
            return Ok(None);
        };
        let lacking = match self.tsdb.first_day_start(table)? {
            None => true,
            Some(first_day) => start_ms < first_day + DAY_MS,
        };
        Ok(lacking.then_some(remote))
    }

    /// For readers of rollups (SLOs, reports), which reach back further than raw samples: the
    /// remote samples of `meta` over `[start_ms, local_from)`, where `local_from` is where the
    /// store's history of the series in `[start_ms, end_ms]` begins (its first raw sample in
    /// its first hour, else that hour's rollup). Without a remote, or with local history
    /// missing for at most the allowance, nothing is read and `local_from` is `start_ms`.
    /// Blocking, like [`History::read_raw`].
    pub fn remote_before(
        &self,
        meta: &SeriesMeta,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<(Vec<(i64, f64)>, i64), HistoryError> {
        let Some(remote) = self.remote_for(Table::Rollup1h, start_ms)? else {
            return Ok((Vec::new(), start_ms));
        };
        const HOUR_MS: i64 = 3_600_000;
        let first_hour = self
            .tsdb
            .read_rollup(
                meta.id,
                Resolution::OneHour,
                start_ms.div_euclid(HOUR_MS) * HOUR_MS,
                end_ms,
            )?
            .first()
            .map(|(hour, _)| *hour);
        let local_from = match first_hour {
            None => end_ms + 1,
            Some(hour) => {
                let from = hour.max(start_ms);
                let raw = self.tsdb.read_raw(meta.id, from, hour + HOUR_MS - 1)?;
                raw.first().map_or(from, |s| s.0)
            }
        };
        if local_from - start_ms <= MISSING_AFTER_MS {
            return Ok((Vec::new(), start_ms));
        }
        Ok((
            remote.read_kept(meta, start_ms, local_from - 1)?,
            local_from,
        ))
    }

    /// The samples of `meta` over `[start_ms, end_ms]`, oldest first. Blocking: run it on the
    /// blocking pool (it waits for the remote answer there).
    pub fn read_raw(
        &self,
        meta: &SeriesMeta,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<(i64, f64)>, HistoryError> {
        let local = self.tsdb.read_raw(meta.id, start_ms, end_ms)?;
        self.with_remote_before(meta, start_ms, end_ms, local)
    }

    /// As [`History::read_raw`], with staleness markers, as PromQL reads.
    pub fn read_raw_with_markers(
        &self,
        meta: &SeriesMeta,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<(i64, f64)>, HistoryError> {
        let local = self.tsdb.read_raw_with_markers(meta.id, start_ms, end_ms)?;
        self.with_remote_before(meta, start_ms, end_ms, local)
    }

    /// `local` (the store's samples of the window), after the remote samples before its first
    /// one where the store may lack them.
    fn with_remote_before(
        &self,
        meta: &SeriesMeta,
        start_ms: i64,
        end_ms: i64,
        local: Vec<(i64, f64)>,
    ) -> Result<Vec<(i64, f64)>, HistoryError> {
        let first_local = local.first().map_or(end_ms + 1, |s| s.0);
        if first_local - start_ms <= MISSING_AFTER_MS {
            return Ok(local);
        }
        let Some(remote) = self.remote_for(Table::Chunks, start_ms)? else {
            return Ok(local);
        };
        let mut samples = remote.read_kept(meta, start_ms, first_local - 1)?;
        samples.extend(local);
        Ok(samples)
    }
}

/// PromQL's data read through the history: alert rules and ratio SLOs over windows longer than
/// the store holds see the remote history before it.
pub struct HistorySource {
    pub catalog: Arc<SeriesCatalog>,
    pub history: Arc<History>,
}

impl SeriesSource for HistorySource {
    fn select(&self, selector: &Selector) -> Vec<Arc<SeriesMeta>> {
        self.catalog.select(selector)
    }
    fn raw(&self, meta: &SeriesMeta, start: i64, end: i64) -> Result<Vec<(i64, f64)>, QueryError> {
        Ok(self.history.read_raw_with_markers(meta, start, end)?)
    }
    fn rollup(
        &self,
        series: SeriesId,
        res: Resolution,
        start: i64,
        end: i64,
    ) -> Result<Vec<(i64, Aggregate)>, StoreError> {
        self.history.tsdb().read_rollup(series, res, start, end)
    }
    /// The remote may hold what the store's rollups do not.
    fn rollups_hold_raw(&self, _: Resolution) -> bool {
        false
    }
}

impl From<HistoryError> for QueryError {
    fn from(e: HistoryError) -> Self {
        match e {
            HistoryError::Store(e) => QueryError::Store(e),
            remote => QueryError::Unavailable(remote.to_string()),
        }
    }
}

impl Remote {
    /// [`Remote::read`], answered from a kept answer when one covers the span.
    fn read_kept(
        &self,
        meta: &SeriesMeta,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<(i64, f64)>, HistoryError> {
        let kept = || self.answers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(samples) = kept().get(meta.id, start_ms, end_ms, Instant::now()) {
            return Ok(samples);
        }
        let samples = self.read(meta, start_ms, end_ms)?;
        kept().put(meta.id, start_ms, end_ms, &samples, Instant::now());
        Ok(samples)
    }

    fn read(
        &self,
        meta: &SeriesMeta,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<(i64, f64)>, HistoryError> {
        let failed = |detail: String| HistoryError::Remote {
            url: self.base.clone(),
            detail,
        };
        // The range selector covers `(time - range, time]`: one ms more reaches `start_ms`.
        let range_ms = end_ms - start_ms + 1;
        let query = format!("{}[{range_ms}ms]", meta.labels);
        let params = serde_urlencoded::to_string([
            ("query", query),
            ("time", format!("{:.3}", end_ms as f64 / 1000.0)),
        ])
        .map_err(|e| failed(e.to_string()))?;
        let url = format!("{}/api/v1/query?{params}", self.base);
        let call = self.client.call(
            Method::GET,
            &url,
            self.headers.clone(),
            Vec::new(),
            MAX_ANSWER,
        );
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| failed("no runtime to ask it from".into()))?;
        let answer = handle
            .block_on(async { tokio::time::timeout(self.timeout, call).await })
            .map_err(|_| failed(format!("no answer within {:?}", self.timeout)))?
            .map_err(|e| failed(e.to_string()))?;
        if !answer.status.is_success() {
            let body = String::from_utf8_lossy(&answer.body);
            return Err(failed(format!(
                "answered {}: {}",
                answer.status,
                body.chars().take(300).collect::<String>()
            )));
        }
        let parsed: Answer = serde_json::from_slice(&answer.body)
            .map_err(|e| failed(format!("not a Prometheus query answer: {e}")))?;
        // The series itself when the remote holds it with exactly these labels; else (the
        // forwarding path added labels, such as a site's) the only series the selector found.
        let wanted: Vec<(&str, &str)> = meta.labels.iter().collect();
        let exact = parsed.data.result.iter().find(|s| {
            let mut labels: Vec<(&str, &str)> = s
                .metric
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            labels.sort();
            let mut wanted = wanted.clone();
            wanted.sort();
            labels == wanted
        });
        let series = match (exact, parsed.data.result.as_slice()) {
            (Some(series), _) => series,
            (None, [only]) => only,
            (None, []) => return Ok(Vec::new()),
            (None, several) => {
                return Err(failed(format!(
                    "{} series match {} there, none with exactly its labels",
                    several.len(),
                    meta.labels
                )));
            }
        };
        let mut samples = Vec::with_capacity(series.values.len());
        for (t, v) in &series.values {
            let ms = (t * 1000.0).round() as i64;
            let value: f64 = v
                .parse()
                .map_err(|_| failed(format!("sample value {v:?} is not a number")))?;
            if (start_ms..=end_ms).contains(&ms) {
                samples.push((ms, value));
            }
        }
        samples.sort_by_key(|s| s.0);
        Ok(samples)
    }
}

#[derive(Deserialize)]
struct Answer {
    data: AnswerData,
}

#[derive(Deserialize)]
struct AnswerData {
    result: Vec<AnswerSeries>,
}

#[derive(Deserialize)]
struct AnswerSeries {
    metric: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

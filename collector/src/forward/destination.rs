//! One destination's task: read the WAL after its cursor, relabel, encode, send, retry, move
//! the cursor.

use super::config::{DestinationConfig, Protocol};
use super::encode::{Outgoing, content_type, encode};
use super::relabel::{Relabel, SentLabels};
use crate::catalog::SeriesCatalog;
use crate::outbound::{OutboundClient, OutboundError, bearer_headers};
use crate::storage::{MetricKind, SeriesId, StoreError, Tsdb, WalRecord};
use crate::telemetry::CollectorMetrics;
use http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use http::{HeaderValue, Method, StatusCode};
use rustc_hash::FxHashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// What a series is sent as, worked out once per series.
struct SentSeries {
    labels: SentLabels,
    kind: MetricKind,
    help: String,
}

/// A series and its samples in one request, in stored order.
type SeriesRun = (Arc<SentSeries>, Vec<(i64, f64)>);

/// Series whose relabelling is remembered before the memory is given back.
const CACHED_SERIES: usize = 1 << 20;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often an idle destination looks for new records.
const IDLE_POLL: Duration = Duration::from_millis(100);

pub struct Destination {
    config: DestinationConfig,
    relabel: Relabel,
    tsdb: Arc<Tsdb>,
    catalog: Arc<SeriesCatalog>,
    metrics: Arc<CollectorMetrics>,
    client: OutboundClient,
    protocol: Protocol,
    reader: String,
    cursor: u64,
    series: FxHashMap<SeriesId, Option<Arc<SentSeries>>>,
    /// Backlog accounting: bytes after the cursor at open, WAL bytes written then, and bytes
    /// sent (or given up) since.
    backlog_at_open: u64,
    written_at_open: u64,
    consumed: u64,
}

/// How a request ended.
enum Sent {
    Accepted,
    Refused(String),
}

impl Destination {
    /// Opens the destination's WAL reader, so checkpoints keep its records from now on.
    pub fn open(
        config: DestinationConfig,
        tsdb: Arc<Tsdb>,
        catalog: Arc<SeriesCatalog>,
        metrics: Arc<CollectorMetrics>,
    ) -> anyhow::Result<Self> {
        let relabel = config
            .validate()
            .map_err(|problem| anyhow::anyhow!("invalid `remote_write_out`: {problem}"))?;
        let reader = format!("remote_write_out/{}", config.name);
        let cursor = tsdb.open_wal_reader(&reader)?;
        let backlog_at_open = tsdb.wal_bytes_after(cursor)?;
        let written_at_open = tsdb.wal_bytes_written();
        let client = OutboundClient::with_ca_file(
            config.ca_file.as_deref(),
            concat!("hcmon-collector/", env!("CARGO_PKG_VERSION")),
        )
        .map_err(|e| anyhow::anyhow!("remote_write_out {:?}: ca_file: {e:#}", config.name))?;
        Ok(Self {
            protocol: config.protocol,
            config,
            relabel,
            tsdb,
            catalog,
            metrics,
            client,
            reader,
            cursor,
            series: FxHashMap::default(),
            backlog_at_open,
            written_at_open,
            consumed: 0,
        })
    }

    fn backlog_bytes(&self) -> u64 {
        (self.backlog_at_open + self.tsdb.wal_bytes_written())
            .saturating_sub(self.written_at_open + self.consumed)
    }

    /// Sends until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let name = self.config.name.clone();
        let lag = self.metrics.forward_lag_seconds.with_label_values(&[&name]);
        let backlog = self
            .metrics
            .forward_backlog_bytes
            .with_label_values(&[&name]);
        tracing::info!(destination = %name, url = %self.config.url, "forwarding stored samples");
        let mut caught_up_at = Instant::now();
        while !shutdown.is_cancelled() {
            let (tsdb, after, max) = (
                self.tsdb.clone(),
                self.cursor,
                self.config.max_samples_per_send,
            );
            let read =
                crate::tasks::blocking("remote-write-out-read", move || tsdb.read_wal(after, max))
                    .await;
            let records = match read {
                Ok(Ok(records)) => records,
                Ok(Err(error)) => {
                    tracing::error!(destination = %name, %error, "cannot read the WAL to forward");
                    self.pause(&shutdown, MAX_BACKOFF).await;
                    continue;
                }
                Err(_panicked) => {
                    self.pause(&shutdown, MAX_BACKOFF).await;
                    continue;
                }
            };
            backlog.set(self.backlog_bytes() as i64);
            let Some(last) = records.last().map(|r| r.id) else {
                caught_up_at = Instant::now();
                lag.set(0.0);
                self.pause(&shutdown, IDLE_POLL).await;
                continue;
            };
            let samples: usize = records.iter().map(|r| r.samples.len()).sum();
            let tail = samples < self.config.max_samples_per_send;
            let bytes: u64 = records.iter().map(|r| r.bytes as u64).sum();
            if self.backlog_bytes() > self.config.max_backlog_bytes {
                self.dropped("backlog_full", samples);
            } else if !self.forward(&records, &shutdown, &lag, caught_up_at).await {
                return; // shut down mid-retry: the cursor stays, the records stay
            }
            self.cursor = last;
            self.consumed += bytes;
            if let Err(error) = self.advance() {
                tracing::error!(destination = %name, %error, "cannot save the forwarding cursor");
            }
            backlog.set(self.backlog_bytes() as i64);
            if tail {
                caught_up_at = Instant::now();
                lag.set(0.0);
            } else {
                lag.set(caught_up_at.elapsed().as_secs_f64());
            }
        }
    }

    fn advance(&self) -> Result<(), StoreError> {
        self.tsdb.advance_wal_reader(&self.reader, self.cursor)
    }

    fn dropped(&self, reason: &str, samples: usize) {
        self.metrics
            .forward_dropped_samples
            .with_label_values(&[&self.config.name, reason])
            .inc_by(samples as u64);
    }

    async fn pause(&self, shutdown: &CancellationToken, wait: Duration) {
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }

    /// What a series is sent as; `None` when a rule filters it or it was deleted.
    fn sent_series(&mut self, id: SeriesId) -> Option<Arc<SentSeries>> {
        if self.series.len() >= CACHED_SERIES {
            self.series.clear();
        }
        let (catalog, relabel) = (&self.catalog, &self.relabel);
        self.series
            .entry(id)
            .or_insert_with(|| {
                let meta = catalog.get(id)?;
                Some(Arc::new(SentSeries {
                    labels: relabel.apply(&meta.labels)?,
                    kind: meta.kind,
                    help: meta.help.clone(),
                }))
            })
            .clone()
    }

    /// Sends the records' samples, retrying until the receiver answers for good. Returns
    /// false when shut down first.
    async fn forward(
        &mut self,
        records: &[WalRecord],
        shutdown: &CancellationToken,
        lag: &prometheus::Gauge,
        caught_up_at: Instant,
    ) -> bool {
        // Group by series, keeping each series' stored order; the series in first-seen order.
        let mut order: Vec<SeriesRun> = Vec::new();
        let mut at: FxHashMap<SeriesId, usize> = FxHashMap::default();
        let mut filtered = 0;
        for sample in records.iter().flat_map(|r| &r.samples) {
            let slot = match at.get(&sample.series) {
                Some(&slot) => slot,
                None => match self.sent_series(sample.series) {
                    Some(sent) => {
                        order.push((sent, Vec::new()));
                        at.insert(sample.series, order.len() - 1);
                        order.len() - 1
                    }
                    None => {
                        filtered += 1;
                        continue;
                    }
                },
            };
            order[slot].1.push((sample.timestamp_ms, sample.value));
        }
        if filtered > 0 {
            self.metrics
                .forward_filtered_samples
                .with_label_values(&[&self.config.name])
                .inc_by(filtered);
        }
        if order.is_empty() {
            return true;
        }
        let samples: usize = order.iter().map(|(_, s)| s.len()).sum();
        let mut backoff = FIRST_BACKOFF;
        let mut failing = false;
        loop {
            let outgoing: Vec<Outgoing<'_>> = order
                .iter()
                .map(|(sent, samples)| Outgoing {
                    labels: &sent.labels,
                    kind: sent.kind,
                    help: &sent.help,
                    samples: samples.clone(),
                })
                .collect();
            let body = encode(self.protocol, &outgoing);
            match self.send(body).await {
                Ok(Sent::Accepted) => {
                    if failing {
                        tracing::info!(destination = %self.config.name, "receiver accepts again");
                    }
                    self.metrics
                        .forward_samples
                        .with_label_values(&[&self.config.name])
                        .inc_by(samples as u64);
                    return true;
                }
                Ok(Sent::Refused(detail)) => {
                    tracing::warn!(destination = %self.config.name, samples, %detail,
                        "receiver refused a request for good; its samples are dropped");
                    self.dropped("refused", samples);
                    return true;
                }
                Err((reason, detail)) => {
                    self.metrics
                        .forward_failures
                        .with_label_values(&[&self.config.name, reason])
                        .inc();
                    if !failing {
                        tracing::warn!(destination = %self.config.name, reason, %detail,
                            "cannot forward; retrying with backoff, the samples wait on disk");
                        failing = true;
                    }
                }
            }
            lag.set(caught_up_at.elapsed().as_secs_f64());
            self.pause(shutdown, backoff).await;
            if shutdown.is_cancelled() {
                return false;
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// One request. `Err` is worth retrying: (reason for the failure counter, detail).
    async fn send(&mut self, body: Vec<u8>) -> Result<Sent, (&'static str, String)> {
        let (content, version) = content_type(self.protocol);
        let mut headers = bearer_headers(self.config.bearer_token.as_ref(), "bearer_token")
            .map_err(|e| ("config", e.to_string()))?;
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("snappy"));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content));
        headers.insert(
            "x-prometheus-remote-write-version",
            HeaderValue::from_static(version),
        );
        let call = self
            .client
            .call(Method::POST, &self.config.url, headers, body, 4096);
        let answer = match tokio::time::timeout(self.config.timeout, call).await {
            Err(_) => return Err(("timeout", format!("no answer in {:?}", self.config.timeout))),
            Ok(Err(error @ OutboundError::Request { .. })) => {
                return Ok(Sent::Refused(error.to_string()));
            }
            Ok(Err(error)) => return Err(("transport", error.to_string())),
            Ok(Ok(answer)) => answer,
        };
        let text = || String::from_utf8_lossy(&answer.body).trim().to_owned();
        match answer.status {
            // A 2.0 receiver says what it wrote; one that does not read the body as 1.0 and
            // found nothing in it, so the request is sent again as 1.0.
            s if s.is_success()
                && self.protocol == Protocol::V2
                && !answer
                    .headers
                    .contains_key("x-prometheus-remote-write-samples-written") =>
            {
                tracing::warn!(destination = %self.config.name,
                    "receiver does not confirm remote write 2.0; sending 1.0 from now on");
                self.protocol = Protocol::V1;
                Err((
                    "protocol",
                    "no X-Prometheus-Remote-Write-Samples-Written".into(),
                ))
            }
            s if s.is_success() => Ok(Sent::Accepted),
            StatusCode::UNSUPPORTED_MEDIA_TYPE if self.protocol == Protocol::V2 => {
                tracing::warn!(destination = %self.config.name,
                    "receiver does not take remote write 2.0; sending 1.0 from now on");
                self.protocol = Protocol::V1;
                Err(("protocol", text()))
            }
            StatusCode::TOO_MANY_REQUESTS => Err(("status_429", text())),
            s if s.is_server_error() => Err(("status_5xx", format!("{s}: {}", text()))),
            s => Ok(Sent::Refused(format!("{s}: {}", text()))),
        }
    }
}

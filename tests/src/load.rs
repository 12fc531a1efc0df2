//! Simulated agents for load and crash tests: each speaks the real gRPC protocol, numbers its
//! batches, resumes from the collector's `last_durable_seq` after any failure, and generates
//! deterministic data, so a test can tell exactly which samples must be stored. They connect in
//! plaintext, or over mutual TLS with a certificate the caller made for the node.

use hcmon_proto::v1::ingest_client::IngestClient;
use hcmon_proto::v1::{
    AgentMessage, Batch, Label, MetricKind, RegisterRequest, SESSION_METADATA_KEY, SeriesDef,
    SeriesSamples, agent_message, collector_message,
};
use rustls::ClientConfig;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::{Channel, Endpoint};

/// Shape of one simulated agent's data.
#[derive(Debug, Clone)]
pub struct AgentShape {
    pub node: String,
    pub series: usize,
    /// Points per series in one batch.
    pub points_per_batch: usize,
    pub batches: u64,
    /// Timestamp of the first point, ms.
    pub start_ms: i64,
    pub interval_ms: i64,
}

impl AgentShape {
    /// Timestamp of point `p` (0-based across all batches).
    pub fn timestamp(&self, point: usize) -> i64 {
        self.start_ms + point as i64 * self.interval_ms
    }

    /// The deterministic value of series `s` at point `p`: a mix of what hosts report
    /// (a counter, a two-decimal gauge, a constant, a random walk of integers).
    pub fn value(&self, series: usize, point: usize) -> f64 {
        let h = hash(&self.node) ^ (series as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        match series % 4 {
            0 => (point as u64 * (1000 + h % 977) + (hash2(h, point) % 300)) as f64,
            1 => ((h % 5000) as f64 + (hash2(h, point) % 2000) as f64) / 100.0,
            2 => (h % 64) as f64 * 1_073_741_824.0,
            _ => (8_000_000_000 + (hash2(h, point / 6) % 50_000_000)) as f64,
        }
    }

    pub fn kind(series: usize) -> MetricKind {
        if series.is_multiple_of(4) {
            MetricKind::Counter
        } else {
            MetricKind::Gauge
        }
    }

    pub fn metric_name(series: usize) -> String {
        match series % 4 {
            0 => format!("load_bytes_{series}_total"),
            _ => format!("load_value_{series}"),
        }
    }

    /// Batch `seq` (1-based), defining every series when `define` is set.
    pub fn batch(&self, seq: u64, define: bool) -> Batch {
        let first_point = (seq - 1) as usize * self.points_per_batch;
        let points = first_point..first_point + self.points_per_batch;
        let new_series = if define {
            (0..self.series)
                .map(|s| SeriesDef {
                    id: s as u32 + 1,
                    name: Self::metric_name(s),
                    labels: vec![Label {
                        name: "job".into(),
                        value: "load".into(),
                    }],
                    kind: Self::kind(s) as i32,
                    help: "Synthetic load.".into(),
                })
                .collect()
        } else {
            Vec::new()
        };
        let samples = (0..self.series)
            .map(|s| SeriesSamples {
                series_id: s as u32 + 1,
                timestamps_ms: points.clone().map(|p| self.timestamp(p)).collect(),
                values: points.clone().map(|p| self.value(s, p)).collect(),
            })
            .collect();
        Batch {
            seq,
            new_series,
            samples,
            skipped_from: 0,
        }
    }

    pub fn samples_total(&self) -> u64 {
        self.batches * (self.series * self.points_per_batch) as u64
    }
}

fn hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn hash2(h: u64, point: usize) -> u64 {
    let mut x = h ^ (point as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x ^= x >> 31;
    x = x.wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 29)
}

/// Progress shared with whoever watches the run.
#[derive(Debug, Default)]
pub struct Progress {
    pub acked_batches: AtomicU64,
    pub reconnects: AtomicU64,
}

/// Ack latencies (send → ack) in microseconds, one per batch.
pub type Latencies = Vec<u64>;

/// Sends every batch of `shape` to the collector at `url`, surviving collector restarts, until
/// all are acked. Returns the ack latency of each batch.
pub async fn run_agent(
    url: String,
    shape: AgentShape,
    window: usize,
    progress: Arc<Progress>,
) -> Latencies {
    run(&url, None, shape, window, progress).await
}

/// As [`run_agent`], over mutual TLS: `url` is `https://`, and `tls` presents the node's
/// certificate and trusts the collector's CA.
pub async fn run_agent_tls(
    url: String,
    tls: ClientConfig,
    shape: AgentShape,
    window: usize,
    progress: Arc<Progress>,
) -> Latencies {
    run(&url, Some(&tls), shape, window, progress).await
}

async fn run(
    url: &str,
    tls: Option<&ClientConfig>,
    shape: AgentShape,
    window: usize,
    progress: Arc<Progress>,
) -> Latencies {
    // A node's spool epoch changes with where its data starts: a probe that sends one round
    // after another as the same node is a new spool each round, as an agent whose spool was
    // reset. Each shape keeps its epoch through reconnects.
    let epoch = (hash(&shape.node) ^ shape.start_ms as u64) | 1;
    let mut latencies = Vec::with_capacity(shape.batches as usize);
    loop {
        match session(url, tls, &shape, epoch, window, &progress, &mut latencies).await {
            Ok(true) => return latencies,
            Ok(false) | Err(_) => {
                progress.reconnects.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// One connection; `Ok(true)` once everything is acked.
async fn session(
    url: &str,
    tls: Option<&ClientConfig>,
    shape: &AgentShape,
    epoch: u64,
    window: usize,
    progress: &Progress,
    latencies: &mut Latencies,
) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
    let mut client = IngestClient::new(channel(url, tls).await?);
    let registration = client
        .register(RegisterRequest {
            node_name: shape.node.clone(),
            spool_epoch: epoch,
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut acked = registration.last_durable_seq;
    if acked >= shape.batches {
        return Ok(true);
    }
    let (tx, rx) = mpsc::channel(window);
    let mut request = tonic::Request::new(ReceiverStream::new(rx));
    request
        .metadata_mut()
        .insert(SESSION_METADATA_KEY, registration.session_id.parse()?);
    let mut inbound = client.stream(request).await?.into_inner();
    let mut sent_at = std::collections::VecDeque::new();
    let mut next = acked + 1;
    // Series are defined once per stream, by its first batch.
    let mut defined = false;
    loop {
        while next <= shape.batches && (next - acked) as usize <= window {
            let batch = shape.batch(next, !defined);
            defined = true;
            tx.send(AgentMessage {
                kind: Some(agent_message::Kind::Batch(batch)),
            })
            .await?;
            sent_at.push_back((next, Instant::now()));
            next += 1;
        }
        let Some(message) = inbound.message().await? else {
            return Ok(false);
        };
        if let Some(collector_message::Kind::Ack(ack)) = message.kind {
            while let Some(&(seq, at)) = sent_at.front() {
                if seq > ack.seq {
                    break;
                }
                latencies.push(at.elapsed().as_micros() as u64);
                sent_at.pop_front();
            }
            progress
                .acked_batches
                .fetch_add(ack.seq.saturating_sub(acked), Ordering::Relaxed);
            acked = acked.max(ack.seq);
            if acked >= shape.batches {
                return Ok(true);
            }
        }
    }
}

async fn channel(
    url: &str,
    tls: Option<&ClientConfig>,
) -> Result<Channel, tonic::transport::Error> {
    let endpoint = Endpoint::from_shared(url.to_owned())?;
    match tls {
        None => endpoint.connect().await,
        Some(config) => hcmon_agent::tls::connect(&endpoint, config.clone()).await,
    }
}

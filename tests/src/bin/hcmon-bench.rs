//! `hcmon-bench`: feeds identical data to hcmon (over its gRPC agent protocol and over remote
//! write), VictoriaMetrics and Prometheus (both through vmagent with one queue), and reports
//! per server: samples per CPU-second (from /proc), wall throughput, peak RSS, and bytes per
//! sample on disk after compaction. Also: ack latency of the gRPC path, bytes per sample of a
//! real agent capture, and range-query latency over 1 day raw and 30 days of rollups.
//!
//! The TLS cost: the same gRPC run once more with `[tls] enabled = true`, the fake agents on
//! mutual TLS, and the ratio of its samples per CPU-second to plaintext's. Each fake agent gets a
//! certificate signed directly with the collector's CA key (`<data_dir>/pki/ca.key`), not through
//! enrollment, which is a one-time cost per node and not ingest; each agent session pays one
//! handshake, as a real agent does per connection.
//!
//! Run by `just bench-ingest` (release build); every figure is from the same run, so ratios
//! between servers hold even on a noisy machine.
// A benchmark's report goes to stdout.
#![allow(clippy::print_stdout)]

use anyhow::{Context, bail};
use hcmon_agent::tls::{Identity, Trust, client_config};
use hcmon_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
use hcmon_tests::bench::{Server, dir_bytes, free_port, percentile, start_collector, wait_http};
use hcmon_tests::load::{AgentShape, Latencies, Progress, run_agent, run_agent_tls};
use prost::Message;
use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair, KeyUsagePurpose};
use rustls::ClientConfig;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

struct Args {
    hosts: usize,
    series: usize,
    points: usize,
    capture: PathBuf,
    work: PathBuf,
    /// The runs asked for with `--only`; all when `None`.
    only: Option<Vec<String>>,
}

/// The runs `--only` can pick.
const RUNS: [&str; 7] = [
    "grpc",
    "tls",
    "detection",
    "remote-write",
    "victoria-metrics",
    "prometheus",
    "capture",
];

impl Args {
    /// Whether the run named `run` (one of [`RUNS`]) is to be made.
    fn runs(&self, run: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|only| only.iter().any(|r| r == run))
    }
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        hosts: 2000,
        series: 10,
        points: 500,
        capture: PathBuf::from("tests/data/agent-capture.jsonl"),
        work: std::env::temp_dir().join("hcmon-bench"),
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--hosts" => args.hosts = value()?.parse()?,
            "--series" => args.series = value()?.parse()?,
            "--points" => args.points = value()?.parse()?,
            "--capture" => args.capture = value()?.into(),
            "--work" => args.work = value()?.into(),
            "--only" => {
                let only: Vec<String> = value()?.split(',').map(str::to_owned).collect();
                if let Some(unknown) = only.iter().find(|r| !RUNS.contains(&r.as_str())) {
                    bail!(
                        "--only: no run is named {unknown:?} (runs: {})",
                        RUNS.join(",")
                    );
                }
                args.only = Some(only);
            }
            "--help" | "-h" => {
                println!(
                    "usage: hcmon-bench [--hosts 2000] [--series 10] [--points 500] [--capture FILE] [--work DIR] [--only RUN,...]\n\
                     runs (all by default): {}; the ratios need victoria-metrics and prometheus",
                    RUNS.join(",")
                );
                std::process::exit(0);
            }
            other => bail!("unknown flag {other:?} (see --help)"),
        }
    }
    Ok(args)
}

/// The admin tokens of the hcmon collectors started, by HTTP port.
static HCMON_TOKENS: std::sync::Mutex<Vec<(u16, String)>> = std::sync::Mutex::new(Vec::new());

/// The token of the hcmon collector `url` points at, if it is one.
fn hcmon_token(url: &str) -> Option<String> {
    let port: u16 = url.split(':').nth(2)?.split('/').next()?.parse().ok()?;
    let tokens = HCMON_TOKENS.lock().expect("token lock");
    tokens
        .iter()
        .find(|(p, _)| *p == port)
        .map(|(_, t)| t.clone())
}

/// A client for `url`, sending its collector's token when it is an hcmon collector.
fn client_for(url: &str) -> reqwest::Client {
    match hcmon_token(url) {
        Some(token) => hcmon_tests::client_with(&token).expect("a token fits a header"),
        None => reqwest::Client::new(),
    }
}

async fn get_text(url: &str) -> String {
    match client_for(url).get(url).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Sum of every sample of the metric `name` in a Prometheus text exposition.
fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

/// Polls `metrics_url` until `name` reaches `target`; returns when it did.
async fn wait_count(metrics_url: &str, name: &str, target: f64) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let value = metric_sum(&get_text(metrics_url).await, name);
        if value >= target {
            return Ok(Instant::now());
        }
        if Instant::now() > deadline {
            bail!("{metrics_url}: {name} stuck at {value} of {target}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn shapes(args: &Args, start_ms: i64, points_per_batch: usize) -> Vec<AgentShape> {
    (0..args.hosts)
        .map(|h| AgentShape {
            node: format!("host{h:05}"),
            series: args.series,
            points_per_batch,
            batches: (args.points / points_per_batch) as u64,
            start_ms,
            interval_ms: 10_000,
        })
        .collect()
}

/// Remote-write bodies for the same data, one time point at a time across all hosts (as
/// scrapes would send them), at most `per_request` samples each.
fn remote_write_bodies(shapes: &[AgentShape], points: usize, per_request: usize) -> Vec<Vec<u8>> {
    let mut bodies = Vec::new();
    let mut series = Vec::new();
    let flush = |series: &mut Vec<TimeSeries>, bodies: &mut Vec<Vec<u8>>| {
        if series.is_empty() {
            return;
        }
        let raw = WriteRequest {
            timeseries: std::mem::take(series),
        }
        .encode_to_vec();
        bodies.push(
            snap::raw::Encoder::new()
                .compress_vec(&raw)
                .expect("snappy"),
        );
    };
    for p in 0..points {
        for shape in shapes {
            for s in 0..shape.series {
                let label = |n: &str, v: &str| Label {
                    name: n.into(),
                    value: v.into(),
                };
                series.push(TimeSeries {
                    labels: vec![
                        label("__name__", &AgentShape::metric_name(s)),
                        label("job", "load"),
                        label("node", &shape.node),
                    ],
                    samples: vec![Sample {
                        value: shape.value(s, p),
                        timestamp: shape.timestamp(p),
                    }],
                });
                if series.len() >= per_request {
                    flush(&mut series, &mut bodies);
                }
            }
        }
    }
    flush(&mut series, &mut bodies);
    bodies
}

async fn post_bodies(url: &str, bodies: &[Vec<u8>]) -> anyhow::Result<()> {
    let client = client_for(url);
    for body in bodies {
        let response = client
            .post(url)
            .header("Content-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(body.clone())
            .send()
            .await?;
        if !response.status().is_success() {
            bail!(
                "{url}: {}: {}",
                response.status(),
                response.text().await.unwrap_or_default()
            );
        }
    }
    Ok(())
}

struct Row {
    name: String,
    samples: u64,
    cpu_s: f64,
    wall_s: f64,
    rss_mib: f64,
    data_bytes: u64,
    index_bytes: u64,
    note: String,
}

impl Row {
    fn per_cpu_s(&self) -> f64 {
        self.samples as f64 / self.cpu_s.max(1e-9)
    }
}

/// What an hcmon collector under test runs besides storage. Both off for the storage comparison
/// (the other servers store only, in plaintext); one extra gRPC run with each on shows its cost.
#[derive(Debug, Clone, Copy, Default)]
struct Features {
    /// Live anomaly detection on ingest.
    analytics: bool,
    /// TLS on both listeners, agents with client certificates from the collector's CA.
    tls: bool,
}

fn hcmon_config(dir: &Path, features: Features) -> anyhow::Result<PathBuf> {
    let path = dir.join("collector.toml");
    let Features { analytics, tls } = features;
    // Back-filled history for the query probe reaches 31 days back. Every fake agent connects
    // from 127.0.0.1: over TLS the per-address connection cap must make room for all of them.
    std::fs::write(
        &path,
        format!(
            "[limits]\nmax_sample_age = \"40days\"\nmax_samples_per_batch = 200000\n\
             [analytics]\nenabled = {analytics}\n[tls]\nenabled = {tls}\n\
             [server.grpc]\nmax_connections_per_address = 100000\nmax_connections = 100000\n"
        ),
    )?;
    Ok(path)
}

fn start_hcmon(
    dir: &Path,
    name: &'static str,
    features: Features,
) -> anyhow::Result<(Server, u16, u16)> {
    std::fs::create_dir_all(dir)?;
    let config = hcmon_config(dir, features)?;
    let collector = start_collector(dir, name, &config)?;
    HCMON_TOKENS
        .lock()
        .expect("token lock")
        .push((collector.http, collector.token));
    Ok((collector.server, collector.grpc, collector.http))
}

/// Nanoseconds per sample the data-quality tracker spends on the ingest path: the same data
/// handed to it as ingest does (the fake agents' batches, every sample stored), timed in
/// this process so nothing else shares the measurement; the best of three passes over fresh
/// trackers, as the first pays for creating each series' state.
fn quality_cost(shapes: &[AgentShape], points: usize) -> f64 {
    use hcmon_collector::ingest::{BatchObserver, StoredBatch};
    use hcmon_collector::quality::QualityTracker;
    use hcmon_collector::storage::{Sample, SeriesId};
    // The batches the fake agents send: each host's points in runs of `points_per_batch`,
    // grouped by series, as ingest stores and hands them on.
    let series = shapes.first().map_or(0, |s| s.series);
    let per_batch = shapes.first().map_or(1, |s| s.points_per_batch).max(1);
    let batches: Vec<StoredBatch> = (0..points.div_ceil(per_batch))
        .flat_map(|b| {
            let run = b * per_batch..((b + 1) * per_batch).min(points);
            shapes
                .iter()
                .enumerate()
                .map(move |(h, shape)| StoredBatch {
                    node: Some(shape.node.clone()),
                    samples: Arc::new(
                        (0..series)
                            .flat_map(|s| {
                                run.clone().map(move |point| Sample {
                                    series: SeriesId((h * series + s) as u64 + 1),
                                    timestamp_ms: shape.timestamp(point),
                                    value: shape.value(s, point),
                                })
                            })
                            .collect(),
                    ),
                })
        })
        .collect();
    let samples: usize = batches.iter().map(|b| b.samples.len()).sum();
    let arrival = shapes.first().map_or(0, |s| s.timestamp(points)) + 500;
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let catalog = Arc::new(hcmon_collector::catalog::SeriesCatalog::new(Vec::new()));
        let tracker = QualityTracker::new(catalog, Arc::new(move || arrival), 3_600_000, 10);
        let started = Instant::now();
        for batch in &batches {
            tracker.stored(batch);
        }
        best = best.min(started.elapsed().as_nanos() as f64 / samples.max(1) as f64);
    }
    best
}

/// Compacts and returns (data, index, rollups, encoded data) bytes: on disk, except the last,
/// which is the chunks' keys and values alone, without RocksDB's file overhead. Data is the
/// sample chunks (and any WAL left); index is what is kept per series rather than per sample:
/// the series table and the head snapshots (newest sample and open rollup buckets, ~0.2 KB a
/// series), like VictoriaMetrics' indexdb.
async fn hcmon_compact(http: u16) -> anyhow::Result<(u64, u64, u64, u64)> {
    let url = format!("http://127.0.0.1:{http}/api/v1/admin/compact");
    let body: Value = client_for(&url).post(url).send().await?.json().await?;
    let table = |group: &str, n: &str| body["data"][group][n].as_u64().unwrap_or(0);
    let sum = |group: &str, names: &[&str]| names.iter().map(|n| table(group, n)).sum::<u64>();
    let data = sum("tables", &["chunks", "wal"]);
    let index = sum("tables", &["series", "head"]);
    let rollups = sum("tables", &["rollup_1m", "rollup_5m", "rollup_1h"]);
    let encoded = sum("encoded", &["chunks", "wal"]);
    Ok((data, index, rollups, encoded))
}

/// Where hcmon's memory is once the data is in, from its own `/metrics`: RocksDB's budget
/// (cache, memtables), the head, and each per-series engine's state.
async fn memory_breakdown(http: u16) -> anyhow::Result<String> {
    let url = format!("http://127.0.0.1:{http}/metrics");
    let text = client_for(&url).get(url).send().await?.text().await?;
    let parts: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            let label = |metric: &str, key: &str| {
                name.strip_prefix(metric)?
                    .strip_prefix(&format!("{{{key}=\""))?
                    .strip_suffix("\"}")
                    .map(str::to_owned)
            };
            // The whole process beside its parts: what the parts do not explain is transient
            // (batches in flight, allocator) or uncounted.
            let what = label("hcmon_collector_storage_memory_bytes", "kind")
                .or_else(|| label("hcmon_collector_state_bytes", "engine"))
                .or_else(|| {
                    Some(format!(
                        "heap {}",
                        label("hcmon_collector_allocator_bytes", "kind")?
                    ))
                })
                .or_else(|| (name == "process_resident_memory_bytes").then(|| "RSS".into()))?;
            Some(format!(
                "{what} {:.1} MiB",
                value.parse::<f64>().ok()? / 1048576.0
            ))
        })
        .collect();
    Ok(format!("memory once ingested: {}", parts.join(", ")))
}

/// The collector's CA, signing each fake agent's certificate itself: enrollment happens once
/// per node and is not what the bench measures.
struct AgentCa {
    issuer: Issuer<'static, KeyPair>,
    ca_pem: String,
}

impl AgentCa {
    /// The CA the collector made in `pki` (`ca.crt`, `ca.key`).
    fn load(pki: &Path) -> anyhow::Result<Self> {
        let read = |file: &str| {
            let path = pki.join(file);
            std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read the collector's CA: {}", path.display()))
        };
        let ca_pem = read("ca.crt")?;
        let key = KeyPair::from_pem(&read("ca.key")?).context("the CA key (ca.key)")?;
        let issuer =
            Issuer::from_ca_cert_pem(&ca_pem, key).context("the CA certificate (ca.crt)")?;
        Ok(Self { issuer, ca_pem })
    }

    /// Mutual TLS for `node`: a new key and a client certificate for it, as the collector's CA
    /// would issue at enrollment (the node name as common name, client authentication only).
    fn client_config(&self, node: &str) -> anyhow::Result<ClientConfig> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, node);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.issuer)?;
        // The folder only names files in errors: a fake agent keeps nothing on disk.
        let identity = Identity::from_pem(
            key.serialize_pem(),
            cert.pem(),
            self.ca_pem.clone(),
            Path::new(node),
        )?;
        Ok(client_config(Trust::Mutual {
            ca_pem: &self.ca_pem,
            identity: &identity,
        })?)
    }
}

/// How the fake agents reach one collector: in plaintext, or over mutual TLS.
#[derive(Clone)]
struct Dial {
    grpc: u16,
    ca: Option<Arc<AgentCa>>,
}

impl Dial {
    /// The TLS set-up of `node`'s agent, when over TLS.
    fn tls_for(&self, node: &str) -> anyhow::Result<Option<ClientConfig>> {
        self.ca
            .as_ref()
            .map(|ca| ca.client_config(node))
            .transpose()
    }

    /// Runs `shape`'s agent to the end with `tls` (from [`Dial::tls_for`]).
    async fn run(
        self,
        tls: Option<ClientConfig>,
        shape: AgentShape,
        window: usize,
        progress: Arc<Progress>,
    ) -> Latencies {
        let grpc = self.grpc;
        match tls {
            None => run_agent(format!("http://127.0.0.1:{grpc}"), shape, window, progress).await,
            Some(tls) => {
                let url = format!("https://127.0.0.1:{grpc}");
                run_agent_tls(url, tls, shape, window, progress).await
            }
        }
    }
}

/// The gRPC runs against hcmon: the storage comparison, then the same data with one feature on,
/// to show what it costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GrpcRun {
    Plaintext,
    Analytics,
    MutualTls,
}

impl GrpcRun {
    fn dir(self) -> &'static str {
        match self {
            GrpcRun::Plaintext => "hcmon-grpc",
            GrpcRun::Analytics => "hcmon-grpc-analytics",
            GrpcRun::MutualTls => "hcmon-grpc-mtls",
        }
    }

    fn name(self) -> &'static str {
        match self {
            GrpcRun::Plaintext => "hcmon, gRPC agent protocol",
            GrpcRun::Analytics => "hcmon, gRPC + live anomaly detection",
            GrpcRun::MutualTls => "hcmon, gRPC over mutual TLS",
        }
    }

    fn features(self) -> Features {
        Features {
            analytics: self == GrpcRun::Analytics,
            tls: self == GrpcRun::MutualTls,
        }
    }
}

/// Ingest over gRPC; returns the row, ack latencies (µs), the collector's ports and process.
async fn bench_hcmon_grpc(
    all: &[AgentShape],
    work: &Path,
    total: u64,
    run: GrpcRun,
) -> anyhow::Result<(Row, Vec<u64>, (u16, u16), Server)> {
    let (name, dir) = (run.name(), work.join(run.dir()));
    let features = run.features();
    let (server, grpc, http) = start_hcmon(&dir, name, features)?;
    let dial = Dial {
        grpc,
        ca: match features.tls {
            true => Some(Arc::new(AgentCa::load(&dir.join("data/pki"))?)),
            false => None,
        },
    };
    // Certificates are made before the clock starts; the collector's CPU is what is measured.
    let tls: Vec<Option<ClientConfig>> = all
        .iter()
        .map(|s| dial.tls_for(&s.node))
        .collect::<anyhow::Result<_>>()?;
    let cpu0 = server.cpu_seconds();
    let started = Instant::now();
    let progress = Arc::new(Progress::default());
    let mut latencies = Vec::new();
    // A probe agent sends one small batch at a time throughout, as a live agent does: its ack
    // latency is what agents see while the collector is saturated by the back-fill below.
    let probe_stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let probe = {
        let (dial, stop) = (dial.clone(), probe_stop.clone());
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            // One node and its 50 series throughout, each round a fresh spool whose 20 points,
            // 1 ms apart, start at the wall clock (and after the previous round's): a new node
            // per round would add 50 series each time, more the longer the back-fill lasts, to
            // hcmon's disk and memory figures and not to the other servers'.
            let mut next_start = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64);
                let shape = AgentShape {
                    node: "probe".to_owned(),
                    series: 50,
                    points_per_batch: 1,
                    batches: 20,
                    start_ms: now.max(next_start),
                    interval_ms: 1,
                };
                next_start = shape.start_ms + 20;
                let tls = dial.tls_for(&shape.node)?;
                let progress = Arc::new(Progress::default());
                latencies.extend(dial.clone().run(tls, shape, 1, progress).await);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            anyhow::Ok(latencies)
        })
    };
    // 64 agents stream at once, each sending its history in batches, as after an outage.
    for (group, tls) in all.chunks(64).zip(tls.chunks(64)) {
        let tasks: Vec<_> = group
            .iter()
            .zip(tls)
            .map(|(s, tls)| {
                let agent = dial
                    .clone()
                    .run(tls.clone(), s.clone(), 4, progress.clone());
                tokio::spawn(agent)
            })
            .collect();
        for task in tasks {
            latencies.extend(task.await?);
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = server.cpu_seconds() - cpu0;
    let rss = server.peak_rss_mib();
    probe_stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut probe = probe.await??;
    probe.sort_unstable();
    println!(
        "{name}: ack latency of a live agent (one 50-sample batch at a time) during the back-fill: p50 {:.1} ms, p99 {:.1} ms ({} batches)",
        percentile(&probe, 0.5),
        percentile(&probe, 0.99),
        probe.len()
    );
    if !matches!(run, GrpcRun::MutualTls) {
        println!("{name}: {}", memory_breakdown(http).await?);
    }
    // The HTTP API is on TLS too there, and the data stored is the plaintext run's.
    let (data, index, mut note) = match run {
        GrpcRun::MutualTls => (0, 0, "disk: the same data as plaintext gRPC".to_owned()),
        _ => {
            let (data, index, rollups, _) = hcmon_compact(http).await?;
            let rollups = rollups as f64 / total as f64;
            (data, index, format!("rollups {rollups:.3} B/sample more"))
        }
    };
    if features.analytics {
        // The detectors judge every sample; when they fall behind, ingest waits for them, and
        // that wait is part of this row's wall time.
        let url = format!("http://127.0.0.1:{http}/metrics");
        let exposition = client_for(&url).get(url).send().await?.text().await?;
        let figure = |name: &str| {
            exposition
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ').map(str::to_owned))
                .unwrap_or_else(|| "?".into())
        };
        note.push_str(&format!(
            "; {} detector workers, ingest waited {} s for them",
            figure("hcmon_collector_anomaly_workers"),
            figure("hcmon_collector_anomaly_backpressure_seconds_total"),
        ));
    }
    let row = Row {
        name: name.into(),
        samples: total,
        cpu_s: cpu,
        wall_s: wall,
        rss_mib: rss,
        data_bytes: data,
        index_bytes: index,
        note,
    };
    Ok((row, latencies, (grpc, http), server))
}

/// A server fed through vmagent, and how to tell when it has everything.
struct Target {
    name: &'static str,
    server: Server,
    write_url: String,
    metrics_url: String,
    /// Counter of samples stored, on `metrics_url`.
    counter: &'static str,
}

async fn bench_via_vmagent(
    target: Target,
    bodies: &[Vec<u8>],
    total: u64,
    work: &Path,
) -> anyhow::Result<(Row, Server)> {
    let Target {
        name,
        server,
        write_url,
        metrics_url,
        counter,
    } = target;
    let (write_url, metrics_url) = (write_url.as_str(), metrics_url.as_str());
    let port = free_port();
    let mut flags = vec![
        format!("-httpListenAddr=127.0.0.1:{port}"),
        format!("-remoteWrite.url={write_url}"),
        "-remoteWrite.queues=1".into(),
        format!(
            "-remoteWrite.tmpDataPath={}",
            work.join("vmagent").display()
        ),
    ];
    if let Some(token) = hcmon_token(write_url) {
        flags.push(format!("-remoteWrite.bearerToken={token}"));
    }
    let vmagent = Server::start(
        "vmagent",
        Path::new("vmagent"),
        &flags,
        &work.join("vmagent.log"),
    )?;
    wait_http(&format!("http://127.0.0.1:{port}/health")).await?;
    let base = metric_sum(&get_text(metrics_url).await, counter);
    let cpu0 = server.cpu_seconds();
    let started = Instant::now();
    post_bodies(&format!("http://127.0.0.1:{port}/api/v1/write"), bodies).await?;
    let done = wait_count(metrics_url, counter, base + total as f64).await?;
    let wall = done.duration_since(started).as_secs_f64();
    let cpu = server.cpu_seconds() - cpu0;
    let rss = server.peak_rss_mib();
    vmagent.stop();
    Ok((
        Row {
            name: name.into(),
            samples: total,
            cpu_s: cpu,
            wall_s: wall,
            rss_mib: rss,
            data_bytes: 0,
            index_bytes: 0,
            note: String::new(),
        },
        server,
    ))
}

/// Feeds the real agent capture (VictoriaMetrics export lines) into hcmon as one agent would.
async fn capture_bytes_per_sample(
    capture: &Path,
    work: &Path,
) -> anyhow::Result<Option<(u64, f64, f64)>> {
    let Ok(text) = std::fs::read_to_string(capture) else {
        return Ok(None);
    };
    let bodies_src: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let mut series = Vec::new();
    let mut total = 0u64;
    for s in &bodies_src {
        let mut labels: Vec<Label> = s["metric"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| Label {
                name: k.clone(),
                value: v.as_str().unwrap_or_default().to_owned(),
            })
            .collect();
        labels.sort_by(|a, b| a.name.cmp(&b.name));
        let ts = s["timestamps"].as_array().cloned().unwrap_or_default();
        let vs = s["values"].as_array().cloned().unwrap_or_default();
        let samples: Vec<Sample> = ts
            .iter()
            .zip(&vs)
            .map(|(t, v)| Sample {
                timestamp: t.as_i64().unwrap_or(0),
                value: v.as_f64().unwrap_or(0.0),
            })
            .collect();
        total += samples.len() as u64;
        series.push(TimeSeries { labels, samples });
    }
    if total == 0 {
        return Ok(None);
    }
    let raw = WriteRequest { timeseries: series }.encode_to_vec();
    let body = snap::raw::Encoder::new().compress_vec(&raw)?;
    let (server, _, http) = start_hcmon(
        &work.join("hcmon-capture"),
        "hcmon (capture)",
        Features::default(),
    )?;
    wait_http(&format!("http://127.0.0.1:{http}/healthz")).await?;
    post_bodies(&format!("http://127.0.0.1:{http}/api/v1/write"), &[body]).await?;
    let (data, _, _, encoded) = hcmon_compact(http).await?;
    server.stop();
    Ok(Some((
        total,
        data as f64 / total as f64,
        encoded as f64 / total as f64,
    )))
}

/// Latency percentiles of one query, in ms.
struct Latency {
    p50: f64,
    p95: f64,
    p99: f64,
}

/// Times range queries, 200 of each (so p99 is not the maximum): one day of raw 10 s data, and
/// 30 days answered from 1 h rollups.
async fn query_latency(grpc: u16, http: u16) -> anyhow::Result<(Latency, Latency)> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
    let day = 86_400_000i64;
    let end = now - now % 3_600_000;
    let shape = AgentShape {
        node: "query-probe".into(),
        series: 1,
        points_per_batch: 720,
        batches: 30 * 12,
        start_ms: end - 30 * day,
        interval_ms: 10_000,
    };
    run_agent(
        format!("http://127.0.0.1:{grpc}"),
        shape,
        8,
        Arc::new(Progress::default()),
    )
    .await;
    let client = client_for(&format!("http://127.0.0.1:{http}/"));
    let time = |start: i64, step: &str| {
        let client = client.clone();
        let step = step.to_owned();
        async move {
            let mut samples = Vec::new();
            for _ in 0..200 {
                let began = Instant::now();
                let response = client
                    .get(format!("http://127.0.0.1:{http}/api/v1/query_range"))
                    .query(&[
                        (
                            "query",
                            "load_bytes_0_total{node=\"query-probe\"}".to_owned(),
                        ),
                        ("start", (start / 1000).to_string()),
                        ("end", (end / 1000).to_string()),
                        ("step", step.clone()),
                    ])
                    .send()
                    .await?;
                let _ = response.bytes().await?;
                samples.push(began.elapsed().as_micros() as u64);
            }
            samples.sort_unstable();
            Ok::<_, anyhow::Error>(Latency {
                p50: percentile(&samples, 0.5),
                p95: percentile(&samples, 0.95),
                p99: percentile(&samples, 0.99),
            })
        }
    };
    let one_day = time(end - day, "10").await?;
    let month = time(end - 30 * day, "3600").await?;
    Ok((one_day, month))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let _ = std::fs::remove_dir_all(&args.work);
    std::fs::create_dir_all(&args.work)?;
    let work = args.work.clone();
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
    let start_ms = now - now % 10_000 - args.points as i64 * 10_000;
    let all = shapes(&args, start_ms, 50.min(args.points));
    let total: u64 = all.iter().map(AgentShape::samples_total).sum();
    println!(
        "data: {} hosts x {} series x {} points at 10 s = {} samples (seeded, deterministic)",
        args.hosts, args.series, args.points, total
    );
    let bodies = remote_write_bodies(&all, args.points, 10_000);
    let mut rows = Vec::new();

    // hcmon over its own protocol.
    let mut plain = None;
    if args.runs("grpc") {
        let (row, latencies, (grpc, http), server) =
            bench_hcmon_grpc(&all, &work, total, GrpcRun::Plaintext).await?;
        rows.push(row);
        // The query probe goes to the same collector, after its ingest was measured.
        plain = Some((latencies, query_latency(grpc, http).await?));
        server.stop();
    }
    // The same over mutual TLS, then with every sample also judged by the live anomaly
    // detectors.
    for (run, name) in [
        (GrpcRun::MutualTls, "tls"),
        (GrpcRun::Analytics, "detection"),
    ] {
        if !args.runs(name) {
            continue;
        }
        let (row, _, _, server) = bench_hcmon_grpc(&all, &work, total, run).await?;
        rows.push(row);
        server.stop();
    }
    if args.runs("remote-write") {
        rows.push(bench_hcmon_remote_write(&bodies, total, &work).await?);
    }
    if args.runs("victoria-metrics") {
        rows.push(bench_victoria_metrics(&bodies, total, &work).await?);
    }
    if args.runs("prometheus") {
        rows.push(bench_prometheus(&bodies, total, &work).await?);
    }
    let capture = if args.runs("capture") {
        capture_bytes_per_sample(&args.capture, &work).await?
    } else {
        None
    };
    print_rows(&args, &all, &rows, plain, capture);
    Ok(())
}

/// hcmon over remote write, through vmagent like the others.
async fn bench_hcmon_remote_write(
    bodies: &[Vec<u8>],
    total: u64,
    work: &Path,
) -> anyhow::Result<Row> {
    let (hcmon_rw, _, rw_http) = start_hcmon(
        &work.join("hcmon-rw"),
        "hcmon (remote write)",
        Features::default(),
    )?;
    wait_http(&format!("http://127.0.0.1:{rw_http}/healthz")).await?;
    let (mut row, server) = bench_via_vmagent(
        Target {
            name: "hcmon, remote write via vmagent",
            server: hcmon_rw,
            write_url: format!("http://127.0.0.1:{rw_http}/api/v1/write"),
            // Its own metrics only, as the other servers' `/metrics` are: the harness polls it
            // ten times a second, and the stored series' text is no part of ingest's cost.
            metrics_url: format!("http://127.0.0.1:{rw_http}/metrics?collect[]=collector"),
            counter: "hcmon_collector_ingested_samples_total",
        },
        bodies,
        total,
        &work.join("hcmon-rw"),
    )
    .await?;
    let (data, index, _, _) = hcmon_compact(rw_http).await?;
    (row.data_bytes, row.index_bytes) = (data, index);
    server.stop();
    Ok(row)
}

async fn bench_victoria_metrics(
    bodies: &[Vec<u8>],
    total: u64,
    work: &Path,
) -> anyhow::Result<Row> {
    let vm_dir = work.join("victoria-metrics");
    std::fs::create_dir_all(&vm_dir)?;
    let vm_port = free_port();
    let vm = Server::start(
        "victoria-metrics",
        Path::new("victoria-metrics"),
        &[
            format!("-storageDataPath={}", vm_dir.join("data").display()),
            format!("-httpListenAddr=127.0.0.1:{vm_port}"),
            "-retentionPeriod=1y".into(),
        ],
        &vm_dir.join("server.log"),
    )?;
    wait_http(&format!("http://127.0.0.1:{vm_port}/health")).await?;
    let (mut row, vm) = bench_via_vmagent(
        Target {
            name: "VictoriaMetrics via vmagent",
            server: vm,
            write_url: format!("http://127.0.0.1:{vm_port}/api/v1/write"),
            metrics_url: format!("http://127.0.0.1:{vm_port}/metrics"),
            counter: "vm_rows_added_to_storage_total",
        },
        bodies,
        total,
        &vm_dir,
    )
    .await?;
    let _ = reqwest::get(format!("http://127.0.0.1:{vm_port}/internal/force_flush")).await;
    let _ = reqwest::get(format!("http://127.0.0.1:{vm_port}/internal/force_merge")).await;
    // Merges run in the background; wait until the data folder stops shrinking.
    let mut last = u64::MAX;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = dir_bytes(&vm_dir.join("data/data"));
        if now == last {
            break;
        }
        last = now;
    }
    row.data_bytes = dir_bytes(&vm_dir.join("data/data"));
    row.index_bytes = dir_bytes(&vm_dir.join("data/indexdb"));
    vm.stop();
    Ok(row)
}

async fn bench_prometheus(bodies: &[Vec<u8>], total: u64, work: &Path) -> anyhow::Result<Row> {
    let prom_dir = work.join("prometheus");
    std::fs::create_dir_all(&prom_dir)?;
    std::fs::write(
        prom_dir.join("prometheus.yml"),
        "global:\n  scrape_interval: 1h\n",
    )?;
    let prom_port = free_port();
    let prom = Server::start(
        "prometheus",
        Path::new("prometheus"),
        &[
            format!(
                "--config.file={}",
                prom_dir.join("prometheus.yml").display()
            ),
            format!("--storage.tsdb.path={}", prom_dir.join("data").display()),
            format!("--web.listen-address=127.0.0.1:{prom_port}"),
            "--web.enable-remote-write-receiver".into(),
            "--web.enable-admin-api".into(),
        ],
        &prom_dir.join("server.log"),
    )?;
    wait_http(&format!("http://127.0.0.1:{prom_port}/-/ready")).await?;
    let (mut row, prom) = bench_via_vmagent(
        Target {
            name: "Prometheus via vmagent",
            server: prom,
            write_url: format!("http://127.0.0.1:{prom_port}/api/v1/write"),
            metrics_url: format!("http://127.0.0.1:{prom_port}/metrics"),
            counter: "prometheus_tsdb_head_samples_appended_total",
        },
        bodies,
        total,
        &prom_dir,
    )
    .await?;
    // A snapshot with the head writes everything as a compacted block.
    let snap: Value = reqwest::Client::new()
        .post(format!(
            "http://127.0.0.1:{prom_port}/api/v1/admin/tsdb/snapshot?skip_head=false"
        ))
        .send()
        .await?
        .json()
        .await?;
    let snap_dir = prom_dir
        .join("data/snapshots")
        .join(snap["data"]["name"].as_str().unwrap_or_default());
    let (mut chunks, mut index) = (0, 0);
    for block in std::fs::read_dir(&snap_dir).into_iter().flatten().flatten() {
        chunks += dir_bytes(&block.path().join("chunks"));
        index += std::fs::metadata(block.path().join("index")).map_or(0, |m| m.len());
    }
    (row.data_bytes, row.index_bytes) = (chunks, index);
    row.note = "disk from a snapshot of head + blocks".into();
    prom.stop();
    Ok(row)
}

/// The table, the ratios and the other figures of the runs made; `plain` is the plaintext gRPC
/// run's back-fill ack latencies and query latencies.
fn print_rows(
    args: &Args,
    all: &[AgentShape],
    rows: &[Row],
    plain: Option<(Latencies, (Latency, Latency))>,
    capture: Option<(u64, f64, f64)>,
) {
    println!();
    println!(
        "{:<36} {:>14} {:>10} {:>14} {:>9} {:>9} {:>9}  note",
        "server", "samples/cpu-s", "cpu s", "wall samples/s", "peak MiB", "data B/s", "index B/s"
    );
    for r in rows {
        // A row whose disk was not measured says so in its note.
        let per_sample = |bytes: u64| match (r.data_bytes, r.index_bytes) {
            (0, 0) => "-".to_owned(),
            _ => format!("{:.3}", bytes as f64 / r.samples as f64),
        };
        println!(
            "{:<36} {:>14.0} {:>10.2} {:>14.0} {:>9.1} {:>9} {:>9}  {}",
            r.name,
            r.per_cpu_s(),
            r.cpu_s,
            r.samples as f64 / r.wall_s,
            r.rss_mib,
            per_sample(r.data_bytes),
            per_sample(r.index_bytes),
            r.note
        );
    }
    let baselines: Vec<(&str, f64)> = ["VictoriaMetrics", "Prometheus"]
        .into_iter()
        .filter_map(|name| {
            let row = rows.iter().find(|r| r.name.starts_with(name))?;
            Some((name, row.per_cpu_s()))
        })
        .collect();
    println!();
    for r in rows.iter().filter(|r| r.name.starts_with("hcmon")) {
        let ratios: Vec<String> = baselines
            .iter()
            .map(|(name, per_cpu_s)| format!("{:.2}x {name}", r.per_cpu_s() / per_cpu_s))
            .collect();
        if ratios.is_empty() {
            continue;
        }
        println!("{}: {} samples per CPU-second", r.name, ratios.join(", "));
    }
    let run_row = |run: GrpcRun| rows.iter().find(|r| r.name == run.name());
    if let (Some(tls), Some(plain)) = (run_row(GrpcRun::MutualTls), run_row(GrpcRun::Plaintext)) {
        println!(
            "TLS cost: mTLS / plaintext samples per CPU-second = {:.2} (wall throughput {:.2}, peak RSS {:.2}; a TLS handshake per agent connection, {} agents)",
            tls.per_cpu_s() / plain.per_cpu_s(),
            plain.wall_s / tls.wall_s,
            tls.rss_mib / plain.rss_mib,
            args.hosts
        );
    }
    if let Some(plain) = run_row(GrpcRun::Plaintext) {
        let quality_ns = quality_cost(all, args.points);
        let ingest_ns = 1e9 / plain.per_cpu_s();
        println!(
            "data quality on the ingest path: {quality_ns:.1} ns per sample (the tracker alone, in-process, on the same data) = {:.2} % of hcmon's gRPC ingest CPU per sample ({ingest_ns:.0} ns, quality included)",
            100.0 * quality_ns / ingest_ns
        );
    }
    let queries = plain.map(|(mut latencies, queries)| {
        latencies.sort_unstable();
        println!(
            "gRPC ack latency of the back-filling agents (window 4 each, 64 at once, 256 batches of 500 samples in flight): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            percentile(&latencies, 1.0)
        );
        queries
    });
    match capture {
        Some((samples, disk, encoded)) => println!(
            "real agent capture: {samples} samples, {disk:.3} bytes per sample on disk after compaction (chunks), {encoded:.3} encoded (chunk keys and values, without RocksDB file overhead)"
        ),
        None if args.runs("capture") => {
            println!("real agent capture: {} not found", args.capture.display())
        }
        None => {}
    }
    let Some((day, month)) = queries else {
        return;
    };
    for (what, l) in [
        ("1 day of 10 s raw data", day),
        ("30 days at 1 h step (1 h rollups)", month),
    ] {
        println!(
            "query_range {what}, one series: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms",
            l.p50, l.p95, l.p99
        );
    }
}

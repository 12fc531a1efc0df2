//! `hcmon-bench-query`: PromQL query latency of hcmon beside Prometheus on the same data.
//!
//! Both servers get the same 25 hours of node-like series (CPU counters by mode, a classic
//! latency histogram, a load gauge) for `--hosts` hosts through remote write, oldest first.
//! Then each query of the table runs as an instant query and as 1 h and 24 h range queries
//! (what a Grafana panel asks), the servers taking turns, and the report gives p50 and p99
//! wall time per server and their ratio, measured in the same run since this machine is
//! noisy. Each answer's series count is compared, so a fast wrong answer shows.
//!
//! Run by `just bench-query` (release build).
// A benchmark's report goes to stdout.
#![allow(clippy::print_stdout)]

use anyhow::{Context, bail};
use hcmon_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
use hcmon_tests::bench::{Server, free_port, percentile, start_collector, wait_http};
use prost::Message;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The queries timed: what node dashboards and latency panels ask.
const QUERIES: [&str; 4] = [
    r#"sum by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[5m]))"#,
    r#"sum by (mode) (rate(node_cpu_seconds_total[5m]))"#,
    r#"histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))"#,
    r#"topk(5, node_load1)"#,
];

const STEP_MS: i64 = 30_000;
const HISTORY_MS: i64 = 25 * 3_600_000;
/// Time covered by one remote-write request.
const REQUEST_SPAN_MS: i64 = 20 * 60_000;
const BUCKETS: [&str; 7] = ["0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"];
const MODES: [&str; 4] = ["user", "system", "iowait", "idle"];

struct Args {
    hosts: usize,
    runs: usize,
    work: PathBuf,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        hosts: 20,
        runs: 15,
        work: std::env::temp_dir().join("hcmon-bench-query"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--hosts" => args.hosts = value()?.parse().context("--hosts")?,
            "--runs" => args.runs = value()?.parse().context("--runs")?,
            "--work" => args.work = value()?.into(),
            "--help" => {
                println!(
                    "hcmon-bench-query [--hosts N (20)] [--runs N (15)] [--work DIR]\n\
                     PromQL latency of hcmon beside Prometheus on the same 25 h of data."
                );
                std::process::exit(0);
            }
            other => bail!("unknown flag {other:?} (see --help)"),
        }
    }
    anyhow::ensure!(
        args.hosts > 0 && args.runs > 0,
        "--hosts and --runs must be positive"
    );
    Ok(args)
}

/// A small deterministic generator: the same data every run.
struct Xorshift(u64);

impl Xorshift {
    /// Uniform in [0, 1).
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One series being generated: labels, and how its next value follows from the last.
struct Generated {
    labels: Vec<Label>,
    value: f64,
    kind: Kind,
}

enum Kind {
    /// Adds `rate × step` (with noise) each step.
    Counter {
        rate: f64,
    },
    /// A cumulative bucket count: `share` of the requests fall at or below its bound.
    Bucket {
        share: f64,
    },
    Gauge,
}

fn label(name: &str, value: &str) -> Label {
    Label {
        name: name.into(),
        value: value.into(),
    }
}

fn series_set(hosts: usize) -> Vec<Generated> {
    let mut out = Vec::new();
    for host in 0..hosts {
        let instance = format!("host-{host:03}");
        let base = |name: &str| {
            vec![
                label("__name__", name),
                label("instance", &instance),
                label("job", "node"),
            ]
        };
        for cpu in 0..2 {
            for (i, mode) in MODES.iter().enumerate() {
                let mut labels = base("node_cpu_seconds_total");
                labels.push(label("cpu", &cpu.to_string()));
                labels.push(label("mode", mode));
                out.push(Generated {
                    labels,
                    value: 1000.0,
                    kind: Kind::Counter {
                        rate: [0.2, 0.05, 0.02, 0.7][i],
                    },
                });
            }
        }
        for (i, le) in BUCKETS.iter().enumerate() {
            let mut labels = base("http_request_duration_seconds_bucket");
            labels.push(label("le", le));
            out.push(Generated {
                labels,
                value: 0.0,
                kind: Kind::Bucket {
                    share: [0.3, 0.55, 0.8, 0.92, 0.97, 0.995, 1.0][i],
                },
            });
        }
        out.push(Generated {
            labels: base("http_request_duration_seconds_count"),
            value: 0.0,
            kind: Kind::Bucket { share: 1.0 },
        });
        out.push(Generated {
            labels: base("http_request_duration_seconds_sum"),
            value: 0.0,
            kind: Kind::Counter { rate: 4.0 },
        });
        out.push(Generated {
            labels: base("node_load1"),
            value: 1.0,
            kind: Kind::Gauge,
        });
    }
    // Labels sorted by name, as remote write requires.
    for s in &mut out {
        s.labels.sort_by(|a, b| a.name.cmp(&b.name));
    }
    out
}

/// The remote-write bodies of the whole history, oldest first.
fn bodies(hosts: usize, end_ms: i64) -> Vec<Vec<u8>> {
    let mut series = series_set(hosts);
    let mut rng = Xorshift(0x9E37_79B9_7F4A_7C15);
    let start = end_ms - HISTORY_MS;
    let mut out = Vec::new();
    let mut from = start;
    while from < end_ms {
        let to = (from + REQUEST_SPAN_MS).min(end_ms);
        let mut timeseries = Vec::with_capacity(series.len());
        for s in &mut series {
            let mut samples = Vec::new();
            let mut t = from;
            while t < to {
                // Requests per step, shared by a host's buckets through the draw below.
                let noise = rng.next();
                s.value = match s.kind {
                    Kind::Counter { rate } => s.value + rate * 30.0 * (0.5 + noise),
                    Kind::Bucket { share } => {
                        s.value + (60.0 * share * (0.8 + 0.4 * noise)).round()
                    }
                    Kind::Gauge => (s.value * 0.9 + 4.0 * noise * 0.1).max(0.0),
                };
                samples.push(Sample {
                    value: s.value,
                    timestamp: t,
                });
                t += STEP_MS;
            }
            timeseries.push(TimeSeries {
                labels: s.labels.clone(),
                samples,
            });
        }
        let raw = WriteRequest { timeseries }.encode_to_vec();
        out.push(
            snap::raw::Encoder::new()
                .compress_vec(&raw)
                .expect("snappy compresses"),
        );
        from = to;
    }
    out
}

/// A server's query endpoint and the client that may call it.
struct Target {
    name: &'static str,
    base: String,
    client: reqwest::Client,
}

impl Target {
    async fn write(&self, body: &[u8]) -> anyhow::Result<()> {
        let response = self
            .client
            .post(format!("{}/api/v1/write", self.base))
            .header("Content-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(body.to_vec())
            .send()
            .await?;
        let status = response.status();
        if !status.is_success() {
            bail!(
                "{} refused a write: {status} {}",
                self.name,
                response.text().await?
            );
        }
        Ok(())
    }

    /// Runs a query; its wall time in µs and how many series it returned.
    async fn query(&self, params: &[(&str, String)]) -> anyhow::Result<(u64, usize)> {
        let path = if params.iter().any(|(k, _)| *k == "step") {
            "query_range"
        } else {
            "query"
        };
        let began = Instant::now();
        let response = self
            .client
            .get(format!("{}/api/v1/{path}", self.base))
            .query(params)
            .send()
            .await?;
        let body: Value = response.json().await?;
        let elapsed = began.elapsed().as_micros() as u64;
        if body["status"] != "success" {
            bail!("{} failed {params:?}: {body}", self.name);
        }
        let count = body["data"]["result"].as_array().map_or(0, Vec::len);
        Ok((elapsed, count))
    }
}

fn start_prometheus(dir: &Path) -> anyhow::Result<(Server, String)> {
    std::fs::create_dir_all(dir)?;
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, "global:\n  scrape_interval: 1m\n")?;
    let port = free_port();
    let args = vec![
        format!("--config.file={}", config.display()),
        format!("--storage.tsdb.path={}", dir.join("data").display()),
        format!("--web.listen-address=127.0.0.1:{port}"),
        "--web.enable-remote-write-receiver".into(),
    ];
    let server = Server::start(
        "prometheus",
        Path::new("prometheus"),
        &args,
        &dir.join("prometheus.log"),
    )?;
    Ok((server, format!("http://127.0.0.1:{port}")))
}

/// p50 and p99 in ms of one query shape on one server.
#[derive(Default)]
struct Timing {
    micros: Vec<u64>,
    series: usize,
}

impl Timing {
    fn p(&mut self, q: f64) -> f64 {
        self.micros.sort_unstable();
        percentile(&self.micros, q)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let _ = std::fs::remove_dir_all(&args.work);
    std::fs::create_dir_all(&args.work)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
    // Whole minutes, so the query times fall between samples on both servers.
    let end_ms = now - now % 60_000;

    let hcmon_dir = args.work.join("hcmon");
    std::fs::create_dir_all(&hcmon_dir)?;
    let config = hcmon_dir.join("collector.toml");
    std::fs::write(
        &config,
        "[limits]\nmax_sample_age = \"3days\"\nmax_samples_per_batch = 500000\n",
    )?;
    let hcmon = start_collector(&hcmon_dir, "hcmon", &config)?;
    let (prometheus, prometheus_url) = start_prometheus(&args.work.join("prometheus"))?;
    wait_http(&format!("{prometheus_url}/-/ready")).await?;
    let targets = [
        Target {
            name: "hcmon",
            base: format!("http://127.0.0.1:{}", hcmon.http),
            client: hcmon_tests::client_with(&hcmon.token)?,
        },
        Target {
            name: "prometheus",
            base: prometheus_url,
            client: reqwest::Client::new(),
        },
    ];

    let bodies = bodies(args.hosts, end_ms);
    let series = series_set(args.hosts).len();
    println!(
        "hcmon-bench-query: {} hosts, {series} series, {} samples each over 25 h, {} requests",
        args.hosts,
        HISTORY_MS / STEP_MS,
        bodies.len()
    );
    for target in &targets {
        let began = Instant::now();
        for body in &bodies {
            target.write(body).await?;
        }
        println!(
            "  loaded {} in {:.1} s",
            target.name,
            began.elapsed().as_secs_f64()
        );
    }
    // Let both settle (Prometheus compacts its head; hcmon checkpoints).
    tokio::time::sleep(Duration::from_secs(10)).await;

    let at = (end_ms - 60_000) as f64 / 1000.0;
    let shapes: [(&str, Vec<(&str, String)>); 3] = [
        ("instant", vec![("time", format!("{at}"))]),
        (
            "range 1 h, step 15 s",
            vec![
                ("start", format!("{}", at - 3600.0)),
                ("end", format!("{at}")),
                ("step", "15".into()),
            ],
        ),
        (
            "range 24 h, step 60 s",
            vec![
                ("start", format!("{}", at - 86_400.0)),
                ("end", format!("{at}")),
                ("step", "60".into()),
            ],
        ),
    ];
    println!(
        "\n{:<88} {:<22} {:>18} {:>18} {:>9}",
        "query", "shape", "hcmon p50/p99 ms", "prom p50/p99 ms", "prom/hcmon p50"
    );
    let mut ratios = Vec::new();
    for query in QUERIES {
        for (shape, extra) in &shapes {
            let mut params = vec![("query", query.to_owned())];
            params.extend(extra.iter().cloned());
            let mut timings = [Timing::default(), Timing::default()];
            // Two warm-up runs each, then the servers take turns.
            for run in 0..args.runs + 2 {
                for (target, timing) in targets.iter().zip(&mut timings) {
                    let (micros, count) = target.query(&params).await?;
                    if run >= 2 {
                        timing.micros.push(micros);
                        timing.series = count;
                    }
                }
            }
            let [h, p] = &mut timings;
            let ratio = p.p(0.5) / h.p(0.5);
            ratios.push(ratio);
            let agree = if h.series == p.series {
                String::new()
            } else {
                format!(
                    "  (series differ: hcmon {}, prometheus {})",
                    h.series, p.series
                )
            };
            println!(
                "{query:<88} {shape:<22} {:>8.2} /{:>8.2} {:>8.2} /{:>8.2} {:>8.2}×{agree}",
                h.p(0.5),
                h.p(0.99),
                p.p(0.5),
                p.p(0.99),
                ratio
            );
        }
    }
    let geomean = (ratios.iter().map(|r| r.ln()).sum::<f64>() / ratios.len() as f64).exp();
    println!(
        "\ngeometric mean of prometheus p50 / hcmon p50 over {} query shapes: {geomean:.2}× (above 1: hcmon is faster)",
        ratios.len()
    );
    hcmon.server.stop();
    prometheus.stop();
    Ok(())
}

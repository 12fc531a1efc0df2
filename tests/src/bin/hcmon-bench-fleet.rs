//! A fleet on one collector: 1,000 simulated agents, each sending the series a real agent
//! collects on this machine (every tier collected once here through the agent's own code, so
//! names, labels and counts are the real ones) at the real tier intervals on the wall-clock
//! grid (basic 10 s, detailed 60 s, extended 5 min), plus 50 agents that come back with an
//! hour of spool and send it at once. Detection, quality and alerting are on, as shipped.
//!
//! Prints the live agents' ack latency (p50/p99/max, and when the slow acks were sent), the
//! back-filling agents' (their fresh batches apart: those wait behind the back-fill on their
//! stream), where a batch's time goes inside the collector (its stage histograms), the alert
//! evaluation delay from the collector's own histogram, the collector's resident memory per
//! agent, the anomaly backlog and the checkpoint's timings. Then kills the collector with -9
//! under that load, restarts it on the same ports, lets the agents resume, and checks every
//! acked sample is stored once.
//!
//! The collector times batches by their samples' age, so its `batch="live"` stage histograms
//! also hold a back-filling agent's fresh batches, which this bench counts apart.
//!
//! Agents ship as the real one does, each after its node's delay past the grid point
//! (`hcmon_agent::sender::ship_delay`); `--no-spread` ships the whole fleet at the grid point.
//!
//! `just bench-fleet` (release build; not in CI). `--agents`, `--backfill`, `--minutes`,
//! `--no-spread`.
#![allow(clippy::print_stdout)]

use anyhow::Context;
use clap::Parser;
use hcmon_agent::collect::{BasicTier, BatchBuilder, DetailedTier, ExtendedTier, Sources};
use hcmon_proto::v1::ingest_client::IngestClient;
use hcmon_proto::v1::{
    AgentMessage, Batch, RegisterRequest, SESSION_METADATA_KEY, SeriesDef, SeriesSamples,
    agent_message, collector_message,
};
use hcmon_tests::bench::{free_port, process_cpu_seconds};
use hcmon_tests::{Collector, bin_path_in, now_s};
use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

#[derive(Debug, Parser)]
struct Args {
    /// Live agents.
    #[arg(long, default_value_t = 1000)]
    agents: usize,
    /// Agents that come back with an hour of spool.
    #[arg(long, default_value_t = 50)]
    backfill: usize,
    /// Minutes of live load before the kill -9.
    #[arg(long, default_value_t = 3)]
    minutes: u64,
    /// Ship each batch at its grid point, not after the real agent's per-node delay
    /// (`hcmon_agent::sender::ship_delay`): the whole fleet in one burst.
    #[arg(long)]
    no_spread: bool,
}

/// Batches an agent has in flight on its stream, as the real sender's window.
const WINDOW: usize = 32;

/// One tier as the real agent collects it here: its series and a value of each.
struct Tier {
    interval_ms: i64,
    series: Vec<SeriesDef>,
    values: Vec<f64>,
    /// Offset of its series ids in an agent's numbering.
    first_id: u32,
}

async fn real_tiers() -> anyhow::Result<Vec<Tier>> {
    let root = Path::new("/");
    let mut sources = Sources::default();
    let mut basic = BasicTier::new(root)?;
    // CPU usage is a difference between two readings.
    basic.collect(&mut sources, &mut BatchBuilder::new(0));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut collected = Vec::new();
    let mut out = BatchBuilder::new(0);
    basic.collect(&mut sources, &mut out);
    collected.push((10_000, out.finish()));
    let mut out = BatchBuilder::new(0);
    DetailedTier::new(root)?.collect(&mut sources, &mut out);
    collected.push((60_000, out.finish()));
    let mut out = BatchBuilder::new(0);
    ExtendedTier::new(root)?
        .collect(&mut sources, &mut out)
        .await;
    collected.push((300_000, out.finish()));
    let mut first_id = 1;
    let mut tiers = Vec::new();
    for (interval_ms, record) in collected {
        let values = record
            .samples
            .iter()
            .map(|s| s.values.first().copied().unwrap_or(0.0))
            .collect();
        let series: Vec<SeriesDef> = record
            .series
            .into_iter()
            .enumerate()
            .map(|(i, mut def)| {
                def.id = first_id + i as u32;
                def
            })
            .collect();
        let count = series.len() as u32;
        tiers.push(Tier {
            interval_ms,
            series,
            values,
            first_id,
        });
        first_id += count;
    }
    Ok(tiers)
}

/// What every agent task reports.
#[derive(Default)]
struct Stats {
    /// Ack latencies of live batches (sent on their tick), microseconds.
    live_acks: Mutex<Vec<u64>>,
    /// Of fresh batches sent while their agent's stream still carried its back-fill: they wait
    /// behind it (a node's batches are stored in order), so they are not a live agent's.
    catching_up_acks: Mutex<Vec<u64>>,
    /// Live batches acked after over 50 ms (the target), by the second they were sent in,
    /// counted from the start: a stall shows as a cluster.
    slow_by_second: Mutex<std::collections::BTreeMap<u64, u32>>,
    /// When the agents started.
    started: std::sync::OnceLock<Instant>,
    /// Of those sent after the first minute (every series created).
    steady_acks: Mutex<Vec<u64>>,
    /// When the first minute ends.
    steady_from: std::sync::OnceLock<Instant>,
    /// Of live batches that define their tier's series on a new stream (series creation).
    defining_acks: Mutex<Vec<u64>>,
    backfill_acks: Mutex<Vec<u64>>,
    reconnects: AtomicU64,
}

/// One agent: a spool of batches (by sequence number) and what the collector acked.
struct Agent {
    node: String,
    epoch: u64,
    /// (sequence number, batch, samples, collected on its tick rather than spooled earlier)
    spool: VecDeque<(u64, Batch, usize, bool)>,
    next_seq: u64,
    acked_samples: u64,
    /// How long after each grid point its batches are shipped, as the real agent waits.
    ship_delay_ms: i64,
}

impl Agent {
    fn new(node: String, epoch: u64, spread: bool) -> Self {
        let ship_delay = match spread {
            true => hcmon_agent::sender::ship_delay(&node, Duration::from_secs(10)),
            false => Duration::ZERO,
        };
        Self {
            node,
            epoch,
            spool: VecDeque::new(),
            next_seq: 1,
            acked_samples: 0,
            ship_delay_ms: ship_delay.as_millis() as i64,
        }
    }

    /// Spools every tier due at `t` (a multiple of 10 s).
    fn collect(&mut self, tiers: &[Tier], t: i64, live: bool) {
        for tier in tiers.iter().filter(|tier| t % tier.interval_ms == 0) {
            let samples: Vec<SeriesSamples> = tier
                .series
                .iter()
                .zip(&tier.values)
                .map(|(def, &value)| SeriesSamples {
                    series_id: def.id,
                    timestamps_ms: vec![t],
                    values: vec![vary(value, def.kind, t, &self.node, def.id)],
                })
                .collect();
            let count = samples.len();
            let batch = Batch {
                seq: self.next_seq,
                new_series: Vec::new(),
                samples,
                skipped_from: 0,
            };
            self.spool.push_back((self.next_seq, batch, count, live));
            self.next_seq += 1;
        }
    }
}

/// A value near the real one: counters grow with time, gauges wander a little.
fn vary(value: f64, kind: i32, t: i64, node: &str, id: u32) -> f64 {
    let h = node.bytes().fold(u64::from(id) ^ (t as u64), |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let wobble = (h % 1000) as f64 / 1000.0;
    if kind == hcmon_proto::v1::MetricKind::Counter as i32 {
        value + (t / 1000) as f64 * (1.0 + wobble)
    } else {
        value * (0.98 + 0.04 * wobble)
    }
}

/// Runs an agent until `stop` and its spool is empty, surviving collector restarts.
async fn run_agent(
    url: String,
    tiers: Arc<Vec<Tier>>,
    mut agent: Agent,
    stop: Arc<AtomicBool>,
    stats: Arc<Stats>,
) -> Agent {
    loop {
        match session(&url, &tiers, &mut agent, &stop, &stats).await {
            Ok(()) => return agent,
            Err(_) => {
                stats.reconnects.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

fn now_ms() -> i64 {
    (now_s() * 1000.0) as i64
}

async fn session(
    url: &str,
    tiers: &[Tier],
    agent: &mut Agent,
    stop: &AtomicBool,
    stats: &Stats,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut client = IngestClient::connect(url.to_owned()).await?;
    let registration = client
        .register(RegisterRequest {
            node_name: agent.node.clone(),
            spool_epoch: agent.epoch,
            ..Default::default()
        })
        .await?
        .into_inner();
    drop_acked(agent, registration.last_durable_seq);
    let (tx, rx) = mpsc::channel(WINDOW);
    let mut request = tonic::Request::new(ReceiverStream::new(rx));
    request
        .metadata_mut()
        .insert(SESSION_METADATA_KEY, registration.session_id.parse()?);
    let mut inbound = client.stream(request).await?.into_inner();
    // Every series is defined by the first batch of its tier on this stream.
    let mut defined = vec![false; tiers.len()];
    let mut sent: VecDeque<(u64, Instant, &Mutex<Vec<u64>>)> = VecDeque::new();
    let mut next_tick = (now_ms() / 10_000 + 1) * 10_000;
    loop {
        if stop.load(Ordering::Relaxed) && agent.spool.is_empty() {
            return Ok(());
        }
        let in_flight_to = sent.back().map_or(0, |s| s.0);
        let behind_backfill = agent.spool.front().is_some_and(|b| !b.3);
        for (seq, batch, _, live) in agent.spool.iter().filter(|b| b.0 > in_flight_to) {
            if sent.len() >= WINDOW {
                break;
            }
            let mut batch = batch.clone();
            let mut target = match (*live, behind_backfill) {
                (true, false) => &stats.live_acks,
                (true, true) => &stats.catching_up_acks,
                (false, _) => &stats.backfill_acks,
            };
            for (i, tier) in tiers.iter().enumerate() {
                let mine = batch.samples.first().is_some_and(|s| {
                    s.series_id >= tier.first_id
                        && (s.series_id - tier.first_id) < tier.series.len() as u32
                });
                if mine && !defined[i] {
                    batch.new_series = tier.series.clone();
                    defined[i] = true;
                    if *live {
                        target = &stats.defining_acks;
                    }
                }
            }
            tx.send(AgentMessage {
                kind: Some(agent_message::Kind::Batch(batch)),
            })
            .await?;
            sent.push_back((*seq, Instant::now(), target));
        }
        let ship_at = next_tick + agent.ship_delay_ms;
        let wait = Duration::from_millis((ship_at - now_ms()).max(0) as u64);
        tokio::select! {
            message = inbound.message() => {
                let Some(message) = message? else { return Err("stream closed".into()) };
                if let Some(collector_message::Kind::Ack(ack)) = message.kind {
                    while let Some(&(seq, at, target)) = sent.front() {
                        if seq > ack.seq {
                            break;
                        }
                        let micros = at.elapsed().as_micros() as u64;
                        target.lock().expect("stats lock").push(micros);
                        let steady = stats.steady_from.get().is_some_and(|from| at >= *from);
                        let live = std::ptr::eq(target, &stats.live_acks);
                        if steady && live {
                            stats.steady_acks.lock().expect("stats lock").push(micros);
                        }
                        if live && micros > 50_000 {
                            let second = stats.started.get().map_or(0, |s| at.duration_since(*s).as_secs());
                            *stats.slow_by_second.lock().expect("stats lock").entry(second).or_default() += 1;
                        }
                        sent.pop_front();
                    }
                    drop_acked(agent, ack.seq);
                }
            }
            _ = tokio::time::sleep(wait) => {
                if !stop.load(Ordering::Relaxed) {
                    agent.collect(tiers, next_tick, true);
                }
                next_tick += 10_000;
            }
        }
    }
}

fn drop_acked(agent: &mut Agent, acked: u64) {
    while agent.spool.front().is_some_and(|b| b.0 <= acked) {
        let (_, _, samples, _) = agent.spool.pop_front().expect("checked");
        agent.acked_samples += samples as u64;
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0
}

fn rss_mib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Per task, its polls over 25 ms, from the poll histogram's buckets: `task: n (≤ max s)`.
fn long_polls(buckets: &[(String, f64)]) -> Vec<String> {
    let mut by_task: std::collections::BTreeMap<&str, Vec<(f64, f64)>> = Default::default();
    for (name, count) in buckets {
        let label = |key: &str| {
            let from = name.find(&format!("{key}=\""))? + key.len() + 2;
            Some(&name[from..from + name[from..].find('"')?])
        };
        let (Some(task), Some(le)) = (label("task"), label("le")) else {
            continue;
        };
        let le = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().unwrap_or(f64::NAN)
        };
        by_task.entry(task).or_default().push((le, *count));
    }
    let mut long: Vec<(f64, String)> = by_task
        .into_iter()
        .filter_map(|(task, mut buckets)| {
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            let total = buckets.last()?.1;
            let under = buckets.iter().find(|b| b.0 >= 0.025)?.1;
            let max = buckets.iter().find(|b| b.1 >= total)?.0;
            (total > under).then(|| {
                (
                    total - under,
                    format!("{task}: {} (≤ {max} s)", total - under),
                )
            })
        })
        .collect();
    long.sort_by(|a, b| b.0.total_cmp(&a.0));
    long.into_iter().map(|l| l.1).collect()
}

/// `name{labels} value` lines of the collector's `/metrics` starting with `prefix`.
async fn metrics(
    client: &reqwest::Client,
    base: &str,
    prefix: &str,
) -> anyhow::Result<Vec<(String, f64)>> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect())
}

/// The upper bound of the histogram bucket holding quantile `q`.
fn histogram_quantile(buckets: &[(String, f64)], q: f64) -> Option<f64> {
    let mut bounds: Vec<(f64, f64)> = buckets
        .iter()
        .filter_map(|(name, count)| {
            let le = name.split("le=\"").nth(1)?.split('"').next()?;
            Some((
                if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                },
                *count,
            ))
        })
        .collect();
    bounds.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = bounds.last()?.1;
    bounds
        .iter()
        .find(|(_, c)| *c >= q * total)
        .map(|(le, _)| *le)
}

/// One line per stage of the collector's `hcmon_collector_batch_stage_seconds` for batches of
/// `batch` (live, backfill): count, mean, the bucket bound holding p99, and the share of batches
/// that spent over 50 ms (the live ack target) in that stage alone.
fn stage_lines(histogram: &[(String, f64)], batch: &str) -> Vec<String> {
    let of = |stage: &str, suffix: &str| -> Vec<(String, f64)> {
        let labels = [format!("stage=\"{stage}\""), format!("batch=\"{batch}\"")];
        histogram
            .iter()
            .filter(|(name, _)| name.contains(suffix) && labels.iter().all(|l| name.contains(l)))
            .cloned()
            .collect()
    };
    [
        "lane",
        "node_lock",
        "validate",
        "queue",
        "resolve",
        "append",
        "observe",
        "resume",
        "sync",
    ]
    .iter()
    .filter_map(|stage| {
        let count = of(stage, "_count").first()?.1;
        if count == 0.0 {
            return None;
        }
        let sum = of(stage, "_sum").first()?.1;
        let buckets = of(stage, "_bucket");
        let under_50ms = buckets
            .iter()
            .find(|(name, _)| name.contains("le=\"0.05\""))
            .map_or(0.0, |b| b.1);
        Some(format!(
            "  {batch} {stage}: {count:.0} batches, mean {:.2} ms, p99 ≤ {} s, over 50 ms {:.2}%",
            sum / count * 1000.0,
            histogram_quantile(&buckets, 0.99).map_or("?".to_owned(), |v| v.to_string()),
            (count - under_50ms) / count * 100.0
        ))
    })
    .collect()
}

const CONFIG: &str = r#"
[limits]
max_series = 2000000
"#;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let tiers = Arc::new(real_tiers().await?);
    let per_agent: Vec<usize> = tiers.iter().map(|t| t.series.len()).collect();
    println!(
        "fleet: {} live agents + {} back-filling an hour; per agent the real agent's series here: {} basic (10 s), {} detailed (60 s), {} extended (5 min); shipping {}",
        args.agents,
        args.backfill,
        per_agent[0],
        per_agent[1],
        per_agent[2],
        match args.no_spread {
            true => "at each grid point (--no-spread)",
            false => "spread by the agent's per-node delay",
        }
    );
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("collector.toml");
    std::fs::write(&config, CONFIG)?;
    let data = dir.path().join("data");
    let ports = (free_port(), free_port());
    let extra = ["--config".to_owned(), config.display().to_string()];
    let binary = bin_path_in("hcmon-collector");
    let mut collector =
        Collector::start_binary_on(&binary, &data, ports, &extra).context("start the collector")?;
    let base = format!("http://{}", collector.http);
    let client = collector.client()?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss = rss_mib(collector.process.pid(), "VmRSS:");

    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(Stats::default());
    let _ = stats.started.set(Instant::now());
    let url = collector.grpc_url();
    let mut tasks = Vec::new();
    let grid = now_ms() / 10_000 * 10_000;
    for a in 0..args.agents + args.backfill {
        let live = a < args.agents;
        let node = if live {
            format!("fleet-{a}")
        } else {
            format!("backfill-{a}")
        };
        let mut agent = Agent::new(node, a as u64 * 2 + 1, !args.no_spread);
        if !live {
            // An hour of spool, as after an hour's outage.
            for t in (grid - 3_600_000..grid).step_by(10_000) {
                agent.collect(&tiers, t, false);
            }
        }
        tasks.push(tokio::spawn(run_agent(
            url.clone(),
            tiers.clone(),
            agent,
            stop.clone(),
            stats.clone(),
        )));
        // Agents start over two seconds, as a fleet does after a collector upgrade.
        if a % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let started = Instant::now();
    let _ = stats
        .steady_from
        .set(started + Duration::from_secs(60).min(Duration::from_secs(args.minutes * 30)));
    let load = Duration::from_secs(args.minutes * 60);
    let mut peak_rss = 0.0f64;
    // Both processes share this machine's cores: their use says whether a slow ack waited for
    // a core rather than for the collector's work.
    let cpu = |pid| process_cpu_seconds(pid);
    let cpu_from = (cpu(collector.process.pid()), cpu(std::process::id()));
    while started.elapsed() < load {
        tokio::time::sleep(Duration::from_secs(1)).await;
        peak_rss = peak_rss.max(rss_mib(collector.process.pid(), "VmRSS:"));
    }
    let seconds = started.elapsed().as_secs_f64();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (collector_cpu, bench_cpu) = (
        (cpu(collector.process.pid()) - cpu_from.0) / seconds,
        (cpu(std::process::id()) - cpu_from.1) / seconds,
    );
    let connected = metrics(&client, &base, "hcmon_collector_connected_agents").await?;
    let delay = metrics(
        &client,
        &base,
        "hcmon_collector_alert_evaluation_delay_seconds_bucket",
    )
    .await?;
    let anomaly = metrics(&client, &base, "hcmon_collector_anomaly_").await?;
    let state = metrics(&client, &base, "hcmon_collector_state_bytes").await?;
    let storage = metrics(&client, &base, "hcmon_collector_storage_memory_bytes").await?;
    let series = metrics(&client, &base, "hcmon_collector_series ").await?;
    let alerts = metrics(&client, &base, "hcmon_collector_alerts{").await?;
    let stages = metrics(&client, &base, "hcmon_collector_batch_stage_seconds").await?;
    let written = metrics(&client, &base, "hcmon_collector_batch_write_seconds_bucket").await?;
    let lag = metrics(&client, &base, "hcmon_collector_runtime_lag_seconds_bucket").await?;
    let polls = metrics(&client, &base, "hcmon_collector_task_poll_seconds_bucket").await?;
    let mut checkpoints = metrics(&client, &base, "hcmon_collector_checkpoint_").await?;
    checkpoints.retain(|(name, _)| !name.contains("_bucket"));

    let mut live = std::mem::take(&mut *stats.live_acks.lock().expect("stats lock"));
    live.sort_unstable();
    let mut steady = stats.steady_acks.lock().expect("stats lock").clone();
    steady.sort_unstable();
    let mut backfill = stats.backfill_acks.lock().expect("stats lock").clone();
    backfill.sort_unstable();
    let mut defining = stats.defining_acks.lock().expect("stats lock").clone();
    defining.sort_unstable();
    let mut catching_up = stats.catching_up_acks.lock().expect("stats lock").clone();
    catching_up.sort_unstable();
    let slow = stats.slow_by_second.lock().expect("stats lock").clone();
    println!(
        "live agents' ack latency over {} min: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} batches)",
        args.minutes,
        percentile(&live, 0.5),
        percentile(&live, 0.99),
        percentile(&live, 1.0),
        live.len()
    );
    println!(
        "  after the first minute (every series created): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} batches)",
        percentile(&steady, 0.5),
        percentile(&steady, 0.99),
        percentile(&steady, 1.0),
        steady.len()
    );
    println!(
        "  batches creating their series (a tier's first on a new stream): p50 {:.1} ms, p99 {:.1} ms ({} batches)",
        percentile(&defining, 0.5),
        percentile(&defining, 0.99),
        defining.len()
    );
    println!(
        "CPU under the load, in cores of the machine's {cores}: collector {collector_cpu:.2}, this benchmark's agents {bench_cpu:.2}"
    );
    let mut worst: Vec<(u64, u32)> = slow.into_iter().collect();
    worst.sort_by_key(|&(second, count)| (std::cmp::Reverse(count), second));
    println!(
        "  live acks over 50 ms by the second they were sent in (from the agents' start), most first: {}",
        worst
            .iter()
            .take(15)
            .map(|(second, count)| format!("{second} s: {count}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "back-filling agents' fresh batches, queued behind their back-fill on their stream: p50 {:.1} ms, p99 {:.1} ms ({} batches)",
        percentile(&catching_up, 0.5),
        percentile(&catching_up, 0.99),
        catching_up.len()
    );
    println!(
        "back-filling agents' ack latency: p50 {:.1} ms, p99 {:.1} ms ({} batches)",
        percentile(&backfill, 0.5),
        percentile(&backfill, 0.99),
        backfill.len()
    );
    let quantile = |q| histogram_quantile(&delay, q).map_or("?".to_owned(), |v| format!("≤ {v} s"));
    println!(
        "alert evaluation delay (hcmon_collector_alert_evaluation_delay_seconds): p50 {}, p99 {}",
        quantile(0.5),
        quantile(0.99)
    );
    println!(
        "batch received to durable in the collector, live and back-fill (hcmon_collector_batch_write_seconds): p50 ≤ {} s, p99 ≤ {} s",
        histogram_quantile(&written, 0.5).map_or("?".to_owned(), |v| v.to_string()),
        histogram_quantile(&written, 0.99).map_or("?".to_owned(), |v| v.to_string()),
    );
    let count = lag.last().map_or(0.0, |b| b.1);
    let over_50ms = count
        - lag
            .iter()
            .find(|(name, _)| name.contains("le=\"0.05\""))
            .map_or(0.0, |b| b.1);
    println!(
        "runtime lag, a ready task's wait for a runtime thread (hcmon_collector_runtime_lag_seconds): p50 ≤ {} s, p99 ≤ {} s, over 50 ms {over_50ms:.0} of {count:.0} probes",
        histogram_quantile(&lag, 0.5).map_or("?".to_owned(), |v| v.to_string()),
        histogram_quantile(&lag, 0.99).map_or("?".to_owned(), |v| v.to_string()),
    );
    let long_polls = long_polls(&polls);
    println!(
        "tasks' polls over 25 ms (hcmon_collector_task_poll_seconds), most first: {}",
        if long_polls.is_empty() {
            "none".to_owned()
        } else {
            long_polls.join(", ")
        }
    );
    println!("where a batch's time goes in the collector (hcmon_collector_batch_stage_seconds):");
    for line in stage_lines(&stages, "live")
        .into_iter()
        .chain(stage_lines(&stages, "backfill"))
    {
        println!("{line}");
    }
    let agents = (args.agents + args.backfill) as f64;
    println!(
        "collector memory: idle {idle_rss:.0} MiB, peak {peak_rss:.0} MiB under the fleet = {:.0} KiB per agent; connected agents {:?}; series {:?}",
        (peak_rss - idle_rss) * 1024.0 / agents,
        connected.first().map(|c| c.1),
        series.first().map(|c| c.1),
    );
    for (name, value) in state.iter().chain(&storage) {
        println!(
            "  {name} = {:.1} MiB ({:.1} KiB per agent)",
            value / 1048576.0,
            value / 1024.0 / agents
        );
    }
    for (name, value) in anomaly.iter().chain(&alerts).chain(&checkpoints) {
        println!("  {name} = {value}");
    }

    // kill -9 under load, restart on the same ports, let the agents resume.
    collector.process.kill9();
    let killed = Instant::now();
    collector = Collector::start_binary_on(&binary, &data, ports, &extra)
        .context("restart the collector")?;
    println!(
        "kill -9 under load; restarted and ready in {:.1} s",
        killed.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(30)).await;
    stop.store(true, Ordering::Relaxed);
    let mut acked = 0u64;
    let mut per_node = Vec::new();
    for task in tasks {
        let agent = tokio::time::timeout(Duration::from_secs(300), task)
            .await
            .context("an agent did not drain its spool within 5 minutes")??;
        acked += agent.acked_samples;
        per_node.push((agent.node, agent.acked_samples));
    }
    // Every acked sample stored: per node, the samples exported (each series' samples, one per
    // timestamp) are at least those acked.
    let mut stored: std::collections::HashMap<String, f64> = std::collections::HashMap::new();
    for line in collector.export("{node=~\"fleet-.*|backfill-.*\"}").await? {
        let node = line["metric"]["node"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let samples = line["values"].as_array().map_or(0, Vec::len);
        *stored.entry(node).or_default() += samples as f64;
    }
    let mut wrong = 0;
    for (node, samples) in &per_node {
        // The collector adds its own series per node (up, quality scores): at least the acked.
        let have = stored.get(node).copied().unwrap_or(0.0) as u64;
        if have < *samples {
            wrong += 1;
            if wrong <= 5 {
                println!("  {node}: {samples} acked, {have} stored");
            }
        }
    }
    println!(
        "after kill -9: {acked} acked samples from {} agents, {} agents missing samples; reconnects {}",
        per_node.len(),
        wrong,
        stats.reconnects.load(Ordering::Relaxed)
    );
    anyhow::ensure!(wrong == 0, "acked samples missing after kill -9");
    Ok(())
}

//! Alert evaluation latency under ingest load: how long from sending a sample that crosses a
//! threshold (a rule without a pending duration) until `/api/v1/alerts` lists the alert as
//! firing. Background agents stream batches at full speed meanwhile, so the figure includes
//! evaluation keeping up with ingest. Baseline in the same run: the same probes with no load.
//!
//! `just bench-alerts` (release build). Prints p50/p99/max per phase.
#![allow(clippy::print_stdout)]

use anyhow::Context;
use clap::Parser;
use hcmon_tests::load::{AgentShape, Progress, run_agent};
use hcmon_tests::node::ScriptedNode;
use hcmon_tests::{Collector, bin_path_in, now_s};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[derive(Debug, Parser)]
struct Args {
    /// Threshold crossings measured per phase.
    #[arg(long, default_value_t = 200)]
    probes: usize,
    /// Background agents streaming batches during the loaded phase.
    #[arg(long, default_value_t = 16)]
    agents: usize,
}

const CONFIG: &str = r#"
[analytics]
enabled = false

[alerting]
default_rules = false
group_window = "1s"

[alerting.missing_data]
agents = false

[[alerting.rules]]
name = "DiskFull"
selector = "bench_disk_used_ratio"
direction = "above"
critical = 0.9
"#;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn firing(client: &reqwest::Client, base: &str, disk: &str) -> anyhow::Result<bool> {
    let body: serde_json::Value = client
        .get(format!("{base}/api/v1/alerts?state=firing"))
        .send()
        .await?
        .json()
        .await?;
    Ok(body["data"]["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|a| a["labels"]["disk"] == disk))
}

/// Sends `probes` crossings, each on its own series, and times each until the API shows it.
async fn measure(
    node: &mut ScriptedNode,
    client: &reqwest::Client,
    base: &str,
    phase: &str,
    probes: usize,
) -> anyhow::Result<Vec<f64>> {
    let mut latencies = Vec::with_capacity(probes);
    for i in 0..probes {
        let disk = format!("{phase}{i}");
        let now_ms = (now_s() * 1000.0) as i64;
        let started = Instant::now();
        node.send(
            now_ms,
            &[("bench_disk_used_ratio", &[("disk", &disk)], 0.95)],
        )
        .await?;
        while !firing(client, base, &disk).await? {
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(30),
                "{disk} never fired"
            );
            tokio::time::sleep(Duration::from_micros(500)).await;
        }
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    Ok(latencies)
}

/// Samples the collector has stored so far, from its own counter.
async fn ingested(client: &reqwest::Client, base: &str) -> anyhow::Result<f64> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    text.lines()
        .find_map(|l| l.strip_prefix("hcmon_collector_ingested_samples_total "))
        .and_then(|v| v.trim().parse().ok())
        .context("no hcmon_collector_ingested_samples_total in /metrics")
}

fn report(phase: &str, latencies: &[f64]) {
    println!(
        "{phase:<34} p50 {:>7.2} ms   p99 {:>7.2} ms   max {:>7.2} ms",
        percentile(latencies, 0.5),
        percentile(latencies, 0.99),
        latencies.last().copied().unwrap_or(0.0)
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("collector.toml");
    std::fs::write(&config, CONFIG)?;
    let collector = Collector::start_binary_with(
        &bin_path_in("hcmon-collector"),
        &dir.path().join("data"),
        &["--config".to_owned(), config.display().to_string()],
    )
    .context("start the collector")?;
    let base = format!("http://{}", collector.http);
    let client = collector.client()?;
    let mut node = ScriptedNode::connect(&collector.grpc_url(), "probe").await?;

    println!(
        "alert latency: sample sent → firing in /api/v1/alerts ({} probes per phase)",
        args.probes
    );
    let idle = measure(&mut node, &client, &base, "idle", args.probes).await?;
    report("no other load (baseline)", &idle);

    let progress = Arc::new(Progress::default());
    let start_ms = (now_s() * 1000.0) as i64 - 6 * 3600 * 1000;
    let load: Vec<_> = (0..args.agents)
        .map(|a| {
            let shape = AgentShape {
                node: format!("load-{a}"),
                series: 10,
                points_per_batch: 500,
                batches: 1_000_000,
                start_ms,
                interval_ms: 10,
            };
            tokio::spawn(run_agent(collector.grpc_url(), shape, 4, progress.clone()))
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = ingested(&client, &base).await?;
    let started = Instant::now();
    let loaded = measure(&mut node, &client, &base, "loaded", args.probes).await?;
    let rate = (ingested(&client, &base).await? - before) / started.elapsed().as_secs_f64();
    anyhow::ensure!(
        progress.acked_batches.load(Ordering::Relaxed) > 0,
        "the background agents sent nothing"
    );
    report(&format!("with {} agents streaming", args.agents), &loaded);
    println!(
        "background ingest during the loaded phase: {rate:.0} samples/s; p99 ratio loaded/idle {:.2}",
        percentile(&loaded, 0.99) / percentile(&idle, 0.99)
    );
    for task in load {
        task.abort();
    }
    Ok(())
}

//! `hcmon-bench-agent`: the agent's footprint beside Debian's `prometheus-node-exporter`, in the
//! same run on the same machine. The agent runs at its default tiers (basic 10 s, detailed 60 s,
//! extended 5 min) and streams to a local collector; node_exporter is scraped at the basic
//! interval. Reports each one's CPU seconds and share of one core over the run, current and peak
//! RSS, and the agent/node_exporter ratios.
//!
//! Run by `just bench-agent` (release build). The default run (330 s) covers one extended
//! collection.
// A benchmark's report goes to stdout.
#![allow(clippy::print_stdout)]

use anyhow::{Context, bail};
use hcmon_tests::bench::clock_ticks;
use hcmon_tests::{Agent, Collector, bin_path_in};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Args {
    seconds: u64,
    scrape: Duration,
    work: PathBuf,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        seconds: 330,
        scrape: Duration::from_secs(10),
        work: std::env::temp_dir().join("hcmon-bench-agent"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--seconds" => args.seconds = value()?.parse()?,
            "--work" => args.work = value()?.into(),
            "--help" | "-h" => {
                println!("usage: hcmon-bench-agent [--seconds 330] [--work DIR]");
                std::process::exit(0);
            }
            other => bail!("unknown flag {other:?} (see --help)"),
        }
    }
    Ok(args)
}

/// CPU seconds, current RSS and peak RSS (MiB) of a process, from /proc.
fn usage(pid: u32) -> anyhow::Result<(f64, f64, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .context("malformed /proc stat")?;
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Ok((
        ticks / clock_ticks(),
        kib("VmRSS:") / 1024.0,
        kib("VmHWM:") / 1024.0,
    ))
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let _ = std::fs::remove_dir_all(&args.work);
    std::fs::create_dir_all(&args.work)?;

    let collector = Collector::start_binary(
        &bin_path_in("hcmon-collector"),
        &args.work.join("collector"),
    )?;
    let agent = Agent::start_binary(
        &bin_path_in("hcmon-agent"),
        &collector.grpc_url(),
        "bench-node",
        &args.work.join("spool"),
    );
    let exporter_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let exporter = KillOnDrop(
        Command::new("prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{exporter_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context(
                "cannot start prometheus-node-exporter (apt install prometheus-node-exporter)",
            )?,
    );
    let agent_pid = agent.process.pid();
    let exporter_pid = exporter.0.id();
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{exporter_port}/metrics");

    // Both start-ups (sysinfo's first refresh, node_exporter's collector setup) are excluded.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (agent_cpu0, _, _) = usage(agent_pid)?;
    let (exporter_cpu0, _, _) = usage(exporter_pid)?;
    let started = Instant::now();
    let mut scrapes = 0u64;
    let mut exporter_series = 0usize;
    let mut next = Instant::now();
    while started.elapsed() < Duration::from_secs(args.seconds) {
        let body = client.get(&url).send().await?.text().await?;
        exporter_series = body
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .count();
        scrapes += 1;
        next += args.scrape;
        tokio::time::sleep_until(next.into()).await;
    }
    let wall = started.elapsed().as_secs_f64();
    let (agent_cpu1, agent_rss, agent_peak) = usage(agent_pid)?;
    let (exporter_cpu1, exporter_rss, exporter_peak) = usage(exporter_pid)?;
    let agent_cpu = agent_cpu1 - agent_cpu0;
    let exporter_cpu = exporter_cpu1 - exporter_cpu0;

    let samples: serde_json::Value = collector
        .get_json(
            "/api/v1/query",
            &[(
                "query",
                "hcmon_agent_samples_total{node=\"bench-node\"}".to_owned(),
            )],
        )
        .await?;
    let agent_samples = samples["data"]["result"][0]["value"][1]
        .as_str()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    let agent_series: serde_json::Value = collector
        .get_json(
            "/api/v1/series",
            &[("match[]", "{node=\"bench-node\"}".to_owned())],
        )
        .await?;
    let agent_series = agent_series["data"].as_array().map_or(0, Vec::len);

    println!(
        "run: {wall:.0} s; agent at default tiers (10 s / 60 s / 5 min) streaming to a local collector; node_exporter scraped every {} s ({scrapes} scrapes)",
        args.scrape.as_secs()
    );
    println!();
    println!(
        "{:<28} {:>8} {:>12} {:>10} {:>10} {:>8}",
        "process", "cpu s", "% of a core", "RSS MiB", "peak MiB", "series"
    );
    let row = |name: &str, cpu: f64, rss: f64, peak: f64, series: usize| {
        println!(
            "{name:<28} {cpu:>8.2} {:>12.3} {rss:>10.1} {peak:>10.1} {series:>8}",
            100.0 * cpu / wall
        );
    };
    row(
        "hcmon-agent",
        agent_cpu,
        agent_rss,
        agent_peak,
        agent_series,
    );
    row(
        "prometheus-node-exporter",
        exporter_cpu,
        exporter_rss,
        exporter_peak,
        exporter_series,
    );
    println!();
    println!(
        "agent / node_exporter: CPU {:.2}x, RSS {:.2}x, peak RSS {:.2}x; agent produced {agent_samples:.0} samples",
        agent_cpu / exporter_cpu.max(1e-9),
        agent_rss / exporter_rss.max(1e-9),
        agent_peak / exporter_peak.max(1e-9)
    );
    drop(agent);
    drop(collector);
    Ok(())
}

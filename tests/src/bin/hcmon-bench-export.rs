//! `hcmon-bench-export`: does a large export stream in constant memory?
//!
//! A release collector gets `--series` series (1,000) of `--samples` samples each (10,000,
//! 10 s apart: 10 M in all) by remote write. Then `/api/v1/export` runs as CSV and as Excel,
//! first for a tenth of the series (1 M samples), then for all of them (10 M), the body read and
//! counted, not kept. While each runs, the collector's resident memory (`VmRSS` in
//! /proc/<pid>/status) is sampled every 20 ms; the report gives samples per second, bytes, and
//! the peak growth over the resident memory before the export. Constant memory shows as the
//! same growth for 1 M and 10 M samples.
//!
//! Run by `deploy/dev.sh bench-export` (release build).
// A benchmark's report goes to stdout.
#![allow(clippy::print_stdout)]

use anyhow::{Context, bail};
use hcmon_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
use hcmon_tests::bench::start_collector;
use prost::Message;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const STEP_MS: i64 = 10_000;
/// Samples of all series in one remote-write request: the collector's default batch limit.
const REQUEST_SAMPLES: usize = 100_000;

struct Args {
    series: usize,
    samples: usize,
    work: PathBuf,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        series: 1_000,
        samples: 10_000,
        work: std::env::temp_dir().join("hcmon-bench-export"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--series" => args.series = value()?.parse().context("--series")?,
            "--samples" => args.samples = value()?.parse().context("--samples")?,
            "--work" => args.work = value()?.into(),
            "--help" => {
                println!(
                    "hcmon-bench-export [--series N (1000)] [--samples N per series (10000)] \
                     [--work DIR]\nExports a tenth of the series, then all, as CSV and Excel, \
                     with the collector's memory growth."
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}"),
        }
    }
    anyhow::ensure!(args.series >= 10, "--series must be at least 10");
    Ok(args)
}

/// The value of sample `i` of series `s`: a gauge-like walk with a few decimals.
fn value(s: usize, i: usize) -> f64 {
    ((s * 7919 + i * 104_729) % 100_000) as f64 / 100.0
}

/// Remote-write bodies (snappy protobuf) holding every sample, oldest first, each request a
/// time slice of every series.
fn bodies(args: &Args, t0: i64) -> Vec<Vec<u8>> {
    let per_request = (REQUEST_SAMPLES / args.series).max(1);
    let mut out = Vec::new();
    let mut from = 0;
    while from < args.samples {
        let to = (from + per_request).min(args.samples);
        let timeseries = (0..args.series)
            .map(|s| TimeSeries {
                labels: vec![
                    label("__name__", "bench_export_bytes"),
                    label("node", "bench"),
                    // The first tenth of the series is exported on its own too.
                    label(
                        "part",
                        if s < args.series / 10 {
                            "tenth"
                        } else {
                            "rest"
                        },
                    ),
                    label("series", &format!("s{s:05}")),
                ],
                samples: (from..to)
                    .map(|i| Sample {
                        value: value(s, i),
                        timestamp: t0 + i as i64 * STEP_MS,
                    })
                    .collect(),
            })
            .collect();
        let raw = WriteRequest { timeseries }.encode_to_vec();
        out.push(
            snap::raw::Encoder::new()
                .compress_vec(&raw)
                .expect("snappy"),
        );
        from = to;
    }
    out
}

fn label(name: &str, value: &str) -> Label {
    Label {
        name: name.to_owned(),
        value: value.to_owned(),
    }
}

/// `VmRSS` of process `pid`, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse().ok())
        .unwrap_or(0)
}

/// One export's figures.
struct Run {
    bytes: u64,
    seconds: f64,
    rss_before_mib: f64,
    peak_growth_mib: f64,
}

/// Runs one export, reading and counting its body while sampling the collector's memory.
async fn export(
    client: &reqwest::Client,
    base: &str,
    pid: u32,
    selector: &str,
    format: &str,
) -> anyhow::Result<Run> {
    let before = rss_kib(pid);
    let running = Arc::new(AtomicBool::new(true));
    let sampler = {
        let running = running.clone();
        std::thread::spawn(move || {
            let mut peak = 0;
            while running.load(Ordering::Relaxed) {
                peak = peak.max(rss_kib(pid));
                std::thread::sleep(Duration::from_millis(20));
            }
            peak.max(rss_kib(pid))
        })
    };
    let began = Instant::now();
    let mut response = client
        .get(format!("{base}/api/v1/export"))
        .query(&[("match[]", selector), ("format", format)])
        .send()
        .await?;
    if !response.status().is_success() {
        bail!("{format} export: {}", response.status());
    }
    let mut bytes = 0u64;
    while let Some(chunk) = response.chunk().await? {
        bytes += chunk.len() as u64;
    }
    let seconds = began.elapsed().as_secs_f64();
    running.store(false, Ordering::Relaxed);
    let peak = sampler.join().expect("sampler");
    Ok(Run {
        bytes,
        seconds,
        rss_before_mib: before as f64 / 1024.0,
        peak_growth_mib: peak.saturating_sub(before) as f64 / 1024.0,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let _ = std::fs::remove_dir_all(&args.work);
    std::fs::create_dir_all(&args.work)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
    let span = args.samples as i64 * STEP_MS;
    let t0 = now - span - 60_000;
    let t0 = t0 - t0 % STEP_MS;
    let config = args.work.join("collector.toml");
    let max_age_days = span / 86_400_000 + 2;
    std::fs::write(
        &config,
        // Loading is not what is measured: no write rate limit.
        format!(
            "[limits]\nmax_sample_age = \"{max_age_days}days\"\n\n\
             [auth]\nwrite_samples_per_second = 0\n"
        ),
    )?;
    let collector = start_collector(&args.work, "hcmon", &config)?;
    let base = format!("http://127.0.0.1:{}", collector.http);
    let client = hcmon_tests::client_with(&collector.token)?;
    let pid = collector.server.child.id();

    let total = args.series * args.samples;
    println!(
        "hcmon-bench-export: {} series × {} samples = {total} samples",
        args.series, args.samples
    );
    let began = Instant::now();
    for body in bodies(&args, t0) {
        let answer = client
            .post(format!("{base}/api/v1/write"))
            .header("Content-Encoding", "snappy")
            .header("Content-Type", "application/x-protobuf")
            .body(body)
            .send()
            .await?;
        if !answer.status().is_success() {
            bail!("remote write: {} {}", answer.status(), answer.text().await?);
        }
    }
    println!(
        "loaded in {:.1} s; collector RSS {:.0} MiB",
        began.elapsed().as_secs_f64(),
        rss_kib(pid) as f64 / 1024.0
    );

    let tenth = args.series / 10;
    let (few, all) = ("bench_export_bytes{part=\"tenth\"}", "bench_export_bytes");
    println!(
        "{:<7} {:>11} {:>13} {:>8} {:>13} {:>12} {:>15}",
        "format", "samples", "bytes", "seconds", "samples/s", "RSS before", "peak growth"
    );
    for (selector, samples) in [(few, tenth * args.samples), (all, total)] {
        for format in ["csv", "xlsx"] {
            let run = export(&client, &base, pid, selector, format).await?;
            println!(
                "{format:<7} {samples:>11} {:>13} {:>8.1} {:>13.0} {:>8.0} MiB {:>11.1} MiB",
                run.bytes,
                run.seconds,
                samples as f64 / run.seconds,
                run.rss_before_mib,
                run.peak_growth_mib
            );
        }
    }
    collector.server.stop();
    let _ = std::fs::remove_dir_all(&args.work);
    Ok(())
}

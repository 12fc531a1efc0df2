//! `hcmon-bench-report`: how long does a monthly report over 50 nodes and 100 SLOs take?
//!
//! Builds a store in a temporary folder (RocksDB, as the collector's) holding `--nodes` nodes
//! (50) over `--days` days (30) every `--interval` seconds (10), as agents would have sent them: each
//! node's `up` and, on every other node, an HTTP probe's `http_check_up` and
//! `http_check_duration_seconds`, with scripted outages and slow spells so some SLOs breach.
//! The default SLOs then number a node availability per node, an availability and a latency
//! per probe, and the two incident SLOs: 102 for 50 nodes. Then it times, in this process and
//! on the collector's own code, generating the monthly report over the month just stored and
//! rendering it as PDF and as HTML, each `--runs` times (3), and prints the figures (median).
//! Target: generating plus rendering the PDF under 3 s.
//!
//! Run by `deploy/dev.sh bench-report` (release build).
// A benchmark's report goes to stdout.
#![allow(clippy::print_stdout)]

use anyhow::{Context, bail};
use hcmon_collector::analytics::slo::Window;
use hcmon_collector::catalog::{SeriesCaps, SeriesCatalog, SeriesDefinition};
use hcmon_collector::report::handle::ReportHandle;
use hcmon_collector::report::model::ReportKind;
use hcmon_collector::report::render::{ReportFormat, render};
use hcmon_collector::report::store::{ReportStore, Retention};
use hcmon_collector::slo::config::SloConfig;
use hcmon_collector::slo::objectives::Objectives;
use hcmon_collector::storage::{MetricKind, RocksKv, Sample, SeriesId, StorageConfig, Tsdb};
use hcmon_common::Labels;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const DAY_MS: i64 = 86_400_000;

struct Args {
    nodes: usize,
    days: i64,
    interval_ms: i64,
    runs: usize,
    work: PathBuf,
    /// Where to keep the last PDF, to look at.
    output: Option<PathBuf>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        nodes: 50,
        days: 30,
        interval_ms: 10_000,
        runs: 3,
        work: std::env::temp_dir().join("hcmon-bench-report"),
        output: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--nodes" => args.nodes = value()?.parse().context("--nodes")?,
            "--days" => args.days = value()?.parse().context("--days")?,
            "--interval" => {
                let seconds: i64 = value()?.parse().context("--interval (seconds)")?;
                args.interval_ms = seconds.saturating_mul(1000);
            }
            "--runs" => args.runs = value()?.parse().context("--runs")?,
            "--work" => args.work = value()?.into(),
            "--output" => args.output = Some(value()?.into()),
            "--help" => {
                println!(
                    "hcmon-bench-report [--nodes N (50)] [--days N (30)] [--interval SECONDS (10)] \
                     [--runs N (3)] [--work DIR] [--output FILE.pdf]\nTimes a monthly report (generate, PDF, HTML) \
                     over a store of simulated nodes."
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}"),
        }
    }
    anyhow::ensure!(args.nodes >= 1, "--nodes must be at least 1");
    anyhow::ensure!((1..=400).contains(&args.days), "--days must be 1 to 400");
    anyhow::ensure!(args.interval_ms >= 1000, "--interval must be at least 1s");
    anyhow::ensure!(args.runs >= 1, "--runs must be at least 1");
    Ok(args)
}

/// One simulated series: its id and how its value at a time is made.
struct Simulated {
    id: SeriesId,
    node: usize,
    kind: Signal,
}

#[derive(Clone, Copy)]
enum Signal {
    Up,
    ProbeUp,
    ProbeSeconds,
}

/// Whether `node` is down at `t_ms` (scripted: a few nodes have an outage now and then).
fn down(node: usize, t_ms: i64) -> bool {
    let hour = t_ms / 3_600_000;
    // Every seventh node is out for one hour in eight, at hours of its own.
    node.is_multiple_of(7) && (hour + node as i64) % 8 == 0
}

fn value(series: &Simulated, t_ms: i64) -> f64 {
    let down = down(series.node, t_ms);
    match series.kind {
        Signal::Up | Signal::ProbeUp => f64::from(u8::from(!down)),
        Signal::ProbeSeconds => {
            // Slow spells on every fifth probe, a little noise elsewhere.
            let minute = t_ms / 60_000;
            let slow = series.node.is_multiple_of(5) && (minute + series.node as i64) % 90 < 5;
            let base = if slow { 1.8 } else { 0.08 };
            base + ((t_ms / 10_000 + series.node as i64) % 13) as f64 * 0.004
        }
    }
}

fn labels(name: &str, pairs: &[(&str, String)]) -> anyhow::Result<Labels> {
    Ok(Labels::new(
        name,
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())),
    )?)
}

/// Creates the series in `catalog` and writes `days` days of samples ending at `end_ms`.
fn fill(tsdb: &Tsdb, catalog: &SeriesCatalog, args: &Args, end_ms: i64) -> anyhow::Result<usize> {
    let mut definitions = Vec::new();
    let mut signals = Vec::new();
    for node in 0..args.nodes {
        let name = format!("node-{node:02}");
        let instance = format!("10.0.0.{node}:9100");
        let up = labels(
            "up",
            &[
                ("job", "node".into()),
                ("instance", instance),
                ("node", name.clone()),
            ],
        )?;
        definitions.push((up, MetricKind::Gauge));
        signals.push((node, Signal::Up));
        if node.is_multiple_of(2) {
            let probe = format!("web-{node:02}");
            for (metric, signal) in [
                ("http_check_up", Signal::ProbeUp),
                ("http_check_duration_seconds", Signal::ProbeSeconds),
            ] {
                let series = labels(metric, &[("name", probe.clone()), ("node", name.clone())])?;
                definitions.push((series, MetricKind::Gauge));
                signals.push((node, signal));
            }
        }
    }
    let defs: Vec<SeriesDefinition> = definitions
        .into_iter()
        .map(|(labels, kind)| SeriesDefinition {
            labels,
            kind,
            help: String::new(),
        })
        .collect();
    let caps = SeriesCaps {
        per_node: usize::MAX,
        total: usize::MAX,
    };
    let ids = catalog
        .resolve(tsdb, &defs, caps)
        .map_err(|e| anyhow::anyhow!("creating the series: {e}"))?;
    let series: Vec<Simulated> = ids
        .into_iter()
        .zip(signals)
        .map(|(id, (node, kind))| Simulated { id, node, kind })
        .collect();
    let start_ms = end_ms - args.days * DAY_MS;
    let per_day = DAY_MS / args.interval_ms;
    let mut written = 0;
    // A day of every series per append, then a checkpoint: the WAL stays a day long.
    for day in 0..args.days {
        let day_start = start_ms + day * DAY_MS;
        let mut samples = Vec::with_capacity(series.len() * per_day as usize);
        for s in &series {
            for step in 0..per_day {
                let t = day_start + step * args.interval_ms;
                samples.push(Sample {
                    series: s.id,
                    timestamp_ms: t,
                    value: value(s, t),
                });
            }
        }
        written += samples.len();
        tsdb.append(None, &samples)?;
        tsdb.checkpoint(false)?;
    }
    Ok(written)
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    if args.work.exists() {
        std::fs::remove_dir_all(&args.work)
            .with_context(|| format!("cannot clear {}", args.work.display()))?;
    }
    std::fs::create_dir_all(&args.work)?;
    // The month just stored ends at a midnight UTC: today's.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let end_ms = now_ms - now_ms.rem_euclid(DAY_MS);

    let kv = RocksKv::open(&args.work, 256 << 20)?;
    let opened = Tsdb::open(Box::new(kv), StorageConfig::default())?;
    let tsdb = Arc::new(opened.tsdb);
    let catalog = Arc::new(SeriesCatalog::new(opened.series));
    catalog.start_ids_at(tsdb.first_free_series_id());
    let started = Instant::now();
    let samples = fill(&tsdb, &catalog, &args, end_ms)?;
    tsdb.checkpoint(true)?;
    println!(
        "store: {} nodes, {} series, {samples} samples over {} days at {} s, written in {:.1?}",
        args.nodes,
        catalog.len(),
        args.days,
        args.interval_ms / 1000,
        started.elapsed()
    );

    let objectives = Arc::new(
        Objectives::open(
            SloConfig::default(),
            BTreeMap::new(),
            tsdb.clone(),
            catalog.clone(),
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?,
    );
    let slos = objectives.list().len();
    let handle = ReportHandle {
        objectives,
        tsdb: tsdb.clone(),
        catalog: catalog.clone(),
        alerting: None,
        store: ReportStore::new(
            tsdb.clone(),
            Retention {
                daily: 30,
                weekly: 52,
                monthly: 12,
            },
        ),
        forecast_alerts: Vec::new(),
    };
    let window = Window {
        start_ms: end_ms - args.days * DAY_MS,
        end_ms,
    };
    let (mut generating, mut pdfs, mut htmls) = (Vec::new(), Vec::new(), Vec::new());
    let mut sizes = (0, 0);
    let mut breached = 0;
    for _ in 0..args.runs {
        let t = Instant::now();
        let report = handle
            .generate(ReportKind::Monthly, window, now_ms)
            .map_err(|e| anyhow::anyhow!("generating: {e}"))?;
        generating.push(t.elapsed());
        breached = report.summary.breached;
        let t = Instant::now();
        let pdf = render(&report, ReportFormat::Pdf).map_err(|e| anyhow::anyhow!("PDF: {e}"))?;
        pdfs.push(t.elapsed());
        let t = Instant::now();
        let html = render(&report, ReportFormat::Html).map_err(|e| anyhow::anyhow!("HTML: {e}"))?;
        htmls.push(t.elapsed());
        sizes = (pdf.len(), html.len());
        if let Some(path) = &args.output {
            std::fs::write(path, &pdf)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    let (generate, pdf, html) = (median(generating), median(pdfs), median(htmls));
    let total = generate + pdf;
    println!("SLOs: {slos} ({breached} breached in the month)");
    println!(
        "generate monthly report: {generate:.2?} (median of {})",
        args.runs
    );
    println!("render PDF:              {pdf:.2?} ({} KiB)", sizes.0 >> 10);
    println!(
        "render HTML:             {html:.2?} ({} KiB)",
        sizes.1 >> 10
    );
    println!(
        "generate + PDF:          {total:.2?} — target under 3 s: {}",
        if total < Duration::from_secs(3) {
            "met"
        } else {
            "MISSED"
        }
    );
    tsdb.close()?;
    Ok(())
}

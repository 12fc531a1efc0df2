//! `hcmon export`: the collector's `/api/v1/export` to stdout or a file, written as it arrives,
//! so an export of any size passes through in constant memory. A failed download leaves no
//! partial file behind.

use crate::api::Api;
use anyhow::Context;
use hcmon_collector::export::{Format, Layout};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Duration;

/// Series over a range as JSON lines, CSV, JSON or an Excel workbook.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Series selector, e.g. `node_cpu_usage_ratio{node="nas"}`; repeat for more.
    #[arg(long = "match", value_name = "SELECTOR")]
    matches: Vec<String>,
    /// A selector, as `--match` (the older form).
    #[arg(value_name = "SELECTOR")]
    selector: Option<String>,
    /// Start of the range: RFC 3339 or Unix seconds [default: the oldest sample].
    #[arg(long, conflicts_with = "since")]
    start: Option<String>,
    /// End of the range: RFC 3339 or Unix seconds [default: now].
    #[arg(long)]
    end: Option<String>,
    /// Instead of --start: how far back from now, e.g. 1h.
    #[arg(long, value_parser = humantime::parse_duration)]
    since: Option<Duration>,
    /// jsonl (VictoriaMetrics' JSON lines), csv, json or xlsx.
    #[arg(long, default_value = "jsonl", value_parser = format)]
    format: Format,
    /// Aggregate to this step (average, with min and max in long csv and xlsx), read from
    /// rollups where they divide it, e.g. 5m [default: raw samples].
    #[arg(long, value_parser = humantime::parse_duration)]
    step: Option<Duration>,
    /// long (one row per sample, or a sheet per series) or wide (one row per time, a column
    /// per series); wide is for csv and xlsx.
    #[arg(long, default_value = "long", value_parser = layout)]
    layout: Layout,
    /// Write here instead of stdout.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

fn format(text: &str) -> Result<Format, String> {
    Format::from_name(text).ok_or_else(|| {
        let names: Vec<&str> = Format::NAMES.iter().map(|(n, _)| *n).collect();
        format!("one of {}", names.join(", "))
    })
}

fn layout(text: &str) -> Result<Layout, String> {
    Layout::from_name(text).ok_or_else(|| "one of long, wide".to_owned())
}

/// Runs the export; `now` in Unix seconds.
pub async fn run(api: &Api, args: ExportArgs, now: f64) -> anyhow::Result<()> {
    let mut query: Vec<(&str, String)> = args
        .matches
        .into_iter()
        .chain(args.selector)
        .map(|s| ("match[]", s))
        .collect();
    anyhow::ensure!(!query.is_empty(), "give at least one --match SELECTOR");
    if let Some(start) = args.start {
        query.push(("start", start));
    }
    if let Some(since) = args.since {
        query.push(("start", format!("{:.3}", now - since.as_secs_f64())));
    }
    query.push(("end", args.end.unwrap_or_else(|| format!("{now:.3}"))));
    query.push(("format", args.format.name().to_owned()));
    query.push(("layout", args.layout.name().to_owned()));
    if let Some(step) = args.step {
        query.push(("step", format!("{}", step.as_secs_f64())));
    }
    match args.output {
        None => {
            let mut out = BufWriter::new(std::io::stdout());
            api.download("/api/v1/export", &query, &mut out).await?;
            out.flush().context("cannot write to stdout")?;
        }
        Some(path) => {
            let file = std::fs::File::create(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            let mut out = BufWriter::new(file);
            let written = async {
                api.download("/api/v1/export", &query, &mut out).await?;
                out.flush()
                    .with_context(|| format!("cannot write {}", path.display()))
            }
            .await;
            if let Err(error) = written {
                let _ = std::fs::remove_file(&path);
                return Err(error);
            }
            let bytes = std::fs::metadata(&path).map_or(0, |m| m.len());
            eprintln!("wrote {bytes} bytes to {}", path.display());
        }
    }
    Ok(())
}

//! `hcmon report` (one made now over any range) and `hcmon reports list|get` (the stored
//! scheduled ones): downloads written as they arrive; a failed download leaves no partial file.

use crate::api::Api;
use anyhow::Context;
use hcmon_collector::api::reports::StoredReportInfo;
use hcmon_collector::report::render::ReportFormat;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

/// A report over a range, made now.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Start of the range: RFC 3339 or Unix seconds.
    #[arg(long)]
    from: String,
    /// End of the range (exclusive): RFC 3339 or Unix seconds.
    #[arg(long)]
    to: String,
    /// pdf, html, csv or json.
    #[arg(long, default_value = "pdf", value_parser = format)]
    format: ReportFormat,
    /// Write here instead of stdout.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
pub enum ReportsCommand {
    /// The stored scheduled reports: id, period, when made, whether mailed.
    List,
    /// Download a stored report, e.g. `hcmon reports get monthly-2026-11 -o november.pdf`.
    Get {
        /// As `hcmon reports list` shows it: daily-YYYY-MM-DD, weekly-YYYY-MM-DD, monthly-YYYY-MM.
        id: String,
        /// pdf, html, csv or json.
        #[arg(long, default_value = "pdf", value_parser = format)]
        format: ReportFormat,
        /// Write here instead of stdout.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

fn format(text: &str) -> Result<ReportFormat, String> {
    text.parse::<ReportFormat>().map_err(|e| e.to_string())
}

/// `hcmon report`.
pub async fn report(api: &Api, args: ReportArgs) -> anyhow::Result<()> {
    let query = vec![
        ("from", args.from),
        ("to", args.to),
        ("format", args.format.extension().to_owned()),
    ];
    save(api, "/api/v1/report", &query, args.output).await
}

/// `hcmon reports …`.
pub async fn reports(api: &Api, command: ReportsCommand) -> anyhow::Result<()> {
    match command {
        ReportsCommand::List => {
            let reports: Vec<StoredReportInfo> =
                crate::data(&api.get("/api/v1/reports", vec![]).await?)?;
            println!(
                "{:<20} {:<8} {:<36} {:<22} MAILED",
                "ID", "KIND", "PERIOD", "GENERATED"
            );
            for r in reports {
                println!(
                    "{:<20} {:<8} {:<36} {:<22} {}",
                    r.id,
                    r.kind,
                    r.period,
                    time(r.generated_ms),
                    if r.mailed { "yes" } else { "no" }
                );
            }
            Ok(())
        }
        ReportsCommand::Get { id, format, output } => {
            let query = vec![("format", format.extension().to_owned())];
            let path = format!("/api/v1/reports/{id}");
            save(api, &path, &query, output).await
        }
    }
}

fn time(ms: i64) -> String {
    let since = std::time::Duration::from_millis(ms.max(0).unsigned_abs());
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + since).to_string()
}

/// Downloads `path` to `output`, or stdout.
async fn save(
    api: &Api,
    path: &str,
    query: &[(&str, String)],
    output: Option<PathBuf>,
) -> anyhow::Result<()> {
    match output {
        None => {
            let mut out = BufWriter::new(std::io::stdout());
            api.download(path, query, &mut out).await?;
            out.flush().context("cannot write to stdout")?;
        }
        Some(file) => {
            let created = std::fs::File::create(&file)
                .with_context(|| format!("cannot create {}", file.display()))?;
            let mut out = BufWriter::new(created);
            let written = async {
                api.download(path, query, &mut out).await?;
                out.flush()
                    .with_context(|| format!("cannot write {}", file.display()))
            }
            .await;
            if let Err(error) = written {
                let _ = std::fs::remove_file(&file);
                return Err(error);
            }
            let bytes = std::fs::metadata(&file).map_or(0, |m| m.len());
            eprintln!("wrote {bytes} bytes to {}", file.display());
        }
    }
    Ok(())
}

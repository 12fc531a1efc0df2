//! `hcmon slo`: SLOs with their compliance and error budget, the intervals behind the figures,
//! creating and deleting API SLOs, and OpenSLO v1 YAML in and out. Times are RFC 3339 or Unix
//! seconds, as the API takes them.

use crate::{Api, data};
use anyhow::Context;
use clap::Subcommand;
use hcmon_collector::api::slo::{
    Definition, DeletedSlo, ImportedSlos, Outcome, SloFigures, SloIntervals, SloListing,
};
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

#[derive(Debug, Subcommand)]
pub enum SloCommand {
    /// Every SLO: target, compliance and budget left over its current period, status.
    List {
        /// Print the API's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// One SLO's figures over its current period, or over --from..--to.
    Show {
        name: String,
        /// RFC 3339 or Unix seconds [default: the start of the period holding --to].
        #[arg(long)]
        from: Option<String>,
        /// RFC 3339 or Unix seconds [default: now].
        #[arg(long)]
        to: Option<String>,
        /// Print the API's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// The intervals an SLO's figures are the sum of, over --from..--to.
    Intervals {
        name: String,
        /// RFC 3339 or Unix seconds.
        #[arg(long)]
        from: String,
        /// RFC 3339 or Unix seconds.
        #[arg(long)]
        to: String,
        /// As CSV: start_ms,end_ms,outcome,good,total,note.
        #[arg(long)]
        csv: bool,
    },
    /// Create (or replace) an SLO from a JSON definition, e.g.
    /// `{"name": "web", "selector": "{name=\"web\"}", "sli": {"kind": "availability", "source": "probe"}}`.
    Create {
        #[arg(long)]
        file: PathBuf,
    },
    /// Delete an SLO made through the API.
    Delete { name: String },
    /// Create the SLOs of an OpenSLO v1 YAML file.
    Import { file: PathBuf },
    /// Every SLO OpenSLO can express, as OpenSLO v1 YAML.
    Export {
        /// Where to write it [default: stdout].
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

pub async fn run(api: &Api, command: SloCommand) -> anyhow::Result<()> {
    match command {
        SloCommand::List { json } => {
            let body = api.get("/api/v1/slos", vec![]).await?;
            if json {
                println!("{body}");
                return Ok(());
            }
            let all: Vec<SloListing> = data(&body)?;
            print_list(&all);
        }
        SloCommand::Show {
            name,
            from,
            to,
            json,
        } => {
            let mut query = Vec::new();
            query.extend(from.map(|f| ("from", f)));
            query.extend(to.map(|t| ("to", t)));
            let body = api.get(&format!("/api/v1/slos/{name}"), query).await?;
            if json {
                println!("{body}");
                return Ok(());
            }
            let figures: SloFigures = data(&body)?;
            print_figures(&figures);
        }
        SloCommand::Intervals {
            name,
            from,
            to,
            csv,
        } => {
            let query = vec![("from", from), ("to", to)];
            let path = format!("/api/v1/slos/{name}/intervals");
            let shown: SloIntervals = data(&api.get(&path, query).await?)?;
            print_intervals(&shown, csv);
        }
        SloCommand::Create { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let definition: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", file.display()))?;
            let made: Definition = data(&api.post("/api/v1/slos", &definition).await?)?;
            println!("created SLO {} ({})", made.name, made.origin);
        }
        SloCommand::Delete { name } => {
            let path = format!("/api/v1/slos/{name}");
            let deleted: DeletedSlo = data(&api.delete(&path, vec![]).await?)?;
            println!("deleted SLO {}", deleted.name);
        }
        SloCommand::Import { file } => {
            let yaml =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let body = api
                .post_body("/api/v1/slos/openslo", "application/yaml", yaml)
                .await?;
            let imported: ImportedSlos = data(&body)?;
            println!(
                "created {} SLO(s): {}",
                imported.created.len(),
                imported.created.join(", ")
            );
        }
        SloCommand::Export { output } => {
            let yaml = api.get("/api/v1/slos/openslo", vec![]).await?;
            match output {
                Some(path) => std::fs::write(&path, yaml)
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => print!("{yaml}"),
            }
        }
    }
    Ok(())
}

/// A share as a percentage, or `-` without one.
fn percent(share: Option<f64>) -> String {
    share.map_or_else(|| "-".to_owned(), |s| format!("{:.3}%", s * 100.0))
}

/// Unix ms as RFC 3339 (seconds); a time before 1970 shows as 1970.
fn at(ms: i64) -> String {
    let since = Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(UNIX_EPOCH + since).to_string()
}

fn print_list(all: &[SloListing]) {
    println!(
        "{:<40} {:>8} {:>11} {:>11} {:<9} PERIOD",
        "NAME", "TARGET", "COMPLIANCE", "BUDGET LEFT", "STATUS"
    );
    for slo in all {
        let d = &slo.definition;
        let (compliance, left, status) = match &slo.result {
            Some(r) => (
                percent(r.compliance),
                match r.compliance {
                    Some(_) => percent(Some(r.budget.remaining)),
                    None => "-".to_owned(),
                },
                r.status.name().to_owned(),
            ),
            None => ("-".into(), "-".into(), "error".into()),
        };
        println!(
            "{:<40} {:>8} {:>11} {:>11} {:<9} {}",
            d.name,
            percent(Some(d.target)),
            compliance,
            left,
            status,
            d.period
        );
        if let Some(error) = &slo.error {
            println!("  error: {error}");
        }
    }
}

fn print_figures(r: &SloFigures) {
    println!("{}: {}", r.name, r.status.name());
    println!(
        "window      {} .. {} ({})",
        at(r.window.start_ms),
        at(r.window.end_ms),
        r.timezone
    );
    println!("compliance  {}", percent(r.compliance));
    println!("coverage    {}", percent(r.coverage));
    println!(
        "counted     good {} bad {} unknown {} excluded {} ({} covered)",
        r.tally.good, r.tally.bad, r.tally.unknown, r.tally.excluded, r.covered
    );
    println!(
        "budget      {} left (allowed {:.4}, spent {:.4})",
        percent(Some(r.budget.remaining)),
        r.budget.allowed,
        r.budget.spent
    );
    let burn = r
        .burn_rate
        .map_or_else(|| "-".to_owned(), |b| format!("{b:.2}x"));
    let exhaustion = r.time_to_exhaustion_ms.map_or_else(
        || "-".to_owned(),
        |ms| humantime::format_duration(Duration::from_secs(ms.max(0) as u64 / 1000)).to_string(),
    );
    println!("burn rate   {burn}, budget exhausted in {exhaustion}");
    println!("policy      {}", r.policy);
    for breach in &r.breaches {
        println!(
            "breach      {} .. {}",
            at(breach.start_ms),
            at(breach.end_ms)
        );
    }
}

fn outcome_word(o: Outcome) -> &'static str {
    match o {
        Outcome::Good => "good",
        Outcome::Bad => "bad",
        Outcome::Unknown => "unknown",
        Outcome::Excluded => "excluded",
    }
}

fn print_intervals(shown: &SloIntervals, csv: bool) {
    if csv {
        println!("start_ms,end_ms,outcome,good,total,note");
        for i in &shown.intervals {
            let note = i.note.as_deref().unwrap_or("").replace('"', "\"\"");
            println!(
                "{},{},{},{},{},\"{note}\"",
                i.start_ms,
                i.end_ms,
                outcome_word(i.outcome),
                i.good,
                i.total
            );
        }
        return;
    }
    println!(
        "{} {} .. {}: compliance {} (good {} bad {} unknown {} excluded {})",
        shown.name,
        at(shown.window.start_ms),
        at(shown.window.end_ms),
        percent(shown.compliance),
        shown.tally.good,
        shown.tally.bad,
        shown.tally.unknown,
        shown.tally.excluded
    );
    println!("{}", shown.policy);
    println!(
        "{:<21} {:<21} {:<9} {:>10} {:>10} NOTE",
        "START", "END", "OUTCOME", "GOOD", "TOTAL"
    );
    for i in &shown.intervals {
        println!(
            "{:<21} {:<21} {:<9} {:>10} {:>10} {}",
            at(i.start_ms),
            at(i.end_ms),
            outcome_word(i.outcome),
            i.good,
            i.total,
            i.note.as_deref().unwrap_or("")
        );
    }
}

//! `hcmon mark`, `hcmon annotations`, `hcmon compare` and `hcmon experiment`: marking
//! moments, comparing series before and after one, and experiments with a success criterion.
//! Times are RFC 3339 or Unix seconds, as the API takes them.

use crate::{Api, data, format_labels};
use anyhow::bail;
use clap::{Args, Subcommand, ValueEnum};
use hcmon_collector::api::annotations::{Annotation, NewAnnotation, TimeValue};
use hcmon_collector::api::compare::{
    CompareRow, Comparison, Criterion, Direction, Experiment, ExperimentWithResult, NewExperiment,
    Statistic, TimeRange,
};
use std::time::{Duration, UNIX_EPOCH};

/// `hcmon mark "text"`.
#[derive(Debug, Args)]
pub struct MarkArgs {
    /// What happened, e.g. "deployed v2".
    text: String,
    /// When (RFC 3339 or Unix seconds) [default: now].
    #[arg(long)]
    at: Option<String>,
    /// The end of a span that started --at.
    #[arg(long)]
    end: Option<String>,
    /// A tag; repeat for more.
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// The node it is about.
    #[arg(long)]
    node: Option<String>,
}

/// `hcmon compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Series selector; repeat for more.
    #[arg(
        long = "match",
        required_unless_present = "node",
        conflicts_with = "node"
    )]
    selectors: Vec<String>,
    /// Every series of this node instead.
    #[arg(long)]
    node: Option<String>,
    /// The before window, START..END.
    #[arg(long, requires = "after", conflicts_with = "annotation")]
    before: Option<String>,
    /// The after window, START..END.
    #[arg(long, requires = "before")]
    after: Option<String>,
    /// Compare the window before this annotation with the window after it.
    #[arg(long, required_unless_present = "before")]
    annotation: Option<String>,
    /// With --annotation: how long each window is.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    window: Duration,
    /// At most this many rows, the most changed.
    #[arg(long, default_value = "50")]
    limit: usize,
    /// Print the API's JSON answer instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StatisticArg {
    Mean,
    Median,
    P95,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DirectionArg {
    Decrease,
    Increase,
}

#[derive(Debug, Subcommand)]
pub enum ExperimentCommand {
    /// Define an experiment, e.g. `--match 'redis_latency_seconds' --statistic p95
    /// --direction decrease --by-percent 10`; prints its id.
    Create {
        /// What it tries, e.g. "bigger Redis maxmemory".
        #[arg(long)]
        name: String,
        /// Free text kept with it.
        #[arg(long)]
        description: Option<String>,
        /// The baseline window, START..END.
        #[arg(long)]
        baseline: String,
        /// The treatment window, START..END.
        #[arg(long)]
        treatment: String,
        /// Selector of the series that define success; repeat for more.
        #[arg(long = "match", required = true)]
        selectors: Vec<String>,
        /// The statistic of each window the criterion compares.
        #[arg(long, value_enum)]
        statistic: StatisticArg,
        /// Which way success moves it.
        #[arg(long, value_enum)]
        direction: DirectionArg,
        /// How much the statistic must move, in %.
        #[arg(long)]
        by_percent: f64,
    },
    /// Every experiment.
    List,
    /// An experiment and whether its criterion was met, with its series compared.
    Show {
        id: String,
        /// Print the API's JSON answer.
        #[arg(long)]
        json: bool,
    },
    /// Delete an experiment.
    Delete { id: String },
}

/// A time argument as the API takes it.
fn time_value(text: &str) -> TimeValue {
    match text.parse::<f64>() {
        Ok(seconds) => TimeValue::Seconds(seconds),
        Err(_) => TimeValue::Text(text.to_owned()),
    }
}

/// `START..END`.
fn split_range(flag: &str, text: &str) -> anyhow::Result<(String, String)> {
    let Some((start, end)) = text.split_once("..") else {
        bail!("--{flag} {text:?}: give START..END (RFC 3339 or Unix seconds)");
    };
    Ok((start.trim().to_owned(), end.trim().to_owned()))
}

/// Unix ms as RFC 3339 (seconds); a time before 1970 shows as 1970.
fn at(ms: i64) -> String {
    let since = Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_seconds(UNIX_EPOCH + since).to_string()
}

pub async fn mark(api: &Api, args: MarkArgs, now: f64) -> anyhow::Result<()> {
    let request = NewAnnotation {
        time: args
            .at
            .as_deref()
            .map_or(TimeValue::Seconds(now), time_value),
        end: args.end.as_deref().map(time_value),
        text: args.text,
        tags: args.tags,
        node: args.node,
    };
    let made: Annotation = data(&api.post("/api/v1/annotations", &request).await?)?;
    println!("{}", made.id);
    Ok(())
}

pub async fn annotations(
    api: &Api,
    start: Option<String>,
    end: Option<String>,
) -> anyhow::Result<()> {
    let mut query = Vec::new();
    query.extend(start.map(|s| ("start", s)));
    query.extend(end.map(|e| ("end", e)));
    let listed: Vec<Annotation> = data(&api.get("/api/v1/annotations", query).await?)?;
    println!(
        "{:<21} {:<20} {:<20} {:<16} {:<20} TEXT",
        "ID", "TIME", "END", "NODE", "TAGS"
    );
    for a in listed {
        println!(
            "{:<21} {:<20} {:<20} {:<16} {:<20} {}",
            a.id,
            at(a.time_ms),
            a.end_ms.map_or("-".into(), at),
            a.node.as_deref().unwrap_or("-"),
            if a.tags.is_empty() {
                "-".into()
            } else {
                a.tags.join(",")
            },
            a.text
        );
    }
    Ok(())
}

pub async fn compare(api: &Api, args: CompareArgs) -> anyhow::Result<()> {
    let mut query: Vec<(&str, String)> = match &args.node {
        Some(node) => vec![("node", node.clone())],
        None => args
            .selectors
            .iter()
            .map(|s| ("match[]", s.clone()))
            .collect(),
    };
    match (&args.annotation, &args.before, &args.after) {
        (Some(id), _, _) => {
            query.push(("annotation", id.clone()));
            query.push(("window", format!("{}", args.window.as_secs_f64())));
        }
        (None, Some(before), Some(after)) => {
            let (bs, be) = split_range("before", before)?;
            let (a_s, ae) = split_range("after", after)?;
            query.extend([
                ("before_start", bs),
                ("before_end", be),
                ("after_start", a_s),
                ("after_end", ae),
            ]);
        }
        _ => bail!("give --annotation ID, or --before START..END and --after START..END"),
    }
    let body = api.get("/api/v1/compare", query).await?;
    if args.json {
        println!("{body}");
        return Ok(());
    }
    let comparison: Comparison = data(&body)?;
    println!(
        "before {} .. {}, after {} .. {}",
        at(comparison.before.start_ms),
        at(comparison.before.end_ms),
        at(comparison.after.start_ms),
        at(comparison.after.end_ms)
    );
    print_rows(&comparison.series, args.limit);
    Ok(())
}

/// The ranked rows as a table.
fn print_rows(rows: &[CompareRow], limit: usize) {
    let number = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.4}"));
    println!(
        "{:<4} {:<4} {:>8} {:>10} {:>12} {:>25} {:>9} {:>12} SERIES",
        "RANK", "SIG", "EFFECT", "P", "DIFF MEAN", "95% CI", "CHANGE", "UNIT"
    );
    for (i, r) in rows.iter().take(limit).enumerate() {
        let ci = r
            .diff_mean_ci
            .map_or("-".to_owned(), |(lo, hi)| format!("[{lo:.4}, {hi:.4}]"));
        let change = r
            .relative_change
            .map_or("-".to_owned(), |c| format!("{:+.1}%", c * 100.0));
        println!(
            "{:<4} {:<4} {:>8} {:>10} {:>12} {:>25} {:>9} {:>12} {}",
            i + 1,
            if r.significant { "yes" } else { "no" },
            r.effect_size.map_or("-".into(), |e| format!("{e:+.3}")),
            r.p_value.map_or("-".into(), |p| format!("{p:.2e}")),
            number(r.diff_mean),
            ci,
            change,
            r.unit.as_deref().unwrap_or("-"),
            format_labels(&r.metric)
        );
    }
    if rows.len() > limit {
        println!("({} more series; --limit shows more)", rows.len() - limit);
    }
}

fn criterion_text(c: &Criterion) -> String {
    let statistic = match c.statistic {
        Statistic::Mean => "mean",
        Statistic::Median => "median",
        Statistic::P95 => "p95",
    };
    let direction = match c.direction {
        Direction::Decrease => "down",
        Direction::Increase => "up",
    };
    format!("{statistic} {direction} {}%", c.by_percent)
}

pub async fn experiment(api: &Api, command: ExperimentCommand) -> anyhow::Result<()> {
    match command {
        ExperimentCommand::Create {
            name,
            description,
            baseline,
            treatment,
            selectors,
            statistic,
            direction,
            by_percent,
        } => {
            let range = |flag: &str, text: &str| -> anyhow::Result<TimeRange> {
                let (start, end) = split_range(flag, text)?;
                Ok(TimeRange {
                    start: time_value(&start),
                    end: time_value(&end),
                })
            };
            let request = NewExperiment {
                name,
                description,
                baseline: range("baseline", &baseline)?,
                treatment: range("treatment", &treatment)?,
                selectors,
                criterion: Criterion {
                    statistic: match statistic {
                        StatisticArg::Mean => Statistic::Mean,
                        StatisticArg::Median => Statistic::Median,
                        StatisticArg::P95 => Statistic::P95,
                    },
                    direction: match direction {
                        DirectionArg::Decrease => Direction::Decrease,
                        DirectionArg::Increase => Direction::Increase,
                    },
                    by_percent,
                },
            };
            let made: Experiment = data(&api.post("/api/v1/experiments", &request).await?)?;
            println!("{}", made.id);
        }
        ExperimentCommand::List => {
            let all: Vec<Experiment> = data(&api.get("/api/v1/experiments", vec![]).await?)?;
            println!(
                "{:<21} {:<24} {:<20} {:<20} {:<20} MATCH",
                "ID", "NAME", "CRITERION", "BASELINE", "TREATMENT"
            );
            for e in all {
                println!(
                    "{:<21} {:<24} {:<20} {:<20} {:<20} {}",
                    e.id,
                    e.name,
                    criterion_text(&e.criterion),
                    at(e.baseline.start_ms),
                    at(e.treatment.start_ms),
                    e.selectors.join(" ")
                );
            }
        }
        ExperimentCommand::Show { id, json } => {
            let body = api
                .get(&format!("/api/v1/experiments/{id}"), vec![])
                .await?;
            if json {
                println!("{body}");
                return Ok(());
            }
            let shown: ExperimentWithResult = data(&body)?;
            let (e, r) = (shown.experiment, shown.result);
            println!("{} ({}): {}", e.name, e.id, criterion_text(&e.criterion));
            println!(
                "baseline {} .. {}, treatment {} .. {}",
                at(e.baseline.start_ms),
                at(e.baseline.end_ms),
                at(e.treatment.start_ms),
                at(e.treatment.end_ms)
            );
            println!(
                "{}: observed {}, confidence {:.1}%",
                if r.met { "MET" } else { "NOT MET" },
                r.observed_change_percent
                    .map_or("no data".into(), |c| format!("{c:+.1}%")),
                r.confidence * 100.0
            );
            print_rows(&r.series, usize::MAX);
        }
        ExperimentCommand::Delete { id } => {
            let path = format!("/api/v1/experiments/{id}");
            let deleted: Experiment = data(&api.delete(&path, vec![]).await?)?;
            println!("deleted experiment {} ({})", deleted.id, deleted.name);
        }
    }
    Ok(())
}

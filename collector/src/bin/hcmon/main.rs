//! `hcmon`: the operator CLI. Talks to a running collector's HTTP API; `replay` of a CSV needs
//! no collector at all.
// A CLI's job is to print to stdout.
#![allow(clippy::print_stdout)]

mod api;
mod auth;
mod before_after;
mod export;
mod pki;
mod report;
mod slo;
mod tokens;

use anyhow::{Context, bail};
use api::Api;
use clap::{Parser, Subcommand};
use hcmon_collector::analytics::anomaly::AnomalyConfig;
use hcmon_collector::api::admin::Health;
use hcmon_collector::api::agents::{AgentStatus, Forgotten};
use hcmon_collector::api::alerts::{
    AckRequest, AlertList, AlertResponse, NewSilence, SilenceResponse,
};
use hcmon_collector::api::query::{ExportLine, Matrix};
use hcmon_collector::api::{ApiResponse, Metric};
use hcmon_collector::audit::{AuditEvent, AuditRecord};
use hcmon_collector::replay::{self, InputRow};
use serde::de::DeserializeOwned;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Operate an hcmon collector: see which agents report, query and export series.
#[derive(Debug, Parser)]
#[command(name = "hcmon", version)]
struct Cli {
    /// Base URL of the collector's HTTP API.
    #[arg(
        long,
        global = true,
        env = "HCMON_URL",
        default_value = "http://127.0.0.1:9464"
    )]
    url: String,
    /// API token to send (`hcmon tokens create` makes one) [default: <data-dir>/admin.token].
    #[arg(long, global = true, env = "HCMON_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The collector's data folder, where a fresh collector writes its admin token; read when
    /// no --token is given.
    #[arg(
        long,
        global = true,
        env = "HCMON_DATA_DIR",
        default_value = "hcmon-data/collector"
    )]
    data_dir: PathBuf,
    /// The CA certificate an HTTPS collector's certificate is signed by
    /// [default: <data-dir>/pki/ca.crt when it exists; the public web PKI besides].
    #[arg(long, global = true, env = "HCMON_CA_FILE")]
    ca_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Collector health and every known agent: connected or not, last batch, version.
    Status,
    /// API tokens: create (printed once), list, revoke. Admin only.
    Tokens {
        #[command(subcommand)]
        command: tokens::TokensCommand,
    },
    /// Issue a single-use enrollment token for a new node (admin; needs `[tls] enabled`).
    Enroll {
        /// The node's name; its certificate and every series it sends will carry it.
        node: String,
        /// How long the token can be used [default: the collector's, 1h].
        #[arg(long, value_parser = humantime::parse_duration)]
        ttl: Option<Duration>,
        /// Write the token to this file (mode 0600) instead of printing it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Enrolled nodes: newest certificate, expiry, revoked or not.
    Nodes,
    /// Revoke a node's certificates: its agent is cut off at once and cannot renew.
    Revoke { node: String },
    /// SLOs: compliance and error budget, the intervals behind them, create, delete, and
    /// OpenSLO YAML import and export.
    Slo {
        #[command(subcommand)]
        command: slo::SloCommand,
    },
    /// Alerts: list, show, acknowledge, silence.
    Alerts {
        #[command(subcommand)]
        command: AlertsCommand,
    },
    /// Forget a node that no longer reports: its record and its AgentSilent/AgentDisconnected
    /// alerts go, its series stay queryable. Refused while its agent is streaming.
    Forget {
        /// The node's name, as `hcmon status` lists it.
        node: String,
        /// Delete its series too (definitions, samples, rollups), for good.
        #[arg(long)]
        delete_series: bool,
    },
    /// Series matching a selector, e.g. `hcmon series 'node_cpu_usage_ratio{node="nas"}'`.
    Series {
        /// PromQL-style selector: name{label="value",other=~"regex"}.
        selector: String,
    },
    /// Values of matching series over a recent window, one line per series and step.
    Query {
        /// PromQL-style selector: name{label="value",other=~"regex"}.
        selector: String,
        /// How far back to look, e.g. 15m, 2h.
        #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
        since: Duration,
        /// Resolution, e.g. 10s, 1m.
        #[arg(long, default_value = "1m", value_parser = humantime::parse_duration)]
        step: Duration,
    },
    /// Series over a range as JSON lines (VictoriaMetrics' format), CSV, JSON or Excel, raw or
    /// aggregated to a step, e.g. `hcmon export --match up --since 1h --format csv`.
    Export(export::ExportArgs),
    /// The audit log: every state-changing call (who, what, target, outcome, client address),
    /// oldest first.
    Audit {
        #[command(subcommand)]
        command: Option<AuditCommand>,
        /// Only records of this recent window, e.g. 1h.
        #[arg(long, value_parser = humantime::parse_duration)]
        since: Option<Duration>,
        /// At most this many records, the newest.
        #[arg(long, default_value = "100")]
        limit: usize,
        /// Print the records as JSON lines, as they are exported.
        #[arg(long)]
        json: bool,
    },
    /// Mark a moment or span, e.g. `hcmon mark "deployed v2" --tag deploy`; prints its id.
    Mark(before_after::MarkArgs),
    /// Annotations overlapping a range [default: all].
    Annotations {
        /// RFC 3339 or Unix seconds.
        #[arg(long)]
        start: Option<String>,
        #[arg(long)]
        end: Option<String>,
    },
    /// Compare series over two windows (or before and after an annotation), most changed
    /// first, e.g. `hcmon compare --node nas --annotation ID --window 1h`.
    Compare(before_after::CompareArgs),
    /// Experiments: create, list, show (whether the criterion was met), delete.
    Experiment {
        #[command(subcommand)]
        command: before_after::ExperimentCommand,
    },
    /// An SLA report over a range, made now, e.g.
    /// `hcmon report --from 2026-11-01T00:00:00Z --to 2026-12-01T00:00:00Z --format pdf -o nov.pdf`.
    Report(report::ReportArgs),
    /// The stored scheduled reports (daily, weekly, monthly): list, get.
    Reports {
        #[command(subcommand)]
        command: report::ReportsCommand,
    },
    /// Back-test the anomaly engine (live defaults) on a CSV of `timestamp,value` rows, or on
    /// one stored series: writes `timestamp,value,anomaly_score,is_anomaly,severity,detectors`,
    /// one row per input row. With `--input` no collector is needed.
    Replay {
        /// CSV with the header `timestamp,value`; timestamps as RFC 3339,
        /// `YYYY-MM-DD HH:MM:SS` (UTC) or Unix seconds.
        #[arg(long, conflicts_with = "series", required_unless_present = "series")]
        input: Option<PathBuf>,
        /// Instead of a CSV: a selector matching exactly one stored series (read from the
        /// collector at --url).
        #[arg(long)]
        series: Option<String>,
        /// With --series: how far back to read.
        #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
        since: Duration,
        /// Where to write the verdicts [default: stdout].
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Fetch the whole log and check its hash chain; fails naming the first record that was
    /// modified, removed or reordered, else prints the head (the last record's hash: keep it
    /// elsewhere to tell later whether records were cut from the end).
    Verify,
}

#[derive(Debug, Subcommand)]
enum AlertsCommand {
    /// Pending, firing and acknowledged alerts (`--all` adds resolved ones of the last hour).
    List {
        #[arg(long)]
        all: bool,
    },
    /// One alert with its evidence and incident history.
    Show { id: String },
    /// Acknowledge a firing alert: escalation stops, the alert stays until it resolves.
    Ack {
        id: String,
        /// Who acknowledges [default: $USER, else "operator"].
        #[arg(long, env = "USER", default_value = "operator")]
        by: String,
    },
    /// Silence alerts whose labels match, e.g. `hcmon alerts silence '{node="nas"}' --for 2h`.
    Silence {
        /// Selector over alert labels; the metric name stands for the alert name.
        matchers: String,
        /// How long, from now (or from --start).
        #[arg(long = "for", value_parser = humantime::parse_duration, default_value = "1h")]
        duration: Duration,
        /// When it starts (RFC 3339) [default: now].
        #[arg(long)]
        start: Option<String>,
        /// A daily maintenance window within that range, `HH:MM-HH:MM` UTC.
        #[arg(long)]
        daily: Option<String>,
        #[arg(long, default_value = "")]
        comment: String,
        /// Who silences [default: $USER, else "operator"].
        #[arg(long, env = "USER", default_value = "operator")]
        by: String,
        /// Planned maintenance: the time it covers also leaves the SLOs' denominators.
        #[arg(long)]
        maintenance: bool,
    },
    /// Silences, active, pending and expired.
    Silences,
    /// End a silence now.
    Unsilence { id: String },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let token = auth::bearer(cli.token.as_deref(), &cli.data_dir)?;
    let own_ca = cli.data_dir.join("pki/ca.crt");
    let ca_file = cli.ca_file.clone().or(own_ca.exists().then_some(own_ca));
    let api = Api::new(&cli.url, token, ca_file.as_deref())?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();

    match cli.command {
        Command::Alerts { command } => alerts(&api, command).await?,
        Command::Slo { command } => slo::run(&api, command).await?,
        Command::Tokens { command } => tokens::run(&api, command).await?,
        Command::Mark(args) => before_after::mark(&api, args, now).await?,
        Command::Annotations { start, end } => before_after::annotations(&api, start, end).await?,
        Command::Compare(args) => before_after::compare(&api, args).await?,
        Command::Experiment { command } => before_after::experiment(&api, command).await?,
        Command::Enroll { node, ttl, out } => pki::enroll(&api, node, ttl, out.as_deref()).await?,
        Command::Nodes => pki::nodes(&api).await?,
        Command::Revoke { node } => pki::revoke(&api, &node).await?,
        Command::Audit {
            command: Some(AuditCommand::Verify),
            ..
        } => verify_audit(&api).await?,
        Command::Audit {
            command: None,
            since,
            limit,
            json,
        } => {
            let mut query = vec![("limit", limit.to_string())];
            if let Some(since) = since {
                query.push(("since", format!("{:.3}", now - since.as_secs_f64())));
            }
            let records: Vec<AuditRecord> = data(&api.get("/api/v1/audit", query).await?)?;
            print_audit(&records, json)?;
        }
        Command::Status => {
            let health: Health = decode(&api.get("/healthz", vec![]).await?)?;
            println!(
                "collector {}: {} series, {} agents connected",
                health.status, health.series, health.connected_agents
            );
            let agents: Vec<AgentStatus> = data(&api.get("/api/v1/agents", vec![]).await?)?;
            println!(
                "{:<24} {:<10} {:<20} {:<10} LAST SEQ",
                "NODE", "STATE", "LAST BATCH", "VERSION"
            );
            for agent in agents {
                let last_ms = agent.last_batch_at_ms;
                let last = if last_ms > 0 {
                    format!("{:.0}s ago", (now - last_ms as f64 / 1000.0).max(0.0))
                } else {
                    "never".into()
                };
                println!(
                    "{:<24} {:<10} {:<20} {:<10} {}",
                    agent.node,
                    if agent.connected { "connected" } else { "away" },
                    last,
                    agent.agent_version,
                    agent.last_durable_seq
                );
            }
        }
        Command::Forget {
            node,
            delete_series,
        } => {
            let fate = if delete_series { "delete" } else { "keep" };
            let path = format!("/api/v1/agents/{node}");
            let forgotten: Forgotten =
                data(&api.delete(&path, vec![("series", fate.to_owned())]).await?)?;
            match delete_series {
                true => println!(
                    "forgot node {node}; deleted {} series ({} stored blocks)",
                    forgotten.series_deleted, forgotten.blocks_deleted
                ),
                false => println!("forgot node {node}; its series are kept"),
            }
        }
        Command::Series { selector } => {
            let body = api
                .get("/api/v1/series", vec![("match[]", selector)])
                .await?;
            let series: Vec<Metric> = data(&body)?;
            for labels in &series {
                println!("{}", format_labels(labels));
            }
        }
        Command::Query {
            selector,
            since,
            step,
        } => {
            let query = vec![
                ("query", selector),
                ("start", format!("{:.3}", now - since.as_secs_f64())),
                ("end", format!("{now:.3}")),
                ("step", format!("{}", step.as_secs_f64())),
            ];
            let matrix: Matrix = data(&api.get("/api/v1/query_range", query).await?)?;
            for series in matrix.result {
                println!("{}", format_labels(&series.metric));
                for (t, value) in series.values {
                    // A time before 1970 (or beyond what a Duration holds) shows as 1970.
                    let since = Duration::try_from_secs_f64(t).unwrap_or_default();
                    let time = humantime::format_rfc3339_seconds(UNIX_EPOCH + since);
                    println!("  {time}  {value}");
                }
            }
        }
        Command::Export(args) => export::run(&api, args, now).await?,
        Command::Report(args) => report::report(&api, args).await?,
        Command::Reports { command } => report::reports(&api, command).await?,
        Command::Replay {
            input,
            series,
            since,
            output,
        } => {
            let rows = match (input, series) {
                (Some(path), _) => {
                    let file = std::fs::File::open(&path)
                        .with_context(|| format!("cannot open {}", path.display()))?;
                    replay::read_csv(std::io::BufReader::new(file))
                        .with_context(|| format!("{} cannot be replayed", path.display()))?
                }
                (None, Some(selector)) => stored_rows(&api, selector, now, since).await?,
                (None, None) => bail!("give --input FILE.csv or --series SELECTOR"),
            };
            let summary = match &output {
                Some(path) => {
                    let file = std::fs::File::create(path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    replay::replay(
                        &rows,
                        &AnomalyConfig::default(),
                        std::io::BufWriter::new(file),
                    )?
                }
                None => replay::replay(&rows, &AnomalyConfig::default(), std::io::stdout().lock())?,
            };
            eprintln!(
                "replayed {} rows: {} anomalies, first {} rows learning",
                summary.rows, summary.anomalies, summary.learning
            );
        }
    }
    Ok(())
}

/// The samples of the one series `selector` matches, from the collector's export.
async fn stored_rows(
    api: &Api,
    selector: String,
    now: f64,
    since: Duration,
) -> anyhow::Result<Vec<InputRow>> {
    let query = vec![
        ("match[]", selector.clone()),
        ("start", format!("{:.3}", now - since.as_secs_f64())),
    ];
    let body = api.get("/api/v1/export", query).await?;
    let lines: Vec<ExportLine> = body
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .context("the collector's export is not JSON lines")?;
    // A long series comes in several lines, one after another.
    let mut series: Vec<ExportLine> = Vec::new();
    for line in lines {
        match series.last_mut() {
            Some(last) if last.metric == line.metric => {
                last.values.extend(line.values);
                last.timestamps.extend(line.timestamps);
            }
            _ => series.push(line),
        }
    }
    let [one] = series.as_slice() else {
        let names: Vec<String> = series.iter().map(|s| format_labels(&s.metric)).collect();
        bail!(
            "{selector} matches {} series; narrow it to one: {}",
            series.len(),
            names.join(", ")
        );
    };
    Ok(one
        .timestamps
        .iter()
        .zip(&one.values)
        .enumerate()
        .map(|(i, (&ms, &value))| InputRow {
            line: i as u64 + 1,
            // Stored samples are from 1970 on.
            timestamp_text: humantime::format_rfc3339_millis(
                UNIX_EPOCH + Duration::from_millis(ms.max(0).unsigned_abs()),
            )
            .to_string(),
            timestamp_ms: ms,
            // As the export wrote it.
            value_text: serde_json::Number::from_f64(value)
                .map_or_else(|| value.to_string(), |n| n.to_string()),
            value,
        })
        .collect())
}

async fn alerts(api: &Api, command: AlertsCommand) -> anyhow::Result<()> {
    match command {
        AlertsCommand::List { all } => {
            let query = if all {
                vec![("all", "true".to_owned())]
            } else {
                vec![]
            };
            let AlertList { alerts } = data(&api.get("/api/v1/alerts", query).await?)?;
            if alerts.is_empty() {
                println!("no alerts");
                return Ok(());
            }
            println!(
                "{:<16} {:<13} {:<9} {:<20} {:<26} SUMMARY",
                "ID", "STATE", "SEVERITY", "ALERT", "SINCE"
            );
            for a in alerts {
                let mut state = a.hcmon_state.name().to_owned();
                if let Some(muted) = &a.muted {
                    state = format!("{state} (muted: {muted})");
                }
                let label = |name: &str| a.labels.get(name).map_or("?", String::as_str);
                println!(
                    "{:<16} {:<13} {:<9} {:<20} {:<26} {}",
                    a.id,
                    state,
                    label("severity"),
                    label("alertname"),
                    a.active_at,
                    a.annotations.get("summary").map_or("", String::as_str),
                );
            }
        }
        AlertsCommand::Show { id } => {
            let alert: AlertResponse =
                data(&api.get(&format!("/api/v1/alerts/{id}"), vec![]).await?)?;
            println!("{}", serde_json::to_string_pretty(&alert)?);
        }
        AlertsCommand::Ack { id, by } => {
            let path = format!("/api/v1/alerts/{id}/ack");
            api.post(&path, &AckRequest { by: by.clone() }).await?;
            println!("acknowledged {id} as {by}");
        }
        AlertsCommand::Silence {
            matchers,
            duration,
            start,
            daily,
            comment,
            by,
            maintenance,
        } => {
            let request = NewSilence {
                matchers,
                starts_at: start,
                ends_at: None,
                duration: Some(humantime::format_duration(duration).to_string()),
                daily,
                created_by: by,
                comment,
                maintenance,
            };
            let s: SilenceResponse = data(&api.post("/api/v1/silences", &request).await?)?;
            println!(
                "silence {} {} until {} ({})",
                s.id, s.matchers, s.ends_at, s.status
            );
        }
        AlertsCommand::Silences => {
            let silences: Vec<SilenceResponse> = data(&api.get("/api/v1/silences", vec![]).await?)?;
            println!(
                "{:<16} {:<8} {:<26} {:<26} {:<12} MATCHERS",
                "ID", "STATUS", "STARTS", "ENDS", "DAILY"
            );
            for s in silences {
                println!(
                    "{:<16} {:<8} {:<26} {:<26} {:<12} {}",
                    s.id,
                    s.status,
                    s.starts_at,
                    s.ends_at,
                    s.daily.as_deref().unwrap_or("-"),
                    s.matchers,
                );
            }
        }
        AlertsCommand::Unsilence { id } => {
            api.delete(&format!("/api/v1/silences/{id}"), vec![])
                .await?;
            println!("silence {id} expired");
        }
    }
    Ok(())
}

/// Prints audit records as a table, or as JSON lines with `json`.
fn print_audit(records: &[AuditRecord], json: bool) -> anyhow::Result<()> {
    if json {
        for record in records {
            println!("{}", serde_json::to_string(record)?);
        }
        return Ok(());
    }
    println!(
        "{:<6} {:<20} {:<12} {:<21} {:<14} {:<20} OUTCOME",
        "SEQ", "TIME", "WHO", "CLIENT", "WHAT", "TARGET"
    );
    for r in records {
        let imported = match &r.event {
            AuditEvent::ImportSlos { slos } if !slos.is_empty() => slos.join(","),
            _ => "-".to_owned(),
        };
        let (what, target) = match &r.event {
            AuditEvent::AckAlert { alert } => ("ack", alert.as_str()),
            AuditEvent::CreateSilence { silence } => ("silence", silence.as_deref().unwrap_or("-")),
            AuditEvent::ExpireSilence { silence } => ("unsilence", silence.as_str()),
            AuditEvent::ForgetAgent { node } => ("forget", node.as_str()),
            AuditEvent::Compact => ("compact", "-"),
            AuditEvent::IssueEnrollmentToken { node } => {
                ("enroll-token", node.as_deref().unwrap_or("-"))
            }
            AuditEvent::Enroll { node, .. } => ("enroll", node.as_str()),
            AuditEvent::RenewCertificate { node, .. } => ("renew", node.as_str()),
            AuditEvent::RevokeNode { node } => ("revoke-node", node.as_str()),
            AuditEvent::CreateToken { token } => ("token", token.as_deref().unwrap_or("-")),
            AuditEvent::RevokeToken { token } => ("revoke-token", token.as_str()),
            AuditEvent::FailedAuthentication { reason } => ("auth-failed", reason.as_str()),
            AuditEvent::CreateAnnotation { annotation } => {
                ("mark", annotation.as_deref().unwrap_or("-"))
            }
            AuditEvent::DeleteAnnotation { annotation } => ("unmark", annotation.as_str()),
            AuditEvent::CreateExperiment { experiment } => {
                ("experiment", experiment.as_deref().unwrap_or("-"))
            }
            AuditEvent::DeleteExperiment { experiment } => ("del-experiment", experiment.as_str()),
            AuditEvent::CreateSlo { slo } => ("slo", slo.as_deref().unwrap_or("-")),
            AuditEvent::ImportSlos { .. } => ("import-slos", imported.as_str()),
            AuditEvent::DeleteSlo { slo } => ("del-slo", slo.as_str()),
        };
        // A time before 1970 shows as 1970.
        let at = Duration::from_millis(u64::try_from(r.at_ms).unwrap_or(0));
        println!(
            "{:<6} {:<20} {:<12} {:<21} {:<14} {:<20} {}",
            r.seq,
            humantime::format_rfc3339_seconds(UNIX_EPOCH + at),
            r.who,
            r.client.as_deref().unwrap_or("-"),
            what,
            target,
            r.outcome
        );
    }
    Ok(())
}

/// `hcmon audit verify`: the whole log, exported, checked here rather than trusted to the
/// collector.
async fn verify_audit(api: &Api) -> anyhow::Result<()> {
    let export = api.get("/api/v1/audit/export", vec![]).await?;
    let records = export
        .lines()
        .enumerate()
        .map(|(line, text)| {
            serde_json::from_str::<AuditRecord>(text)
                .with_context(|| format!("line {} of the export is not an audit record", line + 1))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    match hcmon_collector::audit::verify(&records) {
        Ok(head) => {
            println!("audit log intact: {} records, head {head}", records.len());
            Ok(())
        }
        Err(broken) => bail!("audit log tampered with: {broken}"),
    }
}

/// An answer decoded as the API's type for it.
fn decode<T: DeserializeOwned>(body: &str) -> anyhow::Result<T> {
    serde_json::from_str(body).context("the collector's answer is not what this hcmon expects")
}

/// The `data` of a success envelope.
fn data<T: DeserializeOwned>(body: &str) -> anyhow::Result<T> {
    Ok(decode::<ApiResponse<T>>(body)?.data)
}

/// `name{label="value",…}`.
fn format_labels(labels: &Metric) -> String {
    let name = labels.get("__name__").map_or("", String::as_str);
    let rest: Vec<String> = labels
        .iter()
        .filter(|(k, _)| k.as_str() != "__name__")
        .map(|(k, v)| format!("{k}={}", serde_json::Value::from(v.as_str())))
        .collect();
    format!("{name}{{{}}}", rest.join(","))
}

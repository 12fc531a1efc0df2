//! `hcmon-agent`: collects this node's metrics and streams them to an hcmon collector.

use clap::Parser;
use hcmon_agent::config::AgentConfig;
use hcmon_common::secret::Secret;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The hcmon agent: collects this node's CPU, memory, disk and network metrics, keeps every batch
/// in a disk spool until the collector acknowledges it, and streams them over gRPC.
///
/// With no arguments it sends to http://127.0.0.1:4317 every 10 s as this host's name and spools
/// to ./hcmon-data/agent-spool. Flags override the config file.
#[derive(Debug, Parser)]
#[command(name = "hcmon-agent", version)]
struct Args {
    /// TOML config file (see deploy/hcmon-agent.toml for every option).
    #[arg(long, short, env = "HCMON_AGENT_CONFIG")]
    config: Option<PathBuf>,
    /// gRPC URL of the collector, e.g. https://collector.lan:4317 (mutual TLS) or
    /// http://127.0.0.1:4317 (a collector on this machine). Two, comma-separated or the flag
    /// given twice, for an HA pair: every batch goes to each.
    #[arg(long, env = "HCMON_COLLECTOR", value_delimiter = ',')]
    collector: Vec<String>,
    /// Name of this node in every series' `node` label [default: the host name].
    #[arg(long, env = "HCMON_NODE_NAME")]
    node_name: Option<String>,
    /// Folder for batches not yet acknowledged [default: ./hcmon-data/agent-spool].
    #[arg(long, env = "HCMON_SPOOL_DIR")]
    spool_dir: Option<PathBuf>,
    /// The enrollment token from `hcmon enroll <node>` on the collector, for the first start
    /// with an https:// collector; later starts use the stored certificate and ignore it.
    #[arg(long, env = "HCMON_ENROLL_TOKEN", hide_env_values = true)]
    enroll_token: Option<String>,
    /// Folder for this node's key and certificates [default: ./hcmon-data/agent-identity].
    #[arg(long, env = "HCMON_IDENTITY_DIR")]
    identity_dir: Option<PathBuf>,
    /// Collection interval, e.g. 1s, 10s, 1m [default: 10s].
    #[arg(long, env = "HCMON_INTERVAL", value_parser = humantime::parse_duration)]
    interval: Option<Duration>,
    /// Log filter, in tracing's EnvFilter syntax (e.g. `info`, `hcmon_agent=debug`).
    #[arg(long, env = "HCMON_LOG", default_value = "info")]
    log: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&args.log)?)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mut config = match &args.config {
        Some(path) => AgentConfig::from_file(path)?,
        None => AgentConfig::default(),
    };
    if !args.collector.is_empty() {
        config.collector = args.collector;
    }
    if let Some(name) = args.node_name {
        config.node_name = name;
    }
    if let Some(dir) = args.spool_dir {
        config.spool_dir = dir;
    }
    if let Some(token) = args.enroll_token {
        config.enroll_token = Secret::new(token);
    }
    if let Some(dir) = args.identity_dir {
        config.identity_dir = dir;
    }
    if let Some(interval) = args.interval {
        config.interval = interval;
    }
    config.validate()?;

    let shutdown = CancellationToken::new();
    let signal = shutdown.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler installs");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        signal.cancel();
    });
    hcmon_agent::run(config, shutdown).await
}

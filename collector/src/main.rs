//! `hcmon-collector`: receives agents' metrics, stores them, serves Prometheus and the API.

use clap::Parser;
use hcmon_collector::config::CollectorConfig;
use hcmon_collector::{Collector, clock::system_clock};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// jemalloc rather than glibc's malloc: under a fleet's many small batches, glibc's spent about
/// 40% of the collector's CPU consolidating free lists across per-thread arenas, and kept freed
/// memory there (see `just bench-fleet`). With the default feature `jemalloc-for-cpp` it is the
/// process' `malloc` too, so RocksDB's C++ heap lives in the same arena: in `just bench-ingest`
/// peak RSS fell 13–18 MiB per run and CPU per sample 1–4%. The `system-allocator` feature (with
/// `--no-default-features`) builds without it for heap profilers that hook malloc.
#[cfg(all(feature = "system-allocator", feature = "jemalloc-for-cpp"))]
compile_error!(
    "`system-allocator` needs --no-default-features: with `jemalloc-for-cpp` on, the system \
     malloc is jemalloc's and heap profilers that hook malloc see nothing"
);

#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The hcmon collector: receives metrics from hcmon agents over gRPC, stores them in an embedded
/// RocksDB, and serves them to Prometheus (`/metrics`), Grafana and the `hcmon` CLI (HTTP API).
///
/// With no arguments it listens on 127.0.0.1 (gRPC :4317, HTTP :9464) and keeps its data in
/// ./hcmon-data/collector. Flags override the config file.
#[derive(Debug, Parser)]
#[command(name = "hcmon-collector", version)]
struct Args {
    /// TOML config file (see deploy/hcmon-collector.toml for every option).
    #[arg(long, short, env = "HCMON_COLLECTOR_CONFIG")]
    config: Option<PathBuf>,
    /// Folder for the embedded database [default: ./hcmon-data/collector].
    #[arg(long, env = "HCMON_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Address for agents' gRPC streams, e.g. 0.0.0.0:4317 [default: 127.0.0.1:4317].
    #[arg(long, env = "HCMON_GRPC_LISTEN")]
    grpc_listen: Option<SocketAddr>,
    /// Address for /metrics and the HTTP API, e.g. 0.0.0.0:9464 [default: 127.0.0.1:9464].
    #[arg(long, env = "HCMON_HTTP_LISTEN")]
    http_listen: Option<SocketAddr>,
    /// How long to let open streams drain at shutdown.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    shutdown_grace: Duration,
    /// Log filter, in tracing's EnvFilter syntax (e.g. `info`, `hcmon_collector=debug`).
    #[arg(long, env = "HCMON_LOG", default_value = "info")]
    log: String,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Makes the collector's CA in <data-dir>/pki (if there is none yet) and a new server
    /// certificate for the names and addresses agents and browsers reach it by, then exits.
    /// The collector re-reads the certificate without a restart.
    InitTls {
        /// A host name or IP address, e.g. `--name nas.lan --name 192.168.1.10`; this host's
        /// name, localhost and the loopback addresses are always included.
        #[arg(long = "name")]
        names: Vec<String>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    #[cfg(not(feature = "system-allocator"))]
    hcmon_collector::heap::jemalloc_is_global();
    let args = Args::parse();
    let mut config = match &args.config {
        Some(path) => CollectorConfig::from_file(path)?,
        None => CollectorConfig::default(),
    };
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    if let Some(addr) = args.grpc_listen {
        config.grpc_listen = addr;
    }
    if let Some(addr) = args.http_listen {
        config.http_listen = addr;
    }
    // The log (and, with `[traces] otlp_endpoint`, the span export) starts once the config is
    // read, since the config says where spans go; reading it logs nothing.
    let self_tracing = start_logging(&args.log, &config)?;
    if let Some(Command::InitTls { names }) = &args.command {
        let listen = [config.grpc_listen, config.http_listen];
        let path = hcmon_collector::pki::setup::init_server_certificate(
            &config.data_dir,
            names,
            &listen,
            system_clock()(),
        )?;
        tracing::info!(cert = %path.display(), "server certificate written; enable it with `[tls] enabled = true`");
        return Ok(());
    }
    config.validate()?;
    let scheme = if config.tls.enabled { "https" } else { "http" };

    let data_dir = config.data_dir.clone();
    let collector = Collector::open(config, system_clock()).await?;
    let (grpc, http) = (collector.grpc_addr(), collector.http_addr());
    tracing::info!(
        grpc = %grpc,
        http = %http,
        "collector ready: metrics at {scheme}://{http}/metrics, API at {scheme}://{http}/api/v1/"
    );
    // As Jupyter does: a link that logs a browser in, so running with no config needs no setup.
    if let Ok(token) =
        std::fs::read_to_string(data_dir.join(hcmon_collector::access::ADMIN_TOKEN_FILE))
    {
        let host = match http.ip().is_unspecified() {
            true => SocketAddr::from(([127, 0, 0, 1], http.port())),
            false => http,
        };
        tracing::info!("log in at {scheme}://{host}/?token={}", token.trim());
    }

    let shutdown = CancellationToken::new();
    let run = collector.run(shutdown.clone(), args.shutdown_grace);
    tokio::pin!(run);
    // No task of its own: the signal is awaited beside the collector, which may also stop by
    // itself (a failed essential task) and then returns its reason.
    tokio::select! {
        ended = &mut run => return ended,
        signal = wait_for_signal() => signal?,
    }
    shutdown.cancel();
    let ended = run.await;
    if let Some(pipeline) = self_tracing {
        pipeline.shutdown();
    }
    ended
}

/// Logs to stderr through `filter`, and exports spans when `[traces]` says where.
fn start_logging(
    filter: &str,
    config: &CollectorConfig,
) -> anyhow::Result<Option<hcmon_collector::self_tracing::SelfTracing>> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let registry = tracing_subscriber::registry()
        .with(tracing_subscriber::EnvFilter::try_new(filter)?)
        .with(fmt);
    let (layer, pipeline) = match hcmon_collector::self_tracing::SelfTracing::start(&config.traces)?
    {
        Some((layer, pipeline)) => (Some(layer), Some(pipeline)),
        None => (None, None),
    };
    registry.with(layer).init();
    if let Some(endpoint) = pipeline.as_ref().map(|_| &config.traces.otlp_endpoint) {
        tracing::info!(%endpoint, "exporting the collector's traces over OTLP");
    }
    Ok(pipeline)
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| anyhow::anyhow!("cannot install the SIGTERM handler: {e}"))?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}

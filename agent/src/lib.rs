//! The hcmon agent: collects host metrics on a fixed interval, spools every batch to disk, and
//! streams the spool to a collector.
//!
//! Architecture invariant: the agent never blocks collection on the network. The collection
//! loop only appends to the spool; the sender drains it independently.

pub mod apps;
pub mod collect;
pub mod config;
pub mod enrollment;
pub mod probe;
pub mod renewal;
pub mod sender;
pub mod spool;
pub mod tls;

use collect::{BasicTier, BatchBuilder, DetailedTier, ExtendedTier, Metric, Sources};
use config::AgentConfig;
use hcmon_proto::v1::HostFacts;
use probe::Probes;
use renewal::Renewal;
use sender::{NOT_ENROLLED, Sender, SenderTls, SenderWakers, collector_endpoint};
use spool::{ReaderId, Spool};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const SAMPLES: Metric = Metric::counter(
    "hcmon_agent_samples_total",
    "Samples of this node's own metrics this agent process has produced, this batch's included (applications' are in hcmon_agent_app_samples_total).",
);
const SPOOL_BATCHES: Metric = Metric::gauge(
    "hcmon_agent_spool_batches",
    "Batches waiting in the spool for an ack.",
);
const SPOOL_BYTES: Metric = Metric::gauge(
    "hcmon_agent_spool_bytes",
    "Bytes of batches waiting in the spool.",
);
const SPOOL_OLDEST_AGE: Metric = Metric::gauge(
    "hcmon_agent_spool_oldest_age_seconds",
    "Age of the oldest batch waiting in the spool (0 when it is empty).",
)
.with_decimals(3);
const SPOOL_BEHIND: Metric = Metric::gauge(
    "hcmon_agent_spool_unacked_batches",
    "Batches in the spool this collector has not acknowledged yet (with two collectors, an HA pair).",
);
const SPOOL_DROPPED_BATCHES: Metric = Metric::counter(
    "hcmon_agent_spool_dropped_batches_total",
    "Batches this agent process dropped, oldest first, to keep the spool under spool_max_bytes.",
);
const SPOOL_DROPPED_BYTES: Metric = Metric::counter(
    "hcmon_agent_spool_dropped_bytes_total",
    "Bytes of the batches dropped to keep the spool under spool_max_bytes.",
);
const RESIDENT: Metric = Metric::gauge(
    "hcmon_agent_resident_bytes",
    "Resident memory of the agent process.",
);
const CPU_SECONDS: Metric = Metric::counter(
    "hcmon_agent_cpu_seconds_total",
    "CPU time (user and system) the agent process has used.",
)
.with_decimals(2);

const CPU_WARM_UP_MS: i64 = 250;

/// The node name to use: the configured one, else the host name.
pub fn node_name(config: &AgentConfig) -> String {
    if !config.node_name.is_empty() {
        return config.node_name.clone();
    }
    sysinfo::System::host_name().unwrap_or_else(|_| "localhost".into())
}

fn host_facts() -> HostFacts {
    let memory = sysinfo::System::new()
        .map(|mut s| {
            s.refresh_memory();
            s.total_memory()
        })
        .unwrap_or(0);
    HostFacts {
        hostname: sysinfo::System::host_name().unwrap_or_default(),
        os_name: sysinfo::System::name().unwrap_or_default(),
        os_version: sysinfo::System::os_version().unwrap_or_default(),
        kernel_version: sysinfo::System::kernel_version().unwrap_or_default(),
        arch: sysinfo::System::cpu_arch(),
        cpu_count: std::thread::available_parallelism().map_or(0, |n| n.get() as u32),
        memory_total_bytes: memory,
        boot_time: sysinfo::System::boot_time().unwrap_or(0),
    }
}

/// When to collect next: the first multiple of the interval (in Unix ms) after `now`, and never
/// the same point twice. Collecting on this grid (as Netdata does) lines up every node's samples
/// for correlation, and makes consecutive timestamps differ by exactly one interval, which the
/// collector's chunk encoding stores in about one bit. Following the wall clock each time means a
/// clock step moves the grid instead of drifting from it, and a slow collection skips points
/// rather than bunching them.
pub(crate) fn next_collection(now_ms: i64, interval_ms: i64, last_ms: Option<i64>) -> i64 {
    let grid = (now_ms.div_euclid(interval_ms) + 1) * interval_ms;
    match last_ms {
        Some(last) => grid.max(last + interval_ms),
        None => grid,
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// What every tier shares: where batches go and how the sender is woken.
struct Output {
    spool: Arc<Mutex<Spool>>,
    new_batch: Arc<SenderWakers>,
    /// Each collector's URL and cursor, reported apart when there are two.
    readers: Vec<(String, ReaderId)>,
    samples_total: AtomicU64,
}

impl Output {
    fn spool(&self, batch: BatchBuilder) {
        let appended = spool::lock(&self.spool).append(&batch.finish());
        match appended {
            Ok(_) => self.new_batch.wake(),
            Err(error) => tracing::error!(%error, "cannot spool a batch; these samples are lost"),
        }
    }
}

/// One collection tier: collects into a batch on its own interval grid.
trait Tier {
    async fn collect(&mut self, at_ms: i64, output: &Output, out: &mut BatchBuilder);
}

struct Basic {
    tier: BasicTier,
    sources: Sources,
    apps: apps::AppFigures,
}

impl Tier for Basic {
    async fn collect(&mut self, _at_ms: i64, output: &Output, out: &mut BatchBuilder) {
        self.tier.collect(&mut self.sources, out);
        let stats = spool::lock(&output.spool).stats();
        out.push(SPOOL_BATCHES, &[], stats.batches as f64);
        out.push(SPOOL_BYTES, &[], stats.bytes as f64);
        let age = stats.oldest_ms.map_or(0, |t| (now_ms() - t).max(0));
        out.push(SPOOL_OLDEST_AGE, &[], age as f64 / 1000.0);
        if output.readers.len() > 1 {
            let spool = spool::lock(&output.spool);
            for (url, reader) in &output.readers {
                let behind = spool.pending_for(*reader) as f64;
                out.push(SPOOL_BEHIND, &[("collector", url)], behind);
            }
        }
        out.push(SPOOL_DROPPED_BATCHES, &[], stats.dropped_batches as f64);
        out.push(SPOOL_DROPPED_BYTES, &[], stats.dropped_bytes as f64);
        self.apps.push(out);
        if let Some((resident, cpu)) = own_usage() {
            out.push(RESIDENT, &[], resident);
            out.push(CPU_SECONDS, &[], cpu);
        }
        // `run_tier` adds this batch to the total once it is complete.
        let total = output.samples_total.load(Ordering::Relaxed) + out.len() as u64 + 1;
        out.push(SAMPLES, &[], total as f64);
    }
}

struct Detailed {
    tier: DetailedTier,
    sources: Sources,
}

impl Tier for Detailed {
    async fn collect(&mut self, _at_ms: i64, _output: &Output, out: &mut BatchBuilder) {
        self.tier.collect(&mut self.sources, out);
    }
}

struct Extended {
    tier: ExtendedTier,
    sources: Sources,
}

impl Tier for Extended {
    async fn collect(&mut self, _at_ms: i64, _output: &Output, out: &mut BatchBuilder) {
        self.tier.collect(&mut self.sources, out).await;
    }
}

impl Tier for Probes {
    async fn collect(&mut self, _at_ms: i64, _output: &Output, out: &mut BatchBuilder) {
        Probes::collect(self, out).await;
    }
}

/// Runs `tier` on the `interval` grid until `shutdown`, spooling one batch per collection.
async fn run_tier(
    mut tier: impl Tier,
    interval: Duration,
    output: &Output,
    shutdown: &CancellationToken,
) {
    let interval_ms = interval.as_millis().max(1) as i64;
    let mut last_ms = None;
    loop {
        let now = now_ms();
        // Usage figures are differences between readings at least this far apart.
        let warm_up = if last_ms.is_none() { CPU_WARM_UP_MS } else { 0 };
        let at = next_collection(now + warm_up, interval_ms, last_ms);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis((at - now) as u64)) => {}
            _ = shutdown.cancelled() => return,
        }
        last_ms = Some(at);
        let mut batch = BatchBuilder::new(at);
        tier.collect(at, output, &mut batch).await;
        if !batch.is_empty() {
            output
                .samples_total
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            output.spool(batch);
        }
    }
}

/// Starts the probes' schedule on a thread with its own single-threaded runtime; it ends
/// with `shutdown`.
fn spawn_probes(
    probes: Probes,
    interval: Duration,
    output: &Arc<Output>,
    shutdown: &CancellationToken,
) -> anyhow::Result<std::thread::JoinHandle<()>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (output, shutdown) = (output.clone(), shutdown.clone());
    Ok(std::thread::Builder::new()
        .name("probes".into())
        .spawn(move || runtime.block_on(run_tier(probes, interval, &output, &shutdown)))?)
}

/// This process's resident bytes and CPU seconds, from `/proc/self`.
fn own_usage() -> Option<(f64, f64)> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: f64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // Page size and USER_HZ are 4096 and 100 on every Linux ABI this agent is built for.
    Some((pages * 4096.0, ticks / 100.0))
}

/// Runs collection and delivery until `shutdown` is cancelled.
pub async fn run(config: AgentConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let node = node_name(&config);
    // The host name stands in when no node_name is configured: hold it to the collector's rule
    // here, or every registration would be refused and nothing would say why at start.
    if let Err(problem) = hcmon_proto::v1::check_node_name(&node) {
        anyhow::bail!(
            "this host's name {node:?} {problem}, so the collector would refuse it: set node_name in the config or --node-name"
        );
    }
    let spool = Spool::open(&config.spool_dir, config.spool_max_bytes)?;
    tracing::info!(
        %node,
        collector = %config.collector.join(", "),
        spool = %config.spool_dir.display(),
        pending = spool.stats().batches,
        interval = ?config.interval,
        detailed_interval = ?config.detailed_interval,
        extended_interval = ?config.extended_interval,
        "agent starting"
    );
    let tls = if config.uses_tls() {
        Some(tls_settings(&config)?)
    } else {
        None
    };
    let spool = Arc::new(Mutex::new(spool));
    // One sender per collector, each with its own cursor in the spool and its own wake-up.
    let mut wakers = SenderWakers::default();
    let mut senders = Vec::new();
    let mut tls_endpoints = Vec::new();
    for url in &config.collector {
        let endpoint = collector_endpoint(url)?;
        let tls = tls.clone().filter(|_| url.starts_with("https://"));
        if tls.is_some() {
            tls_endpoints.push(endpoint);
        }
        senders.push(Sender {
            collector_url: url.clone(),
            node_name: node.clone(),
            job: config.job.clone(),
            instance: config.instance.clone(),
            token: config.token.expose().to_owned(),
            host: host_facts(),
            reader: spool::lock(&spool).add_reader(),
            spool: spool.clone(),
            new_batch: wakers.add(),
            ship_delay: sender::ship_delay(&node, config.interval),
            shutdown: shutdown.clone(),
            tls,
        });
    }
    let readers = senders
        .iter()
        .map(|sender| (sender.collector_url.clone(), sender.reader))
        .collect();
    let output = Arc::new(Output {
        spool,
        readers,
        new_batch: Arc::new(wakers),
        samples_total: AtomicU64::new(0),
    });
    let renewal = tls.as_ref().map(|tls| {
        tokio::spawn(
            Renewal {
                endpoints: tls_endpoints,
                identity_dir: tls.identity_dir.clone(),
                ca_file: tls.ca_file.clone(),
                enrolled: tls.enrolled.clone(),
                shutdown: shutdown.clone(),
            }
            .run(),
        )
    });
    let deliveries: Vec<_> = senders
        .into_iter()
        .map(|sender| tokio::spawn(sender.run()))
        .collect();
    let app_sink = apps::Sink {
        spool: output.spool.clone(),
        new_batch: output.new_batch.clone(),
        samples: Default::default(),
    };
    let (app_tasks, app_figures) = apps::start(&config.apps, app_sink, &shutdown).await;

    let root = Path::new("/");
    let basic = Basic {
        tier: BasicTier::new(root)?,
        sources: Sources::default(),
        apps: app_figures,
    };
    let detailed = Detailed {
        tier: DetailedTier::new(root)?,
        sources: Sources::default(),
    };
    let extended = Extended {
        tier: ExtendedTier::new(root)?,
        sources: Sources::default(),
    };
    let probes = Probes::new(&config.probes);
    // The probes run on a thread of their own: a tier's collection reads /proc and sysinfo
    // without yielding, and a probe run due meanwhile would be skipped. A skipped run is a
    // missing event in an SLO's availability, and the skips fall wherever collection is slow,
    // not evenly between good and bad runs.
    let probe_thread = match probes.is_empty() {
        true => None,
        false => Some(spawn_probes(
            probes,
            config.probe_interval,
            &output,
            &shutdown,
        )?),
    };
    // One task, interleaved: the tiers only wait on timers, so they need no thread each.
    tokio::join!(
        run_tier(basic, config.interval, &output, &shutdown),
        run_tier(detailed, config.detailed_interval, &output, &shutdown),
        run_tier(extended, config.extended_interval, &output, &shutdown),
    );
    if let Some(thread) = probe_thread
        && tokio::task::spawn_blocking(move || thread.join())
            .await
            .is_ok_and(|joined| joined.is_err())
    {
        tracing::error!("the probes' thread panicked");
    }
    for task in app_tasks {
        if let Err(error) = task.await {
            tracing::error!(%error, "an application listener's task failed");
        }
    }
    for delivery in deliveries {
        delivery.await?;
    }
    if let Some(renewal) = renewal {
        renewal.await?;
    }
    Ok(())
}

/// The sender's TLS settings; refuses to start a node that has no certificate and no token to
/// get one, as it could never connect.
fn tls_settings(config: &AgentConfig) -> anyhow::Result<SenderTls> {
    let identity = tls::Identity::load(&config.identity_dir)?;
    let token = config.enrollment_token()?;
    match (&identity, &token) {
        (None, None) => anyhow::bail!("{NOT_ENROLLED}"),
        (Some(identity), Some(_)) => tracing::info!(
            node = %identity.node_name,
            identity_dir = %config.identity_dir.display(),
            "this node is already enrolled; the enrollment token is not needed and is ignored"
        ),
        _ => {}
    }
    Ok(SenderTls {
        identity_dir: config.identity_dir.clone(),
        ca_file: config.ca_file.clone(),
        enroll_token: token,
        enrolled: Arc::new(Notify::new()),
        enrolling: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::next_collection;

    #[test]
    fn collects_on_the_interval_grid_without_repeats() {
        assert_eq!(next_collection(12_345, 10_000, None), 20_000);
        assert_eq!(next_collection(20_000, 10_000, None), 30_000);
        // Woke a hair early by the wall clock: still the next point, not the same one again.
        assert_eq!(next_collection(19_999, 10_000, Some(20_000)), 30_000);
        // A slow collection skips grid points instead of bunching.
        assert_eq!(next_collection(47_000, 10_000, Some(20_000)), 50_000);
        assert_eq!(next_collection(-1, 1_000, None), 0);
    }
}

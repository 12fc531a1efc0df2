//! The hcmon agent: collects host metrics on a fixed interval, spools every batch to disk, and
//! streams the spool to a collector.
//!
//! Architecture invariant: the agent never blocks collection on the network. The collection
//! loop only appends to the spool; the sender drains it independently.

pub mod collect;
pub mod config;
pub mod sender;
pub mod spool;

use collect::{BasicTier, BatchBuilder, Metric};
use config::AgentConfig;
use hcmon_proto::v1::HostFacts;
use sender::Sender;
use spool::Spool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

const SAMPLES: Metric = Metric::counter(
    "hcmon_agent_samples_total",
    "Samples this agent process has produced, this batch's included.",
);
const SPOOL_BATCHES: Metric = Metric::gauge(
    "hcmon_agent_spool_batches",
    "Batches waiting in the spool for an ack.",
);
const SPOOL_BYTES: Metric = Metric::gauge(
    "hcmon_agent_spool_bytes",
    "Bytes of batches waiting in the spool.",
);

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
fn next_collection(now_ms: i64, interval_ms: i64, last_ms: Option<i64>) -> i64 {
    let grid = (now_ms.div_euclid(interval_ms) + 1) * interval_ms;
    match last_ms {
        Some(last) => grid.max(last + interval_ms),
        None => grid,
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Runs collection and delivery until `shutdown` is cancelled.
pub async fn run(config: AgentConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let node = node_name(&config);
    let spool = Spool::open(&config.spool_dir)?;
    tracing::info!(
        %node,
        collector = %config.collector,
        spool = %config.spool_dir.display(),
        pending = spool.stats().batches,
        interval = ?config.interval,
        "agent starting"
    );
    let spool = Arc::new(Mutex::new(spool));
    let new_batch = Arc::new(Notify::new());
    let sender = Sender {
        collector_url: config.collector.clone(),
        node_name: node,
        token: config.token.clone(),
        host: host_facts(),
        spool: spool.clone(),
        new_batch: new_batch.clone(),
        shutdown: shutdown.clone(),
    };
    let delivery = tokio::spawn(sender.run());

    let mut basic = BasicTier::new()?;
    let interval_ms = config.interval.as_millis().max(1) as i64;
    let mut last_ms = None;
    let mut samples_total: u64 = 0;
    loop {
        let now = now_ms();
        // CPU usage is a difference between readings at least this far apart.
        let warm_up = if last_ms.is_none() { CPU_WARM_UP_MS } else { 0 };
        let at = next_collection(now + warm_up, interval_ms, last_ms);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis((at - now) as u64)) => {}
            _ = shutdown.cancelled() => break,
        }
        last_ms = Some(at);
        let mut batch = BatchBuilder::new(at);
        basic.collect(&mut batch);
        let stats = spool::lock(&spool).stats();
        batch.push(SPOOL_BATCHES, &[], stats.batches as f64);
        batch.push(SPOOL_BYTES, &[], stats.bytes as f64);
        samples_total += batch.len() as u64 + 1;
        batch.push(SAMPLES, &[], samples_total as f64);
        let appended = spool::lock(&spool).append(&batch.finish());
        match appended {
            Ok(_) => new_batch.notify_one(),
            Err(error) => tracing::error!(%error, "cannot spool a batch; these samples are lost"),
        }
    }
    delivery.await?;
    Ok(())
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

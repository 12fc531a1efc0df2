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
use tokio::time::MissedTickBehavior;
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
    // CPU usage needs two readings at least this far apart.
    tokio::time::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL.max(Duration::from_millis(200))).await;
    let mut ticker = tokio::time::interval(config.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut samples_total: u64 = 0;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.cancelled() => break,
        }
        let mut batch = BatchBuilder::new(now_ms());
        basic.collect(&mut batch);
        let stats = spool.lock().unwrap_or_else(|p| p.into_inner()).stats();
        batch.push(SPOOL_BATCHES, &[], stats.batches as f64);
        batch.push(SPOOL_BYTES, &[], stats.bytes as f64);
        samples_total += batch.len() as u64 + 1;
        batch.push(SAMPLES, &[], samples_total as f64);
        let appended = spool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .append(&batch.finish());
        match appended {
            Ok(_) => new_batch.notify_one(),
            Err(error) => tracing::error!(%error, "cannot spool a batch; these samples are lost"),
        }
    }
    delivery.await?;
    Ok(())
}

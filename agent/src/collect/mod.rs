//! Host metric collection: one module per resource, all feeding one [`BatchBuilder`] that stamps
//! the node-local timestamp once per collection.
//!
//! Naming: where node_exporter reports the same figure, the agent uses its metric name, unit,
//! label names and label value formats (`node_cpu_seconds_total{cpu="0",mode="user"}`,
//! `node_filesystem_avail_bytes{device,fstype,mountpoint}`, ...), so dashboards and alert rules
//! written for node_exporter work unchanged. hcmon's own figures (ratios, process groups,
//! batteries, spool state) have names node_exporter does not use: no name means two things.

mod cpu;
mod detailed;
mod disk;
mod extended;
mod memory;
mod network;
mod pressure;
mod procfs;
mod sensors;

pub use detailed::DetailedTier;
pub use extended::ExtendedTier;

use crate::spool::SpoolRecord;
use hcmon_proto::v1::{Label, MetricKind, SeriesDef, SeriesSamples};
use std::collections::BTreeMap;
use sysinfo::{Disks, Networks, System};

const SOURCE_AVAILABLE: Metric = Metric::gauge(
    "hcmon_agent_source_available",
    "1 when a collection source (systemd, sensors, battery, ...) exists on this node, 0 when not.",
);

/// Which collection sources exist on this node. A missing source (no systemd in a container, no
/// battery on a server) is logged once when first found missing and reported as
/// `hcmon_agent_source_available 0`, never as an error every interval, and never with made-up
/// values.
#[derive(Default)]
pub struct Sources {
    available: BTreeMap<&'static str, bool>,
}

impl Sources {
    pub fn available(&mut self, source: &'static str, out: &mut BatchBuilder) {
        if self.available.insert(source, true) == Some(false) {
            tracing::info!(source, "collection source is available again");
        }
        out.push(SOURCE_AVAILABLE, &[("source", source)], 1.0);
    }

    pub fn unavailable(&mut self, source: &'static str, why: &str, out: &mut BatchBuilder) {
        if self.available.insert(source, false) != Some(false) {
            tracing::info!(
                source,
                why,
                "collection source not available on this node; skipped"
            );
        }
        out.push(SOURCE_AVAILABLE, &[("source", source)], 0.0);
    }
}

/// A metric's name, kind and help, declared once next to the code that collects it.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    pub name: &'static str,
    pub kind: MetricKind,
    pub help: &'static str,
    /// Decimal places kept, for values computed by division whose long binary fractions carry
    /// no information but cost storage (a ratio to 1 ppm is far below measurement noise).
    pub decimals: Option<i32>,
}

impl Metric {
    pub const fn gauge(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            kind: MetricKind::Gauge,
            help,
            decimals: None,
        }
    }

    pub const fn counter(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            kind: MetricKind::Counter,
            help,
            decimals: None,
        }
    }

    /// A gauge in 0..1, kept to 6 decimal places.
    pub const fn ratio(name: &'static str, help: &'static str) -> Self {
        Self {
            name,
            kind: MetricKind::Gauge,
            help,
            decimals: Some(6),
        }
    }

    /// Keeps `decimals` places instead of the default.
    pub const fn with_decimals(self, decimals: i32) -> Self {
        Self {
            decimals: Some(decimals),
            ..self
        }
    }
}

/// Collects one batch: every sample gets the same timestamp.
pub struct BatchBuilder {
    timestamp_ms: i64,
    record: SpoolRecord,
}

impl BatchBuilder {
    pub fn new(timestamp_ms: i64) -> Self {
        Self {
            timestamp_ms,
            record: SpoolRecord::default(),
        }
    }

    /// Adds one sample. Non-finite values are dropped: a missing reading is absent, not NaN.
    pub fn push(&mut self, metric: Metric, labels: &[(&str, &str)], value: f64) {
        if !value.is_finite() {
            return;
        }
        let value = match metric.decimals {
            Some(places) => {
                let scale = 10f64.powi(places);
                (value * scale).round() / scale
            }
            None => value,
        };
        let id = self.record.series.len() as u32;
        self.record.series.push(SeriesDef {
            id,
            name: metric.name.to_owned(),
            labels: labels
                .iter()
                .map(|(name, value)| Label {
                    name: (*name).to_owned(),
                    value: (*value).to_owned(),
                })
                .collect(),
            kind: metric.kind as i32,
            help: metric.help.to_owned(),
        });
        self.record.samples.push(SeriesSamples {
            series_id: id,
            timestamps_ms: vec![self.timestamp_ms],
            values: vec![value],
        });
    }

    /// Samples added so far.
    pub fn len(&self) -> usize {
        self.record.samples.len()
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.record.samples.is_empty()
    }

    pub fn finish(self) -> SpoolRecord {
        self.record
    }
}

/// The basic tier: CPU, load, memory and swap, pressure, filesystems, network interfaces.
pub struct BasicTier {
    /// Where `/proc` and `/sys` are found: `/` except in tests.
    root: std::path::PathBuf,
    system: System,
    disks: Disks,
    networks: Networks,
}

impl BasicTier {
    pub fn new(root: &std::path::Path) -> Result<Self, sysinfo::Error> {
        let mut system = System::new()?;
        // CPU usage is a difference between two refreshes; this is the first.
        system.refresh_cpu_usage();
        Ok(Self {
            root: root.to_owned(),
            system,
            disks: Disks::new_with_refreshed_list()?,
            networks: Networks::new_with_refreshed_list()?,
        })
    }

    pub fn collect(&mut self, sources: &mut Sources, out: &mut BatchBuilder) {
        cpu::collect(&mut self.system, out);
        memory::collect(&self.root.join("proc"), sources, out);
        pressure::collect(&self.root.join("proc"), sources, out);
        disk::collect(&mut self.disks, out);
        network::collect(&mut self.networks, &self.root.join("sys"), sources, out);
    }
}

#[cfg(test)]
mod names_tests;

#[cfg(test)]
pub mod test_support {
    use crate::spool::SpoolRecord;

    /// The value of the first series named `name` that has every label in `labels`.
    pub fn value(record: &SpoolRecord, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let def = record.series.iter().find(|d| {
            d.name == name
                && labels
                    .iter()
                    .all(|(n, v)| d.labels.iter().any(|l| l.name == *n && l.value == *v))
        })?;
        record
            .samples
            .iter()
            .find(|s| s.series_id == def.id)
            .and_then(|s| s.values.first().copied())
    }
}

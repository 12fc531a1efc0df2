//! Host metric collection: one module per resource, all feeding one [`BatchBuilder`] that stamps
//! the node-local timestamp once per collection.

mod cpu;
mod disk;
mod memory;
mod network;

use crate::spool::SpoolRecord;
use hcmon_proto::v1::{Label, MetricKind, SeriesDef, SeriesSamples};
use sysinfo::{Disks, Networks, System};

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

/// The basic tier: CPU, load, memory and swap, filesystems, network interfaces.
pub struct BasicTier {
    system: System,
    disks: Disks,
    networks: Networks,
}

impl BasicTier {
    pub fn new() -> Result<Self, sysinfo::Error> {
        let mut system = System::new()?;
        // CPU usage is a difference between two refreshes; this is the first.
        system.refresh_cpu_usage();
        Ok(Self {
            system,
            disks: Disks::new_with_refreshed_list()?,
            networks: Networks::new_with_refreshed_list()?,
        })
    }

    pub fn collect(&mut self, out: &mut BatchBuilder) {
        cpu::collect(&mut self.system, out);
        memory::collect(&mut self.system, out);
        disk::collect(&mut self.disks, out);
        network::collect(&mut self.networks, out);
    }
}

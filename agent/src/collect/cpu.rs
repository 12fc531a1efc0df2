//! CPU usage (total and per core), frequency, and load average.

use super::{BatchBuilder, Metric};
use sysinfo::System;

// sysinfo reports f32 percentages: 4 decimal places of a ratio is their real resolution.
const USAGE: Metric = Metric::ratio(
    "node_cpu_usage_ratio",
    "Share of time all CPUs were busy since the last collection (0..1).",
)
.with_decimals(4);
const CORE_USAGE: Metric = Metric::ratio(
    "node_cpu_core_usage_ratio",
    "Share of time one CPU core was busy since the last collection (0..1).",
)
.with_decimals(4);
// sysinfo reads cpufreq's `scaling_cur_freq`, which node_exporter reports under this name.
const CORE_FREQUENCY: Metric = Metric::gauge(
    "node_cpu_scaling_frequency_hertz",
    "Current scaled CPU thread frequency in hertz.",
);
const CORES: Metric = Metric::gauge("node_cpu_cores", "Number of logical CPU cores.");
const LOAD1: Metric = Metric::gauge("node_load1", "Load average over 1 minute.");
const LOAD5: Metric = Metric::gauge("node_load5", "Load average over 5 minutes.");
const LOAD15: Metric = Metric::gauge("node_load15", "Load average over 15 minutes.");

pub fn collect(system: &mut System, out: &mut BatchBuilder) {
    system.refresh_cpu_usage();
    system.refresh_cpu_frequency();
    out.push(USAGE, &[], f64::from(system.global_cpu_usage()) / 100.0);
    out.push(CORES, &[], system.cpus().len() as f64);
    for (index, cpu) in system.cpus().iter().enumerate() {
        let core = index.to_string();
        out.push(
            CORE_USAGE,
            &[("cpu", &core)],
            f64::from(cpu.usage()) / 100.0,
        );
        if cpu.frequency() > 0 {
            out.push(
                CORE_FREQUENCY,
                &[("cpu", &core)],
                cpu.frequency() as f64 * 1e6,
            );
        }
    }
    if let Ok(load) = System::load_average() {
        out.push(LOAD1, &[], load.one);
        out.push(LOAD5, &[], load.five);
        out.push(LOAD15, &[], load.fifteen);
    }
}

//! Memory and swap.

use super::{BatchBuilder, Metric};
use sysinfo::System;

const TOTAL: Metric = Metric::gauge("node_memory_total_bytes", "Physical memory installed.");
const USED: Metric = Metric::gauge(
    "node_memory_used_bytes",
    "Physical memory in use (total minus available).",
);
const AVAILABLE: Metric = Metric::gauge(
    "node_memory_available_bytes",
    "Memory available to new processes without swapping.",
);
const USED_RATIO: Metric = Metric::ratio(
    "node_memory_used_ratio",
    "Share of physical memory in use (0..1).",
);
const SWAP_TOTAL: Metric = Metric::gauge("node_swap_total_bytes", "Swap space configured.");
const SWAP_USED: Metric = Metric::gauge("node_swap_used_bytes", "Swap space in use.");

pub fn collect(system: &mut System, out: &mut BatchBuilder) {
    system.refresh_memory();
    let total = system.total_memory() as f64;
    let available = system.available_memory() as f64;
    out.push(TOTAL, &[], total);
    out.push(AVAILABLE, &[], available);
    out.push(USED, &[], total - available);
    if total > 0.0 {
        out.push(USED_RATIO, &[], (total - available) / total);
    }
    out.push(SWAP_TOTAL, &[], system.total_swap() as f64);
    out.push(SWAP_USED, &[], system.used_swap() as f64);
}

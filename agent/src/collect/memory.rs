//! Memory and swap, from `/proc/meminfo` under node_exporter's names (`node_memory_<field>_bytes`),
//! and the used figures and ratio hcmon derives from them.

use super::procfs::{self, MEMINFO_FIELDS};
use super::{BatchBuilder, Metric, Sources};
use std::path::Path;

/// node_exporter's names for [`MEMINFO_FIELDS`], in the same order.
const FIELDS: [Metric; 8] = [
    Metric::gauge(
        "node_memory_MemTotal_bytes",
        "Memory information field MemTotal_bytes.",
    ),
    Metric::gauge(
        "node_memory_MemFree_bytes",
        "Memory information field MemFree_bytes.",
    ),
    Metric::gauge(
        "node_memory_MemAvailable_bytes",
        "Memory information field MemAvailable_bytes.",
    ),
    Metric::gauge(
        "node_memory_Buffers_bytes",
        "Memory information field Buffers_bytes.",
    ),
    Metric::gauge(
        "node_memory_Cached_bytes",
        "Memory information field Cached_bytes.",
    ),
    Metric::gauge(
        "node_memory_SReclaimable_bytes",
        "Memory information field SReclaimable_bytes.",
    ),
    Metric::gauge(
        "node_memory_SwapTotal_bytes",
        "Memory information field SwapTotal_bytes.",
    ),
    Metric::gauge(
        "node_memory_SwapFree_bytes",
        "Memory information field SwapFree_bytes.",
    ),
];
const USED: Metric = Metric::gauge(
    "node_memory_used_bytes",
    "Physical memory in use: MemTotal minus MemAvailable.",
);
const USED_RATIO: Metric = Metric::ratio(
    "node_memory_used_ratio",
    "Share of physical memory in use (0..1): 1 - MemAvailable / MemTotal.",
);
const SWAP_USED: Metric = Metric::gauge(
    "node_swap_used_bytes",
    "Swap space in use: SwapTotal minus SwapFree.",
);

pub fn collect(proc: &Path, sources: &mut Sources, out: &mut BatchBuilder) {
    let text = match std::fs::read_to_string(proc.join("meminfo")) {
        Ok(text) => text,
        Err(e) => return sources.unavailable("meminfo", &e.to_string(), out),
    };
    sources.available("meminfo", out);
    let fields = procfs::parse_meminfo(&text);
    for (name, bytes) in &fields {
        if let Some(i) = MEMINFO_FIELDS.iter().position(|f| f == name) {
            out.push(FIELDS[i], &[], *bytes);
        }
    }
    let field = |name: &str| fields.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
    if let (Some(total), Some(available)) = (field("MemTotal"), field("MemAvailable")) {
        out.push(USED, &[], total - available);
        if total > 0.0 {
            out.push(USED_RATIO, &[], (total - available) / total);
        }
    }
    if let (Some(total), Some(free)) = (field("SwapTotal"), field("SwapFree")) {
        out.push(SWAP_USED, &[], total - free);
    }
}

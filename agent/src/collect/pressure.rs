//! Pressure stall information (`/proc/pressure`, Linux 4.20 and later with PSI enabled), as
//! node_exporter's pressure collector reports it.

use super::procfs;
use super::{BatchBuilder, Metric, Sources};
use std::path::Path;

/// Per resource: the counter of time some task waited, and of time all were stalled (`None`
/// where node_exporter reports none: CPU has no "stalled" figure there). The kernel counts in
/// microseconds; milliseconds are far finer than any rate taken of them, and cheaper to store.
const RESOURCES: [(&str, Metric, Option<Metric>); 3] = [
    (
        "cpu",
        Metric::counter(
            "node_pressure_cpu_waiting_seconds_total",
            "Total time in seconds that processes have waited for CPU time.",
        )
        .with_decimals(3),
        None,
    ),
    (
        "memory",
        Metric::counter(
            "node_pressure_memory_waiting_seconds_total",
            "Total time in seconds that processes have waited for memory.",
        )
        .with_decimals(3),
        Some(
            Metric::counter(
                "node_pressure_memory_stalled_seconds_total",
                "Total time in seconds no process could make progress due to memory congestion.",
            )
            .with_decimals(3),
        ),
    ),
    (
        "io",
        Metric::counter(
            "node_pressure_io_waiting_seconds_total",
            "Total time in seconds that processes have waited due to IO congestion.",
        )
        .with_decimals(3),
        Some(
            Metric::counter(
                "node_pressure_io_stalled_seconds_total",
                "Total time in seconds no process could make progress due to IO congestion.",
            )
            .with_decimals(3),
        ),
    ),
];

pub fn collect(proc: &Path, sources: &mut Sources, out: &mut BatchBuilder) {
    let mut found = false;
    for (resource, waiting, stalled) in RESOURCES {
        let Some(pressure) = std::fs::read_to_string(proc.join("pressure").join(resource))
            .ok()
            .and_then(|text| procfs::parse_pressure(&text))
        else {
            continue;
        };
        found = true;
        out.push(waiting, &[], pressure.some_seconds);
        if let (Some(stalled), Some(seconds)) = (stalled, pressure.full_seconds) {
            out.push(stalled, &[], seconds);
        }
    }
    if found {
        sources.available("pressure", out);
    } else {
        sources.unavailable("pressure", "no /proc/pressure (kernel without PSI)", out);
    }
}

//! The agent's series as node_exporter names them: one collection of every tier on this machine,
//! checked family by family for node_exporter's metric name, label names and value formats.

use super::{BasicTier, BatchBuilder, DetailedTier, ExtendedTier, Sources};
use crate::spool::SpoolRecord;
use std::collections::BTreeSet;
use std::path::Path;

/// Every tier's series from one collection on this machine. The basic tier runs twice, as its
/// CPU usage is a difference between two readings.
async fn collect_all() -> SpoolRecord {
    let root = Path::new("/");
    let mut sources = Sources::default();
    let mut out = BatchBuilder::new(1_000);
    BasicTier::new(root)
        .unwrap()
        .collect(&mut sources, &mut out);
    DetailedTier::new(root)
        .unwrap()
        .collect(&mut sources, &mut out);
    ExtendedTier::new(root)
        .unwrap()
        .collect(&mut sources, &mut out)
        .await;
    out.finish()
}

/// The label sets of the series named `name`, each as (label, value) pairs in name order.
fn label_sets(record: &SpoolRecord, name: &str) -> Vec<Vec<(String, String)>> {
    record
        .series
        .iter()
        .filter(|d| d.name == name)
        .map(|d| {
            let mut labels: Vec<(String, String)> = d
                .labels
                .iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect();
            labels.sort();
            labels
        })
        .collect()
}

/// Asserts that `name` is reported, and that each of its series has exactly the label names
/// `labels` (sorted).
fn check(record: &SpoolRecord, name: &str, labels: &[&str]) -> Vec<Vec<(String, String)>> {
    let sets = label_sets(record, name);
    assert!(!sets.is_empty(), "{name} is missing");
    for set in &sets {
        let names: Vec<&str> = set.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, labels, "{name}: {set:?}");
    }
    sets
}

fn values<'a>(sets: &'a [Vec<(String, String)>], label: &str) -> BTreeSet<&'a str> {
    sets.iter()
        .flatten()
        .filter(|(n, _)| n == label)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[tokio::test]
async fn the_main_families_carry_node_exporters_names_and_labels() {
    let record = collect_all().await;

    // CPU time per CPU ("0", "1", ...) and mode, as node_exporter has it; no all-CPU series.
    let cpu = check(&record, "node_cpu_seconds_total", &["cpu", "mode"]);
    let cpus = values(&cpu, "cpu");
    assert!(cpus.iter().all(|c| c.parse::<u32>().is_ok()), "{cpus:?}");
    assert!(cpus.contains("0"), "{cpus:?}");
    let modes = values(&cpu, "mode");
    for mode in [
        "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
    ] {
        assert!(modes.contains(mode), "mode {mode}: {modes:?}");
    }
    assert_eq!(cpu.len(), cpus.len() * modes.len());

    let unlabelled = [
        "node_memory_MemTotal_bytes",
        "node_memory_MemFree_bytes",
        "node_memory_MemAvailable_bytes",
        "node_memory_Buffers_bytes",
        "node_memory_Cached_bytes",
        "node_memory_SwapTotal_bytes",
        "node_memory_SwapFree_bytes",
        "node_load1",
        "node_load5",
        "node_load15",
        "node_boot_time_seconds",
        "node_time_seconds",
        "node_context_switches_total",
        "node_forks_total",
        "node_intr_total",
        "node_procs_running",
        "node_procs_blocked",
        "node_processes_pids",
        "node_filefd_allocated",
        "node_filefd_maximum",
    ];
    for name in unlabelled {
        check(&record, name, &[]);
    }
    if Path::new("/proc/pressure/cpu").exists() {
        for name in [
            "node_pressure_cpu_waiting_seconds_total",
            "node_pressure_memory_waiting_seconds_total",
            "node_pressure_memory_stalled_seconds_total",
            "node_pressure_io_waiting_seconds_total",
            "node_pressure_io_stalled_seconds_total",
        ] {
            check(&record, name, &[]);
        }
    }

    let uname = check(
        &record,
        "node_uname_info",
        &[
            "domainname",
            "machine",
            "nodename",
            "release",
            "sysname",
            "version",
        ],
    );
    assert_eq!(values(&uname, "sysname"), BTreeSet::from(["Linux"]));

    let filesystem = ["device", "fstype", "mountpoint"];
    for name in [
        "node_filesystem_size_bytes",
        "node_filesystem_avail_bytes",
        "node_filesystem_free_bytes",
        "node_filesystem_files",
        "node_filesystem_files_free",
        "node_filesystem_readonly",
    ] {
        let sets = check(&record, name, &filesystem);
        assert!(
            values(&sets, "mountpoint").contains("/"),
            "{name}: {sets:?}"
        );
    }

    for name in [
        "node_network_receive_bytes_total",
        "node_network_transmit_bytes_total",
        "node_network_receive_packets_total",
        "node_network_transmit_packets_total",
        "node_network_receive_errs_total",
        "node_network_transmit_errs_total",
        "node_network_up",
    ] {
        check(&record, name, &["device"]);
    }
    let up = label_sets(&record, "node_network_up");
    assert!(values(&up, "device").contains("lo"), "{up:?}");

    if !label_sets(&record, "node_disk_io_now").is_empty() {
        for name in [
            "node_disk_reads_completed_total",
            "node_disk_writes_completed_total",
            "node_disk_read_bytes_total",
            "node_disk_written_bytes_total",
            "node_disk_read_time_seconds_total",
            "node_disk_write_time_seconds_total",
            "node_disk_io_time_seconds_total",
        ] {
            check(&record, name, &["device"]);
        }
    }

    // node_exporter's state letters, not words.
    let states = check(&record, "node_processes_state", &["state"]);
    assert!(
        values(&states, "state").iter().all(|s| s.len() == 1),
        "{states:?}"
    );
    let tcp = check(&record, "node_tcp_connection_states", &["state"]);
    assert!(values(&tcp, "state").contains("established"), "{tcp:?}");

    // Old names that node_exporter-named series replaced are gone.
    for old in [
        "node_memory_total_bytes",
        "node_memory_available_bytes",
        "node_swap_total_bytes",
        "node_network_receive_errors_total",
        "node_cpu_frequency_hertz",
        "node_processes",
        "node_tcp_connections",
        "node_top_process_cpu_ratio",
        "node_top_process_resident_bytes",
    ] {
        assert!(label_sets(&record, old).is_empty(), "{old} is still sent");
    }
    // No series of any family uses the labels node_exporter calls otherwise.
    for def in &record.series {
        for label in &def.labels {
            assert!(
                !["mount", "interface", "pid"].contains(&label.name.as_str()),
                "{} has label {}",
                def.name,
                label.name
            );
        }
    }
}

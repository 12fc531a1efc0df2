//! The extended tier (every 5 min by default): the top process names by CPU and by memory,
//! process counts by state, open file handles, systemd units, and hardware sensors.
//!
//! Top processes are grouped by name, as process-exporter's `groupname`: a series per PID would
//! start a new series for every short-lived process that ever reached the top, without bound.
//! Summing per name keeps the series to the names that ever reach the top lists.

use super::{BatchBuilder, Metric, Sources, procfs, sensors};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;
use sysinfo::{ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, System};

/// How many process names each top list (by CPU, by memory) holds.
const TOP: usize = 10;
/// A `systemctl` call that takes longer is abandoned for this round.
const SYSTEMCTL_TIMEOUT: Duration = Duration::from_secs(10);

const GROUP_CPU: Metric = Metric::ratio(
    "node_process_group_cpu_ratio",
    "CPU used since the last collection by all processes of one name (groupname), as a share of \
     the whole node (0..1). Sent only for the 10 names using the most CPU and the 10 using the \
     most resident memory at each collection.",
)
.with_decimals(5);
const GROUP_RSS: Metric = Metric::gauge(
    "node_process_group_resident_bytes",
    "Resident memory of all processes of one name (groupname), summed. Sent only for the 10 \
     names using the most CPU and the 10 using the most resident memory at each collection.",
);
const PROCESS_STATES: Metric = Metric::gauge(
    "node_processes_state",
    "Number of processes in each state (the state letter of /proc/<pid>/stat).",
);
const FILE_HANDLES: Metric = Metric::gauge(
    "node_filefd_allocated",
    "File handles the kernel has allocated (open files system-wide).",
);
const FILE_HANDLES_MAX: Metric = Metric::gauge(
    "node_filefd_maximum",
    "Most file handles the kernel will allocate.",
);
const SYSTEMD_UNITS: Metric = Metric::gauge(
    "node_systemd_units",
    "Summary of systemd unit states: loaded units (but automounts, devices, mounts, scopes and \
     slices, as node_exporter) in each active state.",
);
const SYSTEMD_FAILED: Metric = Metric::gauge(
    "node_systemd_unit_failed",
    "1 for each systemd unit (of the kinds node_systemd_units counts) in the failed state.",
);
const SYSTEMD_RESTARTS: Metric = Metric::counter(
    "node_systemd_service_restart_total",
    "Service unit count of Restart triggers (NRestarts).",
);

const UNIT_STATES: [&str; 5] = ["active", "inactive", "failed", "activating", "deactivating"];
/// Unit kinds node_exporter's systemd collector leaves out by default: many, and rarely failing.
const UNCOUNTED_UNITS: [&str; 5] = [".automount", ".device", ".mount", ".scope", ".slice"];

pub struct ExtendedTier {
    root: PathBuf,
    system: System,
}

impl ExtendedTier {
    pub fn new(root: &Path) -> Result<Self, sysinfo::Error> {
        let mut tier = Self {
            root: root.to_owned(),
            system: System::new()?,
        };
        // CPU use is a difference between two readings: this is the first.
        tier.refresh_processes();
        Ok(tier)
    }

    fn refresh_processes(&mut self) {
        let kind = ProcessRefreshKind::nothing().with_cpu().with_memory();
        self.system
            .refresh_processes_specifics(ProcessesToUpdate::All, true, kind);
    }

    pub async fn collect(&mut self, sources: &mut Sources, out: &mut BatchBuilder) {
        self.collect_processes(out);
        match std::fs::read_to_string(self.root.join("proc/sys/fs/file-nr"))
            .ok()
            .and_then(|t| procfs::parse_file_nr(&t))
        {
            Some((allocated, max)) => {
                out.push(FILE_HANDLES, &[], allocated as f64);
                out.push(FILE_HANDLES_MAX, &[], max as f64);
            }
            None => sources.unavailable("file_handles", "no /proc/sys/fs/file-nr", out),
        }
        self.collect_systemd(sources, out).await;
        let sys = self.root.join("sys");
        sensors::collect_hwmon(&sys, sources, out);
        sensors::collect_batteries(&sys, sources, out);
    }

    fn collect_processes(&mut self, out: &mut BatchBuilder) {
        self.refresh_processes();
        let cores = self.system.cpus().len().max(1) as f64;
        let cores = if cores > 1.0 {
            cores
        } else {
            std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64)
        };
        // Threads are listed as processes by sysinfo on Linux; they are counted with their
        // process, not on their own.
        let processes: Vec<&sysinfo::Process> = self
            .system
            .processes()
            .values()
            .filter(|p| p.thread_kind().is_none())
            .collect();
        let mut states: BTreeMap<&str, u64> = BTreeMap::new();
        for p in &processes {
            *states.entry(state_letter(p.status())).or_default() += 1;
        }
        for (state, count) in states {
            out.push(PROCESS_STATES, &[("state", state)], count as f64);
        }

        let figures = processes.iter().map(|p| Figures {
            name: p.name().to_string_lossy().into_owned(),
            cpu_percent: f64::from(p.cpu_usage()),
            resident: p.memory(),
        });
        for group in top_groups(figures, TOP) {
            let labels = [("groupname", group.name.as_str())];
            out.push(GROUP_CPU, &labels, group.cpu_percent / 100.0 / cores);
            out.push(GROUP_RSS, &labels, group.resident as f64);
        }
    }

    async fn collect_systemd(&self, sources: &mut Sources, out: &mut BatchBuilder) {
        // The documented way to tell that systemd is the running init (sd_booted(3)).
        if !self.root.join("run/systemd/system").is_dir() {
            sources.unavailable("systemd", "systemd is not the init system here", out);
            return;
        }
        let list = systemctl(&[
            "list-units",
            "--all",
            "--no-legend",
            "--plain",
            "--no-pager",
        ])
        .await;
        let units = match list {
            Ok(text) => {
                let mut units = parse_list_units(&text);
                units.retain(|u| !UNCOUNTED_UNITS.iter().any(|kind| u.name.ends_with(kind)));
                units
            }
            Err(why) => {
                sources.unavailable("systemd", &why, out);
                return;
            }
        };
        sources.available("systemd", out);
        let mut counts: BTreeMap<&str, u64> = UNIT_STATES.iter().map(|s| (*s, 0)).collect();
        for unit in &units {
            if let Some(count) = counts.get_mut(unit.active.as_str()) {
                *count += 1;
            }
            if unit.active == "failed" {
                out.push(SYSTEMD_FAILED, &[("unit", &unit.name)], 1.0);
            }
        }
        for (state, count) in counts {
            out.push(SYSTEMD_UNITS, &[("state", state)], count as f64);
        }
        let services: Vec<&str> = units
            .iter()
            .map(|u| u.name.as_str())
            .filter(|name| name.ends_with(".service"))
            .collect();
        if services.is_empty() {
            return;
        }
        let mut args = vec!["show", "--property=Id,NRestarts", "--no-pager"];
        args.extend(services);
        if let Ok(text) = systemctl(&args).await {
            for (unit, restarts) in parse_restarts(&text) {
                out.push(SYSTEMD_RESTARTS, &[("name", &unit)], restarts as f64);
            }
        }
    }
}

async fn systemctl(args: &[&str]) -> Result<String, String> {
    let run = tokio::process::Command::new("systemctl")
        .args(args)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(SYSTEMCTL_TIMEOUT, run)
        .await
        .map_err(|_| format!("systemctl did not answer within {SYSTEMCTL_TIMEOUT:?}"))?
        .map_err(|e| format!("cannot run systemctl: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "systemctl {} failed: {}",
            args[0],
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

struct Unit {
    name: String,
    active: String,
}

/// `systemctl list-units --plain --no-legend`: UNIT LOAD ACTIVE SUB DESCRIPTION.
fn parse_list_units(text: &str) -> Vec<Unit> {
    text.lines()
        .filter_map(|line| {
            // Without --plain (older systemd ignores it for failed units) a marker comes first.
            let mut f = line
                .split_whitespace()
                .skip_while(|t| *t == "●" || *t == "*");
            let name = f.next()?.to_owned();
            let _load = f.next()?;
            let active = f.next()?.to_owned();
            Some(Unit { name, active })
        })
        .collect()
}

/// `systemctl show --property=Id,NRestarts`: blocks of `Key=value` lines separated by blank
/// lines, one per unit.
fn parse_restarts(text: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let mut id = None;
        let mut restarts = None;
        for line in block.lines() {
            match line.split_once('=') {
                Some(("Id", v)) => id = Some(v.to_owned()),
                Some(("NRestarts", v)) => restarts = v.parse().ok(),
                _ => {}
            }
        }
        if let (Some(id), Some(r)) = (id, restarts) {
            out.push((id, r));
        }
    }
    out
}

/// One process's figures, or a group's sums.
#[derive(Debug, Clone, PartialEq)]
struct Figures {
    name: String,
    /// Percent of one core since the last refresh.
    cpu_percent: f64,
    resident: u64,
}

/// Sums the processes' figures per name and keeps the `top` names by CPU and the `top` by
/// resident memory (at most `2 * top` names, in name order). Ties are broken by name, so equal
/// figures always pick the same names.
fn top_groups(processes: impl Iterator<Item = Figures>, top: usize) -> Vec<Figures> {
    let mut groups: HashMap<String, Figures> = HashMap::new();
    for p in processes {
        let group = groups.entry(p.name.clone()).or_insert(Figures {
            name: p.name,
            cpu_percent: 0.0,
            resident: 0,
        });
        group.cpu_percent += p.cpu_percent;
        group.resident += p.resident;
    }
    let mut by_cpu: Vec<&Figures> = groups.values().collect();
    by_cpu.sort_by(|a, b| {
        (b.cpu_percent.total_cmp(&a.cpu_percent)).then_with(|| a.name.cmp(&b.name))
    });
    let mut by_memory = by_cpu.clone();
    by_memory.sort_by(|a, b| {
        b.resident
            .cmp(&a.resident)
            .then_with(|| a.name.cmp(&b.name))
    });
    let names: BTreeSet<&str> = by_cpu
        .iter()
        .take(top)
        .chain(by_memory.iter().take(top))
        .map(|g| g.name.as_str())
        .collect();
    names.into_iter().map(|name| groups[name].clone()).collect()
}

/// The state letter of `/proc/<pid>/stat`, as node_exporter's `state` label gives it.
fn state_letter(status: ProcessStatus) -> &'static str {
    match status {
        ProcessStatus::Run => "R",
        ProcessStatus::Sleep => "S",
        ProcessStatus::Idle => "I",
        ProcessStatus::UninterruptibleDiskSleep => "D",
        ProcessStatus::Zombie => "Z",
        ProcessStatus::Stop => "T",
        ProcessStatus::Tracing => "t",
        ProcessStatus::Dead => "X",
        ProcessStatus::Wakekill => "K",
        ProcessStatus::Waking => "W",
        ProcessStatus::Parked => "P",
        _ => "?",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::test_support::value;

    #[test]
    fn parses_systemctl_output() {
        let units = parse_list_units(
            "ssh.service loaded active running OpenBSD Secure Shell server
● nas-backup.service loaded failed failed Nightly backup
cron.service loaded inactive dead Regular background program processing daemon
",
        );
        let states: Vec<(&str, &str)> = units
            .iter()
            .map(|u| (u.name.as_str(), u.active.as_str()))
            .collect();
        assert_eq!(
            states,
            [
                ("ssh.service", "active"),
                ("nas-backup.service", "failed"),
                ("cron.service", "inactive")
            ]
        );
        let restarts =
            parse_restarts("NRestarts=0\nId=ssh.service\n\nNRestarts=4\nId=nas-backup.service\n");
        assert_eq!(
            restarts,
            [("ssh.service".into(), 0), ("nas-backup.service".into(), 4)]
        );
    }

    #[test]
    fn processes_are_summed_per_name_and_only_the_top_names_kept() {
        let p = |name: &str, cpu_percent: f64, resident: u64| Figures {
            name: name.into(),
            cpu_percent,
            resident,
        };
        // Forty short-lived workers with forty PIDs make one name; small, idle ones drop out.
        let mut processes: Vec<Figures> = (0..40).map(|_| p("worker", 2.0, 1_000)).collect();
        processes.extend([
            p("postgres", 30.0, 500_000),
            p("postgres", 10.0, 300_000),
            p("java", 1.0, 2_000_000),
            p("idle-a", 0.0, 10),
            p("idle-b", 0.0, 10),
        ]);
        let groups = top_groups(processes.into_iter(), 1);
        assert_eq!(
            groups,
            [p("java", 1.0, 2_000_000), p("worker", 80.0, 40_000),]
        );
        let two = top_groups(
            [p("b", 1.0, 1), p("a", 1.0, 1), p("c", 0.0, 5)].into_iter(),
            1,
        );
        let names: Vec<&str> = two.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["a", "c"], "ties go to the first name");
    }

    #[tokio::test]
    async fn reports_this_machines_processes_and_file_handles() {
        let mut tier = ExtendedTier::new(Path::new("/")).unwrap();
        let mut sources = Sources::default();
        let mut out = BatchBuilder::new(1_000);
        tier.collect(&mut sources, &mut out).await;
        let record = out.finish();
        // This test process is running, so at least one process is counted and listed.
        let states: f64 = record
            .series
            .iter()
            .filter(|d| d.name == "node_processes_state")
            .filter_map(|d| record.samples.iter().find(|s| s.series_id == d.id))
            .map(|s| s.values[0])
            .sum();
        assert!(states >= 1.0, "{states}");
        let groups: Vec<&str> = record
            .series
            .iter()
            .filter(|d| d.name == "node_process_group_resident_bytes")
            .flat_map(|d| &d.labels)
            .map(|l| {
                assert_eq!(l.name, "groupname");
                l.value.as_str()
            })
            .collect();
        assert!((1..=2 * TOP).contains(&groups.len()), "{groups:?}");
        let unique: BTreeSet<&&str> = groups.iter().collect();
        assert_eq!(
            unique.len(),
            groups.len(),
            "one series per name: {groups:?}"
        );
        assert!(value(&record, "node_filefd_allocated", &[]).is_some_and(|v| v > 0.0));
        // Every source this machine lacks is flagged, none is an error.
        for source in ["systemd", "temperatures", "fans", "battery"] {
            let flag = value(
                &record,
                "hcmon_agent_source_available",
                &[("source", source)],
            );
            assert!(flag == Some(0.0) || flag == Some(1.0), "{source}: {flag:?}");
        }
    }
}

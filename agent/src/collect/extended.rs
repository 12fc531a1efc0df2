//! The extended tier (every 5 min by default): the top processes by CPU and by memory, process
//! counts by state, open file handles, systemd units, and hardware sensors.

use super::{BatchBuilder, Metric, Sources, procfs, sensors};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;
use sysinfo::{Components, ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, System};

/// How many processes each top list holds.
const TOP: usize = 10;
/// A `systemctl` call that takes longer is abandoned for this round.
const SYSTEMCTL_TIMEOUT: Duration = Duration::from_secs(10);

const PROCESS_CPU: Metric = Metric::ratio(
    "node_top_process_cpu_ratio",
    "CPU used by one of the top processes since the last collection, as a share of the whole node (0..1).",
)
.with_decimals(5);
const PROCESS_RSS: Metric = Metric::gauge(
    "node_top_process_resident_bytes",
    "Resident memory of one of the top processes.",
);
const PROCESS_STATES: Metric = Metric::gauge(
    "node_processes_state",
    "Processes (not threads) in each state.",
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
    "Loaded systemd service units in each active state.",
);
const SYSTEMD_FAILED: Metric = Metric::gauge(
    "node_systemd_unit_failed",
    "1 for each systemd service unit in the failed state.",
);
const SYSTEMD_RESTARTS: Metric = Metric::counter(
    "node_systemd_service_restarts_total",
    "Automatic restarts of a systemd service since it was loaded (NRestarts).",
);

const UNIT_STATES: [&str; 5] = ["active", "inactive", "failed", "activating", "deactivating"];

pub struct ExtendedTier {
    root: PathBuf,
    system: System,
    components: Components,
    /// uid → user name, from `/etc/passwd`, reloaded when a uid is missing.
    users: HashMap<u32, String>,
}

impl ExtendedTier {
    pub fn new(root: &Path) -> Result<Self, sysinfo::Error> {
        let mut tier = Self {
            root: root.to_owned(),
            system: System::new()?,
            components: Components::new()?,
            users: HashMap::new(),
        };
        // CPU use is a difference between two readings: this is the first.
        tier.refresh_processes();
        Ok(tier)
    }

    fn refresh_processes(&mut self) {
        let kind = ProcessRefreshKind::nothing()
            .with_cpu()
            .with_memory()
            .with_user(sysinfo::UpdateKind::OnlyIfNotSet);
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
        sensors::collect_temperatures(&mut self.components, sources, out);
        sensors::collect_fans(&sys, sources, out);
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
            *states.entry(state_name(p.status())).or_default() += 1;
        }
        for (state, count) in states {
            out.push(PROCESS_STATES, &[("state", state)], count as f64);
        }

        let mut by_cpu = processes.clone();
        by_cpu.sort_by(|a, b| b.cpu_usage().total_cmp(&a.cpu_usage()));
        let mut by_memory = processes;
        by_memory.sort_by_key(|p| std::cmp::Reverse(p.memory()));
        let mut top: Vec<&sysinfo::Process> = by_cpu.into_iter().take(TOP).collect();
        for p in by_memory.into_iter().take(TOP) {
            if !top.iter().any(|t| t.pid() == p.pid()) {
                top.push(p);
            }
        }
        let uids: Vec<Option<u32>> = top.iter().map(|p| p.user_id().map(|u| **u)).collect();
        if uids.iter().flatten().any(|u| !self.users.contains_key(u)) {
            self.users = std::fs::read_to_string(self.root.join("etc/passwd"))
                .map(|t| parse_passwd(&t))
                .unwrap_or_default();
        }
        for (p, uid) in top.iter().zip(uids) {
            let name = p.name().to_string_lossy();
            let pid = p.pid().to_string();
            let user = uid.map_or_else(String::new, |u| {
                self.users.get(&u).cloned().unwrap_or_else(|| u.to_string())
            });
            let labels = [
                ("process", name.as_ref()),
                ("pid", pid.as_str()),
                ("user", user.as_str()),
            ];
            out.push(
                PROCESS_CPU,
                &labels,
                f64::from(p.cpu_usage()) / 100.0 / cores,
            );
            out.push(PROCESS_RSS, &labels, p.memory() as f64);
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
            "--type=service",
            "--all",
            "--no-legend",
            "--plain",
            "--no-pager",
        ])
        .await;
        let units = match list {
            Ok(text) => parse_list_units(&text),
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
        if units.is_empty() {
            return;
        }
        let mut args = vec!["show", "--property=Id,NRestarts", "--no-pager"];
        args.extend(units.iter().map(|u| u.name.as_str()));
        if let Ok(text) = systemctl(&args).await {
            for (unit, restarts) in parse_restarts(&text) {
                out.push(SYSTEMD_RESTARTS, &[("unit", &unit)], restarts as f64);
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

fn parse_passwd(text: &str) -> HashMap<u32, String> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split(':');
            let name = f.next()?;
            let uid = f.nth(1)?.parse().ok()?;
            Some((uid, name.to_owned()))
        })
        .collect()
}

fn state_name(status: ProcessStatus) -> &'static str {
    match status {
        ProcessStatus::Run | ProcessStatus::Waking => "running",
        ProcessStatus::Sleep => "sleeping",
        ProcessStatus::UninterruptibleDiskSleep => "disk_sleep",
        ProcessStatus::Idle => "idle",
        ProcessStatus::Stop | ProcessStatus::Tracing => "stopped",
        ProcessStatus::Zombie => "zombie",
        ProcessStatus::Dead => "dead",
        _ => "other",
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
        let users =
            parse_passwd("root:x:0:0:root:/root:/bin/bash\nbob:x:1000:1000::/home/bob:/bin/sh\n");
        assert_eq!(users.get(&1000).map(String::as_str), Some("bob"));
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
        let listed = record
            .series
            .iter()
            .filter(|d| d.name == "node_top_process_resident_bytes")
            .count();
        assert!((1..=2 * TOP).contains(&listed), "{listed}");
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

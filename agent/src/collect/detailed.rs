//! The detailed tier (every 60 s by default): CPU time by CPU and mode, kernel counters, disk IO
//! per device, partitions, TCP connections by state, interface state and speed, boot time, the
//! clock, uname, logged-in users and the process count. Read from `/proc` and `/sys` where
//! sysinfo has no answer. Names, units and labels are node_exporter's where it reports the same.

use super::procfs::{self, DiskStats};
use super::{BatchBuilder, Metric, Sources};
use std::path::{Path, PathBuf};
use sysinfo::Disks;

const CPU_SECONDS: Metric = Metric::counter(
    "node_cpu_seconds_total",
    "Seconds the CPUs spent in each mode.",
)
.with_decimals(2);
const CONTEXT_SWITCHES: Metric = Metric::counter(
    "node_context_switches_total",
    "Context switches since boot.",
);
const INTERRUPTS: Metric = Metric::counter("node_intr_total", "Interrupts serviced since boot.");
const FORKS: Metric = Metric::counter("node_forks_total", "Processes created since boot.");
const PROCS_RUNNING: Metric = Metric::gauge(
    "node_procs_running",
    "Processes in a runnable state right now.",
);
const PROCS_BLOCKED: Metric = Metric::gauge(
    "node_procs_blocked",
    "Processes blocked waiting for I/O right now.",
);
const BOOT_TIME: Metric = Metric::gauge(
    "node_boot_time_seconds",
    "When the node booted, in Unix seconds.",
);
const PROCESSES: Metric = Metric::gauge(
    "node_processes_pids",
    "Number of PIDs: processes, not threads.",
);
const TIME: Metric = Metric::gauge(
    "node_time_seconds",
    "System time in seconds since epoch (1970), read at collection.",
)
.with_decimals(3);
const UNAME: Metric = Metric::gauge(
    "node_uname_info",
    "Labeled system information as provided by the uname system call.",
);
const USERS: Metric = Metric::gauge("node_users_logged_in", "User sessions logged in (utmp).");
const DISK_READS: Metric = Metric::counter(
    "node_disk_reads_completed_total",
    "Reads completed by a disk.",
);
const DISK_WRITES: Metric = Metric::counter(
    "node_disk_writes_completed_total",
    "Writes completed by a disk.",
);
const DISK_READ_BYTES: Metric =
    Metric::counter("node_disk_read_bytes_total", "Bytes read from a disk.");
const DISK_WRITTEN_BYTES: Metric =
    Metric::counter("node_disk_written_bytes_total", "Bytes written to a disk.");
const DISK_READ_TIME: Metric = Metric::counter(
    "node_disk_read_time_seconds_total",
    "Seconds spent by all reads of a disk.",
);
const DISK_WRITE_TIME: Metric = Metric::counter(
    "node_disk_write_time_seconds_total",
    "Seconds spent by all writes of a disk.",
);
const DISK_BUSY: Metric = Metric::counter(
    "node_disk_io_time_seconds_total",
    "Seconds a disk was busy with at least one I/O (its rate is the utilisation).",
);
const DISK_IO_NOW: Metric =
    Metric::gauge("node_disk_io_now", "I/Os in progress on a disk right now.");
const FS_READONLY: Metric = Metric::gauge(
    "node_filesystem_readonly",
    "1 when a mounted partition is read-only.",
);
const FS_REMOVABLE: Metric = Metric::gauge(
    "node_filesystem_removable",
    "1 when a mounted partition is on removable media.",
);
const TCP_CONNECTIONS: Metric = Metric::gauge(
    "node_tcp_connection_states",
    "Number of connection states: TCP sockets (IPv4 and IPv6) in each state.",
);
const NET_UP: Metric = Metric::gauge(
    "node_network_up",
    "Value is 1 if operstate is 'up', 0 otherwise.",
);
const NET_SPEED: Metric = Metric::gauge(
    "node_network_speed_bytes",
    "Negotiated link speed of an interface, in bytes per second.",
);

pub struct DetailedTier {
    /// Where `/proc`, `/sys` and `/var/run` are found: `/` except in tests.
    root: PathBuf,
    disks: Disks,
}

impl DetailedTier {
    pub fn new(root: &Path) -> Result<Self, sysinfo::Error> {
        Ok(Self {
            root: root.to_owned(),
            disks: Disks::new()?,
        })
    }

    fn read(&self, path: &str) -> std::io::Result<String> {
        std::fs::read_to_string(self.root.join(path))
    }

    pub fn collect(&mut self, sources: &mut Sources, out: &mut BatchBuilder) {
        match self.read("proc/stat") {
            Ok(text) => {
                sources.available("proc_stat", out);
                push_stat(&procfs::parse_stat(&text), out);
            }
            Err(e) => sources.unavailable("proc_stat", &e.to_string(), out),
        }
        match self.read("proc/diskstats") {
            Ok(text) => {
                sources.available("diskstats", out);
                let block = self.root.join("sys/block");
                let disks = procfs::parse_diskstats(&text, |dev| is_whole_disk(&block, dev));
                push_disks(&disks, out);
            }
            Err(e) => sources.unavailable("diskstats", &e.to_string(), out),
        }
        self.collect_partitions(out);
        self.collect_tcp(sources, out);
        self.collect_interfaces(out);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        if let Ok(now) = now {
            out.push(TIME, &[], now.as_secs_f64());
        }
        push_uname(&rustix::system::uname(), out);
        match std::fs::read_dir(self.root.join("proc")) {
            Ok(entries) => {
                let count = entries
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
                    .count();
                out.push(PROCESSES, &[], count as f64);
            }
            Err(e) => sources.unavailable("processes", &e.to_string(), out),
        }
        // No utmp (containers, minimal images) means no login sessions are tracked here.
        match std::fs::read(self.root.join("var/run/utmp")) {
            Ok(bytes) => {
                sources.available("utmp", out);
                out.push(USERS, &[], procfs::count_utmp_users(&bytes) as f64);
            }
            Err(e) => sources.unavailable("utmp", &e.to_string(), out),
        }
    }

    fn collect_partitions(&mut self, out: &mut BatchBuilder) {
        self.disks.refresh(true);
        let mut seen = std::collections::HashSet::new();
        for disk in self.disks.iter() {
            let mountpoint = disk.mount_point().to_string_lossy().into_owned();
            if !seen.insert(mountpoint.clone()) {
                continue;
            }
            let device = disk.name().to_string_lossy().into_owned();
            let fstype = disk.file_system().to_string_lossy().into_owned();
            let labels = [
                ("device", device.as_str()),
                ("fstype", fstype.as_str()),
                ("mountpoint", mountpoint.as_str()),
            ];
            out.push(
                FS_READONLY,
                &labels,
                f64::from(u8::from(disk.is_read_only())),
            );
            out.push(
                FS_REMOVABLE,
                &labels,
                f64::from(u8::from(disk.is_removable())),
            );
        }
    }

    fn collect_tcp(&self, sources: &mut Sources, out: &mut BatchBuilder) {
        let mut counts = [0u64; 12];
        let mut any = false;
        for table in ["proc/net/tcp", "proc/net/tcp6"] {
            if let Ok(text) = self.read(table) {
                procfs::count_tcp_states(&text, &mut counts);
                any = true;
            }
        }
        if !any {
            sources.unavailable("tcp", "no /proc/net/tcp or tcp6", out);
            return;
        }
        sources.available("tcp", out);
        for (state, count) in procfs::tcp_state_names().iter().zip(counts) {
            out.push(TCP_CONNECTIONS, &[("state", state)], count as f64);
        }
    }

    fn collect_interfaces(&self, out: &mut BatchBuilder) {
        let Ok(entries) = std::fs::read_dir(self.root.join("sys/class/net")) else {
            return;
        };
        let mut names: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            let attr = |a: &str| self.read(&format!("sys/class/net/{name}/{a}"));
            let labels = [("device", name.as_str())];
            // node_exporter's rule, which its alert rules assume: loopback and other links
            // whose state is "unknown" count as down.
            let up = attr("operstate").is_ok_and(|o| o.trim() == "up");
            out.push(NET_UP, &labels, f64::from(u8::from(up)));
            // Virtual interfaces have no speed (the read fails or gives -1): nothing is sent.
            if let Some(mbps) = attr("speed")
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .filter(|s| *s > 0)
            {
                out.push(NET_SPEED, &labels, mbps as f64 * 125_000.0);
            }
        }
    }
}

/// Whole disks have an entry in `/sys/block`; partitions do not. Loop and RAM devices are
/// listed there too but are not storage anyone watches.
fn is_whole_disk(sys_block: &Path, device: &str) -> bool {
    !device.starts_with("loop") && !device.starts_with("ram") && sys_block.join(device).exists()
}

fn push_stat(stat: &procfs::KernelStat, out: &mut BatchBuilder) {
    for cpu in &stat.cpu_seconds {
        for (mode, seconds) in &cpu.modes {
            out.push(CPU_SECONDS, &[("cpu", &cpu.cpu), ("mode", mode)], *seconds);
        }
    }
    let counters = [
        (CONTEXT_SWITCHES, stat.context_switches),
        (INTERRUPTS, stat.interrupts),
        (FORKS, stat.forks),
        (PROCS_RUNNING, stat.procs_running),
        (PROCS_BLOCKED, stat.procs_blocked),
        (BOOT_TIME, stat.boot_time),
    ];
    for (metric, value) in counters {
        if let Some(v) = value {
            out.push(metric, &[], v as f64);
        }
    }
}

fn push_uname(uname: &rustix::system::Uname, out: &mut BatchBuilder) {
    let text = |field: &std::ffi::CStr| field.to_string_lossy().into_owned();
    let labels = [
        ("domainname", text(uname.domainname())),
        ("machine", text(uname.machine())),
        ("nodename", text(uname.nodename())),
        ("release", text(uname.release())),
        ("sysname", text(uname.sysname())),
        ("version", text(uname.version())),
    ];
    let labels: Vec<(&str, &str)> = labels.iter().map(|(n, v)| (*n, v.as_str())).collect();
    out.push(UNAME, &labels, 1.0);
}

fn push_disks(disks: &[DiskStats], out: &mut BatchBuilder) {
    for d in disks {
        let labels = [("device", d.device.as_str())];
        out.push(DISK_READS, &labels, d.reads as f64);
        out.push(DISK_WRITES, &labels, d.writes as f64);
        out.push(DISK_READ_BYTES, &labels, d.read_bytes as f64);
        out.push(DISK_WRITTEN_BYTES, &labels, d.written_bytes as f64);
        out.push(DISK_READ_TIME, &labels, d.read_seconds);
        out.push(DISK_WRITE_TIME, &labels, d.write_seconds);
        out.push(DISK_BUSY, &labels, d.busy_seconds);
        out.push(DISK_IO_NOW, &labels, d.io_now as f64);
    }
}

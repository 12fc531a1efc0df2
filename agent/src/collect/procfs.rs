//! Pure parsers for the kernel's text interfaces (`/proc`, `/sys`) that sysinfo does not cover.
//! No I/O here: the tiers read the files and hand the text over, so every parser is tested on
//! literal fixtures.

/// USER_HZ: the unit of the CPU times in `/proc/stat`. Fixed at 100 on every Linux ABI the agent
/// runs on (the kernel converts to it for userspace whatever its internal HZ).
const USER_HZ: f64 = 100.0;

/// The CPU modes of `/proc/stat`, in column order.
pub const CPU_MODES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];

/// Seconds one CPU spent in each of [`CPU_MODES`] since boot.
#[derive(Debug, Clone, PartialEq)]
pub struct CpuSeconds {
    /// The number in `cpuN`, as node_exporter's `cpu` label gives it.
    pub cpu: String,
    pub modes: Vec<(&'static str, f64)>,
}

/// What the detailed tier takes from `/proc/stat`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct KernelStat {
    /// Per CPU, as node_exporter reports them (it has no all-CPU total).
    pub cpu_seconds: Vec<CpuSeconds>,
    pub context_switches: Option<u64>,
    pub interrupts: Option<u64>,
    pub forks: Option<u64>,
    pub procs_running: Option<u64>,
    pub procs_blocked: Option<u64>,
    pub boot_time: Option<u64>,
}

pub fn parse_stat(text: &str) -> KernelStat {
    let mut out = KernelStat::default();
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let key = fields.next().unwrap_or_default();
        let first = || line.split_ascii_whitespace().nth(1)?.parse::<u64>().ok();
        match key {
            // One CPU's line (the aggregate `cpu` line is skipped); `guest` time is already inside
            // `user`, so it is not read.
            cpu if cpu.len() > 3
                && cpu.starts_with("cpu")
                && cpu[3..].bytes().all(|b| b.is_ascii_digit()) =>
            {
                let modes = CPU_MODES
                    .iter()
                    .zip(fields)
                    .filter_map(|(mode, v)| Some((*mode, v.parse::<u64>().ok()? as f64 / USER_HZ)))
                    .collect();
                out.cpu_seconds.push(CpuSeconds {
                    cpu: cpu[3..].to_owned(),
                    modes,
                });
            }
            "ctxt" => out.context_switches = first(),
            "intr" => out.interrupts = first(),
            "processes" => out.forks = first(),
            "procs_running" => out.procs_running = first(),
            "procs_blocked" => out.procs_blocked = first(),
            "btime" => out.boot_time = first(),
            _ => {}
        }
    }
    out
}

/// The `/proc/meminfo` fields node_exporter dashboards use, in bytes, named as in the file
/// (node_exporter's `node_memory_<field>_bytes`).
pub const MEMINFO_FIELDS: [&str; 8] = [
    "MemTotal",
    "MemFree",
    "MemAvailable",
    "Buffers",
    "Cached",
    "SReclaimable",
    "SwapTotal",
    "SwapFree",
];

/// The [`MEMINFO_FIELDS`] found in `/proc/meminfo`, in bytes, in the file's order.
pub fn parse_meminfo(text: &str) -> Vec<(&'static str, f64)> {
    text.lines()
        .filter_map(|line| {
            let (key, rest) = line.split_once(':')?;
            let field = MEMINFO_FIELDS.iter().find(|f| **f == key)?;
            let mut value = rest.split_ascii_whitespace();
            let number = value.next()?.parse::<u64>().ok()?;
            // Sizes are in kibibytes ("kB"); a field without a unit is a count, never wanted here.
            (value.next() == Some("kB")).then_some((*field, number as f64 * 1024.0))
        })
        .collect()
}

/// Totals of one `/proc/pressure/<resource>` file, in seconds: time some task waited, and time
/// all non-idle tasks were stalled at once (absent for `cpu` before Linux 5.13).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pressure {
    pub some_seconds: f64,
    pub full_seconds: Option<f64>,
}

pub fn parse_pressure(text: &str) -> Option<Pressure> {
    let total = |kind: &str| {
        let line = text.lines().find(|l| l.starts_with(kind))?;
        let micros = line
            .split_ascii_whitespace()
            .find_map(|f| f.strip_prefix("total="))?
            .parse::<u64>()
            .ok()?;
        Some(micros as f64 / 1e6)
    };
    Some(Pressure {
        some_seconds: total("some ")?,
        full_seconds: total("full "),
    })
}

/// One device's line of `/proc/diskstats`.
#[derive(Debug, Clone, PartialEq)]
pub struct DiskStats {
    pub device: String,
    pub reads: u64,
    pub read_bytes: u64,
    pub read_seconds: f64,
    pub writes: u64,
    pub written_bytes: u64,
    pub write_seconds: f64,
    pub io_now: u64,
    pub busy_seconds: f64,
}

/// Sectors in `/proc/diskstats` are always 512 bytes, whatever the device's own sector size.
const SECTOR_BYTES: u64 = 512;

/// Parses `/proc/diskstats`, keeping the devices `keep` accepts (whole disks, not partitions).
pub fn parse_diskstats(text: &str, keep: impl Fn(&str) -> bool) -> Vec<DiskStats> {
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_ascii_whitespace().collect();
        if f.len() < 14 || !keep(f[2]) {
            continue;
        }
        let n = |i: usize| f[i].parse::<u64>().unwrap_or(0);
        out.push(DiskStats {
            device: f[2].to_owned(),
            reads: n(3),
            read_bytes: n(5) * SECTOR_BYTES,
            read_seconds: n(6) as f64 / 1000.0,
            writes: n(7),
            written_bytes: n(9) * SECTOR_BYTES,
            write_seconds: n(10) as f64 / 1000.0,
            io_now: n(11),
            busy_seconds: n(12) as f64 / 1000.0,
        });
    }
    out
}

/// TCP states as numbered in `/proc/net/tcp` (the kernel's `TCP_*` enum), named as `ss` does.
const TCP_STATES: [&str; 12] = [
    "established",
    "syn_sent",
    "syn_recv",
    "fin_wait1",
    "fin_wait2",
    "time_wait",
    "close",
    "close_wait",
    "last_ack",
    "listen",
    "closing",
    "new_syn_recv",
];

/// Adds the connections of one `/proc/net/tcp` or `/proc/net/tcp6` table to `counts` (indexed
/// like the state names returned by [`tcp_state_names`]).
pub fn count_tcp_states(text: &str, counts: &mut [u64; 12]) {
    for line in text.lines().skip(1) {
        let state = line
            .split_ascii_whitespace()
            .nth(3)
            .and_then(|s| u8::from_str_radix(s, 16).ok());
        if let Some(state @ 1..=12) = state {
            counts[usize::from(state) - 1] += 1;
        }
    }
}

pub fn tcp_state_names() -> &'static [&'static str; 12] {
    &TCP_STATES
}

/// `/proc/sys/fs/file-nr`: allocated file handles and the system maximum.
pub fn parse_file_nr(text: &str) -> Option<(u64, u64)> {
    let f: Vec<u64> = text
        .split_ascii_whitespace()
        .map(|s| s.parse().ok())
        .collect::<Option<_>>()?;
    match f.as_slice() {
        [allocated, _unused, max] => Some((*allocated, *max)),
        _ => None,
    }
}

/// Size of one `struct utmp` record on Linux (glibc and musl agree on 64-bit and 32-bit).
const UTMP_RECORD: usize = 384;
/// `ut_type` of a logged-in user's session.
const USER_PROCESS: i16 = 7;

/// Counts user sessions in the binary `/var/run/utmp`.
pub fn count_utmp_users(bytes: &[u8]) -> usize {
    bytes
        .chunks_exact(UTMP_RECORD)
        .filter(|r| i16::from_ne_bytes([r[0], r[1]]) == USER_PROCESS)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  4705 356 584 3699176 23060 0 277 0 0 0
cpu0 1393280 32966 572056 13343292 6130 0 17875 0 23933 0
cpu1 4705 356 584 3699176 23060 0 277 0 0 0
intr 1462898 29 0 0 0
ctxt 115315
btime 1700000000
processes 86031
procs_running 3
procs_blocked 1
softirq 1 2 3
";

    #[test]
    fn stat_gives_cpu_seconds_by_mode_and_kernel_counters() {
        let s = parse_stat(STAT);
        let cpus: Vec<&str> = s.cpu_seconds.iter().map(|c| c.cpu.as_str()).collect();
        assert_eq!(cpus, ["0", "1"]);
        let cpu1 = &s.cpu_seconds[1].modes;
        assert_eq!(cpu1[0], ("user", 47.05));
        assert_eq!(cpu1[3], ("idle", 36991.76));
        assert_eq!(cpu1.len(), 8);
        assert_eq!(s.context_switches, Some(115_315));
        assert_eq!(s.interrupts, Some(1_462_898));
        assert_eq!(s.forks, Some(86_031));
        assert_eq!((s.procs_running, s.procs_blocked), (Some(3), Some(1)));
        assert_eq!(s.boot_time, Some(1_700_000_000));
    }

    #[test]
    fn meminfo_in_bytes_and_pressure_in_seconds() {
        let meminfo = parse_meminfo(
            "MemTotal:       24683656 kB\nMemFree:          906340 kB\nHugePages_Total:       0\n\
             Cached:          1000 kB\nSwapTotal:             0 kB\n",
        );
        assert_eq!(
            meminfo,
            [
                ("MemTotal", 24_683_656.0 * 1024.0),
                ("MemFree", 906_340.0 * 1024.0),
                ("Cached", 1_024_000.0),
                ("SwapTotal", 0.0)
            ]
        );
        let pressure = parse_pressure(
            "some avg10=1.68 avg60=1.79 avg300=5.79 total=8523358480\n\
             full avg10=0.00 avg60=0.00 avg300=0.00 total=1500000\n",
        );
        assert_eq!(
            pressure,
            Some(Pressure {
                some_seconds: 8523.35848,
                full_seconds: Some(1.5)
            })
        );
        let old_cpu = parse_pressure("some avg10=0.00 avg60=0.00 avg300=0.00 total=7\n");
        assert_eq!(old_cpu.and_then(|p| p.full_seconds), None);
        assert_eq!(parse_pressure("garbage"), None);
    }

    #[test]
    fn diskstats_in_bytes_and_seconds_for_kept_devices() {
        let text = "   8       0 sda 1000 10 2048 500 2000 20 4096 700 1 900 1300 0 0 0 0
   8       1 sda1 900 10 1800 450 1900 20 4000 650 0 850 1200 0 0 0 0
   7       0 loop0 1 0 2 0 0 0 0 0 0 0 0";
        let disks = parse_diskstats(text, |d| d == "sda");
        assert_eq!(disks.len(), 1);
        let d = &disks[0];
        assert_eq!(d.device, "sda");
        assert_eq!((d.reads, d.read_bytes), (1000, 2048 * 512));
        assert_eq!((d.writes, d.written_bytes), (2000, 4096 * 512));
        assert_eq!((d.read_seconds, d.write_seconds), (0.5, 0.7));
        assert_eq!((d.io_now, d.busy_seconds), (1, 0.9));
    }

    #[test]
    fn tcp_states_are_counted_by_name() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:10E1 00000000:0000 0A 00000000:00000000 00:00000000 00000000   0        0 1 1
   1: 0100007F:10E1 0100007F:A2B4 01 00000000:00000000 00:00000000 00000000   0        0 2 1
   2: 0100007F:A2B4 0100007F:10E1 01 00000000:00000000 00:00000000 00000000   0        0 3 1
   3: 0100007F:A2B6 0100007F:10E1 06 00000000:00000000 00:00000000 00000000   0        0 0 1
";
        let mut counts = [0; 12];
        count_tcp_states(text, &mut counts);
        let names = tcp_state_names();
        let by_name = |n: &str| counts[names.iter().position(|s| *s == n).unwrap()];
        assert_eq!(by_name("listen"), 1);
        assert_eq!(by_name("established"), 2);
        assert_eq!(by_name("time_wait"), 1);
        assert_eq!(counts.iter().sum::<u64>(), 4);
    }

    #[test]
    fn file_nr_and_utmp() {
        assert_eq!(
            parse_file_nr("1984\t0\t9223372036854775807\n"),
            Some((1984, i64::MAX as u64))
        );
        assert_eq!(parse_file_nr("garbage"), None);
        let mut utmp = vec![0u8; UTMP_RECORD * 3];
        utmp[..2].copy_from_slice(&USER_PROCESS.to_ne_bytes());
        utmp[UTMP_RECORD..UTMP_RECORD + 2].copy_from_slice(&2i16.to_ne_bytes()); // boot time
        utmp[2 * UTMP_RECORD..2 * UTMP_RECORD + 2].copy_from_slice(&USER_PROCESS.to_ne_bytes());
        assert_eq!(count_utmp_users(&utmp), 2);
    }
}

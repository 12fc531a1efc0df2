//! Filesystem usage per mount point.

use super::{BatchBuilder, Metric};
use std::collections::HashSet;
use sysinfo::Disks;

const SIZE: Metric = Metric::gauge("node_filesystem_size_bytes", "Size of the filesystem.");
const AVAIL: Metric = Metric::gauge(
    "node_filesystem_avail_bytes",
    "Space available to unprivileged users.",
);
const USED: Metric = Metric::gauge(
    "node_filesystem_used_bytes",
    "Space in use (size minus available).",
);
const USED_RATIO: Metric = Metric::ratio(
    "node_filesystem_used_ratio",
    "Share of the filesystem in use (0..1).",
);

pub fn collect(disks: &mut Disks, out: &mut BatchBuilder) {
    // Re-list so mounts that come and go (USB disks, NFS) appear and disappear.
    disks.refresh(true);
    let mut seen = HashSet::new();
    for disk in disks.iter() {
        let mount = disk.mount_point().to_string_lossy().into_owned();
        // Bind mounts and container overlays can list one mount point twice.
        if !seen.insert(mount.clone()) || disk.total_space() == 0 {
            continue;
        }
        let device = disk.name().to_string_lossy().into_owned();
        let fstype = disk.file_system().to_string_lossy().into_owned();
        let labels = [
            ("mount", mount.as_str()),
            ("device", device.as_str()),
            ("fstype", fstype.as_str()),
        ];
        let size = disk.total_space() as f64;
        let avail = disk.available_space() as f64;
        out.push(SIZE, &labels, size);
        out.push(AVAIL, &labels, avail);
        out.push(USED, &labels, size - avail);
        out.push(USED_RATIO, &labels, (size - avail) / size);
    }
}

//! Filesystem space and inodes per mount point, under node_exporter's names and labels
//! (`device`, `fstype`, `mountpoint`), and the used figures and ratio hcmon derives from them.
//! sysinfo lists the mounts (it leaves out pseudo filesystems); `statvfs(3)` gives the figures,
//! as node_exporter takes them from `statfs(2)`.

use super::{BatchBuilder, Metric};
use std::collections::HashSet;
use sysinfo::{DiskRefreshKind, Disks};

const SIZE: Metric = Metric::gauge("node_filesystem_size_bytes", "Filesystem size in bytes.");
const FREE: Metric = Metric::gauge(
    "node_filesystem_free_bytes",
    "Filesystem free space in bytes (root's reserve included).",
);
const AVAIL: Metric = Metric::gauge(
    "node_filesystem_avail_bytes",
    "Filesystem space available to non-root users in bytes.",
);
const FILES: Metric = Metric::gauge("node_filesystem_files", "Filesystem total file nodes.");
const FILES_FREE: Metric = Metric::gauge(
    "node_filesystem_files_free",
    "Filesystem total free file nodes.",
);
const USED: Metric = Metric::gauge(
    "node_filesystem_used_bytes",
    "Space in use: size minus avail (what df counts against non-root users).",
);
const USED_RATIO: Metric = Metric::ratio(
    "node_filesystem_used_ratio",
    "Share of the filesystem in use (0..1): 1 - avail / size.",
);

/// What `statvfs(3)` says about one mounted filesystem.
struct Space {
    size: f64,
    free: f64,
    avail: f64,
    files: f64,
    files_free: f64,
}

fn statvfs(mountpoint: &std::path::Path) -> Option<Space> {
    let s = rustix::fs::statvfs(mountpoint).ok()?;
    let block = s.f_frsize as f64;
    Some(Space {
        size: s.f_blocks as f64 * block,
        free: s.f_bfree as f64 * block,
        avail: s.f_bavail as f64 * block,
        files: s.f_files as f64,
        files_free: s.f_ffree as f64,
    })
}

pub fn collect(disks: &mut Disks, out: &mut BatchBuilder) {
    // Re-list so mounts that come and go (USB disks, NFS) appear and disappear; the figures
    // come from statvfs below, not from sysinfo.
    disks.refresh_specifics(true, DiskRefreshKind::nothing());
    let mut seen = HashSet::new();
    for disk in disks.iter() {
        let mountpoint = disk.mount_point();
        // Bind mounts and container overlays can list one mount point twice.
        if !seen.insert(mountpoint.to_owned()) {
            continue;
        }
        let Some(space) = statvfs(mountpoint).filter(|s| s.size > 0.0) else {
            continue;
        };
        let device = disk.name().to_string_lossy();
        let fstype = disk.file_system().to_string_lossy();
        let mountpoint = mountpoint.to_string_lossy();
        let labels = [
            ("device", device.as_ref()),
            ("fstype", fstype.as_ref()),
            ("mountpoint", mountpoint.as_ref()),
        ];
        out.push(SIZE, &labels, space.size);
        out.push(FREE, &labels, space.free);
        out.push(AVAIL, &labels, space.avail);
        out.push(FILES, &labels, space.files);
        out.push(FILES_FREE, &labels, space.files_free);
        out.push(USED, &labels, space.size - space.avail);
        out.push(USED_RATIO, &labels, (space.size - space.avail) / space.size);
    }
}

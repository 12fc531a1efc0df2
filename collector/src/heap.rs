//! The heap as the allocator sees it. jemalloc is the collector's allocator and, by default,
//! RocksDB's `malloc` (see `main.rs`); its
//! figures, beside the state the collector counts itself (`hcmon_collector_state_bytes`,
//! `hcmon_collector_storage_memory_bytes`), tell live data, allocator overhead and RSS apart.

use std::sync::atomic::{AtomicBool, Ordering};

/// jemalloc's figures, in bytes.
pub struct HeapBytes {
    /// Allocated by the program and not freed.
    pub allocated: u64,
    /// In physically resident pages the allocator maps: allocations, its metadata, and freed
    /// pages not yet returned to the system.
    pub resident: u64,
    /// Mapped but returned to the system (not resident), kept for reuse.
    pub retained: u64,
}

/// Set by `main`, which makes jemalloc the global allocator: a collector run inside another
/// program (the tests' rigs) shares that program's heap (jemalloc's too, as its `malloc`, with
/// the default feature `jemalloc-for-cpp`), so the figures would not be the collector's.
static JEMALLOC_IS_GLOBAL: AtomicBool = AtomicBool::new(false);

/// Called by `main`, whose global allocator is jemalloc.
pub fn jemalloc_is_global() {
    JEMALLOC_IS_GLOBAL.store(true, Ordering::Relaxed);
}

/// The allocator's current figures; `None` where jemalloc is not the global allocator.
pub fn heap_bytes() -> Option<HeapBytes> {
    use tikv_jemalloc_ctl::{epoch, stats};
    if !JEMALLOC_IS_GLOBAL.load(Ordering::Relaxed) {
        return None;
    }
    // The statistics are a snapshot refreshed by advancing the epoch.
    epoch::advance().ok()?;
    Some(HeapBytes {
        allocated: stats::allocated::read().ok()? as u64,
        resident: stats::resident::read().ok()? as u64,
        retained: stats::retained::read().ok()? as u64,
    })
}

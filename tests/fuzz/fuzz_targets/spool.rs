//! The agent's spool files. The input is a state file's text, a NUL, the sequence number (u64
//! LE) naming one batch file, then that file's bytes; the spool is opened on them, every pending
//! batch read, and one batch appended, as the agent does at start.
#![no_main]

use hcmon_agent::spool::{Spool, SpoolRecord};
use std::path::PathBuf;
use std::sync::LazyLock;

/// One directory per fuzzing process, emptied before each input; on tmpfs where there is one.
static DIR: LazyLock<PathBuf> = LazyLock::new(|| {
    let shm = PathBuf::from("/dev/shm");
    let base = if shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    };
    base.join(format!("hcmon-fuzz-spool-{}", std::process::id()))
});

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some(nul) = data.iter().position(|&b| b == 0) else {
        return;
    };
    let (state, rest) = (&data[..nul], &data[nul + 1..]);
    let Some((seq, batch)) = rest.split_first_chunk::<8>() else {
        return;
    };
    let seq = u64::from_le_bytes(*seq);
    let dir = &*DIR;
    let _ = std::fs::remove_dir_all(dir);
    let batches = dir.join("batches");
    std::fs::create_dir_all(&batches).expect("the fuzz spool directory can be made");
    std::fs::write(dir.join("spool.state"), state).expect("the state file can be written");
    std::fs::write(batches.join(format!("{seq:020}.pb")), batch)
        .expect("the batch file can be written");
    let Ok(mut spool) = Spool::open(dir, 1 << 20) else {
        return;
    };
    let pending: Vec<u64> = spool.pending_after(0).collect();
    for seq in pending {
        let _ = spool.read(seq);
    }
    let _ = spool.append(&SpoolRecord::default());
});

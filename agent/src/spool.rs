//! The agent's disk spool: every batch is written here before it is sent, and deleted only once
//! the collector has acknowledged it.
//!
//! # On-disk layout
//! ```text
//! <spool-dir>/spool.state                 epoch and next sequence number (text, replaced atomically)
//! <spool-dir>/batches/<seq:020>.pb        one SpoolRecord per file, protobuf
//! <spool-dir>/rejected/<seq:020>.pb       batches the collector refused as invalid, kept for people
//! ```
//! Directories the spool creates are mode 0700 (existing ones keep theirs): batches are this
//! host's metrics, for the agent's user only.
//!
//! # Invariants
//! - A batch file is complete or absent: it is written to a temporary name, fsynced, renamed into
//!   place and the directory fsynced. A crash leaves at most a stray `*.tmp`, removed at open.
//! - Sequence numbers strictly increase within an epoch and are never reused, even after every
//!   batch was acked and deleted: a number is reserved in the state file (fsynced) before its
//!   batch file is written. A crash or failure in between only leaves a gap, which the sender
//!   declares to the collector (`Batch.skipped_from`), as it does for dropped and set-aside
//!   batches. At open, `next_seq` is the larger of the state file and the newest batch + 1.
//! - A spool put back in time (a restored VM snapshot or backup) cannot know which numbers it
//!   issued after that point, and reissues them. The sender notices at registration (the
//!   collector holds a number at or above `next_seq`) and calls [`Spool::start_new_epoch`]
//!   before sending anything, so the collector never sees one number twice within an epoch.
//! - A batch is deleted only by [`Spool::ack`] once every reader (one per collector the agent
//!   ships to, see [`Spool::add_reader`]) has it acknowledged, set aside by
//!   [`Spool::set_aside`] (the collector refused it as invalid, so resending cannot help), or
//!   dropped by [`Spool::append`] when the spool would outgrow its size bound: then the oldest
//!   batches go first, and every drop is counted (batches and bytes) for the agent's metrics.
//! - Readers' cursors live in memory only: at each registration the collector says what it
//!   holds, which sets the cursor again. Until a collector has answered once, its cursor is 0 and
//!   the spool keeps everything for it (within its size bound), so one collector's outage never
//!   holds the other back and never costs it data the bound did not.
//! - The epoch is random and made with the spool; a new spool (fresh install, wiped dir) gets a
//!   new epoch, telling the collector that numbering starts again. A new epoch is also taken,
//!   keeping the numbering, when the numbering went back in time (above).

use hcmon_proto::v1::{SeriesDef, SeriesSamples};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// One spooled batch. Series ids here are local to the record; the sender re-interns them per
/// stream.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SpoolRecord {
    #[prost(message, repeated, tag = "1")]
    pub series: Vec<SeriesDef>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<SeriesSamples>,
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool I/O on {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("spool state file {path} is damaged: {detail}")]
    BadState { path: PathBuf, detail: String },
    #[error("spooled batch {path} cannot be decoded: {source}")]
    BadBatch {
        path: PathBuf,
        source: prost::DecodeError,
    },
}

/// A spool epoch, never 0, from the operating system's generator: the collector takes a stream's
/// numbering as this spool's only within its epoch, so the epoch must not be guessable.
fn random_epoch() -> io::Result<u64> {
    use ring::rand::{SecureRandom, SystemRandom};
    loop {
        let mut bytes = [0u8; 8];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| io::Error::other("the operating system's random generator failed"))?;
        let epoch = u64::from_be_bytes(bytes);
        if epoch != 0 {
            return Ok(epoch);
        }
    }
}

/// Creates `path` and its missing parents with mode 0700; existing directories are untouched.
fn create_private_dir(path: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_owned(),
        source,
    }
}

pub struct Spool {
    dir: PathBuf,
    epoch: u64,
    next_seq: u64,
    /// Most bytes of pending batches kept; older batches are dropped to stay under it.
    max_bytes: u64,
    /// Pending batches by sequence number.
    pending: BTreeMap<u64, Pending>,
    pending_bytes: u64,
    dropped_batches: u64,
    dropped_bytes: u64,
    /// Per reader, the highest number its collector acknowledged (0: none yet).
    cursors: Vec<u64>,
}

/// One collector's place in the spool, from [`Spool::add_reader`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaderId(usize);

#[derive(Debug, Clone, Copy)]
struct Pending {
    bytes: u64,
    /// When the batch was spooled (file modification time after a restart), Unix ms.
    spooled_ms: i64,
}

/// Backlog figures, reported as agent metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolStats {
    pub batches: usize,
    pub bytes: u64,
    /// When the oldest pending batch was spooled, Unix ms.
    pub oldest_ms: Option<i64>,
    /// Batches (and their bytes) dropped by this process to keep the spool under its bound.
    pub dropped_batches: u64,
    pub dropped_bytes: u64,
}

fn unix_ms(time: std::time::SystemTime) -> i64 {
    time.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Spool {
    /// Opens the spool in `dir`, creating it (with a new epoch) when missing. Pending batches
    /// beyond `max_bytes` are dropped, oldest first, at the next append.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Self, SpoolError> {
        let batches = dir.join("batches");
        create_private_dir(&batches).map_err(io_err(&batches))?;
        let state_path = dir.join("spool.state");
        // A state write interrupted by a crash leaves its temporary file behind.
        match fs::remove_file(state_path.with_extension("tmp")) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(dir)(e)),
            _ => {}
        }
        let (epoch, state_next) = match fs::read_to_string(&state_path) {
            Ok(text) => parse_state(&text).ok_or_else(|| SpoolError::BadState {
                path: state_path.clone(),
                detail: format!("expected 'epoch N' and 'next_seq N' lines, found {text:?}"),
            })?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                (random_epoch().map_err(io_err(&state_path))?, 1)
            }
            Err(e) => return Err(io_err(&state_path)(e)),
        };
        let mut pending = BTreeMap::new();
        for entry in fs::read_dir(&batches).map_err(io_err(&batches))? {
            let entry = entry.map_err(io_err(&batches))?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tmp") {
                fs::remove_file(&path).map_err(io_err(&path))?;
                continue;
            }
            if let Some(seq) = name.strip_suffix(".pb").and_then(|s| s.parse::<u64>().ok()) {
                let meta = entry.metadata().map_err(io_err(&path))?;
                let spooled_ms = meta.modified().map_or(0, unix_ms);
                let bytes = meta.len();
                pending.insert(seq, Pending { bytes, spooled_ms });
            }
        }
        let after_files = pending
            .keys()
            .next_back()
            .map_or(1, |s| s.saturating_add(1));
        let next_seq = state_next.max(after_files);
        // The last number could never be issued: `append` must move past it.
        if next_seq == u64::MAX {
            return Err(SpoolError::BadState {
                path: state_path,
                detail: "no sequence number is left".into(),
            });
        }
        let spool = Self {
            dir: dir.to_owned(),
            epoch,
            next_seq,
            max_bytes,
            pending_bytes: pending.values().map(|p| p.bytes).sum(),
            pending,
            dropped_batches: 0,
            dropped_bytes: 0,
            cursors: Vec::new(),
        };
        spool.write_state()?;
        Ok(spool)
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The number the next batch will get: every number this spool issued is below it.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The lowest number this spool may still send: its oldest pending batch, else the next.
    pub fn first_seq(&self) -> u64 {
        self.pending.keys().next().copied().unwrap_or(self.next_seq)
    }

    /// Takes a new random epoch, durably, keeping the pending batches and their numbers: for a
    /// spool whose numbering went back in time (see the invariants). Returns the new epoch.
    pub fn start_new_epoch(&mut self) -> Result<u64, SpoolError> {
        let old = self.epoch;
        while self.epoch == old {
            self.epoch = random_epoch().map_err(io_err(&self.dir))?;
        }
        if let Err(error) = self.write_state() {
            self.epoch = old;
            return Err(error);
        }
        Ok(self.epoch)
    }

    fn batch_path(&self, seq: u64) -> PathBuf {
        self.dir.join("batches").join(format!("{seq:020}.pb"))
    }

    fn write_state(&self) -> Result<(), SpoolError> {
        let text = format!("epoch {}\nnext_seq {}\n", self.epoch, self.next_seq);
        write_atomically(&self.dir, &self.dir.join("spool.state"), text.as_bytes())
    }

    /// Stores a batch durably and returns its sequence number. When the spool would exceed its
    /// bound, the oldest pending batches are dropped first (and counted): during a long outage
    /// the newest data is the most useful.
    pub fn append(&mut self, record: &SpoolRecord) -> Result<u64, SpoolError> {
        let bytes = prost::Message::encode_to_vec(record);
        let size = bytes.len() as u64;
        while self.pending_bytes + size > self.max_bytes {
            let Some((&oldest, &info)) = self.pending.first_key_value() else {
                break;
            };
            self.remove_file(oldest)?;
            self.pending.remove(&oldest);
            self.pending_bytes -= info.bytes;
            self.dropped_batches += 1;
            self.dropped_bytes += info.bytes;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.write_state()?;
        write_atomically(&self.dir.join("batches"), &self.batch_path(seq), &bytes)?;
        let spooled_ms = unix_ms(std::time::SystemTime::now());
        self.pending.insert(
            seq,
            Pending {
                bytes: size,
                spooled_ms,
            },
        );
        self.pending_bytes += size;
        Ok(seq)
    }

    fn remove_file(&self, seq: u64) -> Result<(), SpoolError> {
        let path = self.batch_path(seq);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(&path)(e)),
            _ => Ok(()),
        }
    }

    /// Reads a pending batch.
    pub fn read(&self, seq: u64) -> Result<SpoolRecord, SpoolError> {
        let path = self.batch_path(seq);
        let bytes = fs::read(&path).map_err(io_err(&path))?;
        prost::Message::decode(bytes.as_slice())
            .map_err(|source| SpoolError::BadBatch { path, source })
    }

    /// Pending sequence numbers after `after`, oldest first.
    pub fn pending_after(&self, after: u64) -> impl Iterator<Item = u64> + '_ {
        self.pending.range(after + 1..).map(|(&seq, _)| seq)
    }

    /// A new reader: a collector the batches go to, acknowledging them on its own.
    pub fn add_reader(&mut self) -> ReaderId {
        self.cursors.push(0);
        ReaderId(self.cursors.len() - 1)
    }

    /// `reader`'s collector holds every batch up to and including `seq` durably; batches every
    /// reader holds are deleted.
    pub fn ack(&mut self, reader: ReaderId, seq: u64) -> Result<(), SpoolError> {
        let cursor = &mut self.cursors[reader.0];
        *cursor = (*cursor).max(seq);
        let held_by_all = self.cursors.iter().copied().min().unwrap_or(0);
        while let Some((&oldest, &info)) = self.pending.first_key_value() {
            if oldest > held_by_all {
                break;
            }
            self.remove_file(oldest)?;
            self.pending.remove(&oldest);
            self.pending_bytes -= info.bytes;
        }
        Ok(())
    }

    /// The oldest pending batch after `after`.
    pub fn first_after(&self, after: u64) -> Option<u64> {
        self.pending_after(after).next()
    }

    /// Moves a batch the collector refused as invalid out of the way, keeping it for inspection.
    pub fn set_aside(&mut self, seq: u64) -> Result<(), SpoolError> {
        let Some(info) = self.pending.remove(&seq) else {
            return Ok(());
        };
        self.pending_bytes -= info.bytes;
        let rejected = self.dir.join("rejected");
        create_private_dir(&rejected).map_err(io_err(&rejected))?;
        let from = self.batch_path(seq);
        fs::rename(&from, rejected.join(format!("{seq:020}.pb"))).map_err(io_err(&from))
    }

    /// Batches `reader`'s collector has not acknowledged yet.
    pub fn pending_for(&self, reader: ReaderId) -> usize {
        self.pending_after(self.cursors[reader.0]).count()
    }

    pub fn stats(&self) -> SpoolStats {
        SpoolStats {
            batches: self.pending.len(),
            bytes: self.pending_bytes,
            oldest_ms: self.pending.values().next().map(|p| p.spooled_ms),
            dropped_batches: self.dropped_batches,
            dropped_bytes: self.dropped_bytes,
        }
    }
}

/// Locks a shared spool; a panic elsewhere does not make the spool unusable.
pub fn lock(spool: &std::sync::Mutex<Spool>) -> std::sync::MutexGuard<'_, Spool> {
    spool
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn parse_state(text: &str) -> Option<(u64, u64)> {
    let mut epoch = None;
    let mut next = None;
    for line in text.lines() {
        match line.split_once(' ') {
            Some(("epoch", v)) => epoch = v.trim().parse().ok(),
            Some(("next_seq", v)) => next = v.trim().parse().ok(),
            _ => {}
        }
    }
    Some((epoch?, next?))
}

/// Writes `path` so that it is either the old or the complete new content, even across a crash.
fn write_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(), SpoolError> {
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp).map_err(io_err(&tmp))?;
    file.write_all(bytes).map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    fs::rename(&tmp, path).map_err(io_err(path))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(value: f64) -> SpoolRecord {
        SpoolRecord {
            series: vec![],
            samples: vec![SeriesSamples {
                series_id: 0,
                timestamps_ms: vec![1],
                values: vec![value],
            }],
        }
    }

    /// Found by the `spool` fuzz target: a batch file numbered `u64::MAX` overflowed the next
    /// number at open.
    #[test]
    fn a_spool_with_no_number_left_is_refused_at_open() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("batches")).unwrap();
        fs::write(dir.path().join("spool.state"), "epoch 42\nnext_seq 3\n").unwrap();
        let last = dir.path().join(format!("batches/{:020}.pb", u64::MAX));
        fs::write(last, prost::Message::encode_to_vec(&record(1.0))).unwrap();
        let error = Spool::open(dir.path(), u64::MAX).err().unwrap();
        assert!(error.to_string().contains("no sequence number"), "{error}");
    }

    #[test]
    fn new_directories_are_private_and_existing_ones_keep_their_mode() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let spool_dir = dir.path().join("var/spool");
        let mut spool = Spool::open(&spool_dir, u64::MAX).unwrap();
        spool.append(&record(1.0)).unwrap();
        spool.set_aside(1).unwrap();
        for created in [
            "var",
            "var/spool",
            "var/spool/batches",
            "var/spool/rejected",
        ] {
            assert_eq!(mode(&dir.path().join(created)), 0o700, "{created}");
        }
        let shared = dir.path().join("shared");
        fs::create_dir(&shared).unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o755)).unwrap();
        Spool::open(&shared, u64::MAX).unwrap();
        assert_eq!(mode(&shared), 0o755);
    }

    #[test]
    fn keeps_unacked_batches_across_reopen_and_never_reuses_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let epoch = {
            let mut spool = Spool::open(dir.path(), u64::MAX).unwrap();
            assert_eq!(spool.append(&record(1.0)).unwrap(), 1);
            assert_eq!(spool.append(&record(2.0)).unwrap(), 2);
            assert_eq!(spool.append(&record(3.0)).unwrap(), 3);
            let reader = spool.add_reader();
            spool.ack(reader, 1).unwrap();
            spool.epoch()
        };
        let mut spool = Spool::open(dir.path(), u64::MAX).unwrap();
        assert_eq!(spool.epoch(), epoch);
        assert_eq!(spool.pending_after(0).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(spool.read(3).unwrap(), record(3.0));
        let reader = spool.add_reader();
        spool.ack(reader, 3).unwrap();
        let stats = spool.stats();
        assert_eq!((stats.batches, stats.bytes, stats.oldest_ms), (0, 0, None));
        drop(spool);
        let mut spool = Spool::open(dir.path(), u64::MAX).unwrap();
        assert_eq!(
            spool.append(&record(4.0)).unwrap(),
            4,
            "numbers continue after a full ack"
        );
    }

    #[test]
    fn recovers_from_a_crash_between_batch_and_state_write() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), u64::MAX).unwrap();
        spool.append(&record(1.0)).unwrap();
        // Simulate a state file that lags the batches (written by an older version, or restored
        // from a backup) and a temp file from an interrupted write.
        fs::write(
            spool.batch_path(2),
            prost::Message::encode_to_vec(&record(2.0)),
        )
        .unwrap();
        fs::write(
            dir.path().join("batches/00000000000000000003.tmp"),
            b"partial",
        )
        .unwrap();
        drop(spool);
        let mut spool = Spool::open(dir.path(), u64::MAX).unwrap();
        assert_eq!(spool.pending_after(0).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(spool.append(&record(3.0)).unwrap(), 3);
        spool.set_aside(2).unwrap();
        assert_eq!(spool.pending_after(0).collect::<Vec<_>>(), vec![1, 3]);
        assert!(dir.path().join("rejected/00000000000000000002.pb").exists());
        assert!(!dir.path().join("spool.tmp").exists());
    }

    #[test]
    fn a_new_epoch_keeps_the_pending_batches_and_their_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), u64::MAX).unwrap();
        for v in 1..=3 {
            spool.append(&record(f64::from(v))).unwrap();
        }
        let reader = spool.add_reader();
        spool.ack(reader, 1).unwrap();
        assert_eq!((spool.first_seq(), spool.next_seq()), (2, 4));
        let old = spool.epoch();
        let new = spool.start_new_epoch().unwrap();
        assert_ne!(new, old);
        drop(spool);

        let mut spool = Spool::open(dir.path(), u64::MAX).unwrap();
        assert_eq!(spool.epoch(), new, "the new epoch is durable");
        assert_eq!(spool.pending_after(0).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(spool.read(2).unwrap(), record(2.0));
        assert_eq!(spool.append(&record(4.0)).unwrap(), 4);
        let reader = spool.add_reader();
        spool.ack(reader, 4).unwrap();
        assert_eq!(
            spool.first_seq(),
            5,
            "with nothing pending, the next number"
        );
    }

    #[test]
    fn a_batch_is_deleted_once_every_collector_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), u64::MAX).unwrap();
        let (a, b) = (spool.add_reader(), spool.add_reader());
        for v in 1..=4 {
            spool.append(&record(f64::from(v))).unwrap();
        }
        spool.ack(a, 3).unwrap();
        assert_eq!(
            spool.pending_after(0).collect::<Vec<_>>(),
            vec![1, 2, 3, 4],
            "the other collector has none yet"
        );
        assert_eq!((spool.pending_for(a), spool.pending_for(b)), (1, 4));
        spool.ack(b, 2).unwrap();
        assert_eq!(spool.pending_after(0).collect::<Vec<_>>(), vec![3, 4]);
        assert!(!spool.batch_path(2).exists());
        // An older registration answer does not move a cursor back.
        spool.ack(a, 1).unwrap();
        spool.ack(b, 4).unwrap();
        assert_eq!(spool.pending_after(0).collect::<Vec<_>>(), vec![4]);
        assert_eq!((spool.pending_for(a), spool.pending_for(b)), (1, 0));
    }

    #[test]
    fn damaged_state_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("spool.state"), "garbage").unwrap();
        let err = Spool::open(dir.path(), u64::MAX)
            .err()
            .expect("damaged state must fail");
        assert!(err.to_string().contains("spool.state"), "{err}");
    }

    #[test]
    fn a_full_spool_drops_the_oldest_batches_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let size = prost::Message::encoded_len(&record(1.0)) as u64;
        let mut spool = Spool::open(dir.path(), 3 * size).unwrap();
        for v in 1..=5 {
            spool.append(&record(f64::from(v))).unwrap();
        }
        assert_eq!(spool.pending_after(0).collect::<Vec<_>>(), vec![3, 4, 5]);
        let stats = spool.stats();
        assert_eq!((stats.batches, stats.bytes), (3, 3 * size));
        assert_eq!((stats.dropped_batches, stats.dropped_bytes), (2, 2 * size));
        assert!(stats.oldest_ms.is_some());
        assert!(!spool.batch_path(1).exists() && !spool.batch_path(2).exists());
        assert_eq!(
            spool.read(3).unwrap(),
            record(3.0),
            "the newest are kept intact"
        );
        // The bound also holds for what an earlier run left behind.
        drop(spool);
        let mut spool = Spool::open(dir.path(), size).unwrap();
        spool.append(&record(6.0)).unwrap();
        assert_eq!(spool.pending_after(0).collect::<Vec<_>>(), vec![6]);
        assert_eq!(spool.stats().dropped_batches, 3);
    }
}

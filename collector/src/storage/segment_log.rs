//! The write-ahead log on disk: segment files of checksummed frames, synced in groups.
//!
//! # Format
//! A segment is `<id, 20 digits>.wal`, named for the id the log was at when it was created plus
//! one (no record in it is below that), holding a 16-byte header (`hcmonWAL`, format version u32
//! LE, 4 reserved bytes), then frames: payload length (u32 LE), CRC-32 of the id and payload
//! (u32 LE), id (u64 LE), payload.
//!
//! # Invariants
//! - Frames are written under one lock, so file order is id order; an id is taken only by a
//!   frame fully written (a failed write is cut off the file again, or poisons the log). The
//!   segment being written is open in append mode, so the next frame follows the cut.
//! - The log's directory entry is synced in its parent when created, each segment's in the
//!   log's directory, and the segment being written is synced at open: whatever the log holds
//!   when it opens is durable.
//! - `sync_through(id)` returns after an `fdatasync` that began after frame `id` was written.
//!   Callers waiting together share one: the first to take the sync lock syncs everything
//!   written by then, and the others find their id already durable (group commit).
//! - A segment is synced before the next one is created, and the directory after it is, so only
//!   the last segment can end in a torn frame; opening cuts it off there. A bad frame anywhere
//!   else is corruption and refuses the open.
//! - A failed sync poisons the log: Linux may drop the dirty pages of a failed `fsync`, so
//!   nothing written since can be trusted; every later append fails until a restart, which
//!   recovers what reached the disk.
//! - Segments are deleted whole, and never the one being written: one wholly released is closed
//!   first.

use super::StoreError;
use super::log::{Log, LogVisit};
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

const MAGIC: &[u8; 8] = b"hcmonWAL";
const VERSION: u32 = 1;
const HEADER_BYTES: u64 = 16;
const FRAME_HEADER_BYTES: usize = 16;
/// A frame longer than this is garbage, not a record (an ingest batch is a few MiB at most).
const MAX_PAYLOAD: usize = 1 << 30;
/// A segment past this size is closed at the next append (small in unit tests, so they cross
/// segments).
const SEGMENT_BYTES: u64 = if cfg!(test) { 64 << 10 } else { 64 << 20 };
/// One sparse index entry per this many bytes of a segment: reads seek to the entry at or before
/// their first record and scan from there.
const INDEX_EVERY: u64 = if cfg!(test) { 1 << 10 } else { 256 << 10 };

struct Segment {
    path: PathBuf,
    /// Id of its first frame, or of the first it will hold while empty.
    first: u64,
    /// Id of its last frame; `first - 1` while empty.
    last: u64,
    bytes: u64,
    /// (id, offset) of a frame every `INDEX_EVERY` bytes, the first frame's included.
    index: Vec<(u64, u64)>,
}

impl Segment {
    /// Where to start reading for the first frame above `after`.
    fn seek_for(&self, after: u64) -> u64 {
        let at = self
            .index
            .partition_point(|&(id, _)| id <= after.saturating_add(1));
        at.checked_sub(1).map_or(HEADER_BYTES, |i| self.index[i].1)
    }

    fn note_frame(&mut self, id: u64, offset: u64, frame_bytes: u64) {
        let indexed_to = self.index.last().map_or(0, |&(_, at)| at);
        if self.index.is_empty() || offset - indexed_to >= INDEX_EVERY {
            self.index.push((id, offset));
        }
        if self.last < self.first {
            self.first = id;
        }
        self.last = id;
        self.bytes = offset + frame_bytes;
    }
}

struct Writer {
    file: Arc<File>,
    /// The segments, oldest first; the last one is written.
    segments: Vec<Segment>,
    /// The id of the last frame written.
    last: u64,
    rotate: bool,
    /// Reused to build frames, so an append does not allocate.
    frame: Vec<u8>,
}

pub struct SegmentLog {
    dir: PathBuf,
    writer: Mutex<Writer>,
    /// Held by the one appender syncing for everyone waiting.
    syncing: Mutex<()>,
    durable: AtomicU64,
    poisoned: AtomicBool,
}

fn io_write(error: std::io::Error) -> StoreError {
    StoreError::Write(Box::new(error))
}

fn io_read(error: std::io::Error) -> StoreError {
    StoreError::Read(Box::new(error))
}

pub(super) fn ids_exhausted() -> StoreError {
    StoreError::Write("the write-ahead log's last record has the largest possible id".into())
}

fn segment_name(first: u64) -> String {
    format!("{first:020}.wal")
}

fn frame_crc(id: u64, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&id.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

fn encode_frame(out: &mut Vec<u8>, id: u64, payload: &[u8]) {
    out.clear();
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&frame_crc(id, payload).to_le_bytes());
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(payload);
}

/// One frame read back, or why the bytes at this offset are none.
enum Frame {
    Read { id: u64, frame_bytes: u64 },
    End,
    Bad(String),
}

/// Reads the frame at the reader's position into `payload`; `room` is how many bytes the file
/// holds from there, so a garbled length is never allocated.
fn read_frame(
    reader: &mut impl Read,
    payload: &mut Vec<u8>,
    room: u64,
) -> Result<Frame, std::io::Error> {
    let mut header = [0u8; FRAME_HEADER_BYTES];
    let mut got = 0;
    while got < header.len() {
        match reader.read(&mut header[got..])? {
            0 if got == 0 => return Ok(Frame::End),
            0 => {
                return Ok(Frame::Bad(format!(
                    "a frame header cut short after {got} bytes"
                )));
            }
            n => got += n,
        }
    }
    let len = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
    let id = u64::from_le_bytes(header[8..16].try_into().expect("8 bytes"));
    if len > MAX_PAYLOAD || (FRAME_HEADER_BYTES + len) as u64 > room {
        return Ok(Frame::Bad(format!(
            "record {id} claims {len} bytes, {room} are left"
        )));
    }
    payload.clear();
    payload.resize(len, 0);
    let mut filled = 0;
    while filled < len {
        match reader.read(&mut payload[filled..])? {
            0 => {
                return Ok(Frame::Bad(format!(
                    "record {id} cut short: {filled} of {len} bytes"
                )));
            }
            n => filled += n,
        }
    }
    if frame_crc(id, payload) != crc {
        return Ok(Frame::Bad(format!("record {id} fails its checksum")));
    }
    Ok(Frame::Read {
        id,
        frame_bytes: (FRAME_HEADER_BYTES + len) as u64,
    })
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_write)
}

/// Creates segment `first` with its header, synced, and the directory entry synced; returns it
/// open for appending. A segment that could not be made whole is removed again, so no
/// header-less file is left to refuse a later start.
fn create_segment(dir: &Path, first: u64) -> Result<(File, Segment), StoreError> {
    let path = dir.join(segment_name(first));
    let made = (|| {
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)?;
        let mut header = Vec::with_capacity(HEADER_BYTES as usize);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&VERSION.to_le_bytes());
        header.extend_from_slice(&[0; 4]);
        file.write_all(&header)?;
        file.sync_data()?;
        OpenOptions::new().append(true).open(&path)
    })();
    let file = match made {
        Ok(file) => file,
        Err(error) => {
            let _ = std::fs::remove_file(&path);
            return Err(io_write(error));
        }
    };
    sync_dir(dir)?;
    let segment = Segment {
        path,
        first,
        last: first - 1,
        bytes: HEADER_BYTES,
        index: Vec::new(),
    };
    Ok((file, segment))
}

impl SegmentLog {
    /// Opens the log in `dir` (created if missing): checks every segment's frames, cuts a torn
    /// frame off the last one, and refuses a bad frame anywhere else.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let open_error = |e: std::io::Error| StoreError::Open {
            path: dir.to_owned(),
            source: Box::new(e),
        };
        if !dir.exists() {
            std::fs::create_dir_all(dir).map_err(open_error)?;
            if let Some(parent) = dir.parent() {
                sync_dir(parent)?;
            }
        }
        let mut firsts = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(open_error)? {
            let name = entry.map_err(open_error)?.file_name();
            let name = name.to_string_lossy();
            if let Some(first) = name.strip_suffix(".wal")
                && first.len() == 20
                && first.bytes().all(|b| b.is_ascii_digit())
                && let Ok(first) = first.parse::<u64>()
            {
                firsts.push(first);
            }
        }
        firsts.sort_unstable();
        let mut segments: Vec<Segment> = Vec::new();
        let mut last = 0u64;
        let count = firsts.len();
        for (n, first) in firsts.into_iter().enumerate() {
            let is_last = n + 1 == count;
            let segment = Self::check_segment(dir, first, &mut last, is_last)?;
            segments.push(segment);
        }
        let (file, segments) = match segments.last() {
            Some(active) => {
                let file = OpenOptions::new()
                    .append(true)
                    .open(&active.path)
                    .map_err(open_error)?;
                // Frames a killed process wrote but did not sync are in the page cache: synced
                // now, before anyone reads them as durable or takes the ids after them.
                file.sync_data().map_err(open_error)?;
                (file, segments)
            }
            None => {
                let (file, segment) = create_segment(dir, 1)?;
                (file, vec![segment])
            }
        };
        Ok(Self {
            dir: dir.to_owned(),
            writer: Mutex::new(Writer {
                file: Arc::new(file),
                segments,
                last,
                rotate: false,
                frame: Vec::new(),
            }),
            syncing: Mutex::new(()),
            durable: AtomicU64::new(last),
            poisoned: AtomicBool::new(false),
        })
    }

    /// Reads segment `first` through, building its index; `last` is the id before it.
    fn check_segment(
        dir: &Path,
        first: u64,
        last: &mut u64,
        is_last: bool,
    ) -> Result<Segment, StoreError> {
        let path = dir.join(segment_name(first));
        let corrupt = |offset: u64, detail: String| StoreError::LogCorrupt {
            path: path.clone(),
            offset,
            detail,
        };
        if first == 0 {
            return Err(corrupt(
                0,
                "a segment named for record 0, which no record is".into(),
            ));
        }
        // The name says where the log was when the segment began, even if every record before
        // it has been released since.
        *last = (*last).max(first - 1);
        let file = File::open(&path).map_err(io_read)?;
        let len = file.metadata().map_err(io_read)?.len();
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut header = [0u8; HEADER_BYTES as usize];
        if len < HEADER_BYTES {
            if !is_last {
                return Err(corrupt(0, format!("a {len}-byte segment has no header")));
            }
            // Created but not yet synced when the process died: start it again.
            drop(reader);
            let (_, mut segment) = create_segment(dir, first)?;
            segment.first = last.saturating_add(1);
            segment.last = *last;
            return Ok(segment);
        }
        reader.read_exact(&mut header).map_err(io_read)?;
        if &header[..8] != MAGIC {
            return Err(corrupt(0, "not a write-ahead log segment".to_owned()));
        }
        let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
        if version != VERSION {
            return Err(corrupt(
                8,
                format!("format version {version}; this collector reads version {VERSION}"),
            ));
        }
        let mut segment = Segment {
            path: path.clone(),
            first,
            last: first - 1,
            bytes: HEADER_BYTES,
            index: Vec::new(),
        };
        let mut payload = Vec::new();
        let mut offset = HEADER_BYTES;
        loop {
            match read_frame(&mut reader, &mut payload, len - offset).map_err(io_read)? {
                Frame::End => break,
                Frame::Read { id, frame_bytes } => {
                    if id <= *last || id < first {
                        return Err(corrupt(
                            offset,
                            format!("record {id} after record {}", *last),
                        ));
                    }
                    segment.note_frame(id, offset, frame_bytes);
                    *last = id;
                    offset += frame_bytes;
                }
                Frame::Bad(detail) if is_last => {
                    // The process or the machine died while this frame was written: it was
                    // never acknowledged. Cut it off so new frames follow the good ones.
                    tracing::warn!(
                        path = %path.display(),
                        offset,
                        last_record_kept = *last,
                        dropped_bytes = len - offset,
                        %detail,
                        "torn write-ahead log tail cut off"
                    );
                    let file = OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(io_write)?;
                    file.set_len(offset).map_err(io_write)?;
                    file.sync_all().map_err(io_write)?;
                    break;
                }
                Frame::Bad(detail) => return Err(corrupt(offset, detail)),
            }
        }
        if segment.last < segment.first {
            // An empty segment takes ids from where the log is.
            segment.first = last.saturating_add(1);
            segment.last = *last;
        }
        Ok(segment)
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check_poisoned(&self) -> Result<(), StoreError> {
        if self.poisoned.load(Ordering::SeqCst) {
            return Err(StoreError::LogPoisoned);
        }
        Ok(())
    }

    /// Writes one frame under the writer lock; on failure the file is cut back to where it was.
    fn write_frame(&self, w: &mut Writer, id: u64, payload: &[u8]) -> Result<(), StoreError> {
        if payload.len() > MAX_PAYLOAD {
            return Err(StoreError::Write(
                format!("a {}-byte log record is over the limit", payload.len()).into(),
            ));
        }
        let active = w.segments.last().expect("one segment at least");
        if w.rotate || active.bytes >= SEGMENT_BYTES {
            self.start_segment(w, id)?;
        }
        let mut frame = std::mem::take(&mut w.frame);
        encode_frame(&mut frame, id, payload);
        let offset = w.segments.last().expect("one segment at least").bytes;
        let written = (&*w.file).write_all(&frame);
        // A large batch's buffer is not kept for the small ones after it.
        if frame.capacity() <= 1 << 20 {
            w.frame = frame;
        }
        if let Err(error) = written {
            // Cut the partial frame off, so the next frame follows a whole one.
            if w.file.set_len(offset).is_err() {
                self.poisoned.store(true, Ordering::SeqCst);
            }
            return Err(io_write(error));
        }
        let frame_bytes = (FRAME_HEADER_BYTES + payload.len()) as u64;
        w.segments
            .last_mut()
            .expect("one segment at least")
            .note_frame(id, offset, frame_bytes);
        w.last = id;
        Ok(())
    }

    /// Closes the active segment (synced) and starts one whose first id is `first`.
    fn start_segment(&self, w: &mut Writer, first: u64) -> Result<(), StoreError> {
        self.check_poisoned()?;
        let active = w.segments.last().expect("one segment at least");
        if active.last < active.first {
            // Empty: it takes the next frame as it is.
            w.rotate = false;
            return Ok(());
        }
        if let Err(error) = w.file.sync_data() {
            self.poisoned.store(true, Ordering::SeqCst);
            return Err(io_write(error));
        }
        self.durable.fetch_max(w.last, Ordering::SeqCst);
        let (file, segment) = create_segment(&self.dir, first)?;
        w.file = Arc::new(file);
        w.segments.push(segment);
        w.rotate = false;
        Ok(())
    }

    /// The segments' paths and index entries a read from `after` needs, oldest first.
    fn segments_after(&self, after: u64) -> Vec<(PathBuf, u64, u64)> {
        let w = self.writer();
        w.segments
            .iter()
            .filter(|s| s.last > after)
            .map(|s| (s.path.clone(), s.seek_for(after), s.bytes))
            .collect()
    }
}

impl Log for SegmentLog {
    fn write(&self, record: &[u8]) -> Result<u64, StoreError> {
        self.check_poisoned()?;
        let mut w = self.writer();
        let id = w.last.checked_add(1).ok_or_else(ids_exhausted)?;
        self.write_frame(&mut w, id, record)?;
        Ok(id)
    }

    /// The first caller to take the sync lock syncs every frame written by then; the callers
    /// queued behind it find their frames durable and leave without a sync of their own.
    fn sync_through(&self, id: u64) -> Result<(), StoreError> {
        if self.durable.load(Ordering::SeqCst) >= id {
            return Ok(());
        }
        let _one = self.syncing.lock().unwrap_or_else(|p| p.into_inner());
        if self.durable.load(Ordering::SeqCst) >= id {
            return Ok(());
        }
        self.check_poisoned()?;
        let (file, upto) = {
            let w = self.writer();
            (w.file.clone(), w.last)
        };
        if let Err(error) = file.sync_data() {
            self.poisoned.store(true, Ordering::SeqCst);
            return Err(io_write(error));
        }
        self.durable.fetch_max(upto, Ordering::SeqCst);
        Ok(())
    }

    fn import(&self, id: u64, record: &[u8]) -> Result<(), StoreError> {
        self.check_poisoned()?;
        let mut w = self.writer();
        if id <= w.last {
            return Err(StoreError::Write(
                format!("log record {id} imported after record {}", w.last).into(),
            ));
        }
        self.write_frame(&mut w, id, record)
    }

    fn continue_after(&self, id: u64) {
        let mut w = self.writer();
        if id > w.last {
            w.last = id;
            let active = w.segments.last_mut().expect("one segment at least");
            if active.last < active.first {
                active.first = id.saturating_add(1);
                active.last = id;
            }
            self.durable.fetch_max(id, Ordering::SeqCst);
        }
    }

    fn durable(&self) -> u64 {
        self.durable.load(Ordering::SeqCst)
    }

    fn last_id(&self) -> u64 {
        self.writer().last
    }

    fn read(&self, after: u64, visit: &mut LogVisit<'_>) -> Result<(), StoreError> {
        let durable = self.durable();
        let mut payload = Vec::new();
        for (path, offset, end) in self.segments_after(after) {
            let file = match File::open(&path) {
                Ok(file) => file,
                // Released meanwhile: its records were below a checkpoint's position.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_read(e)),
            };
            let mut reader = BufReader::with_capacity(256 << 10, file);
            reader.seek(SeekFrom::Start(offset)).map_err(io_read)?;
            // Bounded by what was written when the read began: frames after it may be half
            // written.
            let mut reader = reader.take(end - offset);
            let mut at = offset;
            loop {
                match read_frame(&mut reader, &mut payload, end - at).map_err(io_read)? {
                    Frame::End => break,
                    Frame::Read { id, .. } if id > durable => return Ok(()),
                    Frame::Read { id, frame_bytes } => {
                        at += frame_bytes;
                        if id > after && !visit(id, &payload) {
                            return Ok(());
                        }
                    }
                    Frame::Bad(detail) => {
                        return Err(StoreError::LogCorrupt {
                            path,
                            offset: at,
                            detail,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    fn bytes_after(&self, after: u64) -> Result<u64, StoreError> {
        let mut bytes = 0u64;
        self.read(after, &mut |_, payload| {
            bytes += (FRAME_HEADER_BYTES + payload.len()) as u64;
            true
        })?;
        Ok(bytes)
    }

    fn release(&self, upto: u64) -> Result<(), StoreError> {
        let doomed: Vec<PathBuf> = {
            let mut w = self.writer();
            // A segment wholly released while it is written is closed, so it can go too (a
            // compaction's checkpoint leaves no log behind).
            let active = w.segments.last().expect("one segment at least");
            if active.last >= active.first
                && active.last <= upto
                && let Some(next) = w.last.checked_add(1)
            {
                self.start_segment(&mut w, next)?;
            }
            let active = w.segments.len() - 1;
            let whole = w.segments[..active]
                .iter()
                .take_while(|s| s.last <= upto)
                .count();
            w.segments.drain(..whole).map(|s| s.path).collect()
        };
        for path in doomed {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_write(e)),
            }
        }
        Ok(())
    }

    fn rotate(&self) {
        self.writer().rotate = true;
    }

    fn disk_size(&self) -> u64 {
        self.writer().segments.iter().map(|s| s.bytes).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(log: &SegmentLog, after: u64) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::new();
        log.read(after, &mut |id, record| {
            out.push((id, record.to_vec()));
            true
        })
        .unwrap();
        out
    }

    fn record(i: u64) -> Vec<u8> {
        vec![i as u8; (i % 7) as usize * 100 + 1]
    }

    fn segment_files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "wal"))
            .collect();
        files.sort();
        files
    }

    #[test]
    fn records_come_back_in_order_after_a_restart_and_from_any_id() {
        let dir = tempfile::tempdir().unwrap();
        let log = SegmentLog::open(dir.path()).unwrap();
        for i in 1..=50 {
            assert_eq!(log.append(&record(i)).unwrap(), i);
        }
        assert_eq!((log.durable(), log.last_id()), (50, 50));
        drop(log);
        let log = SegmentLog::open(dir.path()).unwrap();
        assert_eq!(log.durable(), 50);
        let all = records(&log, 0);
        assert_eq!(all.len(), 50);
        assert!(all.iter().all(|(id, r)| *r == record(*id)));
        assert_eq!(
            records(&log, 47).iter().map(|r| r.0).collect::<Vec<_>>(),
            [48, 49, 50]
        );
        assert!(records(&log, 50).is_empty());
        assert_eq!(log.append(b"next").unwrap(), 51);
        let bytes: u64 = (48..=51)
            .map(|i| FRAME_HEADER_BYTES as u64 + records(&log, i - 1)[0].1.len() as u64)
            .sum();
        assert_eq!(log.bytes_after(47).unwrap(), bytes);
    }

    /// A record written is read only once a sync covers it; one sync covers every record
    /// written before it, including those written across a segment's end.
    #[test]
    fn written_records_are_read_once_a_sync_covers_them() {
        let dir = tempfile::tempdir().unwrap();
        let log = SegmentLog::open(dir.path()).unwrap();
        assert_eq!(log.write(&record(1)).unwrap(), 1);
        assert_eq!(log.write(&record(2)).unwrap(), 2);
        assert_eq!(log.durable(), 0);
        assert!(records(&log, 0).is_empty());
        log.sync_through(1).unwrap();
        assert_eq!(log.durable(), 2);
        assert_eq!(records(&log, 0).len(), 2);
        log.write(&record(3)).unwrap();
        log.rotate();
        log.write(&record(4)).unwrap();
        // The rotation synced the closed segment on its way.
        assert_eq!(log.durable(), 3);
        log.sync().unwrap();
        assert_eq!(
            records(&log, 2).iter().map(|r| r.0).collect::<Vec<_>>(),
            [3, 4]
        );
    }

    /// A crash can leave any prefix of the last frame's bytes: the open keeps every whole frame
    /// before it and appends after them.
    #[test]
    fn a_torn_last_frame_is_cut_off_at_every_length() {
        let dir = tempfile::tempdir().unwrap();
        let log = SegmentLog::open(dir.path()).unwrap();
        for i in 1..=3 {
            log.append(&record(i)).unwrap();
        }
        drop(log);
        let path = segment_files(dir.path()).pop().unwrap();
        let whole = std::fs::read(&path).unwrap();
        let last_frame = FRAME_HEADER_BYTES + record(3).len();
        let kept = whole.len() - last_frame;
        for cut in kept + 1..whole.len() {
            std::fs::write(&path, &whole[..cut]).unwrap();
            let log = SegmentLog::open(dir.path()).unwrap();
            assert_eq!(log.last_id(), 2, "cut at {cut}");
            assert_eq!(std::fs::metadata(&path).unwrap().len() as usize, kept);
            assert_eq!(log.append(b"again").unwrap(), 3);
            let read = records(&log, 0);
            assert_eq!(read.len(), 3);
            assert_eq!(read[2].1, b"again");
        }
        // A flipped byte in the last frame fails its checksum: cut off the same way.
        let mut flipped = whole.clone();
        flipped[whole.len() - 1] ^= 0x40;
        std::fs::write(&path, &flipped).unwrap();
        assert_eq!(SegmentLog::open(dir.path()).unwrap().last_id(), 2);
    }

    #[test]
    fn a_bad_frame_before_the_last_segment_refuses_the_open() {
        let dir = tempfile::tempdir().unwrap();
        let log = SegmentLog::open(dir.path()).unwrap();
        log.append(&record(1)).unwrap();
        log.append(&record(2)).unwrap();
        log.rotate();
        log.append(&record(3)).unwrap();
        drop(log);
        let first = segment_files(dir.path()).remove(0);
        let mut bytes = std::fs::read(&first).unwrap();
        let at = bytes.len() - 1;
        bytes[at] ^= 1;
        std::fs::write(&first, &bytes).unwrap();
        let error = SegmentLog::open(dir.path()).err().unwrap().to_string();
        assert!(error.contains("corrupt write-ahead log"), "{error}");
        assert!(error.contains("record 2 fails its checksum"), "{error}");
        assert!(error.contains(&first.display().to_string()), "{error}");

        std::fs::write(&first, b"something else entirely").unwrap();
        let error = SegmentLog::open(dir.path()).err().unwrap().to_string();
        assert!(error.contains("not a write-ahead log segment"), "{error}");
    }

    #[test]
    fn release_deletes_whole_segments_below_the_id_never_the_active_one() {
        let dir = tempfile::tempdir().unwrap();
        let log = SegmentLog::open(dir.path()).unwrap();
        for i in 1..=3 {
            log.append(&record(i)).unwrap();
        }
        log.rotate();
        for i in 4..=6 {
            log.append(&record(i)).unwrap();
        }
        log.rotate();
        log.append(&record(7)).unwrap();
        assert_eq!(segment_files(dir.path()).len(), 3);
        // Record 5's segment holds 6 too: it stays.
        log.release(5).unwrap();
        assert_eq!(segment_files(dir.path()).len(), 2);
        assert_eq!(records(&log, 0).first().unwrap().0, 4);
        log.release(6).unwrap();
        assert_eq!(segment_files(dir.path()).len(), 1);
        assert_eq!(
            records(&log, 0).iter().map(|r| r.0).collect::<Vec<_>>(),
            [7]
        );
        // Everything released: the segment written is closed and removed too.
        log.release(7).unwrap();
        assert_eq!(segment_files(dir.path()).len(), 1);
        assert!(records(&log, 0).is_empty());
        assert_eq!(log.disk_size(), HEADER_BYTES);
        drop(log);
        let log = SegmentLog::open(dir.path()).unwrap();
        assert_eq!(log.append(b"x").unwrap(), 8);
    }

    #[test]
    fn imported_ids_and_a_later_start_are_kept_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let log = SegmentLog::open(dir.path()).unwrap();
        log.import(10, b"ten").unwrap();
        log.import(14, b"fourteen").unwrap();
        assert!(log.import(12, b"back").is_err());
        // Not synced yet: readers do not see them.
        assert!(records(&log, 0).is_empty());
        log.sync().unwrap();
        assert_eq!(
            records(&log, 0).iter().map(|r| r.0).collect::<Vec<_>>(),
            [10, 14]
        );
        drop(log);
        let log = SegmentLog::open(dir.path()).unwrap();
        assert_eq!(log.last_id(), 14);
        log.continue_after(100);
        assert_eq!(log.append(b"a").unwrap(), 101);
        drop(log);
        assert_eq!(SegmentLog::open(dir.path()).unwrap().last_id(), 101);

        // An empty log continues from where the engine was.
        let fresh = tempfile::tempdir().unwrap();
        let log = SegmentLog::open(fresh.path()).unwrap();
        log.continue_after(41);
        assert_eq!(log.append(b"b").unwrap(), 42);
        drop(log);
        let log = SegmentLog::open(fresh.path()).unwrap();
        assert_eq!(
            records(&log, 0).iter().map(|r| r.0).collect::<Vec<_>>(),
            [42]
        );
    }

    /// Appenders on many threads: every id once, every record readable in id order, and the
    /// syncs shared (fewer than the appends, since they wait together).
    #[test]
    fn concurrent_appends_take_every_id_once() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(SegmentLog::open(dir.path()).unwrap());
        let threads: Vec<_> = (0..8u8)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    (0..100u8)
                        .map(|i| log.append(&[t, i]).unwrap())
                        .collect::<Vec<u64>>()
                })
            })
            .collect();
        let mut ids: Vec<u64> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        ids.sort_unstable();
        assert_eq!(ids, (1..=800).collect::<Vec<u64>>());
        let read = records(&log, 0);
        assert_eq!(read.len(), 800);
        // Each thread's records are in its own order.
        for t in 0..8u8 {
            let mine: Vec<u8> = read
                .iter()
                .filter(|r| r.1[0] == t)
                .map(|r| r.1[1])
                .collect();
            assert_eq!(mine, (0..100u8).collect::<Vec<u8>>());
        }
    }

    #[test]
    fn a_full_segment_is_closed_and_the_next_started() {
        let dir = tempfile::tempdir().unwrap();
        let log = SegmentLog::open(dir.path()).unwrap();
        let big = vec![7u8; (SEGMENT_BYTES / 3) as usize];
        for _ in 0..4 {
            log.append(&big).unwrap();
        }
        let files = segment_files(dir.path());
        assert_eq!(files.len(), 2);
        assert!(files[1].ends_with(segment_name(4)));
        // A read from the middle of a long segment seeks through its index.
        assert_eq!(
            records(&log, 2).iter().map(|r| r.0).collect::<Vec<_>>(),
            [3, 4]
        );
    }
}

//! `OpenChunk`: a series' open chunk in the head, kept encoded as it grows, so the head holds
//! about a byte per sample of a regular series instead of sixteen for a raw pair.
//!
//! Pure. Appending is amortized O(1); the newest samples are byte-aligned (it runs on the
//! ingest path for every sample). The sealed chunk is re-encoded by
//! [`super::chunk::encode_chunk`], which picks the smallest of its codecs over the whole chunk.
//!
//! Layout of `bytes`: the first sample as a zigzag varint timestamp and the value's eight bytes
//! (little-endian); each later one as a control byte, then the timestamp's delta-of-delta as a
//! zigzag varint if the control's top bit says it is not zero, then the meaningful bytes of the
//! value's XOR with the previous value, most significant first. The control's bits 4–6 count
//! the XOR's leading zero bytes, bits 0–3 its meaningful bytes (0: the value repeats).
//!
//! The newest sample is held apart, not yet encoded, because a client's retry may replace its
//! value ([`OpenChunk::replace_newest`]).
//!
//! Every [`FREEZE_AT`] samples, the bytes above are re-encoded by the chunk codec into a frozen
//! segment (a varint length, then the segment). Byte-aligned XOR takes three to five bytes per
//! sample of a noisy gauge, the codec about one: a chunk stays open for up to two hours, and in
//! `just bench-ingest` open chunks were the head's largest part (45 of its 65 MiB).

use super::chunk::{
    decode_chunk, encode_chunk, get_varint as get_length, put_varint as put_length,
};

/// Samples encoded byte-aligned before they are frozen: Prometheus' chunk size, where the
/// codec's per-segment header is a few percent of the segment.
const FREEZE_AT: u32 = 120;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpenChunk {
    /// The older samples, in frozen segments.
    frozen: Vec<u8>,
    /// The samples since, byte-aligned: all but the newest of `len` go to segments of
    /// [`FREEZE_AT`], so the bytes hold `(len - 1) % FREEZE_AT` samples.
    bytes: Vec<u8>,
    state: ChunkState,
}

/// An open chunk's fixed-size fields: everything but its bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct ChunkState {
    /// Of the newest encoded sample: its time, its step from the one before, its value's bits.
    encoded_ts: i64,
    encoded_delta: i64,
    encoded_bits: u64,
    first_ts: Option<i64>,
    newest: Option<(i64, f64)>,
    len: u32,
}

/// An open chunk copied into a buffer shared with others: its fixed fields, and where its
/// bytes went. A checkpoint copies every changed head while appends wait; one buffer for all
/// of them costs no allocation per chunk (two vectors each, cloned).
#[derive(Debug, Clone, Copy)]
pub struct OpenChunkCopy {
    /// Where its frozen bytes start in the buffer; its other bytes follow them.
    at: usize,
    frozen: usize,
    bytes: usize,
    state: ChunkState,
}

fn put_varint(out: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(bytes: &[u8], pos: &mut usize) -> i64 {
    let (mut v, mut shift) = (0u64, 0);
    loop {
        let b = bytes[*pos];
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            break;
        }
        shift += 7;
    }
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

impl OpenChunk {
    /// An open chunk holding `samples` (in time order), as read back from a head snapshot.
    pub fn from_samples(samples: &[(i64, f64)]) -> Self {
        let mut chunk = Self::default();
        for &(ts, value) in samples {
            chunk.push(ts, value);
        }
        chunk
    }

    pub fn len(&self) -> usize {
        self.state.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.state.len == 0
    }

    pub fn first_ts(&self) -> Option<i64> {
        self.state.first_ts
    }

    pub fn newest(&self) -> Option<(i64, f64)> {
        self.state.newest
    }

    /// Reads what a push reads (its fields, the end of its bytes), for a writer to bring them
    /// into the cache ahead of the push. The value means nothing.
    pub fn read_ahead(&self) -> u64 {
        self.state.encoded_bits ^ u64::from(self.bytes.last().copied().unwrap_or(0))
    }

    /// Reads the start of both its byte lists, for a copier to bring them into the cache
    /// ahead of [`OpenChunk::copy_into`]. The value means nothing.
    pub fn read_ahead_copy(&self) -> u64 {
        let first = |bytes: &[u8]| u64::from(bytes.first().copied().unwrap_or(0));
        first(&self.frozen) ^ first(&self.bytes)
    }

    /// Appends its bytes to `buffer`; [`OpenChunk::from_copy`] with the same buffer gives it
    /// back.
    pub fn copy_into(&self, buffer: &mut Vec<u8>) -> OpenChunkCopy {
        let at = buffer.len();
        buffer.extend_from_slice(&self.frozen);
        buffer.extend_from_slice(&self.bytes);
        OpenChunkCopy {
            at,
            frozen: self.frozen.len(),
            bytes: self.bytes.len(),
            state: self.state,
        }
    }

    /// The chunk `copy` was made of, from the buffer it was copied into.
    pub fn from_copy(copy: &OpenChunkCopy, buffer: &[u8]) -> OpenChunk {
        let bytes_at = copy.at + copy.frozen;
        OpenChunk {
            frozen: buffer[copy.at..bytes_at].to_vec(),
            bytes: buffer[bytes_at..bytes_at + copy.bytes].to_vec(),
            state: copy.state,
        }
    }

    /// Appends a sample later than every one held.
    pub fn push(&mut self, ts: i64, value: f64) {
        if let Some((prev_ts, prev_value)) = self.state.newest {
            self.encode(prev_ts, prev_value);
        }
        self.state.first_ts.get_or_insert(ts);
        self.state.newest = Some((ts, value));
        self.state.len += 1;
    }

    /// Gives the newest sample another value (a repeat of its time).
    pub fn replace_newest(&mut self, value: f64) {
        if let Some(newest) = &mut self.state.newest {
            newest.1 = value;
        }
    }

    fn encode(&mut self, ts: i64, value: f64) {
        let bits = value.to_bits();
        if self.bytes.is_empty() {
            put_varint(&mut self.bytes, ts);
            self.bytes.extend_from_slice(&bits.to_le_bytes());
            self.state.encoded_delta = 0;
        } else {
            let delta = ts - self.state.encoded_ts;
            let dod = delta - self.state.encoded_delta;
            let xor = bits ^ self.state.encoded_bits;
            let (lead, meaningful) = match xor {
                0 => (0, 0),
                _ => {
                    let lead = (xor.leading_zeros() / 8).min(7);
                    (lead, 8 - lead - xor.trailing_zeros() / 8)
                }
            };
            let control = (u8::from(dod != 0) << 7) | ((lead as u8) << 4) | meaningful as u8;
            self.bytes.push(control);
            if dod != 0 {
                put_varint(&mut self.bytes, dod);
            }
            let trail = 8 - lead - meaningful;
            let middle = xor.checked_shr(8 * trail).unwrap_or(0).to_be_bytes();
            self.bytes
                .extend_from_slice(&middle[8 - meaningful as usize..]);
            self.state.encoded_delta = delta;
        }
        self.state.encoded_ts = ts;
        self.state.encoded_bits = bits;
        // Called before `len` counts the newest sample: it is now the number encoded.
        if self.state.len.is_multiple_of(FREEZE_AT) {
            self.freeze();
        }
    }

    /// Moves the byte-aligned samples into a frozen segment. The next sample starts the bytes
    /// afresh, with its full time and value.
    fn freeze(&mut self) {
        let mut samples = Vec::with_capacity(FREEZE_AT as usize);
        decode_tail(&self.bytes, &mut samples);
        let segment = encode_chunk(&samples);
        // Exact: the frozen bytes live as long as the chunk, and doubling would leave up to
        // half of them unused.
        self.frozen.reserve_exact(segment.len() + 2);
        put_length(&mut self.frozen, segment.len() as u64);
        self.frozen.extend_from_slice(&segment);
        self.bytes = Vec::new();
    }

    /// Every sample held, in time order.
    pub fn samples(&self) -> Vec<(i64, f64)> {
        let mut out = Vec::with_capacity(self.len());
        let mut pos = 0;
        while pos < self.frozen.len() {
            let segment = get_length(&self.frozen, &mut pos)
                .ok()
                .and_then(|len| self.frozen.get(pos..pos + usize::try_from(len).ok()?))
                .expect("frozen segments are written whole by `freeze`");
            pos += segment.len();
            out.extend(decode_chunk(segment).expect("the chunk codec decodes what it encoded"));
        }
        decode_tail(&self.bytes, &mut out);
        out.extend(self.state.newest);
        out
    }

    /// Bytes held on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.frozen.capacity() + self.bytes.capacity()
    }
}

/// Appends the byte-aligned samples of `bytes` to `out`.
fn decode_tail(bytes: &[u8], out: &mut Vec<(i64, f64)>) {
    if bytes.is_empty() {
        return;
    }
    let mut pos = 0;
    let mut ts = get_varint(bytes, &mut pos);
    let mut bits = u64::from_le_bytes(bytes[pos..pos + 8].try_into().expect("8 bytes"));
    pos += 8;
    let mut delta = 0;
    out.push((ts, f64::from_bits(bits)));
    while pos < bytes.len() {
        let control = bytes[pos];
        pos += 1;
        if control & 0x80 != 0 {
            delta += get_varint(bytes, &mut pos);
        }
        ts += delta;
        let lead = u32::from((control >> 4) & 0x7);
        let meaningful = usize::from(control & 0x0f);
        let mut middle = [0u8; 8];
        middle[8 - meaningful..].copy_from_slice(&bytes[pos..pos + meaningful]);
        pos += meaningful;
        let trail = 8 - lead - meaningful as u32;
        bits ^= u64::from_be_bytes(middle)
            .checked_shl(8 * trail)
            .unwrap_or(0);
        out.push((ts, f64::from_bits(bits)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_copied_into_one_buffer_come_back_whole() {
        let (mut buffer, mut copies) = (vec![7u8], Vec::new());
        let chunks: Vec<OpenChunk> = [0, 1, 2, 119, 120, 121, 250, 500]
            .iter()
            .map(|&n| {
                let samples: Vec<(i64, f64)> =
                    (0..n).map(|i| (i * 10_000, (i % 7) as f64 * 1.5)).collect();
                OpenChunk::from_samples(&samples)
            })
            .collect();
        for chunk in &chunks {
            copies.push(chunk.copy_into(&mut buffer));
        }
        assert_eq!(
            buffer.len(),
            1 + chunks
                .iter()
                .map(|c| c.frozen.len() + c.bytes.len())
                .sum::<usize>()
        );
        for (chunk, copy) in chunks.iter().zip(&copies) {
            let back = OpenChunk::from_copy(copy, &buffer);
            assert_eq!(&back, chunk);
            assert_eq!(back.samples(), chunk.samples());
        }
    }

    fn round_trip(samples: &[(i64, f64)]) -> OpenChunk {
        let chunk = OpenChunk::from_samples(samples);
        let back = chunk.samples();
        assert_eq!(back.len(), samples.len());
        for (a, b) in back.iter().zip(samples) {
            assert_eq!((a.0, a.1.to_bits()), (b.0, b.1.to_bits()));
        }
        assert_eq!(chunk.len(), samples.len());
        assert_eq!(chunk.first_ts(), samples.first().map(|s| s.0));
        chunk
    }

    #[test]
    fn round_trips_every_kind_of_value_and_step() {
        round_trip(&[]);
        round_trip(&[(5, 1.0)]);
        let awkward = [
            0.0,
            -0.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
            f64::MAX,
            1e-300,
            -123.456,
            f64::from_bits(0x7ff0_0000_0000_0002), // the staleness marker
            f64::from_bits(1),
            f64::from_bits(u64::MAX),
        ];
        let steps = [1, 10_000, 9_999, 10_001, 1, i64::from(u32::MAX), 3];
        // Multiplied, a signalling NaN may come back quieted: the marker is also given as is.
        let mut ts = -1_000_000;
        let samples: Vec<(i64, f64)> = (0..500)
            .map(|i| {
                ts += steps[i % steps.len()];
                let value = match i % 50 {
                    7 => crate::storage::STALE_MARKER,
                    _ => awkward[(i * 7) % awkward.len()] * (i as f64 + 0.5),
                };
                (ts, value)
            })
            .collect();
        round_trip(&samples);
    }

    #[test]
    fn a_steady_series_costs_well_under_a_byte_per_sample_and_the_newest_can_be_replaced() {
        let samples: Vec<(i64, f64)> = (0..512)
            .map(|i| (1_700_000_000_000 + i * 10_000, 42.0))
            .collect();
        let mut chunk = round_trip(&samples);
        assert!(chunk.heap_bytes() < 200, "{} bytes", chunk.heap_bytes());
        chunk.replace_newest(7.5);
        assert_eq!(
            chunk.newest(),
            Some((1_700_000_000_000 + 511 * 10_000, 7.5))
        );
        assert_eq!(chunk.samples()[511].1, 7.5);
        assert_eq!(chunk.samples()[510].1, 42.0);
        // A gauge with two decimals changing every sample: under two bytes each, not sixteen.
        let noisy: Vec<(i64, f64)> = (0..512)
            .map(|i| (i * 10_000, ((i * 37 % 1000) as f64) / 100.0))
            .collect();
        let chunk = round_trip(&noisy);
        assert!(chunk.heap_bytes() < 512 * 2, "{} bytes", chunk.heap_bytes());
    }
}

//! The chunk codec: a run of one series' samples, sorted by time, in a few bits per sample.
//!
//! Timestamps are delta-of-delta encoded, as in Facebook's Gorilla paper; a chunk whose samples
//! are evenly spaced (an agent on its interval grid) stores just the first delta. Values are
//! encoded whichever way is smallest for the chunk:
//! - **const**: every value the same (totals, sizes, core counts): one value for the chunk.
//! - **decimal**: when every value is an integer mantissa times a common power of ten (counters,
//!   byte counts, ratios kept to a few decimals, two-decimal sensor readings: most monitoring
//!   data), the mantissas are delta, delta-of-delta or frame-of-reference (offset from the
//!   chunk's minimum, fixed width) encoded. This is where Gorilla's XOR does badly: 0.37 and
//!   0.41 share few bits as floats but differ by 4 as mantissas.
//! - **xor**: Gorilla's XOR of consecutive float bit patterns, for everything else.
//!
//! Integer streams (timestamp delta-of-deltas, mantissa deltas) use a prefix code with widths
//! picked per chunk: `0` for zero, `10` + w₁ bits, `110` + w₂ bits, `111` + 64 bits. Choosing
//! w₁ and w₂ from the chunk's own distribution keeps jittery timestamps and noisy values compact
//! where Gorilla's fixed buckets waste bits.
//!
//! Layout: `version/mode byte ‖ varint count ‖ zigzag varint first timestamp ‖ timestamp widths
//! (w₁ = 0 means evenly spaced, followed by the zigzag varint spacing) ‖ mode header ‖ bit
//! stream`. Decoding is exact: the same float bits come back.

/// Format tag (high nibble) and value mode (low nibble) of the first byte.
const VERSION: u8 = 0x10;
const MODE_XOR: u8 = 0x01;
const MODE_DECIMAL_DELTA: u8 = 0x02;
const MODE_DECIMAL_DOD: u8 = 0x03;
const MODE_DECIMAL_FOR: u8 = 0x04;
const MODE_CONST: u8 = 0x05;

/// Largest number of decimal places tried for decimal mode.
const MAX_DECIMALS: i32 = 12;
/// `10^p` for `p` in `0..=MAX_DECIMALS`, all exact in an f64 (a lookup instead of `powi` on
/// every value).
const POW10: [f64; MAX_DECIMALS as usize + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12,
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("chunk cannot be decoded: {0}")]
pub struct ChunkDecodeError(&'static str);

struct BitWriter {
    bytes: Vec<u8>,
    acc: u64,
    used: u32,
}

impl BitWriter {
    fn new(bytes: Vec<u8>) -> Self {
        Self {
            bytes,
            acc: 0,
            used: 0,
        }
    }

    /// Writes the low `n` bits of `value` (n ≤ 64), most significant first.
    fn write(&mut self, value: u64, n: u32) {
        if n == 0 {
            return;
        }
        if n > 32 {
            self.write(value >> 32, n - 32);
            self.write(value & 0xffff_ffff, 32);
            return;
        }
        let value = value & ((1u64 << n) - 1);
        self.acc = (self.acc << n) | value;
        self.used += n;
        while self.used >= 8 {
            self.used -= 8;
            self.bytes.push((self.acc >> self.used) as u8);
        }
        self.acc &= (1u64 << self.used) - 1;
    }

    fn finish(mut self) -> Vec<u8> {
        if self.used > 0 {
            self.bytes.push((self.acc << (8 - self.used)) as u8);
        }
        self.bytes
    }
}

struct BitReader<'a> {
    bytes: &'a [u8],
    pos: usize, // in bits
}

impl BitReader<'_> {
    /// Reads `n` bits (n ≤ 64), most significant first, a machine word at a time.
    fn read(&mut self, n: u32) -> Result<u64, ChunkDecodeError> {
        if n == 0 {
            return Ok(0);
        }
        if n > 56 {
            let high = self.read(n - 32)?;
            return Ok((high << 32) | self.read(32)?);
        }
        if self.pos + n as usize > self.bytes.len() * 8 {
            return Err(ChunkDecodeError("truncated bit stream"));
        }
        let byte = self.pos / 8;
        let mut window = [0u8; 8];
        let available = (self.bytes.len() - byte).min(8);
        window[..available].copy_from_slice(&self.bytes[byte..byte + available]);
        let word = u64::from_be_bytes(window) << (self.pos % 8);
        self.pos += n as usize;
        Ok(word >> (64 - n))
    }

    fn bit(&mut self) -> Result<bool, ChunkDecodeError> {
        Ok(self.read(1)? == 1)
    }
}

/// Small magnitudes of either sign as small unsigned numbers (for varints).
pub(crate) fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub(crate) fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn bit_len(v: u64) -> u32 {
    64 - v.leading_zeros()
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn get_varint(bytes: &[u8], pos: &mut usize) -> Result<u64, ChunkDecodeError> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes
            .get(*pos)
            .ok_or(ChunkDecodeError("truncated varint"))?;
        *pos += 1;
        out |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(out);
        }
    }
    Err(ChunkDecodeError("varint too long"))
}

/// Widths (w₁, w₂) minimising the prefix-coded size of `values` (zigzagged), and that size.
fn choose_widths(values: &[u64]) -> (u32, u32, u64) {
    let mut histogram = [0u64; 65];
    for &v in values {
        histogram[bit_len(v) as usize] += 1;
    }
    // at_most[k]: how many non-zero values need at most k bits.
    let mut at_most = [0u64; 65];
    for k in 1..=64 {
        at_most[k] = at_most[k - 1] + histogram[k];
    }
    let nonzero = at_most[64];
    // Widths beyond the longest value only cost more bits: search up to it.
    let longest = (1..=64).rev().find(|&k| histogram[k] > 0).unwrap_or(1);
    let mut best = (1, 1, u64::MAX);
    for w1 in 1..=longest {
        for w2 in w1..=longest {
            let small = at_most[w1];
            let mid = at_most[w2] - small;
            let large = nonzero - at_most[w2];
            let cost =
                histogram[0] + small * (2 + w1 as u64) + mid * (3 + w2 as u64) + large * (3 + 64);
            if cost < best.2 {
                best = (w1 as u32, w2 as u32, cost);
            }
        }
    }
    best
}

/// Writes `values` (already zigzagged) with the prefix code and widths (w₁, w₂).
fn write_ints(w: &mut BitWriter, values: &[u64], w1: u32, w2: u32) {
    for &v in values {
        let len = bit_len(v);
        if v == 0 {
            w.write(0, 1);
        } else if len <= w1 {
            w.write(0b10, 2);
            w.write(v, w1);
        } else if len <= w2 {
            w.write(0b110, 3);
            w.write(v, w2);
        } else {
            w.write(0b111, 3);
            w.write(v, 64);
        }
    }
}

fn read_int(r: &mut BitReader<'_>, w1: u32, w2: u32) -> Result<u64, ChunkDecodeError> {
    if !r.bit()? {
        return Ok(0);
    }
    if !r.bit()? {
        return r.read(w1);
    }
    if !r.bit()? {
        return r.read(w2);
    }
    r.read(64)
}

/// Zigzagged delta-of-deltas of a sequence (the first delta is taken against 0).
fn delta_of_deltas(xs: impl Iterator<Item = i64>) -> Vec<u64> {
    let mut out = Vec::new();
    let mut prev: Option<i64> = None;
    let mut prev_delta = 0i64;
    for x in xs {
        if let Some(p) = prev {
            let delta = x.wrapping_sub(p);
            out.push(zigzag(delta.wrapping_sub(prev_delta)));
            prev_delta = delta;
        }
        prev = Some(x);
    }
    out
}

fn deltas(xs: impl Iterator<Item = i64>) -> Vec<u64> {
    let mut out = Vec::new();
    let mut prev: Option<i64> = None;
    for x in xs {
        if let Some(p) = prev {
            out.push(zigzag(x.wrapping_sub(p)));
        }
        prev = Some(x);
    }
    out
}

/// Mantissas of every value at a common number of decimal places, if all values allow one.
/// The places only grow, so each value is first tried at the running maximum: one check for
/// most values instead of a search from zero.
fn mantissas(values: &[f64]) -> Option<(i32, Vec<i64>)> {
    let exact_at = |v: f64, places: i32| {
        let scale = POW10[places as usize];
        let m = (v * scale).round();
        m.abs() < 9.0e15 && m / scale == v
    };
    let mut places = 0;
    for &v in values {
        if !v.is_finite() || (v == 0.0 && v.is_sign_negative()) {
            return None;
        }
        if !exact_at(v, places) {
            places = (places + 1..=MAX_DECIMALS).find(|&p| exact_at(v, p))?;
        }
    }
    let scale = POW10[places as usize];
    let mut out = Vec::with_capacity(values.len());
    for &v in values {
        let m = (v * scale).round();
        // Re-check at the common scale: a value exact at 2 places may not be at 9.
        if m.abs() >= 9.0e15 || m / scale != v {
            return None;
        }
        out.push(m as i64);
    }
    Some((places, out))
}

fn encode_xor(w: &mut BitWriter, values: &[f64]) {
    let mut prev = values[0].to_bits();
    w.write(prev, 64);
    let (mut prev_leading, mut prev_trailing) = (u32::MAX, 0u32);
    for &v in &values[1..] {
        let bits = v.to_bits();
        let xor = bits ^ prev;
        prev = bits;
        if xor == 0 {
            w.write(0, 1);
            continue;
        }
        let leading = xor.leading_zeros().min(63);
        let trailing = xor.trailing_zeros();
        if prev_leading != u32::MAX && leading >= prev_leading && trailing >= prev_trailing {
            w.write(0b10, 2);
            let len = 64 - prev_leading - prev_trailing;
            w.write(xor >> prev_trailing, len);
        } else {
            w.write(0b11, 2);
            let len = 64 - leading - trailing;
            w.write(u64::from(leading), 6);
            w.write(u64::from(len - 1), 6);
            w.write(xor >> trailing, len);
            prev_leading = leading;
            prev_trailing = trailing;
        }
    }
}

fn decode_xor(r: &mut BitReader<'_>, n: usize, out: &mut Vec<f64>) -> Result<(), ChunkDecodeError> {
    let mut prev = r.read(64)?;
    out.push(f64::from_bits(prev));
    let (mut leading, mut trailing) = (0u32, 0u32);
    for _ in 1..n {
        if !r.bit()? {
            out.push(f64::from_bits(prev));
            continue;
        }
        if r.bit()? {
            leading = r.read(6)? as u32;
            let len = r.read(6)? as u32 + 1;
            if leading + len > 64 {
                return Err(ChunkDecodeError("xor window out of range"));
            }
            trailing = 64 - leading - len;
        }
        let len = 64 - leading - trailing;
        prev ^= r.read(len)? << trailing;
        out.push(f64::from_bits(prev));
    }
    Ok(())
}

/// Encodes samples sorted by strictly increasing timestamp. Panics on an empty slice.
pub fn encode_chunk(samples: &[(i64, f64)]) -> Vec<u8> {
    assert!(!samples.is_empty(), "a chunk holds at least one sample");
    let values: Vec<f64> = samples.iter().map(|s| s.1).collect();
    let ts_ints = delta_of_deltas(samples.iter().map(|s| s.0));
    // Evenly spaced: every delta-of-delta after the first delta is zero.
    let regular = ts_ints.iter().skip(1).all(|&d| d == 0);
    let (tw1, tw2, _) = if regular {
        (0, 0, 0)
    } else {
        choose_widths(&ts_ints)
    };

    let header = |mode: u8| {
        let mut out = vec![VERSION | mode];
        put_varint(&mut out, samples.len() as u64);
        put_varint(&mut out, zigzag(samples[0].0));
        out.push(tw1 as u8);
        out.push(tw2 as u8);
        if regular {
            put_varint(&mut out, ts_ints.first().copied().unwrap_or(0));
        }
        out
    };
    let timestamps = |w: &mut BitWriter| {
        if !regular {
            write_ints(w, &ts_ints, tw1, tw2);
        }
    };

    if values.iter().all(|v| v.to_bits() == values[0].to_bits()) {
        let mut out = header(MODE_CONST);
        out.extend_from_slice(&values[0].to_bits().to_be_bytes());
        let mut w = BitWriter::new(out);
        timestamps(&mut w);
        return w.finish();
    }
    let xor = || {
        let mut w = BitWriter::new(header(MODE_XOR));
        timestamps(&mut w);
        encode_xor(&mut w, &values);
        w.finish()
    };
    let Some((places, ms)) = mantissas(&values) else {
        return xor();
    };
    // Each decimal form's size in bits is known before writing it: write only the smallest.
    let by_delta = deltas(ms.iter().copied());
    let by_dod = delta_of_deltas(ms.iter().copied());
    let (d1, d2, delta_bits) = choose_widths(&by_delta);
    let (o1, o2, dod_bits) = choose_widths(&by_dod);
    let min = *ms.iter().min().expect("non-empty");
    let span = ms
        .iter()
        .map(|&m| m.wrapping_sub(min) as u64)
        .max()
        .unwrap_or(0);
    let width = bit_len(span);
    let for_bits = ms.len() as u64 * u64::from(width);
    if for_bits <= delta_bits.min(dod_bits) {
        let mut out = header(MODE_DECIMAL_FOR);
        out.push(places as u8);
        out.push(width as u8);
        put_varint(&mut out, zigzag(min));
        let mut w = BitWriter::new(out);
        timestamps(&mut w);
        for &m in &ms {
            w.write(m.wrapping_sub(min) as u64, width);
        }
        return w.finish();
    }
    let (mode, ints, w1, w2) = if dod_bits < delta_bits {
        (MODE_DECIMAL_DOD, by_dod, o1, o2)
    } else {
        (MODE_DECIMAL_DELTA, by_delta, d1, d2)
    };
    let mut out = header(mode);
    out.push(places as u8);
    out.push(w1 as u8);
    out.push(w2 as u8);
    put_varint(&mut out, zigzag(ms[0]));
    let mut w = BitWriter::new(out);
    timestamps(&mut w);
    write_ints(&mut w, &ints, w1, w2);
    let decimal = w.finish();
    // Decimals with many places and jumpy values can lose to XOR; check only then.
    if decimal.len() > 2 * values.len() {
        let xor = xor();
        if xor.len() < decimal.len() {
            return xor;
        }
    }
    decimal
}

/// Decodes a chunk into `(timestamp ms, value)` pairs.
pub fn decode_chunk(bytes: &[u8]) -> Result<Vec<(i64, f64)>, ChunkDecodeError> {
    let tag = *bytes.first().ok_or(ChunkDecodeError("empty chunk"))?;
    if tag & 0xf0 != VERSION {
        return Err(ChunkDecodeError("unknown chunk version"));
    }
    let mode = tag & 0x0f;
    let mut pos = 1;
    let n = get_varint(bytes, &mut pos)? as usize;
    // Far above any configured chunk size; keeps a damaged count from allocating gigabytes.
    if n == 0 || n > 1 << 20 {
        return Err(ChunkDecodeError("implausible sample count"));
    }
    let t0 = unzigzag(get_varint(bytes, &mut pos)?);
    let byte = |pos: &mut usize| -> Result<u32, ChunkDecodeError> {
        let b = *bytes
            .get(*pos)
            .ok_or(ChunkDecodeError("truncated header"))?;
        *pos += 1;
        Ok(u32::from(b))
    };
    let (tw1, tw2) = (byte(&mut pos)?, byte(&mut pos)?);
    if tw1 > 64 || tw2 > 64 {
        return Err(ChunkDecodeError("bad width"));
    }
    let spacing = if tw1 == 0 {
        Some(unzigzag(get_varint(bytes, &mut pos)?))
    } else {
        None
    };

    enum Values {
        Const(f64),
        Xor,
        Decimal {
            places: i32,
            w1: u32,
            w2: u32,
            first: i64,
            dod: bool,
        },
        FrameOfReference {
            places: i32,
            width: u32,
            min: i64,
        },
    }
    let places = |pos: &mut usize| -> Result<i32, ChunkDecodeError> {
        let p = byte(pos)? as i32;
        if p > MAX_DECIMALS {
            Err(ChunkDecodeError("bad decimal places"))
        } else {
            Ok(p)
        }
    };
    let values_kind = match mode {
        MODE_CONST => {
            let raw = bytes
                .get(pos..pos + 8)
                .ok_or(ChunkDecodeError("truncated header"))?;
            pos += 8;
            Values::Const(f64::from_bits(u64::from_be_bytes(
                raw.try_into().expect("8 bytes"),
            )))
        }
        MODE_XOR => Values::Xor,
        MODE_DECIMAL_DELTA | MODE_DECIMAL_DOD => {
            let places = places(&mut pos)?;
            let (w1, w2) = (byte(&mut pos)?, byte(&mut pos)?);
            if w1 > 64 || w2 > 64 {
                return Err(ChunkDecodeError("bad width"));
            }
            let first = unzigzag(get_varint(bytes, &mut pos)?);
            Values::Decimal {
                places,
                w1,
                w2,
                first,
                dod: mode == MODE_DECIMAL_DOD,
            }
        }
        MODE_DECIMAL_FOR => {
            let places = places(&mut pos)?;
            let width = byte(&mut pos)?;
            if width > 64 {
                return Err(ChunkDecodeError("bad width"));
            }
            let min = unzigzag(get_varint(bytes, &mut pos)?);
            Values::FrameOfReference { places, width, min }
        }
        _ => return Err(ChunkDecodeError("unknown value mode")),
    };

    let mut r = BitReader {
        bytes: &bytes[pos..],
        pos: 0,
    };
    let mut timestamps = Vec::with_capacity(n);
    timestamps.push(t0);
    let (mut t, mut delta) = (t0, 0i64);
    for _ in 1..n {
        match spacing {
            Some(step) => t = t.wrapping_add(step),
            None => {
                delta = delta.wrapping_add(unzigzag(read_int(&mut r, tw1, tw2)?));
                t = t.wrapping_add(delta);
            }
        }
        timestamps.push(t);
    }
    let mut values = Vec::with_capacity(n);
    match values_kind {
        Values::Const(v) => values.resize(n, v),
        Values::Xor => decode_xor(&mut r, n, &mut values)?,
        Values::Decimal {
            places,
            w1,
            w2,
            first,
            dod,
        } => {
            let scale = 10f64.powi(places);
            let (mut m, mut d) = (first, 0i64);
            values.push(m as f64 / scale);
            for _ in 1..n {
                let x = unzigzag(read_int(&mut r, w1, w2)?);
                d = if dod { d.wrapping_add(x) } else { x };
                m = m.wrapping_add(d);
                values.push(m as f64 / scale);
            }
        }
        Values::FrameOfReference { places, width, min } => {
            let scale = 10f64.powi(places);
            for _ in 0..n {
                values.push(min.wrapping_add(r.read(width)? as i64) as f64 / scale);
            }
        }
    }
    Ok(timestamps.into_iter().zip(values).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(samples: &[(i64, f64)]) -> usize {
        let bytes = encode_chunk(samples);
        let back = decode_chunk(&bytes).unwrap();
        assert_eq!(back.len(), samples.len());
        for (a, b) in samples.iter().zip(&back) {
            assert_eq!(a.0, b.0);
            assert_eq!(a.1.to_bits(), b.1.to_bits(), "{} vs {}", a.1, b.1);
        }
        bytes.len()
    }

    fn regular(n: usize, mut f: impl FnMut(usize) -> f64) -> Vec<(i64, f64)> {
        (0..n)
            .map(|i| (1_700_000_000_000 + i as i64 * 10_000, f(i)))
            .collect()
    }

    #[test]
    fn evenly_spaced_constant_series_cost_a_header() {
        let bytes = round_trip(&regular(512, |_| 8_000_000_000.0));
        assert!(bytes < 24, "{bytes} bytes");
    }

    #[test]
    fn random_two_decimal_readings_cost_their_entropy() {
        let mut seed = 7u64;
        let samples = regular(500, |_| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            ((seed >> 33) % 2000) as f64 / 100.0
        });
        // 2000 possible values: 11 bits each, plus a small header.
        let bytes = round_trip(&samples);
        assert!(bytes <= 500 * 11 / 8 + 24, "{bytes} bytes");
    }

    #[test]
    fn two_decimal_noise_beats_gorilla_xor() {
        let mut seed = 42u64;
        let samples = regular(512, |_| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            // As parsed from text: the double nearest to a two-decimal reading.
            (5000 + (seed >> 33) % 2000) as f64 / 100.0
        });
        let ours = round_trip(&samples);
        let mut w = BitWriter::new(Vec::new());
        encode_xor(&mut w, &samples.iter().map(|s| s.1).collect::<Vec<_>>());
        let gorilla_values = w.finish().len();
        assert!(
            ours < gorilla_values / 2,
            "ours {ours} vs gorilla values alone {gorilla_values}"
        );
    }

    #[test]
    fn counters_jitter_and_awkward_values_round_trip() {
        round_trip(&regular(300, |i| (i * i * 1000) as f64));
        round_trip(&[(5, 1.0)]);
        round_trip(&[
            (-5_000, -0.0),
            (0, f64::MIN_POSITIVE),
            (7, f64::MAX),
            (8, 1e-300),
        ]);
        round_trip(&[(0, 0.1), (1, 0.2), (2, 0.30000000000000004)]);
        let jittery: Vec<_> = (0..200)
            .map(|i| (i * 10_000 + (i * 7919 % 13) - 6, (i % 7) as f64 * 0.25))
            .collect();
        round_trip(&jittery);
        round_trip(&[(i64::MIN + 1, 1.0), (i64::MAX, 2.0)]);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [
            &[][..],
            &[0x99],
            &[VERSION | MODE_XOR, 3, 0, 1, 1],
            &[VERSION | 9, 1, 0, 0, 0],
        ] {
            assert!(decode_chunk(bytes).is_err(), "{bytes:?}");
        }
    }
}

//! Remote-write requests read in place, 1.0 (`prometheus.WriteRequest`) and 2.0
//! (`io.prometheus.write.v2.Request`) into one form: labels stay slices of the decompressed
//! body, so a known series costs one hash lookup of its raw label bytes and no allocation.
//! (prost would allocate two strings per label, which for one-sample series cost more than
//! everything else.)

use crate::storage::FamilyType;
use std::ops::Range;

/// Which message a request carries, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `prometheus.WriteRequest`: labels as strings, metadata in a list apart from the series.
    V1,
    /// `io.prometheus.write.v2.Request`: strings interned in a symbol table, metadata on each
    /// series.
    V2,
}

/// What a sender declared about a family or series.
#[derive(Debug, Clone, Copy)]
pub(in crate::ingest) struct Declared<'a> {
    pub kind: FamilyType,
    pub help: &'a [u8],
    pub unit: &'a [u8],
}

/// One series of a request: its ranges in [`WireRequest::labels`] and
/// [`WireRequest::samples`].
pub(in crate::ingest) struct WireSeries<'a> {
    pub labels: Range<usize>,
    pub samples: Range<usize>,
    /// 2.0's metadata of the series, when the sender set a type, help or unit.
    pub declared: Option<Declared<'a>>,
    /// Native histogram samples, which hcmon does not store.
    pub histograms: usize,
}

/// A request read in place.
#[derive(Default)]
pub(in crate::ingest) struct WireRequest<'a> {
    pub series: Vec<WireSeries<'a>>,
    pub labels: Vec<(&'a [u8], &'a [u8])>,
    /// (timestamp ms, value)
    pub samples: Vec<(i64, f64)>,
    /// 1.0's metric metadata: (family name, declaration).
    pub families: Vec<(&'a [u8], Declared<'a>)>,
}

#[inline]
fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, &'static str> {
    // Field keys and lengths, most varints of a request, fit one byte.
    if let Some(&b) = buf.get(*pos)
        && b < 0x80
    {
        *pos += 1;
        return Ok(u64::from(b));
    }
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos).ok_or("truncated varint")?;
        *pos += 1;
        out |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(out);
        }
    }
    Err("varint too long")
}

/// One field of a protobuf message: number, wire type, and its bytes (a varint's or fixed
/// value's own bytes; a length-delimited field's content).
type Field<'a> = (u64, u8, &'a [u8]);

/// Reads the next field at `pos`.
fn next_field<'a>(buf: &'a [u8], pos: &mut usize) -> Result<Field<'a>, &'static str> {
    let key = varint(buf, pos)?;
    let (number, wire) = (key >> 3, (key & 7) as u8);
    let start = *pos;
    let end = match wire {
        0 => {
            varint(buf, pos)?;
            *pos
        }
        1 => start + 8,
        2 => {
            let len = usize::try_from(varint(buf, pos)?).map_err(|_| "length overflow")?;
            let content = *pos;
            *pos = content.checked_add(len).ok_or("length overflow")?;
            return Ok((
                number,
                wire,
                buf.get(content..*pos).ok_or("truncated field")?,
            ));
        }
        5 => start + 4,
        _ => return Err("unsupported wire type"),
    };
    *pos = end;
    Ok((number, wire, buf.get(start..end).ok_or("truncated field")?))
}

/// Calls `visit` for each field of a message.
fn for_each_field<'a>(
    buf: &'a [u8],
    mut visit: impl FnMut(Field<'a>) -> Result<(), &'static str>,
) -> Result<(), &'static str> {
    let mut pos = 0;
    while pos < buf.len() {
        visit(next_field(buf, &mut pos)?)?;
    }
    Ok(())
}

/// `Sample { double value = 1; int64 timestamp = 2; }`, the same in both versions.
fn sample(bytes: &[u8]) -> Result<(i64, f64), &'static str> {
    // As encoders write it, value then timestamp: read at once.
    if let [0x09, v0, v1, v2, v3, v4, v5, v6, v7, 0x10, ..] = *bytes {
        let mut pos = 10;
        let timestamp = varint(bytes, &mut pos)? as i64;
        if pos == bytes.len() {
            let value = f64::from_le_bytes([v0, v1, v2, v3, v4, v5, v6, v7]);
            return Ok((timestamp, value));
        }
    }
    let (mut value, mut timestamp) = (0.0, 0i64);
    for_each_field(bytes, |part| {
        match part {
            (1, 1, bytes) => {
                value = f64::from_le_bytes(bytes.try_into().map_err(|_| "bad double")?)
            }
            (2, 0, bytes) => timestamp = varint(bytes, &mut 0)? as i64,
            _ => {}
        }
        Ok(())
    })?;
    Ok((timestamp, value))
}

/// Bytes of a short scraped series in a request (one sample, three short labels; most take 80
/// to 300): a request's lists are sized for its length over this many series, which rarely
/// need to grow and are dropped with the request.
const SHORT_SERIES_BYTES: usize = 64;
/// Series a request's lists are sized for at most (some 6 MiB of lists, at about 190 bytes a
/// series): a large request of few series (long labels) does not reserve a multiple of its
/// own size beyond that.
const SERIES_ROOM_AT_MOST: usize = 1 << 15;

/// 1.0's `Label { string name = 1; string value = 2; }`: (name, value).
fn label(bytes: &[u8]) -> Result<(&[u8], &[u8]), &'static str> {
    // As encoders write it, name then value, each shorter than 128 bytes: read at once.
    if let [0x0a, n, ref rest @ ..] = *bytes
        && n < 0x80
        && let Some((name, [0x12, v, value @ ..])) = rest.split_at_checked(usize::from(n))
        && *v < 0x80
        && value.len() == usize::from(*v)
    {
        return Ok((name, value));
    }
    let (mut name, mut value): (&[u8], &[u8]) = (&[], &[]);
    for_each_field(bytes, |part| {
        match part {
            (1, 2, bytes) => name = bytes,
            (2, 2, bytes) => value = bytes,
            _ => {}
        }
        Ok(())
    })?;
    Ok((name, value))
}

impl<'a> WireRequest<'a> {
    /// A request with room for what a body of `len` bytes usually holds: growing the lists
    /// series by series copied them over and over.
    fn with_room_for(len: usize) -> Self {
        let series = (len / SHORT_SERIES_BYTES).min(SERIES_ROOM_AT_MOST);
        Self {
            series: Vec::with_capacity(series),
            labels: Vec::with_capacity(3 * series),
            samples: Vec::with_capacity(series),
            families: Vec::new(),
        }
    }

    pub fn parse(protocol: Protocol, buf: &'a [u8]) -> Result<Self, &'static str> {
        match protocol {
            Protocol::V1 => Self::parse_v1(buf),
            Protocol::V2 => Self::parse_v2(buf),
        }
    }

    /// Reads `WriteRequest { repeated TimeSeries timeseries = 1; repeated MetricMetadata
    /// metadata = 3; }`, where `TimeSeries` is `{ repeated Label labels = 1; repeated Sample
    /// samples = 2; repeated Histogram histograms = 4; }`, `Label` is `{ string name = 1;
    /// string value = 2; }` and `MetricMetadata` is `{ MetricType type = 1; string
    /// metric_family_name = 2; string help = 4; string unit = 5; }`. Other fields (exemplars)
    /// are skipped.
    fn parse_v1(buf: &'a [u8]) -> Result<Self, &'static str> {
        let mut out = WireRequest::with_room_for(buf.len());
        for_each_field(buf, |(number, wire, message)| {
            match (number, wire) {
                (1, 2) => {
                    let (label_start, sample_start) = (out.labels.len(), out.samples.len());
                    let mut histograms = 0;
                    for_each_field(message, |field| {
                        match field {
                            (1, 2, label) => out.labels.push(self::label(label)?),
                            (2, 2, bytes) => out.samples.push(sample(bytes)?),
                            (4, 2, _) => histograms += 1,
                            _ => {}
                        }
                        Ok(())
                    })?;
                    out.series.push(WireSeries {
                        labels: label_start..out.labels.len(),
                        samples: sample_start..out.samples.len(),
                        declared: None,
                        histograms,
                    });
                }
                (3, 2) => {
                    let mut family: &[u8] = &[];
                    let mut declared = Declared {
                        kind: FamilyType::Unknown,
                        help: &[],
                        unit: &[],
                    };
                    for_each_field(message, |part| {
                        match part {
                            (1, 0, bytes) => {
                                declared.kind = FamilyType::from_wire(varint(bytes, &mut 0)?)
                            }
                            (2, 2, bytes) => family = bytes,
                            (4, 2, bytes) => declared.help = bytes,
                            (5, 2, bytes) => declared.unit = bytes,
                            _ => {}
                        }
                        Ok(())
                    })?;
                    out.families.push((family, declared));
                }
                _ => {}
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Reads `Request { repeated string symbols = 4; repeated TimeSeries timeseries = 5; }`,
    /// where `TimeSeries` is `{ repeated uint32 labels_refs = 1; repeated Sample samples = 2;
    /// repeated Histogram histograms = 3; Metadata metadata = 5; }` and `Metadata` is
    /// `{ MetricType type = 1; uint32 help_ref = 3; uint32 unit_ref = 4; }`. Every reference
    /// must fall inside the symbol table. Exemplars and created timestamps are skipped.
    fn parse_v2(buf: &'a [u8]) -> Result<Self, &'static str> {
        let mut symbols: Vec<&'a [u8]> = Vec::new();
        for_each_field(buf, |field| {
            if let (4, 2, symbol) = field {
                symbols.push(symbol);
            }
            Ok(())
        })?;
        let symbol = |reference: u64| -> Result<&'a [u8], &'static str> {
            usize::try_from(reference)
                .ok()
                .and_then(|i| symbols.get(i).copied())
                .ok_or("a reference falls outside the symbol table")
        };
        let mut out = WireRequest::with_room_for(buf.len());
        for_each_field(buf, |(number, wire, message)| {
            if (number, wire) != (5, 2) {
                return Ok(());
            }
            let (label_start, sample_start) = (out.labels.len(), out.samples.len());
            let mut refs: Vec<u64> = Vec::new();
            let mut histograms = 0;
            let mut declared = None;
            for_each_field(message, |field| {
                match field {
                    // Packed, as proto3 writes repeated scalars, or one per field.
                    (1, 2, packed) => {
                        let mut pos = 0;
                        while pos < packed.len() {
                            refs.push(varint(packed, &mut pos)?);
                        }
                    }
                    (1, 0, bytes) => refs.push(varint(bytes, &mut 0)?),
                    (2, 2, bytes) => out.samples.push(sample(bytes)?),
                    (3, 2, _) => histograms += 1,
                    (5, 2, metadata) => {
                        let mut d = Declared {
                            kind: FamilyType::Unknown,
                            help: &[],
                            unit: &[],
                        };
                        for_each_field(metadata, |part| {
                            match part {
                                (1, 0, bytes) => {
                                    d.kind = FamilyType::from_wire(varint(bytes, &mut 0)?)
                                }
                                (3, 0, bytes) => d.help = symbol(varint(bytes, &mut 0)?)?,
                                (4, 0, bytes) => d.unit = symbol(varint(bytes, &mut 0)?)?,
                                _ => {}
                            }
                            Ok(())
                        })?;
                        declared = Some(d);
                    }
                    _ => {}
                }
                Ok(())
            })?;
            if !refs.len().is_multiple_of(2) {
                return Err("a series' label references are not name/value pairs");
            }
            for pair in refs.chunks_exact(2) {
                out.labels.push((symbol(pair[0])?, symbol(pair[1])?));
            }
            out.series.push(WireSeries {
                labels: label_start..out.labels.len(),
                samples: sample_start..out.samples.len(),
                declared,
                histograms,
            });
            Ok(())
        })?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fields in another order than encoders write them, repeated or unknown, go through the
    /// general reader, and read as protobuf says (the last of a repeated field wins).
    #[test]
    fn labels_and_samples_in_any_field_order_read_alike() {
        assert_eq!(label(b"\x0a\x01n\x12\x02vv"), Ok((&b"n"[..], &b"vv"[..])));
        assert_eq!(label(b"\x12\x02vv\x0a\x01n"), Ok((&b"n"[..], &b"vv"[..])));
        assert_eq!(
            label(b"\x0a\x01n\x12\x02vv\x18\x01"),
            Ok((&b"n"[..], &b"vv"[..]))
        );
        assert_eq!(
            label(b"\x0a\x01n\x12\x01v\x12\x01w"),
            Ok((&b"n"[..], &b"w"[..]))
        );
        assert_eq!(label(b"\x0a\x01n"), Ok((&b"n"[..], &b""[..])));
        assert!(label(b"\x0a\x05n\x12\x01v").is_err());
        // A value length of two bytes (641) that a one-byte read would take for 129.
        let long = [&b"\x0a\x00\x12\x81\x05"[..], &[b'v'; 128]].concat();
        assert!(label(&long).is_err());
        let value = 2.5f64.to_le_bytes();
        let in_order = [&[0x09][..], &value, &[0x10, 0xac, 0x02]].concat();
        let reversed = [&[0x10, 0xac, 0x02][..], &[0x09], &value].concat();
        assert_eq!(sample(&in_order), Ok((300, 2.5)));
        assert_eq!(sample(&reversed), Ok((300, 2.5)));
        let twice = [&in_order[..], &[0x10, 0x02]].concat();
        assert_eq!(sample(&twice), Ok((2, 2.5)));
        assert!(sample(&in_order[..in_order.len() - 1]).is_err());
    }
}

//! The chunk codec. Even first byte: the rest is a stored chunk to decode; a chunk that decodes
//! to strictly increasing timestamps must survive re-encoding unchanged. Odd: the rest is
//! (timestamp, value bits) pairs, 16 bytes each, which must decode to exactly what was encoded.
#![no_main]

use hcmon_collector::storage::{decode_chunk, encode_chunk};

/// Samples with their values as bit patterns: NaN payloads and -0.0 must come back too.
fn bits(samples: &[(i64, f64)]) -> Vec<(i64, u64)> {
    samples.iter().map(|&(ts, v)| (ts, v.to_bits())).collect()
}

fn assert_round_trip(samples: &[(i64, f64)]) {
    let decoded = decode_chunk(&encode_chunk(samples)).expect("an encoded chunk decodes");
    assert_eq!(
        bits(&decoded),
        bits(samples),
        "the chunk codec changed samples"
    );
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        if let Ok(samples) = decode_chunk(rest)
            && !samples.is_empty()
            && samples.windows(2).all(|w| w[0].0 < w[1].0)
        {
            assert_round_trip(&samples);
        }
        return;
    }
    let mut samples: Vec<(i64, f64)> = rest
        .chunks_exact(16)
        .map(|c| {
            let (ts, value) = c.split_at(8);
            let ts = i64::from_le_bytes(ts.try_into().expect("8 bytes"));
            let value = u64::from_le_bytes(value.try_into().expect("8 bytes"));
            (ts, f64::from_bits(value))
        })
        .collect();
    samples.sort_by_key(|s| s.0);
    samples.dedup_by_key(|s| s.0);
    if !samples.is_empty() {
        assert_round_trip(&samples);
    }
});

//! An agent's `Register` or `Batch` message decoded with prost, then ingest's validation of it.
//! The first byte picks the message and, for a batch, whether it is a resend.
#![no_main]

use hcmon_collector::fuzzing::{batch, registration};

const NOW_MS: i64 = 1_700_000_000_000;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let _ = match mode % 3 {
        0 => registration(rest),
        1 => batch(rest, NOW_MS, false),
        _ => batch(rest, NOW_MS, true),
    };
});

//! `just bench-checkpoint`: how long a checkpoint's cut holds every append, with the heads of a
//! 1,000-agent fleet (150,000 series, each with a part-filled open chunk, all changed since the
//! last checkpoint), on one thread with nothing else running. The fleet bench sees the same
//! figure as `hcmon_collector_checkpoint_seconds{part="appends_held"}`, but once per run and
//! shifted by whatever else the machine does then.
//!
//! Beside it, for scale, a baseline measured in the same run: one flat copy of as many bytes as
//! the checkpoint's batch held (encoded heads, chunks, rollups and keys: more than the cut
//! copies), between two buffers already in memory.
// A benchmark's report goes to stdout.
#![allow(clippy::print_stdout)]

use hcmon_collector::storage::{MemoryKv, Sample, SeriesId, StorageConfig, Tsdb};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// About 1,000 agents' series (148 each with the real agent here).
const SERIES: u64 = 150_000;
/// Samples per series before the cuts measured: five minutes at 10 s, so open chunks hold
/// some bytes, as they do between two checkpoints.
const WARM_SAMPLES: usize = 30;
const STEP_MS: i64 = 10_000;
/// Samples per append: one agent's batch of a tier, about.
const PER_APPEND: usize = 150;
const CUTS: usize = 7;
/// A midnight UTC, so no chunk crosses a day.
const T0: i64 = 1_700_006_400_000;

fn main() {
    let tsdb = Tsdb::open(Box::new(MemoryKv::default()), StorageConfig::default())
        .expect("an engine on memory opens")
        .tsdb;
    let mut rng = fastrand::Rng::with_seed(7);
    let mut order: Vec<u64> = (1..=SERIES).collect();
    let mut levels: Vec<f64> = (0..SERIES).map(|_| rng.f64() * 100.0).collect();
    let mut t = T0;
    // One sample of every series at `t`, in a shuffled order: batches from many agents.
    let mut round = |t: i64| {
        rng.shuffle(&mut order);
        for batch in order.chunks(PER_APPEND) {
            let samples: Vec<Sample> = (batch.iter())
                .map(|&series| {
                    let level = &mut levels[series as usize - 1];
                    *level += rng.f64() - 0.5;
                    Sample {
                        series: SeriesId(series),
                        timestamp_ms: t,
                        value: (*level * 100.0).round() / 100.0,
                    }
                })
                .collect();
            tsdb.append(None, &samples).expect("append to memory");
        }
    };
    for _ in 0..WARM_SAMPLES {
        round(t);
        t += STEP_MS;
    }
    // The first cut sizes the next ones' copy buffer.
    tsdb.checkpoint(false).expect("checkpoint to memory");
    let mut held = Vec::new();
    let mut bytes = 0;
    for _ in 0..CUTS {
        round(t);
        t += STEP_MS;
        let report = tsdb.checkpoint(false).expect("checkpoint to memory");
        held.push(report.appends_held);
        bytes = report.bytes;
        assert_eq!(report.heads, SERIES as usize, "every head changed");
    }
    held.sort();
    let median = held[CUTS / 2];
    let source = vec![1u8; bytes];
    let mut target = vec![0u8; bytes];
    let copy = (0..CUTS)
        .map(|_| {
            let started = Instant::now();
            target.copy_from_slice(black_box(&source));
            black_box(&mut target);
            started.elapsed()
        })
        .min()
        .unwrap_or_default();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{SERIES} series, each with {WARM_SAMPLES}+ samples in its open chunk, all changed; {CUTS} cuts"
    );
    println!(
        "appends held by the cut: median {:.1} ms, best {:.1} ms, worst {:.1} ms ({:.0} ns per head)",
        ms(median),
        ms(held[0]),
        ms(held[CUTS - 1]),
        median.as_secs_f64() * 1e9 / SERIES as f64,
    );
    println!(
        "baseline, one flat copy of the checkpoint batch's {:.1} MiB between buffers in memory: {:.1} ms (the cut takes {:.1}x)",
        bytes as f64 / (1 << 20) as f64,
        ms(copy),
        median.as_secs_f64() / copy.as_secs_f64().max(1e-9),
    );
}

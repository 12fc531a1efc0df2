//! `just bench-engines`: samples per second of the online anomaly ensemble on one core, next to
//! a baseline measured in the same run (one exponentially weighted mean and variance per series,
//! the cheapest online detector there is), so the ratio holds on a noisy machine.
// A benchmark's report goes to stdout.
#![allow(clippy::print_stdout)]

use hcmon_collector::analytics::anomaly::{AnomalyConfig, SeriesDetector};
use std::hint::black_box;
use std::time::Instant;

const SERIES: usize = 200;
const SAMPLES_PER_SERIES: usize = 20_000;
const STEP_MS: i64 = 10_000;
const T0: i64 = 1_700_006_400_000;

/// Host-like series: a daily cycle, noise, a 2-decimal value and now and then a spike.
fn data(seed: u64) -> Vec<Vec<(i64, f64)>> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..SERIES)
        .map(|s| {
            let level = 10.0 + s as f64;
            (0..SAMPLES_PER_SERIES)
                .map(|i| {
                    let t = T0 + i as i64 * STEP_MS;
                    let day = (t % 86_400_000) as f64 / 86_400_000.0;
                    let mut v = level + 5.0 * (day * std::f64::consts::TAU).sin() + rng.f64() * 2.0;
                    if rng.u32(0..1000) == 0 {
                        v += 40.0;
                    }
                    (t, (v * 100.0).round() / 100.0)
                })
                .collect()
        })
        .collect()
}

/// Best of `rounds` runs, in samples per second.
fn measure(rounds: usize, mut run: impl FnMut() -> usize) -> f64 {
    (0..rounds)
        .map(|_| {
            let started = Instant::now();
            let samples = run();
            samples as f64 / started.elapsed().as_secs_f64()
        })
        .fold(0.0, f64::max)
}

fn main() {
    let data = data(42);
    let total = SERIES * SAMPLES_PER_SERIES;
    // Samples are fed time-major (every series at t, then t + step), as ingest delivers them.
    let baseline = measure(5, || {
        let mut state = vec![(0.0f64, 0.0f64); SERIES];
        for i in 0..SAMPLES_PER_SERIES {
            for (s, series) in data.iter().enumerate() {
                let x = series[i].1;
                let (mean, var) = &mut state[s];
                let diff = x - *mean;
                *mean += 0.05 * diff;
                *var = 0.95 * (*var + diff * 0.05 * diff);
            }
        }
        black_box(&state);
        total
    });
    let mut anomalies = 0;
    let ensemble = measure(3, || {
        let config = AnomalyConfig::default();
        let mut detectors: Vec<SeriesDetector> =
            (0..SERIES).map(|_| SeriesDetector::new()).collect();
        anomalies = 0;
        for i in 0..SAMPLES_PER_SERIES {
            for (s, series) in data.iter().enumerate() {
                let (t, v) = series[i];
                anomalies += usize::from(detectors[s].observe(&config, t, v).is_anomaly);
            }
        }
        black_box(&detectors);
        total
    });
    println!(
        "data: {SERIES} series x {SAMPLES_PER_SERIES} samples at 10 s (daily cycle, noise, rare spikes), fed time-major, one thread"
    );
    println!("baseline (one EWMA mean+variance per sample): {baseline:>14.0} samples/s");
    println!(
        "online ensemble (models, calibration, gate):  {ensemble:>14.0} samples/s  ({:.1}x the baseline's cost; {anomalies} anomalies flagged)",
        baseline / ensemble
    );
    // The detector holds no heap memory: its size is its whole state.
    let state = std::mem::size_of::<SeriesDetector>();
    println!(
        "state per series: {state} bytes (target: at most 2,048) -> {}",
        if state <= 2048 { "met" } else { "NOT met" }
    );
    println!(
        "target: 2,000,000 samples/s per core -> {}",
        if ensemble >= 2e6 { "met" } else { "NOT met" }
    );
}

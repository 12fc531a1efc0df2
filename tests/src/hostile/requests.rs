//! The kinds that attack the HTTP API with requests: token guessing, oversized bodies (and
//! oversized gRPC batches), garbage remote writes.

use super::streams::{batch, send_one};
use super::{GUESSER, LOOPBACK, Mallory, Pace, Rng, Tally, Target};
use crate::now_s;
use hcmon_proto::prometheus::{Label as PromLabel, Sample, TimeSeries, WriteRequest};
use std::sync::Arc;
use std::time::Duration;

/// Over the HTTP listener's default `max_body_bytes` (32 MiB).
const OVERSIZED_BODY: usize = 40 << 20;

/// (4) Random bearer tokens against the API, fast, all from one address.
pub async fn token_guessing(target: Arc<Target>, tally: Arc<Tally>) {
    let mut rng = Rng::new();
    let mut pace = Pace::every(Duration::from_millis(10));
    while pace.next(&target).await {
        let guess = format!("hcm_{}_{}", rng.hex(8), rng.hex(64));
        let head = format!(
            "GET /api/v1/agents HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {guess}\r\nConnection: close\r\n\r\n"
        );
        let outcome = target.https(GUESSER, &head, &[]).await;
        tally.add("random token from 127.0.0.2", outcome);
    }
}

/// (6) Bodies far over the limit: remote write and JSON, with and without a length; gRPC
/// batches over `limits.max_batch_bytes` from `mallory-big`.
pub async fn oversized(target: Arc<Target>, tally: Arc<Tally>, mallory: Arc<Mallory>) {
    let body = vec![b'x'; OVERSIZED_BODY];
    let mut chunked = format!("{OVERSIZED_BODY:x}\r\n").into_bytes();
    chunked.extend_from_slice(&body);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    // One series of 600,000 points: about 7 MiB encoded, over the default 4 MiB.
    let big = |seq| {
        let now_ms = (now_s() * 1000.0) as i64;
        let mut batch = batch(seq, "hostile_big", 0, 1);
        batch.samples[0].timestamps_ms = (0..600_000).map(|i| now_ms - 600_000 + i).collect();
        batch.samples[0].values = vec![1.5; 600_000];
        batch
    };
    let mut pace = Pace::every(Duration::from_secs(1));
    let mut round = 0u64;
    while pace.next(&target).await {
        round += 1;
        match round % 4 {
            0 => {
                let outcome = target.remote_write(&body).await;
                tally.add("remote write of 40 MiB with Content-Length", outcome);
            }
            1 => {
                let head = format!(
                    "POST /api/v1/write HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nContent-Encoding: snappy\r\nContent-Type: application/x-protobuf\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
                    target.token
                );
                let outcome = target.https(LOOPBACK, &head, &chunked).await;
                tally.add("remote write of 40 MiB chunked (no length)", outcome);
            }
            2 => {
                let content = "Content-Type: application/json\r\n";
                let outcome = target
                    .authorized("POST", "/api/v1/silences", content, &body)
                    .await;
                tally.add("JSON silence of 40 MiB", outcome);
            }
            _ => {
                let outcome = send_one(&target, &mallory.big, big).await;
                tally.add("mallory-big: gRPC batch of ~7 MiB", outcome);
            }
        }
    }
}

/// (10) Remote writes that are not: random bytes, broken snappy, snappy of non-protobuf.
pub async fn garbage_remote_write(target: Arc<Target>, tally: Arc<Tally>) {
    let mut rng = Rng::new();
    let mut pace = Pace::every(Duration::from_millis(100));
    let mut round = 0u64;
    while pace.next(&target).await {
        round += 1;
        let len = 16 + (rng.next_u64() % 65_536) as usize;
        let (what, body) = match round % 4 {
            0 => ("random bytes", rng.bytes(len)),
            1 => {
                // A snappy header promising 1 MiB, then noise.
                let mut body = vec![0x80, 0x80, 0x40];
                body.extend(rng.bytes(len));
                ("broken snappy", body)
            }
            2 => {
                let body = snap::raw::Encoder::new()
                    .compress_vec(&rng.bytes(len))
                    .expect("snappy");
                ("snappy of random bytes", body)
            }
            _ => {
                // A valid request cut short.
                let request = WriteRequest {
                    timeseries: vec![TimeSeries {
                        labels: vec![PromLabel {
                            name: "__name__".into(),
                            value: "hostile_truncated".into(),
                        }],
                        samples: vec![Sample {
                            value: 1.0,
                            timestamp: 1,
                        }],
                    }],
                };
                let encoded = prost::Message::encode_to_vec(&request);
                let cut = &encoded[..encoded.len() - 3];
                let body = snap::raw::Encoder::new().compress_vec(cut).expect("snappy");
                ("snappy of truncated protobuf", body)
            }
        };
        let outcome = target.remote_write(&body).await;
        tally.add(what, outcome);
    }
}

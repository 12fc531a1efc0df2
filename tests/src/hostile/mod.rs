//! Hostile traffic against a TLS collector, for `hcmon-hostile` (issue 13's proof): ten kinds,
//! each an async function that runs from its own task until [`Target::until`], counting what
//! it sent and how it was answered in a [`Tally`].

mod connections;
mod raw_codec;
mod requests;
mod streams;
mod target;

pub use connections::{bad_certificates, idle_streams, no_tls, slowloris, wrong_names};
pub use requests::{garbage_remote_write, oversized, token_guessing};
pub use streams::{cardinality_bomb, malformed_protobuf};
pub use target::Target;

use hcmon_agent::tls::identity::Identity;
use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::Status;

/// The address token guessing comes from: the collector throttles failed authentications per
/// client address, and the checks (from 127.0.0.1) must not share the guesser's penalty.
const GUESSER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// Where the held connections (slowloris, idle) come from: the collector caps open gRPC
/// connections per address, and the healthy agent (on 127.0.0.1) must not share the cap.
const HOLDER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
/// Where every other kind comes from.
const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The answers one kind of hostile traffic got, counted by outcome.
pub struct Tally {
    pub kind: &'static str,
    outcomes: Mutex<BTreeMap<String, u64>>,
}

impl Tally {
    pub fn new(kind: &'static str) -> Arc<Self> {
        Arc::new(Self {
            kind,
            outcomes: Mutex::new(BTreeMap::new()),
        })
    }

    pub fn add(&self, what: &str, outcome: impl AsRef<str>) {
        *self
            .outcomes
            .lock()
            .expect("tally lock")
            .entry(format!("{what}: {}", outcome.as_ref()))
            .or_default() += 1;
    }

    /// Every outcome and how often it came, in order.
    pub fn outcomes(&self) -> BTreeMap<String, u64> {
        self.outcomes.lock().expect("tally lock").clone()
    }
}

/// A message made short and countable: digits folded (ports, sizes, times), cut before a
/// second `": "` (decoders name the byte that broke them there), at most 90 characters.
fn normalize(text: &str) -> String {
    let text = match text.match_indices(": ").nth(1) {
        Some((at, _)) => &text[..at],
        None => text,
    };
    let mut out = String::new();
    let mut in_digits = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('#');
            }
            in_digits = true;
        } else {
            in_digits = false;
            out.push(c);
        }
    }
    out.chars().take(90).collect()
}

/// The innermost cause of an error, normalized.
pub(crate) fn cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = error;
    while let Some(source) = inner.source() {
        inner = source;
    }
    normalize(&inner.to_string())
}

fn status_outcome(status: &Status) -> String {
    format!("gRPC {:?} {:?}", status.code(), normalize(status.message()))
}

pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new() -> Self {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u128(Instant::now().elapsed().as_nanos());
        Self(hasher.finish() | 1)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub(crate) fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }

    pub(crate) fn hex(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(b"0123456789abcdef"[(self.next_u64() % 16) as usize]))
            .collect()
    }
}

/// Waits for `period` between rounds while the traffic runs; false once it is over.
pub struct Pace(tokio::time::Interval);

impl Pace {
    pub fn every(period: Duration) -> Self {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Self(interval)
    }

    pub async fn next(&mut self, target: &Target) -> bool {
        self.0.tick().await;
        target.running()
    }
}

/// The identities hostile nodes enrolled with legitimately (their certificates are real).
pub struct Mallory {
    /// `mallory`: poses as others, opens too many streams.
    pub poser: Identity,
    /// `mallory-bomb`: ever-new series.
    pub bomb: Identity,
    /// `mallory-big`: batches over the limit.
    pub big: Identity,
    /// `mallory-garbage`: malformed protobuf.
    pub garbage: Identity,
}

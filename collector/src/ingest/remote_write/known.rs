//! Remote write's cache of the series it knows, by a digest of their raw labels, so a known
//! series costs one hash and one table lookup: no label parsing, no allocation.
//!
//! The table holds a 128-bit digest of a series' labels, not the label bytes. Scrapes send one
//! sample per series per request, so every sample is a lookup, and a key kept in an allocation
//! of its own was a second cache miss per lookup, the larger part of its cost. The digest is
//! SipHash-1-3 under a key drawn at start: two label sets share one only by a collision a
//! writer cannot aim for (the key is secret) and chance does not bring (2⁻¹²⁸ per pair). Each
//! name and value enters it behind its length, so label sets cannot alias through a value that
//! holds a separator (a value may hold a NUL).

use crate::storage::SeriesId;
use siphasher::sip128::{Hasher128, SipHasher13};
use std::hash::{BuildHasher, Hasher};

/// A series' labels, as remote write's cache knows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LabelsDigest(u64, u64);

/// Remote write's known series (see the module's header).
pub type KnownSeries = rustc_hash::FxHashMap<LabelsDigest, SeriesId>;

/// Digests label sets under this process's key.
pub struct LabelsDigester {
    keys: (u64, u64),
}

impl LabelsDigester {
    /// A digester with a key drawn for this process (from the standard library's hash keys,
    /// which come from the operating system's random source).
    pub fn new() -> Self {
        let random = std::collections::hash_map::RandomState::new();
        Self {
            keys: (random.hash_one(0u8), random.hash_one(1u8)),
        }
    }

    /// The digest of `labels`, in their order; `scratch` is a buffer kept by the caller.
    pub fn digest(&self, labels: &[(&[u8], &[u8])], scratch: &mut Vec<u8>) -> LabelsDigest {
        scratch.clear();
        for (name, value) in labels {
            for part in [name, value] {
                scratch.extend_from_slice(&(part.len() as u64).to_le_bytes());
                scratch.extend_from_slice(part);
            }
        }
        let mut hasher = SipHasher13::new_with_keys(self.keys.0, self.keys.1);
        hasher.write(scratch);
        let hash = hasher.finish128();
        LabelsDigest(hash.h1, hash.h2)
    }
}

impl Default for LabelsDigester {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_sets_differ_whatever_their_values_hold_and_each_digester_has_its_key() {
        let digester = LabelsDigester::new();
        let mut scratch = Vec::new();
        let mut digest = |labels: &[(&[u8], &[u8])]| digester.digest(labels, &mut scratch);
        let two: &[(&[u8], &[u8])] = &[(b"x", b"a"), (b"y", b"b")];
        // One label whose value spells out the two above with NUL separators.
        let one: &[(&[u8], &[u8])] = &[(b"x", b"a\0y\0b")];
        let split: &[(&[u8], &[u8])] = &[(b"xa", b""), (b"y", b"b")];
        assert_eq!(digest(two), digest(two));
        assert_ne!(digest(two), digest(one));
        assert_ne!(digest(two), digest(split));
        let other = LabelsDigester::new();
        assert_ne!(
            digester.digest(two, &mut Vec::new()),
            other.digest(two, &mut Vec::new())
        );
    }
}

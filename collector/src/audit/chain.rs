//! The audit chain, pure: the record, its canonical bytes and hash, sealing a new record onto
//! the chain and verifying a whole chain.
//!
//! # Canonical bytes
//! A record's hash is SHA-256 over its JSON as [`AuditRecord`] serialises it with the `hash`
//! field left out: fields in declaration order, optional ones absent when empty. The collector
//! and `hcmon audit verify` both re-serialise the record they hold, so the form is frozen: a
//! field may be added only as optional and absent when empty (records written before it keep
//! their bytes); renaming or retyping one breaks every earlier record's hash. A field written by
//! a newer hcmon is dropped when an older one decodes the record, so verify with a version at
//! least as new as the collector's.
//!
//! # Invariants of a sound chain
//! Records are numbered densely from 0; record 0's `prev` is [`GENESIS`]; every later record's
//! `prev` is the hash of the record before it; every record's `hash` matches its bytes. A
//! modified record fails its own hash (or, if the hash was recomputed, the next record's
//! `prev`); a removed or reordered record breaks the numbering (or, if renumbered, a hash).
//! Removing records from the end leaves a sound chain: only a head kept elsewhere (the hash
//! `hcmon audit verify` prints) shows that.

use ring::digest::{SHA256, digest};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The `prev` of record 0: 32 zero bytes, in hex.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What was done, with its target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum AuditEvent {
    /// An alert acknowledged, through the API or a signed link.
    AckAlert { alert: String },
    /// A silence created; its id when the call succeeded.
    CreateSilence {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        silence: Option<String>,
    },
    /// A silence ended now.
    ExpireSilence { silence: String },
    /// A node forgotten.
    ForgetAgent { node: String },
    /// The store compacted.
    Compact,
    /// An enrollment token issued for a node (never the token itself); the node when the call
    /// succeeded.
    IssueEnrollmentToken {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<String>,
    },
    /// A node enrolled with a token; the serial of its certificate when it succeeded.
    Enroll {
        node: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        serial: Option<String>,
    },
    /// A node's certificate renewed; the new serial when it succeeded.
    RenewCertificate {
        node: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        serial: Option<String>,
    },
    /// Every certificate of a node revoked, its streams cut off.
    RevokeNode { node: String },
    /// An API token made; its id when the call succeeded.
    CreateToken {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
    },
    /// An API token revoked.
    RevokeToken { token: String },
    /// A request whose token was missing or not taken, and why.
    FailedAuthentication { reason: String },
    /// An annotation made; its id when the call succeeded.
    CreateAnnotation {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        annotation: Option<String>,
    },
    /// An annotation deleted.
    DeleteAnnotation { annotation: String },
    /// An experiment made; its id when the call succeeded.
    CreateExperiment {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        experiment: Option<String>,
    },
    /// An experiment deleted.
    DeleteExperiment { experiment: String },
    /// An SLO created or replaced through the API; its name when the call succeeded.
    CreateSlo {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        slo: Option<String>,
    },
    /// SLOs imported from OpenSLO YAML: the names created or replaced.
    ImportSlos {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        slos: Vec<String>,
    },
    /// An SLO deleted.
    DeleteSlo { slo: String },
}

/// What the caller of an append supplies; the log adds the number, time and chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The authenticated principal (a token's name), or how the caller was let in without one.
    pub who: String,
    /// The role of `who`'s token, when it had one.
    pub role: Option<String>,
    /// The client's address, when the call came over the network.
    pub client: Option<String>,
    /// The method and route template, e.g. `POST /api/v1/silences`.
    pub route: String,
    pub event: AuditEvent,
    /// The HTTP status the call was answered with.
    pub outcome: u16,
}

/// One record of the log, as stored, listed and exported (see the module header).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: u64,
    pub at_ms: i64,
    pub who: String,
    /// Absent from records made before roles existed, so their bytes (and hashes) stand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    pub route: String,
    pub event: AuditEvent,
    pub outcome: u16,
    /// The hash of the record before, in hex; [`GENESIS`] for record 0.
    pub prev: String,
    /// SHA-256 of this record's canonical bytes, in hex.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hash: String,
}

impl AuditRecord {
    /// The record numbered `seq` at `at_ms`, chained to `prev` and sealed with its hash.
    pub fn seal(seq: u64, at_ms: i64, prev: String, entry: Entry) -> Self {
        let mut record = AuditRecord {
            seq,
            at_ms,
            who: entry.who,
            role: entry.role,
            client: entry.client,
            route: entry.route,
            event: entry.event,
            outcome: entry.outcome,
            prev,
            hash: String::new(),
        };
        record.hash = record.digest();
        record
    }

    /// SHA-256 of the canonical bytes (the JSON without `hash`), in hex.
    pub fn digest(&self) -> String {
        let unsealed = AuditRecord {
            hash: String::new(),
            ..self.clone()
        };
        let bytes = serde_json::to_vec(&unsealed).expect("audit records serialize");
        hex(digest(&SHA256, &bytes).as_ref())
    }
}

/// The first record that breaks the chain, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    /// The number the record at that place should carry.
    pub seq: u64,
    pub problem: Problem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Another record stands in its place: records were removed or reordered.
    Misplaced { found: u64 },
    /// Its contents do not match its hash: it was modified.
    Modified,
    /// Its `prev` is not the hash of the record before: a record was modified (its hash
    /// recomputed), removed or reordered.
    Unchained,
}

impl fmt::Display for Broken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seq = self.seq;
        match self.problem {
            Problem::Misplaced { found } => write!(
                f,
                "record {seq}: record {found} stands in its place (records removed or reordered)"
            ),
            Problem::Modified => write!(f, "record {seq}: modified (it does not match its hash)"),
            Problem::Unchained if seq == 0 => {
                write!(f, "record 0: its prev-hash is not the genesis hash")
            }
            Problem::Unchained => write!(
                f,
                "record {seq}: does not follow record {} (its prev-hash differs: a record \
                 modified, removed or reordered)",
                seq - 1
            ),
        }
    }
}

/// Checks a whole chain, from record 0, in stored order; the hash of its last record (the head,
/// [`GENESIS`] when empty) when sound.
pub fn verify(records: &[AuditRecord]) -> Result<String, Broken> {
    let mut prev = GENESIS.to_owned();
    for (seq, record) in (0u64..).zip(records) {
        let broken = |problem| Broken { seq, problem };
        if record.seq != seq {
            return Err(broken(Problem::Misplaced { found: record.seq }));
        }
        let hash = record.digest();
        if record.hash != hash {
            return Err(broken(Problem::Modified));
        }
        if record.prev != prev {
            return Err(broken(Problem::Unchained));
        }
        prev = hash;
    }
    Ok(prev)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(alert: &str) -> Entry {
        Entry {
            who: "anonymous".into(),
            role: None,
            client: Some("127.0.0.1:4000".into()),
            route: "POST /api/v1/alerts/{id}/ack".into(),
            event: AuditEvent::AckAlert {
                alert: alert.into(),
            },
            outcome: 200,
        }
    }

    /// A sound chain of `n` records.
    fn chain(n: u64) -> Vec<AuditRecord> {
        let mut prev = GENESIS.to_owned();
        (0..n)
            .map(|seq| {
                let record = AuditRecord::seal(seq, 1000 + seq as i64, prev.clone(), entry("a"));
                prev = record.hash.clone();
                record
            })
            .collect()
    }

    fn check(records: &[AuditRecord], expected: Result<(), Broken>) {
        assert_eq!(verify(records).map(|_| ()), expected);
    }

    #[test]
    fn a_sound_chain_verifies_and_ends_at_its_head() {
        check(&[], Ok(()));
        let records = chain(5);
        assert_eq!(verify(&records), Ok(records[4].hash.clone()));
        assert_eq!(verify(&[]), Ok(GENESIS.to_owned()));
        assert_eq!(records[0].prev, GENESIS);
        assert_eq!(records[0].hash.len(), 64);
    }

    #[test]
    fn the_hash_covers_every_field_and_is_deterministic() {
        let record = &chain(1)[0];
        let json = serde_json::to_string(record).unwrap();
        let back: AuditRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back.digest(), record.hash);
        let mut other = record.clone();
        other.client = None;
        assert_ne!(other.digest(), record.hash);
        other = record.clone();
        other.outcome = 404;
        assert_ne!(other.digest(), record.hash);
        other = record.clone();
        other.role = Some("admin".into());
        assert_ne!(other.digest(), record.hash);
    }

    #[test]
    fn a_record_written_before_roles_keeps_its_hash() {
        // As the collector wrote it before `role` existed.
        let old = r#"{"seq":0,"at_ms":1000,"who":"anonymous","client":"127.0.0.1:4000","route":"POST /api/v1/alerts/{id}/ack","event":{"what":"ack_alert","alert":"a"},"outcome":200,"prev":"0000000000000000000000000000000000000000000000000000000000000000","hash":"x"}"#;
        let record: AuditRecord = serde_json::from_str(old).unwrap();
        assert_eq!(record.role, None);
        assert_eq!(record.digest(), chain(1)[0].hash);
    }

    #[test]
    fn a_modified_record_is_named() {
        let mut records = chain(5);
        records[2].who = "mallory".into();
        let modified = Broken {
            seq: 2,
            problem: Problem::Modified,
        };
        check(&records, Err(modified));
        // Its hash recomputed too: the next record no longer follows it.
        records[2].hash = records[2].digest();
        let unchained = Broken {
            seq: 3,
            problem: Problem::Unchained,
        };
        check(&records, Err(unchained));
    }

    #[test]
    fn a_removed_record_is_named() {
        let mut records = chain(5);
        records.remove(2);
        let misplaced = Broken {
            seq: 2,
            problem: Problem::Misplaced { found: 3 },
        };
        check(&records, Err(misplaced));
        // The first one removed.
        check(
            &chain(3)[1..],
            Err(Broken {
                seq: 0,
                problem: Problem::Misplaced { found: 1 },
            }),
        );
        // Renumbered after the removal, hashes recomputed: the chain still breaks there.
        for (seq, record) in (0u64..).zip(records.iter_mut()) {
            record.seq = seq;
            record.hash = record.digest();
        }
        let unchained = Broken {
            seq: 2,
            problem: Problem::Unchained,
        };
        check(&records, Err(unchained));
    }

    #[test]
    fn reordered_records_are_named() {
        let mut records = chain(5);
        records.swap(1, 3);
        let misplaced = Broken {
            seq: 1,
            problem: Problem::Misplaced { found: 3 },
        };
        check(&records, Err(misplaced));
        // Renumbered to hide the swap, hashes recomputed.
        records[1].seq = 1;
        records[3].seq = 3;
        for record in &mut records {
            record.hash = record.digest();
        }
        let unchained = Broken {
            seq: 1,
            problem: Problem::Unchained,
        };
        check(&records, Err(unchained));
    }

    #[test]
    fn what_is_broken_reads_as_a_sentence() {
        let broken = Broken {
            seq: 7,
            problem: Problem::Modified,
        };
        assert_eq!(
            broken.to_string(),
            "record 7: modified (it does not match its hash)"
        );
        let first = Broken {
            seq: 0,
            problem: Problem::Unchained,
        };
        assert_eq!(
            first.to_string(),
            "record 0: its prev-hash is not the genesis hash"
        );
        let mut records = chain(2);
        records[0].prev = records[1].hash.clone();
        records[0].hash = records[0].digest();
        check(&records, Err(first));
    }
}

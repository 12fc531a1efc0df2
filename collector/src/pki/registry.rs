//! What the CA has handed out, in the store: enrollment tokens (by the hash of their secret)
//! and the certificates issued to nodes, with their revocations.
//!
//! Table `pki`: key `t` ‖ SHA-256 of a token's secret (hex) → token record; key `c` ‖ serial
//! (hex) → certificate record. Values are `{"format": 1, "record": ...}` (unknown fields
//! ignored, an unknown format is corruption, as in `storage/records.rs`). Every change is a
//! synced write made before the caller answers, under one lock, so a token is used at most
//! once even by two enrollments racing, and a revocation survives a crash the moment it is
//! acknowledged. The table is small (a token per enrollment, a certificate per enrollment or
//! renewal) and is held in memory as well.

use crate::storage::{KvBatch, StoreError, Table, Tsdb};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

const FORMAT: u64 = 1;
const TOKEN_PREFIX: u8 = b't';
const CERTIFICATE_PREFIX: u8 = b'c';

/// An enrollment token as stored: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub node: String,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_at_ms: Option<i64>,
}

/// How a certificate came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Issuance {
    Enrolled,
    Renewed,
}

/// A certificate issued to a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRecord {
    pub node: String,
    pub serial: String,
    pub issuance: Issuance,
    pub issued_at_ms: i64,
    pub not_after_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at_ms: Option<i64>,
}

/// Why a token cannot be used. Completes "the enrollment token ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRefusal {
    #[error("is not known to this collector")]
    Unknown,
    #[error("was already used (at {at_ms} ms); issue a new one with `hcmon enroll`")]
    Used { at_ms: i64 },
    #[error("expired (at {at_ms} ms); issue a new one with `hcmon enroll`")]
    Expired { at_ms: i64 },
    #[error("was issued for node {issued_for:?}, not {asked:?}")]
    OtherNode { issued_for: String, asked: String },
}

#[derive(Serialize)]
struct Envelope<'a, T> {
    format: u64,
    record: &'a T,
}

#[derive(Deserialize)]
struct Marker {
    format: u64,
}

#[derive(Deserialize)]
struct Enveloped<T> {
    record: T,
}

#[derive(Default)]
struct State {
    tokens: HashMap<String, TokenRecord>,
    certificates: HashMap<String, CertificateRecord>,
}

/// The registry (see the module header).
pub struct CertificateRegistry {
    tsdb: Arc<Tsdb>,
    state: Mutex<State>,
}

impl CertificateRegistry {
    /// Loads every record of the table.
    pub fn open(tsdb: Arc<Tsdb>) -> Result<Self, StoreError> {
        let mut state = State::default();
        let mut failed = None;
        tsdb.kv()
            .scan(Table::Pki, &[], &[0xff], &mut |key, value| {
                let loaded = match key.split_first() {
                    Some((&TOKEN_PREFIX, hash)) => decode(key, value).map(|record| {
                        state
                            .tokens
                            .insert(String::from_utf8_lossy(hash).into_owned(), record);
                    }),
                    Some((&CERTIFICATE_PREFIX, serial)) => decode(key, value).map(|record| {
                        state
                            .certificates
                            .insert(String::from_utf8_lossy(serial).into_owned(), record);
                    }),
                    _ => Err(corrupt(format!("an unknown key {key:?}"))),
                };
                match loaded {
                    Ok(()) => true,
                    Err(error) => {
                        failed = Some(error);
                        false
                    }
                }
            })?;
        if let Some(error) = failed {
            return Err(error);
        }
        Ok(Self {
            tsdb,
            state: Mutex::new(state),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores a new token, by the hash of its secret.
    pub fn add_token(&self, secret_hash: &str, record: TokenRecord) -> Result<(), StoreError> {
        let mut state = self.lock();
        self.put(TOKEN_PREFIX, secret_hash, &record)?;
        state.tokens.insert(secret_hash.to_owned(), record);
        Ok(())
    }

    /// Marks the token with `secret_hash` used by `node` at `now_ms`, if it may be.
    pub fn use_token(
        &self,
        secret_hash: &str,
        node: &str,
        now_ms: i64,
    ) -> Result<Result<(), TokenRefusal>, StoreError> {
        let mut state = self.lock();
        let Some(record) = state.tokens.get(secret_hash) else {
            return Ok(Err(TokenRefusal::Unknown));
        };
        if let Some(at_ms) = record.used_at_ms {
            return Ok(Err(TokenRefusal::Used { at_ms }));
        }
        if now_ms >= record.expires_at_ms {
            return Ok(Err(TokenRefusal::Expired {
                at_ms: record.expires_at_ms,
            }));
        }
        if record.node != node {
            return Ok(Err(TokenRefusal::OtherNode {
                issued_for: record.node.clone(),
                asked: node.to_owned(),
            }));
        }
        let used = TokenRecord {
            used_at_ms: Some(now_ms),
            ..record.clone()
        };
        self.put(TOKEN_PREFIX, secret_hash, &used)?;
        state.tokens.insert(secret_hash.to_owned(), used);
        Ok(Ok(()))
    }

    /// Records an issued certificate.
    pub fn add_certificate(&self, record: CertificateRecord) -> Result<(), StoreError> {
        let mut state = self.lock();
        self.put(CERTIFICATE_PREFIX, &record.serial, &record)?;
        state.certificates.insert(record.serial.clone(), record);
        Ok(())
    }

    /// The certificate with `serial`, if this CA recorded it.
    pub fn certificate(&self, serial: &str) -> Option<CertificateRecord> {
        self.lock().certificates.get(serial).cloned()
    }

    /// Revokes every certificate of `node` not revoked yet, in one synced write; returns them.
    pub fn revoke(&self, node: &str, now_ms: i64) -> Result<Vec<CertificateRecord>, StoreError> {
        let mut state = self.lock();
        let revoked: Vec<CertificateRecord> = state
            .certificates
            .values()
            .filter(|c| c.node == node && c.revoked_at_ms.is_none())
            .map(|c| CertificateRecord {
                revoked_at_ms: Some(now_ms),
                ..c.clone()
            })
            .collect();
        let mut batch = KvBatch::default();
        for record in &revoked {
            batch.put(
                Table::Pki,
                key(CERTIFICATE_PREFIX, &record.serial),
                encode(record),
            );
        }
        self.tsdb.kv().write(batch, true)?;
        for record in &revoked {
            state
                .certificates
                .insert(record.serial.clone(), record.clone());
        }
        Ok(revoked)
    }

    /// Every certificate, newest first.
    pub fn certificates(&self) -> Vec<CertificateRecord> {
        let mut all: Vec<_> = self.lock().certificates.values().cloned().collect();
        all.sort_by(|a, b| {
            b.issued_at_ms
                .cmp(&a.issued_at_ms)
                .then(a.serial.cmp(&b.serial))
        });
        all
    }

    fn put<T: Serialize>(&self, prefix: u8, id: &str, record: &T) -> Result<(), StoreError> {
        let mut batch = KvBatch::default();
        batch.put(Table::Pki, key(prefix, id), encode(record));
        self.tsdb.kv().write(batch, true)
    }
}

fn key(prefix: u8, id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + id.len());
    key.push(prefix);
    key.extend_from_slice(id.as_bytes());
    key
}

fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    serde_json::to_vec(&Envelope {
        format: FORMAT,
        record,
    })
    .expect("pki records serialize")
}

fn corrupt(detail: String) -> StoreError {
    StoreError::corrupt(Table::Pki, "pki record", detail)
}

fn decode<T: serde::de::DeserializeOwned>(key: &[u8], value: &[u8]) -> Result<T, StoreError> {
    let name = String::from_utf8_lossy(key);
    let not_json = |e: serde_json::Error| corrupt(format!("record {name} is not JSON: {e}"));
    let marker: Marker = serde_json::from_slice(value).map_err(not_json)?;
    if marker.format != FORMAT {
        return Err(corrupt(format!(
            "record {name} has format {}, not one this version reads ({FORMAT}); written by a newer hcmon?",
            marker.format
        )));
    }
    let enveloped: Enveloped<T> = serde_json::from_slice(value).map_err(not_json)?;
    Ok(enveloped.record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{MemoryKv, StorageConfig};

    fn open(kv: &MemoryKv) -> CertificateRegistry {
        let opened = Tsdb::open(Box::new(kv.clone()), StorageConfig::default()).unwrap();
        CertificateRegistry::open(Arc::new(opened.tsdb)).unwrap()
    }

    fn token(node: &str) -> TokenRecord {
        TokenRecord {
            node: node.into(),
            created_at_ms: 0,
            expires_at_ms: 1_000,
            used_at_ms: None,
        }
    }

    #[test]
    fn a_token_works_once_for_its_node_before_it_expires_and_across_restarts() {
        let kv = MemoryKv::default();
        let registry = open(&kv);
        registry.add_token("h1", token("nas")).unwrap();
        registry.add_token("h2", token("nas")).unwrap();
        let refused = registry.use_token("h1", "web", 10).unwrap().unwrap_err();
        assert!(
            matches!(refused, TokenRefusal::OtherNode { .. }),
            "{refused}"
        );
        assert_eq!(registry.use_token("h1", "nas", 10).unwrap(), Ok(()));
        assert_eq!(
            registry.use_token("h1", "nas", 11).unwrap(),
            Err(TokenRefusal::Used { at_ms: 10 })
        );
        assert_eq!(
            registry.use_token("nope", "nas", 11).unwrap(),
            Err(TokenRefusal::Unknown)
        );
        let registry = open(&kv);
        assert_eq!(
            registry.use_token("h1", "nas", 12).unwrap(),
            Err(TokenRefusal::Used { at_ms: 10 })
        );
        assert_eq!(
            registry.use_token("h2", "nas", 1_000).unwrap(),
            Err(TokenRefusal::Expired { at_ms: 1_000 })
        );
    }

    #[test]
    fn revocation_covers_every_certificate_of_the_node_and_is_stored() {
        let kv = MemoryKv::default();
        let registry = open(&kv);
        for (serial, node) in [("01", "nas"), ("02", "nas"), ("03", "web")] {
            registry
                .add_certificate(CertificateRecord {
                    node: node.into(),
                    serial: serial.into(),
                    issuance: Issuance::Enrolled,
                    issued_at_ms: 5,
                    not_after_ms: 100,
                    revoked_at_ms: None,
                })
                .unwrap();
        }
        assert_eq!(registry.revoke("nas", 50).unwrap().len(), 2);
        assert!(registry.revoke("nas", 60).unwrap().is_empty());
        let registry = open(&kv);
        assert_eq!(registry.certificate("01").unwrap().revoked_at_ms, Some(50));
        assert_eq!(registry.certificate("03").unwrap().revoked_at_ms, None);
    }
}

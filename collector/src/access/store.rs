//! The API's bearer tokens in the store, and authentication against them.
//!
//! Table `tokens`: key the token's id; value `{"format": 1, "record": <TokenRecord>}` (unknown
//! fields ignored, an unknown format is corruption, as in `audit/log.rs`). Every record is also
//! held in memory, so authenticating reads no disk: tokens are few. A revoked token's record is
//! deleted.
//!
//! **Bootstrap:** a store with no token at all gets an admin token with the write scope, named
//! `admin`, whose text is written to `<data dir>/admin.token` (mode 0600), so a fresh
//! collector needs no setup and its operator finds the token beside the data.

use super::role::{Grant, Role};
use super::token::{self, SecretHash, TokenId};
use crate::secure_random::RandomUnavailable;
use crate::storage::{KvBatch, StoreError, Table, Tsdb};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// The format this version writes.
const FORMAT: u64 = 1;

/// What a corrupt value is called in errors.
const WHAT: &str = "API token";

/// The file a fresh store's admin token is written to, in the data folder.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";

/// Longest token name.
const MAX_NAME_CHARS: usize = 64;

/// A token as stored: everything but its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: TokenId,
    pub name: String,
    pub role: Role,
    /// The write scope: may push samples.
    pub write: bool,
    pub created_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ms: Option<i64>,
    hash: SecretHash,
}

/// Who made a request: put on it once its token checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub token_id: TokenId,
    pub name: String,
    pub role: Role,
    pub write: bool,
}

impl Identity {
    pub fn grant(&self) -> Grant {
        Grant {
            role: self.role,
            write: self.write,
        }
    }
}

/// What a new token is to be.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub name: String,
    pub role: Role,
    pub write: bool,
    pub expires_ms: Option<i64>,
}

/// Why a presented token was not taken. Said to the client: it names no token that exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    #[error("no token was sent")]
    Missing,
    #[error("the token is not of the form hcm_<id>_<secret>")]
    Malformed,
    #[error("the token is unknown or was revoked")]
    Unknown,
    #[error("the token has expired")]
    Expired,
}

/// A token management call that failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token name: {0}")]
    BadName(String),
    #[error("a token named {0:?} exists already; pick another name or revoke it first")]
    NameTaken(String),
    #[error("no token with id {0:?}")]
    NoSuchToken(String),
    #[error(transparent)]
    Random(#[from] RandomUnavailable),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Serialize)]
struct Envelope<'a> {
    format: u64,
    record: &'a TokenRecord,
}

#[derive(Deserialize)]
struct Marker {
    format: u64,
}

#[derive(Deserialize)]
struct Enveloped {
    record: TokenRecord,
}

/// The collector's API tokens (see the module header).
pub struct TokenStore {
    tsdb: Arc<Tsdb>,
    tokens: RwLock<BTreeMap<TokenId, TokenRecord>>,
}

impl TokenStore {
    /// Opens the tokens in `tsdb`'s store, reading them all into memory.
    pub fn open(tsdb: Arc<Tsdb>) -> Result<Self, StoreError> {
        let mut tokens = BTreeMap::new();
        let mut failed = None;
        tsdb.kv().scan(
            Table::Tokens,
            &[],
            &[0xff; 64],
            &mut |key, value| match decode(key, value) {
                Ok(record) => {
                    tokens.insert(record.id.clone(), record);
                    true
                }
                Err(error) => {
                    failed = Some(error);
                    false
                }
            },
        )?;
        if let Some(error) = failed {
            return Err(error);
        }
        Ok(Self {
            tsdb,
            tokens: RwLock::new(tokens),
        })
    }

    /// When the store holds no token, makes the admin token and writes it to
    /// `<data_dir>/admin.token` (see the module header); the file's path when it did.
    pub fn bootstrap(&self, data_dir: &Path, now_ms: i64) -> anyhow::Result<Option<PathBuf>> {
        if !self.read().is_empty() {
            return Ok(None);
        }
        let new = NewToken {
            name: "admin".into(),
            role: Role::Admin,
            write: true,
            expires_ms: None,
        };
        let (_, text) = self.create(new, now_ms)?;
        let path = data_dir.join(ADMIN_TOKEN_FILE);
        write_private(&path, &text).map_err(|e| {
            anyhow::anyhow!("cannot write the admin token to {}: {e}", path.display())
        })?;
        tracing::info!("created an admin token; it is in {}", path.display());
        Ok(Some(path))
    }

    /// Makes a token and stores it durably; its record and its text, which is not kept.
    pub fn create(&self, new: NewToken, now_ms: i64) -> Result<(TokenRecord, String), TokenError> {
        let name = new.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            let problem = format!("give a name of 1 to {MAX_NAME_CHARS} characters");
            return Err(TokenError::BadName(problem));
        }
        if name.chars().any(char::is_control) {
            return Err(TokenError::BadName(
                "control characters are not allowed".into(),
            ));
        }
        let mut tokens = self.write_lock();
        if tokens.values().any(|t| t.name == name) {
            return Err(TokenError::NameTaken(name.to_owned()));
        }
        let minted = loop {
            let minted = token::mint()?;
            if !tokens.contains_key(&minted.id) {
                break minted;
            }
        };
        let record = TokenRecord {
            id: minted.id,
            name: name.to_owned(),
            role: new.role,
            write: new.write,
            created_ms: now_ms,
            expires_ms: new.expires_ms,
            hash: minted.hash,
        };
        let value = serde_json::to_vec(&Envelope {
            format: FORMAT,
            record: &record,
        })
        .expect("token records serialize");
        let mut batch = KvBatch::default();
        batch.put(Table::Tokens, record.id.as_str().as_bytes(), value);
        self.tsdb.kv().write(batch, true)?;
        tokens.insert(record.id.clone(), record.clone());
        Ok((record, minted.text))
    }

    /// Every token, by id.
    pub fn list(&self) -> Vec<TokenRecord> {
        self.read().values().cloned().collect()
    }

    /// Deletes the token `id` durably; from then on it authenticates nothing.
    pub fn revoke(&self, id: &TokenId) -> Result<TokenRecord, TokenError> {
        let mut tokens = self.write_lock();
        let Some(record) = tokens.get(id) else {
            return Err(TokenError::NoSuchToken(id.to_string()));
        };
        let mut batch = KvBatch::default();
        batch.delete(Table::Tokens, record.id.as_str().as_bytes());
        self.tsdb.kv().write(batch, true)?;
        Ok(tokens.remove(id).expect("present under the lock"))
    }

    /// The identity `text` proves at `now_ms`.
    pub fn authenticate(&self, text: &str, now_ms: i64) -> Result<Identity, AuthFailure> {
        let (id, secret) = token::parse(text).ok_or(AuthFailure::Malformed)?;
        let tokens = self.read();
        let record = tokens.get(&id).ok_or(AuthFailure::Unknown)?;
        if !record.hash.matches(secret) {
            return Err(AuthFailure::Unknown);
        }
        if record.expires_ms.is_some_and(|expires| expires <= now_ms) {
            return Err(AuthFailure::Expired);
        }
        Ok(Identity {
            token_id: record.id.clone(),
            name: record.name.clone(),
            role: record.role,
            write: record.write,
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<TokenId, TokenRecord>> {
        self.tokens.read().expect("token lock")
    }

    fn write_lock(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<TokenId, TokenRecord>> {
        self.tokens.write().expect("token lock")
    }
}

/// Writes `text` to a new file at `path` readable by its owner only; a file already there (a
/// token of a store since wiped) is replaced, not written through, so its old mode or a
/// symlink in its place cannot leak the new token.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let create = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
    };
    let mut file = match create() {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(path)?;
            create()?
        }
        other => other?,
    };
    file.write_all(format!("{text}\n").as_bytes())?;
    file.sync_all()
}

fn decode(key: &[u8], value: &[u8]) -> Result<TokenRecord, StoreError> {
    let id = String::from_utf8_lossy(key);
    let corrupt = |detail: String| StoreError::corrupt(Table::Tokens, WHAT, detail);
    let not_json = |e: serde_json::Error| corrupt(format!("token {id} is not a JSON record: {e}"));
    let marker: Marker = serde_json::from_slice(value).map_err(not_json)?;
    if marker.format != FORMAT {
        return Err(corrupt(format!(
            "token {id} has format {}, not one this version reads ({FORMAT}); written by a newer hcmon?",
            marker.format
        )));
    }
    let enveloped: Enveloped = serde_json::from_slice(value).map_err(not_json)?;
    Ok(enveloped.record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{MemoryKv, StorageConfig};
    use std::os::unix::fs::PermissionsExt;

    fn open(kv: &MemoryKv) -> TokenStore {
        let opened = Tsdb::open(Box::new(kv.clone()), StorageConfig::default()).unwrap();
        TokenStore::open(Arc::new(opened.tsdb)).unwrap()
    }

    fn new(name: &str, role: Role, expires_ms: Option<i64>) -> NewToken {
        NewToken {
            name: name.into(),
            role,
            write: false,
            expires_ms,
        }
    }

    #[test]
    fn tokens_authenticate_until_revoked_or_expired_across_a_restart() {
        let kv = MemoryKv::default();
        let store = open(&kv);
        let (viewer, text) = store.create(new("grafana", Role::Viewer, None), 0).unwrap();
        let (_, brief) = store
            .create(new("brief", Role::Operator, Some(1000)), 0)
            .unwrap();
        let store = open(&kv);
        let who = store.authenticate(&text, 5).unwrap();
        assert_eq!(
            (who.name.as_str(), who.role, who.write),
            ("grafana", Role::Viewer, false)
        );
        assert_eq!(
            store.authenticate(&brief, 999).unwrap().role,
            Role::Operator
        );
        assert_eq!(store.authenticate(&brief, 1000), Err(AuthFailure::Expired));
        let forged = format!("{}0", &text[..text.len() - 1]);
        let forged = if forged == text {
            format!("{}1", &text[..text.len() - 1])
        } else {
            forged
        };
        assert_eq!(store.authenticate(&forged, 5), Err(AuthFailure::Unknown));
        assert_eq!(
            store.authenticate("Bearer x", 5),
            Err(AuthFailure::Malformed)
        );
        store.revoke(&viewer.id).unwrap();
        assert_eq!(open(&kv).authenticate(&text, 5), Err(AuthFailure::Unknown));
        assert!(matches!(
            store.revoke(&viewer.id),
            Err(TokenError::NoSuchToken(_))
        ));
        // Stored hashed: the secret is nowhere in the store.
        let secret = text.rsplit('_').next().unwrap();
        crate::storage::Kv::scan(&kv, Table::Tokens, &[], &[0xff; 64], &mut |_, value| {
            assert!(!String::from_utf8_lossy(value).contains(secret));
            assert!(value.starts_with(br#"{"format":1,"record":"#));
            true
        })
        .unwrap();
    }

    #[test]
    fn names_must_be_given_and_unique() {
        let store = open(&MemoryKv::default());
        store.create(new("a", Role::Viewer, None), 0).unwrap();
        for (name, expected) in [
            ("a", "a token named \"a\" exists already"),
            ("  ", "token name: give a name of 1 to 64 characters"),
            ("x\ny", "token name: control characters are not allowed"),
        ] {
            let error = store.create(new(name, Role::Viewer, None), 0).unwrap_err();
            assert!(error.to_string().starts_with(expected), "{error}");
        }
    }

    #[test]
    fn a_fresh_store_gets_an_admin_token_in_a_private_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(ADMIN_TOKEN_FILE);
        std::fs::write(&path, "stale").unwrap();
        let kv = MemoryKv::default();
        let store = open(&kv);
        assert_eq!(store.bootstrap(dir.path(), 0).unwrap(), Some(path.clone()));
        let text = std::fs::read_to_string(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let admin = store.authenticate(text.trim(), 1).unwrap();
        assert_eq!(
            (admin.name.as_str(), admin.role, admin.write),
            ("admin", Role::Admin, true)
        );
        assert_eq!(open(&kv).bootstrap(dir.path(), 2).unwrap(), None);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    }
}

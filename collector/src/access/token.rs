//! A bearer token's text, `hcm_<id>_<secret>`, and the hash it is kept as.
//!
//! The id (8 hex digits) names the token in lists, revocations and the audit log; the secret
//! (32 random bytes, 64 hex digits) is what proves it. Only SHA-256 of the secret is stored: a
//! copy of the store gives nobody a token. The secret needs no slow hash: it is random, not a
//! password a person chose.

use crate::secure_random::{self, RandomUnavailable};
use ring::digest::{SHA256, digest};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The prefix every token starts with, so a leaked one is recognisable (secret scanners).
const PREFIX: &str = "hcm_";

/// Bytes of the id and of the secret.
const ID_BYTES: usize = 4;
const SECRET_BYTES: usize = 32;

/// A token's public name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenId(String);

impl TokenId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for TokenId {
    fn from(id: &str) -> Self {
        Self(id.to_owned())
    }
}

/// SHA-256 of a secret, in hex: what the store keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretHash(String);

impl SecretHash {
    fn of(secret: &str) -> Self {
        let hash = digest(&SHA256, secret.as_bytes());
        Self(hash.as_ref().iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Whether `secret` hashes to this, comparing every byte whatever the first difference.
    pub fn matches(&self, secret: &str) -> bool {
        let other = Self::of(secret);
        let (a, b) = (self.0.as_bytes(), other.0.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// A freshly made token: its text (shown once) and what is kept of it.
pub struct Minted {
    pub id: TokenId,
    pub text: String,
    pub hash: SecretHash,
}

/// A new token with a random id and secret.
pub fn mint() -> Result<Minted, RandomUnavailable> {
    let id = secure_random::hex::<ID_BYTES>()?;
    let secret = secure_random::hex::<SECRET_BYTES>()?;
    Ok(Minted {
        text: format!("{PREFIX}{id}_{secret}"),
        id: TokenId(id),
        hash: SecretHash::of(&secret),
    })
}

/// A presented token split into its id and secret; `None` when it is not in the form.
pub fn parse(text: &str) -> Option<(TokenId, &str)> {
    let (id, secret) = text.strip_prefix(PREFIX)?.split_once('_')?;
    let hex =
        |s: &str, bytes: usize| s.len() == 2 * bytes && s.bytes().all(|c| c.is_ascii_hexdigit());
    (hex(id, ID_BYTES) && hex(secret, SECRET_BYTES)).then(|| (TokenId(id.to_owned()), secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minted_token_parses_back_and_only_its_secret_matches() {
        let minted = mint().unwrap();
        assert!(minted.text.starts_with("hcm_"));
        assert_eq!(minted.text.len(), 4 + 8 + 1 + 64);
        let (id, secret) = parse(&minted.text).unwrap();
        assert_eq!(id, minted.id);
        assert!(minted.hash.matches(secret));
        assert!(!minted.hash.matches(&secret.replace(&secret[..1], "x")));
        assert!(!minted.text.contains(&minted.hash.0));
        let other = mint().unwrap();
        assert_ne!(other.id, minted.id);
        assert!(!minted.hash.matches(parse(&other.text).unwrap().1));
    }

    #[test]
    fn text_not_in_the_form_is_refused() {
        for bad in [
            "",
            "hcm_",
            "hcm_0123abcd",
            "abc_0123abcd_00",
            "hcm_0123abcd_0011",
            "hcm_0123abc_",
            &format!("hcm_0123abcz_{}", "0".repeat(64)),
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
        assert!(parse(&format!("hcm_0123abcd_{}", "f".repeat(64))).is_some());
    }
}

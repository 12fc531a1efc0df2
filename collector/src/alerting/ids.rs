//! The names the alerting core gives things: alerts, incidents and silences by id, and the
//! targets notifications go to. Types rather than strings, so an incident id cannot be taken
//! for an alert id and a target is parsed once, where it is configured.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Which alert: a stable hash of its name and identity labels, as 16 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AlertId(String);

impl AlertId {
    /// The id of the alert `alertname` with these identity labels (FNV-1a, 64 bits).
    pub fn of(alertname: &str, labels: &BTreeMap<String, String>) -> Self {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |bytes: &[u8]| {
            for b in bytes.iter().chain([&0xffu8]) {
                hash ^= u64::from(*b);
                hash = hash.wrapping_mul(0x0100_0000_01b3);
            }
        };
        feed(alertname.as_bytes());
        for (k, v) in labels {
            feed(k.as_bytes());
            feed(v.as_bytes());
        }
        Self(format!("{hash:016x}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which episode of an alert, from firing to resolution: `<alert id>-<fired at, Unix ms>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IncidentId(String);

impl IncidentId {
    /// The incident of `alert`'s episode that fired at `fired_ms`.
    pub fn new(alert: &AlertId, fired_ms: i64) -> Self {
        Self(format!("{alert}-{fired_ms}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Which silence: 16 hex digits made when it is created (empty before).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SilenceId(String);

impl SilenceId {
    /// A new id; not a secret, so `fastrand` is enough.
    pub fn random() -> Self {
        Self(format!("{:016x}", fastrand::u64(..)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! string_id {
    ($($id:ident),*) => {$(
        impl From<String> for $id {
            /// An id as a request or a stored record names it.
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&str> for $id {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }

        impl fmt::Display for $id {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}

string_id!(AlertId, IncidentId, SilenceId);

/// Where a notification goes: a channel, and the address that overrides the channel's own
/// recipients (an email address for an email channel, a name for a pager). Written
/// `channel` or `channel:address` in the config.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Target {
    pub channel: String,
    pub address: Option<String>,
}

impl Target {
    /// The channel itself, with its configured recipients.
    pub fn channel(name: &str) -> Self {
        Self {
            channel: name.to_owned(),
            address: None,
        }
    }
}

/// A target that is not `channel` or `channel:address`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("target {0:?} names no channel; want `channel` or `channel:address`")]
    NoChannel(String),
    #[error("target {0:?} has an empty address; want `channel` or `channel:address`")]
    EmptyAddress(String),
}

impl FromStr for Target {
    type Err = TargetError;

    fn from_str(text: &str) -> Result<Self, TargetError> {
        let (channel, address) = match text.split_once(':') {
            Some((channel, address)) => (channel, Some(address)),
            None => (text, None),
        };
        if channel.trim().is_empty() {
            return Err(TargetError::NoChannel(text.to_owned()));
        }
        if address.is_some_and(|a| a.trim().is_empty()) {
            return Err(TargetError::EmptyAddress(text.to_owned()));
        }
        Ok(Self {
            channel: channel.to_owned(),
            address: address.map(str::to_owned),
        })
    }
}

impl TryFrom<String> for Target {
    type Error = TargetError;

    fn try_from(text: String) -> Result<Self, TargetError> {
        text.parse()
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.address {
            Some(address) => write!(f, "{}:{address}", self.channel),
            None => f.write_str(&self.channel),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_once_and_write_back_as_configured() {
        for text in ["slack", "email:boss@example.com", "pager:on-call"] {
            let target: Target = text.parse().unwrap();
            assert_eq!(target.to_string(), text);
        }
        let mail: Target = "email:a@b.c".parse().unwrap();
        assert_eq!(
            (mail.channel.as_str(), mail.address.as_deref()),
            ("email", Some("a@b.c"))
        );
        assert_eq!(
            "".parse::<Target>(),
            Err(TargetError::NoChannel(String::new()))
        );
        assert!(matches!(
            ":x".parse::<Target>(),
            Err(TargetError::NoChannel(_))
        ));
        assert!(matches!(
            "email:".parse::<Target>(),
            Err(TargetError::EmptyAddress(_))
        ));
    }

    #[test]
    fn alert_ids_are_stable() {
        let labels = BTreeMap::from([("node".to_owned(), "nas".to_owned())]);
        let id = AlertId::of("HighCpu", &labels);
        assert_eq!(id.as_str().len(), 16);
        assert_eq!(id, AlertId::of("HighCpu", &labels));
        assert_ne!(id, AlertId::of("HighMemory", &labels));
        assert_eq!(
            IncidentId::new(&id, 5).to_string(),
            format!("{}-5", id.as_str())
        );
    }
}

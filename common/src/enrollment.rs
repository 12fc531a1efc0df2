//! The enrollment token's text, `hce1.<ca-pin>.<secret>` (see `proto/hcmon/v1/enrollment.proto`):
//! what the agent needs to trust the collector before it holds the CA certificate, and what the
//! collector checks. Parsing and printing only; issuing and checking live in the collector.

use std::fmt;

/// The text every token starts with: the format's version.
const PREFIX: &str = "hce1";

/// Hex digits in the CA pin (a SHA-256).
const PIN_HEX_LEN: usize = 64;

/// A parsed enrollment token.
#[derive(Clone, PartialEq, Eq)]
pub struct EnrollmentToken {
    /// Lowercase hex SHA-256 of the collector CA certificate's DER.
    pub ca_pin: String,
    /// The part the collector checks; lowercase hex.
    pub secret: String,
}

/// Why a text is not an enrollment token. Completes "the enrollment token ...".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnrollmentTokenError {
    #[error("does not start with \"{PREFIX}.\" (copy the whole line `hcmon enroll` printed)")]
    Prefix,
    #[error("has no CA pin and secret after \"{PREFIX}.\" (was it cut short?)")]
    Parts,
    #[error("has a CA pin that is not {PIN_HEX_LEN} hex digits")]
    Pin,
    #[error("has a secret that is not 32 to 128 hex digits")]
    Secret,
}

impl EnrollmentToken {
    /// Parses a token's text; surrounding whitespace (a trailing newline from a file) is ignored.
    pub fn parse(text: &str) -> Result<Self, EnrollmentTokenError> {
        let text = text.trim();
        let rest = text
            .strip_prefix(PREFIX)
            .and_then(|r| r.strip_prefix('.'))
            .ok_or(EnrollmentTokenError::Prefix)?;
        let (pin, secret) = rest.split_once('.').ok_or(EnrollmentTokenError::Parts)?;
        let hex = |s: &str| s.bytes().all(|b| b.is_ascii_hexdigit());
        if pin.len() != PIN_HEX_LEN || !hex(pin) {
            return Err(EnrollmentTokenError::Pin);
        }
        if !(32..=128).contains(&secret.len()) || !hex(secret) {
            return Err(EnrollmentTokenError::Secret);
        }
        Ok(Self {
            ca_pin: pin.to_ascii_lowercase(),
            secret: secret.to_ascii_lowercase(),
        })
    }
}

impl fmt::Display for EnrollmentToken {
    /// The token's text, secret included: for the one place that hands it out.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}.{}.{}", self.ca_pin, self.secret)
    }
}

impl fmt::Debug for EnrollmentToken {
    /// The secret stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnrollmentToken")
            .field("ca_pin", &self.ca_pin)
            .field("secret", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_what_is_not_a_token() {
        let pin = "ab".repeat(32);
        let secret = "0f".repeat(16);
        let text = format!("hce1.{pin}.{secret}\n");
        let token = EnrollmentToken::parse(&text).unwrap();
        assert_eq!(token.to_string(), text.trim());
        assert!(!format!("{token:?}").contains(&secret));
        for (bad, error) in [
            ("hcm_abc", EnrollmentTokenError::Prefix),
            ("hce1.", EnrollmentTokenError::Parts),
            (
                &format!("hce1.{}.{secret}", "ab".repeat(10)),
                EnrollmentTokenError::Pin,
            ),
            (&format!("hce1.{pin}.xyz"), EnrollmentTokenError::Secret),
        ] {
            assert_eq!(EnrollmentToken::parse(bad), Err(error), "{bad}");
        }
    }
}

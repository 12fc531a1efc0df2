//! Acknowledge links in notifications: HMAC-SHA256 over the alert, the person and the link's
//! expiry, so a link acknowledges only that alert, as that person, until it expires.

use super::book::AckLinks;
use super::ids::AlertId;
use ring::hmac;

/// Signs and checks acknowledge links.
pub struct AckSigner {
    key: hmac::Key,
    /// The collector's address as people reach it, without a trailing `/`.
    base: Option<String>,
}

impl AckSigner {
    pub fn new(secret: &[u8], base: Option<String>) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            base: base.map(|b| b.trim_end_matches('/').to_owned()),
        }
    }

    fn message(alert: &str, by: &str, expires_s: i64) -> String {
        format!("{alert}\n{by}\n{expires_s}")
    }

    fn sign(&self, alert: &str, by: &str, expires_s: i64) -> String {
        let tag = hmac::sign(&self.key, Self::message(alert, by, expires_s).as_bytes());
        tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `signature` is this key's for the link, and the link has not expired.
    pub fn verify(
        &self,
        alert: &str,
        by: &str,
        expires_s: i64,
        signature: &str,
        now_ms: i64,
    ) -> bool {
        // Saturating: `expires` comes from a URL anyone can edit.
        if expires_s.saturating_mul(1000) < now_ms || signature.len() != 64 {
            return false;
        }
        let Some(bytes) = (0..32)
            .map(|i| u8::from_str_radix(signature.get(2 * i..2 * i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()
        else {
            return false;
        };
        hmac::verify(
            &self.key,
            Self::message(alert, by, expires_s).as_bytes(),
            &bytes,
        )
        .is_ok()
    }
}

fn query_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl AckLinks for AckSigner {
    fn link(&self, alert: &AlertId, by: &str, expires_ms: i64) -> String {
        let expires = expires_ms / 1000;
        format!(
            "{}/api/v1/alerts/{alert}/ack?by={}&expires={expires}&sig={}",
            self.base.as_deref().unwrap_or(""),
            query_escape(by),
            self.sign(alert.as_str(), by, expires)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_links_verify_and_expire_and_cannot_be_altered() {
        let signer = AckSigner::new(b"0123456789abcdef0123", Some("http://mon:9464/".into()));
        let link = signer.link(&AlertId::from("abc"), "on call", 2_000_000);
        assert!(
            link.starts_with(
                "http://mon:9464/api/v1/alerts/abc/ack?by=on%20call&expires=2000&sig="
            )
        );
        let sig = link.rsplit("sig=").next().unwrap();
        assert!(signer.verify("abc", "on call", 2000, sig, 1_000_000));
        assert!(
            !signer.verify("abc", "on call", 2000, sig, 2_000_001),
            "expired"
        );
        assert!(
            !signer.verify("abd", "on call", 2000, sig, 0),
            "other alert"
        );
        assert!(!signer.verify("abc", "boss", 2000, sig, 0), "other person");
        assert!(
            !signer.verify("abc", "on call", 9999, sig, 0),
            "longer life"
        );
        assert!(!signer.verify("abc", "on call", 2000, "zz", 0));
    }
}

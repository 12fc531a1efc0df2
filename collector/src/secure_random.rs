//! Unguessable bytes from the operating system's generator (ring's `SystemRandom`, which reads
//! getrandom on Linux).
//!
//! Secrets (the key that signs acknowledge links) and bearer-like ids (stream sessions) must not
//! be predictable from values an attacker has seen, which a fast generator such as `fastrand`
//! does not promise. Everything else (jitter, silence ids, model seeds) may keep `fastrand`.

use ring::rand::{SecureRandom, SystemRandom};

/// The operating system refused to hand out random bytes (on Linux: only before the entropy
/// pool is first initialised, early in boot).
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct RandomUnavailable;

/// `N` random bytes.
pub fn bytes<const N: usize>() -> Result<[u8; N], RandomUnavailable> {
    let mut out = [0u8; N];
    SystemRandom::new()
        .fill(&mut out)
        .map_err(|_| RandomUnavailable)?;
    Ok(out)
}

/// `N` random bytes as lowercase hex (2 × `N` characters).
pub fn hex<const N: usize>() -> Result<String, RandomUnavailable> {
    use std::fmt::Write;
    let raw = bytes::<N>()?;
    let mut out = String::with_capacity(2 * N);
    for byte in raw {
        let _ = write!(out, "{byte:02x}");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_differ_and_hex_has_the_promised_length() {
        let (a, b) = (hex::<16>().unwrap(), hex::<16>().unwrap());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}

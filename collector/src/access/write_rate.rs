//! Per-token write rate limits (`[auth] write_samples_per_second`): a token bucket per token,
//! holding at most one second's worth of samples.
//!
//! A remote write's sample count is known only once it is decoded, which is also when it is
//! stored, so a request is let in while its token's bucket is not in debt and its samples are
//! charged afterwards: one large request may overdraw the bucket, and the token's next
//! requests wait until the rate has paid the debt back.

use super::token::TokenId;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

struct Bucket {
    /// Samples that may still be written; negative when in debt.
    level: f64,
    at: Instant,
}

/// The per-token buckets.
pub struct WriteLimiter {
    /// Samples per second per token; 0 means unlimited.
    rate: u64,
    buckets: Mutex<HashMap<TokenId, Bucket>>,
}

impl WriteLimiter {
    pub fn new(samples_per_second: u64) -> Self {
        Self {
            rate: samples_per_second,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The rate, samples per second; 0 when unlimited.
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// Whether `token` may write at `now`; if not, how long until it may.
    pub fn admit(&self, token: &TokenId, now: Instant) -> Result<(), Duration> {
        if self.rate == 0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().expect("write limiter lock");
        let bucket = self.refilled(&mut buckets, token, now);
        if bucket.level > 0.0 {
            return Ok(());
        }
        Err(Duration::from_secs_f64(
            (1.0 - bucket.level) / self.rate as f64,
        ))
    }

    /// Charges `samples` written by `token` at `now`.
    pub fn charge(&self, token: &TokenId, samples: usize, now: Instant) {
        if self.rate == 0 {
            return;
        }
        let mut buckets = self.buckets.lock().expect("write limiter lock");
        self.refilled(&mut buckets, token, now).level -= samples as f64;
    }

    fn refilled<'a>(
        &self,
        buckets: &'a mut HashMap<TokenId, Bucket>,
        token: &TokenId,
        now: Instant,
    ) -> &'a mut Bucket {
        let full = self.rate as f64;
        let bucket = buckets.entry(token.clone()).or_insert(Bucket {
            level: full,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.level = (bucket.level + elapsed * full).min(full);
        bucket.at = now;
        bucket
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_over_its_rate_waits_until_its_debt_is_paid() {
        let limiter = WriteLimiter::new(100);
        let (a, b) = (TokenId::from("a"), TokenId::from("b"));
        let now = Instant::now();
        assert_eq!(limiter.admit(&a, now), Ok(()));
        limiter.charge(&a, 300, now);
        let wait = limiter.admit(&a, now).unwrap_err();
        assert!((2.0..2.1).contains(&wait.as_secs_f64()), "{wait:?}");
        assert_eq!(limiter.admit(&b, now), Ok(()), "other tokens are not held");
        assert!(limiter.admit(&a, now + Duration::from_secs(1)).is_err());
        assert_eq!(limiter.admit(&a, now + Duration::from_millis(2100)), Ok(()));
    }

    #[test]
    fn zero_means_unlimited() {
        let limiter = WriteLimiter::new(0);
        let (a, now) = (TokenId::from("a"), Instant::now());
        limiter.charge(&a, usize::MAX, now);
        assert_eq!(limiter.admit(&a, now), Ok(()));
    }
}

//! Renews the node's certificate at two thirds of its lifetime, beside the running stream: the
//! new key and certificate replace the stored ones, and the sender picks them up at its next
//! connection, so streaming never pauses for a renewal. A failed renewal keeps the current
//! identity and tries again with backoff, well before the certificate expires. With an HA pair
//! (which shares one CA) the collectors are asked in turn, so one being down does not stop it.

use crate::enrollment::{self, EnrollError};
use crate::tls::Identity;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tonic::transport::Endpoint;

const BACKOFF_MIN: Duration = Duration::from_secs(5);
const BACKOFF_MAX: Duration = Duration::from_secs(300);
/// Longest single sleep before looking at the clock and the stored identity again: a clock
/// step or an identity replaced by hand is noticed within this.
const RECHECK: Duration = Duration::from_secs(3600);

pub struct Renewal {
    /// The `https://` collectors, asked in this order.
    pub endpoints: Vec<Endpoint>,
    pub identity_dir: PathBuf,
    pub ca_file: Option<PathBuf>,
    /// Signalled by the sender once it has enrolled the node.
    pub enrolled: Arc<Notify>,
    pub shutdown: CancellationToken,
}

impl Renewal {
    pub async fn run(self) {
        let mut backoff = BACKOFF_MIN;
        loop {
            let wait = match Identity::load(&self.identity_dir) {
                Ok(Some(identity)) if identity.renewal_due(SystemTime::now()) => {
                    match self.renew(&identity).await {
                        Ok(()) if self.shutdown.is_cancelled() => return,
                        Ok(()) => {
                            backoff = BACKOFF_MIN;
                            continue;
                        }
                        Err(error) => {
                            if matches!(error, EnrollError::Revoked(_)) {
                                tracing::error!(%error, "cannot renew this node's certificate");
                                backoff = BACKOFF_MAX;
                            } else {
                                tracing::warn!(%error, retry_in = ?backoff, expires = %humantime::format_rfc3339_seconds(identity.not_after), "cannot renew this node's certificate; the current one stays in use");
                            }
                            let delay = backoff.mul_f64(0.5 + fastrand::f64() * 0.5);
                            backoff = (backoff * 2).min(BACKOFF_MAX);
                            delay
                        }
                    }
                }
                Ok(Some(identity)) => identity
                    .renewal_at()
                    .duration_since(SystemTime::now())
                    .unwrap_or_default()
                    .min(RECHECK),
                Ok(None) => {
                    tokio::select! {
                        _ = self.enrolled.notified() => continue,
                        _ = self.shutdown.cancelled() => return,
                    }
                }
                Err(error) => {
                    tracing::error!(%error, "cannot read this node's identity to renew it");
                    BACKOFF_MAX
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.shutdown.cancelled() => return,
            }
        }
    }

    async fn renew(&self, current: &Identity) -> Result<(), EnrollError> {
        let mut renewed = None;
        for (i, endpoint) in self.endpoints.iter().enumerate() {
            let answer = tokio::select! {
                answer = enrollment::renew(endpoint, current, self.ca_file.as_deref(), &self.identity_dir) => answer,
                _ = self.shutdown.cancelled() => return Ok(()),
            };
            match answer {
                Ok(identity) => {
                    renewed = Some(identity);
                    break;
                }
                // A revoked certificate is revoked on both, and the last error is the one told.
                Err(error)
                    if matches!(error, EnrollError::Revoked(_))
                        || i + 1 == self.endpoints.len() =>
                {
                    return Err(error);
                }
                Err(error) => {
                    tracing::info!(%error, "cannot renew at this collector; asking the next");
                }
            }
        }
        let Some(renewed) = renewed else {
            return Ok(());
        };
        tracing::info!(
            node = %renewed.node_name,
            expires = %humantime::format_rfc3339_seconds(renewed.not_after),
            renew_at = %humantime::format_rfc3339_seconds(renewed.renewal_at()),
            "renewed this node's certificate; the next connection uses it"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::test_pki::{fake_ca, serve_enrollment};
    use std::sync::atomic::Ordering;

    #[tokio::test]
    async fn a_due_certificate_is_renewed_and_kept_when_the_renewal_is_refused() {
        // The test CA back-dates certificates by a minute: one second left is past two thirds.
        let (ca, token) = fake_ca(Duration::from_secs(1));
        let endpoint = serve_enrollment(ca.clone()).await;
        let dir = tempfile::tempdir().unwrap();
        let enrolled = enrollment::enroll(&endpoint, &token, "nas", dir.path())
            .await
            .unwrap();
        assert!(enrolled.renewal_due(SystemTime::now()));
        let renewal = |shutdown: &CancellationToken| Renewal {
            endpoints: vec![endpoint.clone()],
            identity_dir: dir.path().to_owned(),
            ca_file: None,
            enrolled: Arc::new(Notify::new()),
            shutdown: shutdown.clone(),
        };
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(renewal(&shutdown).run());
        let renewed = async {
            loop {
                let stored = Identity::load(dir.path()).unwrap().unwrap();
                if stored.key_pem != enrolled.key_pem {
                    return stored;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        let renewed = tokio::time::timeout(Duration::from_secs(30), renewed)
            .await
            .expect("the renewal task renews a due certificate, with a new key");
        shutdown.cancel();
        task.await.unwrap();
        let renewed = Identity::load(dir.path()).unwrap().unwrap_or(renewed);

        ca.revoked.store(true, Ordering::Relaxed);
        let issued = ca.issued.load(Ordering::Relaxed);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(renewal(&shutdown).run());
        tokio::time::sleep(Duration::from_millis(300)).await;
        shutdown.cancel();
        task.await.unwrap();
        assert_eq!(ca.issued.load(Ordering::Relaxed), issued);
        let kept = Identity::load(dir.path()).unwrap().unwrap();
        assert_eq!(kept.key_pem, renewed.key_pem, "the identity stays in place");
    }
}

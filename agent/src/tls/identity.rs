//! The node's identity on disk, in `identity_dir` (mode 0700): `node.key` (its private key,
//! PKCS#8 PEM, mode 0600), `node.crt` (its certificate from the collector's CA) and `ca.crt`
//! (that CA, the agent's trust root for the collector).
//!
//! Saving writes every file beside its final name first (synced), then renames them into place,
//! key first: a crash between two renames leaves a key whose certificate is still waiting under
//! its temporary name, and [`Identity::load`] completes the swap. So a renewal never leaves the
//! node with a key and a certificate that do not belong together.

use hcmon_common::secret::Secret;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use x509_parser::prelude::{FromDer, X509Certificate};

pub const KEY_FILE: &str = "node.key";
pub const CERT_FILE: &str = "node.crt";
pub const CA_FILE: &str = "ca.crt";

/// The suffix of a file written but not yet renamed into place.
const PENDING: &str = "new";

/// A key, the certificate the collector's CA issued for it, and that CA.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The private key, PKCS#8 PEM. Never sent anywhere.
    pub key_pem: Secret,
    pub cert_pem: String,
    pub ca_pem: String,
    /// The node name the certificate carries (its subject's common name).
    pub node_name: String,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

/// Why the stored identity cannot be used; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error(
        "{} is missing while {} exists; restore it, or remove {} and enroll the node again",
        missing.display(), present.display(), dir.display()
    )]
    Incomplete {
        missing: PathBuf,
        present: PathBuf,
        dir: PathBuf,
    },
    #[error("{} is not a {what}: {problem}", path.display())]
    Garbage {
        path: PathBuf,
        what: &'static str,
        problem: String,
    },
    #[error(
        "{} is not the certificate of the key in {}; remove {} and enroll the node again",
        cert.display(), key.display(), dir.display()
    )]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        dir: PathBuf,
    },
}

impl Identity {
    /// Checks and assembles an identity from its three PEM texts; errors name the file in `dir`
    /// each text belongs in.
    pub fn from_pem(
        key_pem: String,
        cert_pem: String,
        ca_pem: String,
        dir: &Path,
    ) -> Result<Self, IdentityError> {
        let garbage = |file: &str, what, problem: String| IdentityError::Garbage {
            path: dir.join(file),
            what,
            problem,
        };
        let key = rcgen::KeyPair::from_pem(&key_pem)
            .map_err(|e| garbage(KEY_FILE, "PKCS#8 private key in PEM", e.to_string()))?;
        let cert_der = first_certificate(&cert_pem)
            .map_err(|problem| garbage(CERT_FILE, "certificate in PEM", problem))?;
        first_certificate(&ca_pem)
            .map_err(|problem| garbage(CA_FILE, "certificate in PEM", problem))?;
        let (_, cert) = X509Certificate::from_der(&cert_der)
            .map_err(|e| garbage(CERT_FILE, "certificate in PEM", e.to_string()))?;
        if cert.public_key().subject_public_key.data.as_ref()
            != rcgen::PublicKeyData::der_bytes(&key)
        {
            return Err(IdentityError::Mismatch {
                cert: dir.join(CERT_FILE),
                key: dir.join(KEY_FILE),
                dir: dir.to_owned(),
            });
        }
        let node_name = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .ok_or_else(|| {
                garbage(
                    CERT_FILE,
                    "node certificate",
                    "its subject has no common name".into(),
                )
            })?
            .to_owned();
        let time = |t: x509_parser::time::ASN1Time| {
            UNIX_EPOCH + Duration::from_secs(t.timestamp().max(0) as u64)
        };
        let validity = cert.validity();
        Ok(Self {
            node_name,
            not_before: time(validity.not_before),
            not_after: time(validity.not_after),
            key_pem: Secret::new(key_pem),
            cert_pem,
            ca_pem,
        })
    }

    /// The identity stored in `dir`; `None` when the node has none yet (no key, no
    /// certificate).
    pub fn load(dir: &Path) -> Result<Option<Self>, IdentityError> {
        finish_interrupted_save(dir)?;
        let [key, cert, ca] = [KEY_FILE, CERT_FILE, CA_FILE].map(|f| read_optional(&dir.join(f)));
        let (key, cert, ca) = (key?, cert?, ca?);
        match (key, cert, ca) {
            (None, None, None) => Ok(None),
            (Some(key), Some(cert), Some(ca)) => Self::from_pem(key, cert, ca, dir).map(Some),
            (key, cert, ca) => {
                let files = [
                    (KEY_FILE, key.is_some()),
                    (CERT_FILE, cert.is_some()),
                    (CA_FILE, ca.is_some()),
                ];
                let missing = files
                    .iter()
                    .find(|(_, here)| !here)
                    .map_or(KEY_FILE, |f| f.0);
                let here = files
                    .iter()
                    .find(|(_, here)| *here)
                    .map_or(KEY_FILE, |f| f.0);
                Err(IdentityError::Incomplete {
                    missing: dir.join(missing),
                    present: dir.join(here),
                    dir: dir.to_owned(),
                })
            }
        }
    }

    /// Stores the identity in `dir` (created 0700), replacing the one there, if any.
    pub fn save(&self, dir: &Path) -> Result<(), IdentityError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| IdentityError::Write {
                path: dir.to_owned(),
                source,
            })?;
        let files = [
            (KEY_FILE, self.key_pem.expose(), 0o600),
            (CERT_FILE, self.cert_pem.as_str(), 0o644),
            (CA_FILE, self.ca_pem.as_str(), 0o644),
        ];
        for (file, text, mode) in files {
            write_synced(&pending(dir, file), text, mode)?;
        }
        for (file, _, _) in files {
            let path = dir.join(file);
            fs::rename(pending(dir, file), &path)
                .map_err(|source| IdentityError::Write { path, source })?;
        }
        sync_dir(dir)
    }

    /// When to renew: at two thirds of the certificate's lifetime.
    pub fn renewal_at(&self) -> SystemTime {
        let lifetime = self
            .not_after
            .duration_since(self.not_before)
            .unwrap_or_default();
        self.not_before + lifetime * 2 / 3
    }

    pub fn renewal_due(&self, now: SystemTime) -> bool {
        now >= self.renewal_at()
    }
}

/// The DER of the first certificate in a PEM text.
pub fn first_certificate(pem: &str) -> Result<Vec<u8>, String> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    CertificateDer::from_pem_slice(pem.as_bytes())
        .map(|der| der.to_vec())
        .map_err(|e| e.to_string())
}

fn pending(dir: &Path, file: &str) -> PathBuf {
    dir.join(format!("{file}.{PENDING}"))
}

/// A save renames the key first: a pending certificate beside a renamed key belongs to it.
fn finish_interrupted_save(dir: &Path) -> Result<(), IdentityError> {
    if pending(dir, KEY_FILE).exists() {
        // Not every file was renamed, maybe not even written: the old identity stands.
        for file in [KEY_FILE, CERT_FILE, CA_FILE] {
            let _ = fs::remove_file(pending(dir, file));
        }
        return Ok(());
    }
    for file in [CERT_FILE, CA_FILE] {
        let from = pending(dir, file);
        if from.exists() {
            let path = dir.join(file);
            fs::rename(&from, &path).map_err(|source| IdentityError::Write { path, source })?;
        }
    }
    Ok(())
}

fn read_optional(path: &Path) -> Result<Option<String>, IdentityError> {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| IdentityError::Garbage {
                path: path.to_owned(),
                what: "PEM file",
                problem: "it is not text".into(),
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(IdentityError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

fn write_synced(path: &Path, text: &str, mode: u32) -> Result<(), IdentityError> {
    let write = || -> io::Result<()> {
        let mut file: File = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(path)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()
    };
    write().map_err(|source| IdentityError::Write {
        path: path.to_owned(),
        source,
    })
}

fn sync_dir(dir: &Path) -> Result<(), IdentityError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| IdentityError::Write {
            path: dir.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::KeyRequest;
    use crate::tls::test_pki::Pki;
    use std::os::unix::fs::PermissionsExt;

    fn issued(pki: &Pki, node: &str, lifetime: Duration, dir: &Path) -> Identity {
        let request = KeyRequest::generate(node).unwrap();
        let cert = pki.sign(&request.csr_pem, lifetime);
        Identity::from_pem(
            request.key_pem.expose().to_owned(),
            cert,
            pki.ca_pem.clone(),
            dir,
        )
        .unwrap()
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_identity_round_trips_with_a_private_key_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("agent-identity");
        assert!(
            Identity::load(&dir).unwrap().is_none(),
            "nothing stored yet"
        );
        let pki = Pki::new("collector CA");
        let identity = issued(&pki, "nas", Duration::from_secs(3600), &dir);
        identity.save(&dir).unwrap();

        let loaded = Identity::load(&dir).unwrap().unwrap();
        assert_eq!(loaded.node_name, "nas");
        assert_eq!(loaded.cert_pem, identity.cert_pem);
        assert_eq!(loaded.ca_pem, pki.ca_pem);
        assert_eq!(loaded.key_pem, identity.key_pem);
        assert_eq!(
            (loaded.not_before, loaded.not_after),
            (identity.not_before, identity.not_after)
        );
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
        assert!(!format!("{loaded:?}").contains("PRIVATE KEY"));

        // A renewal replaces the files in place.
        let renewed = issued(&pki, "nas", Duration::from_secs(7200), &dir);
        renewed.save(&dir).unwrap();
        let loaded = Identity::load(&dir).unwrap().unwrap();
        assert_eq!(loaded.cert_pem, renewed.cert_pem);
        assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 3, "no files left over");
    }

    #[test]
    fn a_save_interrupted_between_renames_is_completed_at_load() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let pki = Pki::new("collector CA");
        issued(&pki, "nas", Duration::from_secs(3600), dir)
            .save(dir)
            .unwrap();
        let renewed = issued(&pki, "nas", Duration::from_secs(7200), dir);
        // The crash came after the new key was renamed into place, before the certificate.
        fs::write(dir.join(KEY_FILE), renewed.key_pem.expose()).unwrap();
        fs::write(pending(dir, CERT_FILE), &renewed.cert_pem).unwrap();
        let loaded = Identity::load(dir).unwrap().unwrap();
        assert_eq!(loaded.cert_pem, renewed.cert_pem);
        // The crash came before any rename: the old identity stands, the pending files go.
        fs::write(pending(dir, KEY_FILE), "half a ke").unwrap();
        let loaded = Identity::load(dir).unwrap().unwrap();
        assert_eq!(loaded.cert_pem, renewed.cert_pem);
        assert!(!pending(dir, KEY_FILE).exists());
    }

    #[test]
    fn unusable_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let pki = Pki::new("collector CA");
        let identity = issued(&pki, "nas", Duration::from_secs(3600), dir);
        let error = |dir: &Path| Identity::load(dir).unwrap_err().to_string();
        for file in [KEY_FILE, CERT_FILE, CA_FILE] {
            identity.save(dir).unwrap();
            fs::write(dir.join(file), "garbage\n").unwrap();
            let err = error(dir);
            assert!(
                err.contains(&dir.join(file).display().to_string()) && err.contains("is not a"),
                "{file}: {err}"
            );
        }
        identity.save(dir).unwrap();
        fs::remove_file(dir.join(CA_FILE)).unwrap();
        let err = error(dir);
        assert!(err.contains(&format!("{CA_FILE} is missing")), "{err}");
        // A certificate for another key.
        let other = issued(&pki, "nas", Duration::from_secs(3600), dir);
        identity.save(dir).unwrap();
        fs::write(dir.join(CERT_FILE), &other.cert_pem).unwrap();
        let err = error(dir);
        assert!(err.contains("is not the certificate of the key"), "{err}");
    }

    #[test]
    fn renewal_is_due_at_two_thirds_of_the_lifetime() {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new("collector CA");
        let identity = issued(&pki, "nas", Duration::from_secs(3000), dir.path());
        // The test CA back-dates by a minute: the lifetime is 3060 s, two thirds of it 2040 s.
        let at = identity.not_before + Duration::from_secs(2040);
        assert_eq!(identity.renewal_at(), at);
        assert!(!identity.renewal_due(at - Duration::from_secs(1)));
        assert!(identity.renewal_due(at));
        assert!(identity.renewal_due(identity.not_after));
    }
}

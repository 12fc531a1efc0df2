//! The collector's certificate authority: its key and certificate, the collector's own server
//! certificate, and signing agents' certificate requests. Files only, no store.
//!
//! # Files (in `<data_dir>/pki/`)
//! `ca.crt` and `ca.key`, `server.crt` (the server certificate followed by the CA certificate,
//! so an enrolling agent finds the certificate its token pins in the chain) and `server.key`.
//! Keys are written mode 0600 and never leave this folder. Files are written whole to a
//! temporary name and renamed, so a crash leaves either the old file or the new one.
//!
//! # What an agent certificate says
//! Subject CN = the node name (the identity ingest checks), the extended key usage client
//! authentication only, a random 128-bit serial (the handle revocation uses), and a lifetime
//! from shortly before issue (clock skew) to the configured lifetime after. What the request
//! asked for besides its public key is ignored.

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use ring::digest::{SHA256, digest};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;
use time::OffsetDateTime;

/// How long the CA certificate is valid: long enough that nobody rotates it by surprise.
const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How long the collector's own server certificate is valid.
const SERVER_LIFETIME: Duration = Duration::from_secs(2 * 365 * 24 * 3600);
/// Certificates start up to this long before they are issued (a tenth of their lifetime at
/// most, so renewal at two thirds of it stays well after issue), so a node whose clock is a
/// little behind accepts them.
const BACKDATE: Duration = Duration::from_secs(300);

/// Why the CA cannot do what was asked; each names the file or the problem.
#[derive(Debug, thiserror::Error)]
pub enum AuthorityError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a usable {what}: {detail}")]
    Unusable {
        path: PathBuf,
        what: &'static str,
        detail: String,
    },
    #[error("the certificate request is not a well-formed, self-signed PKCS#10 request: {0}")]
    BadRequest(String),
    #[error("cannot sign the certificate: {0}")]
    Sign(String),
    #[error("{0:?} is not a valid name for the server certificate: {1}")]
    BadName(String, String),
}

/// Where the CA and the server certificate live.
#[derive(Debug, Clone)]
pub struct PkiPaths {
    pub dir: PathBuf,
}

impl PkiPaths {
    /// `<data_dir>/pki`.
    pub fn in_data_dir(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join("pki"),
        }
    }
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    pub fn server_cert(&self) -> PathBuf {
        self.dir.join("server.crt")
    }
    pub fn server_key(&self) -> PathBuf {
        self.dir.join("server.key")
    }
}

/// A certificate issued to a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCertificate {
    pub node: String,
    /// Lowercase hex of the certificate's serial number.
    pub serial: String,
    pub certificate_pem: String,
    pub not_after_ms: i64,
}

/// The loaded CA (see the module header).
pub struct CertificateAuthority {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    cert_der: Vec<u8>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("pin", &self.pin())
            .finish()
    }
}

impl CertificateAuthority {
    /// Loads the CA in `paths`, creating it first when there is none.
    pub fn open_or_create(paths: &PkiPaths, now_ms: i64) -> Result<Self, AuthorityError> {
        if paths.ca_cert().exists() || paths.ca_key().exists() {
            return Self::load(paths);
        }
        create_dir(&paths.dir)?;
        let key = KeyPair::generate().map_err(|e| AuthorityError::Sign(e.to_string()))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name("hcmon collector CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        validity(&mut params, now_ms, CA_LIFETIME);
        params.serial_number = Some(random_serial()?);
        let cert = params
            .self_signed(&key)
            .map_err(|e| AuthorityError::Sign(e.to_string()))?;
        write_file(&paths.ca_key(), key.serialize_pem().as_bytes(), 0o600)?;
        write_file(&paths.ca_cert(), cert.pem().as_bytes(), 0o644)?;
        tracing::info!(dir = %paths.dir.display(), "created the collector's certificate authority");
        Self::load(paths)
    }

    /// Loads an existing CA.
    pub fn load(paths: &PkiPaths) -> Result<Self, AuthorityError> {
        let cert_pem = read(&paths.ca_cert())?;
        let key_pem = read(&paths.ca_key())?;
        let unusable =
            |path: PathBuf, what, detail: String| AuthorityError::Unusable { path, what, detail };
        let key = KeyPair::from_pem(&key_pem)
            .map_err(|e| unusable(paths.ca_key(), "private key (PEM)", e.to_string()))?;
        let cert_der = pem_der(&cert_pem).ok_or_else(|| {
            unusable(
                paths.ca_cert(),
                "certificate (PEM)",
                "no CERTIFICATE block".into(),
            )
        })?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)
            .map_err(|e| unusable(paths.ca_cert(), "CA certificate", e.to_string()))?;
        Ok(Self {
            issuer,
            cert_pem,
            cert_der,
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// Lowercase hex SHA-256 of the CA certificate's DER: what enrollment tokens pin.
    pub fn pin(&self) -> String {
        hex(digest(&SHA256, &self.cert_der).as_ref())
    }

    /// Writes a server certificate for `names` (host names and IP addresses) with a new key,
    /// replacing any there is; the file holds the chain (server, then CA).
    pub fn write_server_certificate(
        &self,
        paths: &PkiPaths,
        names: &[String],
        now_ms: i64,
    ) -> Result<(), AuthorityError> {
        let key = KeyPair::generate().map_err(|e| AuthorityError::Sign(e.to_string()))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name(names.first().map_or("hcmon collector", String::as_str));
        params.subject_alt_names = names.iter().map(|n| san(n)).collect::<Result<_, _>>()?;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        validity(&mut params, now_ms, SERVER_LIFETIME);
        params.serial_number = Some(random_serial()?);
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| AuthorityError::Sign(e.to_string()))?;
        write_file(&paths.server_key(), key.serialize_pem().as_bytes(), 0o600)?;
        let chain = format!("{}{}", cert.pem(), self.cert_pem);
        write_file(&paths.server_cert(), chain.as_bytes(), 0o644)?;
        Ok(())
    }

    /// Signs `csr_pem`'s public key into a client certificate for `node` (see the module
    /// header), valid for `lifetime` from `now_ms`.
    pub fn issue(
        &self,
        node: &str,
        csr_pem: &str,
        lifetime: Duration,
        now_ms: i64,
    ) -> Result<IssuedCertificate, AuthorityError> {
        let mut request = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| AuthorityError::BadRequest(e.to_string()))?;
        let mut params = CertificateParams::default();
        params.distinguished_name = name(node);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let not_after_ms = validity(&mut params, now_ms, lifetime);
        let serial = random_serial()?;
        let serial_hex = hex(serial.as_ref());
        params.serial_number = Some(serial);
        request.params = params;
        let cert = request
            .signed_by(&self.issuer)
            .map_err(|e| AuthorityError::Sign(e.to_string()))?;
        Ok(IssuedCertificate {
            node: node.to_owned(),
            serial: serial_hex,
            certificate_pem: cert.pem(),
            not_after_ms,
        })
    }
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

fn san(name: &str) -> Result<SanType, AuthorityError> {
    if let Ok(ip) = name.parse::<std::net::IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let dns = name
        .to_owned()
        .try_into()
        .map_err(|e: rcgen::Error| AuthorityError::BadName(name.to_owned(), e.to_string()))?;
    Ok(SanType::DnsName(dns))
}

/// Sets the validity window from shortly before `now_ms` (see `BACKDATE`) to `lifetime` after;
/// returns the end, in Unix milliseconds (whole seconds, as certificates hold them).
fn validity(params: &mut CertificateParams, now_ms: i64, lifetime: Duration) -> i64 {
    let now_s = now_ms.div_euclid(1000);
    let start = now_s - BACKDATE.min(lifetime / 10).as_secs() as i64;
    let end = now_s.saturating_add(lifetime.as_secs().min(i64::MAX as u64 / 2) as i64);
    params.not_before =
        OffsetDateTime::from_unix_timestamp(start).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    params.not_after = OffsetDateTime::from_unix_timestamp(end)
        .unwrap_or_else(|_| OffsetDateTime::UNIX_EPOCH + time::Duration::days(365 * 100));
    params.not_after.unix_timestamp() * 1000
}

/// 16 random bytes with the top bit clear, so the serial is a positive integer as X.509 wants.
fn random_serial() -> Result<SerialNumber, AuthorityError> {
    let mut bytes =
        crate::secure_random::bytes::<16>().map_err(|e| AuthorityError::Sign(e.to_string()))?;
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The DER of the first CERTIFICATE block of `pem`.
fn pem_der(pem: &str) -> Option<Vec<u8>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()?
        .ok()
        .map(|der| der.to_vec())
}

fn read(path: &Path) -> Result<String, AuthorityError> {
    std::fs::read_to_string(path).map_err(|source| AuthorityError::Read {
        path: path.to_owned(),
        source,
    })
}

fn create_dir(dir: &Path) -> Result<(), AuthorityError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| AuthorityError::Write {
            path: dir.to_owned(),
            source,
        })
}

/// Writes `bytes` to `path` whole, with `mode`, through a synced temporary file and a rename.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), AuthorityError> {
    let failed = |source| AuthorityError::Write {
        path: path.to_owned(),
        source,
    };
    let temporary = path.with_extension("tmp");
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temporary)
        .map_err(failed)?;
    file.write_all(bytes).map_err(failed)?;
    file.sync_all().map_err(failed)?;
    std::fs::rename(&temporary, path).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const NOW_MS: i64 = 1_800_000_000_000;

    fn csr(node: &str) -> String {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name = name(node);
        params.serialize_request(&key).unwrap().pem().unwrap()
    }

    #[test]
    fn creates_once_then_loads_the_same_ca_with_private_keys() {
        let dir = tempfile::tempdir().unwrap();
        let paths = PkiPaths::in_data_dir(dir.path());
        let created = CertificateAuthority::open_or_create(&paths, NOW_MS).unwrap();
        let again = CertificateAuthority::open_or_create(&paths, NOW_MS).unwrap();
        assert_eq!(created.pin(), again.pin());
        assert_eq!(created.pin().len(), 64);
        created
            .write_server_certificate(&paths, &["nas.lan".into(), "10.0.0.5".into()], NOW_MS)
            .unwrap();
        for key in [paths.ca_key(), paths.server_key()] {
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", key.display());
        }
        let chain = std::fs::read_to_string(paths.server_cert()).unwrap();
        assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2);
        assert!(chain.ends_with(created.cert_pem()));
    }

    #[test]
    fn issues_a_client_certificate_naming_the_node_whatever_was_asked() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::open_or_create(&PkiPaths::in_data_dir(dir.path()), NOW_MS)
            .unwrap();
        let issued = ca
            .issue(
                "nas",
                &csr("someone-else"),
                Duration::from_secs(3600),
                NOW_MS,
            )
            .unwrap();
        assert_eq!(issued.not_after_ms, NOW_MS + 3_600_000);
        let der = pem_der(&issued.certificate_pem).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let cn = cert.subject().iter_common_name().next().unwrap();
        assert_eq!(cn.as_str().unwrap(), "nas");
        assert_eq!(hex(cert.raw_serial()), issued.serial);
        let error = ca
            .issue("nas", "not a request", Duration::from_secs(60), NOW_MS)
            .unwrap_err();
        assert!(matches!(error, AuthorityError::BadRequest(_)), "{error}");
    }

    #[test]
    fn a_garbage_key_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let paths = PkiPaths::in_data_dir(dir.path());
        CertificateAuthority::open_or_create(&paths, NOW_MS).unwrap();
        std::fs::write(paths.ca_key(), "garbage").unwrap();
        let error = CertificateAuthority::load(&paths).unwrap_err().to_string();
        assert!(
            error.contains("ca.key is not a usable private key"),
            "{error}"
        );
    }
}

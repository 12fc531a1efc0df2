//! HTTP(S) check: one request per run over a fresh connection (hyper's HTTP/1.1 client
//! connection, rustls with the ring provider for `https://`), timed until the whole response
//! body is read. Redirects are not followed: a 3xx is an answer.
//!
//! For `https://` the server's certificate is captured by the verifier before it is judged, so
//! its days until expiry are reported even when verification fails (self-signed, expired, wrong
//! name): that is when they matter most. Session resumption is off so every run sees the
//! certificate.

use super::runner::{Check, Samples, Target};
use super::{
    ProbeConfigError, ProbeError, Reason, connect, default_timeout, validate_name, validate_timeout,
};
use crate::collect::Metric;
use hcmon_common::HttpEndpoint;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{Resumption, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, RootCertStore, SignatureScheme};
use serde::Deserialize;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncRead, AsyncWrite};

const STATUS_CODE: Metric = Metric::gauge(
    "http_check_status_code",
    "HTTP status of the last check's response; absent when there was none.",
);
const DURATION: Metric = Metric::gauge(
    "http_check_duration_seconds",
    "Time from connecting to having read the whole response (TLS handshake included).",
)
.with_decimals(6);
const CERTIFICATE_EXPIRY: Metric = Metric::gauge(
    "http_certificate_expiry_days",
    "Days until the server certificate's notAfter; negative once expired. Reported even when \
     the certificate failed verification.",
)
.with_decimals(3);

const USER_AGENT: &str = concat!("hcmon-agent/", env!("CARGO_PKG_VERSION"));

fn default_method() -> String {
    "GET".into()
}

/// One HTTP(S) endpoint to check, `[[probes.http]]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCheckConfig {
    /// `http://` or `https://` URL to request.
    pub url: String,
    /// The `name` label of this check's series; defaults to `url`.
    #[serde(default)]
    pub name: Option<String>,
    /// Request method.
    #[serde(default = "default_method")]
    pub method: String,
    /// The status that counts as up; when absent, any 2xx or 3xx does.
    #[serde(default)]
    pub expect_status: Option<u16>,
    /// Time one check (connect, TLS, request, whole response) may take before it counts as a
    /// failure with reason `timeout`.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Accept any server certificate, e.g. a home lab's self-signed one. The handshake is still
    /// checked to be signed by the certificate's key, and its days left are still reported.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

impl HttpCheckConfig {
    pub(super) fn validate(&self, key: &str) -> Result<(), ProbeConfigError> {
        HttpEndpoint::parse(&self.url).map_err(|_| ProbeConfigError::Url {
            key: key.to_owned(),
            url: self.url.clone(),
        })?;
        validate_name(key, self.name.as_deref())?;
        if http::Method::from_bytes(self.method.as_bytes()).is_err() {
            return Err(ProbeConfigError::Method {
                key: key.to_owned(),
                method: self.method.clone(),
            });
        }
        if let Some(status) = self.expect_status
            && !(100..=599).contains(&status)
        {
            return Err(ProbeConfigError::ExpectStatus {
                key: key.to_owned(),
                status,
            });
        }
        validate_timeout(key, self.timeout)
    }
}

impl Check for HttpCheckConfig {
    const KIND: &'static str = "http";
    const UP: Metric = Metric::gauge(
        "http_check_up",
        "1 when the last HTTP check got the expected status (expect_status, else any 2xx or 3xx), \
         else 0.",
    );

    fn target(&self) -> Target {
        Target::new(&self.url, self.name.as_deref())
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn reasons(&self) -> Vec<Reason> {
        let mut reasons = vec![
            Reason::Connect,
            Reason::Timeout,
            Reason::Io,
            Reason::Protocol,
            Reason::Status,
        ];
        if HttpEndpoint::parse(&self.url).is_ok_and(|endpoint| endpoint.is_tls()) {
            reasons.push(Reason::Tls);
        }
        reasons
    }

    async fn check(&self, samples: &mut Samples) -> Result<(), ProbeError> {
        let endpoint = HttpEndpoint::parse(&self.url)
            .map_err(|e| ProbeError::new(Reason::Config, format!("url {:?}: {e}", self.url)))?;
        let method = http::Method::from_bytes(self.method.as_bytes()).map_err(|_| {
            ProbeError::new(
                Reason::Config,
                format!("method {:?} is invalid", self.method),
            )
        })?;
        let request = http::Request::builder()
            .method(method)
            .uri(endpoint.path_and_query())
            .header(http::header::HOST, endpoint.authority())
            .header(http::header::USER_AGENT, USER_AGENT)
            .body(Empty::<Bytes>::new())
            .map_err(|e| {
                ProbeError::new(Reason::Config, format!("cannot build the request: {e}"))
            })?;

        let started = Instant::now();
        let tcp = connect(&endpoint.address()).await?;
        let status = if endpoint.is_tls() {
            let tls = tls_handshake(tcp, &endpoint, self.insecure_skip_verify, samples).await?;
            exchange(tls, request).await?
        } else {
            exchange(tcp, request).await?
        };
        samples.push(DURATION, started.elapsed().as_secs_f64());
        samples.push(STATUS_CODE, f64::from(status));

        let up = match self.expect_status {
            Some(expected) => status == expected,
            None => (200..400).contains(&status),
        };
        if !up {
            let expected = self
                .expect_status
                .map_or("2xx or 3xx".to_owned(), |s| s.to_string());
            return Err(ProbeError::new(
                Reason::Status,
                format!("status {status}, expected {expected}"),
            ));
        }
        Ok(())
    }
}

/// Sends `request` on a new HTTP/1.1 connection over `io` and reads the whole response; returns
/// its status.
async fn exchange<S>(io: S, request: http::Request<Empty<Bytes>>) -> Result<u16, ProbeError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(http_error)?;
    let response = async {
        let response = sender.send_request(request).await.map_err(http_error)?;
        let status = response.status().as_u16();
        let mut body = response.into_body();
        while let Some(frame) = body.frame().await {
            frame.map_err(http_error)?;
        }
        Ok(status)
    };
    tokio::pin!(response, conn);
    // The connection must be driven for the response to arrive; it ends by itself only on an
    // error or when the server closes it, after which the response has all it will get.
    tokio::select! {
        status = &mut response => status,
        closed = &mut conn => match closed {
            Ok(()) => response.await,
            Err(error) => Err(http_error(error)),
        },
    }
}

fn http_error(error: hyper::Error) -> ProbeError {
    let reason = if error.is_parse() || error.is_parse_status() || error.is_user() {
        Reason::Protocol
    } else if error.is_timeout() {
        Reason::Timeout
    } else {
        Reason::Io
    };
    ProbeError::new(reason, error.to_string())
}

static PROVIDER: LazyLock<Arc<CryptoProvider>> =
    LazyLock::new(|| Arc::new(rustls::crypto::ring::default_provider()));

static ROOTS: LazyLock<Arc<RootCertStore>> = LazyLock::new(|| {
    Arc::new(RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    })
});

/// Runs the TLS handshake, reporting the server certificate's days left whether or not it
/// verified.
async fn tls_handshake(
    tcp: tokio::net::TcpStream,
    endpoint: &HttpEndpoint,
    insecure: bool,
    samples: &mut Samples,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, ProbeError> {
    let tls_error = |detail: String| ProbeError::new(Reason::Tls, detail);
    let verifier = Arc::new(CapturingVerifier {
        webpki: if insecure {
            None
        } else {
            let webpki =
                WebPkiServerVerifier::builder_with_provider(ROOTS.clone(), PROVIDER.clone())
                    .build()
                    .map_err(|e| {
                        tls_error(format!("cannot build the certificate verifier: {e}"))
                    })?;
            Some(webpki)
        },
        seen: Mutex::new(None),
    });
    let mut config = ClientConfig::builder_with_provider(PROVIDER.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(format!("cannot configure TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier.clone())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = Resumption::disabled();
    let server_name = ServerName::try_from(endpoint.host().to_owned()).map_err(|e| {
        tls_error(format!(
            "{:?} is not a TLS server name: {e}",
            endpoint.host()
        ))
    })?;

    let handshake = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(server_name, tcp)
        .await;
    if let Some(certificate) = verifier.take_seen()
        && let Some(days) = days_left(&certificate, SystemTime::now())
    {
        samples.push(CERTIFICATE_EXPIRY, days);
    }
    handshake.map_err(|error| {
        let is_tls = error
            .get_ref()
            .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some());
        if is_tls {
            tls_error(error.to_string())
        } else {
            ProbeError::io(&error)
        }
    })
}

/// Days from `now` until the certificate's notAfter; `None` when it cannot be parsed.
fn days_left(certificate: &CertificateDer<'_>, now: SystemTime) -> Option<f64> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate.as_ref()).ok()?;
    let not_after = parsed.validity().not_after.timestamp() as f64;
    let now = match now.duration_since(UNIX_EPOCH) {
        Ok(since) => since.as_secs_f64(),
        Err(before) => -before.duration().as_secs_f64(),
    };
    Some((not_after - now) / 86_400.0)
}

/// Keeps the server's certificate, then verifies it with webpki against the Mozilla roots, or
/// accepts it when `insecure_skip_verify` is set (no `webpki`). Handshake signatures are always
/// checked against the certificate's key.
#[derive(Debug)]
struct CapturingVerifier {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    seen: Mutex<Option<CertificateDer<'static>>>,
}

impl CapturingVerifier {
    fn take_seen(&self) -> Option<CertificateDer<'static>> {
        self.seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }
}

impl ServerCertVerifier for CapturingVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self
            .seen
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) =
            Some(end_entity.clone().into_owned());
        match &self.webpki {
            Some(webpki) => webpki.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ),
            None => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &PROVIDER.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &PROVIDER.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        PROVIDER
            .signature_verification_algorithms
            .supported_schemes()
    }
}

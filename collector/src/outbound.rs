//! One HTTP/1.1 exchange per connection, over plain TCP or TLS (rustls with the workspace's one
//! provider, ring), through hyper: what the alert notifiers and the `hcmon` CLI send their
//! requests with. reqwest is not used for these: its rustls features either link a second
//! crypto library (aws-lc-rs) or, without a provider, make every other `reqwest::Client::new()`
//! in the workspace panic.
//!
//! The caller bounds the exchange in time; the connection is driven inside the returned future,
//! so dropping it leaves nothing running.

use hcmon_common::HttpEndpoint;
use http::header::{CONNECTION, HOST, USER_AGENT};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls::pki_types::ServerName;
use std::io::Write;
use std::path::Path;
use std::pin::pin;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// `Authorization: Bearer <token>`, or no header without a token; an error names `key`, the
/// config key the token came from, when it cannot be a header value.
pub fn bearer_headers(
    token: Option<&hcmon_common::Secret>,
    key: &str,
) -> anyhow::Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    if let Some(token) = token {
        let value = HeaderValue::try_from(format!("Bearer {}", token.expose()))
            .map_err(|_| anyhow::anyhow!("{key} is not a valid header value"))?;
        headers.insert(http::header::AUTHORIZATION, value);
    }
    Ok(headers)
}

/// A response: status, headers and at most the first `max_body` bytes of the body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

/// Why no answer came. `Connect` and `Exchange` may pass with a retry; `Request` will not.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    #[error("request to {authority}: {detail}")]
    Request { authority: String, detail: String },
    #[error("connect to {authority}: {detail}")]
    Connect { authority: String, detail: String },
    #[error("TLS handshake with {authority}: {detail}")]
    Tls { authority: String, detail: String },
    #[error("HTTP exchange with {authority}: {detail}")]
    Exchange { authority: String, detail: String },
}

impl OutboundError {
    /// Whether trying again may succeed.
    pub fn is_transient(&self) -> bool {
        !matches!(self, OutboundError::Request { .. })
    }
}

/// Sends requests (see the module header); cheap to clone.
#[derive(Clone)]
pub struct OutboundClient {
    tls: TlsConnector,
    user_agent: HeaderValue,
}

impl OutboundClient {
    /// Trusting the public web PKI (the webpki roots), as for Slack or a webhook.
    pub fn public(user_agent: &'static str) -> Result<Self, rustls::Error> {
        let roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        Self::trusting(roots, user_agent)
    }

    /// Trusting the public web PKI and, when given, the CA certificates (PEM) in `ca_file`: for
    /// a server whose certificate a private CA signed (another collector's, a company's).
    pub fn with_ca_file(ca_file: Option<&Path>, user_agent: &'static str) -> anyhow::Result<Self> {
        use anyhow::Context;
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        if let Some(path) = ca_file {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read the CA file {}", path.display()))?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.with_context(|| format!("{} is not PEM", path.display()))?;
                roots
                    .add(cert)
                    .with_context(|| format!("{} holds an unusable certificate", path.display()))?;
            }
        }
        Ok(Self::trusting(roots, user_agent)?)
    }

    /// Trusting only `roots`, e.g. a collector's own CA.
    pub fn trusting(roots: RootCertStore, user_agent: &'static str) -> Result<Self, rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            tls: TlsConnector::from(Arc::new(config)),
            user_agent: HeaderValue::from_static(user_agent),
        })
    }

    /// Sends `method` to the absolute `url` with `headers` and `body`, reading at most
    /// `max_body` bytes of the answer's body.
    pub async fn call(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        body: Vec<u8>,
        max_body: usize,
    ) -> Result<Answer, OutboundError> {
        let (endpoint, request) = request_to(method, url, headers, Bytes::from(body))?;
        self.send(&endpoint, request, max_body).await
    }

    /// Sends `method` to the absolute `url` with `headers` and no body; a success's body is
    /// written to `out` as it arrives (a download of any size), another answer's first
    /// `max_body` bytes are kept in the [`Answer`]. A body that breaks off is an error.
    pub async fn download(
        &self,
        method: Method,
        url: &str,
        headers: HeaderMap,
        out: &mut (dyn Write + Send),
        max_body: usize,
    ) -> Result<Answer, OutboundError> {
        let (endpoint, request) = request_to(method, url, headers, Bytes::new())?;
        let body = BodyTo::Write { out, max_body };
        self.send_to(&endpoint, request, body).await
    }

    /// Sends `request` (its URI holds only the path and query) to `endpoint`, reading at most
    /// `max_body` bytes of the answer's body.
    pub async fn send(
        &self,
        endpoint: &HttpEndpoint,
        request: Request<Full<Bytes>>,
        max_body: usize,
    ) -> Result<Answer, OutboundError> {
        self.send_to(endpoint, request, BodyTo::Keep(max_body))
            .await
    }

    async fn send_to(
        &self,
        endpoint: &HttpEndpoint,
        mut request: Request<Full<Bytes>>,
        body: BodyTo<'_>,
    ) -> Result<Answer, OutboundError> {
        let authority = endpoint.authority().to_owned();
        let headers = request.headers_mut();
        headers.insert(
            HOST,
            HeaderValue::try_from(authority.as_str()).map_err(|e| OutboundError::Request {
                authority: authority.clone(),
                detail: e.to_string(),
            })?,
        );
        headers.insert(USER_AGENT, self.user_agent.clone());
        // One request per connection: the server closes it after answering.
        headers.insert(CONNECTION, HeaderValue::from_static("close"));

        let tcp = TcpStream::connect((endpoint.host(), endpoint.port()))
            .await
            .map_err(|e| OutboundError::Connect {
                authority: authority.clone(),
                detail: e.to_string(),
            })?;
        // The request goes out in one write; do not hold it back waiting for an ACK.
        let _ = tcp.set_nodelay(true);
        let exchanged = if endpoint.is_tls() {
            let name = ServerName::try_from(endpoint.host().to_owned()).map_err(|e| {
                OutboundError::Request {
                    authority: authority.clone(),
                    detail: format!("not a TLS server name: {e}"),
                }
            })?;
            let tls = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|e| OutboundError::Tls {
                    authority: authority.clone(),
                    detail: e.to_string(),
                })?;
            exchange(tls, request, body).await
        } else {
            exchange(tcp, request, body).await
        };
        exchanged.map_err(|detail| OutboundError::Exchange { authority, detail })
    }
}

/// What to do with an answer's body.
enum BodyTo<'a> {
    /// Keep its first bytes, at most this many.
    Keep(usize),
    /// A success's: write it to `out`, all of it; another answer's: keep `max_body` bytes.
    Write {
        out: &'a mut (dyn Write + Send),
        max_body: usize,
    },
}

/// Sends the request over `io` and reads the status, headers and the body as `body` says.
async fn exchange<S>(
    io: S,
    request: Request<Full<Bytes>>,
    body_to: BodyTo<'_>,
) -> Result<Answer, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    let response = async move {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let (parts, mut body) = response.into_parts();
        let max_body = match body_to {
            BodyTo::Write { out, .. } if parts.status.is_success() => {
                while let Some(frame) = body.frame().await {
                    let frame = frame.map_err(|e| format!("the answer broke off: {e}"))?;
                    if let Some(data) = frame.data_ref() {
                        out.write_all(data)
                            .map_err(|e| format!("cannot write the answer: {e}"))?;
                    }
                }
                0
            }
            BodyTo::Write { max_body, .. } | BodyTo::Keep(max_body) => max_body,
        };
        // The status decides; a body that breaks off or runs long still leaves an answer.
        let mut start = Vec::new();
        while start.len() < max_body {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        start.extend_from_slice(data);
                    }
                }
                Some(Err(_)) | None => break,
            }
        }
        start.truncate(max_body);
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body: start,
        })
    };
    // Driven here rather than spawned (see the module header). Once the answer is in, the
    // connection is dropped whatever its state; if it ends first, the answer is complete or
    // failed already.
    let mut response = pin!(response);
    let mut connection = pin!(connection);
    tokio::select! {
        answer = &mut response => answer,
        _ = &mut connection => response.await,
    }
}

/// The absolute `url` taken apart, and a request to it (its URI only the path and query) with
/// `headers` and `body`.
fn request_to(
    method: Method,
    url: &str,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(HttpEndpoint, Request<Full<Bytes>>), OutboundError> {
    let refused = |detail: String| OutboundError::Request {
        authority: url.to_owned(),
        detail,
    };
    let endpoint = HttpEndpoint::parse(url).map_err(|e| refused(e.to_string()))?;
    let mut request = Request::builder()
        .method(method)
        .uri(endpoint.path_and_query())
        .body(Full::new(body))
        .map_err(|e| refused(e.to_string()))?;
    request.headers_mut().extend(headers);
    Ok((endpoint, request))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_that_cannot_be_used_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("gone.pem");
        let err = OutboundClient::with_ca_file(Some(&missing), "test")
            .err()
            .unwrap();
        assert!(format!("{err:#}").contains("gone.pem"), "{err:#}");
        let junk = dir.path().join("junk.pem");
        std::fs::write(
            &junk,
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let err = OutboundClient::with_ca_file(Some(&junk), "test")
            .err()
            .unwrap();
        assert!(format!("{err:#}").contains("junk.pem"), "{err:#}");
        assert!(OutboundClient::with_ca_file(None, "test").is_ok());
    }
}

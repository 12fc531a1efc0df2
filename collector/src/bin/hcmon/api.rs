//! The collector's HTTP API as `hcmon` calls it: over HTTP or HTTPS (trusting the collector's
//! own CA, `<data dir>/pki/ca.crt` or `--ca-file`, besides the public roots), with the token as
//! `Authorization: Bearer`; a non-2xx answer becomes an error carrying the collector's message
//! and, for 401 and 403, what to do about it.

use crate::auth;
use anyhow::{Context, bail};
use hcmon_collector::api::ErrorResponse;
use hcmon_collector::outbound::OutboundClient;
use http::Method;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde::Serialize;
use std::path::Path;
use std::time::Duration;

/// How long one call may take.
const TIMEOUT: Duration = Duration::from_secs(30);

pub struct Api {
    client: OutboundClient,
    base: String,
    headers: HeaderMap,
}

impl Api {
    /// `base` is the collector's URL; `token` the one to send, if any; `ca_file` the CA that
    /// signed an HTTPS collector's certificate, if not the public web PKI.
    pub fn new(
        base: &str,
        token: Option<HeaderValue>,
        ca_file: Option<&Path>,
    ) -> anyhow::Result<Self> {
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
        let client = OutboundClient::trusting(roots, concat!("hcmon/", env!("CARGO_PKG_VERSION")))?;
        let mut headers = HeaderMap::new();
        if let Some(token) = token {
            headers.insert(AUTHORIZATION, token);
        }
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
            headers,
        })
    }

    /// GETs a path with URL-encoded `query`.
    pub async fn get(&self, path: &str, query: Vec<(&str, String)>) -> anyhow::Result<String> {
        self.call(Method::GET, path, &query, None).await
    }

    /// POSTs `body` as JSON.
    pub async fn post(&self, path: &str, body: &impl Serialize) -> anyhow::Result<String> {
        let body = serde_json::to_vec(body).context("cannot encode the request")?;
        self.call(Method::POST, path, &[], Some(body)).await
    }

    /// DELETEs a path with URL-encoded `query`.
    pub async fn delete(&self, path: &str, query: Vec<(&str, String)>) -> anyhow::Result<String> {
        self.call(Method::DELETE, path, &query, None).await
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<String> {
        let mut url = format!("{}{path}", self.base);
        if !query.is_empty() {
            url.push('?');
            url.push_str(&serde_urlencoded::to_string(query)?);
        }
        let mut headers = self.headers.clone();
        if body.is_some() {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let exchange =
            self.client
                .call(method, &url, headers, body.unwrap_or_default(), usize::MAX);
        let answer = tokio::time::timeout(TIMEOUT, exchange)
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "the collector at {} did not answer within {TIMEOUT:?}",
                    self.base
                )
            })?
            .map_err(|e| {
                let hint = match self.base.starts_with("http://") {
                    true => " (if the collector has TLS on, use --url https://…)",
                    false => "",
                };
                anyhow::anyhow!("cannot reach the collector at {}: {e}{hint}", self.base)
            })?;
        let status = answer.status;
        let body = String::from_utf8_lossy(&answer.body).into_owned();
        if !status.is_success() {
            let message = serde_json::from_str::<ErrorResponse>(&body)
                .map(|e| e.error)
                .unwrap_or(body);
            match auth::advice(status) {
                Some(advice) => bail!("collector answered {status}: {message}\n{advice}"),
                None => bail!("collector answered {status}: {message}"),
            }
        }
        Ok(body)
    }
}

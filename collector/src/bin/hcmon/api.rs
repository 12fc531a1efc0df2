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
        let client =
            OutboundClient::with_ca_file(ca_file, concat!("hcmon/", env!("CARGO_PKG_VERSION")))?;
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

    /// POSTs `body` as it is, labelled `content_type` (e.g. YAML).
    pub async fn post_body(
        &self,
        path: &str,
        content_type: &'static str,
        body: Vec<u8>,
    ) -> anyhow::Result<String> {
        self.call_as(Method::POST, path, &[], Some((content_type, body)))
            .await
    }

    /// DELETEs a path with URL-encoded `query`.
    pub async fn delete(&self, path: &str, query: Vec<(&str, String)>) -> anyhow::Result<String> {
        self.call(Method::DELETE, path, &query, None).await
    }

    /// GETs a path with URL-encoded `query`, writing the answer's body to `out` as it arrives
    /// (an export of any size). No time limit: a large download takes as long as it takes.
    pub async fn download(
        &self,
        path: &str,
        query: &[(&str, String)],
        out: &mut (dyn std::io::Write + Send),
    ) -> anyhow::Result<()> {
        let url = format!(
            "{}{path}?{}",
            self.base,
            serde_urlencoded::to_string(query)?
        );
        let answer = self
            .client
            .download(Method::GET, &url, self.headers.clone(), out, 1 << 20)
            .await
            .map_err(|e| self.unreachable(e))?;
        self.check(answer.status, &answer.body)
    }

    /// The error for a call that got no answer.
    fn unreachable(&self, error: impl std::fmt::Display) -> anyhow::Error {
        let hint = match self.base.starts_with("http://") {
            true => " (if the collector has TLS on, use --url https://…)",
            false => "",
        };
        anyhow::anyhow!("cannot reach the collector at {}: {error}{hint}", self.base)
    }

    /// An error carrying the collector's message, and advice for 401 and 403, unless `status`
    /// is a success.
    fn check(&self, status: http::StatusCode, body: &[u8]) -> anyhow::Result<()> {
        if status.is_success() {
            return Ok(());
        }
        let body = String::from_utf8_lossy(body).into_owned();
        let message = serde_json::from_str::<ErrorResponse>(&body)
            .map(|e| e.error)
            .unwrap_or(body);
        match auth::advice(status) {
            Some(advice) => bail!("collector answered {status}: {message}\n{advice}"),
            None => bail!("collector answered {status}: {message}"),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<String> {
        let body = body.map(|b| ("application/json", b));
        self.call_as(method, path, query, body).await
    }

    async fn call_as(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<(&'static str, Vec<u8>)>,
    ) -> anyhow::Result<String> {
        let mut url = format!("{}{path}", self.base);
        if !query.is_empty() {
            url.push('?');
            url.push_str(&serde_urlencoded::to_string(query)?);
        }
        let mut headers = self.headers.clone();
        if let Some((content_type, _)) = &body {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        }
        let body = body.map(|(_, b)| b).unwrap_or_default();
        let exchange = self.client.call(method, &url, headers, body, usize::MAX);
        let answer = tokio::time::timeout(TIMEOUT, exchange)
            .await
            .map_err(|_| {
                anyhow::anyhow!(
                    "the collector at {} did not answer within {TIMEOUT:?}",
                    self.base
                )
            })?
            .map_err(|e| self.unreachable(e))?;
        self.check(answer.status, &answer.body)?;
        Ok(String::from_utf8_lossy(&answer.body).into_owned())
    }
}

//! The HTTP notifiers: Slack-compatible incoming webhook, signed generic webhook, Alertmanager
//! v2. Each sends one JSON `POST` per notification over a fresh HTTP/1.1 connection (alerts are
//! rare; a pool would only hold idle sockets), through [`OutboundClient`] with the webpki
//! roots.
//!
//! A 2xx answer is success. 408, 429 and 5xx are worth retrying; any other status (a wrong
//! URL, a refused payload, a redirect) is not, and the error carries the status and the start
//! of the body.
//!
//! # The generic webhook's body
//!
//! The [`Notification`] as JSON plus `"version": 1`: `kind` (`"firing"`, `"resolved"`,
//! `"flapping"`, `"stopped_flapping"`, `"digest"`, or `{"escalation": {"tier": n}}` with tiers
//! counted from 0), `group`, `alerts` (each with `id`, `labels`, `annotations`, `severity`,
//! `state`, `since_ms`, `resolved_ms`, `value`, `evidence`, `ack_url`), `recipients`, `at_ms`.
//!
//! # Verifying a signed webhook
//!
//! With `secret` set, each request carries `X-Hcmon-Timestamp: <unix seconds>` and
//! `X-Hcmon-Signature: sha256=<hex>`, the HMAC-SHA256 under the secret of the timestamp, a
//! `.`, and the raw body bytes. A receiver recomputes it over the body exactly as received
//! (before any JSON parsing), compares in constant time, and refuses timestamps more than a few
//! minutes from its clock so a captured request cannot be replayed later. In Python:
//!
//! ```text
//! expected = "sha256=" + hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
//! ok = hmac.compare_digest(expected, signature) and abs(time.time() - int(ts)) < 300
//! ```
//!
//! Each retry is signed afresh with its own timestamp.

use super::config::{AlertmanagerConfig, ChannelError, SlackConfig, WebhookConfig, parse_url};
use super::{Notification, SendError, render};
use crate::outbound::OutboundClient;
use hcmon_common::HttpEndpoint;
use http::header::{CONTENT_TYPE, LOCATION};
use http::{HeaderName, HeaderValue, Request, StatusCode};
use http_body_util::Full;
use hyper::body::Bytes;
use std::time::{SystemTime, UNIX_EPOCH};

/// Enough of an error page to say what went wrong; more is not read.
const MAX_RESPONSE_BYTES: usize = 4096;
/// How much of a failed response's body an error message quotes.
const QUOTED_BODY_CHARS: usize = 200;

/// Posts JSON; shared by the HTTP notifiers, built once.
#[derive(Clone)]
pub(super) struct HttpClient {
    outbound: OutboundClient,
}

impl HttpClient {
    pub(super) fn new() -> Result<Self, ChannelError> {
        let user_agent = concat!("hcmon-collector/", env!("CARGO_PKG_VERSION"));
        Ok(Self {
            outbound: OutboundClient::public(user_agent).map_err(ChannelError::Tls)?,
        })
    }

    /// One `POST` of a JSON body; the caller bounds it in time.
    async fn post_json(
        &self,
        endpoint: &HttpEndpoint,
        headers: Vec<(HeaderName, HeaderValue)>,
        body: Vec<u8>,
    ) -> Result<(), SendError> {
        let authority = endpoint.authority();
        let mut request = Request::post(endpoint.path_and_query())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| SendError::Permanent(format!("request to {authority}: {e}")))?;
        request.headers_mut().extend(headers);
        let answer = self
            .outbound
            .send(endpoint, request, MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| match e.is_transient() {
                true => SendError::Transient(e.to_string()),
                false => SendError::Permanent(e.to_string()),
            })?;
        let location = answer.headers.get(LOCATION).and_then(|l| l.to_str().ok());
        check_status(authority, answer.status, location, &answer.body)
    }
}

/// 2xx is success; 408, 429 and 5xx are transient; anything else will not fix itself.
fn check_status(
    authority: &str,
    status: StatusCode,
    location: Option<&str>,
    body: &[u8],
) -> Result<(), SendError> {
    if status.is_success() {
        return Ok(());
    }
    let body = String::from_utf8_lossy(body);
    let mut quoted: String = body.trim().chars().take(QUOTED_BODY_CHARS).collect();
    if body.trim().chars().count() > QUOTED_BODY_CHARS {
        quoted.push('…');
    }
    let mut message = format!("HTTP {status} from {authority}");
    if let Some(location) = location.filter(|_| status.is_redirection()) {
        message.push_str(&format!(
            " (redirects to {location}; configure the final URL)"
        ));
    }
    if !quoted.is_empty() {
        message.push_str(&format!(": {quoted}"));
    }
    let transient = status.is_server_error()
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS;
    Err(if transient {
        SendError::Transient(message)
    } else {
        SendError::Permanent(message)
    })
}

/// Posts to a Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat).
pub(super) struct SlackNotifier {
    client: HttpClient,
    endpoint: HttpEndpoint,
}

impl SlackNotifier {
    pub(super) fn new(
        at: &str,
        config: &SlackConfig,
        client: HttpClient,
    ) -> Result<Self, ChannelError> {
        Ok(Self {
            client,
            endpoint: parse_url(&format!("{at}.slack.url"), config.url.expose())?,
        })
    }

    pub(super) async fn send(&self, n: &Notification) -> Result<(), SendError> {
        let body = serde_json::to_vec(&render::slack(n)).expect("JSON value serializes");
        self.client
            .post_json(&self.endpoint, Vec::new(), body)
            .await
    }
}

/// Posts the notification as JSON, signed with HMAC-SHA256 when a secret is configured.
pub(super) struct SignedWebhookNotifier {
    client: HttpClient,
    endpoint: HttpEndpoint,
    secret: Option<Vec<u8>>,
}

impl SignedWebhookNotifier {
    pub(super) fn new(
        at: &str,
        config: &WebhookConfig,
        client: HttpClient,
    ) -> Result<Self, ChannelError> {
        Ok(Self {
            client,
            endpoint: parse_url(&format!("{at}.webhook.url"), &config.url)?,
            secret: config
                .secret
                .as_ref()
                .map(|s| s.expose().as_bytes().to_vec()),
        })
    }

    pub(super) async fn send(&self, n: &Notification) -> Result<(), SendError> {
        let body = render::webhook_body(n);
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut headers = vec![(
            HeaderName::from_static("x-hcmon-timestamp"),
            HeaderValue::from(timestamp),
        )];
        if let Some(secret) = &self.secret {
            let signature = render::signature(secret, timestamp, &body);
            headers.push((
                HeaderName::from_static("x-hcmon-signature"),
                HeaderValue::try_from(signature).expect("hex is a valid header value"),
            ));
        }
        self.client.post_json(&self.endpoint, headers, body).await
    }
}

/// Posts alerts to Alertmanager's v2 API, which groups, silences and routes them further.
pub(super) struct AlertmanagerNotifier {
    client: HttpClient,
    endpoint: HttpEndpoint,
}

impl AlertmanagerNotifier {
    pub(super) fn new(
        at: &str,
        config: &AlertmanagerConfig,
        client: HttpClient,
    ) -> Result<Self, ChannelError> {
        Ok(Self {
            client,
            endpoint: parse_url(&format!("{at}.alertmanager.url"), &config.alerts_url())?,
        })
    }

    pub(super) async fn send(&self, n: &Notification) -> Result<(), SendError> {
        let body = serde_json::to_vec(&render::alertmanager(n)).expect("JSON value serializes");
        self.client
            .post_json(&self.endpoint, Vec::new(), body)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classification() {
        let check = |status: u16, body: &str| {
            check_status(
                "h:1",
                StatusCode::from_u16(status).unwrap(),
                Some("https://elsewhere/"),
                body.as_bytes(),
            )
        };
        assert!(check(200, "ok").is_ok());
        assert!(check(204, "").is_ok());
        match check(500, "  database locked \n") {
            Err(SendError::Transient(m)) => {
                assert_eq!(
                    m,
                    "HTTP 500 Internal Server Error from h:1: database locked"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(check(429, ""), Err(SendError::Transient(_))));
        assert!(matches!(check(408, ""), Err(SendError::Transient(_))));
        match check(400, &"x".repeat(500)) {
            Err(SendError::Permanent(m)) => {
                assert!(m.starts_with("HTTP 400 Bad Request from h:1: xxx"));
                assert!(m.ends_with("x…") && m.chars().count() < 260, "{m}");
            }
            other => panic!("{other:?}"),
        }
        match check(301, "") {
            Err(SendError::Permanent(m)) => assert!(m.contains("redirects to https://elsewhere/")),
            other => panic!("{other:?}"),
        }
    }
}

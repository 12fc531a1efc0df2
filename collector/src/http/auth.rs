//! Authentication and authorisation of every HTTP request, as middleware: [`authenticate`].
//!
//! The token comes from `Authorization: Bearer <token>`, else the `hcmon_token` cookie, else a
//! `?token=` query parameter (the dashboard login link the collector prints at start; answered
//! with the cookie set, so the browser stays logged in). Each call needs a [`Permission`]
//! ([`required`], the route table); the health checks (`/healthz`, and Prometheus' `/-/healthy`
//! and `/-/ready`) and the signed acknowledgement link need none
//! (the link carries its own proof, an HMAC over alert, person and expiry, checked by its
//! handler). A request that passes carries an [`Identity`], which the audit log records.
//!
//! Refusals: 401 (no valid token), 403 (a token whose role is not enough), 429 (an address with
//! too many failed authentications, refused before its token is looked at); each counted in
//! `hcmon_collector_refused_requests_total{listener="http"}`. Every failed authentication is
//! appended to the audit log; the per-address limit bounds how fast that can grow.

use super::error::ApiError;
use super::{ApiState, blocking};
use crate::access::{AuthFailure, Identity, Permission};
use crate::audit::{AuditEvent, Entry};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

/// The cookie a browser keeps its token in.
const COOKIE: &str = "hcmon_token";

/// Who the audit log names for a request without a valid token.
const UNAUTHENTICATED: &str = "unauthenticated";

/// Longest path the audit log keeps of a refused request (the URL may be long and is the
/// client's to choose).
const MAX_AUDITED_PATH: usize = 200;

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Required {
    /// Nothing: `/healthz`, `/-/healthy`, `/-/ready`, the signed acknowledgement link.
    Open,
    Token(Permission),
}

/// The route table: what `method path` needs; `signed` says whether the query carries a
/// signature (`sig=`). Routes not listed need a token that may read (an unknown path is
/// then answered 404); methods that change state on unlisted paths need the admin role.
pub fn required(method: &Method, path: &str, signed: bool) -> Required {
    use Permission::*;
    let read = matches!(*method, Method::GET | Method::HEAD);
    // Health checks, Prometheus' included: load balancers and supervisors probe without a
    // token.
    if matches!(path, "/healthz" | "/-/healthy" | "/-/ready") {
        return Required::Open;
    }
    let Some(rest) = path.strip_prefix("/api/v1/") else {
        return Required::Token(if read { Read } else { Administer });
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let need = match (method.as_str(), segments.as_slice()) {
        ("GET" | "HEAD", ["alerts", _, "ack"]) if signed => return Required::Open,
        (_, ["audit", ..] | ["tokens", ..] | ["pki", ..] | ["admin", ..]) => Administer,
        ("POST", ["write"]) => Write,
        ("POST", ["alerts", _, "ack"] | ["silences"]) => Operate,
        ("DELETE", ["silences", _]) => Operate,
        ("DELETE", ["agents", _]) => Administer,
        // Queries may be sent as forms.
        (
            "POST",
            ["query" | "query_range" | "series" | "export" | "labels" | "query_exemplars"],
        ) => Read,
        _ if read => Read,
        _ => Administer,
    };
    Required::Token(need)
}

/// The token a request carries, and whether it came in the query (the login link).
fn presented(headers: &HeaderMap, query: Option<&str>) -> Option<(String, bool)> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    if let Some(token) = bearer {
        return Some((token.to_owned(), false));
    }
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE).then(|| value.trim())
        });
    if let Some(token) = cookie {
        return Some((token.to_owned(), false));
    }
    let token = serde_urlencoded::from_str::<Vec<(String, String)>>(query?)
        .ok()?
        .into_iter()
        .find_map(|(name, value)| (name == "token").then_some(value))?;
    Some((token, true))
}

/// Whether the query string carries a `sig` parameter (a signed acknowledgement link).
fn is_signed(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        q.split('&')
            .any(|pair| pair.split('=').next() == Some("sig"))
    })
}

/// Middleware: see the module header.
pub async fn authenticate(
    State(state): State<ApiState>,
    mut request: Request,
    next: Next,
) -> Response {
    let query = request.uri().query();
    let need = match required(request.method(), request.uri().path(), is_signed(query)) {
        Required::Open => return next.run(request).await,
        Required::Token(need) => need,
    };
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| *address);
    let address = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
    let access = &state.access;
    if let Some(retry_after) = access.failures.blocked(address, Instant::now()) {
        let error = ApiError::TooManyFailures {
            address,
            max: crate::access::MAX_FAILURES,
            retry_after,
        };
        return refuse(&state, "auth_failures", error);
    }
    let presented = presented(request.headers(), query);
    let checked = match &presented {
        None => Err(AuthFailure::Missing),
        Some((token, _)) => access.tokens.authenticate(token, state.now_ms()),
    };
    let identity = match checked {
        Ok(identity) => identity,
        Err(failure) => {
            access.failures.failed(address, Instant::now());
            let route = audited_route(request.method(), request.uri().path());
            record_failure(&state, route, peer, failure).await;
            let data_dir = access.data_dir.clone();
            let error = ApiError::Unauthenticated { failure, data_dir };
            return refuse(&state, "unauthenticated", error);
        }
    };
    if !need.allows(identity.grant()) {
        let error = ApiError::Forbidden {
            needed: need,
            name: identity.name,
            role: identity.role,
            write: identity.write,
        };
        return refuse(&state, "forbidden", error);
    }
    request.extensions_mut().insert(identity);
    let mut response = next.run(request).await;
    if let Some((token, true)) = presented {
        // Over TLS (the collector has a CA exactly when TLS is on) the browser must never send
        // the cookie in the clear.
        let secure = if state.enrollment.is_some() {
            "; Secure"
        } else {
            ""
        };
        let cookie = format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/{secure}");
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// Counts a refusal under `reason` and answers it.
fn refuse(state: &ApiState, reason: &str, error: ApiError) -> Response {
    state
        .metrics
        .refused_requests
        .with_label_values(&["http", reason])
        .inc();
    error.into_response()
}

/// Appends a failed authentication to the audit log. A record that cannot be written is
/// logged; the request is refused all the same.
async fn record_failure(
    state: &ApiState,
    route: String,
    peer: Option<SocketAddr>,
    failure: AuthFailure,
) {
    let entry = Entry {
        who: UNAUTHENTICATED.to_owned(),
        role: None,
        client: peer.map(|p| p.to_string()),
        route,
        event: AuditEvent::FailedAuthentication {
            reason: failure.to_string(),
        },
        outcome: 401,
    };
    let (audit, at_ms) = (state.audit.clone(), state.now_ms());
    let appended = blocking("audit", move || audit.append(entry, at_ms)).await;
    if let Err(error) = appended.and_then(|written| written.map_err(ApiError::from)) {
        tracing::error!(%error, "cannot write the audit record of a failed authentication");
    }
}

/// `METHOD path` of a refused request, the path cut to [`MAX_AUDITED_PATH`] bytes.
fn audited_route(method: &Method, path: &str) -> String {
    let mut end = path.len().min(MAX_AUDITED_PATH);
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{method} {}", &path[..end])
}

/// The identity a request was let in with, for handlers and the audit log; `None` on open
/// routes.
pub fn identity(request: &Request) -> Option<&Identity> {
    request.extensions().get::<Identity>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Permission::*;

    fn need(method: Method, path: &str) -> Required {
        required(&method, path, false)
    }

    #[test]
    fn every_route_needs_what_its_role_may_do() {
        for (method, path, expected) in [
            (Method::GET, "/healthz", Required::Open),
            (Method::GET, "/-/healthy", Required::Open),
            (Method::HEAD, "/-/ready", Required::Open),
            (Method::GET, "/federate", Required::Token(Read)),
            (
                Method::GET,
                "/api/v1/status/buildinfo",
                Required::Token(Read),
            ),
            (
                Method::GET,
                "/api/v1/status/runtimeinfo",
                Required::Token(Read),
            ),
            (Method::GET, "/api/v1/status/flags", Required::Token(Read)),
            (Method::GET, "/api/v1/metadata", Required::Token(Read)),
            (Method::GET, "/api/v1/rules", Required::Token(Read)),
            (Method::GET, "/api/v1/targets", Required::Token(Read)),
            (
                Method::POST,
                "/api/v1/query_exemplars",
                Required::Token(Read),
            ),
            (Method::POST, "/-/reload", Required::Token(Administer)),
            (Method::GET, "/metrics", Required::Token(Read)),
            (Method::GET, "/api/v1/query", Required::Token(Read)),
            (Method::POST, "/api/v1/query_range", Required::Token(Read)),
            (Method::GET, "/api/v1/alerts", Required::Token(Read)),
            (Method::GET, "/api/v1/agents", Required::Token(Read)),
            (Method::HEAD, "/api/v1/series", Required::Token(Read)),
            (
                Method::POST,
                "/api/v1/alerts/a1/ack",
                Required::Token(Operate),
            ),
            (Method::POST, "/api/v1/silences", Required::Token(Operate)),
            (
                Method::DELETE,
                "/api/v1/silences/s1",
                Required::Token(Operate),
            ),
            (
                Method::DELETE,
                "/api/v1/agents/nas",
                Required::Token(Administer),
            ),
            (
                Method::POST,
                "/api/v1/admin/compact",
                Required::Token(Administer),
            ),
            (Method::GET, "/api/v1/audit", Required::Token(Administer)),
            (
                Method::GET,
                "/api/v1/audit/export",
                Required::Token(Administer),
            ),
            (Method::GET, "/api/v1/tokens", Required::Token(Administer)),
            (Method::POST, "/api/v1/tokens", Required::Token(Administer)),
            (
                Method::DELETE,
                "/api/v1/tokens/ab",
                Required::Token(Administer),
            ),
            (
                Method::POST,
                "/api/v1/pki/revoke",
                Required::Token(Administer),
            ),
            (Method::POST, "/api/v1/write", Required::Token(Write)),
            (Method::GET, "/", Required::Token(Read)),
            (Method::GET, "/api/v1/nothing", Required::Token(Read)),
            (Method::PUT, "/api/v1/nothing", Required::Token(Administer)),
            (Method::POST, "/elsewhere", Required::Token(Administer)),
        ] {
            assert_eq!(need(method.clone(), path), expected, "{method} {path}");
        }
    }

    #[test]
    fn only_the_signed_ack_link_is_open() {
        let link = "/api/v1/alerts/a1/ack";
        assert_eq!(required(&Method::GET, link, true), Required::Open);
        assert_eq!(required(&Method::HEAD, link, true), Required::Open);
        assert_eq!(required(&Method::GET, link, false), Required::Token(Read));
        let post = required(&Method::POST, link, true);
        assert_eq!(post, Required::Token(Operate));
        assert!(is_signed(Some("by=me&expires=1&sig=00")));
        assert!(!is_signed(Some("by=me&signature=00")));
        assert!(!is_signed(None));
    }

    #[test]
    fn the_token_comes_from_the_header_then_the_cookie_then_the_query() {
        let mut headers = HeaderMap::new();
        let query = Some("a=1&token=hcm_q");
        assert_eq!(presented(&headers, query), Some(("hcm_q".into(), true)));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("x=1; hcmon_token=hcm_c"),
        );
        assert_eq!(presented(&headers, query), Some(("hcm_c".into(), false)));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer hcm_h"),
        );
        assert_eq!(presented(&headers, query), Some(("hcm_h".into(), false)));
        assert_eq!(presented(&HeaderMap::new(), Some("tokens=1")), None);
    }
}

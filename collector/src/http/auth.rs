//! Authentication and authorisation of every HTTP request, as middleware: [`authenticate`];
//! and the browser's session with the dashboard: `GET /api/v1/whoami`, `POST /api/v1/login`,
//! `POST /api/v1/logout`.
//!
//! The token comes from `Authorization: Bearer <token>`, else the `hcmon_token` cookie, else a
//! `?token=` query parameter. Each call needs a [`Permission`] ([`required`], the route
//! table); the health checks (`/healthz`, and Prometheus' `/-/healthy` and `/-/ready`), the
//! dashboard's files and pages (`/`, `/login`, `/assets/…`: they hold no data, the page fetches
//! it with the cookie), the login form and the signed acknowledgement link need none (the link
//! carries its own proof, an HMAC over alert, person and expiry, checked by its handler). A
//! request that passes carries an [`Identity`], which the audit log records.
//!
//! Browsers: the login link the collector prints, `/?token=…`, sets the cookie and redirects
//! (303) to `/`, so the token leaves the address bar and the history; a bad token there, or in
//! the login form, redirects to `/login?error=…` instead of answering JSON. The cookie is
//! `HttpOnly; SameSite=Strict` (`Secure` over TLS). Because a browser sends it by itself, a
//! cookie-authenticated request that changes state and carries an `Origin` that is not this
//! collector is refused (403): SameSite already keeps the cookie off cross-site requests in
//! current browsers, the Origin check covers older ones and same-site sibling hosts.
//!
//! Refusals: 401 (no valid token), 403 (a token whose role is not enough, or a cross-origin
//! cookie request), 429 (an address with too many failed authentications, refused before its
//! token is looked at); each counted in `hcmon_collector_refused_requests_total{listener="http"}`.
//! Every failed authentication, the login form's and link's included, is appended to the audit
//! log; the per-address limit bounds how fast that can grow.

use super::error::{ApiError, success};
use super::{ApiState, blocking};
use crate::access::{AuthFailure, Identity, Permission};
use crate::api::session::{LoggedOut, LoginForm, WhoAmI};
use crate::api::{ErrorResponse, ErrorType, Status};
use crate::audit::{AuditEvent, Entry};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Instant;

/// The cookie a browser keeps its token in.
const COOKIE: &str = "hcmon_token";

/// Who the audit log names for a request without a valid token.
const UNAUTHENTICATED: &str = "unauthenticated";

/// Longest path the audit log keeps of a refused request (the URL may be long and is the
/// client's to choose).
const MAX_AUDITED_PATH: usize = 200;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/whoami", get(whoami))
        .route("/api/v1/login", post(login))
        .route("/api/v1/logout", post(logout))
}

/// What a request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Required {
    /// Nothing: the health checks, the dashboard's pages and files, the login form, the signed
    /// acknowledgement link.
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
    // The dashboard: the page asks for its data with the cookie.
    if read && (matches!(path, "/" | "/login") || path.starts_with("/assets/")) {
        return Required::Open;
    }
    // OTLP/HTTP's fixed path, where SDKs export metrics.
    if *method == Method::POST && path == "/v1/metrics" {
        return Required::Token(Write);
    }
    let Some(rest) = path.strip_prefix("/api/v1/") else {
        return Required::Token(if read { Read } else { Administer });
    };
    let segments: Vec<&str> = rest.split('/').collect();
    let need = match (method.as_str(), segments.as_slice()) {
        ("GET" | "HEAD", ["alerts", _, "ack"]) if signed => return Required::Open,
        // The form checks the token itself, as this middleware would.
        ("POST", ["login"]) => return Required::Open,
        ("POST", ["logout"]) => Read,
        (_, ["audit", ..] | ["tokens", ..] | ["pki", ..] | ["admin", ..]) => Administer,
        ("POST", ["write"]) => Write,
        ("POST", ["alerts", _, "ack"] | ["silences"]) => Operate,
        ("DELETE", ["silences", _]) => Operate,
        ("DELETE", ["agents", _]) => Administer,
        ("POST" | "DELETE", ["annotations", ..] | ["experiments", ..]) => Operate,
        ("POST" | "DELETE", ["slos", ..]) => Operate,
        // Queries may be sent as forms.
        (
            "POST",
            [
                "query" | "query_range" | "series" | "export" | "labels" | "query_exemplars"
                | "compare",
            ],
        ) => Read,
        _ if read => Read,
        _ => Administer,
    };
    Required::Token(need)
}

/// Where a request's token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Bearer,
    /// Sent by the browser on its own: state-changing calls are held to the Origin check.
    Cookie,
    /// The login link (`?token=`): answered with the cookie set.
    Query,
}

/// The token a request carries, and where it came from.
fn presented(headers: &HeaderMap, query: Option<&str>) -> Option<(String, Source)> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    if let Some(token) = bearer {
        return Some((token.to_owned(), Source::Bearer));
    }
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE && !value.trim().is_empty()).then(|| value.trim())
        });
    if let Some(token) = cookie {
        return Some((token.to_owned(), Source::Cookie));
    }
    query_token(query).map(|token| (token, Source::Query))
}

/// The `token` parameter of a query string.
fn query_token(query: Option<&str>) -> Option<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query?)
        .ok()?
        .into_iter()
        .find_map(|(name, value)| (name == "token").then_some(value))
}

/// Whether the query string carries a `sig` parameter (a signed acknowledgement link).
fn is_signed(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        q.split('&')
            .any(|pair| pair.split('=').next() == Some("sig"))
    })
}

/// The client's address, as the listener recorded it.
fn peer_of(request: &Request) -> Option<SocketAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| *address)
}

/// Middleware: see the module header.
pub async fn authenticate(
    State(state): State<ApiState>,
    mut request: Request,
    next: Next,
) -> Response {
    let query = request.uri().query();
    let peer = peer_of(&request);
    // The login link: log the browser in and take the token out of the address bar.
    if request.uri().path() == "/"
        && let Some(token) = query_token(query)
    {
        let route = audited_route(request.method(), "/");
        return match check(&state, peer, Some(&token), route).await {
            Ok(_) => logged_in(&state, &token),
            Err((reason, error)) => to_login_page(&state, reason, &error),
        };
    }
    let need = match required(request.method(), request.uri().path(), is_signed(query)) {
        Required::Open => return next.run(request).await,
        Required::Token(need) => need,
    };
    let presented = presented(request.headers(), query);
    let route = audited_route(request.method(), request.uri().path());
    let token = presented.as_ref().map(|(token, _)| token.as_str());
    let identity = match check(&state, peer, token, route).await {
        Ok(identity) => identity,
        Err((reason, error)) => return refuse(&state, reason, error),
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
    let changes_state = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if changes_state
        && matches!(presented, Some((_, Source::Cookie)))
        && let Err(origin) = same_origin(request.headers())
    {
        return cross_origin(&state, &origin);
    }
    request.extensions_mut().insert(identity);
    let mut response = next.run(request).await;
    if let Some((token, Source::Query)) = presented
        && let Some(cookie) = session_cookie(&state, &token)
    {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// Authenticates `token` from `peer`: refused unchecked while the address is over its
/// failure limit; a failure is counted against the address and audited under `route`. A
/// refusal comes with the reason it is counted under.
async fn check(
    state: &ApiState,
    peer: Option<SocketAddr>,
    token: Option<&str>,
    route: String,
) -> Result<Identity, (&'static str, ApiError)> {
    let address = peer.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
    let access = &state.access;
    if let Some(retry_after) = access.failures.blocked(address, Instant::now()) {
        let error = ApiError::TooManyFailures {
            address,
            max: crate::access::MAX_FAILURES,
            retry_after,
        };
        return Err(("auth_failures", error));
    }
    let checked = match token {
        None => Err(AuthFailure::Missing),
        Some(token) => access.tokens.authenticate(token, state.now_ms()),
    };
    match checked {
        Ok(identity) => Ok(identity),
        Err(failure) => {
            access.failures.failed(address, Instant::now());
            record_failure(state, route, peer, failure).await;
            let data_dir = access.data_dir.clone();
            let error = ApiError::Unauthenticated { failure, data_dir };
            Err(("unauthenticated", error))
        }
    }
}

/// Whether a request comes from a page of this collector: its `Origin`, when it has one, names
/// the host the request was sent to (`Host`, or `X-Forwarded-Host` behind a proxy). The
/// refused origin otherwise.
fn same_origin(headers: &HeaderMap) -> Result<(), String> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = origin.to_str().unwrap_or("(an origin that is not text)");
    let Some((_, origin_host)) = origin.split_once("://") else {
        return Err(origin.to_owned());
    };
    let hosts = [header::HOST.as_str(), "x-forwarded-host"];
    let same = hosts
        .iter()
        .flat_map(|name| headers.get_all(*name))
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|host| host.trim().eq_ignore_ascii_case(origin_host));
    if same { Ok(()) } else { Err(origin.to_owned()) }
}

/// The 403 for a cookie request from another site's page.
fn cross_origin(state: &ApiState, origin: &str) -> Response {
    state
        .metrics
        .refused_requests
        .with_label_values(&["http", "cross_origin"])
        .inc();
    let body = ErrorResponse {
        status: Status::Error,
        error_type: ErrorType::Forbidden,
        error: format!(
            "refused a cross-site request: it changes state with this browser's login cookie but comes from {origin}, not from this collector's pages; send it from the dashboard, or with Authorization: Bearer <token>"
        ),
    };
    (StatusCode::FORBIDDEN, Json(body)).into_response()
}

/// The `Set-Cookie` value that keeps `token` in the browser. Over TLS (the collector has a CA
/// exactly when TLS is on) the browser must never send it in the clear.
fn session_cookie(state: &ApiState, token: &str) -> Option<HeaderValue> {
    let secure = if state.enrollment.is_some() {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/{secure}"
    ))
    .ok()
}

/// A browser redirect (303: the next request is a GET) to `location`, never cached.
fn see_other(location: &'static str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, "no-store"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
    )
        .into_response()
}

/// To the dashboard, logged in as `token`.
fn logged_in(state: &ApiState, token: &str) -> Response {
    let mut response = see_other("/");
    if let Some(cookie) = session_cookie(state, token) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// Back to the login page, saying why: a browser shows a page, not a JSON 401. Counted as the
/// API's refusals are.
fn to_login_page(state: &ApiState, reason: &str, error: &ApiError) -> Response {
    state
        .metrics
        .refused_requests
        .with_label_values(&["http", reason])
        .inc();
    match error {
        ApiError::TooManyFailures { .. } => see_other("/login?error=throttled"),
        _ => see_other("/login?error=invalid"),
    }
}

/// `GET /api/v1/whoami`: the request token's name, role and scope.
async fn whoami(Extension(identity): Extension<Identity>) -> Response {
    success(WhoAmI {
        name: identity.name,
        role: identity.role,
        write: identity.write,
    })
}

/// `POST /api/v1/login` with the form `token=…`: sets the cookie and redirects to the
/// dashboard; a wrong token redirects back to the login page (counted and audited as every
/// failed authentication). Only from this collector's own pages (`Origin`), so another site
/// cannot log a browser in under a token of its choosing.
async fn login(
    State(state): State<ApiState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(origin) = same_origin(&headers) {
        return cross_origin(&state, &origin);
    }
    let peer = peer.map(|Extension(ConnectInfo(address))| address);
    let form = serde_urlencoded::from_bytes::<LoginForm>(&body).ok();
    let token = form.as_ref().map(|f| f.token.trim());
    let route = audited_route(&Method::POST, "/api/v1/login");
    match check(&state, peer, token.filter(|t| !t.is_empty()), route).await {
        Ok(_) => logged_in(&state, token.unwrap_or_default()),
        Err((reason, error)) => to_login_page(&state, reason, &error),
    }
}

/// `POST /api/v1/logout`: clears the cookie.
async fn logout(Extension(identity): Extension<Identity>) -> Response {
    let mut response = success(LoggedOut {
        name: identity.name,
    });
    let cleared = format!("{COOKIE}=; Max-Age=0; HttpOnly; SameSite=Strict; Path=/");
    if let Ok(value) = HeaderValue::from_str(&cleared) {
        response.headers_mut().append(header::SET_COOKIE, value);
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
            (Method::GET, "/", Required::Open),
            (Method::HEAD, "/", Required::Open),
            (Method::GET, "/login", Required::Open),
            (Method::GET, "/assets/v0/app.js", Required::Open),
            (Method::POST, "/", Required::Token(Administer)),
            (Method::POST, "/assets/x", Required::Token(Administer)),
            (Method::GET, "/index.html", Required::Token(Read)),
            (Method::POST, "/api/v1/login", Required::Open),
            (Method::POST, "/api/v1/logout", Required::Token(Read)),
            (Method::GET, "/api/v1/whoami", Required::Token(Read)),
            (Method::GET, "/api/v1/stream", Required::Token(Read)),
            (Method::GET, "/api/v1/annotations", Required::Token(Read)),
            (
                Method::POST,
                "/api/v1/annotations",
                Required::Token(Operate),
            ),
            (
                Method::DELETE,
                "/api/v1/annotations/a1",
                Required::Token(Operate),
            ),
            (Method::GET, "/api/v1/experiments/e1", Required::Token(Read)),
            (
                Method::POST,
                "/api/v1/experiments",
                Required::Token(Operate),
            ),
            (
                Method::DELETE,
                "/api/v1/experiments/e1",
                Required::Token(Operate),
            ),
            (
                Method::GET,
                "/api/v1/slos/web/intervals",
                Required::Token(Read),
            ),
            (Method::GET, "/api/v1/slos/openslo", Required::Token(Read)),
            (
                Method::POST,
                "/api/v1/slos/openslo",
                Required::Token(Operate),
            ),
            (Method::DELETE, "/api/v1/slos/web", Required::Token(Operate)),
            (Method::GET, "/api/v1/compare", Required::Token(Read)),
            (Method::POST, "/api/v1/compare", Required::Token(Read)),
            (Method::POST, "/api/v1/export", Required::Token(Read)),
            (Method::GET, "/api/v1/report", Required::Token(Read)),
            (Method::GET, "/api/v1/reports", Required::Token(Read)),
            (
                Method::GET,
                "/api/v1/reports/daily-2026-11-29",
                Required::Token(Read),
            ),
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
        let q = Some(("hcm_q".into(), Source::Query));
        assert_eq!(presented(&headers, query), q);
        // A cleared cookie (logged out) is no token.
        headers.insert(header::COOKIE, HeaderValue::from_static("hcmon_token="));
        assert_eq!(presented(&headers, query), q);
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("x=1; hcmon_token=hcm_c"),
        );
        let c = Some(("hcm_c".into(), Source::Cookie));
        assert_eq!(presented(&headers, query), c);
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer hcm_h"),
        );
        let h = Some(("hcm_h".into(), Source::Bearer));
        assert_eq!(presented(&headers, query), h);
        assert_eq!(presented(&HeaderMap::new(), Some("tokens=1")), None);
    }

    #[test]
    fn an_origin_must_name_the_host_the_request_was_sent_to() {
        let check = |pairs: &[(&'static str, &'static str)]| {
            let mut headers = HeaderMap::new();
            for (name, value) in pairs {
                headers.append(*name, HeaderValue::from_static(value));
            }
            same_origin(&headers)
        };
        let host = ("host", "127.0.0.1:9464");
        assert_eq!(
            check(&[host]),
            Ok(()),
            "no Origin: not a browser's cross-site call"
        );
        assert_eq!(check(&[host, ("origin", "http://127.0.0.1:9464")]), Ok(()));
        assert_eq!(
            check(&[("host", "Mon.Example"), ("origin", "https://mon.example")]),
            Ok(())
        );
        let proxied = [
            ("host", "127.0.0.1:9464"),
            ("x-forwarded-host", "mon.example"),
            ("origin", "https://mon.example"),
        ];
        assert_eq!(check(&proxied), Ok(()));
        for (origin, refused) in [
            ("http://evil.example", "http://evil.example"),
            ("http://127.0.0.1:9465", "http://127.0.0.1:9465"),
            ("null", "null"),
        ] {
            let mut headers = HeaderMap::new();
            headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:9464"));
            headers.insert(header::ORIGIN, HeaderValue::from_static(origin));
            assert_eq!(same_origin(&headers), Err(refused.to_owned()), "{origin}");
        }
        let mut no_host = HeaderMap::new();
        no_host.insert(header::ORIGIN, HeaderValue::from_static("http://a"));
        assert!(same_origin(&no_host).is_err());
    }
}

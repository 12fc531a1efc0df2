//! The dashboard over HTTP: `GET /` (the single-page app's shell), `GET /login` and
//! `GET /assets/{*path}`, the embedded files of [`crate::dashboard`]. Open to all (see
//! `auth.rs`): they hold no data. Each answer carries its ETag (a matching `If-None-Match` is
//! answered 304), its caching rule and headers that keep the pages from being framed or their
//! scripts from being swapped; gzip comes from the router's compression layer.

use super::ApiState;
use super::error::ApiError;
use crate::dashboard::{APP_SHELL, Asset, Caching, LOGIN_PAGE, asset};
use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// Scripts, styles and connections only from the collector itself (the WebSocket included);
/// inline styles for the charts' library, which sizes its elements that way.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/", get(shell))
        .route("/login", get(login))
        .route("/assets/{*path}", get(file))
}

async fn shell(headers: HeaderMap) -> Response {
    serve(&headers, *APP_SHELL, Caching::Revalidate)
}

async fn login(headers: HeaderMap) -> Response {
    serve(&headers, *LOGIN_PAGE, Caching::Revalidate)
}

async fn file(headers: HeaderMap, Path(path): Path<String>) -> Result<Response, ApiError> {
    let (found, caching) = asset(&path)
        .ok_or_else(|| ApiError::NotFound(format!("no dashboard file at /assets/{path}")))?;
    Ok(serve(&headers, found, caching))
}

/// `asset`, or 304 when the browser holds it already.
fn serve(request: &HeaderMap, asset: Asset, caching: Caching) -> Response {
    let fresh = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == asset.etag);
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.bytes.into_response()
    };
    let headers = response.headers_mut();
    let fixed = [
        (header::CONTENT_TYPE, asset.content_type),
        (header::CACHE_CONTROL, caching.header()),
        (header::ETAG, asset.etag),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::super::HttpLimits;
    use super::super::tests::{Served, serve_on};
    use crate::storage::MemoryKv;
    use reqwest::{Client, Response, header, redirect};

    async fn served() -> Served {
        serve_on(Box::new(MemoryKv::default()), HttpLimits::default()).await
    }

    /// A browser: no token header, follows no redirects (the tests look at them).
    fn browser() -> Client {
        Client::builder()
            .redirect(redirect::Policy::none())
            .build()
            .unwrap()
    }

    fn header(response: &Response, name: header::HeaderName) -> &str {
        response
            .headers()
            .get(&name)
            .map_or("", |v| v.to_str().unwrap())
    }

    #[tokio::test]
    async fn the_pages_and_files_are_served_without_a_token_with_their_types() {
        let Served { base, .. } = served().await;
        let browser = browser();
        let shell = browser.get(format!("{base}/")).send().await.unwrap();
        assert_eq!(shell.status(), 200);
        assert_eq!(
            header(&shell, header::CONTENT_TYPE),
            "text/html; charset=utf-8"
        );
        assert_eq!(header(&shell, header::CACHE_CONTROL), "no-cache");
        let etag = header(&shell, header::ETAG).to_owned();
        let page = shell.text().await.unwrap();
        let version = crate::dashboard::VERSION.as_str();
        assert!(
            page.contains(&format!("/assets/{version}/app.js")),
            "{page}"
        );
        let login = browser.get(format!("{base}/login")).send().await.unwrap();
        assert_eq!(login.status(), 200);
        assert!(
            login
                .text()
                .await
                .unwrap()
                .contains("action=\"/api/v1/login\"")
        );
        for (path, content_type, caching) in [
            (
                format!("/assets/{version}/app.js"),
                "text/javascript; charset=utf-8",
                "public, max-age=31536000, immutable",
            ),
            (
                format!("/assets/{version}/pages/node.js"),
                "text/javascript; charset=utf-8",
                "public, max-age=31536000, immutable",
            ),
            (
                "/assets/style.css".into(),
                "text/css; charset=utf-8",
                "no-cache",
            ),
            (
                format!("/assets/{version}/vendor/uplot/uPlot.iife.min.js"),
                "text/javascript; charset=utf-8",
                "public, max-age=31536000, immutable",
            ),
        ] {
            let response = browser.get(format!("{base}{path}")).send().await.unwrap();
            assert_eq!(response.status(), 200, "{path}");
            assert_eq!(
                header(&response, header::CONTENT_TYPE),
                content_type,
                "{path}"
            );
            assert_eq!(header(&response, header::CACHE_CONTROL), caching, "{path}");
            assert_eq!(header(&response, header::X_CONTENT_TYPE_OPTIONS), "nosniff");
        }
        // The browser's copy is still good: 304, no body.
        let again = browser
            .get(format!("{base}/"))
            .header(header::IF_NONE_MATCH, &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304);
        assert!(again.bytes().await.unwrap().is_empty());
        // Compressed when the browser asks.
        let gzipped = browser
            .get(format!("{base}/assets/{version}/app.js"))
            .header(header::ACCEPT_ENCODING, "gzip")
            .send()
            .await
            .unwrap();
        assert_eq!(header(&gzipped, header::CONTENT_ENCODING), "gzip");
    }

    #[tokio::test]
    async fn an_unknown_file_is_404_and_the_api_still_needs_a_token() {
        let Served { base, .. } = served().await;
        let browser = browser();
        for path in [
            "/assets/nope.js",
            "/assets/v0123456789abcdef/nope.css",
            "/assets/",
        ] {
            let response = browser.get(format!("{base}{path}")).send().await.unwrap();
            assert_eq!(response.status(), 404, "{path}");
        }
        let data = browser
            .get(format!("{base}/api/v1/whoami"))
            .send()
            .await
            .unwrap();
        assert_eq!(data.status(), 401);
    }

    #[tokio::test]
    async fn the_login_link_sets_the_cookie_and_drops_the_token_from_the_address() {
        let Served { base, token, .. } = served().await;
        let browser = browser();
        let opened = browser
            .get(format!("{base}/?token={token}"))
            .send()
            .await
            .unwrap();
        assert_eq!(opened.status(), 303);
        assert_eq!(header(&opened, header::LOCATION), "/");
        let cookie = header(&opened, header::SET_COOKIE);
        assert_eq!(
            cookie,
            format!("hcmon_token={token}; HttpOnly; SameSite=Strict; Path=/")
        );
        let who = browser
            .get(format!("{base}/api/v1/whoami"))
            .header(header::COOKIE, format!("hcmon_token={token}"))
            .send()
            .await
            .unwrap();
        let who: serde_json::Value = who.json().await.unwrap();
        let expected = serde_json::json!({"name": "test", "role": "admin", "write": true});
        assert_eq!(who["data"], expected);
        let wrong = browser
            .get(format!("{base}/?token=hcm_00000000_00"))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 303);
        assert_eq!(header(&wrong, header::LOCATION), "/login?error=invalid");
        assert!(wrong.headers().get(header::SET_COOKIE).is_none());
    }

    /// Posts the login form from `origin`.
    async fn log_in(base: &str, body: String, origin: &str) -> Response {
        browser()
            .post(format!("{base}/api/v1/login"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::ORIGIN, origin)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn the_login_form_sets_the_cookie_or_sends_back_to_the_login_page() {
        let Served {
            base,
            token,
            metrics,
            ..
        } = served().await;
        let ok = log_in(&base, format!("token={token}"), &base).await;
        assert_eq!(ok.status(), 303);
        assert_eq!(header(&ok, header::LOCATION), "/");
        assert!(header(&ok, header::SET_COOKIE).starts_with(&format!("hcmon_token={token};")));
        for body in [
            "token=hcm_00000000_00".to_owned(),
            "token=".into(),
            "x=1".into(),
        ] {
            let bad = log_in(&base, body.clone(), &base).await;
            assert_eq!(bad.status(), 303, "{body}");
            assert_eq!(header(&bad, header::LOCATION), "/login?error=invalid");
            assert!(bad.headers().get(header::SET_COOKIE).is_none());
        }
        let counted = metrics
            .refused_requests
            .with_label_values(&["http", "unauthenticated"])
            .get();
        assert_eq!(counted, 3);
        let foreign = log_in(&base, format!("token={token}"), "http://evil.example").await;
        assert_eq!(foreign.status(), 403);
    }

    #[tokio::test]
    async fn a_cookie_request_that_changes_state_must_come_from_the_collectors_own_pages() {
        let Served {
            base,
            token,
            client,
            ..
        } = served().await;
        let cookie = format!("hcmon_token={token}");
        let logout = |origin: Option<&str>| {
            let mut request = browser()
                .post(format!("{base}/api/v1/logout"))
                .header(header::COOKIE, &cookie);
            if let Some(origin) = origin {
                request = request.header(header::ORIGIN, origin);
            }
            request.send()
        };
        let refused = logout(Some("http://evil.example")).await.unwrap();
        assert_eq!(refused.status(), 403);
        let answer: serde_json::Value = refused.json().await.unwrap();
        assert_eq!(answer["errorType"], "forbidden");
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .contains("http://evil.example")
        );
        // The same call from the dashboard's own page, or with no Origin (not a browser's
        // cross-site call), clears the cookie.
        for origin in [Some(base.as_str()), None] {
            let done = logout(origin).await.unwrap();
            assert_eq!(done.status(), 200, "{origin:?}");
            assert_eq!(
                header(&done, header::SET_COOKIE),
                "hcmon_token=; Max-Age=0; HttpOnly; SameSite=Strict; Path=/"
            );
        }
        // A bearer token is not sent by the browser on its own: no Origin check.
        let bearer = client
            .post(format!("{base}/api/v1/logout"))
            .header(header::ORIGIN, "http://evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(bearer.status(), 200);
        // Reads with the cookie are not state changes.
        let read = browser()
            .get(format!("{base}/api/v1/whoami"))
            .header(header::COOKIE, &cookie)
            .header(header::ORIGIN, "http://evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(read.status(), 200);
    }
}

//! `HttpEndpoint`: an `http://` or `https://` URL checked and taken apart once, for the hand-made
//! HTTP/1.1 clients (the agent's HTTP probe, the collector's webhook notifiers). Parsing only;
//! connecting is the caller's.
//!
//! Errors never echo the URL: a Slack webhook's path is its secret.

use http::Uri;

/// Why a URL is not a usable `http://` or `https://` endpoint.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("must start with http:// or https://")]
    Scheme,
    #[error("not a URL ({0})")]
    NotAUrl(http::uri::InvalidUri),
    #[error("has no host")]
    NoHost,
    /// Credentials belong in the client's own settings, not in a URL that ends up in logs.
    #[error("user:password@ in the URL is not supported")]
    Credentials,
}

/// Where and how an HTTP client connects, and what it asks for there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpEndpoint {
    tls: bool,
    /// Without IPv6 brackets.
    host: String,
    port: u16,
    /// `host[:port]` as written.
    authority: String,
    path_and_query: String,
}

impl HttpEndpoint {
    /// Parses an `http://` or `https://` URL (scheme in any case) with a host and no
    /// credentials; the port defaults to 80 or 443, the path to `/`.
    pub fn parse(url: &str) -> Result<Self, EndpointError> {
        let has_scheme = ["http://", "https://"].iter().any(|prefix| {
            url.as_bytes()
                .get(..prefix.len())
                .is_some_and(|start| start.eq_ignore_ascii_case(prefix.as_bytes()))
        });
        if !has_scheme {
            return Err(EndpointError::Scheme);
        }
        let uri: Uri = url.parse().map_err(EndpointError::NotAUrl)?;
        let tls = uri.scheme_str() == Some("https");
        let authority = uri
            .authority()
            .filter(|a| !a.host().is_empty())
            .ok_or(EndpointError::NoHost)?;
        if authority.as_str().contains('@') {
            return Err(EndpointError::Credentials);
        }
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            return Err(EndpointError::NoHost);
        }
        Ok(Self {
            tls,
            host: host.to_owned(),
            port: authority.port_u16().unwrap_or(if tls { 443 } else { 80 }),
            authority: authority.as_str().to_owned(),
            path_and_query: uri
                .path_and_query()
                .map_or_else(|| "/".to_owned(), ToString::to_string),
        })
    }

    /// Whether the connection is TLS (`https://`).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The host without IPv6 brackets: the name to resolve and to ask TLS for.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `host:port` to connect to, IPv6 literals in brackets.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// `host[:port]` as written: the `Host` header, and what messages may name (not the path).
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The request target: path and query, `/` when the URL has no path.
    pub fn path_and_query(&self) -> &str {
        &self.path_and_query
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(url: &str, tls: bool, address: &str, authority: &str, path: &str) {
        let e = HttpEndpoint::parse(url).unwrap();
        assert_eq!(
            (e.is_tls(), e.address(), e.authority(), e.path_and_query()),
            (tls, address.to_owned(), authority, path),
            "{url}"
        );
    }

    #[test]
    fn takes_urls_apart() {
        check(
            "http://example.org",
            false,
            "example.org:80",
            "example.org",
            "/",
        );
        check(
            "https://example.org/health?full=1",
            true,
            "example.org:443",
            "example.org",
            "/health?full=1",
        );
        check(
            "http://127.0.0.1:8080/x",
            false,
            "127.0.0.1:8080",
            "127.0.0.1:8080",
            "/x",
        );
        check("https://[::1]:8443/", true, "[::1]:8443", "[::1]:8443", "/");
        check("HTTPS://h/X", true, "h:443", "h", "/X");
        check("http://h?a=1", false, "h:80", "h", "/?a=1");
        let e = HttpEndpoint::parse("http://[::1]:9093").unwrap();
        assert_eq!((e.host(), e.port()), ("::1", 9093));
        let e = HttpEndpoint::parse("https://hooks.slack.com/services/T/B/X").unwrap();
        assert_eq!((e.host(), e.port()), ("hooks.slack.com", 443));
    }

    #[test]
    fn refuses_what_is_not_an_http_endpoint() {
        for (url, expected) in [
            ("ftp://example.org/", "must start with http:// or https://"),
            ("example.org", "must start with http:// or https://"),
            ("/health", "must start with http:// or https://"),
            ("", "must start with http:// or https://"),
            (
                "http://user:pw@host/",
                "user:password@ in the URL is not supported",
            ),
            ("http://exa mple/", "not a URL ("),
        ] {
            let error = HttpEndpoint::parse(url).unwrap_err().to_string();
            assert!(error.starts_with(expected), "{url}: {error}");
        }
        for url in ["http:///x", "http://", "https://:443/"] {
            assert!(HttpEndpoint::parse(url).is_err(), "{url}");
        }
    }

    #[test]
    fn errors_never_echo_the_url() {
        for url in [
            "ftp://h/secret-token",
            "http://h/secret token",
            "http://u@h/secret-token",
        ] {
            let error = HttpEndpoint::parse(url).unwrap_err().to_string();
            assert!(!error.contains("secret"), "{url}: {error}");
        }
    }
}

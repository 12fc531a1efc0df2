//! The web dashboard's files, embedded in the binary: the collector serves its own face with no
//! CDN, no separate server and no build step (plain JavaScript modules, uPlot vendored from the
//! npm registry under `assets/vendor/uplot/`, its licence beside it).
//!
//! Caching: the app shell names its assets under a version directory,
//! `/assets/<version>/app.js`, where the version is a hash of every embedded file, so the
//! modules' relative imports stay inside one version and a new binary's files are new URLs.
//! Versioned files may be cached forever; anything else is revalidated by its ETag. The shell
//! and the login page are always revalidated. HTTP itself lives in `http/dashboard.rs`.

use std::sync::LazyLock;

/// One embedded file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    pub bytes: &'static [u8],
    pub content_type: &'static str,
    /// A strong ETag: the hash of the bytes, quoted.
    pub etag: &'static str,
}

/// How long a browser may keep what it fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caching {
    /// Under the current version directory: never changes.
    Immutable,
    /// Revalidate every time (a 304 when the ETag still matches).
    Revalidate,
}

impl Caching {
    pub fn header(self) -> &'static str {
        match self {
            Caching::Immutable => "public, max-age=31536000, immutable",
            Caching::Revalidate => "no-cache",
        }
    }
}

/// The served files, by path under `/assets/`.
const FILES: &[(&str, &[u8])] = &[
    ("app.js", include_bytes!("assets/app.js")),
    ("chart.js", include_bytes!("assets/chart.js")),
    ("format.js", include_bytes!("assets/format.js")),
    ("live.js", include_bytes!("assets/live.js")),
    ("login.js", include_bytes!("assets/login.js")),
    ("style.css", include_bytes!("assets/style.css")),
    ("pages/fleet.js", include_bytes!("assets/pages/fleet.js")),
    ("pages/node.js", include_bytes!("assets/pages/node.js")),
    ("pages/alerts.js", include_bytes!("assets/pages/alerts.js")),
    (
        "pages/anomalies.js",
        include_bytes!("assets/pages/anomalies.js"),
    ),
    (
        "pages/quality.js",
        include_bytes!("assets/pages/quality.js"),
    ),
    ("pages/trends.js", include_bytes!("assets/pages/trends.js")),
    (
        "pages/explore.js",
        include_bytes!("assets/pages/explore.js"),
    ),
    (
        "pages/compare.js",
        include_bytes!("assets/pages/compare.js"),
    ),
    (
        "pages/experiments.js",
        include_bytes!("assets/pages/experiments.js"),
    ),
    (
        "vendor/uplot/uPlot.iife.min.js",
        include_bytes!("assets/vendor/uplot/uPlot.iife.min.js"),
    ),
    (
        "vendor/uplot/uPlot.min.css",
        include_bytes!("assets/vendor/uplot/uPlot.min.css"),
    ),
    (
        "vendor/uplot/LICENSE",
        include_bytes!("assets/vendor/uplot/LICENSE"),
    ),
];

/// The app shell's and the login page's templates; `{{v}}` becomes the version.
const SHELL: &str = include_str!("assets/index.html");
const LOGIN: &str = include_str!("assets/login.html");

/// FNV-1a, 64 bits: enough to tell versions of a few files apart, not a security boundary.
fn fnv(bytes: impl IntoIterator<Item = u8>, mut hash: u64) -> u64 {
    for byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// The version directory's name: a hash of every file and both pages.
pub static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut hash = FNV_OFFSET;
    for (path, bytes) in FILES {
        hash = fnv(path.bytes(), hash);
        hash = fnv(bytes.iter().copied(), hash);
    }
    hash = fnv(SHELL.bytes().chain(LOGIN.bytes()), hash);
    format!("v{hash:016x}")
});

static ASSETS: LazyLock<Vec<(&'static str, Asset)>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|&(path, bytes)| {
            let etag = format!("\"{:016x}\"", fnv(bytes.iter().copied(), FNV_OFFSET));
            let asset = Asset {
                bytes,
                content_type: content_type(path),
                etag: Box::leak(etag.into_boxed_str()),
            };
            (path, asset)
        })
        .collect()
});

/// A page (the shell or the login page) with its version filled in.
fn page(template: &str) -> Asset {
    let text = template.replace("{{v}}", &VERSION);
    let etag = format!("\"{:016x}\"", fnv(text.bytes(), FNV_OFFSET));
    Asset {
        bytes: Box::leak(text.into_bytes().into_boxed_slice()),
        content_type: "text/html; charset=utf-8",
        etag: Box::leak(etag.into_boxed_str()),
    }
}

/// The single-page app's shell, served at `/`.
pub static APP_SHELL: LazyLock<Asset> = LazyLock::new(|| page(SHELL));

/// The login page, served at `/login`.
pub static LOGIN_PAGE: LazyLock<Asset> = LazyLock::new(|| page(LOGIN));

/// The file at `path` (what follows `/assets/`) and how long it may be cached; `None` for a
/// path that names no file. A leading version directory is taken off: the current one makes
/// the file immutable, an older one (a page loaded before an upgrade) gets today's file,
/// revalidated.
pub fn asset(path: &str) -> Option<(Asset, Caching)> {
    let (rest, caching) = match path.split_once('/') {
        Some((dir, rest)) if dir == VERSION.as_str() => (rest, Caching::Immutable),
        Some((dir, rest)) if is_version(dir) => (rest, Caching::Revalidate),
        _ => (path, Caching::Revalidate),
    };
    let (_, asset) = ASSETS.iter().find(|(p, _)| *p == rest)?;
    Some((*asset, caching))
}

/// Whether `dir` looks like a version directory (`v` and 16 hex digits).
fn is_version(dir: &str) -> bool {
    dir.len() == 17 && dir.starts_with('v') && dir[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

/// The Content-Type of a file by its extension.
fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("html") => "text/html; charset=utf-8",
        Some("svg") => "image/svg+xml",
        _ => "text/plain; charset=utf-8",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_found_by_path_with_their_type_and_caching() {
        let (js, caching) = asset("app.js").unwrap();
        assert_eq!(js.content_type, "text/javascript; charset=utf-8");
        assert_eq!(caching, Caching::Revalidate);
        let versioned = format!("{}/pages/fleet.js", *VERSION);
        let (fleet, caching) = asset(&versioned).unwrap();
        assert_eq!(caching, Caching::Immutable);
        assert!(fleet.etag.starts_with('"') && fleet.etag.ends_with('"'));
        let (css, _) = asset("v0123456789abcdef/style.css").unwrap();
        assert_eq!(css.content_type, "text/css; charset=utf-8");
        let (licence, _) = asset("vendor/uplot/LICENSE").unwrap();
        assert_eq!(licence.content_type, "text/plain; charset=utf-8");
        for missing in ["nope.js", "", "../mod.rs", "pages", "vendor/uplot/README"] {
            assert!(asset(missing).is_none(), "{missing}");
        }
    }

    #[test]
    fn the_pages_name_their_assets_under_the_current_version() {
        let shell = std::str::from_utf8(APP_SHELL.bytes).unwrap();
        assert!(shell.contains(&format!("/assets/{}/app.js", *VERSION)));
        assert!(!shell.contains("{{v}}"));
        let login = std::str::from_utf8(LOGIN_PAGE.bytes).unwrap();
        assert!(login.contains(&format!("/assets/{}/login.js", *VERSION)));
        assert!(is_version(&VERSION));
    }
}

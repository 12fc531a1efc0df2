//! The collector's structure, checked from its source: the modules form the one-way layers
//! ARCHITECTURE.md draws, no two files import each other (directly or through others), and no
//! file's non-test part outgrows one job (800 lines). Reads `use` paths and `crate::`/`super::`
//! references as text, outside `#[cfg(test)]` sections, the way a reviewer would.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules of the collector crate, from the top layer down. A module may use only
/// modules of a later row; a row's modules do not use each other.
const LAYERS: &[&[&str]] = &[
    &["upkeep", "config", "fuzzing"],
    &["http"],
    &["forget", "api", "recorded", "live", "report"],
    &["alerting"],
    &["slo", "node_forest"],
    &[
        "anomaly_watch",
        "quality",
        "analysis",
        "replay",
        "before_after",
    ],
    &["ingest", "forward"],
    &["query", "export"],
    &["catalog"],
    &["pki"],
    &["audit", "access"],
    &["storage"],
    &["analytics", "pair"],
    &[
        "clock",
        "tasks",
        "runtime_lag",
        "telemetry",
        "heap",
        "json_f64",
        "secure_random",
        "outbound",
        "dashboard",
        "self_tracing",
    ],
];

/// Longest non-test part of a source file.
const MAX_LINES: usize = 800;

fn collector_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../collector/src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source folder") {
        let path = entry.expect("readable entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A file's text up to its first `#[cfg(test)]` item.
fn non_test(text: &str) -> &str {
    match text.find("\n#[cfg(test)]") {
        Some(at) => &text[..at],
        None => text,
    }
}

/// Files that exist only for tests (declared under `#[cfg(test)]` by their parent).
fn test_only(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.ends_with("tests.rs") || name == "testing.rs" || name == "test_support.rs"
}

/// The module path of a file relative to `src` (`alerting/book/mod.rs` → `alerting::book`).
fn module_of(src: &Path, path: &Path) -> Vec<String> {
    let rel = path.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
        .collect();
    if parts
        .last()
        .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
    {
        parts.pop();
    }
    parts
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every module path referenced from `text` as `crate::a::b…`, `super::a…` or `self::a…`,
/// resolved against `module` (the file's own path); grouped imports (`crate::{a, b::c}`)
/// are expanded one level.
fn references(module: &[String], text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    // `super` is the parent of the file's module, whether the file is a mod.rs or a leaf.
    let parent = module[..module.len().saturating_sub(1)].to_vec();
    for (prefix, base) in [
        ("crate::", Vec::new()),
        ("super::", parent),
        ("self::", module.to_vec()),
    ] {
        let mut rest = text;
        while let Some(at) = rest.find(prefix) {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + prefix.len()..];
            if before.is_some_and(|c| is_ident(c) || c == ':') {
                continue;
            }
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    let path = item.trim();
                    let segments = path
                        .split("::")
                        .map(|s| s.trim().trim_start_matches('{'))
                        .take_while(|s| !s.is_empty() && s.chars().all(is_ident))
                        .map(str::to_owned);
                    let mut full = base.clone();
                    full.extend(segments);
                    out.push(full);
                }
                continue;
            }
            let path: String = rest
                .chars()
                .take_while(|&c| is_ident(c) || c == ':')
                .collect();
            let mut full = base.clone();
            full.extend(
                path.split("::")
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            );
            out.push(full);
        }
    }
    out
}

struct Source {
    module: Vec<String>,
    is_mod_file: bool,
    text: String,
    lines: usize,
}

fn sources() -> BTreeMap<PathBuf, Source> {
    let src = collector_src();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files
        .into_iter()
        .filter(|p| !test_only(p) && !p.starts_with(src.join("bin")))
        .map(|path| {
            let full = std::fs::read_to_string(&path).expect("readable source");
            let text = non_test(&full).to_owned();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let source = Source {
                module: module_of(&src, &path),
                is_mod_file: matches!(name, "mod.rs" | "lib.rs" | "main.rs"),
                lines: text.lines().count(),
                text,
            };
            (path, source)
        })
        .collect()
}

#[test]
fn top_level_modules_only_use_the_layers_below_them() {
    let rank: BTreeMap<&str, usize> = LAYERS
        .iter()
        .enumerate()
        .flat_map(|(i, row)| row.iter().map(move |m| (*m, i)))
        .collect();
    let mut wrong = BTreeSet::new();
    for (path, source) in sources() {
        let Some(from) = source.module.first() else {
            continue; // lib.rs and main.rs wire everything
        };
        let from_rank = *rank
            .get(from.as_str())
            .unwrap_or_else(|| panic!("{}: module {from} is in no layer", path.display()));
        for reference in references(&source.module, &source.text) {
            let Some(to) = reference.first() else {
                continue;
            };
            if to == from {
                continue;
            }
            let Some(&to_rank) = rank.get(to.as_str()) else {
                continue; // an item of lib.rs, not a module
            };
            if to_rank <= from_rank {
                wrong.insert(format!("{from} → {to} ({})", path.display()));
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layers: {wrong:#?}");
}

/// The file a module path lands in: the longest prefix that is a file.
fn resolve<'a>(
    by_module: &'a BTreeMap<Vec<String>, PathBuf>,
    path: &[String],
) -> Option<&'a PathBuf> {
    (1..=path.len())
        .rev()
        .find_map(|n| by_module.get(&path[..n]))
}

#[test]
fn no_two_files_import_each_other_even_through_others() {
    let sources = sources();
    let by_module: BTreeMap<Vec<String>, PathBuf> = sources
        .iter()
        .map(|(path, s)| (s.module.clone(), path.clone()))
        .collect();
    // mod.rs files declare and re-export their children, so edges through them are not
    // imports between peers: they are left out.
    let mut edges: BTreeMap<&PathBuf, BTreeSet<&PathBuf>> = BTreeMap::new();
    for (path, source) in &sources {
        if source.is_mod_file {
            continue;
        }
        for reference in references(&source.module, &source.text) {
            if let Some(target) = resolve(&by_module, &reference)
                && target != path
                && !sources[target].is_mod_file
            {
                edges.entry(path).or_default().insert(target);
            }
        }
    }
    // Depth-first search for a back edge.
    fn visit<'a>(
        node: &'a PathBuf,
        edges: &BTreeMap<&'a PathBuf, BTreeSet<&'a PathBuf>>,
        state: &mut BTreeMap<&'a PathBuf, bool>,
        stack: &mut Vec<&'a PathBuf>,
    ) -> Option<Vec<&'a PathBuf>> {
        match state.get(node) {
            Some(true) => return None,
            Some(false) => {
                let start = stack.iter().position(|n| *n == node).unwrap_or(0);
                return Some(stack[start..].to_vec());
            }
            None => {}
        }
        state.insert(node, false);
        stack.push(node);
        for next in edges.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, edges, state, stack) {
                return Some(circle);
            }
        }
        stack.pop();
        state.insert(node, true);
        None
    }
    let mut state = BTreeMap::new();
    for node in edges.keys() {
        let mut stack = Vec::new();
        if let Some(circle) = visit(node, &edges, &mut state, &mut stack) {
            let names: Vec<_> = circle.iter().map(|p| p.display().to_string()).collect();
            panic!("files that import each other: {names:#?}");
        }
    }
}

#[test]
fn no_file_outgrows_one_job() {
    let mut long: Vec<_> = sources()
        .into_iter()
        .filter(|(_, s)| s.lines > MAX_LINES)
        .map(|(path, s)| format!("{}: {} lines", path.display(), s.lines))
        .collect();
    long.sort();
    assert!(
        long.is_empty(),
        "non-test parts over {MAX_LINES} lines: {long:#?}"
    );
}

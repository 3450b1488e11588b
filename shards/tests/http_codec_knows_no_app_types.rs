//! The HTTP/1 codec (`shards/src/http/`) depends on nothing of the app
//! layer: it encodes the protocol-neutral `message::ResponseParts`, never a
//! `Response`, `Body`, `Request`, `App`, router or tower type. That keeps
//! the dependency one way (app → codec), so another codec can sit beside
//! it and the app API can change without touching the wire format.
//!
//! The check reads the sources: every `crate::…` path in code (comments
//! aside) of a file under `http/` must start with a module of
//! [`NEUTRAL`], and so must those modules' own `crate::…` paths, so the
//! codec cannot reach the app layer through them either.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The crate's modules the codec may use: itself, the neutral response
/// description, and the limits it enforces. Anything else — `app`,
/// `request`, `response`, `body`, `router`, `tower`, `apps`, … — is the app
/// layer, or may reach it.
const NEUTRAL: &[&str] = &["http", "message", "limits"];

/// The files of the neutral modules other than `http/`.
const NEUTRAL_FILES: &[&str] = &["message.rs", "limits.rs"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {dir:?}: {e}")) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
    files
}

/// The code of `source` without its comments (line comments, doc comments
/// and block comments); string contents are kept, which can only make the
/// check stricter.
fn code_of(source: &str) -> String {
    let mut code = String::with_capacity(source.len());
    let mut rest = source;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("//") {
            rest = after.find('\n').map_or("", |end| &after[end..]);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.find("*/").map_or("", |end| &after[end + 2..]);
        } else {
            let c = rest.chars().next().expect("not empty");
            code.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    code
}

/// The first module of every `crate::` path in `source`'s code, grouped
/// imports (`use crate::{a::X, b}`) included. A `super::super` path is
/// reported as such: it could climb out of `http/` unseen, so the codec
/// writes paths out of its own file with `crate::`.
fn crate_modules_used(source: &str) -> BTreeSet<String> {
    let code = code_of(source);
    let mut used = BTreeSet::new();
    if code.contains("super::super") {
        used.insert("super::super".to_owned());
    }
    for (at, _) in code.match_indices("crate::") {
        let after = code[at + "crate::".len()..].trim_start();
        if let Some(group) = after.strip_prefix('{') {
            let mut depth = 1;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 0 || (c == ',' && depth == 1) {
                    used.insert(first_segment(&item));
                    item.clear();
                    if depth == 0 {
                        break;
                    }
                } else {
                    item.push(c);
                }
            }
        } else {
            used.insert(first_segment(after));
        }
    }
    used.remove("");
    used
}

fn first_segment(path: &str) -> String {
    path.trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// `(file, module)` for every use of a module outside [`NEUTRAL`].
fn app_layer_uses(files: &[PathBuf]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for file in files {
        let source = fs::read_to_string(file).unwrap_or_else(|e| panic!("{file:?}: {e}"));
        for module in crate_modules_used(&source) {
            if !NEUTRAL.contains(&module.as_str()) {
                let shown = file.strip_prefix(src()).unwrap_or(file);
                found.push((shown.display().to_string(), module));
            }
        }
    }
    found
}

#[test]
fn no_file_under_http_uses_the_app_layer() {
    let files = rust_files(&src().join("http"));
    assert!(
        files.len() >= 5,
        "the codec's files were not found: {files:?}"
    );
    let found = app_layer_uses(&files);
    assert!(
        found.is_empty(),
        "the HTTP/1 codec must not depend on the app layer (allowed: crate::{NEUTRAL:?}); \
         found (file, module): {found:?}"
    );
}

#[test]
fn the_neutral_modules_do_not_use_the_app_layer_either() {
    let files: Vec<PathBuf> = NEUTRAL_FILES.iter().map(|file| src().join(file)).collect();
    let found = app_layer_uses(&files);
    assert!(
        found.is_empty(),
        "a module the codec may use reaches the app layer; found (file, module): {found:?}"
    );
}

/// The scanner finds every form an import of the app layer can take, and
/// ignores comments.
#[test]
fn the_scan_finds_app_imports_in_every_form() {
    let source = "
        //! Docs may link [`Response`](crate::Response).
        use crate::message::ResponseParts;
        use crate::{limits::Limits, response::Response,
            body::{Body, BodyStream}};
        /* crate::app in a block comment */
        fn f(r: &crate::request::Request<'_>) { let _ = super::super::router::Router::new(); }
    ";
    let used: Vec<String> = crate_modules_used(source).into_iter().collect();
    assert_eq!(
        used,
        [
            "body",
            "limits",
            "message",
            "request",
            "response",
            "super::super"
        ]
    );
}

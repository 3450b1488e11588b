//! The user guide (README.md and the mdBook in docs/) stays compiled: every
//! chapter listed in docs/src/SUMMARY.md is one of the doc-test modules in
//! src/lib.rs, so `cargo test --doc` builds its Rust examples. A chapter
//! added to the book but not to src/lib.rs would escape that.

use std::path::Path;

/// Chapters with no Rust of their own (the benchmark record is BENCHMARKS.md,
/// whose blocks are command output).
const NOT_COMPILED: &[&str] = &["benchmark-record.md"];

fn read(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("cannot read {}: {e}", full.display()))
}

/// The `.md` files SUMMARY.md links to, in order.
fn chapters(summary: &str) -> Vec<&str> {
    summary
        .split("](")
        .skip(1)
        .filter_map(|rest| rest.split(')').next())
        .filter(|target| target.ends_with(".md"))
        .collect()
}

#[test]
fn every_chapter_of_the_book_is_compiled_as_doc_tests() {
    let summary = read("docs/src/SUMMARY.md");
    let lib = read("src/lib.rs");
    let chapters = chapters(&summary);
    assert!(
        chapters.len() >= 10,
        "SUMMARY.md lists chapters: {chapters:?}"
    );
    let missing: Vec<_> = chapters
        .iter()
        .filter(|chapter| !NOT_COMPILED.contains(chapter))
        .filter(|chapter| !lib.contains(&format!("\"../docs/src/{chapter}\"")))
        .collect();
    assert!(
        missing.is_empty(),
        "chapters not included as doc tests in src/lib.rs (mod user_guide): {missing:?}"
    );
    assert!(
        lib.contains("\"../README.md\""),
        "README.md is not compiled as doc tests"
    );
}

#[test]
fn every_chapter_file_is_in_the_summary() {
    let summary = read("docs/src/SUMMARY.md");
    let listed = chapters(&summary);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/src");
    for entry in std::fs::read_dir(&dir).expect("docs/src") {
        let name = entry
            .expect("a directory entry")
            .file_name()
            .into_string()
            .expect("UTF-8");
        if name.ends_with(".md") && name != "SUMMARY.md" {
            assert!(
                listed.contains(&name.as_str()),
                "docs/src/{name} is not in SUMMARY.md"
            );
        }
    }
}

/// The README's first app is `tests/examples/hello.rs`, which
/// tests/shutdown.rs runs and stops with Ctrl-C: what a newcomer pastes is
/// what is tested to serve until Ctrl-C and drain.
#[test]
fn the_readme_app_is_the_tested_hello_example() {
    let readme = read("README.md");
    let start = readme.find("```rust").expect("the README has a Rust block");
    let body = &readme[start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    let block = &body[..body.find("```").expect("the block ends")];
    let hello = read("tests/examples/hello.rs");
    let code = &hello[hello.find("use shardd::").expect("hello.rs uses shardd")..];
    assert_eq!(
        block, code,
        "README.md's first Rust block differs from tests/examples/hello.rs"
    );
}

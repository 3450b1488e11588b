//! The house rules a reviewer would otherwise check by hand.

use std::path::{Path, PathBuf};

/// Longest a source file of either crate (`src/`, `shards/src/`) may be: one
/// role per file, readable top-down by a newcomer. A file that grows past it
/// is split by role (see `src/server/`, `src/config/`, `shards/src/access_log/`).
const MAX_LINES: usize = 500;

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// Files of the crate directory `dir` (relative to the workspace root) over
/// [`MAX_LINES`], as "path (N lines)", sorted.
fn files_over_the_limit(dir: &str, at_least: usize) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(
        files.len() >= at_least,
        "found only {files:?} under {}",
        root.display()
    );
    let mut too_long: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let text = std::fs::read_to_string(path).expect("readable source file");
            let lines = text.lines().count();
            (lines > MAX_LINES).then(|| format!("{} ({lines} lines)", path.display()))
        })
        .collect();
    too_long.sort();
    too_long
}

#[test]
fn no_file_in_src_is_over_500_lines() {
    let too_long = files_over_the_limit("src", 20);
    assert!(
        too_long.is_empty(),
        "files over {MAX_LINES} lines; split them by role: {too_long:#?}"
    );
}

#[test]
fn no_file_in_shards_src_is_over_500_lines() {
    let too_long = files_over_the_limit("shards/src", 40);
    assert!(
        too_long.is_empty(),
        "files over {MAX_LINES} lines; split them by role: {too_long:#?}"
    );
}

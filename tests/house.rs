//! The house rules a reviewer would otherwise check by hand.

use std::path::{Path, PathBuf};

/// Longest a file of the main thread's crate (`src/`) may be: one role per
/// file, readable top-down by a newcomer. A file that grows past it is
/// split by role (see `src/server/` and `src/config/`).
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

#[test]
fn no_file_in_src_is_over_500_lines() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(
        files.len() > 20,
        "found only {files:?} under {}",
        src.display()
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
    assert!(
        too_long.is_empty(),
        "files over {MAX_LINES} lines; split them by role: {too_long:#?}"
    );
}

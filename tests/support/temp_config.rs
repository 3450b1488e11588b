//! A config file for one test, in the temp dir, removed on drop.

use std::path::PathBuf;

/// A config file in the temp dir (named after the test process and `name`), removed on drop.
pub struct TempConfig(PathBuf);

impl TempConfig {
    /// Writes `text` to a new file for this process and `name`.
    pub fn new(name: &str, text: &str) -> TempConfig {
        let path =
            std::env::temp_dir().join(format!("shardd-test-{}-{name}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        TempConfig(path)
    }

    /// The file's path, for `--config`.
    pub fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

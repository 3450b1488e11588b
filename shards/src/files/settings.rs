//! [`StaticSettings`]: one directory served under a path prefix (a
//! `[[static]]` table of `config/shardd.toml`, or `--static /prefix=DIR`).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// One directory served under a prefix. See `config/shardd.toml`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StaticSettings {
    /// The URL path the directory is served under (`/assets`; `/` for all).
    pub prefix: String,
    /// The directory served.
    pub dir: PathBuf,
    /// `Cache-Control` sent with every file (`"public, max-age=3600"`);
    /// `None`: no such field.
    pub cache_control: Option<String>,
    /// Files tried, in order, for a path that names a directory; none
    /// found is a `404` (directories are never listed).
    pub index: Vec<String>,
    /// Serve `x.br`, `x.zst` or `x.gz` beside `x` when the client accepts
    /// that coding (and send `Vary: Accept-Encoding`).
    pub precompressed: bool,
    /// Follow symlinks that lead out of `dir` (off: such a link is a `404`).
    pub follow_symlinks: bool,
    /// Serve paths with a segment starting with `.` (`/.env`, `/.git/config`).
    /// Off: such a path is a `404`, as if missing, except under
    /// `/.well-known/` (RFC 8615), which is always served.
    pub dotfiles: bool,
    /// Open files each shard keeps (descriptors), like nginx's `open_file_cache max=`.
    pub open_file_cache_entries: usize,
    /// How long a cached lookup is trusted before the file is looked up
    /// again, in milliseconds (nginx's `open_file_cache_valid`).
    pub open_file_cache_valid_ms: u64,
}

impl Default for StaticSettings {
    fn default() -> Self {
        StaticSettings {
            prefix: "/".to_owned(),
            // No default directory: a `[[static]]` table that forgets `dir`
            // is refused, rather than serving the working directory.
            dir: PathBuf::new(),
            cache_control: None,
            index: vec!["index.html".to_owned()],
            precompressed: true,
            follow_symlinks: false,
            dotfiles: false,
            open_file_cache_entries: 1024,
            open_file_cache_valid_ms: 1000,
        }
    }
}

impl StaticSettings {
    /// Serve `dir` under `prefix`, the other settings at their defaults.
    pub fn new(prefix: impl Into<String>, dir: impl Into<PathBuf>) -> Self {
        StaticSettings {
            prefix: prefix.into(),
            dir: dir.into(),
            ..StaticSettings::default()
        }
    }

    /// Parse `--static`'s `/prefix=DIR`.
    pub fn parse_flag(flag: &str) -> Result<Self, String> {
        let (prefix, dir) = flag
            .split_once('=')
            .ok_or_else(|| format!("{flag:?}: expected /PREFIX=DIR"))?;
        let settings = StaticSettings::new(prefix, dir);
        settings.validate()?;
        Ok(settings)
    }

    /// Check the settings make sense (not that the directory exists: that
    /// is checked when a shard opens it).
    pub fn validate(&self) -> Result<(), String> {
        if !self.prefix.starts_with('/') {
            return Err(format!("static prefix {:?} must start with /", self.prefix));
        }
        if self.dir.as_os_str().is_empty() {
            return Err(format!(
                "static prefix {:?}: dir is missing (the directory to serve)",
                self.prefix
            ));
        }
        if let Some(value) = &self.cache_control {
            if value.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f) {
                return Err("static cache_control holds a control character".to_owned());
            }
        }
        if self
            .index
            .iter()
            .any(|name| name.is_empty() || name.contains('/'))
        {
            return Err("static index names must be plain file names".to_owned());
        }
        Ok(())
    }

    pub(crate) fn cache_valid(&self) -> Duration {
        Duration::from_millis(self.open_file_cache_valid_ms)
    }
}

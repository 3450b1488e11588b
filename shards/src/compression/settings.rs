//! `CompressionSettings`: when responses are compressed and how hard, the
//! `[compression]` table of `config/shardd.toml`.

use serde::Deserialize;

/// Response compression settings, the `[compression]` table of
/// `config/shardd.toml`.
///
/// The defaults favour CPU: each level was chosen by measured CPU per
/// byte on JSON (a 5 KiB list, one core of a 2-core VM, the encoder state
/// reused as `Compressed` reuses it): gzip 1 ≈ 1.4 ns/byte (ratio 0.19),
/// zstd 3 ≈ 1.7 ns/byte (0.11), brotli 4 ≈ 11 ns/byte (0.10; brotli 1 is
/// ≈ 4.5 ns/byte for 0.14).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompressionSettings {
    /// Compress responses (the `shardd` binary's `--compress`). Off by
    /// default: compression costs CPU on every response, and a CDN or
    /// proxy in front often does it already.
    pub enabled: bool,
    /// Smallest body, in bytes, worth compressing: below ~200 bytes of
    /// JSON, gzip's output plus its 18-byte frame and the
    /// `Content-Encoding` field is larger than the body (measured: 150
    /// bytes give 131 + 42, 256 give 159 + 42). Streamed bodies (of
    /// unknown length) are always compressed.
    pub min_size: usize,
    /// gzip level, 0 (stored) to 9 (smallest). 1 is what HttpArena's
    /// actix-web entry uses; on a 6 KiB JSON list level 1 costs 1.5
    /// ns/byte for 1128 bytes, 2 costs 2.8 for 890 (zlib-rs's level 1 is
    /// its fastest strategy: ~12% larger than miniz_oxide's level 1).
    pub gzip_level: u32,
    /// brotli quality, 0 to 11. 4 is tower-http's default; 11 (brotli's
    /// own default) is meant for precompressed files, ~50× slower.
    pub brotli_level: u32,
    /// zstd level, 1 to 22 (zstd's own default is 3).
    pub zstd_level: i32,
}

impl Default for CompressionSettings {
    fn default() -> Self {
        CompressionSettings {
            enabled: false,
            min_size: 256,
            gzip_level: 1,
            brotli_level: 4,
            zstd_level: 3,
        }
    }
}

impl CompressionSettings {
    /// The defaults, turned on.
    pub fn on() -> Self {
        CompressionSettings {
            enabled: true,
            ..CompressionSettings::default()
        }
    }

    /// Check the levels are ones the encoders accept; the message names
    /// the setting as `config/shardd.toml` spells it.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.gzip_level > 9 {
            return Err("compression.gzip_level must be 0 to 9");
        }
        if self.brotli_level > 11 {
            return Err("compression.brotli_level must be 0 to 11");
        }
        if !(1..=22).contains(&self.zstd_level) {
            return Err("compression.zstd_level must be 1 to 22");
        }
        Ok(())
    }
}

//! The access-log formats by name, as the config file and the flags spell them.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

/// How each access-log line is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessLogFormat {
    /// Apache's Common Log Format:
    /// `127.0.0.1 - - [23/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 13`.
    Common,
    /// `common` then the `Referer` and `User-Agent` request fields, quoted
    /// (Apache's and nginx's default).
    #[default]
    Combined,
    /// One JSON object per line: time, shard, peer, method, target, version,
    /// status, bytes, duration_us, referer, user_agent.
    Json,
}

impl AccessLogFormat {
    /// Every format's name, as the config file and the flags spell it.
    pub const NAMES: [&'static str; 3] = ["common", "combined", "json"];

    /// The name, as the config file and the flags spell it.
    pub fn name(self) -> &'static str {
        match self {
            AccessLogFormat::Common => "common",
            AccessLogFormat::Combined => "combined",
            AccessLogFormat::Json => "json",
        }
    }
}

impl FromStr for AccessLogFormat {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "common" => Ok(AccessLogFormat::Common),
            "combined" => Ok(AccessLogFormat::Combined),
            "json" => Ok(AccessLogFormat::Json),
            _ => Err(format!(
                "unknown access-log format {name:?} (expected common, combined or json)"
            )),
        }
    }
}

impl fmt::Display for AccessLogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

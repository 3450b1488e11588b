//! The server configuration: defaults, the TOML file, and validation.
//!
//! `config/shardd.toml` documents every setting. Command-line flags
//! override the file (see `cli.rs`). Unknown keys and bad values are errors
//! that name the setting.

use std::convert::Infallible;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use shardd_shards::runtime::ShardConfig;
use shardd_shards::{AccessLogFormat, Limits, MAX_HEADERS_CAP};

use crate::error::Error;

/// Where shards get their connections from.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ListenerMode {
    /// The main thread accepts and hands each connection to a shard over a channel.
    #[default]
    Handoff,
    /// Each shard accepts on its own SO_REUSEPORT socket; the kernel balances.
    Reuseport,
}

/// How the acceptor picks a shard.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DispatchPolicy {
    /// Next shard in turn, skipping full or dead ones.
    #[default]
    RoundRobin,
    /// The shard with the fewest queued + open connections.
    LeastConnections,
}

/// What happens when every shard is full and the pending queue too.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum OverloadPolicy {
    /// Answer 503 with Retry-After from the main thread and close.
    #[default]
    Reject,
    /// Stop accepting; the kernel's listen backlog holds new connections.
    Backlog,
}

/// How the server's own log lines (start-up, warnings, errors) are written.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// Human-readable lines: time, level, target, message.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Where the access log goes. In the config file and on the command line:
/// `""` is off, `"-"` is standard output, anything else a file path.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(from = "String")]
pub enum AccessLogTarget {
    /// No access log (the default: nothing is formatted or written).
    #[default]
    Off,
    /// Standard output.
    Stdout,
    /// A file, appended to, created if missing.
    File(PathBuf),
}

impl From<String> for AccessLogTarget {
    fn from(text: String) -> Self {
        match text.as_str() {
            "" => AccessLogTarget::Off,
            "-" => AccessLogTarget::Stdout,
            _ => AccessLogTarget::File(PathBuf::from(text)),
        }
    }
}

impl FromStr for AccessLogTarget {
    type Err = Infallible;

    fn from_str(text: &str) -> Result<Self, Infallible> {
        Ok(AccessLogTarget::from(text.to_owned()))
    }
}

impl fmt::Display for AccessLogTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccessLogTarget::Off => f.write_str("off"),
            AccessLogTarget::Stdout => f.write_str("standard output"),
            AccessLogTarget::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// Logs: the server's own, and the access log (the `[log]` table).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Logging {
    /// How the server's own log lines are written (the `shardd` binary
    /// honours this; the library only logs through the `log` facade).
    pub format: LogFormat,
    /// Where the access log goes; off by default.
    pub access_log: AccessLogTarget,
    /// How each access-log line is written.
    pub access_log_format: AccessLogFormat,
    /// Full 64 KiB buffers of access-log lines that may wait for the
    /// writer (a slow disk, a writer thread not scheduled); when that many
    /// wait, shards drop lines (and count them) instead of waiting.
    pub access_log_buffers: usize,
}

impl Default for Logging {
    fn default() -> Self {
        Logging {
            format: LogFormat::Text,
            access_log: AccessLogTarget::Off,
            access_log_format: AccessLogFormat::Combined,
            access_log_buffers: 256,
        }
    }
}

/// Every setting of a shardd server.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub bind: SocketAddr,
    /// Number of shards; 0 means one per core.
    pub shards: usize,
    /// Where shards get their connections from.
    pub listener: ListenerMode,
    /// Pin each shard to its own core.
    pub pin: bool,
    /// Listen backlog (kernel queue of connections not yet accepted).
    pub backlog: u32,
    /// Capacity of each shard's handoff channel.
    pub channel_capacity: usize,
    /// Longest a drain may take, in milliseconds.
    pub drain_timeout_ms: u64,
    /// Admission control.
    pub admission: Admission,
    /// Per-connection limits and timeouts (the `[limits]` table).
    pub limits: Limits,
    /// Logs and the access log (the `[log]` table).
    pub log: Logging,
}

/// Admission control (seed 004's taskmaster, per shard).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Admission {
    /// Most connections one shard serves or has queued; 0 means no limit.
    pub max_connections_per_shard: usize,
    /// Accepted connections the main thread holds while every shard is full.
    pub max_pending: usize,
    /// What happens when every shard is full.
    pub overload: OverloadPolicy,
    /// How the acceptor picks a shard.
    pub dispatch: DispatchPolicy,
    /// Seconds sent in `Retry-After` with a 503.
    pub retry_after_secs: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            shards: 0,
            listener: ListenerMode::Handoff,
            pin: true,
            backlog: 4096,
            channel_capacity: 4096,
            drain_timeout_ms: 10_000,
            admission: Admission::default(),
            limits: Limits::default(),
            log: Logging::default(),
        }
    }
}

impl Default for Admission {
    fn default() -> Self {
        Admission {
            max_connections_per_shard: 0,
            max_pending: 1024,
            overload: OverloadPolicy::Reject,
            dispatch: DispatchPolicy::RoundRobin,
            retry_after_secs: 1,
        }
    }
}

impl Config {
    /// Read a TOML file; settings it leaves out keep their defaults.
    pub fn from_file(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ConfigFile {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text).map_err(|error| match error {
            Error::ConfigSyntax { message, .. } => Error::ConfigSyntax {
                path: Some(path.to_owned()),
                message,
            },
            other => other,
        })
    }

    /// Parse TOML text; settings it leaves out keep their defaults.
    pub fn from_toml(text: &str) -> Result<Config, Error> {
        toml::from_str(text).map_err(|error| Error::ConfigSyntax {
            path: None,
            message: error.to_string().trim_end().to_owned(),
        })
    }

    /// Check values that parse but make no sense; the message names the setting.
    pub fn validate(&self) -> Result<(), Error> {
        let l = &self.limits;
        let checks: [(bool, &str); 13] = [
            (self.shards <= 1024, "shards must be at most 1024"),
            (self.backlog >= 1, "backlog must be at least 1"),
            (
                self.channel_capacity >= 1,
                "channel_capacity must be at least 1",
            ),
            (
                self.drain_timeout_ms >= 1,
                "drain_timeout_ms must be at least 1",
            ),
            (
                l.max_request_line >= 16,
                "limits.max_request_line must be at least 16",
            ),
            (
                l.max_head_bytes >= l.max_request_line,
                "limits.max_head_bytes must be at least limits.max_request_line",
            ),
            (
                (1..=MAX_HEADERS_CAP).contains(&l.max_headers),
                "limits.max_headers must be between 1 and 128",
            ),
            (
                l.max_output_bytes >= 1,
                "limits.max_output_bytes must be at least 1",
            ),
            (
                !l.header_timeout.is_zero(),
                "limits.header_timeout_ms must be at least 1",
            ),
            (
                !l.idle_timeout.is_zero(),
                "limits.idle_timeout_ms must be at least 1",
            ),
            (
                !l.body_timeout.is_zero() && !l.send_timeout.is_zero(),
                "limits.body_timeout_ms and limits.send_timeout_ms must be at least 1",
            ),
            (
                self.admission.retry_after_secs <= 86_400,
                "admission.retry_after_secs must be at most 86400",
            ),
            (
                self.log.access_log_buffers >= 1,
                "log.access_log_buffers must be at least 1",
            ),
        ];
        if let Some((_, message)) = checks.into_iter().find(|(ok, _)| !ok) {
            return Err(Error::InvalidSetting(message));
        }
        Ok(())
    }

    /// Shards to run: the configured count, or one per core.
    pub fn shard_count(&self) -> usize {
        if self.shards > 0 {
            return self.shards;
        }
        std::thread::available_parallelism().map_or(1, |n| n.get())
    }

    /// The drain timeout as a duration.
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_millis(self.drain_timeout_ms)
    }

    pub(crate) fn shard_config(&self) -> ShardConfig {
        ShardConfig {
            limits: self.limits.clone(),
            drain_timeout: self.drain_timeout(),
            ..ShardConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_and_matches_defaults() {
        let text = include_str!("../config/shardd.toml");
        let config = Config::from_toml(text).expect("config/shardd.toml parses");
        config.validate().unwrap();
        assert_eq!(
            config,
            Config::default(),
            "the example documents the defaults"
        );
    }

    #[test]
    fn access_log_target_from_text() {
        let parse = |text: &str| {
            Config::from_toml(&format!("[log]\naccess_log = {text:?}"))
                .unwrap()
                .log
                .access_log
        };
        assert_eq!(parse(""), AccessLogTarget::Off);
        assert_eq!(parse("-"), AccessLogTarget::Stdout);
        assert_eq!(
            parse("/var/log/shardd.log"),
            AccessLogTarget::File("/var/log/shardd.log".into())
        );
    }

    #[test]
    fn unknown_key_is_named() {
        let error = Config::from_toml("shardz = 4").unwrap_err().to_string();
        assert!(error.contains("shardz"), "{error}");
    }

    #[test]
    fn bad_value_is_named() {
        let error = Config::from_toml("[limits]\nmax_headers = \"lots\"")
            .unwrap_err()
            .to_string();
        assert!(error.contains("max_headers"), "{error}");
        let error = Config::from_toml("[log]\naccess_log_format = \"apache\"")
            .unwrap_err()
            .to_string();
        assert!(error.contains("apache"), "{error}");
        let error = Config::from_toml("listener = \"carrier-pigeon\"")
            .unwrap_err()
            .to_string();
        assert!(error.contains("carrier-pigeon"), "{error}");
        let mut config = Config::default();
        config.limits.max_headers = 1000;
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("limits.max_headers"));
    }
}

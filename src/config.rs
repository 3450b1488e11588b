//! The server configuration: defaults, the TOML file, and validation.
//!
//! `config/shardd.toml` documents every setting. Command-line flags
//! override the file (see `cli.rs`). Unknown keys and bad values are errors
//! that name the setting.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use shardd_shards::runtime::ShardConfig;
use shardd_shards::Limits;
use shardd_shards::MAX_HEADERS_CAP;

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

/// Every setting of a shardd server.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub bind: SocketAddr,
    /// Number of shards; 0 means one per core.
    pub shards: usize,
    pub listener: ListenerMode,
    /// Pin each shard to its own core.
    pub pin: bool,
    /// Listen backlog (kernel queue of connections not yet accepted).
    pub backlog: u32,
    /// Capacity of each shard's handoff channel.
    pub channel_capacity: usize,
    /// Longest a graceful shutdown may take, in milliseconds.
    pub drain_timeout_ms: u64,
    pub admission: Admission,
    pub limits: LimitsConfig,
}

/// Admission control (seed 004's taskmaster, per shard).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Admission {
    /// Most connections one shard serves or has queued; 0 means no limit.
    pub max_connections_per_shard: usize,
    /// Accepted connections the main thread holds while every shard is full.
    pub max_pending: usize,
    pub overload: OverloadPolicy,
    pub dispatch: DispatchPolicy,
    /// Seconds sent in `Retry-After` with a 503.
    pub retry_after_secs: u32,
}

/// Per-connection limits and timeouts (see `shardd_shards::Limits`).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    pub max_request_line: usize,
    pub max_head_bytes: usize,
    pub max_headers: usize,
    pub max_body_bytes: usize,
    pub max_output_bytes: usize,
    pub header_timeout_ms: u64,
    pub idle_timeout_ms: u64,
    pub body_timeout_ms: u64,
    pub send_timeout_ms: u64,
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
            limits: LimitsConfig::default(),
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

impl Default for LimitsConfig {
    fn default() -> Self {
        let limits = Limits::default();
        let ms = |d: Duration| d.as_millis() as u64;
        LimitsConfig {
            max_request_line: limits.max_request_line,
            max_head_bytes: limits.max_head_bytes,
            max_headers: limits.max_headers,
            max_body_bytes: limits.max_body_bytes,
            max_output_bytes: limits.max_output_bytes,
            header_timeout_ms: ms(limits.header_timeout),
            idle_timeout_ms: ms(limits.idle_timeout),
            body_timeout_ms: ms(limits.body_timeout),
            send_timeout_ms: ms(limits.send_timeout),
        }
    }
}

impl Config {
    /// Read a TOML file; settings it leaves out keep their defaults.
    pub fn from_file(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        Self::from_toml(&text).with_context(|| format!("in config file {}", path.display()))
    }

    pub fn from_toml(text: &str) -> Result<Config> {
        let config: Config =
            toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))?;
        Ok(config)
    }

    /// Check values that parse but make no sense; the message names the setting.
    pub fn validate(&self) -> Result<()> {
        let l = &self.limits;
        let checks: [(bool, &str); 12] = [
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
                l.header_timeout_ms >= 1,
                "limits.header_timeout_ms must be at least 1",
            ),
            (
                l.idle_timeout_ms >= 1,
                "limits.idle_timeout_ms must be at least 1",
            ),
            (
                l.body_timeout_ms >= 1 && l.send_timeout_ms >= 1,
                "limits.body_timeout_ms and limits.send_timeout_ms must be at least 1",
            ),
            (
                self.admission.retry_after_secs <= 86_400,
                "admission.retry_after_secs must be at most 86400",
            ),
        ];
        for (ok, message) in checks {
            if !ok {
                bail!("invalid setting: {message}");
            }
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

    pub fn drain_timeout(&self) -> Duration {
        Duration::from_millis(self.drain_timeout_ms)
    }

    /// The per-connection limits in the form the shards use.
    pub fn limits(&self) -> Limits {
        let l = &self.limits;
        Limits {
            max_request_line: l.max_request_line,
            max_head_bytes: l.max_head_bytes,
            max_headers: l.max_headers,
            max_body_bytes: l.max_body_bytes,
            max_output_bytes: l.max_output_bytes,
            header_timeout: Duration::from_millis(l.header_timeout_ms),
            idle_timeout: Duration::from_millis(l.idle_timeout_ms),
            body_timeout: Duration::from_millis(l.body_timeout_ms),
            send_timeout: Duration::from_millis(l.send_timeout_ms),
        }
    }

    pub(crate) fn shard_settings(&self) -> ShardConfig {
        ShardConfig {
            limits: self.limits(),
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

//! The settings' types: the enums and tables a [`Config`](super::Config)
//! is made of, with their defaults and their text forms.

use std::convert::Infallible;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use shardd_shards::AccessLogFormat;

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

/// TLS (the `[tls]` table): every connection, whatever the listener, is
/// served over TLS 1.3 or 1.2 with this certificate, ALPN `http/1.1`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain: the server's certificate first, then intermediates.
    pub cert: PathBuf,
    /// PEM private key of the certificate (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// Longest a client may take, from accept, to complete its handshake.
    #[serde(default = "TlsConfig::default_handshake_timeout_ms")]
    pub handshake_timeout_ms: u64,
}

impl TlsConfig {
    /// Default handshake timeout: 10 s, as long as the header timeout.
    pub const DEFAULT_HANDSHAKE_TIMEOUT_MS: u64 = 10_000;

    /// TLS with this certificate chain and key, and the default handshake timeout.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        TlsConfig {
            cert: cert.into(),
            key: key.into(),
            handshake_timeout_ms: Self::DEFAULT_HANDSHAKE_TIMEOUT_MS,
        }
    }

    fn default_handshake_timeout_ms() -> u64 {
        Self::DEFAULT_HANDSHAKE_TIMEOUT_MS
    }

    /// The handshake timeout as a duration.
    pub fn handshake_timeout(&self) -> Duration {
        Duration::from_millis(self.handshake_timeout_ms)
    }
}

/// Admission control: how many connections a shard may take, and what
/// happens when every shard is full.
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

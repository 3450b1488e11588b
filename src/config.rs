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
use shardd_shards::listeners::ProxyProtocolSettings;
use shardd_shards::runtime::ShardConfig;
use shardd_shards::{AccessLogFormat, Limits, MAX_HEADERS_CAP};

use crate::bind_addr::{BindAddr, UnixMode};
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
    /// Address to listen on: `IP:PORT` or `unix:/path`. Ignored when the
    /// server is given inherited sockets (systemd, an upgrade).
    pub bind: BindAddr,
    /// Permission bits of a `unix:` socket file (`"0660"`); `None` leaves
    /// what the umask gives. Ignored for a TCP address.
    pub unix_mode: Option<UnixMode>,
    /// Number of shards; 0 means one per core.
    pub shards: usize,
    /// Where shards get their connections from.
    pub listener: ListenerMode,
    /// Pin each shard to its own core.
    pub pin: bool,
    /// Run the acceptor and the shards as `SCHED_BATCH`: a woken thread
    /// waits for the running one's time slice instead of preempting it,
    /// which cuts a new connection's CPU by a sixth to a third when they
    /// share cores. `false` keeps the default policy (for a box where
    /// other latency-sensitive work shares the cores).
    pub batch_scheduling: bool,
    /// Accept a TCP connection only once its first bytes have arrived
    /// (`TCP_DEFER_ACCEPT`, [`DEFER_ACCEPT_SECS`]): a client that connects
    /// and sends at once costs no wake-up, no epoll registration and no
    /// read that finds nothing; a silent one is accepted after about a
    /// second. Applies to the TCP sockets shardd binds, not to inherited
    /// ones (systemd's `DeferAcceptSec=` does it there).
    ///
    /// [`DEFER_ACCEPT_SECS`]: crate::DEFER_ACCEPT_SECS
    pub defer_accept: bool,
    /// Listen backlog (kernel queue of connections not yet accepted).
    pub backlog: u32,
    /// Capacity of each shard's handoff channel.
    pub channel_capacity: usize,
    /// Longest a drain may take, in milliseconds.
    pub drain_timeout_ms: u64,
    /// Upgrade (the `shardd` binary on SIGUSR2): longest the new process may
    /// take to say it is ready, in milliseconds, before it is given up on.
    pub upgrade_timeout_ms: u64,
    /// Admission control.
    pub admission: Admission,
    /// Per-connection limits and timeouts (the `[limits]` table).
    pub limits: Limits,
    /// Serve HTTPS with this certificate (the `[tls]` table); `None`: plain HTTP.
    pub tls: Option<TlsConfig>,
    /// Every connection starts with a PROXY protocol header (v1 or v2), as
    /// a TCP load balancer sends it (HAProxy `send-proxy`/`send-proxy-v2`,
    /// an AWS NLB, nginx `proxy_protocol on`): requests and the access log
    /// see the client it names. A connection without one is closed. Only
    /// for a port that nothing but the balancer can reach.
    pub proxy_protocol: bool,
    /// Longest a connection may take, from accept, to send its whole PROXY
    /// protocol header, in milliseconds.
    pub proxy_header_timeout_ms: u64,
    /// Address of the admin port (`/metrics`, `/health/live`, `/health/ready`,
    /// `/status`), served on a thread of its own; `None` (the default) = off.
    pub admin: Option<SocketAddr>,
    /// Logs and the access log (the `[log]` table).
    pub log: Logging,
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

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: BindAddr::Tcp(SocketAddr::from(([127, 0, 0, 1], 8080))),
            unix_mode: None,
            shards: 0,
            listener: ListenerMode::Handoff,
            pin: true,
            batch_scheduling: true,
            defer_accept: true,
            backlog: 4096,
            channel_capacity: 4096,
            drain_timeout_ms: 10_000,
            upgrade_timeout_ms: 10_000,
            admission: Admission::default(),
            limits: Limits::default(),
            tls: None,
            proxy_protocol: false,
            proxy_header_timeout_ms: 5_000,
            admin: None,
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
        let checks = [
            (self.shards <= 1024, "shards must be at most 1024"),
            (
                self.listener == ListenerMode::Handoff || self.bind.tcp().is_some(),
                "listener = \"reuseport\" needs a TCP bind address, not unix:",
            ),
            (
                self.upgrade_timeout_ms >= 1,
                "upgrade_timeout_ms must be at least 1",
            ),
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
                self.proxy_header_timeout_ms >= 1,
                "proxy_header_timeout_ms must be at least 1",
            ),
            (
                self.log.access_log_buffers >= 1,
                "log.access_log_buffers must be at least 1",
            ),
        ];
        if let Some((_, message)) = checks.into_iter().find(|(ok, _)| !ok) {
            return Err(Error::InvalidSetting(message));
        }
        self.check_built_features(cfg!(feature = "tls"))?;
        if self
            .tls
            .as_ref()
            .is_some_and(|tls| tls.handshake_timeout_ms == 0)
        {
            return Err(Error::InvalidSetting(
                "tls.handshake_timeout_ms must be at least 1",
            ));
        }
        Ok(())
    }

    /// Refuse settings this build cannot honour, rather than ignore them:
    /// `[tls]` without the `tls` feature would serve plain HTTP.
    fn check_built_features(&self, tls_built: bool) -> Result<(), Error> {
        if self.tls.is_some() && !tls_built {
            return Err(Error::InvalidSetting(
                "[tls] is set but shardd was built without the tls feature \
                 (enable feature \"tls\" of shardd-server)",
            ));
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

    /// The PROXY protocol header timeout as a duration.
    pub fn proxy_header_timeout(&self) -> Duration {
        Duration::from_millis(self.proxy_header_timeout_ms)
    }

    /// The upgrade timeout as a duration.
    pub fn upgrade_timeout(&self) -> Duration {
        Duration::from_millis(self.upgrade_timeout_ms)
    }

    /// The settings that differ in `new` but that a running server cannot
    /// change: they take effect in a new process (an upgrade, a restart).
    /// What can change live (`limits`, `upgrade_timeout_ms`) is not listed.
    pub fn changes_needing_restart(&self, new: &Config) -> Vec<&'static str> {
        let (a, b) = (&self.admission, &new.admission);
        [
            (self.bind != new.bind, "bind"),
            (self.unix_mode != new.unix_mode, "unix_mode"),
            (self.shards != new.shards, "shards"),
            (self.listener != new.listener, "listener"),
            (self.pin != new.pin, "pin"),
            (
                self.batch_scheduling != new.batch_scheduling,
                "batch_scheduling",
            ),
            (self.defer_accept != new.defer_accept, "defer_accept"),
            (self.backlog != new.backlog, "backlog"),
            (
                self.channel_capacity != new.channel_capacity,
                "channel_capacity",
            ),
            (
                self.drain_timeout_ms != new.drain_timeout_ms,
                "drain_timeout_ms",
            ),
            (
                a.max_connections_per_shard != b.max_connections_per_shard,
                "admission.max_connections_per_shard",
            ),
            (a.max_pending != b.max_pending, "admission.max_pending"),
            (self.admin != new.admin, "admin"),
            // The files are re-read on SIGHUP; other paths need an upgrade.
            (self.tls != new.tls, "tls"),
            (self.proxy_protocol != new.proxy_protocol, "proxy_protocol"),
            (
                self.proxy_header_timeout_ms != new.proxy_header_timeout_ms,
                "proxy_header_timeout_ms",
            ),
            (a.overload != b.overload, "admission.overload"),
            (a.dispatch != b.dispatch, "admission.dispatch"),
            (
                a.retry_after_secs != b.retry_after_secs,
                "admission.retry_after_secs",
            ),
        ]
        .into_iter()
        .filter_map(|(changed, name)| changed.then_some(name))
        .collect()
    }

    pub(crate) fn shard_config(&self) -> ShardConfig {
        ShardConfig {
            limits: self.limits.clone(),
            drain_timeout: self.drain_timeout(),
            proxy_protocol: self
                .proxy_protocol
                .then(|| ProxyProtocolSettings::with_header_timeout(self.proxy_header_timeout())),
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
        let error = Config::from_toml("bind = \"localhost\"")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("bind") && error.contains("unix:/path"),
            "{error}"
        );
        let error = Config::from_toml("unix_mode = \"rw\"")
            .unwrap_err()
            .to_string();
        assert!(error.contains("unix_mode"), "{error}");
        let mut config = Config::default();
        config.limits.max_headers = 1000;
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("limits.max_headers"));
    }

    #[test]
    fn unix_bind_and_mode_parse() {
        let config =
            Config::from_toml("bind = \"unix:/run/shardd.sock\"\nunix_mode = \"0660\"").unwrap();
        assert_eq!(config.bind, BindAddr::Unix("/run/shardd.sock".into()));
        assert_eq!(config.unix_mode.map(UnixMode::bits), Some(0o660));
        config.validate().unwrap();
        let reuseport = Config {
            listener: ListenerMode::Reuseport,
            ..config
        };
        let error = reuseport.validate().unwrap_err().to_string();
        assert!(error.contains("reuseport"), "{error}");
    }

    #[test]
    fn changes_needing_restart_leave_out_limits() {
        let old = Config::default();
        let mut new = Config::default();
        new.limits.max_body_bytes = 1;
        new.upgrade_timeout_ms = 1;
        assert!(old.changes_needing_restart(&new).is_empty());
        new.shards = 3;
        new.bind = "unix:/x".parse().unwrap();
        new.admission.max_pending = 1;
        assert_eq!(
            old.changes_needing_restart(&new),
            ["bind", "shards", "admission.max_pending"]
        );
    }

    #[test]
    fn tls_table() {
        let config = Config::from_toml("[tls]\ncert = \"a.pem\"\nkey = \"k.pem\"").unwrap();
        assert_eq!(config.tls, Some(TlsConfig::new("a.pem", "k.pem")));
        let error = Config::from_toml("[tls]\ncert = \"a.pem\"")
            .unwrap_err()
            .to_string();
        assert!(error.contains("key"), "{error}");
        let config = Config {
            tls: Some(TlsConfig {
                handshake_timeout_ms: 0,
                ..TlsConfig::new("a.pem", "k.pem")
            }),
            ..Config::default()
        };
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("tls.handshake_timeout_ms"), "{error}");
    }

    #[test]
    fn tls_table_refused_when_built_without_tls() {
        let config = Config::from_toml("[tls]\ncert = \"a.pem\"\nkey = \"k.pem\"").unwrap();
        let error = config.check_built_features(false).unwrap_err().to_string();
        assert!(error.contains("built without the tls feature"), "{error}");
        assert!(config.check_built_features(true).is_ok());
        assert!(Config::default().check_built_features(false).is_ok());
    }

    #[test]
    fn proxy_protocol_keys() {
        let config =
            Config::from_toml("proxy_protocol = true\nproxy_header_timeout_ms = 250").unwrap();
        config.validate().unwrap();
        let settings = config.shard_config().proxy_protocol.expect("on");
        assert_eq!(settings.header_timeout, Duration::from_millis(250));
        assert!(Config::default().shard_config().proxy_protocol.is_none());
        let error = Config::from_toml("proxy_protocol = true\nproxy_header_timeout_ms = 0")
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(error.contains("proxy_header_timeout_ms"), "{error}");
        assert_eq!(
            Config::default().changes_needing_restart(&config),
            ["proxy_protocol", "proxy_header_timeout_ms"]
        );
    }
}

//! The server configuration.
//!
//! `config/shardd.toml` documents every setting. Command-line flags
//! override the file (see `cli.rs`).
//!
//! | file | what |
//! | --- | --- |
//! | `mod.rs` | [`Config`]: every setting, its defaults, what a shard takes of it |
//! | `settings.rs` | the types of the settings: modes, policies, the `[admission]`, `[log]` and `[tls]` tables |
//! | `file.rs` | reading the TOML file; unknown keys and bad values are errors that name the setting |
//! | `validate.rs` | values that parse but make no sense; changes that need a restart |

mod file;
mod settings;
mod validate;

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use shardd_shards::compression::CompressionSettings;
#[cfg(feature = "postgres")]
use shardd_shards::database::DatabaseSettings;
use shardd_shards::files::StaticSettings;
use shardd_shards::listeners::ProxyProtocolSettings;
use shardd_shards::runtime::ShardConfig;
use shardd_shards::{Http2Settings, Limits};

use crate::bind_addr::{BindAddr, UnixMode};

pub use settings::{
    AccessLogTarget, Admission, DispatchPolicy, ListenerMode, LogFormat, Logging, OverloadPolicy,
    TlsConfig,
};

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
    /// HTTP/2 beside HTTP/1.1 on the same port (the `[http2]` table): on by
    /// default, with finite limits on streams, header lists and windows.
    pub http2: Http2Settings,
    /// Response compression (the `[compression]` table), off by default.
    /// The `shardd` binary wraps its app in
    /// [`App::compressed`](shardd_shards::App::compressed) with these
    /// settings; a program serving its own app does the same with them
    /// (`Server::serve` does not wrap apps).
    pub compression: CompressionSettings,
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
    /// Directories served as static files, each under a path prefix (the
    /// `[[static]]` tables; `--static /prefix=DIR`), in front of the app.
    #[serde(rename = "static")]
    pub static_files: Vec<StaticSettings>,
    /// The Postgres every shard keeps connections to (the `[database]`
    /// table; `--database-url`); no URL: no database. The `shardd` binary
    /// serves the TechEmpower database tests on it; a program serving its
    /// own app starts a [`Database`](shardd_shards::database::Database)
    /// per shard with these settings.
    #[cfg(feature = "postgres")]
    pub database: DatabaseSettings,
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
            http2: Http2Settings::default(),
            compression: CompressionSettings::default(),
            tls: None,
            proxy_protocol: false,
            proxy_header_timeout_ms: 5_000,
            admin: None,
            log: Logging::default(),
            static_files: Vec::new(),
            #[cfg(feature = "postgres")]
            database: DatabaseSettings::default(),
        }
    }
}

impl Config {
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

    pub(crate) fn shard_config(&self) -> ShardConfig {
        ShardConfig {
            limits: self.limits.clone(),
            http2: self.http2.clone(),
            drain_timeout: self.drain_timeout(),
            proxy_protocol: self
                .proxy_protocol
                .then(|| ProxyProtocolSettings::with_header_timeout(self.proxy_header_timeout())),
            ..ShardConfig::default()
        }
    }
}

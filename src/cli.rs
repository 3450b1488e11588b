//! Command-line flags; each overrides the same setting of the config file.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::builder::TypedValueParser;
use clap::Parser;
use shardd::files::StaticSettings;

use shardd::{
    AccessLogFormat, AccessLogTarget, BindAddr, Config, DispatchPolicy, ListenerMode, LogFormat,
    OverloadPolicy, TlsConfig, UnixMode,
};

/// shardd: a sharded thread-per-core HTTP/1.1 and HTTP/2 server with connection handoff.
///
/// Serves the TechEmpower plaintext (GET /plaintext) and json (GET /json)
/// tests, matched by hand or through shardd::router::Router (--app), and
/// with --database-url its database tests on a Postgres pool per shard
/// (/db, /queries, /fortunes, /updates, /cached-queries). The
/// main thread accepts and hands each connection round-robin to one of N
/// shard threads, each pinned to its own core.
///
/// Settings come from defaults, then --config FILE, then these flags.
/// SIGINT/SIGTERM start a drain; a second signal exits at once. SIGHUP
/// re-reads the config file (limits change live) and, with TLS (--tls-cert,
/// --tls-key), reloads the certificate and key. SIGUSR2 upgrades: a new
/// process from the same binary path takes over the listening socket, then
/// this one drains. Started by systemd with sockets (LISTEN_FDS), shardd
/// serves on them instead of binding and reports READY=1 / STOPPING=1.
/// Log verbosity: RUST_LOG=warn|info|debug (default info); logs go to stderr.
/// config/shardd.toml: every setting, documented, at its default; what
/// `--print-config` prints (an installed binary has no copy of the repository).
pub(crate) const CONFIG_TEMPLATE: &str = include_str!("../config/shardd.toml");

#[derive(Debug, Parser)]
#[command(name = "shardd", version)]
pub(crate) struct Cli {
    /// TOML config file (`shardd --print-config` prints one with every
    /// setting, documented, at its default).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Where to listen: IP:PORT, or unix:/path for a Unix socket file
    /// [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR:PORT|unix:PATH")]
    pub bind: Option<BindAddr>,

    /// Permissions of a unix: socket file, in octal (e.g. 0660) [default: from the umask].
    #[arg(long, value_name = "MODE")]
    pub unix_mode: Option<UnixMode>,

    /// Number of shards, at most 1024; 0 = one per available core [default: 0].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(0..=1024))]
    pub shards: Option<u16>,

    /// Where shards get connections [default: handoff].
    #[arg(long, value_enum)]
    pub listener: Option<ListenerMode>,

    /// Do not pin shard threads to cores.
    #[arg(long)]
    pub no_pin: bool,

    /// Keep the default scheduling policy for the acceptor and the shards
    /// instead of SCHED_BATCH.
    #[arg(long)]
    pub no_batch_scheduling: bool,

    /// Accept TCP connections at once, not when their first bytes arrive
    /// (no TCP_DEFER_ACCEPT).
    #[arg(long)]
    pub no_defer_accept: bool,

    /// Most connections one shard serves or has queued, 0 = no limit [default: 0].
    #[arg(long, value_name = "N")]
    pub max_connections_per_shard: Option<usize>,

    /// Connections held by the acceptor while every shard is full [default: 1024].
    #[arg(long, value_name = "N")]
    pub max_pending: Option<usize>,

    /// What to do when every shard and the pending queue are full [default: reject].
    #[arg(long, value_enum)]
    pub overload: Option<OverloadPolicy>,

    /// How the acceptor picks a shard [default: round-robin].
    #[arg(long, value_enum)]
    pub dispatch: Option<DispatchPolicy>,

    /// Longest a drain may take, in milliseconds [default: 10000].
    #[arg(long, value_name = "MS")]
    pub drain_timeout_ms: Option<u64>,

    /// Upgrade (SIGUSR2): longest the new process may take to be ready, in
    /// milliseconds, before this one gives up on it and keeps serving [default: 10000].
    #[arg(long, value_name = "MS")]
    pub upgrade_timeout_ms: Option<u64>,

    /// Serve HTTPS: PEM certificate chain (server certificate first). Needs --tls-key.
    #[arg(long, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert. SIGHUP reloads both files.
    #[arg(long, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// Every connection starts with a PROXY protocol header (v1 or v2) from
    /// a load balancer (HAProxy send-proxy / send-proxy-v2, AWS NLB, nginx
    /// proxy_protocol): requests and the access log see the client's
    /// address. Connections without a valid header are closed. With TLS,
    /// the header comes before the handshake.
    #[arg(long)]
    pub proxy_protocol: bool,

    /// Serve HTTP/1.1 only: no HTTP/2 with prior knowledge on cleartext
    /// connections, no `h2` in TLS's ALPN (the config file's
    /// `[http2] enabled = false`). HTTP/2 is on by default.
    #[arg(long)]
    pub no_http2: bool,

    /// Compress responses (the config file's `[compression] enabled =
    /// true`): zstd, br or gzip as each client's Accept-Encoding asks, for
    /// text and JSON bodies of at least `min_size` bytes (default 256) and
    /// for streams, at gzip level 1, brotli 4, zstd 3 by default.
    #[arg(long)]
    pub compress: bool,

    /// Longest a connection may take, from accept, to send its PROXY
    /// protocol header, in milliseconds [default: 5000].
    #[arg(long, value_name = "MS")]
    pub proxy_header_timeout_ms: Option<u64>,

    /// Serve /metrics, /health/live, /health/ready and /status on this
    /// address, on a thread of its own [default: off]. An upgrade (SIGUSR2)
    /// passes the socket on to the new process.
    #[arg(long, value_name = "ADDR:PORT")]
    pub admin: Option<SocketAddr>,

    /// Check the settings (the config file parses, the addresses bind, the
    /// static directories open, the database takes the connection and has
    /// the tables) and exit: 0 with a one-line summary, or 1 naming the problem.
    #[arg(long)]
    pub check: bool,

    /// Print a config file with every setting, documented, at its default
    /// (the config/shardd.toml this binary was built with), and exit.
    #[arg(long, conflicts_with = "check")]
    pub print_config: bool,

    /// Format of the server's own log lines on stderr [default: text].
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,

    /// Write an access log to FILE (appended, created if missing), or to
    /// stdout with "-"; "" turns it off [default: off].
    #[arg(long, value_name = "FILE|-")]
    pub access_log: Option<AccessLogTarget>,

    /// Access-log line format [default: combined].
    #[arg(
        long,
        value_name = "FORMAT",
        value_parser = clap::builder::PossibleValuesParser::new(AccessLogFormat::NAMES)
            .map(|name| name.parse::<AccessLogFormat>().expect("a listed name")),
    )]
    pub access_log_format: Option<AccessLogFormat>,

    /// Serve the files of DIR under the URL path PREFIX, in front of the
    /// app (repeatable; the `[[static]]` tables of the config file, with
    /// their defaults): `--static /assets=./public`. GET and HEAD, ranges,
    /// conditional requests, precompressed siblings, sendfile on plain TCP;
    /// never a path out of DIR, never a directory listing, no dotfiles
    /// (`/.env` is a 404; `/.well-known/` is served; a `[[static]]` table
    /// with `dotfiles = true` serves them).
    #[arg(long = "static", value_name = "/PREFIX=DIR", value_parser = StaticSettings::parse_flag)]
    pub static_files: Vec<StaticSettings>,

    /// Postgres for the TechEmpower database tests (/db, /queries?q=N,
    /// /fortunes, /updates?q=N, /cached-queries?q=N):
    /// postgres://user:password@host:port/database. Every shard keeps its
    /// own connections, queries pipelined (the `[database]` table has the
    /// rest). Prefer the environment variable: a flag's password shows in
    /// `ps`. The password is never logged.
    #[arg(
        long,
        value_name = "URL",
        env = "SHARDD_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// What serves the requests.
    #[arg(long, value_enum, default_value_t = AppChoice::Techempower)]
    pub app: AppChoice,
}

/// The apps the binary can serve; both answer the same requests the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum AppChoice {
    /// The TechEmpower tests, matched by hand (shardd::TechEmpower); with
    /// --database-url, the database tests too (shardd::apps::techempower::TechEmpowerDb).
    Techempower,
    /// The same tests served through shardd::router::Router (shardd::techempower_router).
    Router,
}

impl Cli {
    /// Defaults, then the config file, then the flags; validated.
    pub(crate) fn config(&self) -> Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(bind) = &self.bind {
            config.bind = bind.clone();
        }
        if let Some(mode) = self.unix_mode {
            config.unix_mode = Some(mode);
        }
        if let Some(shards) = self.shards {
            config.shards = usize::from(shards);
        }
        if let Some(listener) = self.listener {
            config.listener = listener;
        }
        if self.no_pin {
            config.pin = false;
        }
        if self.no_batch_scheduling {
            config.batch_scheduling = false;
        }
        if self.no_defer_accept {
            config.defer_accept = false;
        }
        if let Some(max) = self.max_connections_per_shard {
            config.admission.max_connections_per_shard = max;
        }
        if let Some(max) = self.max_pending {
            config.admission.max_pending = max;
        }
        if let Some(overload) = self.overload {
            config.admission.overload = overload;
        }
        if let Some(dispatch) = self.dispatch {
            config.admission.dispatch = dispatch;
        }
        if let Some(ms) = self.drain_timeout_ms {
            config.drain_timeout_ms = ms;
        }
        if let Some(ms) = self.upgrade_timeout_ms {
            config.upgrade_timeout_ms = ms;
        }
        self.apply_tls(&mut config)?;
        if self.proxy_protocol {
            config.proxy_protocol = true;
        }
        config
            .static_files
            .extend(self.static_files.iter().cloned());
        if self.no_http2 {
            config.http2.enabled = false;
        }
        if self.compress {
            config.compression.enabled = true;
        }
        if let Some(url) = &self.database_url {
            config.database.url = url.clone();
        }
        if config.database.is_configured() && self.app != AppChoice::Techempower {
            bail!("the database tests are served by --app techempower, not --app router");
        }
        if let Some(ms) = self.proxy_header_timeout_ms {
            config.proxy_header_timeout_ms = ms;
        }
        if let Some(admin) = self.admin {
            config.admin = Some(admin);
        }
        if let Some(format) = self.log_format {
            config.log.format = format;
        }
        if let Some(target) = &self.access_log {
            config.log.access_log = target.clone();
        }
        if let Some(format) = self.access_log_format {
            config.log.access_log_format = format;
        }
        config.validate()?;
        Ok(config)
    }

    /// --tls-cert and --tls-key: both, or one of them over a `[tls]` table.
    fn apply_tls(&self, config: &mut Config) -> Result<()> {
        match (&self.tls_cert, &self.tls_key, &mut config.tls) {
            (None, None, _) => {}
            (Some(cert), Some(key), None) => config.tls = Some(TlsConfig::new(cert, key)),
            (cert, key, Some(tls)) => {
                if let Some(cert) = cert {
                    tls.cert.clone_from(cert);
                }
                if let Some(key) = key {
                    tls.key.clone_from(key);
                }
            }
            (Some(_), None, None) => {
                bail!("--tls-cert needs --tls-key (or [tls] key in the config file)")
            }
            (None, Some(_), None) => {
                bail!("--tls-key needs --tls-cert (or [tls] cert in the config file)")
            }
        }
        Ok(())
    }
}

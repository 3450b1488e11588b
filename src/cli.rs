//! Command-line flags; each overrides the same setting of the config file.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Result;
use clap::builder::TypedValueParser;
use clap::Parser;

use shardd::{
    AccessLogFormat, AccessLogTarget, Config, DispatchPolicy, ListenerMode, LogFormat,
    OverloadPolicy,
};

/// shardd: a sharded thread-per-core HTTP/1.1 server with connection handoff.
///
/// Serves the TechEmpower plaintext (GET /plaintext) and json (GET /json)
/// tests. The main thread accepts and hands each connection round-robin to
/// one of N shard threads, each pinned to its own core.
///
/// Settings come from defaults, then --config FILE, then these flags.
/// SIGINT/SIGTERM start a drain; a second signal exits at once.
/// Log verbosity: RUST_LOG=warn|info|debug (default info); logs go to stderr.
#[derive(Debug, Parser)]
#[command(name = "shardd", version)]
pub struct Cli {
    /// TOML config file (see config/shardd.toml for every setting).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address and port to listen on [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR:PORT")]
    pub bind: Option<SocketAddr>,

    /// Number of shards [default: one per core].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub shards: Option<u16>,

    /// Where shards get connections [default: handoff].
    #[arg(long, value_enum)]
    pub listener: Option<ListenerMode>,

    /// Do not pin shard threads to cores.
    #[arg(long)]
    pub no_pin: bool,

    /// Most connections one shard serves or has queued (0 = no limit).
    #[arg(long, value_name = "N")]
    pub max_connections_per_shard: Option<usize>,

    /// Connections held by the acceptor while every shard is full.
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
}

impl Cli {
    /// Defaults, then the config file, then the flags; validated.
    pub fn config(&self) -> Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(bind) = self.bind {
            config.bind = bind;
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
}

//! `Error`: what can go wrong when configuring and starting a server.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::bind_addr::BindAddr;
#[cfg(feature = "tls")]
use shardd_shards::listeners::TlsError;

/// An error from the `shardd` library. Every message names what it is
/// about (the setting, the file, the address). An error with an underlying
/// cause (an `io::Error`) returns it from [`source`](std::error::Error::source)
/// instead of repeating it in its own message, so a report that prints the
/// chain (anyhow's `{:#}`) shows each cause once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting has a value that parses but makes no sense.
    #[error("invalid setting: {0}")]
    InvalidSetting(&'static str),
    /// A `[[static]]` table (or `--static` flag) that makes no sense.
    #[error("invalid [[static]] setting: {0}")]
    InvalidStatic(String),
    /// The `[database]` table (or `--database-url`) makes no sense; the
    /// message never repeats the password.
    #[error("invalid [database] setting: {0}")]
    InvalidDatabase(String),
    /// The config file could not be read.
    #[error("cannot read config file {path}")]
    ConfigFile {
        /// The file named by `--config`.
        path: PathBuf,
        /// Why it could not be read.
        source: io::Error,
    },
    /// The config text is not valid TOML for a [`Config`](crate::Config)
    /// (an unknown key, a value of the wrong type); the message names the key.
    #[error("{}{message}", in_file(.path))]
    ConfigSyntax {
        /// The file, when the text came from one.
        path: Option<PathBuf>,
        /// The parser's message, naming the key and line.
        message: String,
    },
    /// A `bind` address that is neither `IP:PORT` nor `unix:/path`.
    #[error(
        "invalid bind address {0:?}: expected IP:PORT (127.0.0.1:8080, [::1]:8080) or unix:/path"
    )]
    InvalidBind(String),
    /// A `unix_mode` that is not octal permission bits.
    #[error("invalid unix_mode {0:?}: expected octal permission bits such as \"0660\"")]
    InvalidUnixMode(String),
    /// The listening address could not be bound.
    #[error("cannot bind {addr}")]
    Bind {
        /// The address asked for.
        addr: BindAddr,
        /// Why (in use, no permission, ...).
        source: io::Error,
    },
    /// A live process already listens on this Unix socket file (a stale
    /// file, whose process is gone, is replaced instead).
    #[error("cannot bind unix:{}: another process is listening on it", .path.display())]
    UnixSocketInUse {
        /// The socket file.
        path: PathBuf,
    },
    /// Sockets passed by systemd or an upgrading shardd (`LISTEN_FDS`)
    /// that cannot be served; the message says which and why.
    #[error("inherited sockets (LISTEN_FDS): {0}")]
    Inherited(String),
    /// The TLS certificate or key cannot be used (missing, unreadable, not
    /// PEM, or not a matching pair); the message names the file.
    #[error(transparent)]
    #[cfg(feature = "tls")]
    Tls(#[from] TlsError),
    /// The admin port's address (`admin`) could not be bound.
    #[error("cannot bind the admin address {addr}")]
    AdminBind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why (in use, no permission, ...).
        source: io::Error,
    },
    /// The access-log file could not be opened for appending.
    #[error("cannot open the access log {path}")]
    AccessLog {
        /// The file named by `log.access_log` or `--access-log`.
        path: PathBuf,
        /// Why (no such directory, no permission, ...).
        source: io::Error,
    },
    /// [`ServerHandle::serve_until`](crate::ServerHandle::serve_until) or
    /// `wait_for_shutdown` was called from async code (a thread that runs a
    /// tokio runtime): they block the thread they are called on.
    #[error("serve_until and wait_for_shutdown block their thread: call them from plain `fn main`, not from async code (there, await the shutdown, then call drain and wait on a blocking thread)")]
    BlockingInAsync,
    /// A resource the server needs could not be made (a thread, an eventfd).
    #[error("cannot start the server")]
    Start(#[from] io::Error),
}

fn in_file(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map(|path| format!("in config file {}: ", path.display()))
        .unwrap_or_default()
}
